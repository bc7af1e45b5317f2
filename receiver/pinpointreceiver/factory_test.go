package pinpointreceiver

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/weftobs/weft/receiver/pinpointreceiver/internal/metadata"
)

// Until the receiver is implemented it must refuse to be created rather than
// accept agent connections and drop their data.
func TestCreateRefusesUntilImplemented(t *testing.T) {
	f := NewFactory()
	set := receivertest.NewNopSettings(metadata.Type)
	_, err := f.CreateTraces(t.Context(), set, f.CreateDefaultConfig(), consumertest.NewNop())
	require.ErrorContains(t, err, "not implemented yet")
	_, err = f.CreateMetrics(t.Context(), set, f.CreateDefaultConfig(), consumertest.NewNop())
	require.ErrorContains(t, err, "not implemented yet")
}
