package stitch

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/vocab"
)

// emitter rebuilds linked spans as pdata. Spans that arrived in one
// ResourceSpans x ScopeSpans leave in one again (per flush), so batches
// from SDKs keep their shape.
type emitter struct {
	td      ptrace.Traces
	spans   int
	byRsc   map[*resScope]ptrace.SpanSlice
	strs    map[*dict][]string
	corrupt int // encodings that did not decode; reported in Result.Corrupt

	// The dictionary of the last span decoded, and its strings: spans of a
	// flush nearly all share one, and this saves a map lookup per span.
	lastD    *dict
	lastStrs []string
}

func newEmitter() *emitter {
	return &emitter{td: ptrace.NewTraces(), byRsc: map[*resScope]ptrace.SpanSlice{}, strs: map[*dict][]string{}}
}

func (em *emitter) strings(d *dict) []string {
	if d == em.lastD {
		return em.lastStrs
	}
	s, ok := em.strs[d]
	if !ok {
		s = d.snapshot()
		em.strs[d] = s
	}
	em.lastD, em.lastStrs = d, s
	return s
}

// slice returns the spans of a resource and scope, adding them to the
// output the first time. alone says no other span of the flush uses rsc.
func (em *emitter) slice(rsc *resScope, alone bool) ptrace.SpanSlice {
	if alone {
		return em.newSlice(rsc)
	}
	if ss, ok := em.byRsc[rsc]; ok {
		return ss
	}
	ss := em.newSlice(rsc)
	em.byRsc[rsc] = ss
	return ss
}

func (em *emitter) newSlice(rsc *resScope) ptrace.SpanSlice {
	rs := em.td.ResourceSpans().AppendEmpty()
	sc := rs.ScopeSpans().AppendEmpty()
	dec := decoder{b: rsc.blob, strs: em.strings(rsc.d)}
	dec.resScope(rs, sc)
	if dec.err != nil {
		em.corrupt++
	}
	return sc.Spans()
}

// outSpan is what linking decided for one member of a group.
type outSpan struct {
	trace  pcommon.TraceID
	parent pcommon.SpanID // the new parent; empty: none was found
	merged int32          // the response row merged into this one, -1 none
	key    linkKey        // how parent was found
	late   bool           // parent is a span sent with an earlier flush
	// absorbed: merged into another row, not sent on.
	absorbed bool
}

// minRunSpans is the fewest spans worth a run of their own (link): below
// it, starting a goroutine and joining its output costs more than it
// saves.
const minRunSpans = 2048

// mergeEmitters joins the output of a flush's runs into res: the spans of
// a resource and scope that several runs used are moved into the first
// run's slice, and every run's ResourceSpans into one Traces (a pointer a
// span), so a flush still sends one ResourceSpans per resource and scope.
func mergeEmitters(ems []*emitter, res *Result) {
	first := ems[0]
	res.Traces = first.td
	for _, em := range ems {
		if em != first {
			moved := false
			for rsc, spans := range em.byRsc {
				if to, ok := first.byRsc[rsc]; ok {
					spans.MoveAndAppendTo(to)
					moved = true
				} else {
					first.byRsc[rsc] = spans
				}
			}
			rss := em.td.ResourceSpans()
			if moved {
				// Each ResourceSpans the emitter made has one ScopeSpans.
				rss.RemoveIf(func(rs ptrace.ResourceSpans) bool { return rs.ScopeSpans().At(0).Spans().Len() == 0 })
			}
			rss.MoveAndAppendTo(res.Traces.ResourceSpans())
		}
		res.Spans += em.spans
		res.Corrupt += em.corrupt
	}
}

