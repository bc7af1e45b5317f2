package tracecompletionprocessor

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/weftobs/weft/internal/wasmplugin"
)

// Config defines the trace_completion processor's configuration.
type Config struct {
	// Wait is how long a group of related spans is held after its last span
	// arrived before it is stitched and sent on.
	Wait time.Duration `mapstructure:"wait"`
	// MaxWait is how long a group is held at most after its first span
	// arrived, however long it keeps growing (a long-lived trace, a busy
	// keep-alive connection); it is then sent stitched as far as it is.
	MaxWait time.Duration `mapstructure:"max_wait"`
	// MaxSpans bounds the spans held at once; past it the oldest groups are
	// sent on as they are.
	MaxSpans int `mapstructure:"max_spans"`
	// MaxBytes bounds the memory of held spans in the same way.
	MaxBytes int64 `mapstructure:"max_bytes"`
	// LateJoinTTL is how long the trace id given to a correlation key is
	// remembered after its group was sent, so that a late span still joins
	// its trace.
	LateJoinTTL time.Duration `mapstructure:"late_join_ttl"`
	// LateJoinMaxKeys bounds the keys remembered for late spans (about 80
	// bytes each); past it the oldest are forgotten before late_join_ttl.
	LateJoinMaxKeys int `mapstructure:"late_join_max_keys"`
	// TimeTolerance is how far apart the times of two spans that share a TCP
	// sequence may be (network delay plus clock offset between hosts).
	TimeTolerance time.Duration `mapstructure:"time_tolerance"`

	// Plugins are Wasm plugins (internal/wasmplugin, ABI.md) run in order
	// on every span before it is indexed; the correlation ids they extract
	// (weft.x_request_id.0, ...) are written as span attributes, and so
	// used for stitching, and their tags too with tags_as_attributes.
	Plugins []PluginConfig `mapstructure:"plugins"`
	// Wasm limits every plugin's sandbox.
	Wasm WasmConfig `mapstructure:"wasm"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// PluginConfig is one entry of plugins: path, config, tags_as_attributes
// (see wasmplugin.PluginConfig).
type PluginConfig = wasmplugin.PluginConfig

// WasmConfig limits the sandbox of every plugin: memory_limit, timeout.
type WasmConfig = wasmplugin.WasmConfig

func createDefaultConfig() component.Config {
	return &Config{
		Wait:            10 * time.Second,
		MaxWait:         time.Minute,
		MaxSpans:        500_000,
		MaxBytes:        256 << 20,
		LateJoinTTL:     2 * time.Minute,
		LateJoinMaxKeys: 1_000_000,
		TimeTolerance:   60 * time.Millisecond,
		Wasm:            wasmplugin.DefaultWasmConfig(),
	}
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.Wait <= 0 {
		errs = append(errs, fmt.Errorf("wait must be positive, got %s", cfg.Wait))
	}
	if cfg.MaxSpans <= 0 {
		errs = append(errs, fmt.Errorf("max_spans must be positive, got %d", cfg.MaxSpans))
	}
	if cfg.MaxBytes <= 0 {
		errs = append(errs, fmt.Errorf("max_bytes must be positive, got %d", cfg.MaxBytes))
	}
	if cfg.MaxWait < cfg.Wait {
		errs = append(errs, fmt.Errorf("max_wait (%s) must be at least wait (%s)", cfg.MaxWait, cfg.Wait))
	}
	if cfg.LateJoinMaxKeys <= 0 {
		errs = append(errs, fmt.Errorf("late_join_max_keys must be positive, got %d", cfg.LateJoinMaxKeys))
	}
	if cfg.LateJoinTTL < 0 {
		errs = append(errs, fmt.Errorf("late_join_ttl must not be negative, got %s", cfg.LateJoinTTL))
	}
	if cfg.TimeTolerance < 0 {
		errs = append(errs, fmt.Errorf("time_tolerance must not be negative, got %s", cfg.TimeTolerance))
	}
	errs = append(errs, wasmplugin.ValidateConfig(cfg.Plugins, cfg.Wasm)...)
	if len(errs) == 0 && cfg.LateJoinTTL > 0 && cfg.LateJoinTTL < cfg.Wait {
		errs = append(errs, errors.New("late_join_ttl shorter than wait forgets keys before late spans can use them; make it at least wait, or 0 to disable late joins"))
	}
	return errors.Join(errs...)
}
