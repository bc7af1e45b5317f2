package schema

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/internal/vocab"
)

var (
	v1816 = FeaturesOf(Version{18, 16})
	v1917 = FeaturesOf(Version{19, 17})
	v238  = FeaturesOf(Version{23, 8})
)

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{"18.16.1": {18, 16}, "26.5.1.1": {26, 5}, "23.8": {23, 8}, " 24.3.2.23\n": {24, 3}} {
		v, err := ParseVersion(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, v, in)
	}
	for _, in := range []string{"", "23", "x.y", "-1.2"} {
		_, err := ParseVersion(in)
		assert.Error(t, err, in)
	}
}

func TestFeaturesByVersion(t *testing.T) {
	assert.Equal(t, Features{Version: Version{18, 16}, LowCardinalitySetting: true}, v1816)
	assert.True(t, v1917.CreateDictionary)
	assert.True(t, v1917.TTL)
	assert.False(t, v1917.Codecs)
	assert.False(t, v1917.PostgreSQLSource)
	assert.Equal(t, Features{Version: Version{23, 8}, TTL: true, Codecs: true, SkipIndexes: true, DateTime64: true, IPTypes: true,
		AddColumnIfNotExists: true, CreateDictionary: true, PostgreSQLSource: true, UpdateLag: true}, v238)
	assert.Equal(t, map[string]any{"allow_experimental_low_cardinality_type": 1}, v1816.Settings())
	assert.Nil(t, v238.Settings())
	assert.Equal(t, v1816.Settings(), v1816.InsertSettings())
	assert.Equal(t, map[string]any{"max_partitions_per_insert_block": 0}, v238.InsertSettings())
}

func TestVocabularyHasColumns(t *testing.T) {
	// Every id the smart_encoding processor writes has its column, on both
	// sides of a span and on metrics and logs.
	for _, attr := range vocab.ResourceIDs {
		name := strings.TrimPrefix(attr, "weft.")
		for _, col := range []string{name + "_0", name + "_1"} {
			_, ok := Spans.Column(col)
			assert.True(t, ok, "spans has no %s for %s", col, attr)
		}
		for _, tb := range []Table{Metrics, Logs} {
			_, ok := tb.Column(name)
			assert.True(t, ok, "%s has no %s for %s", tb.Name, name, attr)
		}
	}
}

func TestColumnTypesPerVersion(t *testing.T) {
	col := func(tb Table, name string) Column {
		c, ok := tb.Column(name)
		require.True(t, ok, name)
		return c
	}
	tests := []struct {
		col          Column
		legacy, want string
	}{
		{col(Spans, "start_time"), "`start_time` UInt64", "`start_time` DateTime64(9) CODEC(Delta, ZSTD(1))"},
		{col(Spans, "time"), "`time` DateTime", "`time` DateTime CODEC(Delta, ZSTD(1))"},
		{col(Spans, "ip4_0"), "`ip4_0` UInt32", "`ip4_0` IPv4 CODEC(ZSTD(1))"},
		{col(Spans, "ip6_1"), "`ip6_1` FixedString(16)", "`ip6_1` IPv6 CODEC(ZSTD(1))"},
		{col(Spans, "events.time"), "`events.time` Array(UInt64)", "`events.time` Array(DateTime64(9)) CODEC(ZSTD(1))"},
		{col(Spans, "name"), "`name` LowCardinality(String)", "`name` LowCardinality(String) CODEC(ZSTD(1))"},
		{col(Spans, "cluster_id_0"), "`cluster_id_0` UInt16", "`cluster_id_0` UInt16 CODEC(ZSTD(1))"},
		{col(Spans, "pod_id_1"), "`pod_id_1` UInt32", "`pod_id_1` UInt32 CODEC(ZSTD(1))"},
		{col(Spans, "workload_kind_0"), "`workload_kind_0` UInt8", "`workload_kind_0` UInt8 CODEC(ZSTD(1))"},
		{col(Metrics, "namespace_id"), "`namespace_id` UInt16", "`namespace_id` UInt16 CODEC(ZSTD(1))"},
		{col(Logs, "severity_number"), "`severity_number` UInt8", "`severity_number` UInt8 CODEC(ZSTD(1))"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.legacy, tt.col.Definition(v1816))
		assert.Equal(t, tt.want, tt.col.Definition(v238))
	}
}

