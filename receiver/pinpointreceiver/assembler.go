package pinpointreceiver

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"

	"github.com/weftobs/weft/receiver/pinpointreceiver/internal/metadata"
	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
	"github.com/weftobs/weft/receiver/pinpointreceiver/internal/translate"
)

// bundleKey names one Pinpoint span: its chunks gather under it.
type bundleKey struct {
	tx     translate.Transaction
	spanID int64
}

// Spans already sent are remembered so that their late chunks (asynchronous
// work that outlived the request) go out at once instead of waiting
// chunk_wait for a span that came already. It only saves latency: a chunk
// that finds no entry waits, and is converted the same way.
const (
	sentTTL = 10 * time.Second
	maxSent = 200_000
)

// waiting is the chunks of a span that has not arrived yet.
type waiting struct {
	header agentHeader
	chunks []*v1.PSpanChunk
	since  time.Time
	bytes  int
}

// parked is a bundle waiting for names its agent has not sent yet.
type parked struct {
	header   agentHeader
	bundle   translate.Bundle
	deadline time.Time
	bytes    int
}

// assembler turns span messages into OTel spans. It holds chunks back until
// their span arrives (agents usually send chunks first) for at most
// chunk_wait, and bundles whose names are not known yet for at most
// metadata_wait, within max_buffered_bytes. Nothing it holds is dropped: at
// the end of a wait, under memory pressure or at shutdown, it is converted
// as it is (chunks without their span, placeholder names) and counted.
type assembler struct {
	cfg       *Config
	store     *store
	telemetry *metadata.TelemetryBuilder
	consume   func(context.Context, ptrace.Traces, int) error
	logger    *zap.Logger
	pool      sync.Pool // *translate.Translator

	mu      sync.Mutex
	chunks  map[bundleKey]*waiting
	sent    map[bundleKey]time.Time // spans already sent: their late chunks need not wait
	pending []*parked
	bytes   int

	wake  chan struct{}
	stopc chan struct{}
	wg    sync.WaitGroup
}

func newAssembler(cfg *Config, s *store, tb *metadata.TelemetryBuilder,
	consume func(context.Context, ptrace.Traces, int) error, logger *zap.Logger,
) *assembler {
	a := &assembler{
		cfg: cfg, store: s, telemetry: tb, consume: consume, logger: logger,
		chunks: map[bundleKey]*waiting{},
		sent:   map[bundleKey]time.Time{},
		wake:   make(chan struct{}, 1),
		stopc:  make(chan struct{}),
	}
	opts := translate.Options{SQLBindValues: cfg.SQLBindValues}
	a.pool.New = func() any { return translate.NewTranslator(opts) }
	return a
}

func (a *assembler) start() {
	a.wg.Add(1)
	go a.loop()
}

// stop ends the wait of everything held and sends it.
func (a *assembler) stop() {
	close(a.stopc)
	a.wg.Wait()
	a.mu.Lock()
	var chunks []*waiting
	for k, w := range a.chunks {
		chunks = append(chunks, w)
		delete(a.chunks, k)
	}
	pending := a.pending
	a.pending = nil
	a.bytes = 0
	a.mu.Unlock()
	ctx := context.Background()
	for _, w := range chunks {
		a.telemetry.ReceiverPinpointBufferedSpans.Add(ctx, -1)
		a.telemetry.ReceiverPinpointChunksWithoutSpan.Add(ctx, int64(len(w.chunks)))
		a.emit(ctx, w.header, translate.Bundle{Chunks: w.chunks})
	}
	for _, p := range pending {
		a.telemetry.ReceiverPinpointBufferedSpans.Add(ctx, -1)
		a.emit(ctx, p.header, p.bundle)
	}
}

