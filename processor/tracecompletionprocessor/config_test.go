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
	}
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
