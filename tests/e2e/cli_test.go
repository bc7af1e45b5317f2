package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/weftobs/weft/tests/harness"
)

// TestComponents checks that weftcol ships every component the distribution
// promises, Weft's own marked as in development.
func TestComponents(t *testing.T) {
	out, err := exec.Command(harness.Weftcol(t), "components").Output()
	require.NoError(t, err)

	type entry struct {
		Name      string            `yaml:"name"`
		Stability map[string]string `yaml:"stability"`
	}
	var got struct {
		Receivers  []entry `yaml:"receivers"`
		Processors []entry `yaml:"processors"`
		Exporters  []entry `yaml:"exporters"`
		Extensions []entry `yaml:"extensions"`
	}
	require.NoError(t, yaml.Unmarshal(out, &got), "%s", out)
	names := func(es []entry) []string {
		var n []string
		for _, e := range es {
			n = append(n, e.Name)
		}
		return n
	}
	assert.ElementsMatch(t, []string{"otlp", "pinpoint", "open_falcon"}, names(got.Receivers))
	assert.ElementsMatch(t, []string{"batch", "memory_limiter", "smart_encoding", "trace_completion"}, names(got.Processors))
	assert.ElementsMatch(t, []string{"debug", "otlp_grpc", "otlp_http", "file", "load_balancing", "smart_clickhouse"}, names(got.Exporters))
	assert.ElementsMatch(t, []string{"file_storage", "health_check", "pprof", "zpages", "k8s_metadata"}, names(got.Extensions))

	weft := map[string]entry{}
	for _, list := range [][]entry{got.Receivers, got.Processors, got.Exporters, got.Extensions} {
		for _, e := range list {
			weft[e.Name] = e
		}
	}
	assert.Equal(t, "Development", weft["pinpoint"].Stability["traces"])
	assert.Equal(t, "Development", weft["smart_encoding"].Stability["logs"])
	assert.Equal(t, "Development", weft["smart_clickhouse"].Stability["metrics"])
	assert.Equal(t, "Development", weft["k8s_metadata"].Stability["extension"])
}

// TestValidateShippedConfigs: every config the repository ships validates.
func TestValidateShippedConfigs(t *testing.T) {
	bin := harness.Weftcol(t)
	configs, err := filepath.Glob(filepath.Join(harness.RepoRoot(), "distro", "examples", "*.yaml"))
	require.NoError(t, err)
	configs = append(configs, filepath.Join(harness.RepoRoot(), "distro", "config.yaml"))
	for _, cfg := range configs {
		t.Run(filepath.Base(cfg), func(t *testing.T) {
			cmd := exec.Command(bin, "validate", "--config", cfg)
			// The examples read where their peers are from the environment.
			cmd.Env = append(os.Environ(), "GATEWAY_DNS=gateway.example", "BACKEND_OTLP_ENDPOINT=backend.example:4317",
				"WEFT_STORAGE_DIR="+t.TempDir(), "CLUSTER_NAME=test", "METADATA_DSN=postgres://weft@db.example:5432/weft")
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
		})
	}
}

// TestValidateRejectsBrokenConfigs: a broken config is refused with a message
// that names the problem.
func TestValidateRejectsBrokenConfigs(t *testing.T) {
	bin := harness.Weftcol(t)
	const pipeline = `
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
`
	tests := []struct {
		name    string
		config  string
		wantErr []string
	}{
		{
			name:    "unknown component type",
			config:  strings.Replace(pipeline, "  debug:\n", "  clickhous:\n", 1),
			wantErr: []string{"clickhous", "unknown type"},
		},
		{
			name:    "pipeline names an undefined exporter",
			config:  strings.Replace(pipeline, "exporters: [debug]", "exporters: [debug, file/missing]", 1),
			wantErr: []string{"file/missing"},
		},
		{
			name:    "not YAML",
			config:  "receivers: [otlp\n",
			wantErr: []string{"yaml"},
		},
		{
			name: "invalid Weft component config",
			config: pipeline + `
  extensions: [k8s_metadata]
extensions:
  k8s_metadata:
    database:
      driver: sqlite
`,
			wantErr: []string{"k8s_metadata", "cluster_name must be set", `database.driver must be "postgres" or "mysql", got "sqlite"`},
		},
		{
			name: "smart_clickhouse endpoint with credentials",
			config: strings.NewReplacer("exporters: [debug]", "exporters: [smart_clickhouse]",
				"  debug:\n", "  smart_clickhouse:\n    endpoint: tcp://admin:hunter2@127.0.0.1:9000\n").Replace(pipeline),
			wantErr: []string{"smart_clickhouse", "endpoint must not contain credentials"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.config), 0o644))
			out, err := exec.Command(bin, "validate", "--config", path).CombinedOutput()
			require.Error(t, err, "validate accepted a broken config:\n%s", tt.config)
			for _, want := range tt.wantErr {
				assert.Contains(t, string(out), want)
			}
			assert.NotContains(t, string(out), "hunter2", "a password leaked into the error")
		})
	}
}
