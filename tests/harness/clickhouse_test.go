package harness

import (
	"strings"
	"testing"
)

func TestClickHouse(t *testing.T) {
	ch := StartClickHouse(t)
	if v := ch.Version(t); !strings.HasPrefix(v, "18.16.") {
		t.Fatalf("version = %q, want the Debian server 18.16.x", v)
	}

	ch.MustQuery(t, "CREATE TABLE default.t (d Date, n UInt32, s LowCardinality(String)) ENGINE = MergeTree(d, n, 8192)")
	ch.MustQuery(t, "INSERT INTO default.t VALUES ('2026-11-21', 1, 'a'), ('2026-11-21', 2, 'b')")
	if got := ch.MustQuery(t, "SELECT n, s FROM default.t ORDER BY n"); got != "1\ta\n2\tb\n" {
		t.Fatalf("rows = %q", got)
	}
	if _, err := ch.Query("SELECT no_such_column FROM default.t"); err == nil || !strings.Contains(err.Error(), "no_such_column") {
		t.Fatalf("bad query error = %v, want one naming the column", err)
	}

	// Data survives a restart on the same ports.
	ch.Stop(t)
	if _, err := ch.Query("SELECT 1"); err == nil {
		t.Fatal("server still answers after Stop")
	}
	ch.Start(t)
	if got := ch.MustQuery(t, "SELECT count() FROM default.t"); got != "2\n" {
		t.Fatalf("count after restart = %q", got)
	}

	// The native port answers clickhouse-client.
	out, err := ch.Client("--query", "SELECT 40 + 2").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "42" {
		t.Fatalf("clickhouse-client: %v: %s", err, out)
	}
}

// Two instances run side by side without sharing anything.
func TestClickHouseInstancesAreSeparate(t *testing.T) {
	a, b := StartClickHouse(t), StartClickHouse(t)
	a.MustQuery(t, "CREATE DATABASE only_in_a")
	if got := b.MustQuery(t, "SELECT count() FROM system.databases WHERE name = 'only_in_a'"); got != "0\n" {
		t.Fatalf("database leaked into the second instance: %q", got)
	}
}
