package chdb_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/weftobs/weft/tests/chdb"
	"github.com/weftobs/weft/tests/harness"
)

// These tests open their own connection rather than harness.ChDB's, because
// they close and reopen it. chDB allows one connection per process, so the
// tests share it through conn and none of them is parallel.
var shared struct {
	conn *chdb.Conn
	dirs []string
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.conn != nil {
		shared.conn.Close()
	}
	for _, d := range shared.dirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

// conn returns the test binary's connection, opening it if needed.
func conn(t *testing.T) *chdb.Conn {
	t.Helper()
	if shared.conn != nil {
		return shared.conn
	}
	lib := harness.ChDBLibrary(t)
	dir, err := os.MkdirTemp("", "weft-chdb-test-")
	if err != nil {
		t.Fatal(err)
	}
	shared.dirs = append(shared.dirs, dir)
	c, err := chdb.Open(lib, dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	shared.conn = c
	return c
}

func query(t *testing.T, c *chdb.Conn, sql, format string) string {
	t.Helper()
	out, err := c.Query(sql, format)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return string(out)
}

func TestChDBVersion(t *testing.T) {
	got := query(t, conn(t), "SELECT version()", "TSV")
	if !strings.HasPrefix(got, "26.5") {
		t.Fatalf("SELECT version() = %q, want 26.5.*", got)
	}
}

func TestChDBFormats(t *testing.T) {
	c := conn(t)
	for _, tc := range []struct{ format, want string }{
		{"TSV", "1\ta\\tb\n"},
		{"CSV", "1,\"a\tb\"\n"},
		{"JSONEachRow", `{"n":1,"s":"a\tb"}` + "\n"},
	} {
		got := query(t, c, `SELECT 1 AS n, 'a\tb' AS s`, tc.format)
		if got != tc.want {
			t.Errorf("format %s: got %q, want %q", tc.format, got, tc.want)
		}
	}
	// A statement without output gives an empty result, not an error.
	if got := query(t, c, "SELECT 1 WHERE 0", "TSV"); got != "" {
		t.Errorf("empty result: got %q", got)
	}
	if err := c.Exec("SELECT 1"); err != nil {
		t.Errorf("Exec: %v", err)
	}
}

func TestChDBErrors(t *testing.T) {
	c := conn(t)
	for _, tc := range []struct{ sql, want string }{
		{"SELECT * FROM no_such_db.no_such_table", "UNKNOWN_DATABASE"},
		{"SELEC 1", "Syntax error"},
		{"SELECT throwIf(1, 'weft says no')", "weft says no"},
		{"CREATE TABLE default.bad (ts DateTime64(9) CODEC(NoSuchCodec)) ENGINE = MergeTree ORDER BY ts", "NoSuchCodec"},
	} {
		_, err := c.Query(tc.sql, "TSV")
		var cerr *chdb.Error
		if !errors.As(err, &cerr) {
			t.Errorf("%s: got error %v (%T), want a *chdb.Error", tc.sql, err, err)
			continue
		}
		if !strings.Contains(cerr.Message, tc.want) || !strings.Contains(cerr.Message, "DB::Exception") {
			t.Errorf("%s: error %q does not contain ClickHouse's %q", tc.sql, cerr.Message, tc.want)
		}
	}
	// The engine survives its errors.
	if got := query(t, c, "SELECT 40 + 2", "TSV"); got != "42\n" {
		t.Fatalf("after errors: got %q", got)
	}
	// A NUL would end the C string early and run a different statement.
	if _, err := c.Query("SELECT 1\x00; DROP DATABASE default", "TSV"); err == nil {
		t.Errorf("a statement with a NUL byte was accepted")
	}
}

func TestChDBConcurrentQueries(t *testing.T) {
	c := conn(t)
	const goroutines, queries = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*queries)
	for g := range goroutines {
		wg.Go(func() {
			for q := range queries {
				n := 1000 + g*queries + q
				out, err := c.Query(fmt.Sprintf("SELECT sum(number), count() FROM numbers(%d)", n), "TSV")
				if err != nil {
					errs <- err
					continue
				}
				if want := fmt.Sprintf("%d\t%d\n", n*(n-1)/2, n); string(out) != want {
					errs <- fmt.Errorf("numbers(%d): got %q, want %q", n, out, want)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestChDBOneConnectionPerProcess(t *testing.T) {
	c := conn(t)
	dir := t.TempDir()
	second, err := chdb.Open(harness.ChDBLibrary(t), dir)
	if err == nil {
		second.Close()
		t.Fatalf("a second Open succeeded while a connection is open")
	}
	if !strings.Contains(err.Error(), "one per process") {
		t.Errorf("second Open: %v", err)
	}
	// The refused Open did not disturb the open connection.
	if got := query(t, c, "SELECT 1", "TSV"); got != "1\n" {
		t.Errorf("after refused Open: got %q", got)
	}
}

func TestChDBCloseAndReopen(t *testing.T) {
	c := conn(t)
	if err := c.Exec("CREATE TABLE default.before_close (n UInt8) ENGINE = MergeTree ORDER BY n"); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	shared.conn = nil
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.Query("SELECT 1", "TSV"); !errors.Is(err, chdb.ErrClosed) {
		t.Errorf("Query after Close: got %v, want ErrClosed", err)
	}

	// A new connection, with a new data directory, starts empty.
	c = conn(t)
	if got := query(t, c, "EXISTS TABLE default.before_close", "TSV"); got != "0\n" {
		t.Errorf("table of the closed connection's directory: EXISTS = %q", got)
	}
	if got := query(t, c, "SELECT 2", "TSV"); got != "2\n" {
		t.Errorf("after reopen: got %q", got)
	}
}

// TestChDBKeepsGoSignalHandlers checks that the engine's own handlers for
// SIGSEGV and friends, installed when it connects, were replaced by the Go
// runtime's again: otherwise a nil dereference would not become a panic.
func TestChDBKeepsGoSignalHandlers(t *testing.T) {
	c := conn(t)
	query(t, c, "SELECT count() FROM system.tables", "TSV")

	// The Go runtime installs one handler for every signal it handles, and
	// chDB leaves SIGURG alone, so SIGURG's handler is the Go runtime's.
	goHandler := handler(t, syscall.SIGURG)
	for _, sig := range []syscall.Signal{syscall.SIGSEGV, syscall.SIGBUS, syscall.SIGILL,
		syscall.SIGFPE, syscall.SIGABRT, syscall.SIGTRAP, syscall.SIGSYS} {
		if h := handler(t, sig); h != goHandler {
			t.Errorf("%v: handler %#x, want the Go runtime's %#x", sig, h, goHandler)
		}
	}
	if t.Failed() {
		// chDB's SIGSEGV handler would report a crash and then sleep for
		// minutes instead of letting the dereference below panic.
		return
	}

	defer func() {
		if r := recover(); r == nil {
			t.Errorf("nil dereference did not panic")
		}
	}()
	var p *struct{ n int }
	t.Log(p.n)
}

// handler returns the address of the handler of sig, read with the raw
// rt_sigaction system call as the Go runtime does.
func handler(t *testing.T, sig syscall.Signal) uintptr {
	t.Helper()
	var act [4]uint64 // handler, flags, restorer, mask
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig), 0,
		uintptr(unsafe.Pointer(&act)), 8, 0, 0)
	if errno != 0 {
		t.Fatalf("rt_sigaction(%v): %v", sig, errno)
	}
	return uintptr(act[0])
}
