package harness

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql" // registers the "mysql" database/sql driver
	"github.com/jackc/pgx/v5"
)

// The machine's own PostgreSQL and MariaDB: started before every session and
// CI run on this kind of machine (trust auth / root without password on
// loopback). Tests never share a database: each gets a fresh one.
const (
	postgresAddr = "127.0.0.1:5432"
	mariadbAddr  = "127.0.0.1:3306"
)

// Database is a fresh database created for one test and dropped after it.
type Database struct {
	// Name of the database.
	Name string
	// Host and Port of the server (loopback).
	Host string
	Port int
	// User to connect as; the password is empty.
	User string
	// DSN connects to the database: a PostgreSQL URL for pgx, or a
	// go-sql-driver/mysql DSN.
	DSN string
}

// Postgres creates a fresh database in the machine's PostgreSQL, starting the
// server first if it is stopped, and drops it when the test ends.
func Postgres(t testing.TB) *Database {
	t.Helper()
	ensurePostgres(t)
	name := uniqueName("weft_test")
	admin := "postgres://postgres@" + postgresAddr + "/postgres?sslmode=disable"
	pgExec(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("postgres cleanup: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("postgres cleanup: %v", err)
		}
	})
	return &Database{
		Name: name, Host: "127.0.0.1", Port: 5432, User: "postgres",
		DSN: "postgres://postgres@" + postgresAddr + "/" + name + "?sslmode=disable",
	}
}

// MariaDB creates a fresh database in the machine's MariaDB, starting the
// server first if it is stopped, and drops it when the test ends.
func MariaDB(t testing.TB) *Database {
	t.Helper()
	ensureMariaDB(t)
	name := uniqueName("weft_test")
	admin, err := sql.Open("mysql", "root@tcp("+mariadbAddr+")/")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("mariadb: create database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", "root@tcp("+mariadbAddr+")/")
		if err != nil {
			t.Logf("mariadb cleanup: %v", err)
			return
		}
		defer db.Close()
		if _, err := db.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Logf("mariadb cleanup: %v", err)
		}
	})
	return &Database{
		Name: name, Host: "127.0.0.1", Port: 3306, User: "root",
		DSN: "root@tcp(" + mariadbAddr + ")/" + name + "?parseTime=true",
	}
}

func ensurePostgres(t testing.TB) {
	t.Helper()
	if dialable(postgresAddr) == nil {
		return
	}
	ensureDebian(t, []string{"pg_ctlcluster"}, "postgresql")
	versions, _ := os.ReadDir("/etc/postgresql")
	if len(versions) == 0 {
		t.Fatal("postgres: no cluster in /etc/postgresql: install the Debian package postgresql")
	}
	names := make([]string, 0, len(versions))
	for _, v := range versions {
		names = append(names, v.Name())
	}
	sort.Strings(names)
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", names[len(names)-1], "main", "start").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "already running") {
		t.Fatalf("postgres: start: %v\n%s", err, out)
	}
	WaitFor(t, 30*time.Second, "postgres", func() error { return dialable(postgresAddr) })
}

func ensureMariaDB(t testing.TB) {
	t.Helper()
	if dialable(mariadbAddr) == nil {
		return
	}
	ensureDebian(t, []string{"mariadbd"}, "mariadb-server")
	out, err := exec.Command("start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb: start: %v\n%s", err, out)
	}
	WaitFor(t, 60*time.Second, "mariadb", func() error { return dialable(mariadbAddr) })
}

func pgExec(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("postgres: %s: %v", sql, err)
	}
}

// uniqueName is prefix plus random hex: valid as an unquoted identifier in
// PostgreSQL, MySQL and ClickHouse.
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s_%s", prefix, hex.EncodeToString(b))
}
