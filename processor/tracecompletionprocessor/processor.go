package tracecompletionprocessor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/weftobs/weft/internal/wasmplugin"
	"github.com/weftobs/weft/processor/tracecompletionprocessor/internal/metadata"
	"github.com/weftobs/weft/processor/tracecompletionprocessor/internal/stitch"
)

// sendTimeout bounds one hand-over of stitched spans from the background
// flusher to the next consumer.
const sendTimeout = 30 * time.Second

// sendChunk bounds the spans of one call to the next consumer: a flush
// holds every group that is due, hundreds of thousands of spans under load,
// more than an OTLP exporter may send in one request (receivers take 4 MiB
// by default) or an insert should take. A ResourceSpans is never split.
const sendChunk = 8192

// tcProcessor holds spans and sends them on stitched. It is not built on
// processorhelper: spans leave later than they arrive, from a background
// flusher, not from the call that brought them.
type tcProcessor struct {
	cfg    *Config
	logger *zap.Logger
	next   consumer.Traces
	eng    *stitch.Engine
	tb     *metadata.TelemetryBuilder
	tick   time.Duration

	// plugins are loaded at Start and closed at Shutdown; nil (no plugins)
	// leaves spans untouched before the engine.
	plugins *wasmplugin.Chain

	stop     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once

	// Gauges are kept as up-down counters; reported holds what they say.
	gaugeMu  sync.Mutex
	reported struct{ spans, bytes, lateKeys int64 }

	attrs struct {
		reason map[string]metric.MeasurementOption
		limit  map[string]metric.MeasurementOption
		key    map[string]metric.MeasurementOption
	}
}

var _ processor.Traces = (*tcProcessor)(nil)

func newProcessor(cfg *Config, set processor.Settings, next consumer.Traces) (*tcProcessor, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	p := &tcProcessor{
		cfg:    cfg,
		logger: set.Logger,
		next:   next,
		tb:     tb,
		stop:   make(chan struct{}),
		eng: stitch.New(stitch.Options{
			Wait:            cfg.Wait,
			MaxWait:         cfg.MaxWait,
			MaxSpans:        cfg.MaxSpans,
			MaxBytes:        cfg.MaxBytes,
			LateJoinTTL:     cfg.LateJoinTTL,
			LateJoinMaxKeys: cfg.LateJoinMaxKeys,
			TimeTolerance:   cfg.TimeTolerance,
		}),
		// Groups leave at most a twentieth of the wait late, checked at
		// least every second and at most every 10ms.
		tick: min(max(cfg.Wait/20, 10*time.Millisecond), time.Second),
	}
	opts := func(name string, values ...string) map[string]metric.MeasurementOption {
		m := map[string]metric.MeasurementOption{}
		for _, v := range values {
			m[v] = metric.WithAttributeSet(attribute.NewSet(attribute.String(name, v)))
		}
		return m
	}
	p.attrs.reason = opts("reason", stitch.ReasonWait, stitch.ReasonMaxWait, stitch.ReasonPressure, stitch.ReasonShutdown)
	p.attrs.limit = opts("limit", stitch.LimitMaxSpans, stitch.LimitMaxBytes)
	p.attrs.key = opts("key", stitch.LinkKeys()...)
	return p, nil
}

func (p *tcProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: true}
}

// Start loads the plugins and runs the flusher that sends groups whose wait
// is over. A plugin that cannot be loaded fails Start.
func (p *tcProcessor) Start(ctx context.Context, _ component.Host) error {
	plugins, err := wasmplugin.LoadChain(ctx, p.cfg.Plugins, p.cfg.Wasm, wasmplugin.ChainSettings{
		Logger: p.logger,
		// The chain logs failed calls; they are counted here.
		Failed: func(ctx context.Context, f wasmplugin.Failure) {
			p.tb.ProcessorTraceCompletionPluginFailures.Add(ctx, 1, f.MeasurementOption())
		},
		Suspended: func(ctx context.Context) {
			p.tb.ProcessorTraceCompletionPluginSuspensions.Add(ctx, 1)
		},
	})
	if err != nil {
		return fmt.Errorf("trace_completion: %w", err)
	}
	p.plugins = plugins
	p.wg.Add(1)
	go p.loop()
	return nil
}

func (p *tcProcessor) loop() {
	defer p.wg.Done()
	t := time.NewTicker(p.tick)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case now := <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
			p.send(ctx, p.eng.Flush(now, false))
			cancel()
		}
	}
}

