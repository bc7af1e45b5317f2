package smartclickhouseexporter

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
	"github.com/weftobs/weft/internal/vocab"
)

var (
	legacy = schema.FeaturesOf(schema.Version{Major: 18, Minor: 16})
	modern = schema.FeaturesOf(schema.Version{Major: 26, Minor: 5})
)

func TestLocalSide(t *testing.T) {
	tests := []struct {
		kind ptrace.SpanKind
		op   string
		want int
	}{
		{ptrace.SpanKindServer, "", 1},
		{ptrace.SpanKindConsumer, "", 1},
		{ptrace.SpanKindClient, "", 0},
		{ptrace.SpanKindProducer, "", 0},
		// The kind wins over the observation point.
		{ptrace.SpanKindClient, vocab.ObservationPointServerNIC, 0},
		// Without a side of its own, the observation point decides.
		{ptrace.SpanKindInternal, vocab.ObservationPointServerProcess, 1},
		{ptrace.SpanKindUnspecified, vocab.ObservationPointServerGatewayHV, 1},
		{ptrace.SpanKindInternal, vocab.ObservationPointClientProcess, 0},
		{ptrace.SpanKindInternal, vocab.ObservationPointApp, 0},
		{ptrace.SpanKindInternal, vocab.ObservationPointLocal, 0},
		{ptrace.SpanKindInternal, "", 0},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, localSide(tt.kind, tt.op), "%s %q", tt.kind, tt.op)
	}
}

// spanColumns converts one span under a resource and returns its columns.
func spanColumns(t *testing.T, f schema.Features, res func(pcommon.Map), span func(ptrace.Span)) map[string]any {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	res(rs.Resource().Attributes())
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetStartTimestamp(ts(t0))
	s.SetEndTimestamp(ts(t0.Add(time.Second)))
	span(s)
	var rows spanRows
	skip := skipped{}
	rows.addTraces(td, skip)
	require.Empty(t, skip)
	require.Equal(t, 1, rows.n)
	return rows.columns(f)
}

func first[T any](t *testing.T, cols map[string]any, name string) T {
	t.Helper()
	v, ok := cols[name].([]T)
	require.True(t, ok, "%s is %T", name, cols[name])
	require.Len(t, v, 1)
	return v[0]
}

func TestSideMapping(t *testing.T) {
	res := func(m pcommon.Map) {
		m.PutInt(vocab.PodID, 5)
		m.PutInt(vocab.ClusterID, 1)
		m.PutStr("k8s.pod.ip", "10.1.2.3")
	}
	peer := func(kind ptrace.SpanKind) func(ptrace.Span) {
		return func(s ptrace.Span) {
			s.SetKind(kind)
			s.Attributes().PutInt(vocab.PeerPrefix+"pod_id", 8)
			s.Attributes().PutStr("network.peer.address", "10.9.9.9")
		}
	}
	tests := []struct {
		kind       ptrace.SpanKind
		pod0, pod1 uint32
		ip0, ip1   uint32
	}{
		{ptrace.SpanKindServer, 8, 5, 0x0a090909, 0x0a010203},
		{ptrace.SpanKindConsumer, 8, 5, 0x0a090909, 0x0a010203},
		{ptrace.SpanKindClient, 5, 8, 0x0a010203, 0x0a090909},
		{ptrace.SpanKindProducer, 5, 8, 0x0a010203, 0x0a090909},
	}
	for _, tt := range tests {
		cols := spanColumns(t, legacy, res, peer(tt.kind))
		assert.Equal(t, tt.pod0, first[uint32](t, cols, "pod_id_0"), tt.kind.String())
		assert.Equal(t, tt.pod1, first[uint32](t, cols, "pod_id_1"), tt.kind.String())
		assert.Equal(t, tt.ip0, first[uint32](t, cols, "ip4_0"), tt.kind.String())
		assert.Equal(t, tt.ip1, first[uint32](t, cols, "ip4_1"), tt.kind.String())
		assert.Equal(t, uint16(1), first[uint16](t, cols, map[bool]string{true: "cluster_id_1", false: "cluster_id_0"}[tt.pod1 == 5]))
	}
	// An internal span: the local side only, on side 0; the peer IP
	// attribute is not looked at and stays.
	cols := spanColumns(t, legacy, res, func(s ptrace.Span) {
		s.SetKind(ptrace.SpanKindInternal)
		s.Attributes().PutStr("network.peer.address", "10.9.9.9")
	})
	assert.Equal(t, uint32(5), first[uint32](t, cols, "pod_id_0"))
	assert.Equal(t, uint32(0), first[uint32](t, cols, "pod_id_1"))
	assert.Equal(t, []string{"network.peer.address"}, first[[]string](t, cols, "attr_names"))
	assert.Equal(t, "app", first[string](t, cols, "observation_point"))
}

