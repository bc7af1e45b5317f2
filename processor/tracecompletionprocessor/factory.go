//go:generate mdatagen metadata.yaml

// Package tracecompletionprocessor stitches APM, eBPF-syscall and network
// spans into complete traces by trace id, x_request_id, syscall trace id and
// TCP sequence while they stream through the collector.
package tracecompletionprocessor

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"

	"github.com/weftobs/weft/processor/tracecompletionprocessor/internal/metadata"
)

// errNotImplemented stops a collector whose pipeline names this processor:
// passing spans through unstitched would look like it works.
var errNotImplemented = errors.New("the trace_completion processor is not implemented yet; remove it from the pipeline")

// NewFactory returns the factory of the trace_completion processor.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		createDefaultConfig,
		processor.WithTraces(createTraces, metadata.TracesStability),
	)
}

func createTraces(context.Context, processor.Settings, component.Config, consumer.Traces) (processor.Traces, error) {
	return nil, errNotImplemented
}
