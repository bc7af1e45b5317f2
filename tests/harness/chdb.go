package harness

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weftobs/weft/tests/chdb"
)

// chdbVersion is the chDB release whose library the tests use. Its engine is
// ClickHouse 26.5 (SELECT version() reports 26.5.1.1).
const chdbVersion = "26.5.3"

// chdbPackage is the npm package that ships libchdb.so for x86-64 Linux with
// glibc. npm is the only registry the test machines reach that has it.
const chdbPackage = "@chdb/lib-linux-x64-gnu"

// ChDBLibrary returns the path of libchdb.so, installing it on first use into
// CacheDir()/chdb/<version>/ (npm pack of the package, then only the library
// is unpacked from the tarball: it is 560 MB, the tarball 170 MB).
func ChDBLibrary(t testing.TB) string {
	t.Helper()
	lib := filepath.Join(CacheDir(), "chdb", chdbVersion, "libchdb.so")
	if _, err := os.Stat(lib); err == nil {
		return lib
	}
	ensureDebian(t, []string{"npm"}, "nodejs", "npm")
	err := withInstallLock("chdb", func() error {
		// Another test binary may have installed it while we waited.
		if _, err := os.Stat(lib); err == nil {
			return nil
		}
		return chdbInstall(lib)
	})
	if err != nil {
		t.Fatalf("install chDB %s: %v\n"+
			"chDB comes from npm: install Node.js and npm (apt-get install -y nodejs npm), or put the library in place by hand: "+
			"npm pack %s@%s && tar -xzf chdb-lib-linux-x64-gnu-%s.tgz package/libchdb.so && mkdir -p %s && mv package/libchdb.so %s",
			chdbVersion, err, chdbPackage, chdbVersion, chdbVersion, filepath.Dir(lib), lib)
	}
	return lib
}

// chdbInstall downloads the npm package into a temporary directory beside lib
// and moves the library into place with a rename, so that lib either does not
// exist or is complete. The caller holds the install lock.
func chdbInstall(lib string) error {
	parent := filepath.Dir(filepath.Dir(lib))
	if err := os.MkdirAll(filepath.Dir(lib), 0o755); err != nil {
		return err
	}
	// Under the lock, any install directory left behind is from an
	// interrupted install: remove it rather than let 700 MB pile up.
	if stale, _ := filepath.Glob(filepath.Join(parent, "install-*")); len(stale) > 0 {
		for _, d := range stale {
			os.RemoveAll(d)
		}
	}
	tmp, err := os.MkdirTemp(parent, "install-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	spec := chdbPackage + "@" + chdbVersion
	out, err := run(30*time.Minute, nil, "npm", "pack", "--silent", "--pack-destination", tmp, spec)
	if err != nil {
		return fmt.Errorf("npm pack %s: %w\n%s", spec, err, out)
	}
	tarballs, _ := filepath.Glob(filepath.Join(tmp, "*.tgz"))
	if len(tarballs) != 1 {
		return fmt.Errorf("npm pack %s: expected one tarball in %s, found %d\n%s", spec, tmp, len(tarballs), out)
	}
	unpacked := filepath.Join(tmp, "libchdb.so")
	if err := chdbExtract(tarballs[0], "package/libchdb.so", unpacked); err != nil {
		return err
	}
	return os.Rename(unpacked, lib)
}

// chdbExtract copies the regular file called name out of the gzipped tarball
// tgz into the new file dst.
func chdbExtract(tgz, name, dst string) (err error) {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", tgz, err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s has no %s", tgz, name)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", tgz, err)
		}
		if hdr.Name != name || hdr.Typeflag != tar.TypeReg {
			continue
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
		if err != nil {
			return err
		}
		n, err := io.Copy(out, tr)
		if err == nil && n != hdr.Size {
			err = fmt.Errorf("%s: %s is truncated (%d of %d bytes)", tgz, name, n, hdr.Size)
		}
		if err == nil {
			// The rename that follows must not publish a file whose
			// contents are still only in the page cache.
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	}
}

