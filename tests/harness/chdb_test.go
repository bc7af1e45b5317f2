package harness_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weftobs/weft/tests/chdb"
	"github.com/weftobs/weft/tests/harness"
)

func chdbQuery(t *testing.T, conn *chdb.Conn, sql, format string) string {
	t.Helper()
	out, err := conn.Query(sql, format)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return string(out)
}

func chdbExec(t *testing.T, conn *chdb.Conn, sql string) {
	t.Helper()
	if err := conn.Exec(sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestChDBIsOneConnection(t *testing.T) {
	a, b := harness.ChDB(t), harness.ChDB(t)
	if a != b {
		t.Fatalf("ChDB returned two connections")
	}
	if got := chdbQuery(t, a, "SELECT version()", "TSV"); !strings.HasPrefix(got, "26.5") {
		t.Fatalf("SELECT version() = %q, want 26.5.*", got)
	}
}

func TestChDBDatabaseIsDropped(t *testing.T) {
	var db string
	t.Run("inner", func(t *testing.T) {
		var conn *chdb.Conn
		conn, db = harness.ChDBDatabase(t)
		chdbExec(t, conn, "CREATE TABLE "+db+".t (n UInt8) ENGINE = MergeTree ORDER BY n")
		if got := chdbQuery(t, conn, "SELECT count() FROM system.tables WHERE database = '"+db+"'", "TSV"); got != "1\n" {
			t.Fatalf("tables in %s: %q", db, got)
		}
	})
	got := chdbQuery(t, harness.ChDB(t), "EXISTS DATABASE "+db, "TSV")
	if got != "0\n" {
		t.Fatalf("database %s still exists after its test ended", db)
	}
	_, other := harness.ChDBDatabase(t)
	if other == db {
		t.Fatalf("database name %s used twice", db)
	}
}

// TestChDBModernTable uses what ClickHouse 18.16 lacks and the exporter's DDL
// needs: DateTime64(9) with a codec chain, Map(LowCardinality(String), String),
// IPv4 and a TTL, and reads the values back exactly.
func TestChDBModernTable(t *testing.T) {
	conn, db := harness.ChDBDatabase(t)
	chdbExec(t, conn, `CREATE TABLE `+db+`.logs (
		ts DateTime64(9) CODEC(Delta, ZSTD(1)),
		attrs Map(LowCardinality(String), String),
		ip IPv4,
		body String
	) ENGINE = MergeTree
	ORDER BY ts
	TTL toDateTime(ts) + INTERVAL 30 DAY`)

	got := chdbQuery(t, conn, `SELECT name, type, compression_codec FROM system.columns
		WHERE database = '`+db+`' AND table = 'logs' ORDER BY position`, "TSV")
	want := "ts\tDateTime64(9)\tCODEC(Delta(8), ZSTD(1))\n" +
		"attrs\tMap(LowCardinality(String), String)\t\n" +
		"ip\tIPv4\t\n" +
		"body\tString\t\n"
	if got != want {
		t.Errorf("system.columns:\ngot  %q\nwant %q", got, want)
	}
	if ddl := chdbQuery(t, conn, "SHOW CREATE TABLE "+db+".logs", "TSVRaw"); !strings.Contains(ddl, "TTL toDateTime(ts) + toIntervalDay(30)") {
		t.Errorf("SHOW CREATE TABLE has no TTL:\n%s", ddl)
	}

	// Nanosecond timestamps, written and read as integers so that the
	// time zone of the machine plays no part. (ClickHouse 26 writes 64-bit
	// integers in JSON as numbers, not strings.)
	now := time.Now().UnixNano()
	type row struct {
		TS    int64             `json:"ts"`
		Attrs map[string]string `json:"attrs"`
		IP    string            `json:"ip"`
		Body  string            `json:"body"`
	}
	rows := []row{
		{now - 2, map[string]string{"service.name": "checkout", "host": "a"}, "10.1.2.3", "plain"},
		{now - 1, map[string]string{}, "0.0.0.0", "quote ' backslash \\ tab \t newline \n"},
		{now, map[string]string{"unicode": "héllo, 世界"}, "255.255.255.255", ""},
	}
	// A row that expired long ago, which the TTL must remove.
	expired := row{now - int64(60*24*time.Hour), map[string]string{"old": "yes"}, "192.168.0.1", "expired"}

	var values []string
	for _, r := range append(rows, expired) {
		var kv []string
		for k, v := range r.Attrs {
			kv = append(kv, chdbQuote(k), chdbQuote(v))
		}
		values = append(values, fmt.Sprintf("(fromUnixTimestamp64Nano(%d), map(%s), toIPv4(%s), %s)",
			r.TS, strings.Join(kv, ", "), chdbQuote(r.IP), chdbQuote(r.Body)))
	}
	chdbExec(t, conn, "INSERT INTO "+db+".logs (ts, attrs, ip, body) VALUES "+strings.Join(values, ", "))
	// Merging applies the TTL.
	chdbExec(t, conn, "OPTIMIZE TABLE "+db+".logs FINAL")

	out := chdbQuery(t, conn, "SELECT toUnixTimestamp64Nano(ts) AS ts, attrs, ip, body FROM "+db+".logs ORDER BY ts", "JSONEachRow")
	var read []row
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var r row
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("%v in %q", err, line)
		}
		read = append(read, r)
	}
	if !reflect.DeepEqual(read, rows) {
		t.Errorf("read back:\ngot  %+v\nwant %+v", read, rows)
	}

	// The same rows as text, which is what a TSV reader of the table sees.
	tsv := chdbQuery(t, conn, "SELECT ip, attrs['service.name'], length(body) FROM "+db+".logs ORDER BY ts", "TSV")
	if want := fmt.Sprintf("10.1.2.3\tcheckout\t5\n0.0.0.0\t\t%d\n255.255.255.255\t\t0\n", len(rows[1].Body)); tsv != want {
		t.Errorf("TSV: got %q, want %q", tsv, want)
	}
}

