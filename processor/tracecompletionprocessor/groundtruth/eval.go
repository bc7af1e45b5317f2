package groundtruth

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/vocab"
)

// Report compares stitched spans with the truth.
type Report struct {
	// Spans is the spans received; Missing the spans that should have come
	// out and did not; Unexpected the spans that should not have (unknown
	// ids, duplicates); Unmerged the one-way response rows that came out on
	// their own because their request row was not there (another
	// collector): they stand for their session in the checks below.
	Spans, Missing, Unexpected, Unmerged int
	// Made is the parent links the processor set (weft.link.key), Correct
	// those equal to the true parent, Ancestor those pointing at the true
	// parent or one of its ancestors (the best possible when the true
	// parent arrived too late or went to another collector).
	Made, Correct, Ancestor int
	// Needed is the stitchable links the input did not have; Found those
	// the output has. SameTrace* count the ones between spans exported with
	// the same trace id (what routing by trace id keeps on one collector).
	Needed, Found                   int
	SameTraceNeeded, SameTraceFound int
	// Unstitchable is the spans whose true parent the data does not reveal;
	// UnstitchableMislinked those the processor gave a wrong parent.
	Unstitchable, UnstitchableMislinked int
	// CrossTrace counts output parent links between spans of different true
	// requests; SharedTraceIDs output trace ids given to more than one
	// request; Broken links whose two ends got different trace ids.
	CrossTrace, SharedTraceIDs, Broken int
	// ByKey counts links made and correct, by weft.link.key.
	ByKey map[string][2]int
	// Late counts the late spans that came out linked to their true parent
	// or at least in their request's trace.
	LateSpans, LateJoined int
	// Sessions counts request rows that carry the merged response.
	Sessions int
	// Wrong lists a few wrong links, Missed a few stitchable links not
	// found, for failure messages.
	Wrong, Missed []string
	// Astray lists a few links to spans that are not ancestors.
	Astray []string
}

// Precision is the share of the processor's links that are right.
func (r Report) Precision() float64 {
	if r.Made == 0 {
		return 1
	}
	return float64(r.Correct) / float64(r.Made)
}

// Recall is the share of stitchable missing links the output has.
func (r Report) Recall() float64 {
	if r.Needed == 0 {
		return 1
	}
	return float64(r.Found) / float64(r.Needed)
}

func (r Report) String() string {
	return fmt.Sprintf("spans %d (missing %d, unexpected %d, unmerged %d); links made %d, correct %d (precision %.4f), "+
		"to an ancestor %d (%.4f); stitchable links needed %d, found %d (recall %.4f; same trace id %d/%d); "+
		"unstitchable %d, mislinked %d; cross-trace links %d, shared trace ids %d, broken %d; late %d, joined %d; "+
		"sessions %d; by key %v",
		r.Spans, r.Missing, r.Unexpected, r.Unmerged, r.Made, r.Correct, r.Precision(), r.Ancestor, r.AncestorPrecision(),
		r.Needed, r.Found, r.Recall(), r.SameTraceFound, r.SameTraceNeeded,
		r.Unstitchable, r.UnstitchableMislinked, r.CrossTrace, r.SharedTraceIDs, r.Broken, r.LateSpans, r.LateJoined,
		r.Sessions, r.ByKey)
}

// isAncestor says whether a is the true parent of span id or an ancestor.
func isAncestor(truth map[pcommon.SpanID]Truth, id, a pcommon.SpanID) bool {
	for steps := 0; steps < 64; steps++ {
		p := truth[id].Parent
		if p.IsEmpty() {
			return false
		}
		if p == a {
			return true
		}
		id = p
	}
	return false
}

// AncestorPrecision is the share of the processor's links that point at the
// true parent or an ancestor of it.
func (r Report) AncestorPrecision() float64 {
	if r.Made == 0 {
		return 1
	}
	return float64(r.Ancestor) / float64(r.Made)
}

// SameTraceRecall is Recall over the links between spans exported with one
// trace id.
func (r Report) SameTraceRecall() float64 {
	if r.SameTraceNeeded == 0 {
		return 1
	}
	return float64(r.SameTraceFound) / float64(r.SameTraceNeeded)
}

type outSpan struct {
	trace  pcommon.TraceID
	parent pcommon.SpanID
	key    string
}

