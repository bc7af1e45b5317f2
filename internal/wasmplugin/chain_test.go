package wasmplugin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/weftobs/weft/internal/vocab"
)

// chainSpan is one span with string attributes, in its own Traces.
func chainSpan(attrs map[string]string) (ptrace.Traces, ptrace.Span) {
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("GET /")
	for k, v := range attrs {
		sp.Attributes().PutStr(k, v)
	}
	return td, sp
}

func attrMap(m pcommon.Map) map[string]string {
	out := map[string]string{}
	for k, v := range m.All() {
		out[k] = v.AsString()
	}
	return out
}

// TestChainWritesIDsAndTags: extracted ids are always written, tags only
// with TagsAsAttributes, and an existing attribute is never replaced, also
// not by a later plugin.
func TestChainWritesIDsAndTags(t *testing.T) {
	example := buildPlugin(t, "example")
	cfg := map[string]any{"tags": map[string]any{"x-tenant": "app.tenant", "x-team": "app.team"}}
	in := map[string]string{
		"http.request.header.x-request-id":        "req-1",
		"http.request.header.x-upstream-trace-id": "up-1",
		"http.request.header.x-tenant":            "acme",
		"http.request.header.x-team":              "payments",
		"app.team":                                "from-the-app",
	}
	for _, tc := range []struct {
		name    string
		plugins []PluginConfig
		want    map[string]string // added to in
	}{{
		name:    "ids only",
		plugins: []PluginConfig{{Path: example, Config: cfg}},
		want:    map[string]string{vocab.XRequestID0: "req-1", vocab.UpstreamTraceID: "up-1"},
	}, {
		name:    "ids and tags",
		plugins: []PluginConfig{{Path: example, Config: cfg, TagsAsAttributes: true}},
		want:    map[string]string{vocab.XRequestID0: "req-1", vocab.UpstreamTraceID: "up-1", "app.tenant": "acme"},
	}, {
		name: "the first plugin to write a key wins",
		plugins: []PluginConfig{
			{Path: example, Config: map[string]any{"request_id_headers": []any{"x-team"}}},
			{Path: example, Config: cfg, TagsAsAttributes: true},
		},
		want: map[string]string{vocab.XRequestID0: "payments", vocab.UpstreamTraceID: "up-1", "app.tenant": "acme"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var failed []Failure
			c, err := LoadChain(context.Background(), tc.plugins, WasmConfig{MemoryLimit: 32 << 20, Timeout: 5 * time.Second},
				ChainSettings{Failed: func(_ context.Context, f Failure) { failed = append(failed, f) }})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(context.Background())
			td, sp := chainSpan(in)
			c.Traces(context.Background(), td)
			want := map[string]string{}
			for k, v := range in {
				want[k] = v
			}
			for k, v := range tc.want {
				want[k] = v
			}
			if got := attrMap(sp.Attributes()); !maps.Equal(got, want) {
				t.Errorf("attributes = %v\nwant %v", got, want)
			}
			if len(failed) != 0 {
				t.Errorf("failures: %v", failed)
			}
		})
	}
}

