package smartclickhouseexporter

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"
	"go.uber.org/zap"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
	"github.com/weftobs/weft/extension/k8smetadataextension"
	"github.com/weftobs/weft/processor/smartencodingprocessor"
	"github.com/weftobs/weft/tests/chdb"
	"github.com/weftobs/weft/tests/harness"
	"github.com/weftobs/weft/tests/workload"
)

// The storage scenario of `make bench` (issue #8): the same spans of the
// production-shaped cluster (tests/workload: 2000 pods, 40 fixed resource
// tags and 60 custom tags per request) stored three ways in both real
// engines, ClickHouse 18.16 (a server) and ClickHouse 26.5 (chDB):
//
//	contrib  the contrib clickhouseexporter's otel_traces layout: every tag
//	         in ResourceAttributes / SpanAttributes, Map(LowCardinality(String),
//	         String) where the server has Map, key and value arrays on 18.16
//	lowcard  one LowCardinality(String) column per tag, the span's own and its
//	         peer's (100 columns), request attributes as in contrib
//	weft     what smart_encoding + smart_clickhouse write: integer ids for
//	         both sides, the tags that no id determines as attributes, nothing
//	         that the k8s_metadata dictionaries can give back at query time
//
// contrib and lowcard get every span with its peer's tags (peer.*
// attributes, 45 per span), which is what those layouts need to answer the
// same questions; Weft gets the span without them and finds the peer by its
// address, as in the default pipeline. Reported per layout: bytes on disk
// per span after OPTIMIZE ... FINAL (system.parts), bytes of the tag columns
// alone (system.parts_columns) and the server's CPU per span to insert
// (18.16: query_log ProfileEvents; chDB runs in this process: the process's
// CPU time during the INSERT).
var storageSpans = flag.Int("storage.spans", 100_000, "spans per layout in BenchmarkScenarioStorage")

const storageBatch = 10_000 // spans per INSERT, as a collector's batch would send

func BenchmarkScenarioStorage(b *testing.B) {
	cluster := workload.NewCluster(workload.Production, 1)
	for _, engine := range []string{"clickhouse-18.16", "chdb-26.5"} {
		b.Run(engine, func(b *testing.B) {
			for _, layout := range storageLayouts {
				b.Run(layout, func(b *testing.B) {
					for i := 0; i < b.N; i++ {
						r := runStorage(b, engine, layout, cluster, *storageSpans, storageBatch)
						b.ReportMetric(r.diskPerSpan, "disk-B/span")
						b.ReportMetric(r.tagsPerSpan, "tags-B/span")
						b.ReportMetric(r.cpuPerSpan, "insert-cpu-ns/span")
						b.ReportMetric(float64(r.spans), "spans")
						if testing.Verbose() {
							b.Logf("%s %s: largest columns (compressed bytes per span)\n%s", engine, layout, r.columns)
						}
					}
				})
			}
		})
	}
}

// TestScenarioStorageSmoke runs the storage scenario small on both engines
// and checks that every layout stored every span, and that Weft's rows carry
// the ids of both sides: the scenario measures what it claims to.
func TestScenarioStorageSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ClickHouse and chDB")
	}
	cluster := workload.NewCluster(workload.Small, 1)
	for _, engine := range []string{"clickhouse-18.16", "chdb-26.5"} {
		t.Run(engine, func(t *testing.T) {
			for _, layout := range storageLayouts {
				r := runStorage(t, engine, layout, cluster, 2000, 1000)
				require.Equal(t, 2000, r.spans, "%s: rows stored", layout)
				require.Positive(t, r.diskPerSpan, layout)
				require.Positive(t, r.tagsPerSpan, layout)
				if layout == "weft" {
					require.Equal(t, "2000\t2000", r.check, "spans with a pod id on both sides")
				}
			}
		})
	}
}

var storageLayouts = []string{"contrib", "lowcard", "weft"}

