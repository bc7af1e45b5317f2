package smartencodingprocessor

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/weftobs/weft/processor/smartencodingprocessor/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	custom := createDefaultConfig().(*Config)
	custom.Metadata = component.MustNewIDWithName("k8s_metadata", "eu1")
	custom.VPCID = 7
	custom.VPCIDAttribute = "cloud.vpc.id"
	custom.LocalIPAttributes = []string{"k8s.pod.ip"}
	custom.PeerIPAttributes = []string{"server.address"}
	custom.Strip = []string{"k8s.pod.*"}
	custom.Keep = []string{"k8s.pod.name"}

	tests := []struct {
		name    string
		want    *Config
		wantErr string
	}{
		{name: "", want: createDefaultConfig().(*Config)},
		{name: "custom", want: custom},
		{name: "no_local_ip", wantErr: "local_ip_attributes must name at least one attribute"},
		{name: "bad_strip", wantErr: `strip[0]: "*" is not an attribute name or prefix`},
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
