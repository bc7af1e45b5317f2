package k8smetadataextension

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/kube"
	imeta "github.com/weftobs/weft/extension/k8smetadataextension/internal/metadata"
	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
	"github.com/weftobs/weft/extension/k8smetadataextension/internal/static"
	"github.com/weftobs/weft/extension/k8smetadataextension/internal/store"
)

// database is what the extension needs of the metadata database
// (internal/store implements it for PostgreSQL and MySQL).
type database interface {
	Migrate(ctx context.Context) error
	ClusterID(ctx context.Context) (uint32, error)
	Apply(ctx context.Context, upserts []model.Record, deletes []model.Ref) (int64, error)
	Reconcile(ctx context.Context, kinds []model.Kind, present map[model.Ref]struct{}) (int, int64, error)
	Purge(ctx context.Context, deletedBefore time.Time) (int, error)
	Watermark(ctx context.Context) (int64, error)
	Changes(ctx context.Context, since int64, limit int) ([]model.Row, error)
	Close() error
}

// k8sMetadata is the extension: a watcher and writer while it leads, a
// snapshot refresher always.
type k8sMetadata struct {
	lookups

	cfg       *Config
	set       extension.Settings
	telemetry *imeta.TelemetryBuilder

	// db and clusterID are set before prepared is closed, and read only
	// after (or after the goroutines ended).
	db        database
	clusterID uint32
	prepared  chan struct{}

	// leading is true while this instance watches and writes.
	leading atomic.Bool
	// staticMod and staticSize identify the static resources file last
	// written (writer goroutine only).
	staticMod  time.Time
	staticSize int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ Lookup = (*k8sMetadata)(nil)

func newExtension(cfg *Config, set extension.Settings) (*k8sMetadata, error) {
	tb, err := imeta.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &k8sMetadata{cfg: cfg, set: set, telemetry: tb, prepared: make(chan struct{})}, nil
}

// Start begins connecting to the database and the API server in the
// background. Neither being down stops the collector: the extension retries
// and answers lookups once it has a snapshot (Ready).
func (e *k8sMetadata) Start(ctx context.Context, host component.Host) error {
	var restCfg *rest.Config
	if e.cfg.Watch {
		var err error
		if restCfg, err = e.restConfig(); err != nil {
			return err
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel

	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.refreshLoop(runCtx, host)
	}()
	if restCfg != nil {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			e.lead(runCtx, restCfg)
		}()
	}
	return nil
}

func (e *k8sMetadata) Shutdown(context.Context) error {
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
	var err error
	if e.db != nil {
		err = e.db.Close()
	}
	e.telemetry.Shutdown()
	return err
}

func (e *k8sMetadata) restConfig() (*rest.Config, error) {
	var (
		c   *rest.Config
		err error
	)
	if e.cfg.Kubeconfig != "" {
		c, err = clientcmd.BuildConfigFromFlags("", e.cfg.Kubeconfig)
	} else {
		c, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config (kubeconfig %q): %w", e.cfg.Kubeconfig, err)
	}
	c.UserAgent = "weftcol/k8s_metadata"
	return c, nil
}

// prepare connects, migrates the schema and finds the cluster's id,
// retrying until the database answers: a database that is down when the
// collector starts delays lookups, it does not stop the collector.
func (e *k8sMetadata) prepare(ctx context.Context) bool {
	return retry(ctx, e.set.Logger, "preparing the metadata database", func() error {
		if e.db == nil {
			db, err := store.Open(ctx, e.cfg.Database.Driver, string(e.cfg.Database.DSN), e.cfg.ClusterName, e.set.Logger)
			if err != nil {
				return err
			}
			e.db = db
		}
		if err := e.db.Migrate(ctx); err != nil {
			return err
		}
		id, err := e.db.ClusterID(ctx)
		if err != nil {
			return err
		}
		e.clusterID = id
		return nil
	})
}

// lead runs the watcher and writer while this instance holds the lease (or
// always, without leader election).
func (e *k8sMetadata) lead(ctx context.Context, restCfg *rest.Config) {
	client, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		e.set.Logger.Error("Kubernetes client", zap.Error(err))
		return
	}
	meta, err := metadata.NewForConfig(restCfg)
	if err != nil {
		e.set.Logger.Error("Kubernetes metadata client", zap.Error(err))
		return
	}
	if !e.cfg.LeaderElection.Enabled {
		e.write(ctx, client, meta)
		return
	}
	host, _ := os.Hostname()
	identity := fmt.Sprintf("%s_%d_%d", host, os.Getpid(), time.Now().UnixNano())
	le := e.cfg.LeaderElection
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1ObjectMeta(le.LeaseName, le.LeaseNamespace),
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: identity},
	}
	for ctx.Err() == nil {
		leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   le.LeaseDuration,
			RenewDeadline:   le.RenewDeadline,
			RetryPeriod:     le.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            le.LeaseName,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					e.set.Logger.Info("Leading: watching the Kubernetes API and writing the metadata database", zap.String("identity", identity))
					e.telemetry.K8sMetadataLeader.Record(ctx, 1)
					e.write(ctx, client, meta)
				},
				OnStoppedLeading: func() {
					e.telemetry.K8sMetadataLeader.Record(context.Background(), 0)
					e.set.Logger.Info("No longer leading", zap.String("identity", identity))
				},
			},
		})
	}
}