type storageResult struct {
	spans                                int
	diskPerSpan, tagsPerSpan, cpuPerSpan float64
	columns                              string // the largest columns, for -v
	check                                string // weft: spans with pod ids on both sides
}

// storageEngine is one real ClickHouse with a database of its own.
type storageEngine interface {
	features() schema.Features
	database() string
	exec(tb testing.TB, sql string)
	query(tb testing.TB, sql string) string
	// insert writes one block and returns the server's CPU time for it.
	insert(tb testing.TB, table string, cols []typedColumn) time.Duration
	// schemaDB is the engine for the schema runner.
	schemaDB() db
}

func runStorage(tb testing.TB, engine, layout string, cluster *workload.Cluster, spans, batch int) storageResult {
	var e storageEngine
	switch engine {
	case "clickhouse-18.16":
		e = newServerEngine(tb)
	default:
		e = newChDBEngine(tb)
	}
	f := e.features()
	gen := workload.NewGenerator(cluster, 42)
	gen.PeerTags = layout != "weft"
	var table string
	var build func(ptrace.Traces) []typedColumn
	var tagColumns []string
	switch layout {
	case "contrib":
		table = "otel_traces"
		cols := contribColumns(f)
		e.exec(tb, createTable(e.database(), table, cols, contribEngine(f), f))
		build = func(td ptrace.Traces) []typedColumn { return layoutRows(td, cols, f, false) }
		tagColumns = []string{"ResourceAttributes", "SpanAttributes"}
	case "lowcard":
		table = "lowcard_traces"
		cols := lowcardColumns(cluster, f)
		e.exec(tb, createTable(e.database(), table, cols, contribEngine(f), f))
		build = func(td ptrace.Traces) []typedColumn { return layoutRows(td, cols, f, true) }
		tagColumns = []string{"own_", "peer_"}
	case "weft":
		table = schema.Spans.Name
		migrateBench(tb, e)
		encode := startSmartEncoding(tb, cluster)
		lookup := cluster.Lookup(1)
		build = func(td ptrace.Traces) []typedColumn {
			rows := spanRows{lookup: lookup}
			rows.addTraces(encode(td), skipped{})
			return tableColumns(tb, schema.Spans, f, rows.columns(f))
		}
		tagColumns = []string{"resource_", "ip4_", "ip6_"}
		for _, id := range schema.IDColumns {
			tagColumns = append(tagColumns, id.Name+"_")
		}
	}
	if _, ok := e.(*chdbEngine); ok {
		// Wide parts keep each column in its own files, so that
		// system.parts_columns has its size; parts of a production-size run
		// are wide anyway.
		e.exec(tb, fmt.Sprintf("ALTER TABLE %s.%s MODIFY SETTING min_bytes_for_wide_part = 0", e.database(), table))
	}
	var cpu time.Duration
	for done := 0; done < spans; done += batch {
		cpu += e.insert(tb, table, build(gen.Traces(batch/2)))
	}
	e.exec(tb, fmt.Sprintf("OPTIMIZE TABLE %s.%s FINAL", e.database(), table))

	var r storageResult
	var bytes float64
	_, err := fmt.Sscan(e.query(tb, fmt.Sprintf("SELECT sum(bytes_on_disk), sum(rows) FROM system.parts WHERE database = '%s' AND table = '%s' AND active",
		e.database(), table)), &bytes, &r.spans)
	require.NoError(tb, err)
	require.Positive(tb, r.spans, "nothing stored in %s", table)
	var like []string
	for _, p := range tagColumns {
		like = append(like, fmt.Sprintf("startsWith(column, '%s')", p))
	}
	tags, err := strconv.ParseFloat(e.query(tb, fmt.Sprintf("SELECT sum(column_data_compressed_bytes) FROM system.parts_columns "+
		"WHERE database = '%s' AND table = '%s' AND active AND (%s)", e.database(), table, strings.Join(like, " OR "))), 64)
	require.NoError(tb, err)
	r.diskPerSpan = bytes / float64(r.spans)
	r.tagsPerSpan = tags / float64(r.spans)
	r.cpuPerSpan = float64(cpu.Nanoseconds()) / float64(r.spans)
	r.columns = e.query(tb, fmt.Sprintf("SELECT column, round(sum(column_data_compressed_bytes) / sum(rows), 2) AS b FROM system.parts_columns "+
		"WHERE database = '%s' AND table = '%s' AND active GROUP BY column ORDER BY b DESC LIMIT 12", e.database(), table))
	if layout == "weft" {
		r.check = e.query(tb, fmt.Sprintf("SELECT countIf(pod_id_0 != 0), countIf(pod_id_1 != 0) FROM %s.%s", e.database(), table))
	}
	return r
}

