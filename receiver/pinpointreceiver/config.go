package pinpointreceiver

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configgrpc"
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
		Agent:        endpoint(defaultAgentEndpoint),
		Stat:         endpoint(defaultStatEndpoint),
		Span:         endpoint(defaultSpanEndpoint),
		MetadataWait: 5 * time.Second,
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
	return errors.Join(errs...)
}