// ConsumeTraces takes spans in. They leave after the wait; when holding
// them exceeds max_spans or max_bytes, the oldest groups leave now, from
// this call.
func (p *tcProcessor) ConsumeTraces(ctx context.Context, td ptrace.Traces) error {
	p.plugins.Traces(ctx, td)
	res := p.eng.Add(time.Now(), td)
	if res.Spans > 0 {
		// Spans of earlier calls: neither this caller's deadline and
		// cancellation nor its client metadata are theirs, and an error
		// sending them is not this caller's to retry.
		sendCtx, cancel := context.WithTimeout(context.Background(), sendTimeout)
		p.send(sendCtx, res)
		cancel()
	} else {
		p.record(ctx, res)
	}
	return nil
}

// Shutdown stops the flusher and sends everything held, stitched as far as
// it is.
func (p *tcProcessor) Shutdown(ctx context.Context) (err error) {
	p.stopOnce.Do(func() {
		close(p.stop)
		p.wg.Wait()
		p.send(ctx, p.eng.Flush(time.Now(), true))
		err = p.plugins.Close(ctx)
		p.tb.Shutdown()
	})
	return err
}

func (p *tcProcessor) send(ctx context.Context, res stitch.Result) {
	p.record(ctx, res)
	if res.Spans == 0 {
		return
	}
	parts := chunks(res.Traces, res.Spans, sendChunk)
	for i, c := range parts {
		if err := p.next.ConsumeTraces(ctx, c.td); err != nil {
			n := c.spans
			if ctx.Err() != nil {
				// Out of time: the chunks after this one would fail the
				// same way.
				for _, rest := range parts[i+1:] {
					n += rest.spans
				}
			}
			p.tb.ProcessorTraceCompletionRefusedSpans.Add(ctx, int64(n))
			p.logger.Error("The next consumer refused stitched spans; they are lost unless an exporter downstream retries them "+
				"(give the exporter a sending_queue)", zap.Int("spans", n), zap.Error(err))
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// chunk is part of a flush's output and its span count, counted before the
// next consumer may take the data.
type chunk struct {
	td    ptrace.Traces
	spans int
}

// chunks splits td (of spans spans) into Traces of at most limit spans
// each, moving whole ResourceSpans (one larger than limit goes alone).
func chunks(td ptrace.Traces, spans, limit int) []chunk {
	if spans <= limit {
		return []chunk{{td, spans}}
	}
	var out []chunk
	cur := chunk{td: ptrace.NewTraces()}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		k := 0
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			k += rs.ScopeSpans().At(j).Spans().Len()
		}
		if cur.spans > 0 && cur.spans+k > limit {
			out = append(out, cur)
			cur = chunk{td: ptrace.NewTraces()}
		}
		rs.MoveTo(cur.td.ResourceSpans().AppendEmpty())
		cur.spans += k
	}
	if cur.spans > 0 {
		out = append(out, cur)
	}
	return out
}

func (p *tcProcessor) record(ctx context.Context, res stitch.Result) {
	tb := p.tb
	for reason, n := range res.Groups {
		tb.ProcessorTraceCompletionGroupsFlushed.Add(ctx, int64(n), p.attrs.reason[reason])
	}
	for key, n := range res.Links {
		tb.ProcessorTraceCompletionLinks.Add(ctx, int64(n), p.attrs.key[key])
	}
	for limit, n := range res.Evicted {
		tb.ProcessorTraceCompletionEvictedSpans.Add(ctx, int64(n), p.attrs.limit[limit])
	}
	if res.LateJoins > 0 {
		tb.ProcessorTraceCompletionLateJoins.Add(ctx, int64(res.LateJoins))
	}
	if res.Merged > 0 {
		tb.ProcessorTraceCompletionMergedSessions.Add(ctx, int64(res.Merged))
	}
	if res.Corrupt > 0 {
		tb.ProcessorTraceCompletionCorruptSpans.Add(ctx, int64(res.Corrupt))
		// Error level: held encodings are Weft's own, so this is a bug that
		// loses span data, not bad input.
		p.logger.Error("Held spans failed to decode and were sent incomplete or dropped; please report this as a bug",
			zap.Int("spans", res.Corrupt))
	}
	spans, bytes := p.eng.Buffered()
	lateKeys := int64(p.eng.LateKeys())
	p.gaugeMu.Lock()
	ds, db, dl := int64(spans)-p.reported.spans, bytes-p.reported.bytes, lateKeys-p.reported.lateKeys
	p.reported.spans, p.reported.bytes, p.reported.lateKeys = int64(spans), bytes, lateKeys
	p.gaugeMu.Unlock()
	if ds != 0 {
		tb.ProcessorTraceCompletionBufferedSpans.Add(ctx, ds)
	}
	if db != 0 {
		tb.ProcessorTraceCompletionBufferedBytes.Add(ctx, db)
	}
	if dl != 0 {
		tb.ProcessorTraceCompletionLateJoinKeys.Add(ctx, dl)
	}
}