func TestCreateTableLegacy(t *testing.T) {
	o := Options{Database: "weft", TTL: 30 * 24 * time.Hour}
	stmts := createTable(Spans, 1, v1816, o)
	require.Len(t, stmts, 1)
	s := stmts[0]
	assert.True(t, strings.HasPrefix(s, "CREATE TABLE IF NOT EXISTS weft.spans\n(\n    `time` DateTime,\n"), s)
	assert.True(t, strings.HasSuffix(s, ")\nENGINE = MergeTree\nPARTITION BY toDate(time)\nORDER BY (service_name, name, time)"), s)
	for _, absent := range []string{"CODEC", "TTL", "INDEX", "DateTime64", "IPv4", "SETTINGS"} {
		assert.NotContains(t, s, absent, "18.16 has no %s", absent)
	}
}

func TestCreateTableModern(t *testing.T) {
	o := Options{Database: "weft", TTL: 7 * 24 * time.Hour}
	s := createTable(Spans, 1, v238, o)[0]
	assert.Contains(t, s, "    INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1,\n    INDEX idx_attr_names attr_names TYPE bloom_filter(0.01) GRANULARITY 1\n)")
	assert.True(t, strings.HasSuffix(s, "ORDER BY (service_name, name, time)\nTTL time + INTERVAL 604800 SECOND\nSETTINGS ttl_only_drop_parts = 1"), s)
	// Without a TTL, none.
	s = createTable(Logs, 1, v238, Options{Database: "weft"})[0]
	assert.NotContains(t, s, "TTL")
	assert.Contains(t, s, "INDEX idx_trace_id trace_id TYPE bloom_filter(0.001) GRANULARITY 1\n)")
	// TTL came in 19.6, before codecs.
	s = createTable(Logs, 1, v1917, Options{Database: "weft", TTL: time.Hour})[0]
	assert.True(t, strings.HasSuffix(s, "\nTTL time + INTERVAL 3600 SECOND"), s)
}

func TestClusterMode(t *testing.T) {
	o := Options{Database: "obs", Cluster: "main", TTL: time.Hour}
	stmts := createTable(Spans, 1, v238, o)
	require.Len(t, stmts, 2)
	assert.True(t, strings.HasPrefix(stmts[0], "CREATE TABLE IF NOT EXISTS obs.spans_local ON CLUSTER main\n("), stmts[0])
	assert.Contains(t, stmts[0], "\nENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/obs/spans_local', '{replica}')\n")
	assert.Contains(t, stmts[0], "\nTTL time + INTERVAL 3600 SECOND")
	assert.Equal(t, "CREATE TABLE IF NOT EXISTS obs.spans ON CLUSTER main AS obs.spans_local\nENGINE = Distributed(main, obs, spans_local, cityHash64(trace_id))", stmts[1])

	stmts = createTable(TagValues, 2, v1816, o)
	assert.Contains(t, stmts[0], "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/obs/tag_values_local', '{replica}', time)\n")
	assert.Equal(t, "CREATE TABLE IF NOT EXISTS obs.tag_values ON CLUSTER main AS obs.tag_values_local\nENGINE = Distributed(main, obs, tag_values_local, cityHash64(table_name, scope, name, value))", stmts[1])

	for _, s := range Bootstrap(v238, o) {
		assert.Contains(t, s, " ON CLUSTER main")
	}
	ttl := TTLObject(v238, o)
	require.NotNil(t, ttl)
	assert.Contains(t, ttl.Create, "ALTER TABLE obs.metrics_local ON CLUSTER main MODIFY TTL time + INTERVAL 3600 SECOND")
	assert.Equal(t, "DROP DICTIONARY IF EXISTS obs.pod_map ON CLUSTER main", DropStatement(o, "dictionary:pod_map"))
	views := ViewObjects(v238, Options{Database: "obs", Cluster: "main", Source: Source{Driver: "mysql"}})
	require.Len(t, views, 3)
	assert.True(t, strings.HasPrefix(views[0].Create[0], "CREATE VIEW IF NOT EXISTS obs.spans_view ON CLUSTER main AS\n"), views[0].Create[0])
	assert.True(t, strings.HasSuffix(views[0].Create[0], "\nFROM obs.spans"), "views read the Distributed table")
	dicts, err := DictionaryObjects(v238, Options{Database: "obs", Cluster: "main", Source: Source{Driver: "mysql"}, Lifetime: time.Minute})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(dicts[0].Create[0], "CREATE DICTIONARY IF NOT EXISTS obs.cluster_map ON CLUSTER main\n"))
}

