package wasmplugin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

// Hand-assembled modules, for what the Go toolchain does not produce.

func wvec(items ...[]byte) []byte {
	b := appendU32(nil, uint32(len(items)))
	for _, it := range items {
		b = append(b, it...)
	}
	return b
}

func wsection(id byte, body []byte) []byte {
	return append(appendU32([]byte{id}, uint32(len(body))), body...)
}

func wname(s string) []byte { return append(appendU32(nil, uint32(len(s))), s...) }

func wmodule(sections ...[]byte) []byte {
	return bytes.Join(append([][]byte{[]byte("\x00asm\x01\x00\x00\x00")}, sections...), nil)
}

// wbody is a function body without locals: code must end with 0x0b.
func wbody(code ...byte) []byte {
	b := append([]byte{0}, code...)
	return append(appendU32(nil, uint32(len(b))), b...)
}

// abiModule is a plugin (ABI.md) whose weft_extract is extract (type
// (i32, i32) -> i64), with further functions more (function indices 3...)
// of type (i32) -> i32, and further types (type indices 3...) for block
// types. It has no globals.
func abiModule(extract []byte, types [][]byte, more ...[]byte) []byte {
	funcTypes := [][]byte{
		{0x60, 0, 1, 0x7f},             // 0: () -> i32
		{0x60, 1, 0x7f, 1, 0x7f},       // 1: (i32) -> i32
		{0x60, 2, 0x7f, 0x7f, 1, 0x7e}, // 2: (i32, i32) -> i64
	}
	funcTypes = append(funcTypes, types...)
	funcs := [][]byte{{0}, {1}, {2}}
	for i := range more {
		_ = i
		funcs = append(funcs, []byte{1})
	}
	code := [][]byte{
		wbody(0x41, 1, 0x0b),          // weft_abi_version: i32.const 1
		wbody(0x41, 0x80, 0x08, 0x0b), // weft_alloc: i32.const 1024
		extract,
	}
	code = append(code, more...)
	return wmodule(
		wsection(1, wvec(funcTypes...)),
		wsection(3, wvec(funcs...)),
		wsection(5, wvec([]byte{0, 1})), // memory: 1 page
		wsection(7, wvec(
			append(wname("memory"), 2, 0),
			append(wname("weft_abi_version"), 0, 0),
			append(wname("weft_alloc"), 0, 1),
			append(wname("weft_extract"), 0, 2),
		)),
		wsection(10, wvec(code...)),
	)
}

// compiles says whether wazero, as the host configures it, accepts wasm.
func compiles(wasm []byte) error { return compilesWith(wasm, false) }

// compilesWith is compiles, with the interpreter if interp.
func compilesWith(wasm []byte, interp bool) error {
	ctx := context.Background()
	cfg := wazero.NewRuntimeConfig()
	if interp {
		cfg = wazero.NewRuntimeConfigInterpreter()
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	defer rt.Close(ctx)
	_, err := compileModule(ctx, rt, wasm) // wazero panics on some invalid modules
	return err
}

// TestLoadDoesNotPanic: a module on which wazero's validation panics (found
// by FuzzInstrument: weft_extract calls a function of type 48, of 3) fails
// to load; it does not crash the collector.
func TestLoadDoesNotPanic(t *testing.T) {
	wasm := abiModule(wbody(0x41, 0, 0x10, 3, 0x1a, 0x42, 0, 0x0b), nil, wbody(0x41, 0, 0x0b))
	// The function section: 4 functions, the last of type 1; make it 48.
	i := bytes.Index(wasm, []byte{3, 5, 4, 0, 1, 2, 1})
	if i < 0 {
		t.Fatal("function section not found")
	}
	wasm[i+6] = 48
	for _, noFuel := range []bool{false, true} {
		p, err := LoadBytes(context.Background(), "bad-type", wasm, Options{noFuel: noFuel})
		if err == nil {
			_ = p.Close(context.Background())
			t.Fatal("loaded")
		}
		if !strings.Contains(err.Error(), "not a valid wasm module") {
			t.Errorf("err = %v", err)
		}
	}
}

// TestLoadRefusesImpossibleCounts: a tiny module whose function type claims
// 2^32-1 results is refused with an error; given to wazero 1.12 it would
// allocate 32 GiB and kill the process.
func TestLoadRefusesImpossibleCounts(t *testing.T) {
	wasm := []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
		1, 8, // type section, 8 bytes
		1, 0x60, 0, // one function type, no params
		0xff, 0xff, 0xff, 0xff, 0x0f, // 2^32-1 results
	}
	if !impossibleCounts(wasm) {
		t.Fatal("impossibleCounts missed a count of 2^32-1 in 8 bytes")
	}
	if _, err := LoadBytes(context.Background(), "huge", wasm, Options{}); err == nil || !strings.Contains(err.Error(), "larger than the bytes that follow") {
		t.Fatalf("err = %v", err)
	}
	if impossibleCounts(abiModule(wbody(0x42, 0, 0x0b), nil)) {
		t.Fatal("a valid module has impossible counts")
	}
}