// chdbQuote returns s as a ClickHouse string literal.
func chdbQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\t", `\t`, "\n", `\n`)
	return "'" + r.Replace(s) + "'"
}

// TestChDBPostgreSQLDictionary creates a table in the machine's PostgreSQL
// and a dictionary over it with CREATE DICTIONARY DDL, as the exporter will
// for its lookups.
func TestChDBPostgreSQLDictionary(t *testing.T) {
	conn, db := harness.ChDBDatabase(t)
	table := fmt.Sprintf("weft_chdb_dict_%d_%d", os.Getpid(), time.Now().UnixNano())
	chdbPsql(t, fmt.Sprintf(`CREATE TABLE %s (id bigint PRIMARY KEY, name text NOT NULL);
		INSERT INTO %[1]s VALUES (1, 'checkout'), (2, 'payment'), (3, 'héllo ''quoted''');`, table))
	t.Cleanup(func() { chdbPsql(t, "DROP TABLE IF EXISTS "+table) })

	chdbExec(t, conn, `CREATE DICTIONARY `+db+`.services (id UInt64, name String DEFAULT 'unknown')
		PRIMARY KEY id
		SOURCE(POSTGRESQL(HOST '127.0.0.1' PORT 5432 USER 'postgres' PASSWORD '' DB 'test' TABLE '`+table+`'
			INVALIDATE_QUERY 'SELECT count(*) FROM `+table+`'))
		LAYOUT(FLAT())
		LIFETIME(MIN 0 MAX 0)`)

	got := chdbQuery(t, conn, `SELECT id, dictGet('`+db+`.services', 'name', id), dictHas('`+db+`.services', id)
		FROM (SELECT arrayJoin([1, 2, 3, 4]) :: UInt64 AS id) ORDER BY id`, "TSV")
	// TSV escapes the quotes.
	want := "1\tcheckout\t1\n2\tpayment\t1\n3\théllo \\'quoted\\'\t1\n4\tunknown\t0\n"
	if got != want {
		t.Errorf("dictGet:\ngot  %q\nwant %q", got, want)
	}
	status := chdbQuery(t, conn, "SELECT status, element_count FROM system.dictionaries WHERE database = '"+db+"' AND name = 'services'", "TSV")
	if status != "LOADED\t3\n" {
		t.Errorf("system.dictionaries: %q", status)
	}
}

// chdbPsql runs SQL in the machine's PostgreSQL database test.
func chdbPsql(t *testing.T, sql string) {
	t.Helper()
	cmd := exec.Command("psql", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-d", "test",
		"-v", "ON_ERROR_STOP=1", "-q", "-c", sql)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("psql: %v\n%s\nPostgreSQL must accept trust logins on 127.0.0.1:5432 (database test)", err, out)
	}
}
