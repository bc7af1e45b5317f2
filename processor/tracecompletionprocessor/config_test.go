package tracecompletionprocessor

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
	"github.com/weftobs/weft/processor/tracecompletionprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	custom := &Config{
		Wait:            3 * time.Second,
		MaxWait:         20 * time.Second,
		MaxSpans:        10000,
		MaxBytes:        8 << 20,
		LateJoinTTL:     30 * time.Second,
		LateJoinMaxKeys: 5000,
		TimeTolerance:   100 * time.Millisecond,
		Wasm:            wasmplugin.DefaultWasmConfig(),
	}
	withPlugins := createDefaultConfig().(*Config)
	withPlugins.Plugins = []PluginConfig{{
		Path:   "/etc/weft/plugins/example.wasm",
		Config: map[string]any{"header": "x-request-id"},
	}}
	withPlugins.Wasm = WasmConfig{MemoryLimit: 16 << 20, Timeout: 5 * time.Millisecond}
	tests := []struct {
		name    string
		want    *Config
		wantErr string
	}{
		{name: "", want: createDefaultConfig().(*Config)},
		{name: "custom", want: custom},
		{name: "zero_wait", wantErr: "wait must be positive"},
		{name: "short_ttl", wantErr: "late_join_ttl shorter than wait"},
		{name: "short_max_wait", wantErr: "max_wait (5s) must be at least wait (10s)"},
		{name: "plugins", want: withPlugins},
		{name: "plugin_no_path", wantErr: "plugins[0]: path must be set"},
		{name: "zero_memory_limit", wantErr: "wasm.memory_limit must be positive"},
		{name: "negative_timeout", wantErr: "wasm.timeout must be positive"},
	}
	for _, tt := range tests {
		id := component.NewIDWithName(metadata.Type, tt.name)
		t.Run(id.String(), func(t *testing.T) {
			cfg := createDefaultConfig()
			sub, err := cm.Sub(id.String())
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
