package wasmplugin

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/wasmplugin/wasmplugintest"
)

// Plugins are built from source by the tests, never committed: buildDir is a
// temporary directory for the whole test binary (builds take seconds, so
// each plugin is built once and shared by the tests that load it).
var (
	buildDir  string
	buildMu   sync.Mutex
	buildDone = map[string]string{}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wasmplugin-test-")
	if err != nil {
		panic(err)
	}
	buildDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildPlugin builds the Go plugin in ./<pkg> (relative to this package)
// once per test binary and returns its path.
func buildPlugin(tb testing.TB, pkg string) string {
	tb.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if out, ok := buildDone[pkg]; ok {
		return out
	}
	out := wasmplugintest.Build(tb, "./"+pkg, buildDir)
	buildDone[pkg] = out
	return out
}

func loadPlugin(tb testing.TB, pkg string, opts Options) *Plugin {
	tb.Helper()
	if opts.Timeout == 0 {
		// Tests that are not about the deadline must not trip it on a
		// loaded 2-core machine or under -race, where a Go plugin printing
		// a panic can take tens of milliseconds.
		opts.Timeout = 5 * time.Second
	}
	p, err := Load(context.Background(), buildPlugin(tb, pkg), opts)
	if err != nil {
		tb.Fatalf("Load(%s): %v", pkg, err)
	}
	tb.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// record makes a Record from a span name and string attribute maps; a value
// of type []string becomes a slice attribute.
func record(name string, res, span map[string]any) Record {
	fill := func(m pcommon.Map, attrs map[string]any) {
		for k, v := range attrs {
			switch v := v.(type) {
			case string:
				m.PutStr(k, v)
			case []string:
				s := m.PutEmptySlice(k)
				for _, e := range v {
					s.AppendEmpty().SetStr(e)
				}
			case int:
				m.PutInt(k, int64(v))
			}
		}
	}
	r := Record{Name: name, Kind: ptrace.SpanKindServer, Resource: pcommon.NewMap(), Attributes: pcommon.NewMap()}
	fill(r.Resource, res)
	fill(r.Attributes, span)
	return r
}

func kvMap(kvs []KV) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}
