package smartclickhouseexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/metadata"
	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
	"github.com/weftobs/weft/extension/k8smetadataextension"
)

// resyncInterval is how often the dictionaries, XML files and views are
// checked against their definitions (created when missing, re-created when
// changed), as DeepFlow's controller does.
const resyncInterval = time.Minute

// chExporter writes one signal. The traces, metrics and logs exporters of a
// collector are separate instances with their own connection pools.
type chExporter struct {
	cfg       *Config
	set       exporter.Settings
	table     schema.Table
	telemetry *metadata.TelemetryBuilder
	red       redactor

	conn     driver.Conn
	ch       *chConn
	features schema.Features
	runner   *schemaRunner
	cands    *candidates

	lookup k8smetadataextension.Lookup // peers of spans; nil without cfg.Metadata

	mu       sync.Mutex // guards prepared
	prepared bool       // the tables are known to be there

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

func newExporter(cfg *Config, set exporter.Settings, table schema.Table) (*chExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &chExporter{
		cfg:       cfg,
		set:       set,
		table:     table,
		telemetry: tb,
		red:       newRedactor(string(cfg.Password), string(cfg.Dictionaries.Source.Password)),
		cands:     newCandidates(),
		stop:      make(chan struct{}),
	}, nil
}

func (e *chExporter) options() schema.Options {
	d := e.cfg.Dictionaries
	return schema.Options{
		Database: e.cfg.Database,
		Cluster:  e.cfg.Cluster,
		TTL:      e.cfg.TTL,
		Source: schema.Source{
			Driver: d.Source.Driver, Host: d.Source.Host, Port: d.Source.Port,
			User: d.Source.User, Password: string(d.Source.Password), Database: d.Source.Database,
		},
		Lifetime: d.Lifetime,
	}
}

// start connects, learns the server's version and creates or checks the
// tables, dictionaries and views. A configuration the server cannot serve
// fails the start. A server that cannot be reached does not: the collector
// starts, its queue (persistent with sending_queue.storage) holds the data,
// and the first write that finds the server does the rest.
func (e *chExporter) start(ctx context.Context, host component.Host) error {
	if e.cfg.Metadata != nil {
		ext, ok := host.GetExtensions()[*e.cfg.Metadata]
		if !ok {
			return fmt.Errorf("metadata: extension %q not found: add it to the config's extensions and to service.extensions", e.cfg.Metadata)
		}
		if e.lookup, ok = ext.(k8smetadataextension.Lookup); !ok {
			return fmt.Errorf("metadata: extension %q is not a k8s_metadata extension", e.cfg.Metadata)
		}
	}
	conns := 2
	if e.cfg.QueueConfig.HasValue() {
		conns += e.cfg.QueueConfig.Get().NumConsumers
	}
	conn, err := openConn(ctx, e.cfg, conns)
	if err != nil {
		return e.red.Error(err)
	}
	e.conn = conn
	e.ch = &chConn{conn: conn}
	if err := e.prepareTables(ctx); err != nil {
		if isNetwork(err) || errors.Is(err, context.DeadlineExceeded) {
			e.set.Logger.Warn("ClickHouse cannot be reached; the exporter starts and sets up the schema on its first write",
				zap.String("endpoint", e.cfg.Endpoint), zap.Error(e.red.Error(err)))
			return nil
		}
		return e.red.Error(err)
	}
	if err := e.checkDictionaryConfig(); err != nil {
		return err
	}
	e.prepareObjects(ctx)
	return nil
}

// ready is checked before every write: it finishes what start could not
// do because the server was down. Its errors are retryable: the data waits.
func (e *chExporter) ready(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.prepared {
		return nil
	}
	if err := e.prepareTables(ctx); err != nil {
		return fmt.Errorf("ClickHouse at %s is not ready: %w", e.cfg.Endpoint, e.red.Error(err))
	}
	if err := e.checkDictionaryConfig(); err != nil {
		// Dictionaries are for reading: their misconfiguration must not
		// hold up writes.
		e.set.Logger.Error("Dictionaries and views are not created", zap.Error(err))
		return nil
	}
	e.prepareObjects(ctx)
	return nil
}

// prepareTables learns the server's version and migrates (or, with
// create_schema: false, checks) the tables. Errors are not redacted yet:
// the caller tells network errors from the rest.
func (e *chExporter) prepareTables(ctx context.Context) error {
	f, err := serverFeatures(ctx, e.ch)
	if err != nil {
		return err
	}
	e.features = f
	e.ch.settings = clickhouse.Settings(f.Settings())
	e.set.Logger.Info("Connected to ClickHouse", zap.String("version", f.Version.String()), zap.String("database", e.cfg.Database))
	e.runner = &schemaRunner{db: e.ch, f: f, o: e.options(), xmlDir: e.cfg.Dictionaries.XMLDir, logger: e.set.Logger, red: e.red}
	if !e.cfg.CreateSchema {
		if err := e.runner.checkVersion(ctx); err != nil {
			return err
		}
		e.prepared = true
		return nil
	}
	if e.cfg.TTL > 0 && !f.TTL {
		e.set.Logger.Warn("ttl is ignored: ClickHouse before 19.6 has no TTL; drop old partitions by hand (ALTER TABLE ... DROP PARTITION)")
	}
	if e.cfg.Dictionaries.XMLDir != "" && f.CreateDictionary {
		e.set.Logger.Warn("dictionaries.xml_dir is ignored: this ClickHouse has CREATE DICTIONARY")
	}
	if err := e.runner.migrate(ctx); err != nil && !errors.Is(err, errNewerSchema) {
		return err
	}
	e.prepared = true
	return nil
}

// prepareObjects creates the dictionaries and views and keeps them in sync
// from then on. What fails now (XML not read yet, a race with another
// collector) is tried again every resyncInterval.
func (e *chExporter) prepareObjects(ctx context.Context) {
	if !e.cfg.CreateSchema {
		return
	}
	if err := e.runner.sync(ctx); err != nil {
		e.set.Logger.Warn("Dictionaries or views are not in place yet; retrying every minute", zap.Error(err))
	}
	e.wg.Add(1)
	go e.resync()
}

func (e *chExporter) checkDictionaryConfig() error {
	if _, err := schema.DictionaryObjects(e.features, e.options()); err != nil {
		return err
	}
	files, err := schema.XMLFiles(e.features, e.options())
	if err != nil {
		return err
	}
	if len(files) > 0 && e.cfg.Dictionaries.XMLDir == "" {
		return fmt.Errorf("ClickHouse %s has no CREATE DICTIONARY (it came in 19.17): set dictionaries.xml_dir to the "+
			"directory of the server's dictionaries_config (*_dictionary.xml), where the exporter writes the dictionaries", e.features.Version)
	}
	return nil
}

func (e *chExporter) resync() {
	defer e.wg.Done()
	t := time.NewTicker(resyncInterval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			// Shutdown (closing e.stop) cuts a sync short rather than
			// waiting for it.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			go func() {
				select {
				case <-e.stop:
					cancel()
				case <-ctx.Done():
				}
			}()
			if err := e.runner.sync(ctx); err != nil {
				select {
				case <-e.stop: // cut short on purpose
				default:
					e.set.Logger.Warn("Keeping ClickHouse dictionaries and views in sync failed; retrying in a minute", zap.Error(err))
				}
			}
			cancel()
		}
	}
}

