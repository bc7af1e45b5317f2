package pinpointreceiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/configgrpc"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/weftobs/weft/internal/wasmplugin"
	"github.com/weftobs/weft/receiver/pinpointreceiver/internal/metadata"
	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
)

// pinpointReceiver serves the Pinpoint collector's three gRPC ports. One
// instance serves both the traces and the metrics pipeline of a config.
type pinpointReceiver struct {
	cfg      *Config
	settings receiver.Settings

	traces  consumer.Traces  // nil when no traces pipeline uses the receiver
	metrics consumer.Metrics // nil when no metrics pipeline uses it

	telemetry  *metadata.TelemetryBuilder
	obsTraces  *receiverhelper.ObsReport
	obsMetrics *receiverhelper.ObsReport

	store     *store
	assembler *assembler
	client    storage.Client
	// plugins run on converted spans; nil without any (plugins.go).
	plugins *wasmplugin.Chain

	servers []*grpc.Server
	addrs   map[string]net.Addr // by service group: agent, stat, span
	wg      sync.WaitGroup
	// done ends the streams the agents keep open (ping, commands) when the
	// receiver shuts down.
	done chan struct{}

	startOnce, stopOnce sync.Once
	startErr            error
	// forget removes the receiver from the factory's shared instances.
	forget func()
}

func newReceiver(cfg *Config, set receiver.Settings) (*pinpointReceiver, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obs := func() (*receiverhelper.ObsReport, error) {
		return receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
			ReceiverID: set.ID, Transport: "grpc", ReceiverCreateSettings: set,
		})
	}
	obsTraces, err := obs()
	if err != nil {
		return nil, err
	}
	obsMetrics, err := obs()
	if err != nil {
		return nil, err
	}
	return &pinpointReceiver{
		cfg: cfg, settings: set, telemetry: tb,
		obsTraces: obsTraces, obsMetrics: obsMetrics,
		done: make(chan struct{}),
	}, nil
}

// Start opens the storage client and the three gRPC servers. Both pipelines
// call it; the work is done once.
func (r *pinpointReceiver) Start(ctx context.Context, host component.Host) error {
	r.startOnce.Do(func() {
		r.startErr = r.start(ctx, host)
		if r.startErr != nil {
			// Shutdown closes them too, but a failed start need not be
			// followed by one.
			_ = r.plugins.Close(ctx)
		}
	})
	return r.startErr
}

func (r *pinpointReceiver) start(ctx context.Context, host component.Host) error {
	logger := r.settings.Logger
	if r.cfg.Storage != nil {
		ext, ok := host.GetExtensions()[*r.cfg.Storage]
		if !ok {
			return fmt.Errorf("storage extension %q not found: add it to the service's extensions", r.cfg.Storage)
		}
		se, ok := ext.(storage.Extension)
		if !ok {
			return fmt.Errorf("extension %q is not a storage extension", r.cfg.Storage)
		}
		client, err := se.GetClient(ctx, component.KindReceiver, r.settings.ID, "metadata")
		if err != nil {
			return fmt.Errorf("opening storage %q: %w", r.cfg.Storage, err)
		}
		r.client = client
	} else {
		logger.Warn("No storage configured: Pinpoint metadata (API, SQL and string names) is kept in memory only, " +
			"and spans of agents that started before a restart of Weft will carry placeholder names. " +
			"Set `storage` to a storage extension such as file_storage to keep it.")
	}
	if err := r.loadPlugins(ctx); err != nil {
		return err
	}
	r.store = newStore(r.client, logger)
	r.assembler = newAssembler(r.cfg, r.store, r.telemetry, r.consumeConverted, logger)

	type server struct {
		name string
		cfg  configgrpc.ServerConfig
		reg  func(*grpc.Server)
	}
	servers := []server{
		{"agent", r.cfg.Agent, func(s *grpc.Server) {
			v1.RegisterAgentServer(s, &agentService{r: r})
			v1.RegisterMetadataServer(s, &metadataService{r: r})
			v1.RegisterProfilerCommandServiceServer(s, &commandService{r: r})
		}},
		{"stat", r.cfg.Stat, func(s *grpc.Server) { v1.RegisterStatServer(s, &statService{r: r}) }},
		{"span", r.cfg.Span, func(s *grpc.Server) { v1.RegisterSpanServer(s, &spanService{r: r}) }},
	}
	var listeners []net.Listener
	closeAll := func() {
		for _, l := range listeners {
			l.Close()
		}
	}
	for _, srv := range servers {
		gs, err := srv.cfg.ToServer(ctx, host.GetExtensions(), r.settings.TelemetrySettings)
		if err != nil {
			closeAll()
			return fmt.Errorf("%s server: %w", srv.name, err)
		}
		srv.reg(gs)
		l, err := srv.cfg.NetAddr.Listen(ctx)
		if err != nil {
			closeAll()
			return fmt.Errorf("%s server: listening on %s: %w", srv.name, srv.cfg.NetAddr.Endpoint, err)
		}
		listeners = append(listeners, l)
		r.servers = append(r.servers, gs)
		if r.addrs == nil {
			r.addrs = map[string]net.Addr{}
		}
		r.addrs[srv.name] = l.Addr()
		logger.Info("Pinpoint receiver listening", zap.String("service", srv.name), zap.String("endpoint", l.Addr().String()))
	}
	r.assembler.start()
	for i, gs := range r.servers {
		r.wg.Add(1)
		go func(gs *grpc.Server, l net.Listener) {
			defer r.wg.Done()
			if err := gs.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
				componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
			}
		}(gs, listeners[i])
	}
	return nil
}

// Shutdown stops accepting, lets calls in flight finish, sends what is still
// buffered, and closes the storage client.
func (r *pinpointReceiver) Shutdown(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		close(r.done)
		for _, gs := range r.servers {
			stopped := make(chan struct{})
			go func() { gs.GracefulStop(); close(stopped) }()
			select {
			case <-stopped:
			case <-ctx.Done():
				gs.Stop()
			}
		}
		r.wg.Wait()
		if r.assembler != nil {
			r.assembler.stop()
		}
		// After the assembler: what it still held went through the plugins.
		err = r.plugins.Close(ctx)
		if r.client != nil {
			err = errors.Join(err, r.client.Close(ctx))
		}
		r.telemetry.Shutdown()
		if r.forget != nil {
			r.forget()
		}
	})
	return err
}

// resource describes an agent process for its spans, stats and liveness.
func (r *pinpointReceiver) resource(h agentHeader) pcommon.Resource {
	res := pcommon.NewResource()
	putResource(res, h, r.store.agentInfo(agentKey{agentID: h.AgentID, start: h.StartTime}))
	return res
}

// emitTimeout bounds sending what the assembler releases on its own.
const emitTimeout = 30 * time.Second
