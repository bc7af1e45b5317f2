// Package harness starts the real dependencies that Weft's integration and
// end-to-end tests run against: ClickHouse, PostgreSQL, MariaDB, chDB, etcd
// with a kube-apiserver, the Pinpoint Node agent and weftcol itself.
//
// Everything listens on loopback, on free ports, with its files in the test's
// temporary directory, and is stopped when the test ends. What is missing on
// the machine is installed on first use (Debian packages, npm packages, Go
// modules), once, under a lock, into the cache directory (WEFT_CACHE, default
// ~/.cache/weft) outside the repository. When something cannot be installed
// the test fails with a message that says what to install: a missing
// dependency is never a silent skip.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// CacheDir is where installed dependencies are kept between runs.
func CacheDir() string {
	if d := os.Getenv("WEFT_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "weft-cache")
	}
	return filepath.Join(home, ".cache", "weft")
}

// RepoRoot is the root of the Weft repository (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// withInstallLock runs fn while holding an exclusive file lock named name in
// the cache directory, so that test binaries running in parallel install a
// dependency once.
func withInstallLock(name string, fn func() error) error {
	dir := CacheDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, name+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:errcheck
	return fn()
}

// ensureDebian makes sure the named programs exist, installing the Debian
// packages that provide them when they do not.
func ensureDebian(t testing.TB, programs []string, packages ...string) {
	t.Helper()
	missing := func() []string {
		var m []string
		for _, p := range programs {
			if _, err := exec.LookPath(p); err != nil {
				m = append(m, p)
			}
		}
		return m
	}
	if len(missing()) == 0 {
		return
	}
	err := withInstallLock("apt", func() error {
		if len(missing()) == 0 {
			return nil
		}
		if out, err := run(10*time.Minute, nil, "apt-get", "update"); err != nil {
			return fmt.Errorf("apt-get update: %w\n%s", err, out)
		}
		args := append([]string{"install", "-y", "--no-install-recommends"}, packages...)
		env := []string{"DEBIAN_FRONTEND=noninteractive"}
		if out, err := run(15*time.Minute, env, "apt-get", args...); err != nil {
			return fmt.Errorf("apt-get install: %w\n%s", err, out)
		}
		return nil
	})
	if m := missing(); err != nil || len(m) > 0 {
		t.Fatalf("missing %v: install the Debian packages %v (apt-get install -y %s): %v",
			m, packages, strings.Join(packages, " "), err)
	}
}

// run runs a command to completion and returns its combined output.
func run(timeout time.Duration, env []string, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("no free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitFor polls cond until it returns nil or timeout passes, then fails the
// test with the last error.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatalf("%s not ready after %s: %v", what, timeout, err)
	}
}

func poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	delay := 20 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(delay)
		if delay < 500*time.Millisecond {
			delay *= 2
		}
	}
}

// Process is a child process started for a test. Its output goes to LogPath.
type Process struct {
	Name    string
	LogPath string

	cmd  *exec.Cmd
	done chan struct{}
	err  error
	once sync.Once
}

// StartProcess starts a program whose output goes to a log file in dir and
// registers a cleanup that stops it. The process gets its own process group
// so that its children are stopped with it.
func StartProcess(t testing.TB, dir, name string, env []string, program string, args ...string) *Process {
	t.Helper()
	p, err := startProcess(dir, name, env, program, args...)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := p.Stop(10 * time.Second); err != nil {
			t.Logf("stop %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("%s log (%s):\n%s", name, p.LogPath, tail(p.LogPath, 60))
		}
	})
	return p
}

func startProcess(dir, name string, env []string, program string, args ...string) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(program, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Signal sends sig to the process group.
func (p *Process) Signal(sig syscall.Signal) error {
	return syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Stop asks the process group to end (SIGTERM) and kills it after grace.
// Stopping a stopped process is a no-op.
func (p *Process) Stop(grace time.Duration) error {
	var err error
	p.once.Do(func() {
		if exited, _ := p.Exited(); exited {
			return
		}
		_ = p.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = p.Signal(syscall.SIGKILL)
			<-p.done
			err = fmt.Errorf("did not stop within %s, killed", grace)
		}
	})
	return err
}

// Wait waits for the process to end by itself.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return errors.New("still running")
	}
}

// Log returns what the process has written so far.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// dialable reports whether something accepts TCP connections at addr.
func dialable(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}