func TestChainFailuresAndLoadErrors(t *testing.T) {
	ctx := context.Background()
	var nilChain *Chain
	nilChain.Traces(ctx, ptrace.NewTraces()) // no plugins: nothing to do
	if err := nilChain.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if c, err := LoadChain(ctx, nil, DefaultWasmConfig(), ChainSettings{}); c != nil || err != nil {
		t.Fatalf("no plugins: %v, %v; want nil, nil", c, err)
	}

	missing := filepath.Join(t.TempDir(), "missing.wasm")
	_, err := LoadChain(ctx, []PluginConfig{{Path: buildPlugin(t, "testdata/noop")}, {Path: missing}}, DefaultWasmConfig(), ChainSettings{})
	if err == nil || !strings.Contains(err.Error(), "plugins[1] ("+missing+") could not be loaded") {
		t.Errorf("err = %v", err)
	}

	var failed []Failure
	c, err := LoadChain(ctx, []PluginConfig{{Path: buildPlugin(t, "testdata/trap")}}, WasmConfig{MemoryLimit: 32 << 20, Timeout: 5 * time.Second},
		ChainSettings{Failed: func(_ context.Context, f Failure) { failed = append(failed, f) }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	td, sp := chainSpan(map[string]string{"k": "v"})
	sp.SetName("panic")
	c.Traces(ctx, td)
	if len(failed) != 1 || failed[0] != FailureTrap {
		t.Errorf("failures = %v, want one trap", failed)
	}
	if got := attrMap(sp.Attributes()); !maps.Equal(got, map[string]string{"k": "v"}) {
		t.Errorf("a failed call changed the span: %v", got)
	}
}

func TestValidateConfig(t *testing.T) {
	if errs := ValidateConfig([]PluginConfig{{Path: "a.wasm"}}, DefaultWasmConfig()); len(errs) != 0 {
		t.Errorf("valid: %v", errs)
	}
	errs := ValidateConfig([]PluginConfig{{}}, WasmConfig{})
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	want := "plugins[0]: path must be set|wasm.memory_limit must be positive, got 0|wasm.timeout must be positive, got 0s"
	if got := strings.Join(msgs, "|"); got != want {
		t.Errorf("errors = %q, want %q", got, want)
	}
}

// TestChainCircuitBreaker: a plugin that fails call after call is
// suspended (not called at all) for a back-off that doubles while it keeps
// failing, logged and reported; a success closes the breaker.
func TestChainCircuitBreaker(t *testing.T) {
	ctx := context.Background()
	clock := time.Unix(1_760_000_000, 0)
	var failures, suspensions int
	core, logs := observer.New(zap.InfoLevel)
	set := ChainSettings{
		Logger:          zap.New(core),
		Failed:          func(context.Context, Failure) { failures++ },
		Suspended:       func(context.Context) { suspensions++ },
		BreakerFailures: 3,
		BreakerBackoff:  time.Second,
		now:             func() time.Time { return clock },
	}
	// The configured plugin panics on spans named "panic" and answers the
	// others.
	c, err := LoadChain(ctx, []PluginConfig{{Path: buildPlugin(t, "testdata/configured")}},
		WasmConfig{MemoryLimit: 32 << 20, Timeout: 5 * time.Second}, set)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	pl := c.plugins[0]
	batch := func(names ...string) {
		td := ptrace.NewTraces()
		spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
		for _, n := range names {
			spans.AppendEmpty().SetName(n)
		}
		c.Traces(ctx, td)
	}
	check := func(when string, calls uint64, wantFailures, wantSuspensions int) {
		t.Helper()
		if got := pl.Stats().Calls; got != calls || failures != wantFailures || suspensions != wantSuspensions {
			t.Fatalf("%s: calls %d, failures %d, suspensions %d; want %d, %d, %d",
				when, got, failures, suspensions, calls, wantFailures, wantSuspensions)
		}
	}

	batch("panic", "panic", "ok") // two failures in a row are not enough
	check("below the threshold", 3, 2, 0)
	batch("panic", "panic", "panic", "panic", "panic")
	check("tripped at the 3rd failure in a row, the rest skipped", 6, 5, 1)
	if n := logs.FilterMessageSnippet("suspended").Len(); n != 1 {
		t.Errorf("%d suspension log lines, want 1", n)
	}
	batch("ok", "ok")
	check("suspended: not called", 6, 5, 1)

	clock = clock.Add(time.Second) // the back-off is over
	batch("panic", "ok")
	check("failed again: suspended at once", 7, 6, 2)
	if got := time.Duration(pl.backoff.Load()); got != 2*time.Second {
		t.Errorf("second back-off %v, want 2s", got)
	}
	clock = clock.Add(1500 * time.Millisecond)
	batch("ok")
	check("still suspended", 7, 6, 2)

	clock = clock.Add(time.Second)
	batch("ok", "panic", "panic")
	check("a success closes the breaker", 10, 8, 2)
	if pl.backoff.Load() != 0 || logs.FilterMessageSnippet("works again").Len() != 1 {
		t.Errorf("after a success: back-off %v, recovery logged %d times", pl.backoff.Load(), logs.FilterMessageSnippet("works again").Len())
	}
	batch("panic", "ok")
	check("the next suspension starts from the first back-off", 11, 9, 3)
	if got := time.Duration(pl.backoff.Load()); got != time.Second {
		t.Errorf("back-off after recovery %v, want 1s", got)
	}
}

// TestBreakerIgnoresCallersFaults: failures that are not the plugin's do
// not count towards suspending it.
func TestBreakerIgnoresCallersFaults(t *testing.T) {
	for _, tc := range []struct {
		f    Failure
		err  error
		want bool
	}{
		{FailureTrap, errors.New("x"), true},
		{FailureTimeout, errors.New("x"), true},
		{FailureInput, errors.New("too large"), false},
		{FailureUnavailable, ErrClosed, false},
		{FailureUnavailable, fmt.Errorf("waiting: %w", context.DeadlineExceeded), false},
		{FailureUnavailable, errors.New("starting an instance: trap"), true},
	} {
		if got := pluginsFault(tc.f, &CallError{Failure: tc.f, Err: tc.err}); got != tc.want {
			t.Errorf("%s %v: %v, want %v", tc.f, tc.err, got, tc.want)
		}
	}
}

// TestFailureMeasurementOption: each failure's metric option carries
// failure=<its name>; a value out of range counts as a trap.
func TestFailureMeasurementOption(t *testing.T) {
	attr := func(f Failure) string {
		set := metric.NewAddConfig([]metric.AddOption{f.MeasurementOption()}).Attributes()
		v, _ := set.Value("failure")
		return fmt.Sprintf("%d:%s", set.Len(), v.AsString())
	}
	for f := range numFailures {
		if got, want := attr(f), "1:"+f.String(); got != want {
			t.Errorf("%s: attributes %s, want %s", f, got, want)
		}
	}
	if got := attr(numFailures); got != "1:trap" {
		t.Errorf("out of range: attributes %s, want 1:trap", got)
	}
}
