// Package wasmplugintest builds Go Wasm plugins for tests, as `make plugins`
// does: plugins are built from source by the tests, never committed.
package wasmplugintest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Build builds the Go plugin package in dir (a directory, relative to the
// test's package or absolute) with GOOS=wasip1 GOARCH=wasm
// -buildmode=c-shared into outDir and returns the .wasm file's path. A
// missing go toolchain fails the test: the plugins are part of what is
// tested.
func Build(tb testing.TB, dir, outDir string) string {
	tb.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		tb.Fatalf("the go toolchain is needed to build test plugins: %v", err)
	}
	out := filepath.Join(outDir, filepath.Base(dir)+".wasm")
	cmd := exec.Command(goTool, "build", "-buildmode=c-shared", "-o", out, dir)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building plugin %s: %v\n%s", dir, err, msg)
	}
	return out
}
