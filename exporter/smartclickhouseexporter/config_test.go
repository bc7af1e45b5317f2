package smartclickhouseexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	cfg := createDefaultConfig().(*Config)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg, confmap.Validate(cfg)
}

func TestDefaultConfig(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, createDefaultConfig(), cfg)
	assert.True(t, cfg.CreateSchema)
	assert.True(t, cfg.QueueConfig.HasValue())
	// Plain TCP unless TLS is configured.
	tlsCfg, err := cfg.TLS.LoadTLSConfig(t.Context())
	require.NoError(t, err)
	assert.Nil(t, tlsCfg)
}

func TestFullConfig(t *testing.T) {
	cfg, err := loadConfig(t, "full")
	require.NoError(t, err)
	assert.Equal(t, "tcp://ch1:9000,ch2:9000", cfg.Endpoint)
	assert.Equal(t, "observability", cfg.Database)
	assert.Equal(t, "weft", cfg.Username)
	assert.Equal(t, "s3cret", string(cfg.Password))
	assert.Equal(t, "zstd", cfg.Compression)
	assert.Equal(t, 720*time.Hour, cfg.TTL)
	assert.Equal(t, "main", cfg.Cluster)
	assert.False(t, cfg.CreateSchema)
	assert.Equal(t, 10*time.Second, cfg.Timeout)
	assert.Equal(t, 10*time.Minute, cfg.RetryConfig.MaxElapsedTime)
	assert.Equal(t, int64(500000), cfg.QueueConfig.Get().QueueSize)
	assert.Equal(t, DictionariesConfig{
		Source: DictionarySourceConfig{
			Driver: "mysql", Host: "metadata-db", Port: 3306,
			User: "clickhouse", Password: "dictpass", Database: "weft",
		},
		Lifetime: 30 * time.Second,
		XMLDir:   "/etc/clickhouse-server/weft",
	}, cfg.Dictionaries)
}

func TestInvalidConfigs(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string
	}{
		{"no_scheme", "endpoint needs the scheme tcp://"},
		{"credentials_in_endpoint", "endpoint must not contain credentials"},
		{"bad_database", `database "weft; DROP TABLE x" must be a plain identifier`},
		{"bad_source", "dictionaries.source.driver must be postgres or mysql"},
		{"endpoint_options", "endpoint takes only tcp://host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, tt.name)
			require.ErrorContains(t, err, tt.wantErr)
			// Secrets never appear in errors.
			assert.NotContains(t, err.Error(), "hunter2")
		})
	}
}
