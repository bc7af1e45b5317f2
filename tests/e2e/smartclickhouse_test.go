package e2e

import (
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftobs/weft/tests/harness"
)

// smartClickHouseConfig is a weftcol pipeline from OTLP to smart_clickhouse
// with a persistent queue in storageDir. exporter is extra YAML under the
// exporter (indented by four spaces).
func smartClickHouseConfig(endpoint, storageDir, exporter string) string {
	return fmt.Sprintf(`extensions:
  health_check:
    endpoint: ${env:WEFT_HEALTH_ENDPOINT}
  file_storage:
    directory: %s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:WEFT_OTLP_GRPC_ENDPOINT}
exporters:
  smart_clickhouse:
    endpoint: %s
    database: weft
    sending_queue:
      storage: file_storage
      batch:
        flush_timeout: 100ms
        min_size: 500
%s
service:
  extensions: [health_check, file_storage]
  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: ${env:WEFT_TELEMETRY_HOST}
                port: ${env:WEFT_TELEMETRY_PORT}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [smart_clickhouse]
    metrics:
      receivers: [otlp]
      exporters: [smart_clickhouse]
    logs:
      receivers: [otlp]
      exporters: [smart_clickhouse]
`, storageDir, endpoint, exporter)
}

var chT0 = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)

func chTS(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

// putCartIDs sets what smart_encoding writes for the pod cart-7d9f (id 15)
// of the Deployment cart (14) in namespace shop (13) on node node-a (12) of
// cluster prod (7), behind the service cart-svc (16): the rows
// insertMetadata puts into the k8s_metadata database.
func putCartIDs(m pcommon.Map) {
	for k, v := range map[string]int64{
		"weft.vpc_id": 3, "weft.cluster_id": 7, "weft.node_id": 12, "weft.namespace_id": 13, "weft.workload_id": 14,
		"weft.workload_kind": 1, "weft.pod_id": 15, "weft.service_id": 16, "weft.auto_instance_type": 10,
		"weft.auto_instance_id": 15, "weft.auto_service_type": 11, "weft.auto_service_id": 16,
	} {
		m.PutInt(k, v)
	}
}

// insertMetadata writes the resources the ids above name into the ch_
// tables the k8s_metadata extension created.
func insertMetadata(t *testing.T, db *sql.DB) {
	for _, s := range []string{
		"INSERT INTO ch_cluster (id, name, deleted, updated_at) VALUES (7, 'prod', 0, UTC_TIMESTAMP(6))",
		"INSERT INTO ch_node (id, name, cluster_id, deleted, updated_at) VALUES (12, 'node-a', 7, 0, UTC_TIMESTAMP(6))",
		"INSERT INTO ch_namespace (id, name, cluster_id, deleted, updated_at) VALUES (13, 'shop', 7, 0, UTC_TIMESTAMP(6))",
		"INSERT INTO ch_workload (id, name, cluster_id, namespace_id, workload_kind, deleted, updated_at) VALUES (14, 'cart', 7, 13, 1, 0, UTC_TIMESTAMP(6))",
		"INSERT INTO ch_pod (id, name, cluster_id, namespace_id, node_id, workload_id, workload_kind, service_id, deleted, updated_at) VALUES (15, 'cart-7d9f', 7, 13, 12, 14, 1, 16, 0, UTC_TIMESTAMP(6))",
		"INSERT INTO ch_pod (id, name, cluster_id, namespace_id, node_id, workload_id, workload_kind, service_id, deleted, updated_at) VALUES (18, 'db-0', 7, 13, 12, 0, 0, 0, 0, UTC_TIMESTAMP(6))",
		"INSERT INTO ch_service (id, name, cluster_id, namespace_id, service_type, deleted, updated_at) VALUES (16, 'cart-svc', 7, 13, 'ClusterIP', 0, UTC_TIMESTAMP(6))",
		"INSERT INTO ch_pod_label (id, `key`, value, updated_at) VALUES (15, 'app', 'cart', UTC_TIMESTAMP(6))",
	} {
		_, err := db.Exec(s)
		require.NoError(t, err, s)
	}
}

// migrateMetadata creates the k8s_metadata schema (with its ch_ tables) in
// the database the way production does: weftcol's k8s_metadata extension
// migrates it at start (watch: false, so no API server is needed).
func migrateMetadata(t *testing.T, meta *harness.Database, db *sql.DB) {
	col := harness.StartCollector(t, fmt.Sprintf(`extensions:
  health_check:
    endpoint: ${env:WEFT_HEALTH_ENDPOINT}
  k8s_metadata:
    cluster_name: e2e
    watch: false
    database:
      driver: mysql
      dsn: %s
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:WEFT_OTLP_GRPC_ENDPOINT}
exporters:
  debug:
service:
  extensions: [health_check, k8s_metadata]
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
`, strings.TrimSuffix(meta.DSN, "?parseTime=true")))
	harness.WaitFor(t, 60*time.Second, "the k8s_metadata schema", func() error {
		// The migration is recorded after its last table is created.
		var n int
		if err := db.QueryRow("SELECT count(*) FROM weft_schema_migrations WHERE version = 1").Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("migration 1 not applied yet")
		}
		return nil
	})
	require.NoError(t, col.Signal(syscall.SIGTERM))
	require.NoError(t, col.Wait(30*time.Second))
}

