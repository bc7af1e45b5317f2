package k8smetadataextension

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/metadata"
)

func TestLoadConfig(t *testing.T) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)

	postgres := createDefaultConfig().(*Config)
	postgres.ClusterName = "prod-eu1"
	postgres.Database.DSN = "postgres://weft@127.0.0.1:5432/weft"

	mysql := createDefaultConfig().(*Config)
	mysql.ClusterName = "prod-eu1"
	mysql.VPCID = 3
	mysql.Kubeconfig = "/etc/weft/kubeconfig"
	mysql.Database = DatabaseConfig{Driver: DriverMySQL, DSN: "weft:secret@tcp(127.0.0.1:3306)/weft"}
	mysql.LeaderElection.Enabled = false
	mysql.Watch = false
	mysql.StaticResources = "/etc/weft/static.yaml"
	mysql.DeletedRetention = 24 * time.Hour

	tests := []struct {
		name    string
		want    *Config
		wantErr string
	}{
		{name: "", want: postgres},
		{name: "mysql", want: mysql},
		{name: "no_cluster", wantErr: "cluster_name must be set"},
		{name: "bad_driver", wantErr: `database.driver must be "postgres" or "mysql", got "sqlite"`},
		{name: "bad_lease", wantErr: "lease_duration > renew_deadline > retry_period"},
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

// The default config must not validate: a cluster name and a database are
// the user's to give.
func TestDefaultConfigNeedsClusterAndDatabase(t *testing.T) {
	err := confmap.Validate(createDefaultConfig())
	require.ErrorContains(t, err, "cluster_name must be set")
	require.ErrorContains(t, err, "database.dsn must be set")
}
