package e2e

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftobs/weft/internal/vocab"
	"github.com/weftobs/weft/internal/wasmplugin/wasmplugintest"
	"github.com/weftobs/weft/tests/harness"
)

// wasmPluginConfig runs trace_completion with the example plugin
// (WASM_PLUGIN), configured from YAML to read the request id from
// X-Correlation-ID and a tenant tag from X-Tenant.
const wasmPluginConfig = `
extensions:
  health_check:
    endpoint: ${env:WEFT_HEALTH_ENDPOINT}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:WEFT_OTLP_GRPC_ENDPOINT}
processors:
  trace_completion:
    wait: 1s
    max_wait: 10s
    plugins:
      - path: ${env:WASM_PLUGIN}
        tags_as_attributes: true
        config:
          request_id_headers: [x-correlation-id]
          tags:
            x-tenant: app.tenant
    wasm:
      timeout: 1s # not about the deadline: a busy test machine
exporters:
  file:
    path: ${env:WEFT_DATA_DIR}/traces.jsonl
service:
  extensions: [health_check]
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: ${env:WEFT_TELEMETRY_HOST}
                port: ${env:WEFT_TELEMETRY_PORT}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [trace_completion]
      exporters: [file]
`

// buildExamplePlugin builds internal/wasmplugin/example as `make plugins`
// does, into a temporary directory.
func buildExamplePlugin(t *testing.T) string {
	return wasmplugintest.Build(t, filepath.Join(harness.RepoRoot(), "internal", "wasmplugin", "example"), t.TempDir())
}

// poolHopSpan is one eBPF capture in a gateway process (agent "gw"): a
// made-up trace id, syscall ids and TCP sequences of its own, and one
// captured header, as OTel captures headers (a slice of values).
func poolHopSpan(id uint64, obs string, start time.Time, d time.Duration, header, value string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "gateway")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	var tid pcommon.TraceID
	binary.BigEndian.PutUint64(tid[8:], 1<<40|id)
	sp.SetTraceID(tid)
	sp.SetSpanID(e2eSpanID(id))
	sp.SetName("GET /orders")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(d)))
	sp.SetKind(ptrace.SpanKindServer)
	if obs == vocab.ObservationPointClientProcess {
		sp.SetKind(ptrace.SpanKindClient)
	}
	a := sp.Attributes()
	a.PutStr(vocab.SignalSource, vocab.SignalSourceEBPF)
	a.PutStr(vocab.ObservationPoint, obs)
	a.PutStr(vocab.ObserverID, "gw")
	a.PutInt(vocab.ProcessID, 7)
	a.PutInt(vocab.SyscallTraceIDRequest, int64(100*id+1))
	a.PutInt(vocab.SyscallTraceIDResponse, int64(100*id+2))
	a.PutInt(vocab.TCPSeqRequest, int64(1000*id))
	a.PutInt(vocab.TCPSeqResponse, int64(1000*id+1))
	a.PutBool(vocab.TraceIDSynthetic, true)
	a.PutEmptySlice(header).AppendEmpty().SetStr(value)
	a.PutEmptySlice("http.request.header.x-tenant").AppendEmpty().SetStr("acme")
	return td
}

func e2eSpanID(v uint64) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], v)
	return id
}