func TestAttributeSplitting(t *testing.T) {
	cols := spanColumns(t, legacy, func(m pcommon.Map) {
		m.PutStr("service.name", "cart")
		m.PutInt(vocab.PodID, 5)
		m.PutInt(vocab.NamespaceID, 70000) // too large for UInt16: kept
		m.PutStr(vocab.NodeID, "12")       // not an Int: kept
		m.PutStr("k8s.pod.ip", "not-an-ip")
		m.PutStr("host.ip", "10.1.2.3") // the first IP found
		m.PutStr("k8s.container.name", "c")
		m.PutStr(vocab.ObserverID, "agent-1")
	}, func(s ptrace.Span) {
		s.SetKind(ptrace.SpanKindServer)
		a := s.Attributes()
		a.PutStr("http.route", "/")
		a.PutStr("server.address", "10.1.2.3") // the server itself on a server span: kept
		a.PutStr("client.address", "fe80::1%eth0")
		a.PutStr("network.peer.address", "::ffff:10.9.9.9") // mapped IPv4 -> ip4
		a.PutInt(vocab.TCPSeqRequest, 1<<33)                // out of range: kept
		a.PutInt(vocab.TCPSeqResponse, 7)
		a.PutStr(vocab.ObserverID, "agent-2") // the span wins
		a.PutBool(vocab.TraceIDSynthetic, true)
		a.PutStr("weft.something.new", "x") // unknown weft attributes stay
		a.PutEmptySlice("list").AppendEmpty().SetInt(1)
	})
	assert.Equal(t, "cart", first[string](t, cols, "service_name"))
	assert.Equal(t, []string{vocab.NamespaceID, vocab.NodeID, "k8s.pod.ip", "k8s.container.name"}, first[[]string](t, cols, "resource_names"))
	assert.Equal(t, []string{"70000", "12", "not-an-ip", "c"}, first[[]string](t, cols, "resource_values"))
	assert.Equal(t, []string{"http.route", "server.address", "client.address", vocab.TCPSeqRequest, "weft.something.new", "list"},
		first[[]string](t, cols, "attr_names"))
	assert.Equal(t, []string{"/", "10.1.2.3", "fe80::1%eth0", "8589934592", "x", "[1]"}, first[[]string](t, cols, "attr_values"))
	assert.Equal(t, uint32(5), first[uint32](t, cols, "pod_id_1"))
	assert.Equal(t, uint16(0), first[uint16](t, cols, "namespace_id_1"))
	assert.Equal(t, uint32(0x0a010203), first[uint32](t, cols, "ip4_1"))
	assert.Equal(t, uint32(0x0a090909), first[uint32](t, cols, "ip4_0"))
	assert.Equal(t, uint32(0), first[uint32](t, cols, "tcp_seq_request"))
	assert.Equal(t, uint32(7), first[uint32](t, cols, "tcp_seq_response"))
	assert.Equal(t, "agent-2", first[string](t, cols, "observer_id"))
	assert.Equal(t, int8(2), first[int8](t, cols, "trace_id_synthetic"))
	assert.Equal(t, "s-app", first[string](t, cols, "observation_point"))
	assert.Equal(t, "app", first[string](t, cols, "signal_source"))
}