// add takes one span message. It returns an error, and keeps nothing, when
// the message cannot be converted; the caller counts and reports it.
func (a *assembler) add(ctx context.Context, h agentHeader, msg *v1.PSpanMessage) error {
	switch {
	case msg.GetSpan() != nil:
		span := msg.GetSpan()
		tx, spanID, err := translate.Check(translate.Bundle{Span: span}, h.AgentID)
		if err != nil {
			return &conversionError{err}
		}
		key := bundleKey{tx: tx, spanID: spanID}
		a.mu.Lock()
		w := a.chunks[key]
		if w != nil {
			delete(a.chunks, key)
			a.bytes -= w.bytes
		}
		if len(a.sent) < maxSent {
			a.sent[key] = time.Now()
		}
		a.mu.Unlock()
		b := translate.Bundle{Span: span}
		if w != nil {
			a.telemetry.ReceiverPinpointBufferedSpans.Add(ctx, -1)
			b.Chunks = w.chunks
		}
		return a.process(ctx, h, b)

	case msg.GetSpanChunk() != nil:
		chunk := msg.GetSpanChunk()
		tx, spanID, err := translate.Check(translate.Bundle{Chunks: []*v1.PSpanChunk{chunk}}, h.AgentID)
		if err != nil {
			return &conversionError{err}
		}
		key := bundleKey{tx: tx, spanID: spanID}
		size := proto.Size(chunk)
		a.mu.Lock()
		if _, ok := a.sent[key]; ok {
			a.mu.Unlock()
			return a.process(ctx, h, translate.Bundle{Chunks: []*v1.PSpanChunk{chunk}})
		}
		w := a.chunks[key]
		if w == nil {
			w = &waiting{header: h, since: time.Now()}
			a.chunks[key] = w
			a.telemetry.ReceiverPinpointBufferedSpans.Add(ctx, 1)
		}
		w.chunks = append(w.chunks, chunk)
		w.bytes += size
		a.bytes += size
		over := a.bytes > a.cfg.MaxBufferedBytes
		a.mu.Unlock()
		if over {
			a.relieve(ctx)
		}
		return nil
	}
	return &conversionError{errEmptyMessage}
}

// process sends a bundle, or parks it when names are missing and waiting
// for them is allowed. It converts first: names are almost always known by
// then, and the conversion counts the missing ones, so the common case looks
// each name up once.
func (a *assembler) process(ctx context.Context, h agentHeader, b translate.Bundle) error {
	td, res, err := a.convert(h, b)
	if err != nil {
		return err
	}
	if res.Unresolved > 0 && a.cfg.MetadataWait > 0 {
		size := bundleSize(b)
		a.mu.Lock()
		a.pending = append(a.pending, &parked{header: h, bundle: b, deadline: time.Now().Add(a.cfg.MetadataWait), bytes: size})
		a.bytes += size
		over := a.bytes > a.cfg.MaxBufferedBytes
		a.mu.Unlock()
		a.telemetry.ReceiverPinpointBufferedSpans.Add(ctx, 1)
		if over {
			a.relieve(ctx)
		}
		return nil
	}
	return a.send(ctx, td, res)
}

// metadataArrived makes parked bundles of that agent be checked now rather
// than at the next tick.
func (a *assembler) metadataArrived() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

func (a *assembler) loop() {
	defer a.wg.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-a.stopc:
			return
		case <-tick.C:
		case <-a.wake:
		}
		a.release(time.Now())
	}
}

// release sends what has waited long enough, and parked bundles whose
// names have arrived.
func (a *assembler) release(now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), emitTimeout)
	defer cancel()

	a.mu.Lock()
	var lone []*waiting
	for k, w := range a.chunks {
		if now.Sub(w.since) >= a.cfg.ChunkWait {
			lone = append(lone, w)
			delete(a.chunks, k)
			a.bytes -= w.bytes
		}
	}
	for k, t := range a.sent {
		if now.Sub(t) >= min(a.cfg.ChunkWait, sentTTL) {
			delete(a.sent, k)
		}
	}
	pending := a.pending
	a.pending = nil
	a.mu.Unlock()

	for _, w := range lone {
		a.telemetry.ReceiverPinpointBufferedSpans.Add(ctx, -1)
		a.telemetry.ReceiverPinpointChunksWithoutSpan.Add(ctx, int64(len(w.chunks)))
		if err := a.process(ctx, w.header, translate.Bundle{Chunks: w.chunks}); err != nil {
			a.logger.Debug("Sending span chunks failed", zap.Error(err))
		}
	}

	var still []*parked
	for _, p := range pending {
		if now.Before(p.deadline) && translate.Unresolved(p.bundle, a.names(p.header)) > 0 {
			still = append(still, p)
			continue
		}
		a.mu.Lock()
		a.bytes -= p.bytes
		a.mu.Unlock()
		a.telemetry.ReceiverPinpointBufferedSpans.Add(ctx, -1)
		if err := a.emit(ctx, p.header, p.bundle); err != nil {
			a.logger.Debug("Sending spans failed", zap.Error(err))
		}
	}
	if len(still) > 0 {
		a.mu.Lock()
		a.pending = append(still, a.pending...)
		a.mu.Unlock()
	}
}