// TestInstrumentKeepsInvalidModulesInvalid: a module wazero rejects must
// not become one it accepts. The fuel global is where index "one past the
// last global" was: code that used that index was invalid and would, once
// instrumented, refill its own fuel and never stop.
func TestInstrumentKeepsInvalidModulesInvalid(t *testing.T) {
	valid := abiModule(wbody(0x42, 0, 0x0b), nil)
	overlong := wmodule(
		[]byte{7, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0}, // export section, size 1 in 6 bytes: 0 exports
	)
	for name, wasm := range map[string][]byte{
		"global.set past the globals": abiModule(wbody(
			0x03, 0x40, // loop
			0x42, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, // i64.const max
			0x24, 0, // global.set 0: the fuel, once instrumented
			0x0c, 0, // br 0
			0x0b, 0x42, 0, 0x0b), nil),
		"global.get past the globals": abiModule(wbody(0x23, 0, 0x0b), nil),
		"export of a global past the globals": wmodule(
			wsection(7, wvec(append(wname("x"), 3, 0))),
		),
		"section size over 5 bytes": overlong,
		"debug section name not UTF-8": append(append([]byte(nil), valid...),
			wsection(0, append(wname(".debug_\xff"), 1, 2, 3))...),
	} {
		if err := compiles(wasm); err == nil {
			t.Fatalf("%s: the input compiles; the test is wrong", name)
		}
		out, err := instrument(wasm, 1000)
		if err != nil {
			continue // the fallback: wazero will reject it
		}
		if err := compiles(out); err == nil {
			t.Errorf("%s: instrument made an invalid module valid", name)
		}
	}
	if err := compiles(valid); err != nil {
		t.Fatal(err)
	}
}

// TestFuelRefillRejected: the plugin that would refill its fuel does not
// load at all, rather than loading and running forever.
func TestFuelRefillRejected(t *testing.T) {
	wasm := abiModule(wbody(
		0x03, 0x40, // loop
		0x42, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, // i64.const max
		0x24, 0, // global.set 0
		0x0c, 0, // br 0
		0x0b, 0x42, 0, 0x0b), nil)
	p, err := LoadBytes(context.Background(), "refill", wasm, Options{Timeout: 50 * time.Millisecond})
	if err == nil {
		_ = p.Close(context.Background())
		t.Fatal("a module that writes a global it does not have loaded")
	}
}

