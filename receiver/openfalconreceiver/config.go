package openfalconreceiver

import (
	"errors"
	"fmt"
	"net"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configtls"
)

// Default ports are Open-Falcon's own, so agents and scripts need no change
// but the host they send to.
const (
	defaultTransferRPCEndpoint  = "0.0.0.0:8433"
	defaultTransferHTTPEndpoint = "0.0.0.0:6060"
	defaultAgentHTTPEndpoint    = "0.0.0.0:1988"

	// Graph raises steps below 30 s to 30 s; keeping its floor keeps the
	// series Open-Falcon users know.
	defaultMinStep = 30 * time.Second
	// At most about 84 MB of start times (measured in the README).
	defaultMaxSeries = 1_000_000
	// The same bound confighttp puts on a request body by default.
	defaultMaxRequestSize = 20 << 20
)

// Config defines the open_falcon receiver's configuration. Each listener is
// off when its endpoint is empty; at least one must be on.
type Config struct {
	// TransferRPC serves transfer's JSON-RPC over raw TCP (Transfer.Update,
	// Transfer.Ping): what falcon-agent sends to.
	TransferRPC RPCServerConfig `mapstructure:"transfer_rpc"`
	// TransferHTTP serves transfer's POST /api/push.
	TransferHTTP confighttp.ServerConfig `mapstructure:"transfer_http"`
	// AgentHTTP serves falcon-agent's POST /v1/push, which scripts on a host
	// use to push through the local agent.
	AgentHTTP confighttp.ServerConfig `mapstructure:"agent_http"`

	// MinStep raises smaller steps to it, as graph does (30 s). 0 keeps
	// every step as sent.
	MinStep time.Duration `mapstructure:"min_step"`

	// MaxSeries bounds how many COUNTER and DERIVE series' start times are
	// remembered. Past it the least recently seen are forgotten.
	MaxSeries int `mapstructure:"max_series"`

	// prevent unkeyed literal initialization
	_ struct{}
}

// RPCServerConfig is a raw TCP listener. net/rpc has no HTTP layer here, so
// the HTTP server settings do not apply; TLS does (an agent behind a TLS
// tunnel, or a client of our own).
type RPCServerConfig struct {
	// Endpoint is the address to listen on; empty turns the listener off.
	Endpoint string `mapstructure:"endpoint"`
	// TLS, when set, makes the listener accept TLS connections only.
	TLS configoptional.Optional[configtls.ServerConfig] `mapstructure:"tls"`
	// MaxRequestSize bounds one JSON-RPC request in bytes; a connection
	// sending a larger one is closed.
	MaxRequestSize int64 `mapstructure:"max_request_size"`

	// prevent unkeyed literal initialization
	_ struct{}
}

func createDefaultConfig() component.Config {
	httpServer := func(endpoint string) confighttp.ServerConfig {
		cfg := confighttp.NewDefaultServerConfig()
		cfg.NetAddr.Endpoint = endpoint
		return cfg
	}
	return &Config{
		TransferRPC:  RPCServerConfig{Endpoint: defaultTransferRPCEndpoint, MaxRequestSize: defaultMaxRequestSize},
		TransferHTTP: httpServer(defaultTransferHTTPEndpoint),
		AgentHTTP:    httpServer(defaultAgentHTTPEndpoint),
		MinStep:      defaultMinStep,
		MaxSeries:    defaultMaxSeries,
	}
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	rpcOn, transferOn, agentOn := cfg.TransferRPC.Endpoint != "", cfg.TransferHTTP.NetAddr.Endpoint != "", cfg.AgentHTTP.NetAddr.Endpoint != ""
	if !rpcOn && !transferOn && !agentOn {
		errs = append(errs, fmt.Errorf("every listener is off: set transfer_rpc.endpoint (falcon-agent, e.g. %q), transfer_http.endpoint or agent_http.endpoint", defaultTransferRPCEndpoint))
	}
	if cfg.TransferRPC.MaxRequestSize <= 0 {
		errs = append(errs, fmt.Errorf("transfer_rpc.max_request_size must be positive, got %d (default %d)", cfg.TransferRPC.MaxRequestSize, defaultMaxRequestSize))
	}
	if cfg.MinStep < 0 || cfg.MinStep%time.Second != 0 {
		errs = append(errs, fmt.Errorf("min_step must be zero or a positive whole number of seconds (Open-Falcon steps are seconds), got %s", cfg.MinStep))
	}
	if cfg.MaxSeries <= 0 {
		errs = append(errs, fmt.Errorf("max_series must be positive, got %d (default %d)", cfg.MaxSeries, defaultMaxSeries))
	}
	seen := map[string]string{}
	for _, l := range []struct{ name, endpoint string }{
		{"transfer_rpc", cfg.TransferRPC.Endpoint},
		{"transfer_http", cfg.TransferHTTP.NetAddr.Endpoint},
		{"agent_http", cfg.AgentHTTP.NetAddr.Endpoint},
	} {
		// Port 0 asks the system for a free port each time: no clash.
		if _, port, err := net.SplitHostPort(l.endpoint); l.endpoint == "" || (err == nil && port == "0") {
			continue
		}
		if other, ok := seen[l.endpoint]; ok {
			errs = append(errs, fmt.Errorf("%s.endpoint and %s.endpoint are both %s: each listener needs a port of its own", other, l.name, l.endpoint))
		}
		seen[l.endpoint] = l.name
	}
	return errors.Join(errs...)
}
