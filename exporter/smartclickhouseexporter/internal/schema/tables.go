package schema

import "strings"

// Kind is a column's logical type. Its ClickHouse type depends on the
// server's Features: one schema, rendered per version.
type Kind int

const (
	DateTime         Kind = iota // DateTime: seconds, the partitioning and sorting time
	Time64                       // DateTime64(9); UInt64 unix nanoseconds before 20.1
	UInt8                        // UInt8
	UInt16                       // UInt16
	UInt32                       // UInt32
	UInt64                       // UInt64
	Int32                        // Int32
	Float64                      // Float64
	String                       // String
	LowString                    // LowCardinality(String)
	IPv4                         // IPv4; UInt32 (same number) before 20.1
	IPv6                         // IPv6; FixedString(16) (same bytes) before 20.1
	Enum8                        // Enum8(Column.Enum)
	ArrayString                  // Array(String)
	ArrayLowString               // Array(LowCardinality(String))
	ArrayArrayString             // Array(Array(String))
	ArrayTime64                  // Array of Time64
	ArrayFloat64                 // Array(Float64)
	ArrayUInt64                  // Array(UInt64)
)

// Column is one column of a table.
type Column struct {
	Name string
	Kind Kind
	// Enum lists an Enum8's values, e.g. 'unset' = 0, 'ok' = 1.
	Enum string
	// Since is the migration that adds the column; 0 means the table's.
	Since int
}

// Type is the column's ClickHouse type on a server with features f.
func (c Column) Type(f Features) string {
	switch c.Kind {
	case DateTime:
		return "DateTime"
	case Time64:
		if f.DateTime64 {
			return "DateTime64(9)"
		}
		return "UInt64"
	case UInt8:
		return "UInt8"
	case UInt16:
		return "UInt16"
	case UInt32:
		return "UInt32"
	case UInt64:
		return "UInt64"
	case Int32:
		return "Int32"
	case Float64:
		return "Float64"
	case String:
		return "String"
	case LowString:
		return "LowCardinality(String)"
	case IPv4:
		if f.IPTypes {
			return "IPv4"
		}
		return "UInt32"
	case IPv6:
		if f.IPTypes {
			return "IPv6"
		}
		return "FixedString(16)"
	case Enum8:
		return "Enum8(" + c.Enum + ")"
	case ArrayString:
		return "Array(String)"
	case ArrayLowString:
		return "Array(LowCardinality(String))"
	case ArrayArrayString:
		return "Array(Array(String))"
	case ArrayTime64:
		return "Array(" + Column{Kind: Time64}.Type(f) + ")"
	case ArrayFloat64:
		return "Array(Float64)"
	case ArrayUInt64:
		return "Array(UInt64)"
	}
	panic("schema: unknown column kind")
}

// codec is the column's compression codec on servers with codecs: Delta
// before ZSTD for times, which grow slowly within a part; ZSTD for the rest,
// which compresses ids, repeated strings and arrays far better than the
// default LZ4.
func (c Column) codec() string {
	switch c.Kind {
	case DateTime, Time64:
		return "CODEC(Delta, ZSTD(1))"
	}
	return "CODEC(ZSTD(1))"
}

// Definition is the column as it appears in CREATE TABLE and ADD COLUMN.
func (c Column) Definition(f Features) string {
	d := quoteIdent(c.Name) + " " + c.Type(f)
	if f.Codecs {
		d += " " + c.codec()
	}
	return d
}

// Index is a data skipping index, created on servers with SkipIndexes.
type Index struct {
	Name, Expr, Type string
	Granularity      int
}

// Table is one of Weft's tables.
type Table struct {
	Name    string
	Since   int // migration that creates it
	Columns []Column
	// Engine is the MergeTree family member and its arguments, without
	// "Replicated": MergeTree, or ReplacingMergeTree(time).
	Engine      string
	PartitionBy string
	OrderBy     string
	Indexes     []Index
	// ShardingKey spreads rows over shards in cluster mode.
	ShardingKey string
}

// Column returns the named column.
func (t Table) Column(name string) (Column, bool) {
	for _, c := range t.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}

// ColumnsAt are the table's columns at schema version v.
func (t Table) ColumnsAt(v int) []Column {
	var cols []Column
	for _, c := range t.Columns {
		if c.since(t) <= v {
			cols = append(cols, c)
		}
	}
	return cols
}

func (c Column) since(t Table) int {
	if c.Since == 0 {
		return t.Since
	}
	return c.Since
}

// InsertColumns is the explicit column list of an INSERT into the table,
// as clickhouse-go needs it on every server (18.16 refuses a bare INSERT).
func (t Table) InsertColumns() string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = quoteIdent(c.Name)
	}
	return strings.Join(names, ", ")
}

