package tracecompletionprocessor

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
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

	// Plugins are Wasm plugins (internal/wasmplugin, ABI.md) run on every
	// span before it is indexed; the key/values they return are written as
	// span string attributes, so that they can be correlation keys.
	Plugins []PluginConfig `mapstructure:"plugins"`
	// Wasm limits every plugin's sandbox.
	Wasm WasmConfig `mapstructure:"wasm"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// PluginConfig names one Wasm plugin.
type PluginConfig struct {
	// Path is the plugin's .wasm file. It is read at Start.
	Path string `mapstructure:"path"`
	// Config is accepted for the shape of issue #10 but not passed to
	// plugins yet: ABI version 1 has no way to hand it over.
	Config map[string]any `mapstructure:"config"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// WasmConfig limits the sandbox of every plugin.
type WasmConfig struct {
	// MemoryLimit is the most linear memory one plugin instance may have,
	// in bytes (rounded up to 64 KiB pages).
	MemoryLimit int64 `mapstructure:"memory_limit"`
	// Timeout bounds one plugin call (one span), wall clock.
	Timeout time.Duration `mapstructure:"timeout"`

	// prevent unkeyed literal initialization
	_ struct{}
}

const (
	defaultWasmMemoryLimit = 64 << 20
	// defaultWasmTimeout is internal/wasmplugin's own default (not
	// exported there).
	defaultWasmTimeout = 20 * time.Millisecond
)

func createDefaultConfig() component.Config {
	return &Config{
		Wait:            10 * time.Second,
		MaxWait:         time.Minute,
		MaxSpans:        500_000,
		MaxBytes:        256 << 20,
		LateJoinTTL:     2 * time.Minute,
		LateJoinMaxKeys: 1_000_000,
		TimeTolerance:   60 * time.Millisecond,
		Wasm: WasmConfig{
			MemoryLimit: defaultWasmMemoryLimit,
			Timeout:     defaultWasmTimeout,
		},
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
	for i, pl := range cfg.Plugins {
		if pl.Path == "" {
			errs = append(errs, fmt.Errorf("plugins[%d]: path must be set", i))
		}
	}
	if cfg.Wasm.MemoryLimit <= 0 {
		errs = append(errs, fmt.Errorf("wasm.memory_limit must be positive, got %d", cfg.Wasm.MemoryLimit))
	}
	if cfg.Wasm.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("wasm.timeout must be positive, got %s", cfg.Wasm.Timeout))
	}
	if len(errs) == 0 && cfg.LateJoinTTL > 0 && cfg.LateJoinTTL < cfg.Wait {
		errs = append(errs, errors.New("late_join_ttl shorter than wait forgets keys before late spans can use them; make it at least wait, or 0 to disable late joins"))
	}
	return errors.Join(errs...)
}