// write watches the API server and writes what changes, until ctx ends. A
// write that fails is retried; after the database comes back, everything is
// written again and reconciled, so nothing changed meanwhile is lost.
func (e *k8sMetadata) write(ctx context.Context, client kubernetes.Interface, meta metadata.Interface) {
	select {
	case <-ctx.Done():
		return
	case <-e.prepared:
	}
	e.leading.Store(true)
	defer e.leading.Store(false)
	w := kube.New(client, meta)
	w.Start(ctx)
	if !w.WaitForSync(ctx) {
		return
	}
	reconcile := true
	purge := time.NewTicker(time.Hour)
	defer purge.Stop()
	tick := time.NewTicker(e.cfg.WriteInterval)
	defer tick.Stop()
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-w.Changed():
			// Let a burst of events gather into one transaction.
			select {
			case <-ctx.Done():
				return
			case <-time.After(e.cfg.WriteInterval):
			}
		case <-purge.C:
			if n, err := e.db.Purge(ctx, time.Now().Add(-e.cfg.DeletedRetention)); err != nil {
				e.set.Logger.Warn("Purging deleted resources failed", zap.Error(err))
			} else if n > 0 {
				e.set.Logger.Info("Purged deleted resources", zap.Int("rows", n))
			}
			continue
		}
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
		var err error
		if reconcile {
			err = e.reconcile(ctx, w)
		} else {
			err = e.apply(ctx, w)
		}
		if err == nil {
			err = e.syncStatic(ctx, reconcile)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.telemetry.K8sMetadataWrites.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "failed")))
			backoff = min(max(2*backoff, 500*time.Millisecond), 30*time.Second)
			e.set.Logger.Warn("Writing to the metadata database failed; retrying, and re-listing when it is back",
				zap.Duration("backoff", backoff), zap.Error(err))
			reconcile = true
			continue
		}
		reconcile, backoff = false, 0
	}
}

// apply writes what changed since the last write.
func (e *k8sMetadata) apply(ctx context.Context, w *kube.Watcher) error {
	upserts, deletes := w.Take()
	for len(upserts) > 0 || len(deletes) > 0 {
		n := min(len(upserts), writeBatch)
		if _, err := e.db.Apply(ctx, upserts[:n], deletes); err != nil {
			w.Requeue(upserts, deletes)
			return err
		}
		e.telemetry.K8sMetadataWrites.Add(ctx, int64(n+len(deletes)), metric.WithAttributes(attribute.String("outcome", "written")))
		upserts, deletes = upserts[n:], nil
	}
	return nil
}

// writeBatch bounds one transaction.
const writeBatch = 1000

// reconcile writes everything in the informers' caches and soft-deletes
// what the database has and the API server no longer does.
func (e *k8sMetadata) reconcile(ctx context.Context, w *kube.Watcher) error {
	w.Take() // everything is written below
	records, present := w.All()
	for len(records) > 0 {
		n := min(len(records), writeBatch)
		if _, err := e.db.Apply(ctx, records[:n], nil); err != nil {
			return err
		}
		records = records[n:]
	}
	deleted, _, err := e.db.Reconcile(ctx, kube.WatchedKinds, present)
	if err != nil {
		return err
	}
	e.set.Logger.Info("Reconciled the metadata database with the API server", zap.Int("resources", len(present)), zap.Int("deleted", deleted))
	return nil
}

