package smartclickhouseexporter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/zap/zaptest"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/metadata"
	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/metadatatest"
	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
	"github.com/weftobs/weft/tests/harness"
)

// testConfig writes straight through, without queue or retries, so that a
// push returns the insert's own error.
func testConfig(endpoint, database string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoint = endpoint
	cfg.Database = database
	cfg.QueueConfig = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.RetryConfig.Enabled = false
	return cfg
}

type exporters struct {
	traces  exporter.Traces
	metrics exporter.Metrics
	logs    exporter.Logs
}

func startExporters(t *testing.T, cfg *Config, set exporter.Settings) exporters {
	t.Helper()
	f := NewFactory()
	var e exporters
	var err error
	e.traces, err = f.CreateTraces(t.Context(), set, cfg)
	require.NoError(t, err)
	e.metrics, err = f.CreateMetrics(t.Context(), set, cfg)
	require.NoError(t, err)
	e.logs, err = f.CreateLogs(t.Context(), set, cfg)
	require.NoError(t, err)
	require.NoError(t, e.traces.Start(t.Context(), componenttest.NewNopHost()))
	require.NoError(t, e.metrics.Start(t.Context(), componenttest.NewNopHost()))
	require.NoError(t, e.logs.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		assert.NoError(t, e.traces.Shutdown(t.Context()))
		assert.NoError(t, e.metrics.Shutdown(t.Context()))
		assert.NoError(t, e.logs.Shutdown(t.Context()))
	})
	return e
}

