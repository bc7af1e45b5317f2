// Package e2e runs the real weftcol binary, built by `make build`, and talks
// to it the way users' applications and operators do.
package e2e

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftobs/weft/tests/harness"
)

// TestDefaultPipeline runs distro/config.yaml — what `make run` runs — and
// sends traces (OTLP gRPC and HTTP), metrics and logs with the OTel Go SDK,
// then reads back what the file exporters wrote.
func TestDefaultPipeline(t *testing.T) {
	c := harness.StartCollector(t, harness.DistroConfig(t))
	ctx := t.Context()
	res := resource.NewSchemaless(
		semconv.ServiceName("checkout"),
		semconv.ServiceInstanceID("checkout-7d9f-1"),
		attribute.String("k8s.pod.ip", "10.1.2.3"),
	)

	// Traces over gRPC: a server span with a client child.
	texp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(c.OTLPGRPC), otlptracegrpc.WithInsecure())
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(texp))
	tracer := tp.Tracer("e2e")
	sctx, server := tracer.Start(ctx, "GET /cart", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "GET"), attribute.Int("http.response.status_code", 200)))
	_, client := tracer.Start(sctx, "SELECT carts", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system", "mysql"), attribute.String("server.address", "10.1.9.9")))
	client.End()
	server.End()
	require.NoError(t, tp.Shutdown(ctx))

	// Traces over HTTP.
	hexp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(c.OTLPHTTP), otlptracehttp.WithInsecure())
	require.NoError(t, err)
	htp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(hexp))
	_, hs := htp.Tracer("e2e").Start(ctx, "sent over http")
	hs.End()
	require.NoError(t, htp.Shutdown(ctx))

	// Metrics: a counter with an attribute and a histogram.
	mexp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(c.OTLPGRPC), otlpmetricgrpc.WithInsecure())
	require.NoError(t, err)
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res), sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp)))
	meter := mp.Meter("e2e")
	requests, err := meter.Int64Counter("checkout.requests")
	require.NoError(t, err)
	requests.Add(ctx, 3, metric.WithAttributes(attribute.String("route", "/cart")))
	latency, err := meter.Float64Histogram("checkout.latency", metric.WithUnit("ms"))
	require.NoError(t, err)
	for _, v := range []float64{4, 12, 250} {
		latency.Record(ctx, v)
	}
	require.NoError(t, mp.Shutdown(ctx)) // flushes

	// Logs.
	lexp, err := otlploggrpc.New(ctx, otlploggrpc.WithEndpoint(c.OTLPGRPC), otlploggrpc.WithInsecure())
	require.NoError(t, err)
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewSimpleProcessor(lexp)))
	var rec otellog.Record
	rec.SetBody(attribute.StringValue("payment declined"))
	rec.SetSeverity(otellog.SeverityWarn)
	rec.AddAttributes(attribute.String("order.id", "A-1001"))
	lp.Logger("e2e").Emit(ctx, rec)
	require.NoError(t, lp.Shutdown(ctx))

	// Everything arrives in the files, intact.
	var spans map[string]ptrace.Span
	var spanResources map[string]pcommon.Resource
	harness.WaitFor(t, 30*time.Second, "spans in traces.jsonl", func() error {
		spans, spanResources = readSpans(t, filepath.Join(c.DataDir, "traces.jsonl"))
		return wantKeys(spans, "GET /cart", "SELECT carts", "sent over http")
	})
	srv, cli := spans["GET /cart"], spans["SELECT carts"]
	assert.Equal(t, ptrace.SpanKindServer, srv.Kind())
	assert.Equal(t, ptrace.SpanKindClient, cli.Kind())
	assert.Equal(t, srv.TraceID(), cli.TraceID())
	assert.Equal(t, srv.SpanID(), cli.ParentSpanID())
	assert.True(t, srv.ParentSpanID().IsEmpty())
	assertAttr(t, srv.Attributes(), "http.request.method", "GET")
	assertAttr(t, srv.Attributes(), "http.response.status_code", int64(200))
	assertAttr(t, cli.Attributes(), "server.address", "10.1.9.9")
	assertAttr(t, spanResources["GET /cart"].Attributes(), "service.name", "checkout")
	assertAttr(t, spanResources["sent over http"].Attributes(), "k8s.pod.ip", "10.1.2.3")

	var metrics map[string]pmetric.Metric
	harness.WaitFor(t, 30*time.Second, "metrics in metrics.jsonl", func() error {
		metrics = readMetrics(t, filepath.Join(c.DataDir, "metrics.jsonl"))
		return wantKeys(metrics, "checkout.requests", "checkout.latency")
	})
	sum := metrics["checkout.requests"]
	require.Equal(t, pmetric.MetricTypeSum, sum.Type())
	assert.True(t, sum.Sum().IsMonotonic())
	require.Equal(t, 1, sum.Sum().DataPoints().Len())
	assert.Equal(t, int64(3), sum.Sum().DataPoints().At(0).IntValue())
	assertAttr(t, sum.Sum().DataPoints().At(0).Attributes(), "route", "/cart")
	hist := metrics["checkout.latency"]
	require.Equal(t, pmetric.MetricTypeHistogram, hist.Type())
	assert.Equal(t, "ms", hist.Unit())
	assert.Equal(t, uint64(3), hist.Histogram().DataPoints().At(0).Count())
	assert.InDelta(t, 266.0, hist.Histogram().DataPoints().At(0).Sum(), 1e-9)

	var logs []plog.LogRecord
	harness.WaitFor(t, 30*time.Second, "logs in logs.jsonl", func() error {
		logs = readLogs(t, filepath.Join(c.DataDir, "logs.jsonl"))
		if len(logs) == 0 {
			return os.ErrNotExist
		}
		return nil
	})
	require.Len(t, logs, 1)
	assert.Equal(t, "payment declined", logs[0].Body().Str())
	assert.Equal(t, plog.SeverityNumberWarn, logs[0].SeverityNumber())
	assertAttr(t, logs[0].Attributes(), "order.id", "A-1001")

	// A SIGTERM stops the collector cleanly.
	require.NoError(t, c.Signal(syscall.SIGTERM))
	require.NoError(t, c.Wait(30*time.Second), "weftcol did not exit cleanly on SIGTERM:\n%s", c.Log())
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		// A line the file exporter is still writing is incomplete JSON:
		// only complete lines (ending in a newline) are read.
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	if len(b) > 0 && b[len(b)-1] != '\n' && len(lines) > 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// readSpans indexes the spans of a traces file by name (the last one wins).
func readSpans(t *testing.T, path string) (map[string]ptrace.Span, map[string]pcommon.Resource) {
	spans, resources := map[string]ptrace.Span{}, map[string]pcommon.Resource{}
	for _, s := range readAllSpans(t, path) {
		spans[s.span.Name()] = s.span
		resources[s.span.Name()] = s.resource
	}
	return spans, resources
}