func chQuery(t *testing.T, ch *harness.ClickHouse, sql string) string {
	t.Helper()
	return strings.TrimSuffix(ch.MustQuery(t, sql), "\n")
}

// chRow reads one row as column name -> TSV text.
func chRow(t *testing.T, ch *harness.ClickHouse, sql string) map[string]string {
	t.Helper()
	lines := strings.Split(chQuery(t, ch, sql+" FORMAT TSVWithNames"), "\n")
	require.Len(t, lines, 2, "%s: want one row", sql)
	names, values := strings.Split(lines[0], "\t"), strings.Split(lines[1], "\t")
	require.Len(t, values, len(names))
	row := map[string]string{}
	for i, n := range names {
		row[n] = values[i]
	}
	return row
}

const zeroIPv6 = `\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0`

// idColumns are the expected id columns of a side (suffix) or of metrics
// and logs; peer true gives the db-0 pod's, false the cart pod's.
func idColumns(row map[string]string, suffix string, peer bool) {
	vals := map[string]string{"vpc_id": "3", "cluster_id": "7", "node_id": "12", "namespace_id": "13", "workload_id": "14",
		"workload_kind": "1", "pod_id": "15", "service_id": "16", "host_id": "0", "auto_instance_type": "10",
		"auto_instance_id": "15", "auto_service_type": "11", "auto_service_id": "16"}
	if peer {
		vals = map[string]string{"vpc_id": "3", "cluster_id": "7", "node_id": "0", "namespace_id": "0", "workload_id": "0",
			"workload_kind": "0", "pod_id": "18", "service_id": "0", "host_id": "0", "auto_instance_type": "10",
			"auto_instance_id": "18", "auto_service_type": "0", "auto_service_id": "0"}
	}
	for k, v := range vals {
		row[k+suffix] = v
	}
}

