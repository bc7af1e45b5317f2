// Package chdb is a small binding to chDB, the ClickHouse engine packaged as
// a shared library (libchdb.so), for Weft's tests. It gives them a real,
// modern ClickHouse in the test process: DDL with codecs and TTLs, Map and
// IPv4 columns, CREATE DICTIONARY with PostgreSQL or MySQL sources.
//
// The library is loaded at run time with dlopen (github.com/ebitengine/purego),
// so the tests build without chDB's headers or library, with or without cgo,
// and only the tests that open a connection need the 560 MB library.
//
// The binding uses chDB's connection API from chdb.h:
//
//	chdb_connection *chdb_connect(int argc, char **argv);
//	void chdb_close_conn(chdb_connection *conn);
//	chdb_result *chdb_query(chdb_connection conn, const char *query, const char *format);
//	char *chdb_result_buffer(chdb_result *result);
//	size_t chdb_result_length(chdb_result *result);
//	const char *chdb_result_error(chdb_result *result);
//	void chdb_destroy_query_result(chdb_result *result);
//
// chdb_connect returns a pointer to the connection handle while chdb_query
// takes the handle itself; chdb_close_conn takes the pointer again.
//
// # One connection per process
//
// chDB runs a single engine per process with a single data directory. This
// package therefore allows one open Conn per process: Open fails while
// another Conn is open, and a test binary should open one connection and
// share it (the harness package does). Only one copy of the library can be
// loaded, so every Open in a process must name the same library file.
//
// # Signals
//
// When it connects, the engine installs its own handlers for SIGSEGV,
// SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS and SIGTSTP. Those would
// take the signals away from the Go runtime: a nil pointer dereference in a
// test would become a ClickHouse crash report and a long sleep instead of a
// Go panic. Every call that runs the engine (connect, query, close) is
// therefore bracketed by a snapshot of the standard signals' dispositions
// and a restore of any that changed. The engine's handler for SIGRTMIN
// (which the Go runtime does not use) is left in place. While chdb_connect
// runs, the engine's handlers are briefly in place for the whole process.
package chdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/ebitengine/purego"
)

// ErrClosed is returned by Query and Exec on a closed connection.
var ErrClosed = errors.New("chdb: connection is closed")

// Error is a failure reported by the engine, such as a syntax error or an
// unknown table. Message is ClickHouse's own text, for example
// "Code: 60. DB::Exception: Unknown table expression identifier ... (UNKNOWN_TABLE)".
type Error struct {
	Message string
}

func (e *Error) Error() string { return "chdb: " + e.Message }

// library holds the functions of the loaded libchdb.so.
type library struct {
	path string

	connect       func(argc int32, argv []*byte) *uintptr
	closeConn     func(conn *uintptr)
	query         func(conn uintptr, query, format *byte) uintptr
	resultBuffer  func(result uintptr) *byte
	resultLength  func(result uintptr) uintptr
	resultError   func(result uintptr) *byte
	destroyResult func(result uintptr)
}

var (
	// openMu guards lib and openConn, and so serializes Open and Close.
	openMu sync.Mutex
	// lib is the library loaded by the first Open. It is never unloaded:
	// the engine keeps threads and global state that outlive a connection.
	lib *library
	// openConn is the connection that is open now, if any.
	openConn *Conn
)

// Conn is a connection to the chDB engine. Its methods may be called from
// several goroutines at once; the engine runs one statement at a time per
// connection, so they take turns.
type Conn struct {
	mu     sync.Mutex // serializes calls into chDB and guards handle
	lib    *library
	handle *uintptr // chdb_connection*, nil once closed
	argv   [][]byte // C strings given to chdb_connect, kept in case chDB keeps them
}

// Open loads the chDB library at libPath (once per process) and connects to
// an engine that keeps its databases in dataDir, which is created if needed.
// It fails if another Conn is open in the process.
func Open(libPath, dataDir string) (*Conn, error) {
	openMu.Lock()
	defer openMu.Unlock()
	if openConn != nil {
		return nil, errors.New("chdb: a connection is already open in this process (chDB allows one per process)")
	}
	l, err := load(libPath)
	if err != nil {
		return nil, err
	}
	dataDir, err = filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("chdb: data directory: %w", err)
	}

	c := &Conn{lib: l}
	// argv is what clickhouse-local would get on its command line.
	var cargv []*byte
	for _, a := range []string{"clickhouse", "--path=" + dataDir} {
		s, err := cString(a)
		if err != nil {
			return nil, err
		}
		c.argv = append(c.argv, s)
		cargv = append(cargv, &s[0])
	}
	// Like main's argv, the array ends with a NULL pointer.
	cargv = append(cargv, nil)

	var handle *uintptr
	withSignalsKept(func() {
		handle = l.connect(int32(len(c.argv)), cargv)
	})
	runtime.KeepAlive(cargv)
	if handle == nil || *handle == 0 {
		return nil, fmt.Errorf("chdb: cannot connect with data directory %s", dataDir)
	}
	c.handle = handle
	openConn = c
	return c, nil
}