// TestRecursionTimesOut: a plugin without loops can still run for ever,
// by recursion (here f(n) = f(n-1) + f(n-1), 2^40 calls); the fuel must
// stop it too.
func TestRecursionTimesOut(t *testing.T) {
	f := wbody(
		0x20, 0, 0x45, // local.get 0; i32.eqz
		0x04, 0x7f, 0x41, 0, // if (result i32) i32.const 0
		0x05,                            // else
		0x20, 0, 0x41, 1, 0x6b, 0x10, 3, // f(n-1)
		0x20, 0, 0x41, 1, 0x6b, 0x10, 3, // f(n-1)
		0x6a,       // i32.add
		0x0b, 0x0b) // end if, end
	wasm := abiModule(wbody(0x41, 40, 0x10, 3, 0x1a, 0x42, 0, 0x0b), nil, f) // f(40); drop; i64.const 0
	wasm = append(wasm[:0:0], wasm...)
	p, err := LoadBytes(context.Background(), "recursion", wasm, Options{Timeout: 100 * time.Millisecond, Instances: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !p.fuel {
		t.Fatal("not instrumented")
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Extract(context.Background(), record("x", nil, nil), nil)
		done <- err
	}()
	select {
	case err := <-done:
		_ = p.Close(context.Background())
		if f, _ := FailureOf(err); f != FailureTimeout {
			t.Fatalf("err = %v, want FailureTimeout", err)
		}
	case <-time.After(30 * time.Second):
		// Not closed: Close would wait for the call.
		t.Fatal("the call did not stop within 30s of its 100ms deadline")
	}
}

// TestInstrumentedSameResults: the example plugin answers the same with
// and without the fuel instrumentation.
func TestInstrumentedSameResults(t *testing.T) {
	cfg := map[string]any{"request_id_headers": []any{"x-correlation-id", "x-request-id"},
		"tags": map[string]any{"x-tenant": "app.tenant", "x-team": "app.team"}}
	fueled := loadPlugin(t, "example", Options{Instances: 1, Config: cfg})
	plain := loadPlugin(t, "example", Options{Instances: 1, Config: cfg, noFuel: true})
	if !fueled.fuel || plain.fuel {
		t.Fatalf("fuel: %v and %v, want true and false", fueled.fuel, plain.fuel)
	}
	ctx := context.Background()
	recs := []Record{benchRecord(), record("empty", nil, nil)}
	for i := range 200 {
		span := map[string]any{
			"http.request.header.x-request-id":        []string{"", fmt.Sprintf(" req-%d ", i), "second"},
			"http.request.header.x-correlation-id":    fmt.Sprintf("corr-%d", i*7%13),
			"http.response.header.x-request-id":       fmt.Sprintf("resp-%d", i),
			"http.request.header.x-upstream-trace-id": fmt.Sprintf("%032x", i*104729),
			"http.request.header.x-tenant":            []string{fmt.Sprintf("tenant-%d", i%5)},
			"pinpoint.http.request.header":            []string{"X-Team", fmt.Sprintf("team-%d", i%3)},
			"http.route":                              "/r",
		}
		// Drop some attributes, differently for each record.
		for k := range span {
			if (len(k)+i)%4 == 0 {
				delete(span, k)
			}
		}
		recs = append(recs, record(fmt.Sprintf("span-%d", i), map[string]any{"service.name": "svc"}, span))
	}
	for i, rec := range recs {
		a, errA := fueled.Extract(ctx, rec, nil)
		b, errB := plain.Extract(ctx, rec, nil)
		if errA != nil || errB != nil {
			t.Fatalf("record %d: errors %v, %v", i, errA, errB)
		}
		if !maps.Equal(kvMap(a), kvMap(b)) || len(a) != len(b) {
			t.Fatalf("record %d: instrumented %v, plain %v", i, a, b)
		}
	}
}

// FuzzInstrument: instrument never panics, and what it returns for a module
// wazero accepts, wazero accepts; for one wazero rejects, rejects.
func FuzzInstrument(f *testing.F) {
	// The plugins the tests build: the real thing, Go's code generator.
	// They compile (the other tests load them), which saves compiling
	// them here: the fuzzing engine gives one input 10s, and compiling
	// the example takes seconds.
	valid := map[[sha256.Size]byte]bool{}
	for _, pkg := range []string{"example", "testdata/noop", "testdata/loop", "testdata/trap",
		"testdata/hog", "testdata/garbage", "testdata/configured", "testdata/badabi"} {
		b, err := os.ReadFile(buildPlugin(f, pkg))
		if err != nil {
			f.Fatal(err)
		}
		valid[sha256.Sum256(b)] = true
		f.Add(b)
	}
	for _, b := range smallModules() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, err := instrument(wasm, 1_000_000)
		if err != nil {
			if !errors.Is(err, errUnsupported) {
				t.Fatalf("error %v is not errUnsupported", err)
			}
			return
		}
		// Large modules (mutated plugins) are checked with wazero's
		// interpreter, which validates the same way and compiles them
		// several times faster.
		interp := len(wasm) > 1<<20
		if impossibleCounts(wasm) {
			return // refused before wazero sees it (see impossibleCounts)
		}
		var before error
		if !valid[sha256.Sum256(wasm)] {
			before = compilesWith(wasm, interp)
		}
		after := compilesWith(out, interp)
		if before == nil && after != nil {
			t.Fatalf("the input compiles, the instrumented module does not: %v", after)
		}
		if before != nil && after == nil {
			t.Fatalf("the input does not compile (%v), the instrumented module does", before)
		}
	})
}