// TestWasmPluginStitchesThroughWeftcol: weftcol runs the example plugin,
// built from source, in trace_completion with a config from YAML. Two
// thread-pool hops through a gateway, tied only by a captured
// X-Correlation-ID (a header the plugin is configured to read; its default
// is X-Request-ID), come out stitched by it, with the plugin's ids and its
// tenant tag on the spans; a third upstream request with an id no one
// returned stays on its own.
func TestWasmPluginStitchesThroughWeftcol(t *testing.T) {
	plugin := buildExamplePlugin(t)
	col := harness.StartCollector(t, wasmPluginConfig, "WASM_PLUGIN="+plugin)

	t0 := time.Now().Add(-time.Minute)
	const (
		resp = "http.response.header.x-correlation-id"
		req  = "http.request.header.x-correlation-id"
	)
	var batches []ptrace.Traces
	for hop := range uint64(2) {
		id := fmt.Sprintf("corr-%d", hop)
		start := t0.Add(time.Duration(hop) * time.Second)
		batches = append(batches,
			poolHopSpan(10*hop+1, vocab.ObservationPointServerProcess, start, 10*time.Millisecond, resp, id),
			poolHopSpan(10*hop+2, vocab.ObservationPointClientProcess, start.Add(2*time.Millisecond), 6*time.Millisecond, req, id))
	}
	batches = append(batches, poolHopSpan(99, vocab.ObservationPointClientProcess, t0.Add(2*time.Millisecond), time.Millisecond, req, "corr-nobody"))

	conn, err := grpc.NewClient(col.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	for _, td := range batches {
		_, err := client.Export(t.Context(), ptraceotlp.NewExportRequestFromTraces(td))
		require.NoError(t, err)
	}

	path := filepath.Join(col.DataDir, "traces.jsonl")
	spans := map[pcommon.SpanID]ptrace.Span{}
	harness.WaitFor(t, 60*time.Second, "5 spans in "+path, func() error {
		for _, s := range readAllSpans(t, path) {
			spans[s.span.SpanID()] = s.span
		}
		if len(spans) < 5 {
			return fmt.Errorf("%d of 5 spans so far", len(spans))
		}
		return nil
	})
	require.Len(t, spans, 5)

	str := func(sp ptrace.Span, key string) string {
		v, ok := sp.Attributes().Get(key)
		if !ok {
			return "<none>"
		}
		return v.AsString()
	}
	for hop := range uint64(2) {
		id := fmt.Sprintf("corr-%d", hop)
		gw, up := spans[e2eSpanID(10*hop+1)], spans[e2eSpanID(10*hop+2)]
		assert.Equal(t, id, str(gw, vocab.XRequestID1), "hop %d: the gateway's response id, from the configured header", hop)
		assert.Equal(t, id, str(up, vocab.XRequestID0), "hop %d: the upstream request id", hop)
		assert.Equal(t, gw.SpanID(), up.ParentSpanID(), "hop %d: the upstream request goes under the gateway's capture", hop)
		assert.Equal(t, gw.TraceID(), up.TraceID(), "hop %d", hop)
		assert.Equal(t, vocab.LinkKeyXRequestID, str(up, vocab.LinkKey), "hop %d", hop)
		assert.Equal(t, "acme", str(gw, "app.tenant"), "hop %d: the tag, with tags_as_attributes", hop)
	}
	assert.NotEqual(t, spans[e2eSpanID(1)].TraceID(), spans[e2eSpanID(11)].TraceID(), "two requests, two traces")
	lone := spans[e2eSpanID(99)]
	assert.True(t, lone.ParentSpanID().IsEmpty(), "an id no one returned links nothing")
	assert.Equal(t, "corr-nobody", str(lone, vocab.XRequestID0))

	metrics := scrape(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", col.TelemetryPort))
	assert.Equal(t, float64(2), promValue(t, metrics, "otelcol_processor_trace_completion_links", `key="`+vocab.LinkKeyXRequestID+`"`))
	assert.NotContains(t, metrics, "otelcol_processor_trace_completion_plugin_failures", "no plugin call failed")
}

// TestWasmPluginBadConfigStopsWeftcol: a config the plugin rejects keeps
// weftcol from starting, and its log names the plugin and the reason.
func TestWasmPluginBadConfigStopsWeftcol(t *testing.T) {
	plugin := buildExamplePlugin(t)
	bin := harness.Weftcol(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
processors:
  trace_completion:
    plugins:
      - path: `+plugin+`
        config:
          request_id_header: x-correlation-id
exporters:
  debug:
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [trace_completion]
      exporters: [debug]
`), 0o644))
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Dir = dir
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("weftcol kept running with a config its plugin rejects:\n%s", out)
	}
	require.Error(t, err, "weftcol must not start")
	assert.Contains(t, string(out), "plugins[0] ("+plugin+") could not be loaded")
	assert.Contains(t, string(out), "unknown field", "the plugin's reason")
	assert.Contains(t, string(out), "request_id_header")
}
