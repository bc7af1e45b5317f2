package schema

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Options are the parts of the exporter's configuration that shape the DDL.
type Options struct {
	// Database holds every table, dictionary and view.
	Database string
	// Cluster, when set, makes ReplicatedMergeTree local tables
	// (<table>_local) and Distributed tables named like the standalone ones,
	// all created ON CLUSTER.
	Cluster string
	// TTL is the row retention; 0 keeps rows.
	TTL time.Duration
	// Source is the dictionaries' metadata database; Driver "" means no
	// dictionaries and no views.
	Source Source
	// Lifetime is the longest a dictionary goes without checking for
	// changes.
	Lifetime time.Duration
}

// Source is the metadata database as the ClickHouse server reaches it.
type Source struct {
	Driver   string // postgres or mysql
	Host     string
	Port     int
	User     string
	Password string
	Database string
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate refuses identifiers that would need quoting: they are written
// into DDL. The exporter's config validates them too; this guards every
// other caller (the DDL printing command).
func (o Options) Validate() error {
	if !identifier.MatchString(o.Database) {
		return fmt.Errorf("database %q must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", o.Database)
	}
	if o.Cluster != "" && !identifier.MatchString(o.Cluster) {
		return fmt.Errorf("cluster %q must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)", o.Cluster)
	}
	if o.TTL < 0 {
		return fmt.Errorf("ttl must not be negative, got %s", o.TTL)
	}
	switch o.Source.Driver {
	case "", "postgres", "mysql":
	default:
		return fmt.Errorf("dictionary source driver must be postgres or mysql, got %q", o.Source.Driver)
	}
	return nil
}

// quoteIdent backquotes a column name. Weft's own names are plain, but the
// nested columns (events.name) contain a dot.
func quoteIdent(name string) string { return "`" + name + "`" }

// QuoteString is a ClickHouse string literal holding s. Used for the few
// values that DDL cannot take as parameters (dictionary sources).
func QuoteString(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '\'':
			b.WriteString(`\'`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

func (o Options) onCluster() string {
	if o.Cluster == "" {
		return ""
	}
	return " ON CLUSTER " + o.Cluster
}

// qualified is db.name.
func (o Options) qualified(name string) string { return o.Database + "." + name }

// storageName is the table that stores rows: <name>_local in cluster mode.
func (o Options) storageName(name string) string {
	if o.Cluster != "" {
		return name + "_local"
	}
	return name
}

// ttlClause is the TTL of data tables, empty when there is none.
func (o Options) ttlClause(f Features) string {
	if !f.TTL || o.TTL <= 0 {
		return ""
	}
	secs := int64(o.TTL / time.Second)
	if secs < 1 {
		secs = 1
	}
	return fmt.Sprintf("time + INTERVAL %d SECOND", secs)
}

// engine is the table engine: Replicated in cluster mode, with the usual
// {shard} and {replica} macros, which every ClickHouse cluster defines.
func (o Options) engine(t Table) string {
	if o.Cluster == "" {
		return t.Engine
	}
	name, args, _ := strings.Cut(t.Engine, "(")
	args = strings.TrimSuffix(args, ")")
	path := QuoteString("/clickhouse/tables/{shard}/" + o.Database + "/" + o.storageName(t.Name))
	params := path + ", '{replica}'"
	if args != "" {
		params += ", " + args
	}
	return "Replicated" + name + "(" + params + ")"
}

// createTable is the CREATE TABLE statements of t with its columns at
// schema version v: the table itself, or in cluster mode the local table
// and the Distributed table over it.
func createTable(t Table, v int, f Features, o Options) []string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s%s\n(\n", o.qualified(o.storageName(t.Name)), o.onCluster())
	cols := t.ColumnsAt(v)
	for i, c := range cols {
		b.WriteString("    " + c.Definition(f))
		if i < len(cols)-1 || (f.SkipIndexes && len(t.Indexes) > 0) {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	if f.SkipIndexes {
		for i, ix := range t.Indexes {
			fmt.Fprintf(&b, "    INDEX %s %s TYPE %s GRANULARITY %d", ix.Name, ix.Expr, ix.Type, ix.Granularity)
			if i < len(t.Indexes)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
	}
	fmt.Fprintf(&b, ")\nENGINE = %s\n", o.engine(t))
	if t.PartitionBy != "" {
		fmt.Fprintf(&b, "PARTITION BY %s\n", t.PartitionBy)
	}
	fmt.Fprintf(&b, "ORDER BY %s", t.OrderBy)
	if ttl := o.ttlClause(f); ttl != "" {
		fmt.Fprintf(&b, "\nTTL %s", ttl)
		if f.Codecs {
			// Whole parts expire together (parts are per day): dropping
			// them is far cheaper than rewriting them row by row.
			b.WriteString("\nSETTINGS ttl_only_drop_parts = 1")
		}
	}
	stmts := []string{b.String()}
	if o.Cluster != "" {
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s AS %s\nENGINE = Distributed(%s, %s, %s, %s)",
			o.qualified(t.Name), o.onCluster(), o.qualified(o.storageName(t.Name)),
			o.Cluster, o.Database, o.storageName(t.Name), t.ShardingKey))
	}
	return stmts
}

// Step is one statement of a migration.
type Step struct {
	SQL string
	// UnlessColumn, when set, names a column (table, column) whose
	// existence means the step is done: servers without ADD COLUMN IF NOT
	// EXISTS need the check before the ALTER.
	UnlessColumn *[2]string
}

// Migration is one schema version: applied once, in order, recorded in
// schema_version. Every step is idempotent, so a migration that was
// interrupted, or that two collectors run at once, just runs again.
type Migration struct {
	Version int
	Name    string
	Steps   []Step
}

// Bootstrap creates the database and the bookkeeping tables: schema_version
// (applied migrations) and schema_objects (the DDL hash of each dictionary,
// view and TTL last applied, to re-create what changed). They are
// ReplacingMergeTree without replication; in cluster mode each server keeps
// its own, and a server that has not seen a record just runs the
// idempotent step again.
func Bootstrap(f Features, o Options) []string {
	return []string{
		"CREATE DATABASE IF NOT EXISTS " + o.Database + o.onCluster(),
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s\n(\n    `version` UInt32,\n    `name` String,\n    `applied_at` DateTime\n)\nENGINE = ReplacingMergeTree(applied_at)\nORDER BY version",
			o.qualified("schema_version"), o.onCluster()),
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s%s\n(\n    `name` String,\n    `hash` String,\n    `updated_ns` UInt64\n)\nENGINE = ReplacingMergeTree(updated_ns)\nORDER BY name",
			o.qualified("schema_objects"), o.onCluster()),
	}
}

// Migrations are the schema's versions, 1 to Latest().
func Migrations(f Features, o Options) []Migration {
	return MigrationsOf(Tables, Latest(), f, o)
}

// MigrationsOf derives the migrations from the tables: version v creates
// the tables whose Since is v, with their columns as of v, and adds the
// columns whose Since is v to older tables.
func MigrationsOf(tables []Table, latest int, f Features, o Options) []Migration {
	var ms []Migration
	for v := 1; v <= latest; v++ {
		m := Migration{Version: v, Name: migrationNames[v]}
		if m.Name == "" {
			m.Name = fmt.Sprintf("version %d", v)
		}
		for _, t := range tables {
			if t.Since == v {
				for _, s := range createTable(t, v, f, o) {
					m.Steps = append(m.Steps, Step{SQL: s})
				}
				continue
			}
			if t.Since > v {
				continue
			}
			for _, c := range t.Columns {
				if c.since(t) == v {
					m.Steps = append(m.Steps, addColumn(t, c, f, o)...)
				}
			}
		}
		ms = append(ms, m)
	}
	return ms
}

// addColumn adds c to t: to the local and the Distributed table in
// cluster mode.
func addColumn(t Table, c Column, f Features, o Options) []Step {
	names := []string{o.storageName(t.Name)}
	if o.Cluster != "" {
		names = append(names, t.Name)
	}
	var steps []Step
	for _, n := range names {
		ifNotExists := ""
		if f.AddColumnIfNotExists {
			ifNotExists = "IF NOT EXISTS "
		}
		steps = append(steps, Step{
			SQL:          fmt.Sprintf("ALTER TABLE %s%s ADD COLUMN %s%s", o.qualified(n), o.onCluster(), ifNotExists, c.Definition(f)),
			UnlessColumn: &[2]string{n, c.Name},
		})
	}
	return steps
}

// Object is a dictionary, view or TTL setting that the exporter keeps in
// sync: created when missing, dropped and created again when its DDL
// changed (the hash of Create is recorded in schema_objects).
type Object struct {
	// Name is kind:name, e.g. dictionary:pod_map, view:spans_view, ttl.
	Name string
	// Exists is a query returning a row while the object exists, with its
	// parameters; empty for objects that cannot go missing (a table's TTL).
	Exists     string
	ExistsArgs []any
	Drop       []string
	Create     []string
	// Fingerprint is Create with its secret (a dictionary source's
	// password) replaced by a placeholder: what is hashed into
	// schema_objects, which anyone with SELECT on the database can read.
	// nil when Create holds no secret.
	Fingerprint []string
	// Secret is the secret in Create, "" when there is none. schema_objects
	// records only a salted, slow derivation of it, to notice a change.
	Secret string
}

// TTLObject keeps the data tables' TTL in step with the configuration. It
// is nil when there is no TTL to set.
func TTLObject(f Features, o Options) *Object {
	ttl := o.ttlClause(f)
	if ttl == "" {
		return nil
	}
	obj := &Object{Name: "ttl"}
	for _, t := range Tables {
		obj.Create = append(obj.Create, fmt.Sprintf("ALTER TABLE %s%s MODIFY TTL %s", o.qualified(o.storageName(t.Name)), o.onCluster(), ttl))
	}
	return obj
}

// DropStatement is how an object that is no longer wanted is removed,
// from its recorded name.
func DropStatement(o Options, name string) string {
	kind, n, _ := strings.Cut(name, ":")
	if !identifier.MatchString(n) {
		return ""
	}
	switch kind {
	case "dictionary":
		return "DROP DICTIONARY IF EXISTS " + o.qualified(n) + o.onCluster()
	case "view":
		return "DROP TABLE IF EXISTS " + o.qualified(n) + o.onCluster()
	}
	return ""
}

// Script is every statement a DBA applies for a fresh database: bootstrap,
// all migrations with their schema_version records, TTL, dictionaries (as
// DDL, on servers with CREATE DICTIONARY) and views. Passwords appear as
// given: the caller decides what to print.
func Script(f Features, o Options) ([]string, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	stmts := Bootstrap(f, o)
	for _, m := range Migrations(f, o) {
		for _, s := range m.Steps {
			stmts = append(stmts, s.SQL)
		}
		stmts = append(stmts, fmt.Sprintf("INSERT INTO %s (version, name, applied_at) VALUES (%d, %s, now())",
			o.qualified("schema_version"), m.Version, QuoteString(m.Name)))
	}
	if o.Source.Driver != "" {
		objs, err := DictionaryObjects(f, o)
		if err != nil {
			return nil, err
		}
		for _, obj := range objs {
			stmts = append(stmts, obj.Create...)
		}
		for _, obj := range ViewObjects(f, o) {
			stmts = append(stmts, obj.Create...)
		}
	}
	return stmts, nil
}