// smallModules are seeds for FuzzInstrument: one of each construct the
// rewriter must get right. TestSmallModules checks they compile.
func smallModules() [][]byte {
	var ms [][]byte
	add := func(extract []byte, types [][]byte, more ...[]byte) {
		ms = append(ms, abiModule(extract, types, more...))
	}
	// Loops with and without parameters and results, nested, in ifs.
	add(wbody(0x03, 0x40, 0x0b, 0x42, 0, 0x0b), nil)
	add(wbody(0x03, 0x7f, 0x41, 5, 0x0b, 0x1a, 0x42, 0, 0x0b), nil)
	add(wbody(0x41, 5, 0x03, 0x03, 0x1a, 0x0b, 0x42, 0, 0x0b), [][]byte{{0x60, 1, 0x7f, 0}}) // loop (type 3): (i32) -> ()
	add(wbody(0x20, 0, 0x04, 0x40, 0x03, 0x40, 0x02, 0x40, 0x0c, 1, 0x0b, 0x0b, 0x05, 0x03, 0x40, 0x0b, 0x0b, 0x42, 0, 0x0b), nil)
	// br_table, select with types, memory ops.
	add(wbody(0x03, 0x40, 0x02, 0x40, 0x20, 0, 0x0e, 2, 0, 1, 0, 0x0b, 0x0b, 0x42, 0, 0x0b), nil)
	add(wbody(0x42, 1, 0x42, 2, 0x20, 1, 0x1c, 1, 0x7e, 0x0b), nil)
	add(wbody(0x20, 0, 0x28, 2, 0x10, 0x20, 0, 0x36, 2, 0, 0x3f, 0, 0x40, 0, 0x1a, 0x42, 0, 0x0b), nil)
	// 0xfc: memory.fill, memory.copy, a saturating truncation.
	add(wbody(0x20, 0, 0x41, 0, 0x20, 1, 0xfc, 11, 0, 0x20, 0, 0x20, 1, 0x41, 1, 0xfc, 10, 0, 0,
		0x43, 0, 0, 0x80, 0x3f, 0xfc, 0, 0x1a, 0x42, 0, 0x0b), nil)
	// SIMD: v128.const, i8x16.shuffle, extract lane, load lane.
	v128 := []byte{0xfd, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	simd := append(append([]byte{}, v128...), v128...)
	simd = append(simd, 0xfd, 13, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0xfd, 27, 0, 0x1a)
	simd = append(simd, 0x41, 0)
	simd = append(simd, v128...)
	simd = append(simd, 0xfd, 86, 2, 0, 1, 0xfd, 29, 0, 0x0b)
	add(wbody(simd...), nil)
	// Recursion.
	add(wbody(0x41, 3, 0x10, 3, 0x1a, 0x42, 0, 0x0b), nil,
		wbody(0x20, 0, 0x04, 0x7f, 0x20, 0, 0x41, 1, 0x6b, 0x10, 3, 0x05, 0x41, 0, 0x0b, 0x0b))

	// An imported global, a defined one, a table, call_indirect, ref.func,
	// ref.null, data count and data: the fuel's index is 2.
	ms = append(ms, wmodule(
		wsection(1, wvec([]byte{0x60, 0, 1, 0x7e})),
		wsection(2, wvec(append(append(wname("env"), wname("g")...), 3, 0x7e, 0))),
		wsection(3, wvec([]byte{0}, []byte{0})),
		wsection(4, wvec([]byte{0x70, 0, 2})),
		wsection(5, wvec([]byte{0, 1})),
		wsection(6, wvec([]byte{0x7e, 1, 0x42, 7, 0x0b})),
		wsection(7, wvec(append(wname("f"), 0, 0), append(wname("g"), 3, 1))),
		wsection(9, wvec([]byte{0, 0x41, 0, 0x0b, 1, 1})), // elem: table 0 offset 0, func 1
		wsection(12, []byte{1}),
		wsection(10, wvec(
			wbody(0x03, 0x40, 0x23, 1, 0x23, 0, 0x7c, 0x24, 1, 0x0b, 0x41, 0, 0x11, 0, 0,
				0xd2, 1, 0xd1, 0x1a, 0xd0, 0x70, 0xd1, 0x1a, 0x0b),
			wbody(0x23, 1, 0x0b),
		)),
		wsection(11, wvec([]byte{1, 2, 'h', 'i'})), // passive data
		wsection(0, append(wname("name"), 1, 2, 1, 0, 1, 'f')),
	))
	return ms
}

func TestSmallModules(t *testing.T) {
	for i, m := range smallModules() {
		if err := compiles(m); err != nil {
			t.Errorf("module %d: %v", i, err)
			continue
		}
		out, err := instrument(m, 1000)
		if err != nil {
			t.Errorf("module %d: %v", i, err)
			continue
		}
		if err := compiles(out); err != nil {
			t.Errorf("module %d instrumented: %v", i, err)
		}
	}
}

// TestInstrumentTrailingBytes: bytes after a section's last entry make the
// module invalid; appending the fuel's global or export after them must not
// make them part of a valid entry.
func TestInstrumentTrailingBytes(t *testing.T) {
	for name, wasm := range map[string][]byte{
		// Found by FuzzInstrument: no exports, then 56 bytes that read as
		// one once the count is 1.
		"export section": []byte("\x00asm\x01\x00\x00\x00\a9\x00A0000000000000000000000000000000000000000000000000000000"),
		// No globals, then the start of a v128 global whose v128.const
		// takes in the fuel's 5 first bytes (for a fuel of 1000): with the
		// count made 1, a valid global, exported as the fuel.
		"global section": wmodule(
			wsection(6, []byte{0, 0x7b, 0, 0xfd, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}),
			wsection(7, wvec()),
		),
	} {
		if err := compiles(wasm); err == nil {
			t.Fatalf("%s: the input compiles; the test is wrong", name)
		}
		out, err := instrument(wasm, 1000)
		if err == nil {
			if err := compiles(out); err == nil {
				t.Errorf("%s: instrument made an invalid module valid", name)
			}
		}
	}
}
