package translate

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/proto"

	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
)

// FuzzTranslate feeds arbitrary bytes, decoded as two span messages (a span
// and a chunk, or any mix), to the converter: it must never panic, and
// whatever it accepts must come out as valid OTel spans.
func FuzzTranslate(f *testing.F) {
	seed := func(msgs ...proto.Message) {
		var data [][]byte
		for _, m := range msgs {
			b, err := proto.Marshal(m)
			if err != nil {
				f.Fatal(err)
			}
			data = append(data, b)
		}
		for len(data) < 2 {
			data = append(data, nil)
		}
		f.Add(data[0], data[1])
	}
	wrapper := ev(0, 1, 1, 1, serviceTypeAsyncHTTPClientInternal, 0)
	wrapper.AsyncEvent = 7
	seed(&v1.PSpanMessage{Field: &v1.PSpanMessage_Span{Span: &v1.PSpan{Version: 1, TransactionId: tx, SpanId: 1, ParentSpanId: -1,
		StartTime: t0, Elapsed: 9, ServiceType: 1400, SpanEvent: []*v1.PSpanEvent{wrapper, ev(1, 0, 1, 1, 5000, 3), ev(2, 7, 1, 1, 2101, 4)},
		Annotation: []*v1.PAnnotation{integer(annHTTPStatus, 500), str(annHTTPURL, "h:1/p?q")}}}},
		&v1.PSpanMessage{Field: &v1.PSpanMessage_SpanChunk{SpanChunk: &v1.PSpanChunk{Version: 1, TransactionId: tx, SpanId: 1, KeyTime: t0,
			LocalAsyncId: &v1.PLocalAsyncId{AsyncId: 7}, SpanEvent: []*v1.PSpanEvent{ev(0, 1, 0, 1, 100, 0), ev(1, 2, 0, 1, 9056, 0)}}}})
	seed(&v1.PSpanMessage{Field: &v1.PSpanMessage_SpanChunk{SpanChunk: &v1.PSpanChunk{Version: 1, TransactionId: tx, SpanId: 2,
		SpanEvent: []*v1.PSpanEvent{ev(5, 3, -100, -1, -9, -2)}}}})
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01}, []byte{0xff, 0xff})

	n := javaNames()
	tr := NewTranslator(Options{SQLBindValues: true})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var bundle Bundle
		for _, data := range [][]byte{a, b} {
			var m v1.PSpanMessage
			if proto.Unmarshal(data, &m) != nil {
				continue
			}
			if s := m.GetSpan(); s != nil && bundle.Span == nil {
				bundle.Span = s
			}
			if c := m.GetSpanChunk(); c != nil {
				bundle.Chunks = append(bundle.Chunks, c)
			}
		}
		spans := ptrace.NewSpanSlice()
		r, err := tr.Translate(spans, "fuzz-agent", bundle, n)
		if err != nil {
			if spans.Len() != 0 {
				t.Fatalf("rejected bundle appended %d spans", spans.Len())
			}
			return
		}
		if r.Spans != spans.Len() {
			t.Fatalf("result says %d spans, slice has %d", r.Spans, spans.Len())
		}
		if r.Unresolved != Unresolved(bundle, n) {
			t.Fatalf("Unresolved() = %d, conversion left %d unresolved", Unresolved(bundle, n), r.Unresolved)
		}
		for i := 0; i < spans.Len(); i++ {
			s := spans.At(i)
			if s.TraceID().IsEmpty() || s.SpanID().IsEmpty() {
				t.Fatalf("span %d has an empty id", i)
			}
			if s.SpanID() == s.ParentSpanID() {
				t.Fatalf("span %d is its own parent", i)
			}
			if s.EndTimestamp() < s.StartTimestamp() && s.StartTimestamp() != 0 && s.EndTimestamp() != 0 {
				t.Fatalf("span %d ends before it starts", i)
			}
		}
	})
}
