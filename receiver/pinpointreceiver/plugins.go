package pinpointreceiver

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/wasmplugin"
)

// loadPlugins loads the receiver's Wasm plugins (plugins, wasm). Without
// any, r.plugins stays nil and spans go out as converted.
func (r *pinpointReceiver) loadPlugins(ctx context.Context) error {
	plugins, err := wasmplugin.LoadChain(ctx, r.cfg.Plugins, r.cfg.Wasm, wasmplugin.ChainSettings{
		Logger: r.settings.Logger,
		Failed: func(ctx context.Context, f wasmplugin.Failure) {
			r.telemetry.ReceiverPinpointPluginFailures.Add(ctx, 1, f.MeasurementOption())
		},
		Suspended: func(ctx context.Context) {
			r.telemetry.ReceiverPinpointPluginSuspensions.Add(ctx, 1)
		},
	})
	if err != nil {
		return fmt.Errorf("pinpoint: %w", err)
	}
	r.plugins = plugins
	return nil
}

// consumeConverted is where converted spans leave the assembler: the
// plugins read what the conversion could not map (pinpoint.* attributes)
// and add ids and tags, then the spans go down the pipeline.
func (r *pinpointReceiver) consumeConverted(ctx context.Context, td ptrace.Traces, spans int) error {
	if r.traces == nil {
		return nil // no traces pipeline: nothing to run the plugins for
	}
	r.plugins.Traces(ctx, td)
	return r.consumeTraces(ctx, td, spans)
}