// startSmartEncoding is the real smart_encoding processor as the default
// pipeline configures it (peer ids left to the exporter), answering from the
// workload's cluster in VPC 1.
func startSmartEncoding(tb testing.TB, cluster *workload.Cluster) func(ptrace.Traces) ptrace.Traces {
	f := smartencodingprocessor.NewFactory()
	cfg := f.CreateDefaultConfig().(*smartencodingprocessor.Config)
	cfg.VPCID = 1
	cfg.PeerAttributes = false
	sink := new(consumertest.TracesSink)
	p, err := f.CreateTraces(context.Background(), processortest.NewNopSettings(f.Type()), cfg, sink)
	require.NoError(tb, err)
	host := lookupHost{Host: componenttest.NewNopHost(), id: cfg.Metadata, lookup: lookupExtension{Lookup: cluster.Lookup(1)}}
	require.NoError(tb, p.Start(context.Background(), host))
	tb.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return func(td ptrace.Traces) ptrace.Traces {
		sink.Reset()
		require.NoError(tb, p.ConsumeTraces(context.Background(), td))
		require.Len(tb, sink.AllTraces(), 1)
		return sink.AllTraces()[0]
	}
}

// lookupExtension stands in for the k8s_metadata extension in the host.
type lookupExtension struct {
	k8smetadataextension.Lookup
	component.StartFunc
	component.ShutdownFunc
}

type lookupHost struct {
	component.Host
	id     component.ID
	lookup component.Component
}

func (h lookupHost) GetExtensions() map[component.ID]component.Component {
	return map[component.ID]component.Component{h.id: h.lookup}
}

func migrateBench(tb testing.TB, e storageEngine) {
	r := &schemaRunner{db: e.schemaDB(), f: e.features(), o: schema.Options{Database: e.database()}, logger: zap.NewNop(), red: newRedactor()}
	require.NoError(tb, r.migrate(context.Background()))
}

// serverEngine is a ClickHouse 18.16 server of the test's own.
type serverEngine struct {
	ch   *harness.ClickHouse
	conn driver.Conn
	db   *chConn // conn with the session settings the server needs
	f    schema.Features
	seq  int
}

func newServerEngine(tb testing.TB) *serverEngine {
	ch := harness.StartClickHouse(tb)
	conn, err := openConn(context.Background(), testConfig(ch.Endpoint(), "bench"), 2)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = conn.Close() })
	f, err := serverFeatures(context.Background(), &chConn{conn: conn})
	require.NoError(tb, err)
	e := &serverEngine{ch: ch, conn: conn, db: &chConn{conn: conn, settings: f.Settings()}, f: f}
	e.exec(tb, "CREATE DATABASE IF NOT EXISTS bench")
	return e
}

func (e *serverEngine) features() schema.Features { return e.f }
func (e *serverEngine) database() string          { return "bench" }
func (e *serverEngine) schemaDB() db              { return e.db }

func (e *serverEngine) exec(tb testing.TB, sql string) {
	tb.Helper()
	require.NoError(tb, e.db.Exec(context.Background(), sql), sql)
}

func (e *serverEngine) query(tb testing.TB, sql string) string {
	tb.Helper()
	return strings.TrimSuffix(e.ch.MustQuery(tb, sql), "\n")
}

