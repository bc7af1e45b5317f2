package smartclickhouseexporter

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// The fixtures: what smart_encoding makes of telemetry from the pod
// cart-7d9f (id 5) of the Deployment cart (4) in namespace shop (3) on node
// node-a (2) of cluster prod (1), behind the service cart-svc (6), calling
// the pod db-0 (8) — the metadata rows of metadataFixture.

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)

func ts(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

// putIDs sets the local resource ids of the cart pod.
func putIDs(m pcommon.Map) {
	for k, v := range map[string]int64{
		"weft.vpc_id": 3, "weft.cluster_id": 1, "weft.node_id": 2, "weft.namespace_id": 3, "weft.workload_id": 4,
		"weft.workload_kind": 1, "weft.pod_id": 5, "weft.service_id": 6, "weft.auto_instance_type": 10,
		"weft.auto_instance_id": 5, "weft.auto_service_type": 11, "weft.auto_service_id": 6,
	} {
		m.PutInt(k, v)
	}
}

func testResource(r pcommon.Resource) {
	a := r.Attributes()
	a.PutStr("service.name", "cart")
	a.PutStr("k8s.pod.ip", "10.1.2.3")
	a.PutStr("k8s.container.name", "c")
	putIDs(a)
}

// testTraces: a server span with a peer and every kind of attribute, a
// client span whose peer attributes do not fit their columns, and a span
// from the year 2200 that cannot be stored.
func testTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	testResource(rs.Resource())
	rs.Resource().Attributes().PutStr("weft.observer.id", "agent-1")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("e2e")
	ss.Scope().SetVersion("1.0")

	s := ss.Spans().AppendEmpty()
	s.SetName("GET /cart")
	s.SetKind(ptrace.SpanKindServer)
	s.SetTraceID(pcommon.TraceID{0xa1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	s.SetSpanID(pcommon.SpanID{0xb1, 2, 3, 4, 5, 6, 7, 8})
	s.SetParentSpanID(pcommon.SpanID{0xc1, 2, 3, 4, 5, 6, 7, 8})
	s.TraceState().FromRaw("vendor=x")
	s.SetFlags(1)
	s.SetStartTimestamp(ts(t0))
	s.SetEndTimestamp(ts(t0.Add(50 * time.Millisecond)))
	s.Status().SetCode(ptrace.StatusCodeError)
	s.Status().SetMessage("boom")
	a := s.Attributes()
	a.PutStr("http.route", "/cart")
	a.PutInt("http.response.status_code", 500)
	a.PutStr("client.address", "10.1.9.9")
	a.PutStr("server.address", "10.1.2.3") // the server itself: not the peer
	a.PutInt("weft.peer.vpc_id", 3)
	a.PutInt("weft.peer.cluster_id", 1)
	a.PutInt("weft.peer.pod_id", 8)
	a.PutInt("weft.peer.auto_instance_type", 10)
	a.PutInt("weft.peer.auto_instance_id", 8)
	a.PutInt("weft.tcp.seq.request", 4000000000)
	a.PutInt("weft.tcp.seq.response", 17)
	a.PutInt("weft.syscall.trace_id.request", -2) // uint64 bit pattern
	a.PutInt("weft.syscall.cap_seq.response", 9)
	a.PutStr("weft.x_request_id.0", "xr-0")
	a.PutStr("weft.x_request_id.1", "xr-1")
	a.PutBool("weft.trace_id.synthetic", false)
	a.PutStr("weft.link.key", "tcp_seq")
	a.PutBool("weft.link.late", true)
	a.PutInt("weft.process.id", 4242)
	ev := s.Events().AppendEmpty()
	ev.SetName("retry")
	ev.SetTimestamp(ts(t0.Add(10 * time.Millisecond)))
	ev.Attributes().PutInt("attempt", 2)
	ln := s.Links().AppendEmpty()
	ln.SetTraceID(pcommon.TraceID{0xd1, 2})
	ln.SetSpanID(pcommon.SpanID{0xe1, 2})
	ln.TraceState().FromRaw("k=v")
	ln.Attributes().PutStr("link.kind", "follows")

	c := ss.Spans().AppendEmpty()
	c.SetName("SELECT carts")
	c.SetKind(ptrace.SpanKindClient)
	c.SetTraceID(s.TraceID())
	c.SetSpanID(pcommon.SpanID{0xb2})
	c.SetParentSpanID(s.SpanID())
	c.SetStartTimestamp(ts(t0.Add(time.Millisecond)))
	c.SetEndTimestamp(ts(t0.Add(9 * time.Millisecond)))
	c.Attributes().PutStr("server.address", "db.internal") // a host name: kept
	c.Attributes().PutInt("weft.peer.pod_id", 1<<40)       // too large for UInt32: kept
	c.Attributes().PutStr("weft.tcp.seq.request", "12")    // not an Int: kept
	c.Attributes().PutStr("weft.observation_point", "c-p")
	c.Attributes().PutStr("weft.signal_source", "ebpf")

	late := ss.Spans().AppendEmpty()
	late.SetName("from the future")
	late.SetStartTimestamp(ts(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)))
	late.SetEndTimestamp(ts(time.Date(2200, 1, 1, 0, 0, 1, 0, time.UTC)))
	return td
}

// testMetrics: one data point of every type, and one from 2200.
func testMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	testResource(rm.Resource())
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("e2e")

	g := sm.Metrics().AppendEmpty()
	g.SetName("cpu.usage")
	g.SetUnit("1")
	gp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gp.SetTimestamp(ts(t0))
	gp.SetDoubleValue(0.25)
	gp.Attributes().PutStr("cpu", "0")

	s := sm.Metrics().AppendEmpty()
	s.SetName("requests")
	s.SetDescription("requests served")
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	sp := sum.DataPoints().AppendEmpty()
	sp.SetStartTimestamp(ts(t0.Add(-time.Minute)))
	sp.SetTimestamp(ts(t0))
	sp.SetIntValue(42)
	sp.Attributes().PutStr("route", "/cart")

	h := sm.Metrics().AppendEmpty()
	h.SetName("checkout.latency")
	h.SetUnit("ms")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	hp := hist.DataPoints().AppendEmpty()
	hp.SetTimestamp(ts(t0))
	hp.SetCount(3)
	hp.SetSum(266)
	hp.SetMin(4)
	hp.SetMax(250)
	hp.ExplicitBounds().FromRaw([]float64{5, 10})
	hp.BucketCounts().FromRaw([]uint64{1, 1, 1})

	e := sm.Metrics().AppendEmpty()
	e.SetName("exp.latency")
	ep := e.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
	ep.SetTimestamp(ts(t0))
	ep.SetCount(4)
	ep.SetScale(2)
	ep.SetZeroCount(1)
	ep.Positive().SetOffset(-1)
	ep.Positive().BucketCounts().FromRaw([]uint64{2, 1})

	q := sm.Metrics().AppendEmpty()
	q.SetName("rpc.duration")
	qp := q.SetEmptySummary().DataPoints().AppendEmpty()
	qp.SetTimestamp(ts(t0))
	qp.SetCount(10)
	qp.SetSum(5)
	qv := qp.QuantileValues().AppendEmpty()
	qv.SetQuantile(0.99)
	qv.SetValue(1.5)

	late := sm.Metrics().AppendEmpty()
	late.SetName("late")
	late.SetEmptyGauge().DataPoints().AppendEmpty().SetTimestamp(ts(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)))
	return md
}

// testLogs: a record from a host with an IPv6 address, and one from 2200.
func testLogs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	a := rl.Resource().Attributes()
	a.PutStr("service.name", "cart")
	a.PutStr("host.ip", "2001:db8::1")
	putIDs(a)
	sl := rl.ScopeLogs().AppendEmpty()
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(ts(t0))
	lr.SetObservedTimestamp(ts(t0.Add(time.Second)))
	lr.SetSeverityNumber(plog.SeverityNumberWarn)
	lr.SetSeverityText("WARN")
	lr.Body().SetStr("payment declined")
	lr.SetTraceID(pcommon.TraceID{0xa1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	lr.SetSpanID(pcommon.SpanID{0xb1, 2, 3, 4, 5, 6, 7, 8})
	lr.Attributes().PutStr("order.id", "A-1001")
	late := sl.LogRecords().AppendEmpty()
	late.SetTimestamp(ts(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)))
	return ld
}
