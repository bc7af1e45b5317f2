package smartclickhouseexporter

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	chproto "github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
	"github.com/weftobs/weft/tests/chdb"
	"github.com/weftobs/weft/tests/harness"
)

// chdbDB gives the schema runner the in-process ClickHouse 26.5 engine.
// chDB takes no parameters, so they are bound here as literals.
type chdbDB struct{ conn *chdb.Conn }

func bind(query string, args []any) string {
	for _, a := range args {
		var lit string
		switch v := a.(type) {
		case string:
			lit = schema.QuoteString(v)
		default:
			lit = fmt.Sprint(v)
		}
		query = strings.Replace(query, "?", lit, 1)
	}
	return query
}

func (d chdbDB) Exec(_ context.Context, query string, args ...any) error {
	return d.conn.Exec(bind(query, args))
}

func (d chdbDB) QueryStrings(_ context.Context, query string, args ...any) ([][]string, error) {
	out, err := d.conn.Query(bind(query, args), "TSVRaw")
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows, nil
}

func chdbQuery(t testing.TB, conn *chdb.Conn, query string) string {
	t.Helper()
	out, err := conn.Query(query, "TSVRaw")
	require.NoError(t, err, query)
	return strings.TrimSuffix(string(out), "\n")
}

// metadataFixture creates the k8s_metadata store's ch_ tables (types as in
// extension/k8smetadataextension/internal/store/SCHEMA.md) with one
// resource of each kind. The store package is internal to the extension;
// the end-to-end test runs the real extension against MariaDB.
type metadataFixture struct {
	exec   func(string)
	driver string
}

func (m metadataFixture) create() {
	bigint, small, name, text, ts, key := "BIGINT NOT NULL", "SMALLINT NOT NULL", "VARCHAR(512) NOT NULL", "TEXT NOT NULL", "TIMESTAMP(6) NOT NULL", "VARCHAR(317) NOT NULL"
	q := func(s string) string { return s }
	if m.driver == "mysql" {
		text, ts, key = "MEDIUMTEXT NOT NULL", "DATETIME(6) NOT NULL", "VARBINARY(317) NOT NULL"
		q = func(s string) string { return "`" + s + "`" }
	}
	now := "(clock_timestamp() AT TIME ZONE 'UTC')"
	if m.driver == "mysql" {
		now = "UTC_TIMESTAMP(6)"
	}
	for _, d := range schema.Dictionaries {
		if d.KeyValue {
			m.exec(fmt.Sprintf("CREATE TABLE %s (id %s, %s %s, value %s, updated_at %s, PRIMARY KEY (id, %s))",
				d.Table, bigint, q("key"), key, text, ts, q("key")))
			continue
		}
		cols := []string{"id " + bigint + " PRIMARY KEY"}
		for _, a := range d.Attrs {
			typ := bigint
			switch {
			case a.Name == "name":
				typ = name
			case a.Type == "String":
				typ = "VARCHAR(64) NOT NULL"
			case a.Type == "UInt8":
				typ = small
			}
			cols = append(cols, a.Name+" "+typ)
		}
		m.exec(fmt.Sprintf("CREATE TABLE %s (%s, updated_at %s)", d.Table, strings.Join(cols, ", "), ts))
	}
	for _, s := range []string{
		"INSERT INTO ch_cluster (id, name, deleted, updated_at) VALUES (1, 'prod', 0, " + now + ")",
		"INSERT INTO ch_node (id, name, cluster_id, deleted, updated_at) VALUES (2, 'node-a', 1, 0, " + now + ")",
		"INSERT INTO ch_namespace (id, name, cluster_id, deleted, updated_at) VALUES (3, 'shop', 1, 0, " + now + ")",
		"INSERT INTO ch_workload (id, name, cluster_id, namespace_id, workload_kind, deleted, updated_at) VALUES (4, 'cart', 1, 3, 1, 0, " + now + ")",
		"INSERT INTO ch_pod (id, name, cluster_id, namespace_id, node_id, workload_id, workload_kind, service_id, deleted, updated_at) VALUES (5, 'cart-7d9f', 1, 3, 2, 4, 1, 6, 0, " + now + ")",
		"INSERT INTO ch_pod (id, name, cluster_id, namespace_id, node_id, workload_id, workload_kind, service_id, deleted, updated_at) VALUES (8, 'db-0', 1, 3, 2, 0, 0, 0, 0, " + now + ")",
		"INSERT INTO ch_service (id, name, cluster_id, namespace_id, service_type, deleted, updated_at) VALUES (6, 'cart-svc', 1, 3, 'ClusterIP', 0, " + now + ")",
		"INSERT INTO ch_pod_label (id, " + q("key") + ", value, updated_at) VALUES (5, 'app', 'cart', " + now + ")",
	} {
		m.exec(s)
	}
}

