//go:generate mdatagen metadata.yaml

// Package pinpointreceiver receives spans, agent statistics and metadata from
// Pinpoint agents over Pinpoint's gRPC protocol and converts them into
// OpenTelemetry traces and metrics.
package pinpointreceiver

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/weftobs/weft/receiver/pinpointreceiver/internal/metadata"
)

// errNotImplemented stops a collector whose pipeline names this receiver:
// accepting agent connections and dropping their data would be worse.
var errNotImplemented = errors.New("the pinpoint receiver is not implemented yet; remove it from the pipeline")

// NewFactory returns the factory of the pinpoint receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithTraces(createTraces, metadata.TracesStability),
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createTraces(context.Context, receiver.Settings, component.Config, consumer.Traces) (receiver.Traces, error) {
	return nil, errNotImplemented
}

func createMetrics(context.Context, receiver.Settings, component.Config, consumer.Metrics) (receiver.Metrics, error) {
	return nil, errNotImplemented
}
