package wasmplugin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/weftobs/weft/internal/vocab"
)

// PluginConfig is one entry of a component's `plugins` list. Components
// that run plugins embed a list of them and a WasmConfig, so that every
// component is configured the same way.
type PluginConfig struct {
	// Path is the plugin's .wasm file. It is read, compiled and checked
	// when the component starts; a plugin that cannot be loaded fails the
	// start.
	Path string `mapstructure:"path"`
	// Config is the plugin's own configuration, any YAML map. It is handed
	// to the plugin as JSON through its weft_configure export (ABI.md),
	// once per instance; a plugin that rejects it fails the start, with
	// the plugin's reason. A plugin without weft_configure takes no config.
	Config map[string]any `mapstructure:"config"`
	// TagsAsAttributes writes the tags the plugin returns, the pairs whose
	// key is not one of the vocabulary's extracted ids
	// (vocab.ExtractedID), on the span as string attributes under the keys
	// the plugin returns. Extracted ids (weft.x_request_id.0, ...) are
	// written whatever this says: finding them is what plugins are for.
	// Neither ever replaces an attribute the span already has.
	TagsAsAttributes bool `mapstructure:"tags_as_attributes"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// WasmConfig limits the sandbox of every plugin of a component.
type WasmConfig struct {
	// MemoryLimit is the most linear memory one plugin instance may have,
	// in bytes (rounded up to 64 KiB pages).
	MemoryLimit int64 `mapstructure:"memory_limit"`
	// Timeout bounds one plugin call (one span), wall clock.
	Timeout time.Duration `mapstructure:"timeout"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// DefaultWasmConfig returns the WasmConfig a component starts from: the
// defaults of Options.
func DefaultWasmConfig() WasmConfig {
	return WasmConfig{MemoryLimit: defaultMemoryLimit, Timeout: defaultTimeout}
}

// ValidateConfig checks a component's plugins and wasm settings; the errors
// name the keys (plugins[i].path, wasm.timeout). Whether a plugin can be
// read and accepts its config is known only when it is loaded, at start.
func ValidateConfig(plugins []PluginConfig, w WasmConfig) []error {
	var errs []error
	for i, pl := range plugins {
		if pl.Path == "" {
			errs = append(errs, fmt.Errorf("plugins[%d]: path must be set", i))
		}
	}
	if w.MemoryLimit <= 0 {
		errs = append(errs, fmt.Errorf("wasm.memory_limit must be positive, got %d", w.MemoryLimit))
	}
	if w.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("wasm.timeout must be positive, got %s", w.Timeout))
	}
	return errs
}

// ChainSettings say how a Chain reports what goes wrong. The callbacks
// feed the component's own metrics; nil ones are not called.
type ChainSettings struct {
	Logger *zap.Logger
	// Failed is called for every failed call, with its Failure.
	Failed func(ctx context.Context, f Failure)
	// Suspended is called when a plugin is suspended by its circuit
	// breaker (see Chain).
	Suspended func(ctx context.Context)

	// Circuit breaker settings; zero values take the defaults. They are
	// not user settings: they bound the cost of a broken plugin, and tests
	// shorten them.
	//
	// BreakerFailures is how many calls in a row must fail for a plugin
	// to be suspended. Default 20.
	BreakerFailures int
	// BreakerBackoff is the first suspension; each further one in a row
	// doubles it, up to BreakerMaxBackoff. Defaults 10s and 5m.
	BreakerBackoff, BreakerMaxBackoff time.Duration
	// now is the clock; tests set it.
	now func() time.Time
}

const (
	defaultBreakerFailures   = 20
	defaultBreakerBackoff    = 10 * time.Second
	defaultBreakerMaxBackoff = 5 * time.Minute
)

// Chain is a component's plugins, run in order on every span. Its methods
// are safe for concurrent use; a nil *Chain (no plugins) does nothing.
//
// Each plugin has a circuit breaker: after BreakerFailures failed calls in a
// row it is suspended for a back-off period, logged and reported
// (Suspended). A suspended plugin is not called at all, so a plugin that is
// broken (it traps on every span, or times out and costs a new instance
// each time) costs almost nothing while it is. When the period is over it
// gets spans again; its first failure suspends it again, for twice as
// long, and its first success closes the breaker.
type Chain struct {
	plugins []*chained
	set     ChainSettings
	kvPool  sync.Pool // *[]KV, reused answer buffers
}

// chained is one plugin of a chain.
type chained struct {
	*Plugin
	index int // in the component's plugins list, for messages
	tags  bool

	// The circuit breaker. fails counts failed calls in a row; until is
	// when the current suspension ends (UnixNano, 0 for none); backoff
	// is the length of the last suspension, 0 when the plugin last
	// succeeded.
	fails   atomic.Int64
	until   atomic.Int64
	backoff atomic.Int64
}

