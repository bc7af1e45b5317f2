package tracecompletionprocessor

import (
	"context"
	"errors"
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

	// plugins are loaded at Start and closed at Shutdown; with none, spans
	// are not touched before the engine.
	plugins []*wasmplugin.Plugin
	kvPool  sync.Pool // *[]wasmplugin.KV, reused answer buffers

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
		// failure is indexed by wasmplugin.Failure.
		failure []metric.MeasurementOption
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
	for f := wasmplugin.FailureTimeout; f <= wasmplugin.FailureUnavailable; f++ {
		p.attrs.failure = append(p.attrs.failure, metric.WithAttributeSet(attribute.NewSet(attribute.String("failure", f.String()))))
	}
	return p, nil
}

func (p *tcProcessor) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: true}
}

// Start loads the plugins and runs the flusher that sends groups whose wait
// is over. A plugin that cannot be loaded fails Start.
func (p *tcProcessor) Start(ctx context.Context, _ component.Host) error {
	opts := wasmplugin.Options{MemoryLimit: uint64(p.cfg.Wasm.MemoryLimit), Timeout: p.cfg.Wasm.Timeout}
	for i, pc := range p.cfg.Plugins {
		pl, err := wasmplugin.Load(ctx, pc.Path, opts)
		if err != nil {
			err = fmt.Errorf("trace_completion: plugins[%d] (%s) could not be loaded: %w", i, pc.Path, err)
			err = errors.Join(err, p.closePlugins(ctx))
			p.plugins = nil
			return err
		}
		p.plugins = append(p.plugins, pl)
	}
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
	if len(p.plugins) > 0 {
		p.runPlugins(ctx, td)
	}
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
		err = p.closePlugins(ctx)
		p.tb.Shutdown()
	})
	return err
}

// closePlugins closes the loaded plugins. A call still running finishes or
// fails; later calls fail as unavailable (counted), so a ConsumeTraces that
// races Shutdown passes its spans on without keys.
func (p *tcProcessor) closePlugins(ctx context.Context) error {
	var errs []error
	for _, pl := range p.plugins {
		if err := pl.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("closing plugin %s: %w", pl.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// runPlugins runs every plugin on every span and writes what each returned
// as span string attributes, before the engine reads the span. A failed
// call leaves the span as it was (the plugin's answer is dropped whole) and
// is counted; later plugins see what earlier ones wrote.
func (p *tcProcessor) runPlugins(ctx context.Context, td ptrace.Traces) {
	bufp, _ := p.kvPool.Get().(*[]wasmplugin.KV)
	if bufp == nil {
		bufp = new([]wasmplugin.KV)
	}
	kvs := *bufp
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource()
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				for _, pl := range p.plugins {
					var err error
					kvs, err = pl.Extract(ctx, wasmplugin.SpanRecord(res, span), kvs[:0])
					if err != nil {
						p.pluginFailed(ctx, err)
						continue
					}
					attrs := span.Attributes()
					for _, kv := range kvs {
						attrs.PutStr(kv.Key, kv.Value)
					}
				}
			}
		}
	}
	clear(kvs[:cap(kvs)]) // do not keep strings of this batch alive
	*bufp = kvs[:0]
	p.kvPool.Put(bufp)
}

func (p *tcProcessor) pluginFailed(ctx context.Context, err error) {
	f, ok := wasmplugin.FailureOf(err)
	if !ok || int(f) < 0 || int(f) >= len(p.attrs.failure) {
		f = wasmplugin.FailureTrap
	}
	p.tb.ProcessorTraceCompletionPluginFailures.Add(ctx, 1, p.attrs.failure[f])
	p.logger.Debug("A plugin call failed; the span goes on without its keys", zap.Error(err))
}

func (p *tcProcessor) send(ctx context.Context, res stitch.Result) {
	p.record(ctx, res)
	if res.Spans == 0 {
		return
	}
	if err := p.next.ConsumeTraces(ctx, res.Traces); err != nil {
		p.tb.ProcessorTraceCompletionRefusedSpans.Add(ctx, int64(res.Spans))
		p.logger.Error("The next consumer refused stitched spans; they are lost unless an exporter downstream retries them "+
			"(give the exporter a sending_queue)", zap.Int("spans", res.Spans), zap.Error(err))
	}
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