// metricRec is a metric read back from a metrics file, with its resource.
type metricRec struct {
	metric   pmetric.Metric
	resource pcommon.Resource
}

// readAllMetrics reads every metric of a metrics file, in the order written.
func readAllMetrics(t *testing.T, path string) []metricRec {
	var out []metricRec
	var u pmetric.JSONUnmarshaler
	for _, line := range readLines(t, path) {
		md, err := u.UnmarshalMetrics(line)
		require.NoError(t, err)
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			for j := 0; j < rm.ScopeMetrics().Len(); j++ {
				ms := rm.ScopeMetrics().At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					out = append(out, metricRec{metric: ms.At(k), resource: rm.Resource()})
				}
			}
		}
	}
	return out
}

// readMetrics indexes the metrics of a file by name (the last one wins).
func readMetrics(t *testing.T, path string) map[string]pmetric.Metric {
	metrics := map[string]pmetric.Metric{}
	for _, m := range readAllMetrics(t, path) {
		metrics[m.metric.Name()] = m.metric
	}
	return metrics
}

func readLogs(t *testing.T, path string) []plog.LogRecord {
	var logs []plog.LogRecord
	var u plog.JSONUnmarshaler
	for _, line := range readLines(t, path) {
		ld, err := u.UnmarshalLogs(line)
		require.NoError(t, err)
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					logs = append(logs, lrs.At(k))
				}
			}
		}
	}
	return logs
}

func wantKeys[V any](m map[string]V, keys ...string) error {
	var missing []string
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return &missingError{missing}
	}
	return nil
}

type missingError struct{ keys []string }

func (e *missingError) Error() string { return "missing " + strings.Join(e.keys, ", ") }

func assertAttr(t *testing.T, attrs pcommon.Map, key string, want any) {
	t.Helper()
	v, ok := attrs.Get(key)
	if !assert.True(t, ok, "attribute %q missing", key) {
		return
	}
	assert.Equal(t, want, v.AsRaw(), "attribute %q", key)
}