// LoadChain loads the plugins of a component, in order. With none it
// returns nil (a Chain that does nothing). A plugin that cannot be loaded,
// or rejects its config, fails the whole chain with an error naming its
// place and path; the ones already loaded are closed.
func LoadChain(ctx context.Context, plugins []PluginConfig, w WasmConfig, set ChainSettings) (*Chain, error) {
	if len(plugins) == 0 {
		return nil, nil
	}
	if set.Logger == nil {
		set.Logger = zap.NewNop()
	}
	if set.BreakerFailures <= 0 {
		set.BreakerFailures = defaultBreakerFailures
	}
	if set.BreakerBackoff <= 0 {
		set.BreakerBackoff = defaultBreakerBackoff
	}
	if set.BreakerMaxBackoff < set.BreakerBackoff {
		set.BreakerMaxBackoff = max(defaultBreakerMaxBackoff, set.BreakerBackoff)
	}
	if set.now == nil {
		set.now = time.Now
	}
	c := &Chain{set: set}
	for i, pc := range plugins {
		opts := Options{MemoryLimit: uint64(w.MemoryLimit), Timeout: w.Timeout, Config: pc.Config}
		pl, err := Load(ctx, pc.Path, opts)
		if err != nil {
			err = fmt.Errorf("plugins[%d] (%s) could not be loaded: %w", i, pc.Path, err)
			return nil, errors.Join(err, c.Close(ctx))
		}
		c.plugins = append(c.plugins, &chained{Plugin: pl, index: i, tags: pc.TagsAsAttributes})
	}
	return c, nil
}

// Close closes the plugins. A call still running finishes or fails; later
// calls fail as unavailable (counted), so spans that race a shutdown go on
// without keys.
func (c *Chain) Close(ctx context.Context) error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, pl := range c.plugins {
		if err := pl.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("closing plugin %s: %w", pl.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Traces runs every plugin on every span of td and writes what each
// returned on the span (see PluginConfig.TagsAsAttributes): extracted ids
// always, tags when asked, never over an attribute the span has. A failed
// call leaves the span as it was (its answer is dropped whole) and is
// reported; later plugins see what earlier ones wrote.
func (c *Chain) Traces(ctx context.Context, td ptrace.Traces) {
	if c == nil {
		return
	}
	bufp, _ := c.kvPool.Get().(*[]KV)
	if bufp == nil {
		bufp = new([]KV)
	}
	kvs := *bufp
	// One clock reading per batch: a suspension that starts within the
	// batch is seen at once (until > now), one that ends waits for the
	// next batch.
	now := c.set.now().UnixNano()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource()
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				for _, pl := range c.plugins {
					if pl.until.Load() > now {
						continue // suspended
					}
					var err error
					kvs, err = pl.Extract(ctx, SpanRecord(res, span), kvs[:0])
					if err != nil {
						c.failed(ctx, pl, err, now)
						continue
					}
					if pl.fails.Load() != 0 { // read first: no write per call
						c.recovered(pl)
					}
					attrs := span.Attributes()
					for _, kv := range kvs {
						if !pl.tags && !vocab.ExtractedID(kv.Key) {
							continue
						}
						if _, exists := attrs.Get(kv.Key); !exists {
							attrs.PutStr(kv.Key, kv.Value)
						}
					}
				}
			}
		}
	}
	clear(kvs[:cap(kvs)]) // do not keep strings of this batch alive
	*bufp = kvs[:0]
	c.kvPool.Put(bufp)
}

func (c *Chain) failed(ctx context.Context, pl *chained, err error, now int64) {
	f, ok := FailureOf(err)
	if !ok {
		f = FailureTrap
	}
	if c.set.Failed != nil {
		c.set.Failed(ctx, f)
	}
	c.set.Logger.Debug("A plugin call failed; the span goes on without its keys",
		zap.Int("plugin", pl.index), zap.String("path", pl.Name()), zap.Error(err))
	if !pluginsFault(f, err) {
		return
	}
	if pl.fails.Add(1) < int64(c.set.BreakerFailures) {
		return
	}
	until := pl.until.Load()
	if until > now {
		return // already suspended, by a concurrent call
	}
	backoff := time.Duration(pl.backoff.Load()) * 2
	if backoff == 0 {
		backoff = c.set.BreakerBackoff
	}
	backoff = min(backoff, c.set.BreakerMaxBackoff)
	if !pl.until.CompareAndSwap(until, now+int64(backoff)) {
		return // a concurrent call suspended it
	}
	pl.backoff.Store(int64(backoff))
	if c.set.Suspended != nil {
		c.set.Suspended(ctx)
	}
	c.set.Logger.Warn("A Wasm plugin failed on every call and is suspended: spans go on without its ids and tags until it is tried again",
		zap.Int("plugin", pl.index), zap.String("path", pl.Name()),
		zap.Int64("failed_calls_in_a_row", pl.fails.Load()), zap.Duration("suspended_for", backoff),
		zap.Error(err))
}

// recovered closes the breaker of a plugin whose call succeeded.
func (c *Chain) recovered(pl *chained) {
	pl.fails.Store(0)
	if pl.backoff.Swap(0) != 0 {
		c.set.Logger.Info("A suspended Wasm plugin works again", zap.Int("plugin", pl.index), zap.String("path", pl.Name()))
	}
}

// pluginsFault says whether a failure counts against the plugin's breaker:
// not when the record was too large to send, the chain is closing, or the
// caller gave up waiting for an instance.
func pluginsFault(f Failure, err error) bool {
	switch f {
	case FailureInput:
		return false
	case FailureUnavailable:
		return !errors.Is(err, ErrClosed) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	return true
}