func TestMigrations(t *testing.T) {
	ms := Migrations(v238, Options{Database: "weft"})
	require.Len(t, ms, Latest())
	assert.Equal(t, 1, ms[0].Version)
	assert.Len(t, ms[0].Steps, 3, "spans, metrics, logs")
	assert.Len(t, ms[1].Steps, 2, "tag_names, tag_values")

	// A column added later becomes an ADD COLUMN in its version; on old
	// servers guarded by a check of system.columns instead of IF NOT EXISTS.
	tables := []Table{{Name: "t", Since: 1, Engine: "MergeTree", OrderBy: "time", Columns: []Column{
		{Name: "time", Kind: DateTime}, {Name: "x", Kind: UInt32, Since: 2}}}}
	ms = MigrationsOf(tables, 2, v1816, Options{Database: "weft"})
	require.Len(t, ms, 2)
	assert.NotContains(t, ms[0].Steps[0].SQL, "`x`", "version 1 creates the table as it was")
	assert.Equal(t, []Step{{SQL: "ALTER TABLE weft.t ADD COLUMN `x` UInt32", UnlessColumn: &[2]string{"t", "x"}}}, ms[1].Steps)
	ms = MigrationsOf(tables, 2, v238, Options{Database: "weft", Cluster: "c"})
	assert.Equal(t, "ALTER TABLE weft.t_local ON CLUSTER c ADD COLUMN IF NOT EXISTS `x` UInt32 CODEC(ZSTD(1))", ms[1].Steps[0].SQL)
	assert.Equal(t, "ALTER TABLE weft.t ON CLUSTER c ADD COLUMN IF NOT EXISTS `x` UInt32 CODEC(ZSTD(1))", ms[1].Steps[1].SQL)
}

func TestDictionaryDDL(t *testing.T) {
	o := Options{Database: "weft", Lifetime: 60 * time.Second,
		Source: Source{Driver: "postgres", Host: "meta-db", Port: 5432, User: "ch", Password: `it's\secret`, Database: "weft"}}
	objs, err := DictionaryObjects(v238, o)
	require.NoError(t, err)
	require.Len(t, objs, len(Dictionaries))
	var pod, labels Object
	for _, obj := range objs {
		switch obj.Name {
		case "dictionary:pod_map":
			pod = obj
		case "dictionary:pod_label_map":
			labels = obj
		}
	}
	assert.Equal(t, "CREATE DICTIONARY IF NOT EXISTS weft.pod_map\n(\n    `id` UInt64,\n    `name` String,\n    `cluster_id` UInt64,\n"+
		"    `namespace_id` UInt64,\n    `node_id` UInt64,\n    `workload_id` UInt64,\n    `workload_kind` UInt8,\n    `service_id` UInt64,\n"+
		"    `deleted` UInt8\n)\nPRIMARY KEY id\n"+
		`SOURCE(POSTGRESQL(HOST 'meta-db' PORT 5432 USER 'ch' PASSWORD 'it\'s\\secret' DB 'weft' TABLE 'ch_pod'`+"\n"+
		"    INVALIDATE_QUERY 'SELECT max(updated_at) FROM ch_pod' UPDATE_FIELD 'updated_at' UPDATE_LAG 10))\n"+
		"LIFETIME(MIN 30 MAX 60)\nLAYOUT(HASHED())", pod.Create[0])
	assert.Contains(t, labels.Create[0], "PRIMARY KEY id, key\nSOURCE(POSTGRESQL(")
	assert.Contains(t, labels.Create[0], "LAYOUT(COMPLEX_KEY_HASHED())")
	assert.Equal(t, []string{"DROP DICTIONARY IF EXISTS weft.pod_map"}, pod.Drop)

	// PostgreSQL before 21.4 needs ODBC: refused with a way out.
	_, err = DictionaryObjects(v1917, o)
	require.ErrorContains(t, err, "ODBC")
	assert.NotContains(t, err.Error(), "secret")
	_, err = XMLFiles(v1816, o)
	require.ErrorContains(t, err, "MySQL")

	// Servers before 19.17 get XML files instead.
	objs, err = DictionaryObjects(v1816, Options{Database: "weft", Source: Source{Driver: "mysql"}})
	require.NoError(t, err)
	assert.Nil(t, objs)
}