// add appends a linked group's spans.
func (em *emitter) add(members []held, outs []outSpan) {
	// A response row merged into its request row is not sent on, so its
	// span id disappears: spans whose parent it was go under the session
	// (the request row) instead of pointing at a span nobody receives.
	var moved map[pcommon.SpanID]pcommon.SpanID
	for i := range outs {
		if r := outs[i].merged; r >= 0 {
			if moved == nil {
				moved = map[pcommon.SpanID]pcommon.SpanID{}
			}
			moved[members[r].f.spanID] = members[i].f.spanID
		}
	}
	for i := range members {
		o := &outs[i]
		if o.absorbed {
			continue
		}
		h := &members[i]
		f := &h.f
		sp := em.slice(h.rsc, h.alone).AppendEmpty()
		dec := decoder{b: h.blob, strs: em.strings(h.rsc.d)}
		dec.span(sp, f)
		if dec.err != nil {
			em.corrupt++
		}
		em.spans++
		sp.SetTraceID(o.trace)

		parent := o.parent
		if to, ok := moved[parent]; ok && to != f.spanID {
			parent = to
		}
		attrs := sp.Attributes()
		switch {
		case !parent.IsEmpty() && o.key != keyNone:
			sp.SetParentSpanID(parent)
			attrs.PutStr(vocab.LinkKey, keyNames[o.key])
			if o.late {
				attrs.PutBool(vocab.LinkLate, true)
			}
			if orig := f.parentID; !orig.IsEmpty() && orig != f.spanID && orig != parent {
				attrs.PutStr(vocab.LinkOriginalParentSpanID, orig.String())
			}
		case f.flags&flagSelfParent != 0:
			// DeepFlow's "no parent": a span cannot be its own parent.
			sp.SetParentSpanID(pcommon.SpanID{})
		default:
			if to, ok := moved[f.parentID]; ok && !f.parentID.IsEmpty() && to != f.spanID {
				sp.SetParentSpanID(to)
				attrs.PutStr(vocab.LinkOriginalParentSpanID, f.parentID.String())
			}
		}
		if o.merged >= 0 {
			em.mergeResponse(sp, f, &members[o.merged])
		}
	}
}

// mergeResponse completes a request row with what its response row knew:
// attributes the request lacks (status code, response sizes), the status,
// its events and links (the response row is not sent, so they would be
// lost otherwise), and the response's correlation ids in Weft's vocabulary.
func (em *emitter) mergeResponse(sp ptrace.Span, f *fields, resp *held) {
	tmp := ptrace.NewSpan()
	dec := decoder{b: resp.blob, strs: em.strings(resp.rsc.d)}
	dec.span(tmp, &resp.f)
	if dec.err != nil {
		em.corrupt++
		return
	}
	attrs := sp.Attributes()
	for k, v := range tmp.Attributes().All() {
		if _, ok := attrs.Get(k); !ok {
			v.CopyTo(attrs.PutEmpty(k))
		}
	}
	if sp.Status().Code() == ptrace.StatusCodeUnset && tmp.Status().Code() != ptrace.StatusCodeUnset {
		tmp.Status().CopyTo(sp.Status())
	}
	// tmp is scratch: its events and links can move rather than be copied.
	tmp.Events().MoveAndAppendTo(sp.Events())
	sp.SetDroppedEventsCount(sp.DroppedEventsCount() + tmp.DroppedEventsCount())
	tmp.Links().MoveAndAppendTo(sp.Links())
	sp.SetDroppedLinksCount(sp.DroppedLinksCount() + tmp.DroppedLinksCount())
	attrs.PutStr(vocab.SessionResponseSpanID, resp.f.spanID.String())
	for _, k := range [...]string{dfType, vocab.MessageType} {
		if v, ok := attrs.Get(k); ok && v.Type() == pcommon.ValueTypeStr {
			v.SetStr("session")
		}
	}
	if _, ok := attrs.Get(vocab.TCPSeqResponse); !ok && f.tcpResp != 0 {
		attrs.PutInt(vocab.TCPSeqResponse, int64(f.tcpResp))
	}
	if _, ok := attrs.Get(vocab.SyscallTraceIDResponse); !ok && f.sysResp != 0 {
		attrs.PutInt(vocab.SyscallTraceIDResponse, int64(f.sysResp))
	}
}