func postgresFixture(t *testing.T) (*harness.Database, metadataFixture) {
	db := harness.Postgres(t)
	conn, err := pgx.Connect(t.Context(), db.DSN)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return db, metadataFixture{driver: "postgres", exec: func(s string) {
		_, err := conn.Exec(t.Context(), s)
		require.NoError(t, err, s)
	}}
}

func mariadbFixture(t *testing.T) (*harness.Database, metadataFixture) {
	db := harness.MariaDB(t)
	conn, err := sql.Open("mysql", db.DSN)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return db, metadataFixture{driver: "mysql", exec: func(s string) {
		_, err := conn.Exec(s)
		require.NoError(t, err, s)
	}}
}

// typedColumn is one column of an INSERT: its name, its ClickHouse type and
// its values, a slice clickhouse-go appends to a column of that type.
type typedColumn struct {
	name, typ string
	values    any
}

// tableColumns are values, which hold every column of t by name, as t's
// columns in order, typed for a server with f.
func tableColumns(t testing.TB, table schema.Table, f schema.Features, values map[string]any) []typedColumn {
	t.Helper()
	cols := make([]typedColumn, len(table.Columns))
	for i, c := range table.Columns {
		v, ok := values[c.Name]
		require.True(t, ok, "no values for %s", c.Name)
		cols[i] = typedColumn{name: c.Name, typ: c.Type(f), values: v}
	}
	return cols
}

// nativeInsert encodes cols with clickhouse-go's column encoders into a
// Native-format file in dir and returns the INSERT into database.table
// that reads it: chDB has no network listener, so the real engine parses
// what clickhouse-go encoded from a file.
func nativeInsert(t testing.TB, dir, database, table string, cols []typedColumn) string {
	t.Helper()
	block := chproto.NewBlock()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = "`" + c.name + "`"
		require.NoError(t, block.AddColumn(c.name, column.Type(c.typ)), c.name)
		_, err := block.Columns[i].Append(c.values)
		require.NoError(t, err, "column %s (%s)", c.name, c.typ)
	}
	var buf proto.Buffer
	require.NoError(t, block.Encode(&buf, 0))
	path := filepath.Join(dir, table+".native")
	require.NoError(t, os.WriteFile(path, buf.Buf, 0o644))
	return fmt.Sprintf("INSERT INTO %s.%s (%s) SELECT * FROM file(%s, 'Native')",
		database, table, strings.Join(names, ", "), schema.QuoteString(path))
}

// insertNative writes rows the way the exporter sends them to a modern
// server — clickhouse-go's column encoders fed by the exporter's column
// values — into chDB.
func insertNative(t testing.TB, conn *chdb.Conn, database string, table schema.Table, f schema.Features, values map[string]any) {
	t.Helper()
	require.NoError(t, conn.Exec(nativeInsert(t, t.TempDir(), database, table.Name, tableColumns(t, table, f, values))))
}