// relieve brings the buffer back under max_buffered_bytes: the oldest
// waiting chunks go without their span, then the oldest parked bundles with
// placeholder names.
func (a *assembler) relieve(ctx context.Context) {
	for {
		a.mu.Lock()
		if a.bytes <= a.cfg.MaxBufferedBytes {
			a.mu.Unlock()
			return
		}
		var oldestKey bundleKey
		var oldest *waiting
		for k, w := range a.chunks {
			if oldest == nil || w.since.Before(oldest.since) {
				oldestKey, oldest = k, w
			}
		}
		if oldest != nil {
			delete(a.chunks, oldestKey)
			a.bytes -= oldest.bytes
			a.mu.Unlock()
			a.telemetry.ReceiverPinpointBufferedSpans.Add(ctx, -1)
			a.telemetry.ReceiverPinpointChunksWithoutSpan.Add(ctx, int64(len(oldest.chunks)))
			_ = a.emit(ctx, oldest.header, translate.Bundle{Chunks: oldest.chunks})
			continue
		}
		if len(a.pending) == 0 {
			a.mu.Unlock()
			return
		}
		p := a.pending[0]
		a.pending = a.pending[1:]
		a.bytes -= p.bytes
		a.mu.Unlock()
		a.telemetry.ReceiverPinpointBufferedSpans.Add(ctx, -1)
		_ = a.emit(ctx, p.header, p.bundle)
	}
}

func (a *assembler) names(h agentHeader) agentNames {
	agent := agentKey{agentID: h.AgentID, start: h.StartTime}
	return a.store.names(agent, serviceType(h, a.store.agentInfo(agent)))
}

// emit converts a bundle and sends it down the traces pipeline.
func (a *assembler) emit(ctx context.Context, h agentHeader, b translate.Bundle) error {
	td, res, err := a.convert(h, b)
	if err != nil {
		return err
	}
	return a.send(ctx, td, res)
}

// convert turns a bundle into OTel spans under the agent's resource.
func (a *assembler) convert(h agentHeader, b translate.Bundle) (ptrace.Traces, translate.Result, error) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	agent := agentKey{agentID: h.AgentID, start: h.StartTime}
	info := a.store.agentInfo(agent)
	putResource(rs.Resource(), h, info)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName(metadata.ScopeName)

	tr := a.pool.Get().(*translate.Translator)
	res, err := tr.Translate(ss.Spans(), h.AgentID, b, a.store.names(agent, serviceType(h, info)))
	a.pool.Put(tr)
	return td, res, err
}

// send sends converted spans, counting the placeholder names they carry.
func (a *assembler) send(ctx context.Context, td ptrace.Traces, res translate.Result) error {
	if res.Unresolved > 0 {
		a.telemetry.ReceiverPinpointPlaceholderNames.Add(ctx, int64(res.Unresolved))
	}
	return a.consume(ctx, td, res.Spans)
}

func bundleSize(b translate.Bundle) int {
	n := 0
	if b.Span != nil {
		n += proto.Size(b.Span)
	}
	for _, c := range b.Chunks {
		n += proto.Size(c)
	}
	return n
}

// putResource describes the agent process: who it is from the headers, where
// it runs from its agent info.
func putResource(res pcommon.Resource, h agentHeader, info *v1.PAgentInfo) {
	attrs := res.Attributes()
	attrs.EnsureCapacity(12)
	name := h.ApplicationName
	if name == "" {
		name = h.AgentID
	}
	attrs.PutStr("service.name", name)
	attrs.PutStr("service.instance.id", h.AgentID)
	if h.AgentName != "" {
		attrs.PutStr("pinpoint.agent.name", h.AgentName)
	}
	if h.ServiceName != "" {
		attrs.PutStr("service.namespace", h.ServiceName)
	}
	attrs.PutInt("pinpoint.agent.start_time", h.StartTime)
	if info != nil {
		if v := info.GetHostname(); v != "" {
			attrs.PutStr("host.name", v)
		}
		if v := info.GetIp(); v != "" {
			attrs.PutEmptySlice("host.ip").AppendEmpty().SetStr(v)
		}
		if v := info.GetPid(); v != 0 {
			attrs.PutInt("process.pid", int64(v))
		}
		if v := info.GetAgentVersion(); v != "" {
			attrs.PutStr("telemetry.sdk.version", v)
		}
		if v := info.GetVmVersion(); v != "" {
			attrs.PutStr("process.runtime.version", v)
		}
		if info.GetContainer() {
			attrs.PutBool("pinpoint.agent.container", true)
		}
	}
	attrs.PutStr("telemetry.sdk.name", "pinpoint")
	st := serviceType(h, info)
	if lang := translate.Language(st); lang != "" {
		attrs.PutStr("telemetry.sdk.language", lang)
	}
	if st > 0 {
		attrs.PutInt("pinpoint.service_type", int64(st))
	}
}

// serviceType is the agent's service type: its agent info's, else its
// header's.
func serviceType(h agentHeader, info *v1.PAgentInfo) int32 {
	if info != nil {
		return info.GetServiceType()
	}
	return h.ServiceType
}
