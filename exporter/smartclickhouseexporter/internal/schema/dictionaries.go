package schema

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// DictAttr is a dictionary attribute read from a ch_ table column of the
// same name.
type DictAttr struct {
	Name, Type string
}

// Dictionary decodes ids of one kind into names (id key), or reads one
// resource's labels, annotations or env ((id, key) key).
type Dictionary struct {
	Name  string // pod_map
	Table string // ch_pod, in the metadata database
	// KeyValue dictionaries have the key (id, key) and one attribute, value.
	KeyValue bool
	Attrs    []DictAttr
}

var (
	nameAttr    = DictAttr{"name", "String"}
	clusterAttr = DictAttr{"cluster_id", "UInt64"}
	nsAttr      = DictAttr{"namespace_id", "UInt64"}
	deletedAttr = DictAttr{"deleted", "UInt8"}
)

// Dictionaries are what the exporter creates over the k8s_metadata
// database's ch_ tables (extension/k8smetadataextension/internal/store/SCHEMA.md).
var Dictionaries = []Dictionary{
	{Name: "cluster_map", Table: "ch_cluster", Attrs: []DictAttr{nameAttr, deletedAttr}},
	{Name: "node_map", Table: "ch_node", Attrs: []DictAttr{nameAttr, clusterAttr, deletedAttr}},
	{Name: "namespace_map", Table: "ch_namespace", Attrs: []DictAttr{nameAttr, clusterAttr, deletedAttr}},
	{Name: "workload_map", Table: "ch_workload", Attrs: []DictAttr{nameAttr, clusterAttr, nsAttr, {"workload_kind", "UInt8"}, deletedAttr}},
	{Name: "pod_map", Table: "ch_pod", Attrs: []DictAttr{nameAttr, clusterAttr, nsAttr, {"node_id", "UInt64"},
		{"workload_id", "UInt64"}, {"workload_kind", "UInt8"}, {"service_id", "UInt64"}, deletedAttr}},
	{Name: "service_map", Table: "ch_service", Attrs: []DictAttr{nameAttr, clusterAttr, nsAttr, {"service_type", "String"}, deletedAttr}},
	{Name: "host_map", Table: "ch_host", Attrs: []DictAttr{nameAttr, clusterAttr, deletedAttr}},
	{Name: "pod_label_map", Table: "ch_pod_label", KeyValue: true},
	{Name: "pod_annotation_map", Table: "ch_pod_annotation", KeyValue: true},
	{Name: "pod_env_map", Table: "ch_pod_env", KeyValue: true},
	{Name: "node_label_map", Table: "ch_node_label", KeyValue: true},
	{Name: "namespace_label_map", Table: "ch_namespace_label", KeyValue: true},
	{Name: "workload_label_map", Table: "ch_workload_label", KeyValue: true},
	{Name: "service_label_map", Table: "ch_service_label", KeyValue: true},
}

// updateLag covers, in seconds, a metadata transaction that commits after
// ClickHouse's incremental read began (rows are stamped when the
// transaction starts) and small clock differences.
const updateLag = 10

func lifetime(o Options) (lo, hi int64) {
	hi = int64(o.Lifetime / time.Second)
	if hi < 2 {
		hi = 2
	}
	return hi / 2, hi
}

// DictRef is how queries name dictionary d: db.pod_map when it was created
// by DDL; XML dictionaries have one global namespace, so there the name is
// db_pod_map.
func DictRef(f Features, o Options, d string) string {
	if f.CreateDictionary {
		return o.Database + "." + d
	}
	return o.Database + "_" + d
}

// checkSource refuses a source the server cannot read.
func checkSource(f Features, o Options) error {
	if o.Source.Driver == "postgres" && !f.PostgreSQLSource {
		return fmt.Errorf("dictionaries.source.driver is postgres, but ClickHouse %s has no PostgreSQL dictionary source "+
			"(it came in 21.4; older servers reach PostgreSQL only through ODBC, which Weft does not set up): "+
			"point dictionaries.source at a MySQL copy of the metadata database, or upgrade ClickHouse", f.Version)
	}
	return nil
}