// chdbConn is the process-wide chDB connection (chDB allows one per process).
var chdbConn struct {
	once sync.Once
	conn *chdb.Conn
	err  error
	// lock is kept open, and so locked, for the life of the process: it marks
	// the data directory as in use (see chdbDataDir). It lives in a package
	// variable so that no finalizer closes it.
	lock *os.File
}

// ChDB returns the process's chDB connection: a real ClickHouse 26.5 engine
// running inside the test binary. It is opened on first use, with its data
// in a new directory under TMPDIR, and shared by every test of the binary.
//
// The connection is never closed: chDB allows one per process and the
// engine's threads live until the process exits. Its data directory is
// removed by the first ChDB call of a later test binary, once no process
// holds it. Tests should keep to their own database (see ChDBDatabase).
func ChDB(t testing.TB) *chdb.Conn {
	t.Helper()
	lib := ChDBLibrary(t)
	chdbConn.once.Do(func() {
		dir, err := chdbDataDir()
		if err != nil {
			chdbConn.err = err
			return
		}
		chdbConn.conn, chdbConn.err = chdb.Open(lib, filepath.Join(dir, "data"))
	})
	if chdbConn.err != nil {
		t.Fatalf("open chDB: %v", chdbConn.err)
	}
	return chdbConn.conn
}

// chdbDataDir creates this process's chDB directory, TMPDIR/weft-chdb-*,
// and holds a lock on the file owner.lock in it until the process exits.
// Since the connection is never closed, nothing removes the directory at
// exit; instead, directories whose owner.lock nobody holds are left over from
// ended processes and are removed here.
func chdbDataDir() (string, error) {
	var dir string
	err := withInstallLock("chdb-data", func() error {
		// Creating and sweeping under one lock means a sweep never sees a
		// directory whose owner has not locked it yet.
		old, _ := filepath.Glob(filepath.Join(os.TempDir(), "weft-chdb-*"))
		for _, d := range old {
			if !chdbInUse(d) {
				os.RemoveAll(d)
			}
		}
		var err error
		dir, err = os.MkdirTemp("", "weft-chdb-")
		if err != nil {
			return err
		}
		f, err := os.OpenFile(filepath.Join(dir, "owner.lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err == nil {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			if err != nil {
				f.Close()
			}
		}
		if err != nil {
			os.RemoveAll(dir)
			return err
		}
		chdbConn.lock = f
		return nil
	})
	return dir, err
}

// chdbInUse reports whether a live process holds the lock of the chDB
// directory dir.
func chdbInUse(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "owner.lock"))
	if err != nil {
		// No lock file: the owner ended before it could make one.
		return !errors.Is(err, os.ErrNotExist)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck
	return false
}

// chdbDatabases numbers the databases made by ChDBDatabase. The data
// directory belongs to this process, so a number is unique.
var chdbDatabases atomic.Int64

// ChDBDatabase returns the process's chDB connection and the name of a new,
// empty database for the test, dropped when the test ends. The name is a
// plain identifier that needs no quoting.
func ChDBDatabase(t testing.TB) (conn *chdb.Conn, db string) {
	t.Helper()
	conn = ChDB(t)
	db = fmt.Sprintf("%s_%d", chdbIdentifier(t.Name()), chdbDatabases.Add(1))
	if err := conn.Exec("CREATE DATABASE " + db); err != nil {
		t.Fatalf("create chDB database %s: %v", db, err)
	}
	t.Cleanup(func() {
		// Not DROP ... SYNC: in chDB it waits forever for the catalog's
		// background removal of the tables' data. Without SYNC the names are
		// free at once and the data goes with the data directory.
		if err := conn.Exec("DROP DATABASE IF EXISTS " + db); err != nil {
			t.Errorf("drop chDB database %s: %v", db, err)
		}
	})
	return conn, db
}

// chdbIdentifier turns a test name into a short lower-case identifier,
// so that a leftover database says which test made it.
func chdbIdentifier(name string) string {
	var b strings.Builder
	b.WriteString("t_")
	for _, r := range strings.ToLower(name) {
		if b.Len() >= 40 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