// TestModernSchemaInChDB applies the full modern schema to the real
// ClickHouse 26.5 engine with dictionaries reading PostgreSQL and MySQL
// (MariaDB): codecs, TTL, skip indexes, CREATE DICTIONARY, views. It writes
// a span, a data point and a log record encoded by clickhouse-go from the
// exporter's own rows, reads the names back through the views, renames the
// pod in the metadata database and sees the view follow.
func TestModernSchemaInChDB(t *testing.T) {
	for _, driver := range []string{"postgres", "mysql"} {
		t.Run(driver, func(t *testing.T) {
			conn, database := harness.ChDBDatabase(t)
			var (
				meta    *harness.Database
				fixture metadataFixture
			)
			if driver == "postgres" {
				meta, fixture = postgresFixture(t)
			} else {
				meta, fixture = mariadbFixture(t)
			}
			fixture.create()

			d := chdbDB{conn}
			f, err := serverFeatures(t.Context(), d)
			require.NoError(t, err)
			require.Equal(t, 26, f.Version.Major, "chDB is the 26.x engine")
			o := schema.Options{
				// The fixtures are from 2026-01-02: a TTL shorter than their age
				// would drop them at insert.
				Database: database, TTL: 10 * 365 * 24 * time.Hour, Lifetime: 30 * time.Second,
				Source: schema.Source{Driver: driver, Host: meta.Host, Port: meta.Port, User: meta.User, Database: meta.Name},
			}
			r := &schemaRunner{db: d, f: f, o: o, logger: zaptest.NewLogger(t), red: newRedactor()}
			require.NoError(t, r.migrate(t.Context()))
			require.NoError(t, r.sync(t.Context()))

			// The modern DDL is in place.
			types := chdbQuery(t, conn, fmt.Sprintf("SELECT name, type, compression_codec FROM system.columns WHERE database = '%s' AND table = 'spans' AND name IN ('start_time', 'ip4_0', 'ip6_1', 'name', 'pod_id_1', 'events.time') ORDER BY name", database))
			assert.Equal(t, strings.Join([]string{
				"events.time\tArray(DateTime64(9))\tCODEC(ZSTD(1))",
				"ip4_0\tIPv4\tCODEC(ZSTD(1))",
				"ip6_1\tIPv6\tCODEC(ZSTD(1))",
				"name\tLowCardinality(String)\tCODEC(ZSTD(1))",
				"pod_id_1\tUInt32\tCODEC(ZSTD(1))",
				"start_time\tDateTime64(9)\tCODEC(Delta(8), ZSTD(1))",
			}, "\n"), types)
			create := chdbQuery(t, conn, fmt.Sprintf("SELECT create_table_query FROM system.tables WHERE database = '%s' AND name = 'spans'", database))
			assert.Contains(t, create, "TTL time + toIntervalSecond(315360000)")
			assert.Contains(t, create, "ttl_only_drop_parts = 1")
			assert.Equal(t, "idx_attr_names\tbloom_filter\nidx_trace_id\tbloom_filter",
				chdbQuery(t, conn, fmt.Sprintf("SELECT name, type FROM system.data_skipping_indices WHERE database = '%s' AND table = 'spans' ORDER BY name", database)))
			assert.Equal(t, fmt.Sprint(len(schema.Dictionaries)),
				chdbQuery(t, conn, fmt.Sprintf("SELECT count() FROM system.dictionaries WHERE database = '%s'", database)))
			assert.Equal(t, "2", chdbQuery(t, conn, fmt.Sprintf("SELECT max(version) FROM %s.schema_version", database)))

			// Rows as the exporter builds them, encoded by clickhouse-go.
			var spans spanRows
			spans.addTraces(testTraces(), skipped{})
			insertNative(t, conn, database, schema.Spans, f, spans.columns(f))
			var metrics metricRows
			metrics.addMetrics(testMetrics(), skipped{})
			insertNative(t, conn, database, schema.Metrics, f, metrics.columns(f))
			var logs logRows
			logs.addLogs(testLogs(), skipped{})
			insertNative(t, conn, database, schema.Logs, f, logs.columns(f))

			view := func(query string) string { return chdbQuery(t, conn, fmt.Sprintf(query, database)) }
			assert.Equal(t, "GET /cart\tprod\tnode-a\tshop\tcart\tDeployment\tcart-7d9f\tcart-svc\tcart-7d9f\tcart-svc\t10.1.2.3\tdb-0\t10.1.9.9",
				view("SELECT name, cluster_1, node_1, namespace_1, workload_1, workload_kind_name_1, pod_1, k8s_service_1, auto_instance_1, auto_service_1, ip_1, pod_0, ip_0 FROM %s.spans_view WHERE pod_1 = 'cart-7d9f'"))
			assert.Equal(t, "2026-01-02 03:04:05.123456789\t2026-01-02 03:04:05.173456789\t50000000\tserver\terror",
				view("SELECT start_time, end_time, duration, kind, status_code FROM %s.spans WHERE name = 'GET /cart'"))
			assert.Equal(t, "cart", view("SELECT dictGetString('%[1]s.pod_label_map', 'value', tuple(toUInt64(pod_id_1), 'app')) FROM %[1]s.spans WHERE name = 'GET /cart'"))
			assert.Equal(t, "checkout.latency\thistogram\tcart-7d9f\tshop\t[5,10]\t[1,1,1]",
				view("SELECT name, type, pod, namespace, bucket_bounds, bucket_counts FROM %s.metrics_view WHERE type = 'histogram'"))
			assert.Equal(t, "payment declined\tcart-7d9f\t2001:db8::1",
				view("SELECT body, pod, ip FROM %s.logs_view"))

			// A rename in the metadata database reaches the views once the
			// dictionary reloads.
			stamp := "(clock_timestamp() AT TIME ZONE 'UTC')"
			if driver == "mysql" {
				stamp = "UTC_TIMESTAMP(6)"
			}
			fixture.exec("UPDATE ch_pod SET name = 'cart-v2', updated_at = " + stamp + " WHERE id = 5")
			require.NoError(t, conn.Exec(fmt.Sprintf("SYSTEM RELOAD DICTIONARY %s.pod_map", database)))
			assert.Equal(t, "GET /cart\tcart-v2", view("SELECT name, pod_1 FROM %s.spans_view WHERE pod_1 = 'cart-v2'"))
			assert.Equal(t, "0", view("SELECT count() FROM %s.spans_view WHERE pod_1 = 'cart-7d9f'"))
			assert.Equal(t, "cart-v2", view("SELECT pod FROM %s.logs_view"))

			// Sync is idempotent: nothing changed, nothing re-created.
			before := view("SELECT count() FROM %s.schema_objects")
			require.NoError(t, r.sync(t.Context()))
			assert.Equal(t, before, view("SELECT count() FROM %s.schema_objects"))

			// A dictionary dropped by hand comes back; a changed lifetime
			// re-creates every dictionary.
			require.NoError(t, conn.Exec(fmt.Sprintf("DROP DICTIONARY %s.node_map", database)))
			r.o.Lifetime = 90 * time.Second
			require.NoError(t, r.sync(t.Context()))
			assert.Contains(t, view("SELECT create_table_query FROM system.tables WHERE database = '%s' AND name = 'node_map'"), "LIFETIME(MIN 45 MAX 90)")
			assert.Contains(t, view("SELECT create_table_query FROM system.tables WHERE database = '%s' AND name = 'pod_map'"), "LIFETIME(MIN 45 MAX 90)")
			assert.Equal(t, "cart-v2", view("SELECT pod FROM %s.logs_view"))

			// Removing the source drops the dictionaries and views.
			r.o.Source = schema.Source{}
			require.NoError(t, r.sync(t.Context()))
			assert.Equal(t, "0", view("SELECT count() FROM system.dictionaries WHERE database = '%s'"))
			assert.Equal(t, "logs\tmetrics\tschema_objects\tschema_version\tspans\ttag_names\ttag_values",
				strings.ReplaceAll(view("SELECT name FROM system.tables WHERE database = '%s' ORDER BY name"), "\n", "\t"))
		})
	}
}