func TestModernColumnTypes(t *testing.T) {
	cols := spanColumns(t, modern, func(m pcommon.Map) { m.PutStr("host.ip", "2001:db8::1") }, func(s ptrace.Span) {
		s.Events().AppendEmpty().SetTimestamp(ts(t0))
	})
	assert.Equal(t, t0, first[time.Time](t, cols, "start_time"))
	assert.Equal(t, [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}, first[[16]byte](t, cols, "ip6_0"))
	assert.Equal(t, []time.Time{t0}, first[[]time.Time](t, cols, "events.time"))
	cols = spanColumns(t, legacy, func(m pcommon.Map) { m.PutStr("host.ip", "2001:db8::1") }, func(ptrace.Span) {})
	assert.Equal(t, uint64(t0.UnixNano()), first[uint64](t, cols, "start_time"))
	assert.Equal(t, []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}, first[[]byte](t, cols, "ip6_0"))
}

func TestEveryColumnHasValues(t *testing.T) {
	for _, f := range []schema.Features{legacy, modern} {
		var spans spanRows
		spans.addTraces(testTraces(), skipped{})
		var metrics metricRows
		metrics.addMetrics(testMetrics(), skipped{})
		var logs logRows
		logs.addLogs(testLogs(), skipped{})
		for _, tc := range []struct {
			table schema.Table
			n     int
			cols  map[string]any
		}{{schema.Spans, spans.n, spans.columns(f)}, {schema.Metrics, metrics.n, metrics.columns(f)}, {schema.Logs, logs.n, logs.columns(f)}} {
			assert.Len(t, tc.cols, len(tc.table.Columns), tc.table.Name)
			for _, c := range tc.table.Columns {
				v, ok := tc.cols[c.Name]
				if assert.True(t, ok, "%s.%s has no values", tc.table.Name, c.Name) {
					assert.Equal(t, tc.n, lenOf(v), "%s.%s", tc.table.Name, c.Name)
				}
			}
		}
	}
}

func lenOf(v any) int { return reflect.ValueOf(v).Len() }

func TestBadRecordsAreSkipped(t *testing.T) {
	skip := skipped{}
	var spans spanRows
	spans.addTraces(testTraces(), skip)
	assert.Equal(t, 2, spans.n)
	var metrics metricRows
	metrics.addMetrics(testMetrics(), skip)
	assert.Equal(t, 5, metrics.n)
	var logs logRows
	logs.addLogs(testLogs(), skip)
	assert.Equal(t, 1, logs.n)
	assert.Equal(t, skipped{reasonTimestamp: 3}, skip)

	// The last second DateTime holds is fine; the next is not. An event
	// out of range takes its span with it.
	assert.True(t, timeOK(pcommon.Timestamp(uint64(math.MaxUint32)*1e9)))
	assert.False(t, timeOK(pcommon.Timestamp((uint64(math.MaxUint32)+1)*1e9)))
	td := ptrace.NewTraces()
	s := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.Events().AppendEmpty().SetTimestamp(pcommon.Timestamp(math.MaxUint64))
	spans = spanRows{}
	skip = skipped{}
	spans.addTraces(td, skip)
	assert.Equal(t, 0, spans.n)
	assert.Equal(t, int64(1), skip[reasonTimestamp])
}

func TestUnknownEnumsAreUnspecified(t *testing.T) {
	cols := spanColumns(t, legacy, func(pcommon.Map) {}, func(s ptrace.Span) {
		s.SetKind(ptrace.SpanKind(42))
		s.Status().SetCode(ptrace.StatusCode(9))
	})
	assert.Equal(t, int8(0), first[int8](t, cols, "kind"))
	assert.Equal(t, int8(0), first[int8](t, cols, "status_code"))
}

