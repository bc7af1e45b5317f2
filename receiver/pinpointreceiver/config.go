package pinpointreceiver

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"

	"github.com/weftobs/weft/internal/wasmplugin"
)

// Default ports are the Pinpoint collector's, so agents need no change but
// their collector address.
const (
	defaultAgentEndpoint = "0.0.0.0:9991"
	defaultStatEndpoint  = "0.0.0.0:9992"
	defaultSpanEndpoint  = "0.0.0.0:9993"
)

// Config defines the pinpoint receiver's configuration.
type Config struct {
	// Agent serves the Agent, Metadata and ProfilerCommandService gRPC
	// services (Pinpoint's "tcp" port).
	Agent configgrpc.ServerConfig `mapstructure:"agent"`
	// Stat serves the Stat service (agent statistics).
	Stat configgrpc.ServerConfig `mapstructure:"stat"`
	// Span serves the Span service (spans and span chunks).
	Span configgrpc.ServerConfig `mapstructure:"span"`

	// Storage is the id of a storage extension (such as file_storage) that
	// keeps the api, sql and string metadata agents send once per process.
	// Without it metadata lives in memory and is lost when Weft restarts.
	Storage *component.ID `mapstructure:"storage"`

	// MetadataWait is how long a span whose names have not arrived yet is
	// held back before it is sent with placeholder names.
	MetadataWait time.Duration `mapstructure:"metadata_wait"`

	// ChunkWait is how long span chunks wait for their span (agents send
	// chunks first) before they are converted on their own.
	ChunkWait time.Duration `mapstructure:"chunk_wait"`

	// MaxBufferedBytes bounds the protobuf bytes held back waiting for a
	// span or for metadata. Past it the oldest are converted as they are.
	MaxBufferedBytes int `mapstructure:"max_buffered_bytes"`

	// SQLBindValues keeps SQL bind values and parsed literals on database
	// spans. They can hold personal data, so they are dropped by default.
	SQLBindValues bool `mapstructure:"sql_bind_values"`

	// Plugins are Wasm plugins (internal/wasmplugin, ABI.md) run in order
	// on every converted span, so that users can teach the receiver what
	// it cannot map itself: annotations it keeps as pinpoint.* attributes
	// (recorded headers, for one) and agent attributes. The correlation ids
	// they extract are written as span attributes, their tags too with
	// tags_as_attributes; trace_completion downstream stitches by the ids.
	Plugins []wasmplugin.PluginConfig `mapstructure:"plugins"`
	// Wasm limits every plugin's sandbox.
	Wasm wasmplugin.WasmConfig `mapstructure:"wasm"`

	// prevent unkeyed literal initialization
	_ struct{}
}

func createDefaultConfig() component.Config {
	endpoint := func(addr string) configgrpc.ServerConfig {
		cfg := configgrpc.NewDefaultServerConfig()
		cfg.NetAddr.Endpoint = addr
		return cfg
	}
	return &Config{
		Agent:            endpoint(defaultAgentEndpoint),
		Stat:             endpoint(defaultStatEndpoint),
		Span:             endpoint(defaultSpanEndpoint),
		MetadataWait:     5 * time.Second,
		ChunkWait:        30 * time.Second,
		MaxBufferedBytes: 64 << 20,
		Wasm:             wasmplugin.DefaultWasmConfig(),
	}
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	for _, s := range []struct {
		name string
		srv  configgrpc.ServerConfig
	}{{"agent", cfg.Agent}, {"stat", cfg.Stat}, {"span", cfg.Span}} {
		if s.srv.NetAddr.Endpoint == "" {
			errs = append(errs, fmt.Errorf("%s.endpoint must be set (for example %q)", s.name, defaultAgentEndpoint))
		}
	}
	if cfg.MetadataWait < 0 {
		errs = append(errs, fmt.Errorf("metadata_wait must not be negative, got %s", cfg.MetadataWait))
	}
	if cfg.ChunkWait <= 0 {
		errs = append(errs, fmt.Errorf("chunk_wait must be positive, got %s", cfg.ChunkWait))
	}
	if cfg.MaxBufferedBytes <= 0 {
		errs = append(errs, fmt.Errorf("max_buffered_bytes must be positive, got %d", cfg.MaxBufferedBytes))
	}
	errs = append(errs, wasmplugin.ValidateConfig(cfg.Plugins, cfg.Wasm)...)
	endpoints := map[string]string{}
	for _, s := range []struct{ name, endpoint string }{
		{"agent", cfg.Agent.NetAddr.Endpoint}, {"stat", cfg.Stat.NetAddr.Endpoint}, {"span", cfg.Span.NetAddr.Endpoint},
	} {
		if other, ok := endpoints[s.endpoint]; ok && s.endpoint != "" {
			errs = append(errs, fmt.Errorf("%s.endpoint and %s.endpoint are both %s: each service needs a port of its own", other, s.name, s.endpoint))
		}
		endpoints[s.endpoint] = s.name
	}
	return errors.Join(errs...)
}
