package wasmplugin

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/vocab"
)

func TestEncodeRoundTrip(t *testing.T) {
	rec := record("GET /orders", map[string]any{"service.name": "gw", "n": 3},
		map[string]any{"http.request.header.x-request-id": []string{"a", "b"}, "k": "v", "i": 7})
	rec.Kind = ptrace.SpanKindClient
	size, resN, spanN := encodedSize(rec, nil)
	if resN != 1 || spanN != 3 {
		t.Fatalf("entries = %d, %d; want 1, 3 (non-strings skipped, slice elements each)", resN, spanN)
	}
	buf := make([]byte, size)
	encode(buf, rec, nil, resN, spanN)

	// Decode by the ABI.md layout, independently of encode.
	le := binary.LittleEndian
	o := 0
	str := func() string {
		n := int(le.Uint32(buf[o:]))
		s := string(buf[o+4 : o+4+n])
		o += 4 + n
		return s
	}
	u32 := func() uint32 { v := le.Uint32(buf[o:]); o += 4; return v }
	if name := str(); name != "GET /orders" {
		t.Errorf("name = %q", name)
	}
	if k := u32(); k != uint32(ptrace.SpanKindClient) {
		t.Errorf("kind = %d", k)
	}
	var got []string
	for range 2 {
		for n := u32(); n > 0; n-- {
			got = append(got, str()+"="+str())
		}
		got = append(got, "|")
	}
	if o != size {
		t.Errorf("decoded %d of %d bytes", o, size)
	}
	joined := strings.Join(got, " ")
	for _, want := range []string{"service.name=gw |", "http.request.header.x-request-id=a", "http.request.header.x-request-id=b", "k=v"} {
		if !strings.Contains(joined, want) {
			t.Errorf("decoded %q, missing %q", joined, want)
		}
	}
}

func TestDecodeOutputRejectsGarbage(t *testing.T) {
	le := binary.LittleEndian
	valid := le.AppendUint32(nil, 1)
	valid = le.AppendUint32(valid, 1)
	valid = append(valid, 'k')
	valid = le.AppendUint32(valid, 2)
	valid = append(valid, "vv"...)
	prev := []KV{{"keep", "me"}}
	got, err := decodeOutput(valid, prev, map[string]string{})
	if err != nil || len(got) != 2 || got[1] != (KV{"k", "vv"}) {
		t.Fatalf("valid answer: %v, %v", got, err)
	}
	for name, b := range map[string][]byte{
		"short":     {1, 0},
		"too many":  le.AppendUint32(nil, MaxOutputPairs+1),
		"truncated": valid[:len(valid)-1],
		"trailing":  append(append([]byte{}, valid...), 0),
		"empty key": append(le.AppendUint32(le.AppendUint32(nil, 1), 0), 0, 0, 0, 0),
		"huge len":  append(le.AppendUint32(nil, 1), 0xff, 0xff, 0xff, 0xff),
	} {
		got, err := decodeOutput(b, prev, nil)
		if err == nil || len(got) != 1 {
			t.Errorf("%s: got %v, %v; want error and dst unchanged", name, got, err)
		}
	}
}

