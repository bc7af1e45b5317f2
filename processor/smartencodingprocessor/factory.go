//go:generate mdatagen metadata.yaml

// Package smartencodingprocessor tags spans, metrics and logs with small
// integer resource ids looked up from VPC and IP through the k8s_metadata
// extension, and strips the string attributes those ids determine.
package smartencodingprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	"github.com/weftobs/weft/processor/smartencodingprocessor/internal/metadata"
)

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

var mutates = processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true})

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	e := newEncoder(cfg.(*Config))
	return processorhelper.NewTraces(ctx, set, cfg, next, e.processTraces, processorhelper.WithStart(e.start), mutates)
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	e := newEncoder(cfg.(*Config))
	return processorhelper.NewMetrics(ctx, set, cfg, next, e.processMetrics, processorhelper.WithStart(e.start), mutates)
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	e := newEncoder(cfg.(*Config))
	return processorhelper.NewLogs(ctx, set, cfg, next, e.processLogs, processorhelper.WithStart(e.start), mutates)
}