// insert sends one block with clickhouse-go's batch API, as the exporter
// does, and reads the server's CPU for that query from query_log.
func (e *serverEngine) insert(tb testing.TB, table string, cols []typedColumn) time.Duration {
	tb.Helper()
	e.seq++
	id := fmt.Sprintf("bench-%s-%d-%d", table, os.Getpid(), e.seq)
	ctx := clickhouse.Context(context.Background(), clickhouse.WithSettings(e.f.InsertSettings()), clickhouse.WithQueryID(id))
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = "`" + c.name + "`"
	}
	batch, err := e.conn.PrepareBatch(ctx, fmt.Sprintf("INSERT INTO bench.%s (%s)", table, strings.Join(names, ", ")))
	require.NoError(tb, err)
	for i, c := range cols {
		require.NoError(tb, batch.Column(i).Append(c.values), "column %s (%s)", c.name, c.typ)
	}
	require.NoError(tb, batch.Send())
	// The server logs QueryFinish just after it answers the client.
	var us int64
	harness.WaitFor(tb, 30*time.Second, "the INSERT in system.query_log", func() error {
		e.exec(tb, "SYSTEM FLUSH LOGS")
		out := e.query(tb, fmt.Sprintf(
			"SELECT ProfileEvents.Values[indexOf(ProfileEvents.Names, 'UserTimeMicroseconds')] + "+
				"ProfileEvents.Values[indexOf(ProfileEvents.Names, 'SystemTimeMicroseconds')] "+
				"FROM system.query_log WHERE type = 2 AND query_id = '%s'", id))
		var err error
		us, err = strconv.ParseInt(out, 10, 64)
		return err
	})
	return time.Duration(us) * time.Microsecond
}

// chdbEngine is ClickHouse 26.5 in this process.
type chdbEngine struct {
	conn *chdb.Conn
	db   string
	f    schema.Features
	dir  string
}

func newChDBEngine(tb testing.TB) *chdbEngine {
	conn, database := harness.ChDBDatabase(tb)
	f, err := serverFeatures(context.Background(), chdbDB{conn})
	require.NoError(tb, err)
	return &chdbEngine{conn: conn, db: database, f: f, dir: tb.TempDir()}
}

func (e *chdbEngine) features() schema.Features { return e.f }
func (e *chdbEngine) database() string          { return e.db }
func (e *chdbEngine) schemaDB() db              { return chdbDB{e.conn} }

func (e *chdbEngine) exec(tb testing.TB, sql string) {
	tb.Helper()
	require.NoError(tb, e.conn.Exec(sql), sql)
}

func (e *chdbEngine) query(tb testing.TB, sql string) string { return chdbQuery(tb, e.conn, sql) }

