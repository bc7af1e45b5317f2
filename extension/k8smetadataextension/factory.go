//go:generate mdatagen metadata.yaml

// Package k8smetadataextension watches the Kubernetes API, gives every
// resource a stable small integer id kept in PostgreSQL or MySQL, and serves
// lookups of those ids in-process to Weft's other components.
package k8smetadataextension

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/metadata"
)

// NewFactory returns the factory of the k8s_metadata extension.
func NewFactory() extension.Factory {
	return extension.NewFactory(metadata.Type, createDefaultConfig, create, metadata.ExtensionStability)
}

func create(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
	return newExtension(cfg.(*Config), set)
}