// load loads the library at path, or returns the one already loaded.
func load(path string) (*library, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if lib != nil {
		if lib.path != path {
			return nil, fmt.Errorf("chdb: %s is already loaded, cannot load %s as well", lib.path, path)
		}
		return lib, nil
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("chdb: library: %w", err)
	}
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("chdb: load %s: %w", path, err)
	}
	l := &library{path: path}
	syms := []struct {
		fn   any
		name string
	}{
		{&l.connect, "chdb_connect"},
		{&l.closeConn, "chdb_close_conn"},
		{&l.query, "chdb_query"},
		{&l.resultBuffer, "chdb_result_buffer"},
		{&l.resultLength, "chdb_result_length"},
		{&l.resultError, "chdb_result_error"},
		{&l.destroyResult, "chdb_destroy_query_result"},
	}
	for _, s := range syms {
		// Look the symbol up first: RegisterLibFunc panics when it is
		// missing, and an old library should be an error, not a crash.
		addr, err := purego.Dlsym(h, s.name)
		if err != nil {
			return nil, fmt.Errorf("chdb: %s has no %s (chDB too old?): %w", path, s.name, err)
		}
		purego.RegisterFunc(s.fn, addr)
	}
	lib = l
	return l, nil
}

// Query runs one SQL statement and returns its output in the named
// ClickHouse output format, such as "TSV", "CSV" or "JSONEachRow". A
// statement the engine rejects returns an *Error with ClickHouse's message.
func (c *Conn) Query(sql, format string) ([]byte, error) {
	csql, err := cString(sql)
	if err != nil {
		return nil, err
	}
	cformat, err := cString(format)
	if err != nil {
		return nil, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handle == nil {
		return nil, ErrClosed
	}
	var res uintptr
	withSignalsKept(func() {
		res = c.lib.query(*c.handle, &csql[0], &cformat[0])
	})
	runtime.KeepAlive(csql)
	runtime.KeepAlive(cformat)
	if res == 0 {
		return nil, &Error{Message: "chdb_query returned no result"}
	}
	defer c.lib.destroyResult(res)

	if msg := c.lib.resultError(res); msg != nil {
		return nil, &Error{Message: goString(msg)}
	}
	n := c.lib.resultLength(res)
	buf := c.lib.resultBuffer(res)
	if n == 0 || buf == nil {
		return []byte{}, nil
	}
	// The buffer belongs to the result, which is destroyed on return.
	return append([]byte(nil), unsafe.Slice(buf, n)...), nil
}

// Exec runs a statement whose output, if any, is not needed, such as DDL or
// an INSERT.
func (c *Conn) Exec(sql string) error {
	_, err := c.Query(sql, "TSV")
	return err
}

// Close closes the connection, after which another may be opened. Closing a
// closed connection does nothing.
func (c *Conn) Close() error {
	openMu.Lock()
	defer openMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.handle == nil {
		return nil
	}
	withSignalsKept(func() {
		c.lib.closeConn(c.handle)
	})
	c.handle = nil
	if openConn == c {
		openConn = nil
	}
	return nil
}

// cString returns s as a NUL-terminated C string. A NUL inside s would cut
// the statement short without anyone noticing, so it is an error.
func cString(s string) ([]byte, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, fmt.Errorf("chdb: string contains a NUL byte: %.40q", s)
	}
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b, nil
}

// goString copies the NUL-terminated C string at p.
func goString(p *byte) string {
	n := 0
	for *(*byte)(unsafe.Add(unsafe.Pointer(p), n)) != 0 {
		n++
	}
	return string(unsafe.Slice(p, n))
}

// kernelSigaction is the kernel's struct sigaction (handler, flags, restorer,
// mask) on 64-bit Linux. It is only saved and written back, never
// interpreted, so its fields need no names.
type kernelSigaction [4]uint64

// withSignalsKept runs fn, a call into chDB, and then puts back the
// disposition of every standard signal (1 to 31) that fn changed, so that
// the Go runtime keeps receiving the signals it depends on. The raw
// rt_sigaction system call is used because it is what the Go runtime itself
// uses, and it saves and restores the kernel's state exactly.
func withSignalsKept(fn func()) {
	var saved [32]kernelSigaction
	var ok [32]bool
	for sig := 1; sig < 32; sig++ {
		ok[sig] = rtSigaction(sig, nil, &saved[sig]) == nil
	}
	fn()
	for sig := 1; sig < 32; sig++ {
		if !ok[sig] || sig == int(syscall.SIGKILL) || sig == int(syscall.SIGSTOP) {
			continue
		}
		var now kernelSigaction
		if rtSigaction(sig, nil, &now) == nil && now != saved[sig] {
			_ = rtSigaction(sig, &saved[sig], nil)
		}
	}
}

func rtSigaction(sig int, act, old *kernelSigaction) error {
	// The last argument is the size of the signal mask: 64 signals, 8 bytes.
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(sig),
		uintptr(unsafe.Pointer(act)), uintptr(unsafe.Pointer(old)), 8, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
