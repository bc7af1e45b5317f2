package store

import (
	"strconv"
	"strings"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
)

type column struct {
	name string
	typ  colType
}

type table struct {
	name    string
	cols    []column
	pk      []string
	unique  [][]string
	indexes [][]string
}

// createSQL is the table's CREATE TABLE IF NOT EXISTS and, where the
// dialect cannot declare them inline, its CREATE INDEX IF NOT EXISTS.
// Every statement is idempotent: MySQL DDL is not transactional, so a
// migration interrupted half-way is simply run again.
func (t table) createSQL(d *dialect) []string {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS " + t.name + " (")
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(d.col(c.name) + " " + d.types[c.typ])
	}
	b.WriteString(", PRIMARY KEY (" + colList(d, t.pk) + ")")
	var after []string
	for _, u := range t.unique {
		name := t.name + "_" + strings.Join(u, "_") + "_key"
		if d.inlineIndexes {
			b.WriteString(", UNIQUE KEY " + name + " (" + colList(d, u) + ")")
		} else {
			b.WriteString(", CONSTRAINT " + name + " UNIQUE (" + colList(d, u) + ")")
		}
	}
	for _, ix := range t.indexes {
		name := t.name + "_" + strings.Join(ix, "_") + "_idx"
		if d.inlineIndexes {
			b.WriteString(", INDEX " + name + " (" + colList(d, ix) + ")")
		} else {
			after = append(after, "CREATE INDEX IF NOT EXISTS "+name+" ON "+t.name+" ("+colList(d, ix)+")")
		}
	}
	b.WriteString(")" + d.tableOptions)
	return append([]string{b.String()}, after...)
}

func colList(d *dialect, cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = d.col(c)
	}
	return strings.Join(q, ",")
}

// The resource table: every resource of every kind and cluster, one row
// each, with its relations already resolved to ids. It is the source of
// Changes; the ch_ tables are its projections for ClickHouse.
const resourceTable = "weft_resource"

var resourceCols = []column{
	{"kind", tSmall}, {"id", tID}, {"cluster_id", tID}, {"uid", tUID},
	{"name", tName}, {"namespace", tName},
	{"namespace_id", tID}, {"node_id", tID}, {"workload_id", tID}, {"workload_kind", tSmall},
	{"service_id", tID}, {"service_ids", tText},
	{"parent_kind", tSmall}, {"parent_id", tID},
	{"ips", tText}, {"host_ip", tShort}, {"host_network", tSmall},
	{"container_ids", tText}, {"ports", tText}, {"selector", tText}, {"service_type", tShort},
	// Hashes of what was last written, so that an unchanged record (a
	// re-list, a status-only pod update) writes nothing and moves no
	// updated_at; 0 = never written (placeholder).
	{"row_hash", tBig}, {"labels_hash", tBig}, {"annotations_hash", tBig}, {"env_hash", tBig},
	{"version", tBig},
	{"created_at", tTime}, {"updated_at", tTime}, {"deleted_at", tTimeNull},
}

// resourceInsertOnly are the columns an upsert never overwrites: an id's
// identity and birth.
var resourceInsertOnly = map[string]bool{"kind": true, "id": true, "cluster_id": true, "uid": true, "created_at": true}

var resourceTableDef = table{
	name: resourceTable,
	cols: resourceCols,
	pk:   []string{"kind", "id"},
	// uid is unique per kind within a cluster; cluster rows use cluster_id 0.
	unique: [][]string{{"kind", "cluster_id", "uid"}},
	indexes: [][]string{
		{"version", "kind", "id"},            // Changes
		{"kind", "cluster_id", "deleted_at"}, // Reconcile, Purge
	},
}

// chExtraCols are the columns of ch_<kind> between name and deleted: the
// attributes a ClickHouse dictionary of that kind reads.
var chExtraCols = map[model.Kind][]column{
	model.KindCluster:   nil,
	model.KindNode:      {{"cluster_id", tID}},
	model.KindNamespace: {{"cluster_id", tID}},
	model.KindWorkload:  {{"cluster_id", tID}, {"namespace_id", tID}, {"workload_kind", tSmall}},
	model.KindPod: {{"cluster_id", tID}, {"namespace_id", tID}, {"node_id", tID}, {"workload_id", tID},
		{"workload_kind", tSmall}, {"service_id", tID}},
	model.KindService: {{"cluster_id", tID}, {"namespace_id", tID}, {"service_type", tShort}},
	model.KindIngress: {{"cluster_id", tID}, {"namespace_id", tID}},
	model.KindRegion:  staticCols,
	model.KindZone:    staticCols,
	model.KindVPC:     staticCols,
	model.KindSubnet:  staticCols,
	model.KindHost:    staticCols,
}