// syncStatic writes the static resources file when it changed since the
// last write (or always, with force). A file that does not parse is logged
// and the resources written before stay.
func (e *k8sMetadata) syncStatic(ctx context.Context, force bool) error {
	path := e.cfg.StaticResources
	if path == "" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		if force || !e.staticMod.IsZero() {
			e.set.Logger.Error("Static resources file unreadable; keeping what was written before", zap.String("path", path), zap.Error(err))
		}
		return nil
	}
	if !force && fi.ModTime().Equal(e.staticMod) && fi.Size() == e.staticSize {
		return nil
	}
	records, err := static.Load(path)
	if err != nil {
		e.set.Logger.Error("Static resources file invalid; keeping what was written before", zap.Error(err))
		e.staticMod, e.staticSize = fi.ModTime(), fi.Size() // report it once, until the file changes again
		return nil
	}
	present := map[model.Ref]struct{}{}
	for _, r := range records {
		present[model.Ref{Kind: r.Kind, UID: r.UID}] = struct{}{}
	}
	if _, err := e.db.Apply(ctx, records, nil); err != nil {
		return err
	}
	if _, _, err := e.db.Reconcile(ctx, static.Kinds, present); err != nil {
		return err
	}
	e.staticMod, e.staticSize = fi.ModTime(), fi.Size()
	e.set.Logger.Info("Wrote static resources", zap.String("path", path), zap.Int("resources", len(records)))
	return nil
}

// refreshLoop keeps the lookup snapshot in step with the database: it polls
// the change counter, and reads only the rows written since.
func (e *k8sMetadata) refreshLoop(ctx context.Context, host component.Host) {
	if !e.prepare(ctx) {
		return
	}
	close(e.prepared)
	state := rows{}
	var version int64 = -1
	tick := time.NewTicker(e.cfg.RefreshInterval)
	defer tick.Stop()
	for {
		wasReady := e.Ready()
		if err := e.refresh(ctx, state, &version); err != nil && ctx.Err() == nil {
			e.set.Logger.Warn("Refreshing the lookup snapshot failed; serving the last one", zap.Error(err))
		}
		if !wasReady && e.Ready() {
			e.set.Logger.Info("Lookups ready", zap.Int("resources", len(state)), zap.Int64("version", version))
			componentstatus.ReportStatus(host, componentstatus.NewEvent(componentstatus.StatusOK))
		}
		e.report(ctx, state)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// refresh reads the changes since *version and swaps in a new snapshot if
// there were any.
func (e *k8sMetadata) refresh(ctx context.Context, state rows, version *int64) error {
	wm, err := e.db.Watermark(ctx)
	if err != nil {
		return err
	}
	if wm == *version && e.snap.Load() != nil {
		return nil
	}
	since := max(*version, 0)
	for {
		changes, err := e.db.Changes(ctx, since, changesPage)
		if err != nil {
			return err
		}
		state.apply(changes)
		if len(changes) > 0 {
			since = changes[len(changes)-1].Version
		}
		if len(changes) < changesPage {
			break
		}
	}
	*version = max(wm, since)
	e.snap.Store(state.build(*version, e.vpcOf))
	return nil
}

const changesPage = 5000

// vpcOf is the VPC of a cluster's addresses.
func (e *k8sMetadata) vpcOf(clusterID uint32) uint32 {
	if clusterID == e.clusterID {
		return e.cfg.VPCID
	}
	return 0
}

// report records the extension's gauges and the lookup counters.
func (e *k8sMetadata) report(ctx context.Context, state rows) {
	counts := map[model.Kind]int64{}
	for k := range state {
		counts[k.kind]++
	}
	for _, k := range model.Kinds {
		e.telemetry.K8sMetadataObjects.Record(ctx, counts[k], metric.WithAttributes(attribute.String("kind", k.String())))
	}
	if s := e.snap.Load(); s != nil {
		e.telemetry.K8sMetadataSnapshotVersion.Record(ctx, s.version)
	}
	e.telemetry.K8sMetadataLookups.Add(ctx, int64(e.hits.Swap(0)), metric.WithAttributes(attribute.String("result", "hit")))
	e.telemetry.K8sMetadataLookups.Add(ctx, int64(e.misses.Swap(0)), metric.WithAttributes(attribute.String("result", "miss")))
}

// retry runs fn until it succeeds or ctx ends, backing off up to 30 s.
func retry(ctx context.Context, logger *zap.Logger, what string, fn func() error) bool {
	backoff := 500 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		logger.Warn(what+" failed; retrying", zap.Duration("backoff", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

func metav1ObjectMeta(name, namespace string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace}
}