func TestDecodePrefixes(t *testing.T) {
	le := binary.LittleEndian
	valid := le.AppendUint32(nil, 2)
	valid = append(le.AppendUint32(valid, 2), "a."...)
	valid = le.AppendUint32(valid, 0) // the empty prefix: everything
	f, err := decodePrefixes(valid)
	if err != nil || !slices.Equal(f.prefixes, []string{"a.", ""}) {
		t.Fatalf("valid list: %v, %v", f, err)
	}
	var none *keyFilter
	if !f.wants("zzz") || !f.wants("") || !none.wants("x") || newKeyFilter([]string{"a."}).wants("b.c") ||
		!newKeyFilter([]string{"b", "a."}).wants("a.c") || newKeyFilter([]string{"a."}).wants("a") || newKeyFilter([]string{"a."}).wants("") {
		t.Error("wants: wrong answer")
	}
	for name, b := range map[string][]byte{
		"short":     {1},
		"too many":  le.AppendUint32(nil, MaxPrefixes+1),
		"truncated": valid[:len(valid)-1],
		"trailing":  append(append([]byte{}, valid...), 'x'),
		"not utf8":  append(le.AppendUint32(le.AppendUint32(nil, 1), 1), 0xff),
	} {
		if _, err := decodePrefixes(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Filtered attributes are neither counted nor sent.
	rec := record("n", map[string]any{"a.x": "1", "b.y": "2"}, map[string]any{"a.z": []string{"3", "4"}, "c": "5"})
	size, resN, spanN := encodedSize(rec, newKeyFilter([]string{"a."}))
	if resN != 1 || spanN != 2 || size != 4+1+4+4+(8+3+1)+4+2*(8+3+1) {
		t.Errorf("filtered: size %d, entries %d, %d", size, resN, spanN)
	}
}

func TestExample(t *testing.T) {
	p := loadPlugin(t, "example", Options{Instances: 2})
	ctx := context.Background()
	want := []string{"pinpoint.http.request.header", "pinpoint.http.response.header",
		"http.request.header.x-request-id", "http.response.header.x-request-id", "http.request.header.x-upstream-trace-id"}
	if !slices.Equal(p.filter.prefixes, want) {
		t.Errorf("filter = %q, want %q from weft_attribute_prefixes (the default config)", p.filter.prefixes, want)
	}
	for _, tc := range []struct {
		name      string
		res, span map[string]any
		want      map[string]string
	}{{
		name: "request, response and upstream ids",
		span: map[string]any{
			"http.request.header.x-request-id":        []string{" req-1 "},
			"http.response.header.x-request-id":       "resp-1",
			"http.request.header.x-upstream-trace-id": "0af7651916cd43dd8448eb211c80319c",
			"http.route": "/orders",
		},
		want: map[string]string{vocab.XRequestID0: "req-1", vocab.XRequestID1: "resp-1",
			vocab.UpstreamTraceID: "0af7651916cd43dd8448eb211c80319c"},
	}, {
		name: "span attribute wins over resource, first non-empty value wins",
		res:  map[string]any{"http.request.header.x-request-id": "from-resource", "http.request.header.x-upstream-trace-id": "up-res"},
		span: map[string]any{"http.request.header.x-request-id": []string{"", "from-span", "second"}},
		want: map[string]string{vocab.XRequestID0: "from-span", vocab.UpstreamTraceID: "up-res"},
	}, {
		name: "nothing to extract",
		span: map[string]any{"http.route": "/", "http.request.header.x-request-id": 12},
		want: map[string]string{},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.Extract(ctx, record("span", tc.res, tc.span), nil)
			if err != nil {
				t.Fatal(err)
			}
			if m := kvMap(got); !maps.Equal(m, tc.want) {
				t.Errorf("got %v, want %v", m, tc.want)
			}
		})
	}
	// A record larger than the first input buffer makes the host ask for a
	// bigger one; the answer must not change.
	big := record("big", nil, map[string]any{"http.request.header.x-request-id": "r", "blob": strings.Repeat("x", 100_000)})
	got, err := p.Extract(ctx, big, nil)
	if err != nil || kvMap(got)[vocab.XRequestID0] != "r" {
		t.Fatalf("big record: %v, %v", got, err)
	}
	if s := p.Stats(); s.Calls != 4 || s.Failures != [numFailures]uint64{} {
		t.Errorf("stats = %+v", s)
	}
}

// TestExampleConfig: the example plugin's config names the headers it
// reads, maps headers to tags, and applies to Pinpoint's recorded headers
// too.
func TestExampleConfig(t *testing.T) {
	p := loadPlugin(t, "example", Options{Instances: 1, Config: map[string]any{
		"request_id_headers":        []any{"X-Correlation-ID", "x-request-id"},
		"upstream_trace_id_headers": []any{},
		"tags":                      map[string]any{"X-Tenant": "app.tenant"},
	}})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		span map[string]any
		want map[string]string
	}{{
		name: "configured headers; the first listed wins; the default upstream header is off",
		span: map[string]any{
			"http.request.header.x-request-id":        "second-choice",
			"http.request.header.x-correlation-id":    []string{"first-choice"},
			"http.response.header.x-correlation-id":   "resp",
			"http.request.header.x-upstream-trace-id": "ignored",
			"http.request.header.x-tenant":            "acme",
		},
		want: map[string]string{vocab.XRequestID0: "first-choice", vocab.XRequestID1: "resp", "app.tenant": "acme"},
	}, {
		name: "Pinpoint's recorded header: a (name, value) pair, name in any case",
		span: map[string]any{"pinpoint.http.request.header": []string{"X-Correlation-Id", "pp-1"}},
		want: map[string]string{vocab.XRequestID0: "pp-1"},
	}, {
		name: "Pinpoint tag header and response header",
		span: map[string]any{
			"pinpoint.http.request.header":  []string{"x-tenant", "globex"},
			"pinpoint.http.response.header": []string{"X-Request-ID", "pp-resp"},
		},
		want: map[string]string{"app.tenant": "globex", vocab.XRequestID1: "pp-resp"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := p.Extract(ctx, record("span", nil, tc.span), nil)
			if err != nil {
				t.Fatal(err)
			}
			if m := kvMap(got); !maps.Equal(m, tc.want) {
				t.Errorf("got %v, want %v", m, tc.want)
			}
		})
	}
}

