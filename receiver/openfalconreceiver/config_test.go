package openfalconreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	custom := createDefaultConfig().(*Config)
	custom.TransferRPC.Endpoint = "127.0.0.1:18433"
	custom.TransferRPC.MaxRequestSize = 1 << 20
	custom.TransferHTTP.NetAddr.Endpoint = "127.0.0.1:16060"
	custom.TransferHTTP.MaxRequestBodySize = 2 << 20
	custom.AgentHTTP.NetAddr.Endpoint = ""
	custom.MinStep = time.Minute
	custom.MaxSeries = 5000

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: custom},
		{id: component.NewIDWithName(metadata.Type, "all_off"), wantErr: "every listener is off"},
		{id: component.NewIDWithName(metadata.Type, "same_port"), wantErr: "transfer_http.endpoint and agent_http.endpoint are both 0.0.0.0:1988"},
		{id: component.NewIDWithName(metadata.Type, "fraction_step"), wantErr: "min_step must be zero or a positive whole number of seconds"},
		{id: component.NewIDWithName(metadata.Type, "no_series"), wantErr: "max_series must be positive"},
		{id: component.NewIDWithName(metadata.Type, "no_request_size"), wantErr: "transfer_rpc.max_request_size must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(tt.id.String())
			require.NoError(t, err)
			require.NoError(t, sub.Unmarshal(cfg))
			err = confmap.Validate(cfg)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg)
		})
	}
}

// TestDefaultsAreOpenFalcons: agents and scripts need only a new host.
func TestDefaultsAreOpenFalcons(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	assert.Equal(t, "0.0.0.0:8433", cfg.TransferRPC.Endpoint)
	assert.Equal(t, "0.0.0.0:6060", cfg.TransferHTTP.NetAddr.Endpoint)
	assert.Equal(t, "0.0.0.0:1988", cfg.AgentHTTP.NetAddr.Endpoint)
	assert.Equal(t, 30*time.Second, cfg.MinStep)
	assert.False(t, cfg.TransferRPC.TLS.HasValue())
}