// Evaluate checks the processor's output against the truth.
func Evaluate(truth map[pcommon.SpanID]Truth, out []ptrace.Traces) Report {
	r := Report{ByKey: map[string][2]int{}}
	spans := map[pcommon.SpanID]outSpan{}
	for _, td := range out {
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				ss := sss.At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					sp := ss.At(k)
					r.Spans++
					o := outSpan{trace: sp.TraceID(), parent: sp.ParentSpanID()}
					if v, ok := sp.Attributes().Get(vocab.LinkKey); ok {
						o.key = v.Str()
					}
					if _, dup := spans[sp.SpanID()]; dup {
						r.Unexpected++
					}
					if _, ok := sp.Attributes().Get(vocab.SessionResponseSpanID); ok {
						r.Sessions++
					}
					spans[sp.SpanID()] = o
				}
			}
		}
	}
	// An unmerged response row stands for its session.
	session := func(id pcommon.SpanID) pcommon.SpanID {
		if t, ok := truth[id]; ok && t.Absorbed {
			return t.Session
		}
		return id
	}
	requestsOf := map[pcommon.TraceID]map[int]bool{}
	for id, t := range truth {
		o, ok := spans[id]
		if t.Absorbed {
			if !ok {
				continue
			}
			r.Unmerged++
			st := truth[t.Session]
			st.InputTrace = t.InputTrace
			t = st
		} else if !ok {
			r.Missing++
			continue
		}
		rawParent := o.parent
		o.parent = session(o.parent)
		if requestsOf[o.trace] == nil {
			requestsOf[o.trace] = map[int]bool{}
		}
		requestsOf[o.trace][t.Request] = true
		if o.key != "" {
			r.Made++
			c := r.ByKey[o.key]
			c[0]++
			// A response row left unmerged may hang under its own request
			// row: the same capture.
			own := truth[id].Absorbed && o.parent == truth[id].Session
			if own || isAncestor(truth, session(id), o.parent) {
				r.Ancestor++
			} else if len(r.Astray) < 10 {
				r.Astray = append(r.Astray, fmt.Sprintf("%s %s (request %d, absorbed %v): parent %s (%s, request %d) by %s, truly %s",
					t.Point, id, t.Request, truth[id].Absorbed, rawParent, truth[rawParent].Point, truth[rawParent].Request, o.key, t.Parent))
			}
			if own || o.parent == t.Parent {
				r.Correct++
				c[1]++
			} else {
				if !t.Stitchable {
					r.UnstitchableMislinked++
				}
				if len(r.Wrong) < 10 {
					r.Wrong = append(r.Wrong, fmt.Sprintf("%s %s (%s, request %d): parent %s by %s, truly %s",
						t.Point, id, map[bool]string{true: "stitchable", false: "unstitchable"}[t.Stitchable],
						t.Request, o.parent, o.key, t.Parent))
				}
			}
			r.ByKey[o.key] = c
		}
		if !t.Parent.IsEmpty() && !truth[id].Absorbed {
			if t.Stitchable && t.Input != t.Parent {
				r.Needed++
				same := t.InputTrace == truth[t.Parent].InputTrace
				if same {
					r.SameTraceNeeded++
				}
				if o.parent == t.Parent {
					r.Found++
					if same {
						r.SameTraceFound++
					}
				} else if len(r.Missed) < 10 {
					r.Missed = append(r.Missed, fmt.Sprintf("%s %s (request %d): parent %s (%q), truly %s (%s)",
						t.Point, id, t.Request, o.parent, o.key, t.Parent, truth[t.Parent].Point))
				}
			}
			if !t.Stitchable {
				r.Unstitchable++
			}
		}
		if !o.parent.IsEmpty() {
			if pt, ok := truth[o.parent]; ok && pt.Request != t.Request {
				r.CrossTrace++
			}
			if po, ok := spans[rawParent]; ok && po.trace != o.trace {
				r.Broken++
			}
		}
		if truth[id].Absorbed {
			continue // counted with its session
		}
		if t.Late {
			r.LateSpans++
			if p, ok := spans[t.Parent]; (ok && p.trace == o.trace) || (o.parent == t.Parent && !t.Parent.IsEmpty()) {
				r.LateJoined++
			}
		}
	}
	for id := range spans {
		if _, ok := truth[id]; !ok {
			r.Unexpected++
		}
	}
	for _, reqs := range requestsOf {
		if len(reqs) > 1 {
			r.SharedTraceIDs++
		}
	}
	return r
}
