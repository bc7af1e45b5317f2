package smartencodingprocessor

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// batch is 100 spans of one pod, each with about 40 fixed tags (resource
// attributes from the SDK and k8sattributesprocessor, and span semantic
// conventions) and custom more tags (60 in the seed's production figures);
// half call a known peer.
func batch(custom int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ra := rs.Resource().Attributes()
	for k, v := range map[string]string{
		"service.name": "cart", "service.version": "1.4.2", "service.instance.id": "cart-7d9f-x2",
		"telemetry.sdk.name": "opentelemetry", "telemetry.sdk.language": "java", "telemetry.sdk.version": "1.44.0",
		"host.name": "node-a", "os.type": "linux", "process.runtime.name": "OpenJDK Runtime Environment",
		"k8s.pod.ip": "10.244.0.8", "k8s.pod.name": "cart-7d9f-x2", "k8s.pod.uid": "uid-cart",
		"k8s.pod.start_time": "2026-11-21T05:00:00Z", "k8s.namespace.name": "shop", "k8s.node.name": "node-a",
		"k8s.deployment.name": "cart", "k8s.replicaset.name": "cart-7d9f", "k8s.container.name": "app",
		"k8s.cluster.name": "prod-eu1", "k8s.pod.labels.app": "cart", "k8s.pod.labels.team": "payments",
		"k8s.pod.labels.version": "1.4.2", "k8s.pod.annotations.prometheus.io/scrape": "true",
		"k8s.pod.annotations.config.checksum": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		"cloud.provider":                      "aws", "cloud.region": "eu-west-1",
	} {
		ra.PutStr(k, v)
	}
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < 100; i++ {
		sp := spans.AppendEmpty()
		sp.SetName("GET /cart")
		sp.SetKind(ptrace.SpanKindClient)
		a := sp.Attributes()
		a.PutStr("http.request.method", "GET")
		a.PutStr("url.full", "http://pricing:8080/price?cart=c-1")
		a.PutInt("http.response.status_code", 200)
		a.PutStr("network.protocol.version", "1.1")
		a.PutStr("user_agent.original", "Java-http-client/21")
		a.PutInt("server.port", 8080)
		a.PutStr("thread.name", "http-nio-8080-exec-7")
		a.PutInt("thread.id", 42)
		a.PutStr("code.function", "price")
		a.PutStr("code.namespace", "com.shop.Pricing")
		a.PutStr("network.transport", "tcp")
		a.PutStr("network.type", "ipv4")
		a.PutStr("network.peer.port", "8080")
		if i%2 == 0 {
			a.PutStr("server.address", "10.244.1.9")
		} else {
			a.PutStr("server.address", "10.200.3.4")
		}
		for j := 0; j < custom; j++ {
			a.PutStr(fmt.Sprintf("app.tag_%02d", j), fmt.Sprintf("value-%d-%d", j, i%7))
		}
	}
	return td
}

// BenchmarkEncodeSpan is lookup + encode + strip per span, in batches of 100
// spans of one resource, with the lookup a map as in the real extension.
// Each op copies a fresh batch and encodes it: ns/op includes the copy
// (which costs more than the encoding), ns/span is the encoding alone, timed
// around each call. Keeping the copies out of the benchmark timer instead
// would make -benchtime 1s run for minutes of untimed copying.
func BenchmarkEncodeSpan(b *testing.B) {
	b.Run("custom=60", func(b *testing.B) { benchmarkEncode(b, batch(60), true) })
	b.Run("custom=0", func(b *testing.B) { benchmarkEncode(b, batch(0), true) })
	// The peer side left to smart_clickhouse (peer_attributes: false), as
	// the default pipeline runs it.
	b.Run("custom=60/peer_attributes=false", func(b *testing.B) { benchmarkEncode(b, batch(60), false) })
}

func benchmarkEncode(b *testing.B, src ptrace.Traces, peer bool) {
	cfg := createDefaultConfig().(*Config)
	cfg.VPCID = 3
	cfg.PeerAttributes = peer
	e := newEncoder(cfg)
	e.lookup = newLookup()
	spans := src.SpanCount()
	var marshaler ptrace.ProtoMarshaler
	before := marshaler.TracesSize(src)
	out, _ := e.processTraces(b.Context(), func() ptrace.Traces { c := ptrace.NewTraces(); src.CopyTo(c); return c }())
	after := marshaler.TracesSize(out)

	runtime.GC()
	b.ReportAllocs()
	b.ResetTimer()
	var encoding time.Duration
	for i := 0; i < b.N; i++ {
		td := ptrace.NewTraces()
		src.CopyTo(td)
		start := time.Now()
		if _, err := e.processTraces(b.Context(), td); err != nil {
			b.Fatal(err)
		}
		encoding += time.Since(start)
	}
	b.ReportMetric(float64(encoding.Nanoseconds())/float64(b.N*spans), "ns/span")
	b.ReportMetric(float64(before)/float64(spans), "wire-B/span-before")
	b.ReportMetric(float64(after)/float64(spans), "wire-B/span-after")
}
