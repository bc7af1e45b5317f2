package stitch

import (
	"encoding/binary"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/vocab"
)

// t0 is the start of every hand-made scenario.
var t0 = time.Unix(1_760_000_000, 0)

func at(us int64) pcommon.Timestamp { return pcommon.Timestamp(t0.UnixNano() + us*1000) }

func sid(v uint64) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], v)
	return id
}

func tid(v uint64) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[8:], v)
	id[0] = 0x7e
	return id
}

// net describes a network or eBPF span in Weft's vocabulary.
type net struct {
	id         uint64
	obs        string // c-p, c, c-nd, s-nd, s, s-p
	agent      string
	pid        int64
	start, end int64 // µs after t0
	tcpReq     int64
	tcpResp    int64
	sysReq     int64
	sysResp    int64
	xr0, xr1   string
	trace      uint64 // real trace id (trace context parsed), 0: none
	prop       uint64 // propagated span id, 0: none
	msg        string
	flow       int64
	capReq     int64
	capResp    int64
	stream     int64 // HTTP/2 stream id (weft.l7.request_id), 0: none
	attrs      map[string]string
}

func (n net) traces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc-"+n.agent)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetSpanID(sid(n.id))
	sp.SetName("GET /x")
	sp.SetStartTimestamp(at(n.start))
	sp.SetEndTimestamp(at(n.end))
	if n.obs[0] == 'c' {
		sp.SetKind(ptrace.SpanKindClient)
	} else {
		sp.SetKind(ptrace.SpanKindServer)
	}
	a := sp.Attributes()
	src := vocab.SignalSourcePacket
	if n.obs == "c-p" || n.obs == "s-p" {
		src = vocab.SignalSourceEBPF
	}
	a.PutStr(vocab.SignalSource, src)
	a.PutStr(vocab.ObservationPoint, n.obs)
	a.PutStr(vocab.ObserverID, n.agent)
	put := func(k string, v int64) {
		if v != 0 {
			a.PutInt(k, v)
		}
	}
	put(vocab.ProcessID, n.pid)
	put(vocab.TCPSeqRequest, n.tcpReq)
	put(vocab.TCPSeqResponse, n.tcpResp)
	put(vocab.SyscallTraceIDRequest, n.sysReq)
	put(vocab.SyscallTraceIDResponse, n.sysResp)
	put(vocab.SyscallCapSeqRequest, n.capReq)
	put(vocab.SyscallCapSeqResponse, n.capResp)
	put(vocab.FlowID, n.flow)
	put(vocab.L7RequestID, n.stream)
	if n.xr0 != "" {
		a.PutStr(vocab.XRequestID0, n.xr0)
	}
	if n.xr1 != "" {
		a.PutStr(vocab.XRequestID1, n.xr1)
	}
	if n.msg != "" {
		a.PutStr(vocab.MessageType, n.msg)
	}
	if n.trace != 0 {
		sp.SetTraceID(tid(n.trace))
		a.PutStr(vocab.PropagatedSpanID, sid(n.prop).String())
	} else {
		sp.SetTraceID(tid(1<<40 | n.id)) // made up
		a.PutBool(vocab.TraceIDSynthetic, true)
	}
	for k, v := range n.attrs {
		a.PutStr(k, v)
	}
	return td
}

// app describes an application span.
type app struct {
	id, parent uint64
	trace      uint64
	kind       ptrace.SpanKind
	start, end int64
	service    string
}

func (s app) traces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", s.service)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(tid(s.trace))
	sp.SetSpanID(sid(s.id))
	if s.parent != 0 {
		sp.SetParentSpanID(sid(s.parent))
	}
	sp.SetKind(s.kind)
	sp.SetName("op")
	sp.SetStartTimestamp(at(s.start))
	sp.SetEndTimestamp(at(s.end))
	sp.Attributes().PutStr("http.request.method", "GET")
	return td
}

type tracer interface{ traces() ptrace.Traces }

// out is what came out, by span id.
type out map[pcommon.SpanID]ptrace.Span

func (o out) span(t *testing.T, id uint64) ptrace.Span {
	t.Helper()
	sp, ok := o[sid(id)]
	if !ok {
		t.Fatalf("span %d did not come out", id)
	}
	return sp
}

// parent is the span's parent as a number (0: none).
func (o out) parent(t *testing.T, id uint64) uint64 {
	t.Helper()
	p := o.span(t, id).ParentSpanID()
	return binary.BigEndian.Uint64(p[:])
}

func (o out) key(t *testing.T, id uint64) string {
	t.Helper()
	v, ok := o.span(t, id).Attributes().Get(vocab.LinkKey)
	if !ok {
		return ""
	}
	return v.Str()
}

func (o out) trace(t *testing.T, id uint64) pcommon.TraceID {
	t.Helper()
	return o.span(t, id).TraceID()
}

func collect(tds ...ptrace.Traces) out {
	o := out{}
	for _, td := range tds {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			sss := td.ResourceSpans().At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				ss := sss.At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					o[ss.At(k).SpanID()] = ss.At(k)
				}
			}
		}
	}
	return o
}

// stitch runs spans through an engine (each in its own batch, in the order
// given) and returns what it sends at shutdown.
func stitchAll(t *testing.T, opt Options, spans ...tracer) (out, Result) {
	t.Helper()
	e := New(opt)
	for _, s := range spans {
		if r := e.Add(t0, s.traces()); r.Spans != 0 {
			t.Fatalf("spans sent before the wait: %d", r.Spans)
		}
	}
	res := e.Flush(t0.Add(time.Hour), true)
	return collect(res.Traces), res
}

// hop returns the captures of one request from a client process on agent
// ca to a server process on agent sa, µs times nested around [start, end].
func hop(base uint64, ca, sa string, start, end int64, seqReq, seqResp int64) []net {
	return []net{
		{id: base + 1, obs: "c-p", agent: ca, start: start, end: end, tcpReq: seqReq, tcpResp: seqResp},
		{id: base + 2, obs: "c", agent: ca, start: start + 10, end: end - 10, tcpReq: seqReq, tcpResp: seqResp},
		{id: base + 3, obs: "c-nd", agent: ca, start: start + 20, end: end - 20, tcpReq: seqReq, tcpResp: seqResp},
		{id: base + 4, obs: "s-nd", agent: sa, start: start + 120, end: end - 120, tcpReq: seqReq, tcpResp: seqResp},
		{id: base + 5, obs: "s", agent: sa, start: start + 130, end: end - 130, tcpReq: seqReq, tcpResp: seqResp},
		{id: base + 6, obs: "s-p", agent: sa, start: start + 140, end: end - 140, tcpReq: seqReq, tcpResp: seqResp},
	}
}

func tracers[T tracer](xs ...T) []tracer {
	out := make([]tracer, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}
