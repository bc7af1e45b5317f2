package tracecompletionprocessor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/weftobs/weft/processor/tracecompletionprocessor/groundtruth"
	"github.com/weftobs/weft/processor/tracecompletionprocessor/internal/metadatatest"
	"github.com/weftobs/weft/processor/tracecompletionprocessor/internal/stitch"
)

// shop is a small simulated shop: every kind of link, DeepFlow rows and
// application spans.
func shop(t *testing.T) groundtruth.Output {
	t.Helper()
	return groundtruth.Generate(groundtruth.Config{
		Seed: 3, Requests: 20, Rate: 500, Instrument: groundtruth.InstrumentAll, RetryRate: 0.2,
		OneWayRate: 0.1, ClockSkew: 2 * time.Millisecond,
	})
}

func newTestProcessor(t *testing.T, cfg *Config, tt *componenttest.Telemetry, next *consumertest.TracesSink) *tcProcessor {
	t.Helper()
	p, err := NewFactory().CreateTraces(t.Context(), metadatatest.NewSettings(tt), cfg, next)
	require.NoError(t, err)
	require.NoError(t, p.Start(t.Context(), componenttest.NewNopHost()))
	return p.(*tcProcessor)
}

func consumeAll(t *testing.T, p *tcProcessor, out groundtruth.Output) {
	t.Helper()
	for _, b := range out.Batches {
		require.NoError(t, p.ConsumeTraces(t.Context(), b.Traces))
	}
}

func sum(t *testing.T, tt *componenttest.Telemetry, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	m, err := tt.GetMetric(name)
	require.NoError(t, err, "metric %s", name)
	want := attribute.NewSet(attrs...)
	var total int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if len(attrs) == 0 || dp.Attributes.Equals(&want) {
			total += dp.Value
		}
	}
	return total
}

// TestShutdownSendsEverythingStitched: spans held at shutdown leave,
// stitched, and the metrics tell what happened.
func TestShutdownSendsEverythingStitched(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	cfg.Wait, cfg.MaxWait = time.Hour, time.Hour // nothing leaves before shutdown
	sink := new(consumertest.TracesSink)
	p := newTestProcessor(t, cfg, tt, sink)
	out := shop(t)
	consumeAll(t, p, out)
	assert.Zero(t, sink.SpanCount(), "held for the wait")
	assert.Equal(t, int64(out.Spans), sum(t, tt, "otelcol_processor_trace_completion_buffered_spans"))
	assert.Positive(t, sum(t, tt, "otelcol_processor_trace_completion_buffered_bytes"))

	require.NoError(t, p.Shutdown(t.Context()))
	rep := groundtruth.Evaluate(out.Truth, sink.AllTraces())
	t.Log(rep)
	assert.Zero(t, rep.Missing)
	assert.Zero(t, rep.Unexpected)
	assert.Equal(t, 1.0, rep.Precision())
	assert.Equal(t, 1.0, rep.Recall())
	assert.Zero(t, rep.CrossTrace)

	metadatatest.AssertEqualProcessorTraceCompletionBufferedSpans(t, tt, []metricdata.DataPoint[int64]{{Value: 0}},
		metricdatatest.IgnoreTimestamp())
	assert.Zero(t, sum(t, tt, "otelcol_processor_trace_completion_buffered_bytes"))
	assert.Positive(t, sum(t, tt, "otelcol_processor_trace_completion_groups_flushed", attribute.String("reason", "shutdown")))
	for key, n := range rep.ByKey {
		assert.Equal(t, int64(n[0]), sum(t, tt, "otelcol_processor_trace_completion_links", attribute.String("key", key)), key)
	}
	assert.Equal(t, int64(rep.Sessions), sum(t, tt, "otelcol_processor_trace_completion_merged_sessions"))
}