// Enum values, in the order of pdata's numbers.
const (
	SpanKindEnum    = "'unspecified' = 0, 'internal' = 1, 'server' = 2, 'client' = 3, 'producer' = 4, 'consumer' = 5"
	StatusCodeEnum  = "'unset' = 0, 'ok' = 1, 'error' = 2"
	MetricTypeEnum  = "'unspecified' = 0, 'gauge' = 1, 'sum' = 2, 'histogram' = 3, 'exponential_histogram' = 4, 'summary' = 5"
	TemporalityEnum = "'unspecified' = 0, 'delta' = 1, 'cumulative' = 2"
	// TriStateEnum is a boolean attribute that may be absent: absence has
	// its own meaning for weft.trace_id.synthetic.
	TriStateEnum = "'' = 0, 'false' = 1, 'true' = 2"
)

// IDColumn is one of the integer resource id columns, sized to its range
// (the k8s_metadata id allocator keeps ids within it).
type IDColumn struct {
	Name string // without side suffix: pod_id
	Kind Kind
}

// IDColumns are the resource id columns: the attribute weft.<name> (and
// weft.peer.<name> for a span's peer) goes into <name>_0/_1 or <name>.
var IDColumns = [...]IDColumn{
	{"vpc_id", UInt32},
	{"cluster_id", UInt16},
	{"node_id", UInt32},
	{"namespace_id", UInt16},
	{"workload_id", UInt32},
	{"workload_kind", UInt8},
	{"pod_id", UInt32},
	{"service_id", UInt32},
	{"host_id", UInt32},
	{"auto_instance_type", UInt8},
	{"auto_instance_id", UInt32},
	{"auto_service_type", UInt8},
	{"auto_service_id", UInt32},
}

// tagColumns are the id and IP columns: with suffixes _0 and _1 for spans
// (both sides of a call), without for metrics and logs.
func tagColumns(suffixes ...string) []Column {
	var cols []Column
	for _, id := range IDColumns {
		for _, s := range suffixes {
			cols = append(cols, Column{Name: id.Name + s, Kind: id.Kind})
		}
	}
	for _, s := range suffixes {
		cols = append(cols, Column{Name: "ip4" + s, Kind: IPv4}, Column{Name: "ip6" + s, Kind: IPv6})
	}
	return cols
}

func join(parts ...[]Column) []Column {
	var cols []Column
	for _, p := range parts {
		cols = append(cols, p...)
	}
	return cols
}

var attributeColumns = []Column{
	{Name: "attr_names", Kind: ArrayLowString},
	{Name: "attr_values", Kind: ArrayString},
	{Name: "resource_names", Kind: ArrayLowString},
	{Name: "resource_values", Kind: ArrayString},
}

var serviceColumns = []Column{
	{Name: "service_name", Kind: LowString},
	{Name: "scope_name", Kind: LowString},
	{Name: "scope_version", Kind: LowString},
}

// Spans is one row per span.
var Spans = Table{
	Name:  "spans",
	Since: 1,
	Columns: join([]Column{
		{Name: "time", Kind: DateTime},
		{Name: "start_time", Kind: Time64},
		{Name: "end_time", Kind: Time64},
		{Name: "duration", Kind: UInt64},
		{Name: "trace_id", Kind: String},
		{Name: "span_id", Kind: String},
		{Name: "parent_span_id", Kind: String},
		{Name: "trace_state", Kind: String},
		{Name: "flags", Kind: UInt32},
		{Name: "name", Kind: LowString},
		{Name: "kind", Kind: Enum8, Enum: SpanKindEnum},
		{Name: "status_code", Kind: Enum8, Enum: StatusCodeEnum},
		{Name: "status_message", Kind: String},
	}, serviceColumns, []Column{
		{Name: "observation_point", Kind: LowString},
		{Name: "signal_source", Kind: LowString},
		{Name: "observer_id", Kind: LowString},
		{Name: "process_id", Kind: UInt32},
		{Name: "syscall_trace_id_request", Kind: UInt64},
		{Name: "syscall_trace_id_response", Kind: UInt64},
		{Name: "syscall_cap_seq_request", Kind: UInt64},
		{Name: "syscall_cap_seq_response", Kind: UInt64},
		{Name: "tcp_seq_request", Kind: UInt32},
		{Name: "tcp_seq_response", Kind: UInt32},
		{Name: "x_request_id_0", Kind: String},
		{Name: "x_request_id_1", Kind: String},
		{Name: "propagated_span_id", Kind: String},
		{Name: "trace_id_synthetic", Kind: Enum8, Enum: TriStateEnum},
		{Name: "message_type", Kind: LowString},
		{Name: "flow_id", Kind: UInt64},
		{Name: "l7_request_id", Kind: UInt64},
		{Name: "l7_protocol", Kind: LowString},
		{Name: "link_key", Kind: LowString},
		{Name: "link_late", Kind: UInt8},
		{Name: "link_original_parent_span_id", Kind: String},
		{Name: "session_response_span_id", Kind: String},
	}, tagColumns("_0", "_1"), attributeColumns, []Column{
		{Name: "events.time", Kind: ArrayTime64},
		{Name: "events.name", Kind: ArrayString},
		{Name: "events.attr_names", Kind: ArrayArrayString},
		{Name: "events.attr_values", Kind: ArrayArrayString},
		{Name: "links.trace_id", Kind: ArrayString},
		{Name: "links.span_id", Kind: ArrayString},
		{Name: "links.trace_state", Kind: ArrayString},
		{Name: "links.attr_names", Kind: ArrayArrayString},
		{Name: "links.attr_values", Kind: ArrayArrayString},
	}),
	Engine:      "MergeTree",
	PartitionBy: "toDate(time)",
	OrderBy:     "(service_name, name, time)",
	Indexes: []Index{
		{Name: "idx_trace_id", Expr: "trace_id", Type: "bloom_filter(0.001)", Granularity: 1},
		{Name: "idx_attr_names", Expr: "attr_names", Type: "bloom_filter(0.01)", Granularity: 1},
	},
	// All spans of a trace on one shard: trace queries read one shard.
	ShardingKey: "cityHash64(trace_id)",
}

