//go:generate mdatagen metadata.yaml

// Package tracecompletionprocessor stitches APM, eBPF-syscall and network
// spans into complete traces by trace id, x_request_id, syscall trace id and
// TCP sequence while they stream through the collector.
package tracecompletionprocessor

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"

	"github.com/weftobs/weft/processor/tracecompletionprocessor/internal/metadata"
)

// NewFactory returns the factory of the trace_completion processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithTraces(createTraces, metadata.TracesStability),
	)
}

func createTraces(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	return newProcessor(cfg.(*Config), set, next)
}
