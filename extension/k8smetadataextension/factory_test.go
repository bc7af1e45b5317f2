package k8smetadataextension

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/metadata"
)

func TestCreateRefusesUntilImplemented(t *testing.T) {
	f := NewFactory()
	_, err := f.Create(t.Context(), extensiontest.NewNopSettings(metadata.Type), f.CreateDefaultConfig())
	require.ErrorContains(t, err, "not implemented yet")
}
