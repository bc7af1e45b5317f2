package tracecompletionprocessor

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/weftobs/weft/processor/tracecompletionprocessor/internal/metadata"
)

func TestCreateRefusesUntilImplemented(t *testing.T) {
	f := NewFactory()
	_, err := f.CreateTraces(t.Context(), processortest.NewNopSettings(metadata.Type), f.CreateDefaultConfig(), consumertest.NewNop())
	require.ErrorContains(t, err, "not implemented yet")
}
