//go:generate mdatagen metadata.yaml

// Package pinpointreceiver receives spans, agent statistics and metadata from
// Pinpoint agents over Pinpoint's gRPC protocol and converts them into
// OpenTelemetry traces and metrics.
package pinpointreceiver

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/weftobs/weft/receiver/pinpointreceiver/internal/metadata"
)

// NewFactory returns the factory of the pinpoint receiver.
func NewFactory() receiver.Factory {
	return receiver.NewFactory(
		metadata.Type,
		createDefaultConfig,
		receiver.WithTraces(createTraces, metadata.TracesStability),
		receiver.WithMetrics(createMetrics, metadata.MetricsStability),
	)
}

// One receiver serves both signals of a config: agents send spans and stats
// to the same collector, on ports that can only be opened once.
var (
	receiversMu sync.Mutex
	receivers   = map[*Config]*pinpointReceiver{}
)

func shared(cfg component.Config, set receiver.Settings) (*pinpointReceiver, error) {
	receiversMu.Lock()
	defer receiversMu.Unlock()
	c := cfg.(*Config)
	if r, ok := receivers[c]; ok {
		return r, nil
	}
	r, err := newReceiver(c, set)
	if err != nil {
		return nil, err
	}
	r.forget = func() {
		receiversMu.Lock()
		delete(receivers, c)
		receiversMu.Unlock()
	}
	receivers[c] = r
	return r, nil
}

func createTraces(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Traces) (receiver.Traces, error) {
	r, err := shared(cfg, set)
	if err != nil {
		return nil, err
	}
	r.traces = next
	return r, nil
}

func createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r, err := shared(cfg, set)
	if err != nil {
		return nil, err
	}
	r.metrics = next
	return r, nil
}
