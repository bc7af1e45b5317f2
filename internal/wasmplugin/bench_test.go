package wasmplugin

import (
	"context"
	"testing"
)

// benchRecord is a typical HTTP server span: a dozen resource and span
// attributes, two captured headers the example extracts.
func benchRecord() Record {
	return record("GET /api/orders/{id}",
		map[string]any{"service.name": "orders", "service.namespace": "shop", "host.name": "node-7",
			"k8s.pod.name": "orders-6d9f7c-abcde", "k8s.namespace.name": "shop", "telemetry.sdk.language": "java"},
		map[string]any{"http.request.method": "GET", "http.route": "/api/orders/{id}", "url.path": "/api/orders/42",
			"server.address": "orders.shop.svc", "http.response.status_code": 200, "user_agent.original": "curl/8.5.0",
			"http.request.header.x-request-id":        []string{"9f1c2e7a-4b0d-4c1e-8f3a-1d2b3c4d5e6f"},
			"http.request.header.x-upstream-trace-id": "0af7651916cd43dd8448eb211c80319c"})
}

func benchExtract(b *testing.B, pkg string, wantKeys int) {
	benchExtractOpts(b, pkg, wantKeys, Options{Instances: 1})
}

func benchExtractOpts(b *testing.B, pkg string, wantKeys int, opts Options) {
	p := loadPlugin(b, pkg, opts)
	rec := benchRecord()
	ctx := context.Background()
	var kvs []KV
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var err error
		if kvs, err = p.Extract(ctx, rec, kvs[:0]); err != nil {
			b.Fatal(err)
		}
	}
	if len(kvs) != wantKeys {
		b.Fatalf("got %v, want %d keys", kvs, wantKeys)
	}
}

func BenchmarkExtractNoop(b *testing.B)    { benchExtract(b, "testdata/noop", 0) }
func BenchmarkExtractExample(b *testing.B) { benchExtract(b, "example", 2) }

// The same without the fuel instrumentation (instrument.go): wazero's
// WithCloseOnContextDone enforces the deadline, as for a module the
// rewriter cannot handle.
func BenchmarkExtractNoopCloseOnContextDone(b *testing.B) {
	benchExtractOpts(b, "testdata/noop", 0, Options{Instances: 1, noFuel: true})
}

func BenchmarkExtractExampleCloseOnContextDone(b *testing.B) {
	benchExtractOpts(b, "example", 2, Options{Instances: 1, noFuel: true})
}

// BenchmarkEncode is the host's share: sizing and encoding the record.
func BenchmarkEncode(b *testing.B) {
	rec := benchRecord()
	size, _, _ := encodedSize(rec, nil)
	buf := make([]byte, size)
	b.ReportAllocs()
	for b.Loop() {
		size, resN, spanN := encodedSize(rec, nil)
		encode(buf[:size], rec, nil, resN, spanN)
	}
}