// TestGroupsLeaveAfterTheWait: the background flusher sends a group once
// it has been quiet for the wait, without a shutdown.
func TestGroupsLeaveAfterTheWait(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	cfg.Wait = 200 * time.Millisecond
	cfg.LateJoinTTL = time.Second
	sink := new(consumertest.TracesSink)
	p := newTestProcessor(t, cfg, tt, sink)
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	out := shop(t)
	consumeAll(t, p, out)
	require.Eventually(t, func() bool { return sink.SpanCount() == out.Spans-sessions(out) }, 30*time.Second, 10*time.Millisecond,
		"spans did not leave after the wait")
	rep := groundtruth.Evaluate(out.Truth, sink.AllTraces())
	assert.Zero(t, rep.CrossTrace)
	assert.Positive(t, rep.Made)
	assert.Positive(t, sum(t, tt, "otelcol_processor_trace_completion_groups_flushed", attribute.String("reason", "wait")))
	assert.Positive(t, sum(t, tt, "otelcol_processor_trace_completion_late_join_keys"))
}

// sessions counts the response rows that are merged away.
func sessions(out groundtruth.Output) int {
	n := 0
	for _, tr := range out.Truth {
		if tr.Absorbed {
			n++
		}
	}
	return n
}

// TestPressureSendsOldestGroupsAtOnce: past max_spans spans leave from
// ConsumeTraces itself, and are counted as evicted.
func TestPressureSendsOldestGroupsAtOnce(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	cfg.Wait, cfg.MaxWait, cfg.MaxSpans = time.Hour, time.Hour, 100
	sink := new(consumertest.TracesSink)
	p := newTestProcessor(t, cfg, tt, sink)
	out := shop(t)
	consumeAll(t, p, out)
	assert.Positive(t, sink.SpanCount(), "sent before the wait")
	// Evicted counts spans received, including response rows merged into
	// their request row.
	evicted := sum(t, tt, "otelcol_processor_trace_completion_evicted_spans", attribute.String("limit", "max_spans"))
	assert.GreaterOrEqual(t, evicted, int64(sink.SpanCount()))
	assert.LessOrEqual(t, sum(t, tt, "otelcol_processor_trace_completion_buffered_spans"), int64(cfg.MaxSpans))
	require.NoError(t, p.Shutdown(t.Context()))
	assert.Equal(t, out.Spans-sessions(out)+groundtruth.Evaluate(out.Truth, sink.AllTraces()).Unmerged, sink.SpanCount(), "nothing dropped")
}

// TestRefusedSpansAreCounted: when the next consumer refuses stitched
// spans, the processor says so (log and metric) and goes on.
func TestRefusedSpansAreCounted(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	p, err := NewFactory().CreateTraces(t.Context(), metadatatest.NewSettings(tt), cfg, consumertest.NewErr(errors.New("queue full")))
	require.NoError(t, err)
	require.NoError(t, p.Start(t.Context(), componenttest.NewNopHost()))
	out := shop(t)
	for _, b := range out.Batches {
		require.NoError(t, p.ConsumeTraces(t.Context(), b.Traces), "held spans are not the caller's to retry")
	}
	require.NoError(t, p.Shutdown(t.Context()))
	assert.Equal(t, int64(out.Spans-sessions(out)), sum(t, tt, "otelcol_processor_trace_completion_refused_spans"))
}

