//go:generate mdatagen metadata.yaml

// Package openfalconreceiver receives metrics from Open-Falcon agents and
// push scripts — transfer's JSON-RPC and HTTP push APIs and the agent's
// /v1/push — and turns them into OpenTelemetry metrics.
package openfalconreceiver

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/metadata"
)

// NewFactory returns the factory of the open_falcon receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	return newReceiver(cfg.(*Config), set, next)
}
