package smartencodingprocessor

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/weftobs/weft/processor/smartencodingprocessor/internal/metadata"
)

func TestCreateRefusesUntilImplemented(t *testing.T) {
	f := NewFactory()
	set := processortest.NewNopSettings(metadata.Type)
	cfg := f.CreateDefaultConfig()
	_, err := f.CreateTraces(t.Context(), set, cfg, consumertest.NewNop())
	require.ErrorContains(t, err, "not implemented yet")
	_, err = f.CreateMetrics(t.Context(), set, cfg, consumertest.NewNop())
	require.ErrorContains(t, err, "not implemented yet")
	_, err = f.CreateLogs(t.Context(), set, cfg, consumertest.NewNop())
	require.ErrorContains(t, err, "not implemented yet")
}
