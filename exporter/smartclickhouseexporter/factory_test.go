package smartclickhouseexporter

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/metadata"
)

// TestCreate: creating the exporters needs no server; starting one whose
// server cannot be reached does not fail (the queue holds the data).
func TestCreate(t *testing.T) {
	f := NewFactory()
	set := exportertest.NewNopSettings(metadata.Type)
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Endpoint = "tcp://127.0.0.1:1"
	tr, err := f.CreateTraces(t.Context(), set, cfg)
	require.NoError(t, err)
	_, err = f.CreateMetrics(t.Context(), set, cfg)
	require.NoError(t, err)
	_, err = f.CreateLogs(t.Context(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, tr.Start(t.Context(), componenttest.NewNopHost()))
	require.NoError(t, tr.Shutdown(t.Context()))
}
