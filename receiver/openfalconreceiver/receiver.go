package openfalconreceiver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/rpc"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/falcon"
	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/metadata"
	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/translate"
)

// listener names where data came in, in logs and the receiver's metrics.
type listener int

const (
	transferRPC listener = iota
	transferHTTP
	agentHTTP
	numListeners
)

var listenerNames = [numListeners]string{"transfer_rpc", "transfer_http", "agent_http"}

func (l listener) String() string { return listenerNames[l] }

// Reasons a whole request is refused, for the rejected-requests metric.
const (
	rejectBlankBody = iota
	rejectMalformed
	rejectTooLarge
	numRejectReasons
)

var rejectReasonNames = [numRejectReasons]string{"blank_body", "malformed", "too_large"}

type falconReceiver struct {
	cfg      *Config
	settings receiver.Settings
	next     consumer.Metrics

	telemetry  *metadata.TelemetryBuilder
	obsRPC     *receiverhelper.ObsReport
	obsHTTP    *receiverhelper.ObsReport
	translator *translate.Translator
	series     *translate.Series

	// Attribute sets of the receiver's metrics, made once: a push must not
	// allocate them.
	invalidOpts  [numListeners][falcon.NumReasons]metric.AddOption
	rejectedOpts [numListeners][numRejectReasons]metric.AddOption

	rpcServer   *rpc.Server
	rpcListener net.Listener
	httpServers []*http.Server
	addrs       map[listener]net.Addr

	connsMu  sync.Mutex
	conns    map[net.Conn]struct{}
	stopping bool
	wg       sync.WaitGroup

	scratch sync.Pool // *pushScratch
}

// pushScratch holds what checking a push needs, reused between pushes.
type pushScratch struct {
	points []falcon.Point
	tags   []falcon.Tag
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Metrics) (*falconReceiver, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	obs := func(transport string) (*receiverhelper.ObsReport, error) {
		return receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
			ReceiverID: set.ID, Transport: transport, ReceiverCreateSettings: set,
		})
	}
	obsRPC, err := obs("tcp")
	if err != nil {
		return nil, err
	}
	obsHTTP, err := obs("http")
	if err != nil {
		return nil, err
	}
	series := translate.NewSeries(cfg.MaxSeries)
	r := &falconReceiver{
		cfg: cfg, settings: set, next: next, telemetry: tb,
		obsRPC: obsRPC, obsHTTP: obsHTTP,
		series:     series,
		translator: translate.New(int64(cfg.MinStep/time.Second), series),
		addrs:      map[listener]net.Addr{},
		conns:      map[net.Conn]struct{}{},
	}
	r.scratch.New = func() any { return new(pushScratch) }
	for l := range numListeners {
		for reason := range falcon.NumReasons {
			r.invalidOpts[l][reason] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("listener", l.String()), attribute.String("reason", falcon.Reason(reason).String())))
		}
		for reason := range numRejectReasons {
			r.rejectedOpts[l][reason] = metric.WithAttributeSet(attribute.NewSet(
				attribute.String("listener", l.String()), attribute.String("reason", rejectReasonNames[reason])))
		}
	}
	return r, nil
}

// Start opens the listeners whose endpoint is set.
func (r *falconReceiver) Start(ctx context.Context, host component.Host) error {
	if err := r.startRPC(ctx); err != nil {
		return err
	}
	for _, h := range []struct {
		l       listener
		cfg     *confighttp.ServerConfig
		path    string
		handler http.HandlerFunc
	}{
		{transferHTTP, &r.cfg.TransferHTTP, "/api/push", r.handleTransferPush},
		{agentHTTP, &r.cfg.AgentHTTP, "/v1/push", r.handleAgentPush},
	} {
		if h.cfg.NetAddr.Endpoint == "" {
			continue
		}
		if err := r.startHTTP(ctx, host, h.l, h.cfg, h.path, h.handler); err != nil {
			// Listeners opened so far are closed by Shutdown, which the
			// collector calls after a failed Start.
			return err
		}
	}
	return nil
}