// DictionaryObjects are the CREATE DICTIONARY objects, on servers that have
// CREATE DICTIONARY; nil on older servers (see XMLFiles) or without a source.
func DictionaryObjects(f Features, o Options) ([]Object, error) {
	if o.Source.Driver == "" || !f.CreateDictionary {
		return nil, nil
	}
	if err := checkSource(f, o); err != nil {
		return nil, err
	}
	hidden := o
	hidden.Source.Password = SecretPlaceholder
	objs := make([]Object, 0, len(Dictionaries))
	for _, d := range Dictionaries {
		obj := Object{
			Name:       "dictionary:" + d.Name,
			Exists:     "SELECT name FROM system.dictionaries WHERE database = ? AND name = ?",
			ExistsArgs: []any{o.Database, d.Name},
			Drop:       []string{DropStatement(o, "dictionary:"+d.Name)},
			Create:     []string{createDictionary(d, f, o)},
		}
		if o.Source.Password != "" {
			obj.Fingerprint = []string{createDictionary(d, f, hidden)}
			obj.Secret = o.Source.Password
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// SecretPlaceholder stands for a password in an Object's Fingerprint.
const SecretPlaceholder = "[secret]"

func createDictionary(d Dictionary, f Features, o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE DICTIONARY IF NOT EXISTS %s%s\n(\n", o.qualified(d.Name), o.onCluster())
	cols := []string{"    `id` UInt64"}
	key := "id"
	layout := "HASHED()"
	if d.KeyValue {
		cols = append(cols, "    `key` String", "    `value` String")
		key = "id, key"
		layout = "COMPLEX_KEY_HASHED()"
	} else {
		for _, a := range d.Attrs {
			cols = append(cols, "    "+quoteIdent(a.Name)+" "+a.Type)
		}
	}
	b.WriteString(strings.Join(cols, ",\n"))
	fmt.Fprintf(&b, "\n)\nPRIMARY KEY %s\n", key)
	src := "MYSQL"
	if o.Source.Driver == "postgres" {
		src = "POSTGRESQL"
	}
	fmt.Fprintf(&b, "SOURCE(%s(HOST %s PORT %d USER %s PASSWORD %s DB %s TABLE %s\n    INVALIDATE_QUERY %s UPDATE_FIELD 'updated_at'",
		src, QuoteString(o.Source.Host), o.Source.Port, QuoteString(o.Source.User), QuoteString(o.Source.Password),
		QuoteString(o.Source.Database), QuoteString(d.Table), QuoteString(invalidateQuery(d)))
	if f.UpdateLag {
		fmt.Fprintf(&b, " UPDATE_LAG %d", updateLag)
	}
	lo, hi := lifetime(o)
	// HASHED, not FLAT: FLAT holds ids only up to 500,000, and pod ids keep
	// growing with every pod ever created until purged rows free theirs.
	fmt.Fprintf(&b, "))\nLIFETIME(MIN %d MAX %d)\nLAYOUT(%s)", lo, hi, layout)
	return b.String()
}

// invalidateQuery makes the dictionary reload only when the table changed:
// the metadata store's updated_at stamps only grow.
func invalidateQuery(d Dictionary) string { return "SELECT max(updated_at) FROM " + d.Table }

// XMLMarker is in every XML file the exporter writes, so that it removes
// only its own files.
const XMLMarker = "<!-- Written by Weft's smart_clickhouse exporter; it rewrites this file when the configuration changes. -->"

// XMLFiles are the dictionary definitions for servers without CREATE
// DICTIONARY, by file name (<database>_<dictionary>_dictionary.xml, the
// pattern of the server's default dictionaries_config). Only a MySQL source
// is possible there.
func XMLFiles(f Features, o Options) (map[string][]byte, error) {
	if o.Source.Driver == "" || f.CreateDictionary {
		return nil, nil
	}
	if err := checkSource(f, o); err != nil {
		return nil, err
	}
	files := make(map[string][]byte, len(Dictionaries))
	for _, d := range Dictionaries {
		files[XMLFileName(o, d.Name)] = xmlDictionary(d, f, o)
	}
	return files, nil
}

// XMLFileName is the file holding dictionary d's definition.
func XMLFileName(o Options, d string) string { return o.Database + "_" + d + "_dictionary.xml" }

// xmlText escapes s for XML character data.
func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func xmlDictionary(d Dictionary, f Features, o Options) []byte {
	var b strings.Builder
	lo, hi := lifetime(o)
	b.WriteString("<?xml version=\"1.0\"?>\n" + XMLMarker + "\n<yandex>\n  <dictionary>\n")
	fmt.Fprintf(&b, "    <name>%s</name>\n", xmlText(DictRef(f, o, d.Name)))
	b.WriteString("    <source>\n      <mysql>\n")
	fmt.Fprintf(&b, "        <port>%d</port>\n        <user>%s</user>\n        <password>%s</password>\n",
		o.Source.Port, xmlText(o.Source.User), xmlText(o.Source.Password))
	fmt.Fprintf(&b, "        <replica>\n          <host>%s</host>\n          <priority>1</priority>\n        </replica>\n", xmlText(o.Source.Host))
	fmt.Fprintf(&b, "        <db>%s</db>\n        <table>%s</table>\n", xmlText(o.Source.Database), xmlText(d.Table))
	fmt.Fprintf(&b, "        <invalidate_query>%s</invalidate_query>\n        <update_field>updated_at</update_field>\n", xmlText(invalidateQuery(d)))
	b.WriteString("      </mysql>\n    </source>\n")
	fmt.Fprintf(&b, "    <lifetime>\n      <min>%d</min>\n      <max>%d</max>\n    </lifetime>\n", lo, hi)
	if d.KeyValue {
		b.WriteString("    <layout>\n      <complex_key_hashed/>\n    </layout>\n    <structure>\n      <key>\n")
		b.WriteString("        <attribute>\n          <name>id</name>\n          <type>UInt64</type>\n        </attribute>\n")
		b.WriteString("        <attribute>\n          <name>key</name>\n          <type>String</type>\n        </attribute>\n      </key>\n")
		b.WriteString(xmlAttr(DictAttr{"value", "String"}))
	} else {
		b.WriteString("    <layout>\n      <hashed/>\n    </layout>\n    <structure>\n      <id>\n        <name>id</name>\n      </id>\n")
		for _, a := range d.Attrs {
			b.WriteString(xmlAttr(a))
		}
	}
	b.WriteString("    </structure>\n  </dictionary>\n</yandex>\n")
	return []byte(b.String())
}

func xmlAttr(a DictAttr) string {
	null := "0"
	if a.Type == "String" {
		null = ""
	}
	return fmt.Sprintf("      <attribute>\n        <name>%s</name>\n        <type>%s</type>\n        <null_value>%s</null_value>\n      </attribute>\n",
		a.Name, a.Type, null)
}