// TestConfigOncePerInstance: every instance gets the config once, before
// its first record, the replacement of a failed instance included.
func TestConfigOncePerInstance(t *testing.T) {
	p := loadPlugin(t, "testdata/configured", Options{Instances: 1, Config: map[string]any{"headers": []any{"a", "b"}, "n": 3}})
	ctx := context.Background()
	want := map[string]string{"config": `{"headers":["a","b"],"n":3}`, "configured": "1"}
	check := func(when string) {
		t.Helper()
		got, err := p.Extract(ctx, record("x", nil, nil), nil)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if m := kvMap(got); !maps.Equal(m, want) {
			t.Errorf("%s: got %v, want %v", when, m, want)
		}
	}
	check("first instance")
	check("first instance, second call")
	if _, err := p.Extract(ctx, record("panic", nil, nil), nil); err == nil {
		t.Fatal("the plugin was asked to panic")
	}
	check("replacement instance")
	if s := p.Stats(); s.Instantiations != 2 {
		t.Errorf("instantiations = %d, want 2", s.Instantiations)
	}
}

func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	path := buildPlugin(t, "testdata/configured")
	_, err := Load(ctx, path, Options{Config: map[string]any{"reject": true}})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "rejected its config") ||
		!strings.Contains(err.Error(), "this plugin takes no such option") {
		t.Errorf("rejected config: err = %v; want the path, the rejection and the plugin's reason", err)
	}
	// Without config a plugin that exports weft_configure gets {}.
	p, err := Load(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(ctx)
	got, err := p.Extract(ctx, record("x", nil, nil), nil)
	if err != nil || kvMap(got)["config"] != "{}" {
		t.Errorf("no config: got %v, %v; want {}", got, err)
	}
	// Config for a plugin that cannot take it is an error, not ignored.
	_, err = Load(ctx, buildPlugin(t, "testdata/noop"), Options{Config: map[string]any{"x": 1}})
	if err == nil || !strings.Contains(err.Error(), "does not export weft_configure") {
		t.Errorf("config for a plugin without weft_configure: err = %v", err)
	}
	// The example checks its config.
	_, err = Load(ctx, buildPlugin(t, "example"), Options{Config: map[string]any{"request_id_header": "x"}})
	if err == nil || !strings.Contains(err.Error(), `unknown field "request_id_header"`) {
		t.Errorf("example with a misspelt option: err = %v", err)
	}
	_, err = Load(ctx, buildPlugin(t, "example"), Options{Config: map[string]any{"x": func() {}}})
	if err == nil || !strings.Contains(err.Error(), "JSON") {
		t.Errorf("config that is not JSON: err = %v", err)
	}
}

