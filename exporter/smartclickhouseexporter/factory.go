//go:generate mdatagen metadata.yaml

// Package smartclickhouseexporter writes int-encoded traces, metrics and logs
// to ClickHouse, and keeps the dictionaries and views that decode resource
// ids into names at query time.
package smartclickhouseexporter

import (
	"context"
	"errors"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/metadata"
)

// errNotImplemented stops a collector whose pipeline names this exporter:
// accepting data and dropping it would lose it silently.
var errNotImplemented = errors.New("the smart_clickhouse exporter is not implemented yet; remove it from the pipeline")

// NewFactory returns the factory of the smart_clickhouse exporter.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(
		metadata.Type,
		createDefaultConfig,
		exporter.WithTraces(createTraces, metadata.TracesStability),
		exporter.WithMetrics(createMetrics, metadata.MetricsStability),
		exporter.WithLogs(createLogs, metadata.LogsStability),
	)
}

func createTraces(context.Context, exporter.Settings, component.Config) (exporter.Traces, error) {
	return nil, errNotImplemented
}

func createMetrics(context.Context, exporter.Settings, component.Config) (exporter.Metrics, error) {
	return nil, errNotImplemented
}

func createLogs(context.Context, exporter.Settings, component.Config) (exporter.Logs, error) {
	return nil, errNotImplemented
}