func TestCandidates(t *testing.T) {
	c := newCandidates()
	now := time.Unix(1_800_000_000, 0)
	res := []string{"k8s.container.name"}
	resV := []string{"c"}
	b := c.batch("spans", now)
	b.add(scopeAttribute, []string{"http.route", "http.url"}, []string{"/cart", "/cart?id=" + string(make([]byte, candidateMaxLen))})
	b.add(scopeAttribute, []string{"http.route"}, []string{"/cart"})
	b.add(scopeResource, res, resV)
	b.add(scopeResource, res, resV) // the same resource slice: looked at once
	names, values := b.fresh()
	assert.Len(t, names, 3, "http.route, http.url, k8s.container.name")
	require.Len(t, values, 2, "the long URL is no candidate")
	assert.Equal(t, candidateRow{table: "spans", scope: scopeAttribute, name: "http.route", value: "/cart", key: values[0].key}, values[0])

	// Seen: not written again within the refresh period, again after.
	b = c.batch("spans", now.Add(time.Minute))
	b.add(scopeAttribute, []string{"http.route"}, []string{"/cart"})
	names, values = b.fresh()
	assert.Empty(t, names)
	assert.Empty(t, values)
	b = c.batch("spans", now.Add(candidateRefresh+time.Minute))
	b.add(scopeAttribute, []string{"http.route"}, []string{"/cart"})
	names, values = b.fresh()
	assert.Len(t, names, 1)
	assert.Len(t, values, 1)

	// Forgotten after a failed write: written with the next request.
	c.forget(names, values)
	b = c.batch("spans", now.Add(candidateRefresh+2*time.Minute))
	b.add(scopeAttribute, []string{"http.route"}, []string{"/cart"})
	names, values = b.fresh()
	assert.Len(t, names, 1)
	assert.Len(t, values, 1)

	// A name with too many values stops adding them.
	b = c.batch("logs", now)
	for i := 0; i < candidateMaxValues+10; i++ {
		b.add(scopeAttribute, []string{"request.id"}, []string{fmt.Sprint(i)})
	}
	names, values = b.fresh()
	assert.Len(t, names, 1)
	assert.Len(t, values, candidateMaxValues)

	// Names that carry ids stop being tracked past a bound, until the
	// next period.
	c = newCandidates()
	b = c.batch("logs", now)
	for i := 0; i < candidateMaxNames+10; i++ {
		b.add(scopeAttribute, []string{fmt.Sprintf("http.request.header.x-%d", i)}, []string{"v"})
	}
	names, values = b.fresh()
	assert.Len(t, names, candidateMaxNames)
	assert.Len(t, values, candidateMaxNames)
	assert.Len(t, c.counts, candidateMaxNames)
	b = c.batch("logs", now.Add(candidateRefresh+time.Minute))
	b.add(scopeAttribute, []string{"http.request.header.x-late"}, []string{"v"})
	names, _ = b.fresh()
	assert.Len(t, names, 1, "a new period has room again")
}

func TestErrorClassification(t *testing.T) {
	red := newRedactor("hunter2-secret")
	perm := red.insertError("weft.spans", &clickhouse.Exception{Code: 16, Message: "No such column foo in table weft.spans"})
	assert.True(t, consumererror.IsPermanent(perm))
	assert.Contains(t, perm.Error(), "No such column foo")
	retry := red.insertError("weft.spans", &clickhouse.Exception{Code: 252, Message: "Too many parts"})
	assert.False(t, consumererror.IsPermanent(retry))
	assert.False(t, consumererror.IsPermanent(red.insertError("weft.spans", &net.OpError{Op: "dial", Err: errors.New("connection refused")})))
	assert.False(t, consumererror.IsPermanent(red.insertError("weft.spans", io.EOF)))
	// A secret echoed by the server is removed, quoted or not.
	leak := red.insertError("weft.spans", &clickhouse.Exception{Code: 62, Message: "Syntax error near PASSWORD 'hunter2-secret'"})
	assert.NotContains(t, leak.Error(), "hunter2")
	assert.Contains(t, leak.Error(), "[REDACTED]")
	assert.Nil(t, red.Error(nil))
	assert.Equal(t, "no secrets here", newRedactor("", "ab").String("no secrets here"), "an empty secret redacts nothing; a short one only where it appears as a password")
}

func TestHosts(t *testing.T) {
	assert.Equal(t, []string{"ch1:9000", "ch2:9000"}, hosts("tcp://ch1:9000, ch2:9000"))
	assert.Equal(t, []string{"127.0.0.1:9000"}, hosts("clickhouse://127.0.0.1:9000"))
}
