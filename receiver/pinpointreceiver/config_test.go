package pinpointreceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/weftobs/weft/internal/wasmplugin"
	"github.com/weftobs/weft/receiver/pinpointreceiver/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	storage := component.MustNewIDWithName("file_storage", "pinpoint")
	custom := createDefaultConfig().(*Config)
	custom.Agent.NetAddr.Endpoint = "127.0.0.1:19991"
	custom.Stat.NetAddr.Endpoint = "127.0.0.1:19992"
	custom.Span.NetAddr.Endpoint = "127.0.0.1:19993"
	custom.Span.MaxRecvMsgSizeMiB = 16
	custom.Storage = &storage
	custom.MetadataWait = 2 * time.Second
	custom.ChunkWait = 10 * time.Second
	custom.MaxBufferedBytes = 1 << 20
	custom.SQLBindValues = true

	plugins := createDefaultConfig().(*Config)
	plugins.Plugins = []wasmplugin.PluginConfig{{
		Path:             "/etc/weft/plugins/example.wasm",
		Config:           map[string]any{"request_id_headers": []any{"x-correlation-id"}},
		TagsAsAttributes: true,
	}}
	plugins.Wasm = wasmplugin.WasmConfig{MemoryLimit: 16 << 20, Timeout: 5 * time.Millisecond}

	tests := []struct {
		id      component.ID
		want    *Config
		wantErr string
	}{
		{id: component.NewID(metadata.Type), want: createDefaultConfig().(*Config)},
		{id: component.NewIDWithName(metadata.Type, "custom"), want: custom},
		{id: component.NewIDWithName(metadata.Type, "no_span_endpoint"), wantErr: "span.endpoint must be set"},
		{id: component.NewIDWithName(metadata.Type, "negative_wait"), wantErr: "metadata_wait must not be negative"},
		{id: component.NewIDWithName(metadata.Type, "plugins"), want: plugins},
		{id: component.NewIDWithName(metadata.Type, "plugin_no_path"), wantErr: "plugins[0]: path must be set"},
		{id: component.NewIDWithName(metadata.Type, "same_port"), wantErr: "stat.endpoint and span.endpoint are both 0.0.0.0:9993"},
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

func TestDefaultEndpointsArePinpointPorts(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	assert.Equal(t, "0.0.0.0:9991", cfg.Agent.NetAddr.Endpoint)
	assert.Equal(t, "0.0.0.0:9992", cfg.Stat.NetAddr.Endpoint)
	assert.Equal(t, "0.0.0.0:9993", cfg.Span.NetAddr.Endpoint)
	assert.Nil(t, cfg.Storage)
	assert.Empty(t, cfg.Plugins)
	assert.Equal(t, wasmplugin.DefaultWasmConfig(), cfg.Wasm)
}