// TestSmartClickHouse sends spans, metrics and logs over OTLP through a
// real weftcol into a real ClickHouse 18.16 (the first of two endpoints is
// dead), with dictionaries written as XML reading the MariaDB database that
// the real k8s_metadata extension created: every column is read back, and
// names come back through the decoding views.
func TestSmartClickHouse(t *testing.T) {
	ch := harness.StartClickHouse(t)
	meta := harness.MariaDB(t)
	mdb, err := sql.Open("mysql", meta.DSN)
	require.NoError(t, err)
	defer mdb.Close()
	migrateMetadata(t, meta, mdb)
	insertMetadata(t, mdb)

	storage := t.TempDir()
	endpoint := fmt.Sprintf("tcp://127.0.0.1:%d,%s", harness.FreePort(t), ch.TCPAddr)
	col := harness.StartCollector(t, smartClickHouseConfig(endpoint, storage, fmt.Sprintf(`    dictionaries:
      source: {driver: mysql, host: %s, port: %d, user: %s, database: %s}
      lifetime: 5s
      xml_dir: %s`, meta.Host, meta.Port, meta.User, meta.Name, ch.DictionariesDir)))

	conn, err := grpc.NewClient(col.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx := t.Context()

	// Traces: a server span calling out, a client span, one from 2200.
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", "cart")
	ra.PutStr("k8s.pod.ip", "10.1.2.3")
	ra.PutStr("k8s.container.name", "c")
	ra.PutStr("weft.observer.id", "agent-1")
	putCartIDs(ra)
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
	s.SetStartTimestamp(chTS(chT0))
	s.SetEndTimestamp(chTS(chT0.Add(50 * time.Millisecond)))
	s.Status().SetCode(ptrace.StatusCodeError)
	s.Status().SetMessage("boom")
	a := s.Attributes()
	a.PutStr("http.route", "/cart")
	a.PutInt("http.response.status_code", 500)
	a.PutStr("client.address", "10.1.9.9")
	a.PutStr("server.address", "10.1.2.3")
	for k, v := range map[string]int64{"weft.peer.vpc_id": 3, "weft.peer.cluster_id": 7, "weft.peer.pod_id": 18,
		"weft.peer.auto_instance_type": 10, "weft.peer.auto_instance_id": 18, "weft.tcp.seq.request": 4000000000,
		"weft.tcp.seq.response": 17, "weft.syscall.trace_id.request": -2, "weft.syscall.trace_id.response": 6,
		"weft.syscall.cap_seq.request": 8, "weft.syscall.cap_seq.response": 9, "weft.process.id": 4242,
		"weft.flow.id": 77, "weft.l7.request_id": 5} {
		a.PutInt(k, v)
	}
	for k, v := range map[string]string{"weft.x_request_id.0": "xr-0", "weft.x_request_id.1": "xr-1",
		"weft.propagated.span_id": "c102030405060708", "weft.message.type": "session", "weft.l7.protocol": "HTTP",
		"weft.link.key": "tcp_seq", "weft.link.original_parent_span_id": "0102030405060708",
		"weft.session.response_span_id": "0807060504030201"} {
		a.PutStr(k, v)
	}
	a.PutBool("weft.trace_id.synthetic", false)
	a.PutBool("weft.link.late", true)
	ev := s.Events().AppendEmpty()
	ev.SetName("retry")
	ev.SetTimestamp(chTS(chT0.Add(10 * time.Millisecond)))
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
	c.SetStartTimestamp(chTS(chT0.Add(time.Millisecond)))
	c.SetEndTimestamp(chTS(chT0.Add(9 * time.Millisecond)))
	c.Attributes().PutStr("server.address", "db.internal")
	c.Attributes().PutInt("weft.peer.pod_id", 18)
	late := ss.Spans().AppendEmpty()
	late.SetName("from 2200")
	late.SetStartTimestamp(chTS(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)))
	late.SetEndTimestamp(late.StartTimestamp())
	_, err = ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	require.NoError(t, err)

	// Metrics: a histogram and one point of every other type.
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "cart")
	rm.Resource().Attributes().PutStr("k8s.pod.ip", "10.1.2.3")
	putCartIDs(rm.Resource().Attributes())
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("e2e")
	h := sm.Metrics().AppendEmpty()
	h.SetName("checkout.latency")
	h.SetDescription("checkout latency")
	h.SetUnit("ms")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	hp := hist.DataPoints().AppendEmpty()
	hp.SetStartTimestamp(chTS(chT0.Add(-time.Minute)))
	hp.SetTimestamp(chTS(chT0))
	hp.SetCount(3)
	hp.SetSum(266)
	hp.SetMin(4)
	hp.SetMax(250)
	hp.ExplicitBounds().FromRaw([]float64{5, 10})
	hp.BucketCounts().FromRaw([]uint64{1, 1, 1})
	hp.Attributes().PutStr("route", "/cart")
	g := sm.Metrics().AppendEmpty()
	g.SetName("cpu.usage")
	gp := g.SetEmptyGauge().DataPoints().AppendEmpty()
	gp.SetTimestamp(chTS(chT0))
	gp.SetDoubleValue(0.25)
	sum := sm.Metrics().AppendEmpty()
	sum.SetName("requests")
	ssum := sum.SetEmptySum()
	ssum.SetIsMonotonic(true)
	ssum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	sp := ssum.DataPoints().AppendEmpty()
	sp.SetTimestamp(chTS(chT0))
	sp.SetIntValue(42)
	e := sm.Metrics().AppendEmpty()
	e.SetName("exp.latency")
	ep := e.SetEmptyExponentialHistogram().DataPoints().AppendEmpty()
	ep.SetTimestamp(chTS(chT0))
	ep.SetCount(4)
	ep.SetScale(2)
	ep.SetZeroCount(1)
	ep.Positive().SetOffset(-1)
	ep.Positive().BucketCounts().FromRaw([]uint64{2, 1})
	ep.Negative().SetOffset(3)
	ep.Negative().BucketCounts().FromRaw([]uint64{1})
	q := sm.Metrics().AppendEmpty()
	q.SetName("rpc.duration")
	qp := q.SetEmptySummary().DataPoints().AppendEmpty()
	qp.SetTimestamp(chTS(chT0))
	qp.SetCount(10)
	qp.SetSum(5)
	qv := qp.QuantileValues().AppendEmpty()
	qv.SetQuantile(0.99)
	qv.SetValue(1.5)
	_, err = pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md))
	require.NoError(t, err)

	// Logs: a record from a host with an IPv6 address.
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "cart")
	rl.Resource().Attributes().PutStr("host.ip", "2001:db8::1")
	rl.Resource().Attributes().PutStr("deployment.environment", "prod")
	putCartIDs(rl.Resource().Attributes())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("e2e")
	sl.Scope().SetVersion("2.0")
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(chTS(chT0))
	lr.SetObservedTimestamp(chTS(chT0.Add(time.Second)))
	lr.SetSeverityNumber(plog.SeverityNumberWarn)
	lr.SetSeverityText("WARN")
	lr.SetEventName("payment.declined")
	lr.Body().SetStr("payment declined")
	lr.SetTraceID(s.TraceID())
	lr.SetSpanID(s.SpanID())
	lr.SetFlags(1)
	lr.Attributes().PutStr("order.id", "A-1001")
	_, err = plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(ld))
	require.NoError(t, err)

	harness.WaitFor(t, 30*time.Second, "rows in ClickHouse", func() error {
		got := chQuery(t, ch, "SELECT (SELECT count() FROM weft.spans), (SELECT count() FROM weft.metrics), (SELECT count() FROM weft.logs)")
		if got != "2\t5\t1" {
			return fmt.Errorf("spans, metrics, logs: %s", got)
		}
		return nil
	})

	// Every column of the server span.
	want := map[string]string{
		"time": "2026-01-02 03:04:05", "start_time": "1767323045123456789", "end_time": "1767323045173456789",
		"duration": "50000000", "trace_id": "a102030405060708090a0b0c0d0e0f10", "span_id": "b102030405060708",
		"parent_span_id": "c102030405060708", "trace_state": "vendor=x", "flags": "1", "name": "GET /cart",
		"kind": "server", "status_code": "error", "status_message": "boom", "service_name": "cart",
		"scope_name": "e2e", "scope_version": "1.0", "observation_point": "s-app", "signal_source": "app",
		"observer_id": "agent-1", "process_id": "4242", "syscall_trace_id_request": "18446744073709551614",
		"syscall_trace_id_response": "6", "syscall_cap_seq_request": "8", "syscall_cap_seq_response": "9",
		"tcp_seq_request": "4000000000", "tcp_seq_response": "17", "x_request_id_0": "xr-0", "x_request_id_1": "xr-1",
		"propagated_span_id": "c102030405060708", "trace_id_synthetic": "false", "message_type": "session",
		"flow_id": "77", "l7_request_id": "5", "l7_protocol": "HTTP", "link_key": "tcp_seq", "link_late": "1",
		"link_original_parent_span_id": "0102030405060708", "session_response_span_id": "0807060504030201",
		"ip4_0": "167840009", "ip6_0": zeroIPv6, "ip4_1": "167838211", "ip6_1": zeroIPv6,
		"attr_names":         "['http.route','http.response.status_code','server.address']",
		"attr_values":        "['/cart','500','10.1.2.3']",
		"resource_names":     "['k8s.container.name']",
		"resource_values":    "['c']",
		"events.time":        "[1767323045133456789]",
		"events.name":        "['retry']",
		"events.attr_names":  "[['attempt']]",
		"events.attr_values": "[['2']]",
		"links.trace_id":     "['d1020000000000000000000000000000']",
		"links.span_id":      "['e102000000000000']",
		"links.trace_state":  "['k=v']",
		"links.attr_names":   "[['link.kind']]",
		"links.attr_values":  "[['follows']]",
	}
	idColumns(want, "_0", true)
	idColumns(want, "_1", false)
	assert.Equal(t, want, chRow(t, ch, "SELECT * FROM weft.spans WHERE name = 'GET /cart'"))
	// The client span: the cart pod is side 0, the host name and the ids
	// that do not fit stay attributes.
	assert.Equal(t, "c-app\t15\t18\t167838211\t0\t['server.address']\t['db.internal']",
		chQuery(t, ch, "SELECT observation_point, pod_id_0, pod_id_1, ip4_0, ip4_1, attr_names, attr_values FROM weft.spans WHERE name = 'SELECT carts'"))

	// Every column of the histogram point.
	want = map[string]string{
		"time": "2026-01-02 03:04:05", "timestamp": "1767323045123456789", "start_timestamp": "1767322985123456789",
		"name": "checkout.latency", "description": "checkout latency", "unit": "ms", "type": "histogram",
		"temporality": "delta", "is_monotonic": "0", "flags": "0", "value": "0", "count": "3", "sum": "266",
		"min": "4", "max": "250", "bucket_bounds": "[5,10]", "bucket_counts": "[1,1,1]", "exp_scale": "0",
		"exp_zero_count": "0", "exp_positive_offset": "0", "exp_positive_counts": "[]", "exp_negative_offset": "0",
		"exp_negative_counts": "[]", "quantiles": "[]", "quantile_values": "[]", "service_name": "cart",
		"scope_name": "e2e", "scope_version": "", "ip4": "167838211", "ip6": zeroIPv6,
		"attr_names": "['route']", "attr_values": "['/cart']", "resource_names": "[]", "resource_values": "[]",
	}
	idColumns(want, "", false)
	assert.Equal(t, want, chRow(t, ch, "SELECT * FROM weft.metrics WHERE type = 'histogram'"))
	assert.Equal(t, strings.Join([]string{
		"cpu.usage\tgauge\tunspecified\t0\t0.25\t0\t0\tnan\tnan\t0\t[]\t[]",
		"exp.latency\texponential_histogram\tunspecified\t0\t0\t4\t1\tnan\tnan\t2\t[2,1]\t[1]",
		"requests\tsum\tcumulative\t1\t42\t0\t0\tnan\tnan\t0\t[]\t[]",
		"rpc.duration\tsummary\tunspecified\t0\t0\t10\t0\tnan\tnan\t0\t[]\t[]",
	}, "\n"), chQuery(t, ch, "SELECT name, type, temporality, is_monotonic, value, count, exp_zero_count, min, max, exp_scale, exp_positive_counts, exp_negative_counts FROM weft.metrics WHERE type != 'histogram' ORDER BY name"))
	assert.Equal(t, "-1\t3\t[0.99]\t[1.5]\t5", chQuery(t, ch,
		"SELECT (SELECT exp_positive_offset FROM weft.metrics WHERE type = 'exponential_histogram'), (SELECT exp_negative_offset FROM weft.metrics WHERE type = 'exponential_histogram'), quantiles, quantile_values, sum FROM weft.metrics WHERE type = 'summary'"))

	// Every column of the log record.
	want = map[string]string{
		"time": "2026-01-02 03:04:05", "timestamp": "1767323045123456789", "observed_timestamp": "1767323046123456789",
		"trace_id": "a102030405060708090a0b0c0d0e0f10", "span_id": "b102030405060708", "flags": "1",
		"severity_text": "WARN", "severity_number": "13", "event_name": "payment.declined", "body": "payment declined",
		"service_name": "cart", "scope_name": "e2e", "scope_version": "2.0", "ip4": "0",
		// 2001:db8::1 as TSV escapes its bytes: 0x20 0x01 0x0d 0xb8, eleven zeros, 0x01.
		"ip6":        "\x20\x01" + `\r` + "\xb8" + strings.Repeat(`\0`, 11) + "\x01",
		"attr_names": "['order.id']", "attr_values": "['A-1001']",
		"resource_names": "['deployment.environment']", "resource_values": "['prod']",
	}
	idColumns(want, "", false)
	assert.Equal(t, want, chRow(t, ch, "SELECT * FROM weft.logs"))
	assert.Equal(t, "2001:db8::1", chQuery(t, ch, "SELECT IPv6NumToString(ip6) FROM weft.logs"))

	// Names through the XML dictionaries over the real ch_ tables.
	harness.WaitFor(t, 60*time.Second, "the views", func() error {
		_, err := ch.Query("SELECT count() FROM weft.spans_view")
		return err
	})
	ch.MustQuery(t, "SYSTEM RELOAD DICTIONARIES")
	assert.Equal(t, "GET /cart\tprod\tnode-a\tshop\tcart\tDeployment\tcart-7d9f\tcart-svc\tcart-7d9f\tcart-svc\t10.1.2.3\tprod\tdb-0\tdb-0\t10.1.9.9",
		chQuery(t, ch, "SELECT name, cluster_1, node_1, namespace_1, workload_1, workload_kind_name_1, pod_1, k8s_service_1, auto_instance_1, auto_service_1, ip_1, cluster_0, pod_0, auto_instance_0, ip_0 FROM weft.spans_view WHERE pod_1 = 'cart-7d9f'"))
	assert.Equal(t, "cart", chQuery(t, ch, "SELECT dictGetString('weft_pod_label_map', 'value', tuple(toUInt64(pod_id_1), 'app')) FROM weft.spans WHERE name = 'GET /cart'"))
	assert.Equal(t, "5\tcart-7d9f\tshop\tprod", chQuery(t, ch, "SELECT count(), any(pod), any(namespace), any(cluster) FROM weft.metrics_view WHERE pod = 'cart-7d9f'"))
	assert.Equal(t, "payment declined\tcart-7d9f\tnode-a\t2001:db8::1", chQuery(t, ch, "SELECT body, pod, node, ip FROM weft.logs_view WHERE namespace = 'shop'"))

	// Tag-value candidates.
	assert.Equal(t, "/cart", chQuery(t, ch, "SELECT value FROM weft.tag_values FINAL WHERE table_name = 'spans' AND name = 'http.route'"))
	assert.Equal(t, "route", chQuery(t, ch, "SELECT name FROM weft.tag_names FINAL WHERE table_name = 'metrics' AND scope = 'attribute'"))

	// The span from 2200 was counted and skipped; the rest of its batch
	// was written.
	assert.Equal(t, "0", chQuery(t, ch, "SELECT count() FROM weft.spans WHERE name = 'from 2200'"))
	assert.Equal(t, 1.0, clickhouseCounter(t, col.TelemetryPort, "otelcol_exporter_smart_clickhouse_skipped_records", `signal="spans"`))
}