func TestXMLDictionary(t *testing.T) {
	o := Options{Database: "weft", Lifetime: 10 * time.Second,
		Source: Source{Driver: "mysql", Host: "db", Port: 3306, User: "ch", Password: "a<b&c", Database: "meta"}}
	files, err := XMLFiles(v1816, o)
	require.NoError(t, err)
	require.Len(t, files, len(Dictionaries))
	pod := string(files["weft_pod_map_dictionary.xml"])
	assert.Contains(t, pod, XMLMarker)
	for _, want := range []string{
		"<name>weft_pod_map</name>", "<password>a&lt;b&amp;c</password>", "<host>db</host>", "<db>meta</db>", "<table>ch_pod</table>",
		"<invalidate_query>SELECT max(updated_at) FROM ch_pod</invalidate_query>", "<update_field>updated_at</update_field>",
		"<min>5</min>", "<max>10</max>", "<hashed/>", "<id>\n        <name>id</name>\n      </id>",
		"<name>workload_kind</name>\n        <type>UInt8</type>\n        <null_value>0</null_value>",
	} {
		assert.Contains(t, pod, want)
	}
	labels := string(files["weft_pod_label_map_dictionary.xml"])
	assert.Contains(t, labels, "<complex_key_hashed/>")
	assert.Contains(t, labels, "<key>\n        <attribute>\n          <name>id</name>\n          <type>UInt64</type>")
	assert.Equal(t, "weft_pod_map", DictRef(v1816, o, "pod_map"))
	assert.Equal(t, "weft.pod_map", DictRef(v238, o, "pod_map"))
	files, err = XMLFiles(v238, o)
	require.NoError(t, err)
	assert.Nil(t, files, "modern servers use CREATE DICTIONARY")
}

func TestViews(t *testing.T) {
	o := Options{Database: "weft", Source: Source{Driver: "mysql"}}
	views := ViewObjects(v1816, o)
	require.Len(t, views, 3)
	spans := views[0].Create[0]
	assert.Contains(t, spans, "dictGetString('weft_pod_map', 'name', toUInt64(pod_id_1)) AS pod_1")
	assert.Contains(t, spans, "multiIf(ip4_0 != 0, IPv4NumToString(ip4_0), IPv6NumToString(ip6_0) != '::', IPv6NumToString(ip6_0), '') AS ip_0")
	assert.Contains(t, spans, "transform(workload_kind_1, [1, 2, 3, 4, 5, 6], ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob'], '') AS workload_kind_name_1")
	assert.Contains(t, ViewObjects(v238, o)[2].Create[0], "multiIf(toUInt32(ip4) != 0, toString(ip4), toString(ip6) != '::', toString(ip6), '') AS ip\n")
	assert.Equal(t, "DROP TABLE IF EXISTS weft.spans_view", views[0].Drop[0])
	// Every table column is in its view, then the names.
	for _, c := range Spans.Columns {
		assert.Contains(t, spans, "    "+quoteIdent(c.Name)+",\n")
	}
	assert.Equal(t, []string{"cluster", "node", "namespace", "workload", "workload_kind_name", "pod", "k8s_service", "host", "auto_instance", "auto_service", "ip"},
		DecodedColumns(Logs))
	assert.Nil(t, ViewObjects(v238, Options{Database: "weft"}), "no dictionaries, no views")
}

func TestScriptAndValidation(t *testing.T) {
	_, err := Script(v238, Options{Database: "weft; DROP TABLE x"})
	require.ErrorContains(t, err, "plain identifier")
	_, err = Script(v238, Options{Database: "weft", Cluster: "a b"})
	require.ErrorContains(t, err, "plain identifier")

	stmts, err := Script(v238, Options{Database: "weft", Source: Source{Driver: "mysql", Host: "h", Port: 1}})
	require.NoError(t, err)
	joined := strings.Join(stmts, ";\n")
	assert.Contains(t, joined, "INSERT INTO weft.schema_version (version, name, applied_at) VALUES (2, 'tag name and value candidate tables', now())")
	assert.Contains(t, joined, "CREATE DICTIONARY IF NOT EXISTS weft.service_label_map")
	assert.Contains(t, joined, "CREATE VIEW IF NOT EXISTS weft.logs_view")
	assert.Less(t, strings.Index(joined, "CREATE DICTIONARY"), strings.Index(joined, "CREATE VIEW"), "views after the dictionaries they read")
}

func TestQuoteString(t *testing.T) {
	assert.Equal(t, `'plain'`, QuoteString("plain"))
	assert.Equal(t, `'it\'s \\ a\nb\0'`, QuoteString("it's \\ a\nb\x00"))
}
