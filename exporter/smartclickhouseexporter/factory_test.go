package smartclickhouseexporter

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/exporter/exportertest"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/metadata"
)

func TestCreateRefusesUntilImplemented(t *testing.T) {
	f := NewFactory()
	set := exportertest.NewNopSettings(metadata.Type)
	cfg := f.CreateDefaultConfig()
	_, err := f.CreateTraces(t.Context(), set, cfg)
	require.ErrorContains(t, err, "not implemented yet")
	_, err = f.CreateMetrics(t.Context(), set, cfg)
	require.ErrorContains(t, err, "not implemented yet")
	_, err = f.CreateLogs(t.Context(), set, cfg)
	require.ErrorContains(t, err, "not implemented yet")
}