// TestLegacyServer runs the exporter against a real ClickHouse 18.16: the
// schema without codecs, DateTime64 or CREATE DICTIONARY, dictionaries as
// XML files reading MariaDB, writes through clickhouse-go, skipped records,
// candidates, error classification.
func TestLegacyServer(t *testing.T) {
	ch := harness.StartClickHouse(t)
	meta, fixture := mariadbFixture(t)
	fixture.create()

	cfg := testConfig(ch.Endpoint(), "weft")
	cfg.Password = ""
	cfg.Dictionaries = DictionariesConfig{
		Source:   DictionarySourceConfig{Driver: "mysql", Host: meta.Host, Port: meta.Port, User: meta.User, Database: meta.Name},
		Lifetime: 10 * time.Second,
		XMLDir:   ch.DictionariesDir,
	}
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(t.Context()) })
	e := startExporters(t, cfg, metadatatest.NewSettings(tt))

	// XML dictionaries, readable by owner and group only: they hold the
	// source's password.
	info, err := os.Stat(filepath.Join(ch.DictionariesDir, "weft_pod_map_dictionary.xml"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), info.Mode().Perm())
	assert.Equal(t, "2", strings.TrimSpace(ch.MustQuery(t, "SELECT max(version) FROM weft.schema_version")))
	assert.Equal(t, "events.time\tArray(UInt64)\nip4_0\tUInt32\nip6_1\tFixedString(16)\nname\tLowCardinality(String)\nstart_time\tUInt64\ntrace_id\tString",
		strings.TrimSpace(ch.MustQuery(t, "SELECT name, type FROM system.columns WHERE database = 'weft' AND table = 'spans' AND name IN ('trace_id', 'name', 'start_time', 'ip4_0', 'ip6_1', 'events.time') ORDER BY name")))

	ctx := t.Context()
	require.NoError(t, e.traces.ConsumeTraces(ctx, testTraces()))
	require.NoError(t, e.metrics.ConsumeMetrics(ctx, testMetrics()))
	require.NoError(t, e.logs.ConsumeLogs(ctx, testLogs()))

	q := func(sql string) string { return strings.TrimSpace(ch.MustQuery(t, sql)) }
	assert.Equal(t, "2", q("SELECT count() FROM weft.spans"))
	assert.Equal(t, "5", q("SELECT count() FROM weft.metrics"))
	assert.Equal(t, "1", q("SELECT count() FROM weft.logs"))
	assert.Equal(t, map[string]int64{"spans": 1, "metrics": 1, "logs": 1}, skippedBySignal(t, tt))

	// Precise times as unix nanoseconds beside the DateTime.
	assert.Equal(t, "2026-01-02 03:04:05\t1767323045123456789\t1767323045173456789\t50000000",
		q("SELECT time, start_time, end_time, duration FROM weft.spans WHERE name = 'GET /cart'"))

	// Names through the XML dictionaries and the views.
	assert.Equal(t, "GET /cart\tprod\tnode-a\tshop\tcart\tDeployment\tcart-7d9f\tcart-svc\tcart-7d9f\tcart-svc\t10.1.2.3\tdb-0\t10.1.9.9",
		q("SELECT name, cluster_1, node_1, namespace_1, workload_1, workload_kind_name_1, pod_1, k8s_service_1, auto_instance_1, auto_service_1, ip_1, pod_0, ip_0 FROM weft.spans_view WHERE pod_1 = 'cart-7d9f'"))
	assert.Equal(t, "cart", q("SELECT dictGetString('weft_pod_label_map', 'value', tuple(toUInt64(pod_id_1), 'app')) FROM weft.spans WHERE name = 'GET /cart'"))
	assert.Equal(t, "checkout.latency\thistogram\tcart-7d9f\t[5,10]\t[1,1,1]",
		q("SELECT name, type, pod, bucket_bounds, bucket_counts FROM weft.metrics_view WHERE type = 'histogram'"))
	assert.Equal(t, "payment declined\tcart-7d9f\t2001:db8::1", q("SELECT body, pod, ip FROM weft.logs_view"))

	fixture.exec("UPDATE ch_pod SET name = 'cart-v2', updated_at = UTC_TIMESTAMP(6) WHERE id = 5")
	ch.MustQuery(t, "SYSTEM RELOAD DICTIONARY weft_pod_map")
	assert.Equal(t, "cart-v2", q("SELECT pod_1 FROM weft.spans_view WHERE name = 'GET /cart'"))

	// Candidates: written once, not again for the same pairs.
	assert.Equal(t, "/cart", q("SELECT value FROM weft.tag_values WHERE table_name = 'spans' AND scope = 'attribute' AND name = 'http.route'"))
	assert.Equal(t, "c", q("SELECT value FROM weft.tag_values WHERE table_name = 'spans' AND scope = 'resource' AND name = 'k8s.container.name'"))
	assert.Equal(t, "order.id", q("SELECT name FROM weft.tag_names WHERE table_name = 'logs'"))
	before := q("SELECT count() FROM weft.tag_values")
	require.NoError(t, e.traces.ConsumeTraces(ctx, testTraces()))
	assert.Equal(t, before, q("SELECT count() FROM weft.tag_values"))
	assert.Equal(t, "4", q("SELECT count() FROM weft.spans"))

	t.Run("schema or type errors are permanent", func(t *testing.T) {
		ch.MustQuery(t, "ALTER TABLE weft.logs DROP COLUMN event_name")
		defer ch.MustQuery(t, "ALTER TABLE weft.logs ADD COLUMN event_name LowCardinality(String) AFTER severity_number")
		err := e.logs.ConsumeLogs(ctx, testLogs())
		require.Error(t, err)
		assert.True(t, consumererror.IsPermanent(err), "%v", err)
		assert.Contains(t, err.Error(), "event_name")
	})

	outer := t
	t.Run("a server that is down is retried", func(t *testing.T) {
		ch.Stop(t)
		err := e.logs.ConsumeLogs(ctx, testLogs())
		require.Error(t, err)
		assert.False(t, consumererror.IsPermanent(err), "%v", err)
		ch.Start(outer) // the server lives as long as the outer test
		require.NoError(t, e.logs.ConsumeLogs(ctx, testLogs()))
	})

	t.Run("passwords stay out of errors", func(t *testing.T) {
		bad := testConfig(ch.Endpoint(), "weft")
		bad.Username = "nobody"
		bad.Password = "hunter2-secret"
		exp, err := NewFactory().CreateLogs(ctx, exportertest.NewNopSettings(metadata.Type), bad)
		require.NoError(t, err)
		err = exp.Start(ctx, componenttest.NewNopHost())
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "hunter2")
		require.NoError(t, exp.Shutdown(ctx))
	})

	t.Run("postgres needs a newer server", func(t *testing.T) {
		pg := testConfig(ch.Endpoint(), "weft_pg")
		pg.Dictionaries.Source = DictionarySourceConfig{Driver: "postgres", Host: "127.0.0.1", Port: 5432, Database: "x", Password: "pg-secret-pw"}
		pg.Dictionaries.XMLDir = t.TempDir()
		exp, err := NewFactory().CreateLogs(ctx, exportertest.NewNopSettings(metadata.Type), pg)
		require.NoError(t, err)
		err = exp.Start(ctx, componenttest.NewNopHost())
		require.ErrorContains(t, err, "ODBC")
		assert.NotContains(t, err.Error(), "pg-secret-pw")
		require.NoError(t, exp.Shutdown(ctx))
	})

	t.Run("a dropped database is set up again, not dropped", func(t *testing.T) {
		// What another host of the endpoint list that never had the
		// schema, or a DBA's DROP DATABASE, looks like.
		ch.MustQuery(t, "DROP DATABASE weft")
		err := e.logs.ConsumeLogs(ctx, testLogs())
		require.Error(t, err)
		assert.False(t, consumererror.IsPermanent(err), "%v", err)
		require.NoError(t, e.logs.ConsumeLogs(ctx, testLogs()), "the retry sets the schema up and writes")
		assert.Equal(t, "1", q("SELECT count() > 0 FROM weft.logs"))
	})
}

