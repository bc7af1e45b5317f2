package smartclickhouseexporter

import (
	"fmt"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
)

// The benchmark workload: spans of a 200-pod cluster (50 services, 4 pods
// each, 20 nodes, 10 namespaces), half of them server spans and half client
// spans to a known peer, each with 20 custom attributes of mixed cardinality
// (methods, routes, status codes, tenants, feature flags, user ids, URLs,
// SQL) — what remains after smart_encoding strips the k8s strings. The
// storage comparison with other layouts is BenchmarkScenarioStorage.

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
func benchTraces(seed uint64) ptrace.Traces { return benchTracesN(seed, benchBatch) }

// benchTracesN builds a batch of n spans (a multiple of 200).
func benchTracesN(seed uint64, n int) ptrace.Traces {
	rng := rand.New(rand.NewPCG(seed, 7))
	pods := benchPods()
	td := ptrace.NewTraces()
	perPod := n / len(pods)
	now := time.Now()
	for _, p := range pods {
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", p.workloadName)
		ra.PutStr("telemetry.sdk.language", "java")
		ra.PutStr("telemetry.sdk.version", "1.40.0")
		ra.PutStr("k8s.container.name", "app")
		for k, v := range map[string]int64{"weft.vpc_id": 1, "weft.cluster_id": 1, "weft.node_id": p.node,
			"weft.namespace_id": p.ns, "weft.workload_id": p.workload, "weft.workload_kind": 1, "weft.pod_id": p.id,
			"weft.service_id": p.service, "weft.auto_instance_type": 10, "weft.auto_instance_id": p.id,
			"weft.auto_service_type": 11, "weft.auto_service_id": p.service} {
			ra.PutInt(k, v)
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
			for k, v := range map[string]int64{"weft.peer.vpc_id": 1, "weft.peer.cluster_id": 1, "weft.peer.pod_id": peer.id,
				"weft.peer.node_id": peer.node, "weft.peer.namespace_id": peer.ns, "weft.peer.workload_id": peer.workload,
				"weft.peer.workload_kind": 1, "weft.peer.service_id": peer.service, "weft.peer.auto_instance_type": 10,
				"weft.peer.auto_instance_id": peer.id, "weft.peer.auto_service_type": 11, "weft.peer.auto_service_id": peer.service} {
				a.PutInt(k, v)
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

// BenchmarkConvertSpans is the exporter's own CPU per span, without I/O:
// reading a batch into columns.
func BenchmarkConvertSpans(b *testing.B) {
	td := benchTraces(1)
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

// encodeColumns are the columns of t as clickhouse-go builds them for an
// INSERT on a server with f.
func encodeColumns(b testing.TB, t schema.Table, f schema.Features) []column.Interface {
	sc := &column.ServerContext{Timezone: time.UTC}
	cols := make([]column.Interface, len(t.Columns))
	for i, c := range t.Columns {
		col, err := column.Type(c.Type(f)).Column(c.Name, sc)
		if err != nil {
			b.Fatal(err)
		}
		cols[i] = col
	}
	return cols
}

// encodeBlock writes cols as clickhouse-go's block encoding does (state
// prefixes, then each column).
func encodeBlock(b testing.TB, cols []column.Interface, buf *proto.Buffer) {
	for _, col := range cols {
		if s, ok := col.(column.CustomSerialization); ok {
			if err := s.WriteStatePrefix(buf); err != nil {
				b.Fatal(err)
			}
		}
		col.Encode(buf)
	}
}

// BenchmarkEncodeSpans is the whole client-side CPU of a span without the
// network: conversion into columns, clickhouse-go's appends into the
// batch's columns (the path of PrepareBatch and Append) and their native
// encoding, for the 18.16 (legacy) and 26.5 (modern) column types.
func BenchmarkEncodeSpans(b *testing.B) {
	td := benchTraces(1)
	for _, tc := range []struct {
		name  string
		f     schema.Features
		plain bool
	}{{"legacy", legacy, false}, {"modern", modern, false}, {"legacy-column-append", legacy, true}} {
		b.Run(tc.name, func(b *testing.B) {
			var buf proto.Buffer
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var rows spanRows
				rows.addTraces(td, skipped{})
				cb := newCandidates().batch("spans", time.Now())
				addCandidates(cb, &rows.common)
				cols := encodeColumns(b, schema.Spans, tc.f)
				values := rows.columns(tc.f)
				if tc.plain {
					// For comparison: clickhouse-go's Column.Append of
					// every column, as the exporter did before appendColumns.
					for j, c := range schema.Spans.Columns {
						if _, err := cols[j].Append(values[c.Name]); err != nil {
							b.Fatal(err)
						}
					}
				} else if err := appendColumns(cols, schema.Spans, values); err != nil {
					b.Fatal(err)
				}
				buf.Reset()
				encodeBlock(b, cols, &buf)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/span")
		})
	}
}
