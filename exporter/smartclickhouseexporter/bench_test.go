package smartclickhouseexporter

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/metadata"
	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
	"github.com/weftobs/weft/tests/harness"
)

// The benchmark workload: spans of a 200-pod cluster (50 services, 4 pods
// each, 20 nodes, 10 namespaces), half of them server spans and half client
// spans to a known peer, each with 20 custom attributes of mixed cardinality
// (methods, routes, status codes, tenants, feature flags, user ids, URLs,
// SQL) — what remains after smart_encoding strips the k8s strings. The
// "strings" variant is the same telemetry without smart_encoding: the k8s
// names and labels as resource attributes and no ids.

const benchBatch = 10_000

type benchPod struct {
	id, node, ns, workload, service          int64
	name, nodeName, nsName, workloadName, ip string
}

func benchPods() []benchPod {
	pods := make([]benchPod, 200)
	for i := range pods {
		svc := int64(i/4 + 1)
		pods[i] = benchPod{
			id: int64(i + 1), node: int64(i%20 + 1), ns: int64(i%10 + 1), workload: svc, service: svc,
			name:         fmt.Sprintf("svc-%02d-7d9f8c6b5-%05d", svc, i*7919%100000),
			nodeName:     fmt.Sprintf("ip-10-0-%d-%d.eu-west-1.compute.internal", i%20, i%7),
			nsName:       fmt.Sprintf("team-%d", i%10),
			workloadName: fmt.Sprintf("svc-%02d", svc),
			ip:           fmt.Sprintf("10.244.%d.%d", i/250, i%250+1),
		}
	}
	return pods
}