// skippedBySignal reads the skipped-records counter, by signal.
func skippedBySignal(t *testing.T, tt *componenttest.Telemetry) map[string]int64 {
	t.Helper()
	m, err := tt.GetMetric("otelcol_exporter_smart_clickhouse_skipped_records")
	require.NoError(t, err)
	got := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		signal, _ := dp.Attributes.Value("signal")
		reason, _ := dp.Attributes.Value("reason")
		assert.Equal(t, reasonTimestamp, reason.AsString())
		got[signal.AsString()] += dp.Value
	}
	return got
}

// TestMigrationsOnLegacyServer upgrades a schema on ClickHouse 18.16,
// which has no ADD COLUMN IF NOT EXISTS, with several collectors at once.
func TestMigrationsOnLegacyServer(t *testing.T) {
	ch := harness.StartClickHouse(t)
	v1 := []schema.Table{{Name: "t1", Since: 1, Engine: "MergeTree", OrderBy: "time",
		Columns: []schema.Column{{Name: "time", Kind: schema.DateTime}, {Name: "a", Kind: schema.UInt8}}}}
	v2 := []schema.Table{
		{Name: "t1", Since: 1, Engine: "MergeTree", OrderBy: "time", Columns: []schema.Column{
			{Name: "time", Kind: schema.DateTime}, {Name: "a", Kind: schema.UInt8},
			{Name: "b", Kind: schema.LowString, Since: 2}, {Name: "c", Kind: schema.ArrayString, Since: 2}}},
		{Name: "t2", Since: 2, Engine: "ReplacingMergeTree(time)", OrderBy: "name", Columns: []schema.Column{
			{Name: "time", Kind: schema.DateTime}, {Name: "name", Kind: schema.String}}},
	}
	f := schema.FeaturesOf(schema.Version{Major: 18, Minor: 16})
	runner := func(db string, tables []schema.Table, latest int) *schemaRunner {
		conn, err := openConn(t.Context(), testConfig(ch.Endpoint(), db), 4)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		o := schema.Options{Database: db}
		return &schemaRunner{db: &chConn{conn: conn, settings: f.Settings()}, f: f, o: o, logger: zaptest.NewLogger(t),
			migrations: schema.MigrationsOf(tables, latest, f, o), mu: &sync.Mutex{}}
	}
	q := func(sql string) string { return strings.TrimSpace(ch.MustQuery(t, sql)) }

	require.NoError(t, runner("up", v1, 1).migrate(t.Context()))
	assert.Equal(t, "time\na", q("SELECT name FROM system.columns WHERE database = 'up' AND table = 't1'"))
	ch.MustQuery(t, "INSERT INTO up.t1 (time, a) VALUES (now(), 7)")
	require.NoError(t, runner("up", v2, 2).migrate(t.Context()))
	assert.Equal(t, "time\na\nb\nc", q("SELECT name FROM system.columns WHERE database = 'up' AND table = 't1'"))
	assert.Equal(t, "7\t\t[]", q("SELECT a, b, c FROM up.t1"), "added columns are empty on old rows")
	assert.Equal(t, "1\n2", q("SELECT version FROM up.schema_version FINAL ORDER BY version"))
	require.NoError(t, runner("up", v2, 2).migrate(t.Context()), "a second run is a no-op")

	// An older collector leaves the newer schema alone.
	assert.ErrorIs(t, runner("up", v1, 1).migrate(t.Context()), errNewerSchema)

	// Four collectors migrating a fresh database at once end in one schema.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	runners := make([]*schemaRunner, 4)
	for i := range runners {
		runners[i] = runner("race", v2, 2)
	}
	for i, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.migrate(t.Context())
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	assert.Equal(t, "time\na\nb\nc", q("SELECT name FROM system.columns WHERE database = 'race' AND table = 't1'"))
	assert.Equal(t, "2", q("SELECT max(version) FROM race.schema_version"))
}
