package translate

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
)

// benchSpan is a realistic Java web request: a server span with 30 events
// (controller, services, 10 SQL queries, 4 HTTP calls, an async hand-off)
// and an async chunk of 4 events.
func benchSpan() (*v1.PSpan, *v1.PSpanChunk) {
	s := &v1.PSpan{Version: 1, TransactionId: tx, SpanId: 123456789, ParentSpanId: -1, StartTime: t0, Elapsed: 120,
		ApiId: 1, ServiceType: 1010,
		AcceptEvent: &v1.PAcceptEvent{Rpc: "/cart/checkout", EndPoint: "front:8080", RemoteAddr: "10.0.0.9"},
		Annotation:  []*v1.PAnnotation{str(annHTTPMethod, "POST"), integer(annHTTPStatus, 200), str(annHTTPParam, "coupon=XMAS")}}
	seq := int32(0)
	add := func(depth, st, api int32, anns ...*v1.PAnnotation) *v1.PSpanEvent {
		e := ev(seq, depth, 1, 3, st, api)
		e.Annotation = anns
		seq++
		s.SpanEvent = append(s.SpanEvent, e)
		return e
	}
	add(1, 1011, 1)
	add(2, 5050, 2, str(-1, "c-1"))
	for i := 0; i < 10; i++ {
		add(3, 5000, 3)
		db := add(4, 2101, 4, &v1.PAnnotation{Key: annSQLID, Value: &v1.PAnnotationValue{Field: &v1.PAnnotationValue_IntStringStringValue{
			IntStringStringValue: &v1.PIntStringStringValue{IntValue: 11, StringValue1: wrapperspb.String("42"), StringValue2: wrapperspb.String("'c-1'")}}}})
		db.NextEvent = &v1.PNextEvent{Field: &v1.PNextEvent_MessageEvent{MessageEvent: &v1.PMessageEvent{NextSpanId: -1, EndPoint: "mysql-0:3306", DestinationId: "shop"}}}
	}
	for i := 0; i < 4; i++ {
		h := add(3, 9052, 5, str(annHTTPURL, "http://pricing:8080/price?cart=c-1"), integer(annHTTPStatus, 200))
		h.NextEvent = next(int64(1000+i), "pricing:8080")
	}
	for len(s.SpanEvent) < 29 {
		add(3, 5000, 6)
	}
	add(2, 5000, 7).AsyncEvent = 1
	c := &v1.PSpanChunk{Version: 1, TransactionId: tx, SpanId: 123456789, KeyTime: t0 + 50,
		LocalAsyncId: &v1.PLocalAsyncId{AsyncId: 1},
		SpanEvent:    []*v1.PSpanEvent{ev(0, 1, 0, 5, serviceTypeAsync, 0), ev(1, 2, 1, 3, 5000, 8), ev(2, 3, 1, 1, 5000, 6), ev(3, 3, 1, 1, 5000, 6)}}
	return s, c
}

// BenchmarkTranslate is the cost of conversion alone; events/s counts span
// events (the OTel spans are events + 1).
func BenchmarkTranslate(b *testing.B) {
	s, c := benchSpan()
	n := javaNames()
	tr := NewTranslator(Options{})
	bundle := Bundle{Span: s, Chunks: []*v1.PSpanChunk{c}}
	events := len(s.SpanEvent) + len(c.SpanEvent)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		spans := ptrace.NewSpanSlice()
		if _, err := tr.Translate(spans, "front-1", bundle, n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeAndTranslate adds decoding the protobuf messages, as the
// receiver does per message; MB/s is protobuf input.
func BenchmarkDecodeAndTranslate(b *testing.B) {
	s, c := benchSpan()
	sb, _ := proto.Marshal(&v1.PSpanMessage{Field: &v1.PSpanMessage_Span{Span: s}})
	cb, _ := proto.Marshal(&v1.PSpanMessage{Field: &v1.PSpanMessage_SpanChunk{SpanChunk: c}})
	n := javaNames()
	tr := NewTranslator(Options{})
	events := len(s.SpanEvent) + len(c.SpanEvent)
	b.SetBytes(int64(len(sb) + len(cb)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var sm, cm v1.PSpanMessage
		if err := proto.Unmarshal(sb, &sm); err != nil {
			b.Fatal(err)
		}
		if err := proto.Unmarshal(cb, &cm); err != nil {
			b.Fatal(err)
		}
		spans := ptrace.NewSpanSlice()
		if _, err := tr.Translate(spans, "front-1", Bundle{Span: sm.GetSpan(), Chunks: []*v1.PSpanChunk{cm.GetSpanChunk()}}, n); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
}
