//go:generate mdatagen metadata.yaml

// Package smartencodingprocessor tags spans, metrics and logs with small
// integer resource ids looked up from VPC and IP through the k8s_metadata
// extension, and strips the string attributes those ids determine.
package smartencodingprocessor

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"

	"github.com/weftobs/weft/processor/smartencodingprocessor/internal/metadata"
)

// errNotImplemented stops a collector whose pipeline names this processor:
// passing data through untagged would look like it works.
var errNotImplemented = errors.New("the smart_encoding processor is not implemented yet; remove it from the pipeline")

// NewFactory returns the factory of the smart_encoding processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithTraces(createTraces, metadata.TracesStability),
		processor.WithMetrics(createMetrics, metadata.MetricsStability),
		processor.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createTraces(context.Context, processor.Settings, component.Config, consumer.Traces) (processor.Traces, error) {
	return nil, errNotImplemented
}

func createMetrics(context.Context, processor.Settings, component.Config, consumer.Metrics) (processor.Metrics, error) {
	return nil, errNotImplemented
}

func createLogs(context.Context, processor.Settings, component.Config, consumer.Logs) (processor.Logs, error) {
	return nil, errNotImplemented
}