func (r *falconReceiver) startHTTP(ctx context.Context, host component.Host, l listener, cfg *confighttp.ServerConfig,
	path string, handler http.HandlerFunc,
) error {
	mux := http.NewServeMux()
	// Like the originals, the path is matched exactly and any method is
	// taken: a GET has no body and is refused as blank.
	mux.Handle(path, handler)
	srv, err := cfg.ToServer(ctx, host.GetExtensions(), r.settings.TelemetrySettings, mux)
	if err != nil {
		return fmt.Errorf("%s server: %w", l, err)
	}
	ln, err := cfg.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("%s: listening on %s: %w", l, cfg.NetAddr.Endpoint, err)
	}
	r.httpServers = append(r.httpServers, srv)
	r.addrs[l] = ln.Addr()
	r.settings.Logger.Info("Open-Falcon receiver listening", zap.String("listener", l.String()),
		zap.String("endpoint", ln.Addr().String()), zap.String("path", path))
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return nil
}

// Shutdown stops accepting, closes the agents' connections once the pushes
// in flight are answered, and waits for them.
func (r *falconReceiver) Shutdown(ctx context.Context) error {
	var errs []error
	r.connsMu.Lock()
	r.stopping = true
	r.connsMu.Unlock()
	if r.rpcListener != nil {
		if err := r.rpcListener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	r.closeConns()
	for _, srv := range r.httpServers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("open_falcon receiver: pushes still in flight at shutdown: %w", ctx.Err()))
	}
	r.telemetry.Shutdown()
	return errors.Join(errs...)
}

// push checks the items of one push, sends the valid ones down the pipeline,
// and returns how many were invalid. An error means the pipeline refused the
// push; invalid items never cause one.
func (r *falconReceiver) push(ctx context.Context, l listener, items []falcon.Item) (int, error) {
	sc := r.scratch.Get().(*pushScratch)
	defer r.releaseScratch(sc)
	now := time.Now().Unix()
	var counts [falcon.NumReasons]int
	invalid := 0
	points, tags := sc.points[:0], sc.tags[:0]
	for i := range items {
		p, t, reason := falcon.Check(&items[i], now, tags)
		tags = t
		if reason != falcon.Valid {
			counts[reason]++
			invalid++
			if ce := r.settings.Logger.Check(zap.DebugLevel, "Dropped an invalid Open-Falcon item"); ce != nil {
				ce.Write(zap.String("listener", l.String()), zap.Stringer("reason", reason),
					zap.String("endpoint", items[i].Endpoint), zap.String("metric", items[i].Metric))
			}
			continue
		}
		points = append(points, p)
	}
	sc.points, sc.tags = points, tags
	for reason, n := range counts {
		if n > 0 {
			r.telemetry.ReceiverOpenFalconInvalidItems.Add(ctx, int64(n), r.invalidOpts[l][reason])
		}
	}
	if len(points) == 0 {
		return invalid, nil
	}
	md := pmetric.NewMetrics()
	stats := r.translator.Append(md, points)
	if stats.Added != stats.Evicted {
		r.telemetry.ReceiverOpenFalconTrackedSeries.Add(ctx, int64(stats.Added-stats.Evicted))
	}
	if stats.Evicted > 0 {
		r.telemetry.ReceiverOpenFalconEvictedSeries.Add(ctx, int64(stats.Evicted))
	}
	obs := r.obsHTTP
	if l == transferRPC {
		obs = r.obsRPC
	}
	ctx = obs.StartMetricsOp(ctx)
	err := r.next.ConsumeMetrics(ctx, md)
	obs.EndMetricsOp(ctx, "open_falcon", len(points), err)
	return invalid, err
}

// maxPooledPoints keeps one huge push from pinning its scratch forever.
const maxPooledPoints = 1 << 16

func (r *falconReceiver) releaseScratch(sc *pushScratch) {
	if cap(sc.points) > maxPooledPoints {
		sc.points, sc.tags = nil, nil
	}
	clear(sc.points) // drop the strings
	clear(sc.tags)
	sc.points, sc.tags = sc.points[:0], sc.tags[:0]
	r.scratch.Put(sc)
}

func (r *falconReceiver) reject(ctx context.Context, l listener, reason int, err error) {
	r.telemetry.ReceiverOpenFalconRejectedRequests.Add(ctx, 1, r.rejectedOpts[l][reason])
	r.settings.Logger.Debug("Refused an Open-Falcon request", zap.String("listener", l.String()),
		zap.String("reason", rejectReasonNames[reason]), zap.Error(err))
}