// Metrics is one row per data point.
var Metrics = Table{
	Name:  "metrics",
	Since: 1,
	Columns: join([]Column{
		{Name: "time", Kind: DateTime},
		{Name: "timestamp", Kind: Time64},
		{Name: "start_timestamp", Kind: Time64},
		{Name: "name", Kind: LowString},
		{Name: "description", Kind: LowString},
		{Name: "unit", Kind: LowString},
		{Name: "type", Kind: Enum8, Enum: MetricTypeEnum},
		{Name: "temporality", Kind: Enum8, Enum: TemporalityEnum},
		{Name: "is_monotonic", Kind: UInt8},
		{Name: "flags", Kind: UInt32},
		{Name: "value", Kind: Float64},
		{Name: "count", Kind: UInt64},
		{Name: "sum", Kind: Float64},
		{Name: "min", Kind: Float64},
		{Name: "max", Kind: Float64},
		{Name: "bucket_bounds", Kind: ArrayFloat64},
		{Name: "bucket_counts", Kind: ArrayUInt64},
		{Name: "exp_scale", Kind: Int32},
		{Name: "exp_zero_count", Kind: UInt64},
		{Name: "exp_positive_offset", Kind: Int32},
		{Name: "exp_positive_counts", Kind: ArrayUInt64},
		{Name: "exp_negative_offset", Kind: Int32},
		{Name: "exp_negative_counts", Kind: ArrayUInt64},
		{Name: "quantiles", Kind: ArrayFloat64},
		{Name: "quantile_values", Kind: ArrayFloat64},
	}, serviceColumns, tagColumns(""), attributeColumns),
	Engine:      "MergeTree",
	PartitionBy: "toDate(time)",
	OrderBy:     "(service_name, name, time)",
	ShardingKey: "rand()",
}

// Logs is one row per log record.
var Logs = Table{
	Name:  "logs",
	Since: 1,
	Columns: join([]Column{
		{Name: "time", Kind: DateTime},
		{Name: "timestamp", Kind: Time64},
		{Name: "observed_timestamp", Kind: Time64},
		{Name: "trace_id", Kind: String},
		{Name: "span_id", Kind: String},
		{Name: "flags", Kind: UInt32},
		{Name: "severity_text", Kind: LowString},
		{Name: "severity_number", Kind: UInt8},
		{Name: "event_name", Kind: LowString},
		{Name: "body", Kind: String},
	}, serviceColumns, tagColumns(""), attributeColumns),
	Engine:      "MergeTree",
	PartitionBy: "toDate(time)",
	OrderBy:     "(service_name, time)",
	Indexes: []Index{
		{Name: "idx_trace_id", Expr: "trace_id", Type: "bloom_filter(0.001)", Granularity: 1},
	},
	ShardingKey: "rand()",
}

// TagNames and TagValues are the tag-value candidates: the attribute names,
// and names with values, seen per data table, with the last time seen.
// ReplacingMergeTree keeps one row per key; the exporter writes a key again
// only once in a while (see the exporter's candidate cache).
var TagNames = Table{
	Name:  "tag_names",
	Since: 2,
	Columns: []Column{
		{Name: "time", Kind: DateTime},
		{Name: "table_name", Kind: LowString},
		{Name: "scope", Kind: LowString},
		{Name: "name", Kind: String},
	},
	Engine:      "ReplacingMergeTree(time)",
	OrderBy:     "(table_name, scope, name)",
	ShardingKey: "cityHash64(table_name, scope, name)",
}

var TagValues = Table{
	Name:  "tag_values",
	Since: 2,
	Columns: []Column{
		{Name: "time", Kind: DateTime},
		{Name: "table_name", Kind: LowString},
		{Name: "scope", Kind: LowString},
		{Name: "name", Kind: String},
		{Name: "value", Kind: String},
	},
	Engine:      "ReplacingMergeTree(time)",
	OrderBy:     "(table_name, scope, name, value)",
	ShardingKey: "cityHash64(table_name, scope, name, value)",
}

// Tables are the data tables, in creation order.
var Tables = []Table{Spans, Metrics, Logs, TagNames, TagValues}

// migrationNames describe each schema version. Never change an applied
// migration: add a column or table with a new Since and a name here.
var migrationNames = map[int]string{
	1: "spans, metrics and logs tables",
	2: "tag name and value candidate tables",
}

// Latest is the newest schema version this code knows.
func Latest() int { return len(migrationNames) }