// A subnet's parent is a zone or a VPC, so the kind is kept beside the id.
var staticCols = []column{{"cluster_id", tID}, {"parent_kind", tSmall}, {"parent_id", tID}}

// kvTable says which key/value tables a kind has.
type kvTable int

const (
	kvLabel kvTable = iota
	kvAnnotation
	kvEnv
	numKV
)

var kvSuffix = [numKV]string{kvLabel: "label", kvAnnotation: "annotation", kvEnv: "env"}

// kvKinds lists the kinds that have each key/value table.
var kvKinds = [numKV][]model.Kind{
	kvLabel:      {model.KindNode, model.KindNamespace, model.KindWorkload, model.KindPod, model.KindService, model.KindIngress},
	kvAnnotation: {model.KindNode, model.KindNamespace, model.KindWorkload, model.KindPod, model.KindService, model.KindIngress},
	kvEnv:        {model.KindPod},
}

func hasKV(k model.Kind, t kvTable) bool {
	for _, kk := range kvKinds[t] {
		if kk == k {
			return true
		}
	}
	return false
}

// Table names, built only from kind names (constants), never from input.
func chTable(k model.Kind) string                { return "ch_" + k.String() }
func kvTableName(k model.Kind, t kvTable) string { return "ch_" + k.String() + "_" + kvSuffix[t] }

func chTableDef(k model.Kind) table {
	cols := []column{{"id", tID}, {"name", tName}}
	cols = append(cols, chExtraCols[k]...)
	cols = append(cols, column{"deleted", tSmall}, column{"updated_at", tTime})
	return table{name: chTable(k), cols: cols, pk: []string{"id"}, indexes: [][]string{{"updated_at"}}}
}

func kvTableDef(k model.Kind, t kvTable) table {
	return table{
		name:    kvTableName(k, t),
		cols:    []column{{"id", tID}, {"key", tKey}, {"value", tLongText}, {"updated_at", tTime}},
		pk:      []string{"id", "key"},
		indexes: [][]string{{"updated_at"}},
	}
}

// v1Kinds are the kinds schema version 1 creates tables for. Frozen: a new
// model.Kind needs a new migration creating its tables (TestEveryKindHasTables
// fails until it has one).
var v1Kinds = []model.Kind{model.KindCluster, model.KindNode, model.KindNamespace, model.KindWorkload,
	model.KindPod, model.KindService, model.KindIngress, model.KindRegion, model.KindZone, model.KindVPC,
	model.KindSubnet, model.KindHost}

const (
	migrationsTable = "weft_schema_migrations"
	watermarkTable  = "weft_watermark"
	counterTable    = "weft_id_counter"
)

var migrationsTableDef = table{
	name: migrationsTable,
	cols: []column{{"version", tBig}, {"name", tName}, {"applied_at", tTime}},
	pk:   []string{"version"},
}

type migration struct {
	version int64
	name    string
	stmts   func(d *dialect) []string
}

// migrations are applied in order, each once. Never edit an applied one:
// add a new version.
var migrations = []migration{
	{version: 1, name: "resources, id counters, watermark, ch_ dictionary sources", stmts: schemaV1},
}

func schemaV1(d *dialect) []string {
	var s []string
	// The one-row change counter. updated_at is the last stamp handed out,
	// so that stamps never go backwards even if the database clock does.
	s = append(s, table{name: watermarkTable, cols: []column{{"id", tSmall}, {"version", tBig}, {"updated_at", tTime}},
		pk: []string{"id"}}.createSQL(d)...)
	s = append(s, table{name: counterTable, cols: []column{{"kind", tSmall}, {"next_id", tBig}},
		pk: []string{"kind"}}.createSQL(d)...)
	s = append(s, resourceTableDef.createSQL(d)...)
	for _, k := range v1Kinds {
		s = append(s, chTableDef(k).createSQL(d)...)
		for t := kvTable(0); t < numKV; t++ {
			if hasKV(k, t) {
				s = append(s, kvTableDef(k, t).createSQL(d)...)
			}
		}
	}
	// The watermark row; seeded with the epoch as the last stamp.
	s = append(s, d.insertIfMissing(watermarkTable, []string{"id", "version", "updated_at"},
		"1, 0, '1970-01-01 00:00:00'", "id"))
	for _, k := range v1Kinds {
		s = append(s, counterSeed(d, k))
	}
	return s
}

// counterSeed creates kind's id counter, starting at 1, unless it exists.
func counterSeed(d *dialect, k model.Kind) string {
	return d.insertIfMissing(counterTable, []string{"kind", "next_id"}, strconv.Itoa(int(k))+", 1", "kind")
}