// benchTraces builds batches of benchBatch spans, one resource per pod.
func benchTraces(encoded bool, seed uint64) ptrace.Traces {
	rng := rand.New(rand.NewPCG(seed, 7))
	pods := benchPods()
	td := ptrace.NewTraces()
	perPod := benchBatch / len(pods)
	now := time.Now()
	for _, p := range pods {
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", p.workloadName)
		ra.PutStr("telemetry.sdk.language", "java")
		ra.PutStr("telemetry.sdk.version", "1.40.0")
		ra.PutStr("k8s.container.name", "app")
		if encoded {
			for k, v := range map[string]int64{"weft.vpc_id": 1, "weft.cluster_id": 1, "weft.node_id": p.node,
				"weft.namespace_id": p.ns, "weft.workload_id": p.workload, "weft.workload_kind": 1, "weft.pod_id": p.id,
				"weft.service_id": p.service, "weft.auto_instance_type": 10, "weft.auto_instance_id": p.id,
				"weft.auto_service_type": 11, "weft.auto_service_id": p.service} {
				ra.PutInt(k, v)
			}
		} else {
			ra.PutStr("k8s.pod.ip", p.ip)
			ra.PutStr("k8s.pod.name", p.name)
			ra.PutStr("k8s.pod.uid", fmt.Sprintf("%08x-1c2d-4e5f-8a9b-%012x", p.id*2654435761%(1<<32), p.id*40503))
			ra.PutStr("k8s.namespace.name", p.nsName)
			ra.PutStr("k8s.node.name", p.nodeName)
			ra.PutStr("k8s.deployment.name", p.workloadName)
			ra.PutStr("k8s.replicaset.name", p.workloadName+"-7d9f8c6b5")
			ra.PutStr("k8s.cluster.name", "prod-eu1")
			ra.PutStr("k8s.pod.labels.app", p.workloadName)
			ra.PutStr("k8s.pod.labels.team", p.nsName)
			ra.PutStr("k8s.pod.labels.version", "v1.4.2")
			ra.PutStr("k8s.pod.start_time", "2026-11-20T10:11:12Z")
		}
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for i := 0; i < perPod; i++ {
			s := spans.AppendEmpty()
			var tid pcommon.TraceID
			var sid pcommon.SpanID
			for j := range tid {
				tid[j] = byte(rng.Uint32())
			}
			for j := range sid {
				sid[j] = byte(rng.Uint32())
			}
			s.SetTraceID(tid)
			s.SetSpanID(sid)
			start := now.Add(-time.Duration(rng.IntN(60_000)) * time.Millisecond)
			s.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			s.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(rng.ExpFloat64()*20e6) + time.Millisecond)))
			route := fmt.Sprintf("/api/v1/resource-%d/{id}", rng.IntN(30))
			a := s.Attributes()
			peer := pods[rng.IntN(len(pods))]
			if i%2 == 0 {
				s.SetKind(ptrace.SpanKindServer)
				s.SetName("GET " + route)
				a.PutStr("client.address", peer.ip)
			} else {
				s.SetKind(ptrace.SpanKindClient)
				s.SetName("SELECT orders")
				a.PutStr("server.address", peer.ip)
				a.PutStr("db.system", "mysql")
				a.PutStr("db.statement", fmt.Sprintf("SELECT * FROM orders WHERE tenant_id = ? AND status = %d", rng.IntN(50)))
			}
			if encoded {
				for k, v := range map[string]int64{"weft.peer.vpc_id": 1, "weft.peer.cluster_id": 1, "weft.peer.pod_id": peer.id,
					"weft.peer.node_id": peer.node, "weft.peer.namespace_id": peer.ns, "weft.peer.workload_id": peer.workload,
					"weft.peer.workload_kind": 1, "weft.peer.service_id": peer.service, "weft.peer.auto_instance_type": 10,
					"weft.peer.auto_instance_id": peer.id, "weft.peer.auto_service_type": 11, "weft.peer.auto_service_id": peer.service} {
					a.PutInt(k, v)
				}
			}
			a.PutStr("http.request.method", []string{"GET", "POST", "PUT", "DELETE"}[rng.IntN(4)])
			a.PutStr("http.route", route)
			a.PutInt("http.response.status_code", []int64{200, 200, 200, 201, 404, 500}[rng.IntN(6)])
			a.PutStr("url.path", strings.Replace(route, "{id}", strconv.Itoa(rng.IntN(100_000)), 1))
			a.PutStr("url.scheme", "https")
			a.PutStr("user_agent.original", fmt.Sprintf("okhttp/4.%d.0", rng.IntN(10)))
			a.PutStr("network.protocol.version", "1.1")
			a.PutInt("server.port", 8080)
			a.PutStr("tenant.id", fmt.Sprintf("tenant-%03d", rng.IntN(300)))
			a.PutStr("user.id", fmt.Sprintf("u-%07d", rng.IntN(1_000_000)))
			a.PutStr("feature.flag", []string{"a", "b", "control"}[rng.IntN(3)])
			a.PutStr("region", "eu-west-1")
			a.PutStr("az", fmt.Sprintf("eu-west-1%c", 'a'+rng.IntN(3)))
			a.PutStr("thread.name", fmt.Sprintf("http-nio-8080-exec-%d", rng.IntN(200)))
			a.PutInt("thread.id", int64(rng.IntN(500)))
			a.PutStr("code.namespace", "com.example.orders.OrderController")
			a.PutStr("code.function", []string{"list", "get", "create", "update"}[rng.IntN(4)])
			a.PutStr("app.build", "2026.11.3")
			a.PutBool("cache.hit", rng.IntN(2) == 0)
			a.PutDouble("queue.wait_ms", rng.Float64()*5)
		}
	}
	return td
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkConvertSpans is the exporter's own CPU per span, without I/O:
// reading a batch into columns.
func BenchmarkConvertSpans(b *testing.B) {
	td := benchTraces(true, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var rows spanRows
		rows.addTraces(td, skipped{})
		_ = rows.columns(legacy)
		cb := newCandidates().batch("spans", time.Now())
		addCandidates(cb, &rows.common)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/span")
}

// BenchmarkInsertSpans writes batches of 10,000 spans through the exporter
// into a real ClickHouse 18.16 on the same machine, and then measures the
// bytes on disk per span (system.parts_columns, after OPTIMIZE ... FINAL).
// rows/cpu-s is spans per second of this process's CPU (conversion,
// clickhouse-go encoding, LZ4): the collector's cost per core; the server's
// CPU is not counted.
func BenchmarkInsertSpans(b *testing.B) {
	for _, variant := range []string{"encoded", "strings"} {
		b.Run(variant, func(b *testing.B) {
			ch := harness.StartClickHouse(b)
			cfg := testConfig(ch.Endpoint(), "weft")
			exp, err := NewFactory().CreateTraces(b.Context(), exportertest.NewNopSettings(metadata.Type), cfg)
			require.NoError(b, err)
			require.NoError(b, exp.Start(b.Context(), componenttest.NewNopHost()))
			defer func() { require.NoError(b, exp.Shutdown(b.Context())) }()
			// Every batch is new (trace ids, times, user ids): repeated
			// batches would compress better than real data.
			b.ResetTimer()
			var cpu time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				td := benchTraces(variant == "encoded", uint64(i))
				b.StartTimer()
				cpu0 := cpuTime()
				require.NoError(b, exp.ConsumeTraces(b.Context(), td))
				cpu += cpuTime() - cpu0
			}
			b.StopTimer()
			rows := float64(b.N * benchBatch)
			b.ReportMetric(rows/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(rows/cpu.Seconds(), "rows/cpu-s")
			ch.MustQuery(b, "OPTIMIZE TABLE weft.spans FINAL")
			var bytes, n float64
			_, err = fmt.Sscan(ch.MustQuery(b, "SELECT sum(bytes_on_disk), sum(rows) FROM system.parts WHERE database = 'weft' AND table = 'spans' AND active"), &bytes, &n)
			require.NoError(b, err)
			b.ReportMetric(bytes/n, "disk-B/span")
			if testing.Verbose() {
				b.Logf("%.0f spans; largest columns (compressed bytes per span):\n%s", n, ch.MustQuery(b,
					"SELECT column, round(sum(column_data_compressed_bytes) / sum(rows), 2) AS b FROM system.parts_columns "+
						"WHERE database = 'weft' AND table = 'spans' AND active GROUP BY column ORDER BY b DESC LIMIT 12"))
			}
		})
	}
}

// BenchmarkModernBytesPerSpan stores the same workload in the ClickHouse
// 26.5 engine (chDB) with the modern schema (codecs: Delta, ZSTD), encoded
// by clickhouse-go from the exporter's columns, and reports its bytes on
// disk per span.
func BenchmarkModernBytesPerSpan(b *testing.B) {
	for _, variant := range []string{"encoded", "strings"} {
		b.Run(variant, func(b *testing.B) {
			conn, database := harness.ChDBDatabase(b)
			d := chdbDB{conn}
			f, err := serverFeatures(b.Context(), d)
			require.NoError(b, err)
			o := schema.Options{Database: database}
			r := &schemaRunner{db: d, f: f, o: o, logger: zap.NewNop(), red: newRedactor()}
			require.NoError(b, r.migrate(b.Context()))
			for i := 0; i < b.N; i++ {
				var rows spanRows
				rows.addTraces(benchTraces(variant == "encoded", uint64(i)), skipped{})
				insertNative(b, conn, database, schema.Spans, f, rows.columns(f))
			}
			b.StopTimer()
			require.NoError(b, conn.Exec(fmt.Sprintf("OPTIMIZE TABLE %s.spans FINAL", database)))
			out := chdbQuery(b, conn, fmt.Sprintf("SELECT sum(bytes_on_disk), sum(rows) FROM system.parts WHERE database = '%s' AND table = 'spans' AND active", database))
			var bytes, n float64
			_, err = fmt.Sscan(out, &bytes, &n)
			require.NoError(b, err)
			b.ReportMetric(bytes/n, "disk-B/span")
			if testing.Verbose() {
				b.Logf("%.0f spans; largest columns (compressed bytes per span):\n%s", n, chdbQuery(b, conn, fmt.Sprintf(
					"SELECT column, round(sum(column_data_compressed_bytes) / sum(rows), 2) AS b FROM system.parts_columns "+
						"WHERE database = '%s' AND table = 'spans' AND active GROUP BY column ORDER BY b DESC LIMIT 16", database)))
			}
		})
	}
}