// TestMutatesData: the processor changes spans (trace ids, parents).
func TestMutatesData(t *testing.T) {
	p, err := NewFactory().CreateTraces(t.Context(), metadatatest.NewSettings(componenttest.NewTelemetry()),
		createDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	assert.True(t, p.Capabilities().MutatesData)
	require.NoError(t, p.Shutdown(t.Context()), "shutdown without start")
}

// TestEmptyBatches: nothing in, nothing out, no error.
func TestEmptyBatches(t *testing.T) {
	sink := new(consumertest.TracesSink)
	p := newTestProcessor(t, createDefaultConfig().(*Config), componenttest.NewTelemetry(), sink)
	require.NoError(t, p.ConsumeTraces(t.Context(), ptrace.NewTraces()))
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	require.NoError(t, p.ConsumeTraces(t.Context(), td))
	require.NoError(t, p.Shutdown(t.Context()))
	assert.Zero(t, sink.SpanCount())
}

// TestConcurrentConsumers: receivers call ConsumeTraces from many
// goroutines while the flusher sends groups and max_spans forces groups
// out; every span leaves exactly once and links stay inside requests.
func TestConcurrentConsumers(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Wait, cfg.MaxSpans = 20*time.Millisecond, 400
	sink := new(consumertest.TracesSink)
	p := newTestProcessor(t, cfg, componenttest.NewTelemetry(), sink)
	outs := make([]groundtruth.Output, 4)
	want := 0
	for i := range outs {
		outs[i] = groundtruth.Generate(groundtruth.Config{Seed: uint64(40 + i), Requests: 30, Rate: 1000,
			Instrument: groundtruth.Instrumentation(i % 3), RetryRate: 0.2})
		want += outs[i].Spans
	}
	var wg sync.WaitGroup
	for i := range outs {
		wg.Add(1)
		go func(out groundtruth.Output) {
			defer wg.Done()
			for _, b := range out.Batches {
				assert.NoError(t, p.ConsumeTraces(context.Background(), b.Traces))
			}
		}(outs[i])
	}
	wg.Wait()
	require.NoError(t, p.Shutdown(t.Context()))
	require.Equal(t, want, sink.SpanCount())
	seen := map[pcommon.SpanID]int{}
	for _, td := range sink.AllTraces() {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			ss := td.ResourceSpans().At(i).ScopeSpans()
			for j := 0; j < ss.Len(); j++ {
				for k := 0; k < ss.At(j).Spans().Len(); k++ {
					seen[ss.At(j).Spans().At(k).SpanID()]++
				}
			}
		}
	}
	assert.Len(t, seen, want, "each span once")
	for _, out := range outs {
		rep := groundtruth.Evaluate(out.Truth, sink.AllTraces())
		assert.Zero(t, rep.CrossTrace)
		assert.Zero(t, rep.Missing)
	}
}

// TestCorruptSpansAreCounted: spans whose held encoding did not decode are
// counted (and logged), not silently lost.
func TestCorruptSpansAreCounted(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	p := newTestProcessor(t, createDefaultConfig().(*Config), tt, new(consumertest.TracesSink))
	p.record(t.Context(), stitch.Result{Corrupt: 3})
	require.NoError(t, p.Shutdown(t.Context()))
	assert.Equal(t, int64(3), sum(t, tt, "otelcol_processor_trace_completion_corrupt_spans"))
}

// TestBigFlushesLeaveInChunks: a flush of more than sendChunk spans
// reaches the next consumer in calls of at most sendChunk spans, whole
// ResourceSpans each, none lost.
func TestBigFlushesLeaveInChunks(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	cfg.Wait, cfg.MaxWait = time.Hour, time.Hour
	sink := new(consumertest.TracesSink)
	p := newTestProcessor(t, cfg, tt, sink)
	const n = 3*sendChunk + 100
	td := ptrace.NewTraces()
	for i := range n {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "a")
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		var id pcommon.SpanID
		var tr pcommon.TraceID
		id[0], id[1], id[2] = byte(i>>16), byte(i>>8), byte(i)+1
		tr[0], tr[1], tr[2] = byte(i>>16), byte(i>>8), byte(i)+1
		sp.SetSpanID(id)
		sp.SetTraceID(tr)
	}
	require.NoError(t, p.ConsumeTraces(t.Context(), td))
	require.NoError(t, p.Shutdown(t.Context()))
	assert.Equal(t, n, sink.SpanCount())
	require.Len(t, sink.AllTraces(), 4)
	for _, got := range sink.AllTraces() {
		assert.LessOrEqual(t, got.SpanCount(), sendChunk)
	}
}