func (e *chExporter) shutdown(context.Context) error {
	e.stopOnce.Do(func() { close(e.stop) })
	e.wg.Wait()
	e.telemetry.Shutdown()
	if e.conn != nil {
		return e.conn.Close()
	}
	return nil
}

func (e *chExporter) countSkipped(ctx context.Context, skip skipped) {
	for reason, n := range skip {
		e.telemetry.ExporterSmartClickhouseSkippedRecords.Add(ctx, n, metric.WithAttributes(
			attribute.String("signal", e.table.Name), attribute.String("reason", reason)))
		e.set.Logger.Warn("Records skipped: ClickHouse cannot store them", zap.String("table", e.table.Name),
			zap.String("reason", reason), zap.Int64("count", n))
	}
}

// write inserts rows and then their new tag-value candidates. A failed
// candidate insert is logged, not returned: the rows are written, and
// retrying the request would write them twice.
func (e *chExporter) write(ctx context.Context, n int, values map[string]any, cb *candidateBatch) error {
	if n == 0 {
		return nil
	}
	ctx = clickhouse.Context(ctx, clickhouse.WithSettings(e.features.InsertSettings()))
	if err := insert(ctx, e.conn, e.cfg.Database, e.table, values); err != nil {
		if schemaGone(err) && e.cfg.CreateSchema {
			// Set the schema up again before the retry (on whichever host
			// answers then) instead of dropping this and every later batch.
			e.mu.Lock()
			e.prepared = false
			e.mu.Unlock()
			return fmt.Errorf("insert into %s.%s: the database is missing or of another server version; setting the schema up again: %s",
				e.cfg.Database, e.table.Name, e.red.String(err.Error()))
		}
		return e.red.insertError(e.cfg.Database+"."+e.table.Name, err)
	}
	names, vals := cb.fresh()
	if len(names)+len(vals) == 0 {
		return nil
	}
	if err := writeCandidates(ctx, e.conn, e.cfg.Database, time.Now(), names, vals); err != nil {
		e.cands.forget(names, vals)
		e.set.Logger.Warn("Writing tag-value candidates failed; they are written with later data", zap.Error(e.red.Error(err)))
		return nil
	}
	e.telemetry.ExporterSmartClickhouseCandidateRows.Add(ctx, int64(len(names)+len(vals)))
	return nil
}

func (e *chExporter) pushTraces(ctx context.Context, td ptrace.Traces) error {
	// The column types depend on the server: know it first.
	if err := e.ready(ctx); err != nil {
		return err
	}
	rows := spanRows{lookup: e.lookup}
	skip := skipped{}
	rows.addTraces(td, skip)
	e.countSkipped(ctx, skip)
	cb := e.cands.batch(e.table.Name, time.Now())
	addCandidates(cb, &rows.common)
	return e.write(ctx, rows.n, rows.columns(e.features), cb)
}

func (e *chExporter) pushMetrics(ctx context.Context, md pmetric.Metrics) error {
	// The column types depend on the server: know it first.
	if err := e.ready(ctx); err != nil {
		return err
	}
	var rows metricRows
	skip := skipped{}
	rows.addMetrics(md, skip)
	e.countSkipped(ctx, skip)
	cb := e.cands.batch(e.table.Name, time.Now())
	addCandidates(cb, &rows.common)
	return e.write(ctx, rows.n, rows.columns(e.features), cb)
}

func (e *chExporter) pushLogs(ctx context.Context, ld plog.Logs) error {
	// The column types depend on the server: know it first.
	if err := e.ready(ctx); err != nil {
		return err
	}
	var rows logRows
	skip := skipped{}
	rows.addLogs(ld, skip)
	e.countSkipped(ctx, skip)
	cb := e.cands.batch(e.table.Name, time.Now())
	addCandidates(cb, &rows.common)
	return e.write(ctx, rows.n, rows.columns(e.features), cb)
}

func addCandidates(cb *candidateBatch, c *commonRows) {
	for i := range c.attrNames {
		cb.add(scopeAttribute, c.attrNames[i], c.attrValues[i])
		cb.add(scopeResource, c.resNames[i], c.resValues[i])
	}
}