func TestInputTooLarge(t *testing.T) {
	p := loadPlugin(t, "testdata/noop", Options{Instances: 1})
	rec := record("x", nil, map[string]any{"blob": strings.Repeat("x", MaxInputBytes)})
	dst := []KV{{"a", "b"}}
	got, err := p.Extract(context.Background(), rec, dst)
	if f, _ := FailureOf(err); f != FailureInput || len(got) != 1 {
		t.Fatalf("got %v, %v; want FailureInput and dst unchanged", got, err)
	}
}

func TestTimeout(t *testing.T) {
	p := loadPlugin(t, "testdata/loop", Options{Timeout: 50 * time.Millisecond, Instances: 1})
	for i := range 2 { // the second call runs on a fresh instance
		start := time.Now()
		_, err := p.Extract(context.Background(), record("x", nil, nil), nil)
		if f, _ := FailureOf(err); f != FailureTimeout {
			t.Fatalf("call %d: err = %v, want FailureTimeout", i, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("call %d took %v with a 50ms timeout", i, d)
		}
	}
	if s := p.Stats(); s.Failures[FailureTimeout] != 2 || s.Instantiations != 2 {
		t.Errorf("stats = %+v, want 2 timeouts and 2 instantiations (load + replacement)", s)
	}
}

func TestMemoryLimit(t *testing.T) {
	p := loadPlugin(t, "testdata/hog", Options{MemoryLimit: 32 << 20, Timeout: 10 * time.Second, Instances: 1})
	_, err := p.Extract(context.Background(), record("x", nil, nil), nil)
	if f, _ := FailureOf(err); f != FailureMemory {
		t.Fatalf("err = %v, want FailureMemory", err)
	}
	t.Logf("error: %.300s", err)
}

func TestTrap(t *testing.T) {
	p := loadPlugin(t, "testdata/trap", Options{Instances: 1})
	_, err := p.Extract(context.Background(), record("oob", nil, nil), nil)
	if f, _ := FailureOf(err); f != FailureTrap {
		t.Fatalf("out-of-bounds read: err = %v, want FailureTrap", err)
	}
	_, err = p.Extract(context.Background(), record("panic", nil, nil), nil)
	var ce *CallError
	if !errors.As(err, &ce) || ce.Failure != FailureTrap || !strings.Contains(ce.Stderr, "panics as asked") {
		t.Fatalf("panic: err = %v, want FailureTrap with the panic message", err)
	}
	if s := p.Stats(); s.Failures[FailureTrap] != 2 {
		t.Errorf("stats = %+v", s)
	}
}

func TestGarbage(t *testing.T) {
	p := loadPlugin(t, "testdata/garbage", Options{Instances: 1})
	ctx := context.Background()
	dst := []KV{{"already", "there"}}
	for _, mode := range []string{"oob", "count", "trailing", "utf8"} {
		got, err := p.Extract(ctx, record(mode, nil, nil), dst)
		if f, _ := FailureOf(err); f != FailureGarbage || len(got) != 1 {
			t.Errorf("%s: got %v, %v; want FailureGarbage and dst unchanged", mode, got, err)
		}
	}
	got, err := p.Extract(ctx, record("fine", nil, nil), dst)
	if err != nil || len(got) != 2 || got[1] != (KV{"k", "v"}) {
		t.Fatalf("valid answer after garbage: %v, %v", got, err)
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	_, err := Load(ctx, buildPlugin(t, "testdata/badabi"), Options{})
	if err == nil || !strings.Contains(err.Error(), "ABI version 999") || !strings.Contains(err.Error(), "rebuild") {
		t.Errorf("wrong version: err = %v", err)
	}
	_, err = LoadBytes(ctx, "junk", []byte("not wasm"), Options{})
	if err == nil || !strings.Contains(err.Error(), "not a valid wasm module") {
		t.Errorf("junk: err = %v", err)
	}
	// The smallest valid module: no memory, no exports.
	_, err = LoadBytes(ctx, "empty", []byte("\x00asm\x01\x00\x00\x00"), Options{})
	if err == nil || !strings.Contains(err.Error(), `does not export its memory as "memory"`) {
		t.Errorf("empty module: err = %v", err)
	}
	_, err = Load(ctx, "/nonexistent.wasm", Options{})
	if err == nil {
		t.Error("missing file: no error")
	}
}

func TestClosed(t *testing.T) {
	p := loadPlugin(t, "testdata/noop", Options{Instances: 1})
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, err := p.Extract(context.Background(), record("x", nil, nil), nil)
	if f, _ := FailureOf(err); f != FailureUnavailable || !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v, want FailureUnavailable/ErrClosed", err)
	}
}

func TestWaitForInstanceHonoursContext(t *testing.T) {
	p := loadPlugin(t, "example", Options{Instances: 1})
	// Hold the only instance, as a long call would. (A looping plugin in
	// another goroutine is not a reliable holder: while it spins, a
	// stop-the-world GC waits for it, and this goroutine with it.)
	inst := <-p.slots
	defer func() { p.slots <- inst }()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Extract(ctx, record("x", nil, nil), nil)
	if f, _ := FailureOf(err); f != FailureUnavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want FailureUnavailable after the caller's deadline", err)
	}
}

