package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftobs/weft/internal/vocab"
	"github.com/weftobs/weft/processor/tracecompletionprocessor/groundtruth"
	"github.com/weftobs/weft/tests/harness"
)

// tier1Config is the first tier: OTLP in, spans routed by trace id to the
// second tier (load_balancing with a static resolver).
const tier1Config = `
extensions:
  health_check:
    endpoint: ${env:WEFT_HEALTH_ENDPOINT}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:WEFT_OTLP_GRPC_ENDPOINT}
exporters:
  load_balancing:
    routing_key: traceID
    protocol:
      otlp:
        tls:
          insecure: true
    resolver:
      static:
        hostnames: ["${env:TIER2_OTLP_ENDPOINT}"]
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [load_balancing]
`

// tier2Config is the second tier: OTLP in, trace_completion, spans to a
// file; its own metrics on WEFT_TELEMETRY_PORT.
const tier2Config = `
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
    wait: 5s
    max_wait: 30s
    time_tolerance: 60ms
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

// TestTraceCompletionBehindLoadBalancing runs the two-tier deployment with
// two real weftcol processes: the simulated shop's spans (DeepFlow's OTLP
// export for every capture point and OTel SDK spans of the traced
// services) go to the first tier over OTLP/gRPC, are routed by trace id to
// the second, stitched there and written to a file, which is checked
// against the simulation's truth.
func TestTraceCompletionBehindLoadBalancing(t *testing.T) {
	tier2 := harness.StartCollector(t, tier2Config)
	tier1 := harness.StartCollector(t, tier1Config, "TIER2_OTLP_ENDPOINT="+tier2.OTLPGRPC)

	out := groundtruth.Generate(groundtruth.Config{
		Seed: 2024, Requests: 80, Rate: 400, Instrument: groundtruth.InstrumentAll, RetryRate: 0.2,
		OneWayRate: 0.1, ClockSkew: 5 * time.Millisecond, ExportDelay: time.Second,
	})
	conn, err := grpc.NewClient(tier1.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	for _, b := range out.Batches {
		_, err := client.Export(t.Context(), ptraceotlp.NewExportRequestFromTraces(b.Traces))
		require.NoError(t, err)
	}

	want := 0
	for _, tr := range out.Truth {
		if !tr.Absorbed {
			want++
		}
	}
	path := filepath.Join(tier2.DataDir, "traces.jsonl")
	var got []ptrace.Traces
	harness.WaitFor(t, 90*time.Second, "stitched spans in "+path, func() error {
		got = readTraces(t, path)
		if n := spanCount(got); n < want {
			return fmt.Errorf("%d of %d spans so far", n, want)
		}
		return nil
	})

	rep := groundtruth.Evaluate(out.Truth, got)
	t.Log(rep)
	for _, w := range append(rep.Wrong, rep.Missed...) {
		t.Log(w)
	}
	assert.Zero(t, rep.Missing)
	assert.Zero(t, rep.Unexpected)
	assert.GreaterOrEqual(t, rep.Precision(), 0.99)
	assert.GreaterOrEqual(t, rep.Recall(), 0.99)
	assert.Zero(t, rep.CrossTrace)
	assert.Zero(t, rep.SharedTraceIDs)
	for _, key := range []string{vocab.LinkKeyTCPSeq, vocab.LinkKeySpanID, vocab.LinkKeySyscall, vocab.LinkKeyXRequestID} {
		assert.Positive(t, rep.ByKey[key][0], "links by %s", key)
	}

	// The processor's own metrics say the same.
	metrics := scrape(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", tier2.TelemetryPort))
	for key, n := range rep.ByKey {
		assert.Equal(t, float64(n[0]), promValue(t, metrics, "otelcol_processor_trace_completion_links", `key="`+key+`"`), key)
	}
	assert.Equal(t, float64(rep.Sessions), promValue(t, metrics, "otelcol_processor_trace_completion_merged_sessions", ""))
	assert.Positive(t, promValue(t, metrics, "otelcol_processor_trace_completion_groups_flushed", `reason="wait"`))
	assert.Zero(t, promValue(t, metrics, "otelcol_processor_trace_completion_buffered_spans", ""), "nothing held any more")
}

// promValue reads one sample from Prometheus text: name{labels} value, or
// name value without labels. The exporter may add _total to counters.
func promValue(t *testing.T, text, name, labels string) float64 {
	t.Helper()
	for _, n := range []string{name, name + "_total"} {
		prefix := n + " "
		if labels != "" {
			prefix = n + "{" + labels + "} "
		}
		for _, line := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(line, prefix); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				require.NoError(t, err, line)
				return f
			}
		}
	}
	t.Fatalf("no sample %s{%s} in:\n%s", name, labels, text)
	return 0
}

func readTraces(t *testing.T, path string) []ptrace.Traces {
	var tds []ptrace.Traces
	var u ptrace.JSONUnmarshaler
	for _, line := range readLines(t, path) {
		td, err := u.UnmarshalTraces(line)
		require.NoError(t, err)
		tds = append(tds, td)
	}
	return tds
}

func spanCount(tds []ptrace.Traces) int {
	n := 0
	for _, td := range tds {
		n += td.SpanCount()
	}
	return n
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	return strings.TrimSpace(string(b))
}