// insert encodes the block in clickhouse-go's Native format (as it would go
// over the wire) into a file and has the engine insert it; the engine runs
// in this process, so its CPU is this process's CPU during the INSERT.
func (e *chdbEngine) insert(tb testing.TB, table string, cols []typedColumn) time.Duration {
	tb.Helper()
	insert := nativeInsert(tb, e.dir, e.db, table, cols)
	cpu0 := processCPU()
	e.exec(tb, insert)
	return processCPU() - cpu0
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// --- the comparison layouts ---

// hasMap: the Map type is not experimental from 21.8 on.
func hasMap(f schema.Features) bool { return f.Version.AtLeast(21, 8) }

type layoutColumn struct {
	name, typ string
	codec     string // on servers with codecs
}

func createTable(database, table string, cols []layoutColumn, engine string, f schema.Features) string {
	defs := make([]string, len(cols))
	for i, c := range cols {
		defs[i] = "`" + c.name + "` " + c.typ
		if f.Codecs && c.codec != "" {
			defs[i] += " CODEC(" + c.codec + ")"
		}
	}
	return fmt.Sprintf("CREATE TABLE %s.%s (\n  %s\n) %s", database, table, strings.Join(defs, ",\n  "), engine)
}

// contribColumns is the contrib clickhouseexporter's otel_traces table
// (its default DDL): times as DateTime64(9), attributes as
// Map(LowCardinality(String), String), Events and Links as Nested. On 18.16,
// which has neither, the same data as UInt64 nanoseconds and key/value
// arrays.
func contribColumns(f schema.Features) []layoutColumn {
	mapType := "Map(LowCardinality(String), String)"
	time64 := "DateTime64(9)"
	if !f.DateTime64 {
		time64 = "UInt64"
	}
	cols := []layoutColumn{
		{"Timestamp", time64, "Delta, ZSTD(1)"},
		{"TraceId", "String", "ZSTD(1)"},
		{"SpanId", "String", "ZSTD(1)"},
		{"ParentSpanId", "String", "ZSTD(1)"},
		{"TraceState", "String", "ZSTD(1)"},
		{"SpanName", "LowCardinality(String)", "ZSTD(1)"},
		{"SpanKind", "LowCardinality(String)", "ZSTD(1)"},
		{"ServiceName", "LowCardinality(String)", "ZSTD(1)"},
	}
	attrs := func(name string) []layoutColumn {
		if hasMap(f) {
			return []layoutColumn{{name, mapType, "ZSTD(1)"}}
		}
		return []layoutColumn{{name + ".keys", "Array(LowCardinality(String))", "ZSTD(1)"}, {name + ".values", "Array(String)", "ZSTD(1)"}}
	}
	cols = append(cols, attrs("ResourceAttributes")...)
	cols = append(cols, layoutColumn{"ScopeName", "String", "ZSTD(1)"}, layoutColumn{"ScopeVersion", "String", "ZSTD(1)"})
	cols = append(cols, attrs("SpanAttributes")...)
	cols = append(cols,
		layoutColumn{"Duration", "UInt64", "ZSTD(1)"},
		layoutColumn{"StatusCode", "LowCardinality(String)", "ZSTD(1)"},
		layoutColumn{"StatusMessage", "String", "ZSTD(1)"},
		layoutColumn{"Events.Timestamp", "Array(" + time64 + ")", "ZSTD(1)"},
		layoutColumn{"Events.Name", "Array(LowCardinality(String))", "ZSTD(1)"},
		layoutColumn{"Links.TraceId", "Array(String)", "ZSTD(1)"},
		layoutColumn{"Links.SpanId", "Array(String)", "ZSTD(1)"},
		layoutColumn{"Links.TraceState", "Array(String)", "ZSTD(1)"},
	)
	return cols
}

func contribEngine(f schema.Features) string {
	if !f.DateTime64 {
		return "ENGINE = MergeTree PARTITION BY toDate(intDiv(Timestamp, 1000000000)) " +
			"ORDER BY (ServiceName, SpanName, toDateTime(intDiv(Timestamp, 1000000000)))"
	}
	return "ENGINE = MergeTree PARTITION BY toDate(Timestamp) ORDER BY (ServiceName, SpanName, toDateTime(Timestamp)) " +
		"SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"
}

// lowcardColumns is contrib's table with one LowCardinality(String) column
// per tag of the span's own side (own_*) and its peer's (peer_*) instead of
// the tags in the attribute maps.
func lowcardColumns(c *workload.Cluster, f schema.Features) []layoutColumn {
	var cols []layoutColumn
	for _, col := range contribColumns(f) {
		if !strings.HasPrefix(col.name, "ResourceAttributes") {
			cols = append(cols, col)
		}
	}
	own := append(c.FixedTags(0), c.CustomTags(0, workload.OwnCustomTags)...)
	peer := append(c.FixedTags(0), c.CustomTags(0, workload.PeerCustomTags)...)
	for _, kv := range own {
		cols = append(cols, layoutColumn{"own_" + kv.Key, "LowCardinality(String)", "ZSTD(1)"})
	}
	for _, kv := range peer {
		cols = append(cols, layoutColumn{"peer_" + kv.Key, "LowCardinality(String)", "ZSTD(1)"})
	}
	return cols
}

// layoutRows reads a batch into columns of the contrib layout, or with
// tagColumns of the lowcard layout, the way an exporter would: every
// attribute value as a string.
func layoutRows(td ptrace.Traces, cols []layoutColumn, f schema.Features, tagColumns bool) []typedColumn {
	values := map[string]any{}
	add := func(name string, v any) {
		switch v := v.(type) {
		case string:
			s, _ := values[name].([]string)
			values[name] = append(s, v)
		case uint64:
			s, _ := values[name].([]uint64)
			values[name] = append(s, v)
		case time.Time:
			s, _ := values[name].([]time.Time)
			values[name] = append(s, v)
		case map[string]string:
			s, _ := values[name].([]map[string]string)
			values[name] = append(s, v)
		case []string:
			s, _ := values[name].([][]string)
			values[name] = append(s, v)
		case []time.Time:
			s, _ := values[name].([][]time.Time)
			values[name] = append(s, v)
		case []uint64:
			s, _ := values[name].([][]uint64)
			values[name] = append(s, v)
		default:
			panic(fmt.Sprintf("layoutRows: %T", v))
		}
	}
	timeValue := func(t pcommon.Timestamp) any {
		if f.DateTime64 {
			return t.AsTime()
		}
		return uint64(t)
	}
	putAttrs := func(name string, m map[string]string) {
		if hasMap(f) {
			add(name, m)
			return
		}
		keys := make([]string, 0, len(m))
		vals := make([]string, 0, len(m))
		for k, v := range m {
			keys = append(keys, k)
			vals = append(vals, v)
		}
		add(name+".keys", keys)
		add(name+".values", vals)
	}
	var tagNames []string
	for _, c := range cols {
		if strings.HasPrefix(c.name, "own_") || strings.HasPrefix(c.name, "peer_") {
			tagNames = append(tagNames, c.name)
		}
	}
	for _, rs := range td.ResourceSpans().All() {
		res := map[string]string{}
		for k, v := range rs.Resource().Attributes().All() {
			res[k] = v.AsString()
		}
		service := res["service.name"]
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				span := map[string]string{}
				for k, v := range s.Attributes().All() {
					span[k] = v.AsString()
				}
				add("Timestamp", timeValue(s.StartTimestamp()))
				add("TraceId", s.TraceID().String())
				add("SpanId", s.SpanID().String())
				add("ParentSpanId", s.ParentSpanID().String())
				add("TraceState", s.TraceState().AsRaw())
				add("SpanName", s.Name())
				add("SpanKind", s.Kind().String())
				add("ServiceName", service)
				add("ScopeName", ss.Scope().Name())
				add("ScopeVersion", ss.Scope().Version())
				add("Duration", uint64(s.EndTimestamp()-s.StartTimestamp()))
				add("StatusCode", s.Status().Code().String())
				add("StatusMessage", s.Status().Message())
				if f.DateTime64 {
					add("Events.Timestamp", []time.Time{})
				} else {
					add("Events.Timestamp", []uint64{})
				}
				add("Events.Name", []string{})
				add("Links.TraceId", []string{})
				add("Links.SpanId", []string{})
				add("Links.TraceState", []string{})
				if !tagColumns {
					putAttrs("ResourceAttributes", res)
					putAttrs("SpanAttributes", span)
					continue
				}
				for _, name := range tagNames {
					if key, ok := strings.CutPrefix(name, "own_"); ok {
						add(name, res[key])
					} else {
						key := workload.PeerPrefix + strings.TrimPrefix(name, "peer_")
						add(name, span[key])
						delete(span, key)
					}
				}
				putAttrs("SpanAttributes", span)
			}
		}
	}
	out := make([]typedColumn, len(cols))
	for i, c := range cols {
		out[i] = typedColumn{name: c.name, typ: c.typ, values: values[c.name]}
	}
	return out
}