func TestConcurrent(t *testing.T) {
	p := loadPlugin(t, "example", Options{Instances: 4})
	const goroutines, calls = 16, 100
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var kvs []KV
			for i := range calls {
				id := fmt.Sprintf("req-%d-%d", g, i)
				rec := record("s", map[string]any{"service.name": "svc"}, map[string]any{"http.request.header.x-request-id": id})
				var err error
				kvs, err = p.Extract(context.Background(), rec, kvs[:0])
				if err != nil {
					errs <- err
					return
				}
				if len(kvs) != 1 || kvs[0] != (KV{vocab.XRequestID0, id}) {
					errs <- fmt.Errorf("goroutine %d call %d: got %v, want %s", g, i, kvs, id)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := p.Stats(); s.Calls != goroutines*calls || s.Instantiations > 4 {
		t.Errorf("stats = %+v, want %d calls on at most 4 instances", s, goroutines*calls)
	}
}

// TestTimeoutWithoutFuel: a module that is not instrumented (instrument.go
// cannot rewrite it) is stopped by wazero's CloseOnContextDone instead.
func TestTimeoutWithoutFuel(t *testing.T) {
	p := loadPlugin(t, "testdata/loop", Options{Timeout: 50 * time.Millisecond, Instances: 1, noFuel: true})
	if p.fuel {
		t.Fatal("noFuel: the module was instrumented")
	}
	_, err := p.Extract(context.Background(), record("x", nil, nil), nil)
	if f, _ := FailureOf(err); f != FailureTimeout {
		t.Fatalf("err = %v, want FailureTimeout", err)
	}
	// And the same plugin instrumented answers like the example does.
	if q := loadPlugin(t, "example", Options{Instances: 1}); !q.fuel {
		t.Error("the example plugin was not instrumented")
	}
}

// TestOutOfFuelIsTimeout: the fuel alone stops a loop, long before the
// timer would (as when the timer cannot run: GOMAXPROCS=1, a GC).
func TestOutOfFuelIsTimeout(t *testing.T) {
	p := loadPlugin(t, "testdata/loop", Options{Timeout: time.Hour, Instances: 1})
	p.callFuel = 1_000_000 // a millisecond or so of looping
	start := time.Now()
	_, err := p.Extract(context.Background(), record("x", nil, nil), nil)
	if f, _ := FailureOf(err); f != FailureTimeout {
		t.Fatalf("err = %v, want FailureTimeout", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("took %v: the fuel did not stop the loop", d)
	}
}

func TestInstrumentRejects(t *testing.T) {
	for name, wasm := range map[string][]byte{
		"not wasm":       []byte("junk"),
		"no exports":     []byte("\x00asm\x01\x00\x00\x00"),
		"unknown opcode": append([]byte("\x00asm\x01\x00\x00\x00"), 7, 1, 0, 10, 4, 1, 2, 0, 0xd5),
		"truncated":      append([]byte("\x00asm\x01\x00\x00\x00"), 7, 1, 0, 10, 9, 1, 2),
	} {
		if _, err := instrument(wasm, 1); !errors.Is(err, errUnsupported) {
			t.Errorf("%s: err = %v, want errUnsupported", name, err)
		}
	}
}
