package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestModernDDL(t *testing.T) {
	var out bytes.Buffer
	err := run([]string{"--version", "24.8", "--database", "obs", "--ttl", "720h", "--dict-driver", "postgres",
		"--dict-host", "meta", "--dict-port", "5432", "--dict-user", "ch", "--dict-database", "weft"},
		env(map[string]string{"WEFT_DICT_PASSWORD": "pw'1"}), &out)
	require.NoError(t, err)
	s := out.String()
	assert.True(t, strings.HasPrefix(s, "-- Weft smart_clickhouse schema version 2 for ClickHouse 24.8\n\nCREATE DATABASE IF NOT EXISTS obs;\n"), s[:200])
	assert.Contains(t, s, "TTL time + INTERVAL 2592000 SECOND")
	assert.Contains(t, s, `PASSWORD 'pw\'1'`)
	assert.Contains(t, s, "CREATE VIEW IF NOT EXISTS obs.spans_view AS")
	assert.NotContains(t, s, "SET allow_experimental")
}

func TestLegacyDDLWithXML(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := run([]string{"--version", "18.16", "--dict-driver", "mysql", "--dict-host", "meta", "--dict-port", "3306",
		"--dict-user", "ch", "--dict-database", "weft", "--xml-dir", dir}, env(nil), &out)
	require.NoError(t, err)
	s := out.String()
	assert.Contains(t, s, "SET allow_experimental_low_cardinality_type = 1;")
	assert.Contains(t, s, "-- wrote "+filepath.Join(dir, "weft_pod_map_dictionary.xml"))
	assert.Less(t, strings.Index(s, "-- wrote"), strings.Index(s, "CREATE VIEW"), "views after the dictionaries are in place")
	b, err := os.ReadFile(filepath.Join(dir, "weft_pod_map_dictionary.xml"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "<name>weft_pod_map</name>")
}

func TestRefusals(t *testing.T) {
	var out bytes.Buffer
	assert.ErrorContains(t, run([]string{"--database", "x;y"}, env(nil), &out), "plain identifier")
	assert.ErrorContains(t, run([]string{"--version", "18.16", "--dict-driver", "postgres"}, env(nil), &out), "ODBC")
	assert.ErrorContains(t, run([]string{"--version", "latest"}, env(nil), &out), "major.minor")
}