// clickhouseCounter reads a counter from the collector's own metrics.
func clickhouseCounter(t *testing.T, port int, name, label string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+"{") && strings.Contains(line, label) {
			var v float64
			_, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v)
			require.NoError(t, err, line)
			return v
		}
	}
	var related []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.Contains(line, "smart_clickhouse") {
			related = append(related, line)
		}
	}
	t.Fatalf("no %s{%s} in the collector's metrics; related:\n%s", name, label, strings.Join(related, "\n"))
	return 0
}

// TestSmartClickHouseOutage stops ClickHouse during a load, and restarts
// the collector while it is down: the persistent queue (file_storage)
// keeps what could not be written, the exporter retries, and every span
// arrives.
func TestSmartClickHouseOutage(t *testing.T) {
	ch := harness.StartClickHouse(t)
	storage := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(storage, "q"), 0o755))
	config := smartClickHouseConfig(ch.Endpoint(), filepath.Join(storage, "q"), `    retry_on_failure:
      initial_interval: 100ms
      max_interval: 1s
      max_elapsed_time: 0`)

	var next atomic.Uint64
	send := func(col *harness.Collector, requests, perRequest int) {
		conn, err := grpc.NewClient(col.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer conn.Close()
		client := ptraceotlp.NewGRPCClient(conn)
		for i := 0; i < requests; i++ {
			td := ptrace.NewTraces()
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", "load")
			spans := rs.ScopeSpans().AppendEmpty().Spans()
			for j := 0; j < perRequest; j++ {
				n := next.Add(1)
				s := spans.AppendEmpty()
				s.SetName("op")
				s.SetTraceID(pcommon.TraceID{byte(n >> 8), byte(n), 1})
				s.SetSpanID(pcommon.SpanID{0, 0, 0, 0, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
				s.SetStartTimestamp(chTS(time.Now()))
				s.SetEndTimestamp(chTS(time.Now()))
			}
			_, err := client.Export(t.Context(), ptraceotlp.NewExportRequestFromTraces(td))
			require.NoError(t, err, "the collector must accept spans while ClickHouse is down")
		}
	}
	count := func() string {
		out, err := ch.Query("SELECT uniqExact(span_id), count() FROM weft.spans")
		if err != nil {
			return err.Error()
		}
		return strings.TrimSpace(out)
	}

	col := harness.StartCollector(t, config)
	send(col, 20, 25) // 500 spans with ClickHouse up
	harness.WaitFor(t, 30*time.Second, "the first 500 spans", func() error {
		if got := count(); !strings.HasPrefix(got, "500\t") {
			return fmt.Errorf("distinct, total: %s", got)
		}
		return nil
	})

	ch.Stop(t)
	send(col, 20, 25) // 500 spans that wait in the queue
	require.NoError(t, col.Signal(syscall.SIGTERM))
	require.NoError(t, col.Wait(60*time.Second), "weftcol did not stop cleanly:\n%s", col.Log())

	// A new collector over the same queue starts while ClickHouse is down,
	// accepts more, and writes everything once ClickHouse is back.
	col = harness.StartCollector(t, config)
	assert.Contains(t, col.Log(), "ClickHouse cannot be reached", "the second collector started without ClickHouse")
	send(col, 10, 25)
	ch.Start(t)
	send(col, 10, 25)
	var got string
	harness.WaitFor(t, 120*time.Second, "all 1500 spans", func() error {
		if got = count(); !strings.HasPrefix(got, "1500\t") {
			return fmt.Errorf("distinct, total: %s", got)
		}
		return nil
	})
	var distinct, total int
	_, err := fmt.Sscan(got, &distinct, &total)
	require.NoError(t, err)
	assert.Equal(t, 1500, distinct, "not one span lost")
	t.Logf("1500 spans sent, %d distinct and %d rows stored (at-least-once: a batch retried after a lost acknowledgement is stored twice)", distinct, total)
	ids := strings.Fields(chQuery(t, ch, "SELECT span_id FROM weft.spans GROUP BY span_id HAVING count() > 1 ORDER BY span_id LIMIT 10"))
	sort.Strings(ids)
	if len(ids) > 0 {
		t.Logf("stored twice, e.g.: %v", ids)
	}
}
