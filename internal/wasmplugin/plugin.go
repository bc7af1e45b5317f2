// Package wasmplugin runs user-supplied WebAssembly plugins that extract
// correlation keys from spans, sandboxed with wazero: a plugin has no
// filesystem, no network, a memory limit and a deadline per call, and
// whatever it does (trap, loop, exhaust memory, answer garbage) the call
// returns an error and the caller passes the record on unchanged.
//
// The contract between host and plugin is ABI.md. A module is compiled once
// by Load; each concurrent caller gets its own instance from a small pool,
// because a Wasm instance is single-threaded.
package wasmplugin

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// Options configure a plugin. Zero values take the defaults.
type Options struct {
	// MemoryLimit is the most linear memory one instance may have, in
	// bytes, rounded up to 64 KiB pages. Default 64 MiB.
	MemoryLimit uint64
	// Timeout bounds one call, wall clock. Default 20ms: a plugin's call
	// takes microseconds, the margin is for GC and a busy machine, and a
	// call that times out costs a new instance (milliseconds).
	Timeout time.Duration
	// Instances is the size of the instance pool: at most this many calls
	// run at once, others wait. Default GOMAXPROCS.
	Instances int
	// Config is handed to every instance of the plugin, as JSON, through
	// its weft_configure export (ABI.md) before its first record. A nil or
	// empty Config is sent as {} to a plugin that exports weft_configure;
	// a non-empty Config for a plugin without the export fails Load, as the
	// plugin would silently ignore it.
	Config map[string]any

	// noFuel makes the plugin run with wazero's CloseOnContextDone, as a
	// module instrument cannot rewrite does; for tests and benchmarks.
	noFuel bool
}

const (
	defaultMemoryLimit = 64 << 20
	defaultTimeout     = 20 * time.Millisecond
	wasmPage           = 64 << 10
	maxPages           = 65536 // 4 GiB, wasm32's whole address space
	// stderrHead is how much of a plugin's stderr a CallError keeps.
	stderrHead = 512
)

// Plugin is a loaded plugin. Its methods are safe for concurrent use.
type Plugin struct {
	name     string
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	timeout  time.Duration
	memLimit uint64
	// filter is what weft_attribute_prefixes asked for, read once at load.
	filter *keyFilter
	// config is Options.Config as JSON, sent to each new instance; nil
	// when the plugin does not export weft_configure.
	config []byte
	// fuel says the module is instrumented (instrument.go): the deadline
	// is its fuel global, not the call's context.
	fuel bool
	// callFuel is the fuel of one weft_extract call.
	callFuel int64
	// slots holds one entry per pool place: a ready instance, or nil for
	// a place whose instance is not started yet or was dropped after a
	// failure. Taking from it is how a caller gets exclusive use.
	slots  chan *instance
	closed atomic.Bool
	stats  counters
}

// Load reads, compiles and checks the plugin at path.
func Load(ctx context.Context, path string, opts Options) (*Plugin, error) {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wasm plugin: %w", err)
	}
	return LoadBytes(ctx, path, wasm, opts)
}

// LoadBytes compiles and checks a plugin module; name is used in errors.
// It starts one instance to check the ABI version, so a plugin that cannot
// start or has the wrong version fails here, not on the first span.
func LoadBytes(ctx context.Context, name string, wasm []byte, opts Options) (*Plugin, error) {
	if opts.MemoryLimit == 0 {
		opts.MemoryLimit = defaultMemoryLimit
	}
	if opts.Timeout <= 0 {
		opts.Timeout = defaultTimeout
	}
	if opts.Instances <= 0 {
		opts.Instances = runtime.GOMAXPROCS(0)
	}
	pages := (opts.MemoryLimit + wasmPage - 1) / wasmPage
	if pages > maxPages {
		pages = maxPages
	}
	config, err := encodeConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("wasm plugin %s: %w", name, err)
	}
	p := &Plugin{
		name:     name,
		timeout:  opts.Timeout,
		memLimit: pages * wasmPage,
		slots:    make(chan *instance, opts.Instances),
		config:   config,
		callFuel: callFuel(opts.Timeout),
	}
	// The deadline: fuel checks in the plugin's own loops (instrument.go)
	// when the module can be rewritten, else wazero's CloseOnContextDone,
	// which makes compiled code call into Go at every loop iteration to
	// see whether the call's context is done.
	cfg := wazero.NewRuntimeConfig().WithMemoryLimitPages(uint32(pages))
	if fueled, err := instrument(wasm, p.startFuel()); err == nil && !opts.noFuel {
		wasm, p.fuel = fueled, true
	} else {
		cfg = cfg.WithCloseOnContextDone(true)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	p.rt = rt
	if err := p.init(ctx, wasm, len(opts.Config) > 0); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("wasm plugin %s: %w", name, err)
	}
	return p, nil
}

// encodeConfig returns cfg as the JSON weft_configure gets: an object, {}
// for none.
func encodeConfig(cfg map[string]any) ([]byte, error) {
	if len(cfg) == 0 {
		return []byte("{}"), nil
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("config cannot be sent to the plugin as JSON: %w", err)
	}
	return b, nil
}

func (p *Plugin) init(ctx context.Context, wasm []byte, hasConfig bool) error {
	compiled, err := compileModule(ctx, p.rt, wasm)
	if err != nil {
		return fmt.Errorf("not a valid wasm module: %w", err)
	}
	p.compiled = compiled
	if err := checkModule(compiled); err != nil {
		return err
	}
	if _, ok := compiled.ExportedFunctions()[exportConfigure]; !ok {
		if hasConfig {
			return fmt.Errorf("config is set but the plugin does not export %s, so it cannot read it: remove config, or add the export (see ABI.md)", exportConfigure)
		}
		p.config = nil
	}
	// The WASI host module is shared by all instances. Only what Go's
	// wasip1 runtime needs at start does anything: clocks and random are
	// configured per instance, there are no preopened directories and no
	// sockets, so file and socket calls fail with EBADF/ENOTSUP.
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, p.rt); err != nil {
		return fmt.Errorf("starting WASI: %w", err)
	}
	inst, err := p.newInstance(ctx)
	if err != nil {
		return err
	}
	stack := []uint64{0}
	vctx, cancel := context.WithTimeout(ctx, p.startTimeout())
	defer cancel()
	if err := inst.mod.ExportedFunction(exportVersion).CallWithStack(vctx, stack); err != nil {
		return fmt.Errorf("%s failed: %w", exportVersion, err)
	}
	if v := int32(stack[0]); v != ABIVersion {
		return fmt.Errorf("plugin implements ABI version %d, this Weft implements version %d: rebuild the plugin against ABI.md version %d", v, ABIVersion, ABIVersion)
	}
	if f := inst.mod.ExportedFunction(exportPrefixes); f != nil {
		if err := f.CallWithStack(vctx, stack); err != nil {
			return fmt.Errorf("%s failed: %w", exportPrefixes, err)
		}
		b, ok := inst.mem.Read(uint32(stack[0]>>32), uint32(stack[0]))
		if !ok {
			return fmt.Errorf("%s returned %#x, outside the plugin's memory (see ABI.md)", exportPrefixes, stack[0])
		}
		if p.filter, err = decodePrefixes(b); err != nil {
			return fmt.Errorf("%s: %w (see ABI.md)", exportPrefixes, err)
		}
	}
	p.slots <- inst
	for len(p.slots) < cap(p.slots) {
		p.slots <- nil
	}
	return nil
}

// compileModule is rt.CompileModule, with a panic made an error: wazero
// 1.12's validation panics on some malformed modules (a call to a function
// whose type index is out of range), and a user's file must not crash the
// collector.
func compileModule(ctx context.Context, rt wazero.Runtime, wasm []byte) (c wazero.CompiledModule, err error) {
	if impossibleCounts(wasm) {
		return nil, errors.New("a count in it is larger than the bytes that follow (a malformed module)")
	}
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("wazero panicked compiling it: %v", r)
		}
	}()
	return rt.CompileModule(ctx, wasm)
}

// checkModule checks the module's imports and exports against ABI.md, so
// that a wrong module fails at load with a message saying what is wrong.
func checkModule(m wazero.CompiledModule) error {
	for _, f := range m.ImportedFunctions() {
		mod, fn, _ := f.Import()
		if mod != wasiModule {
			return fmt.Errorf("plugin imports %s.%s; plugins may import only %s functions (see ABI.md)", mod, fn, wasiModule)
		}
	}
	for _, mem := range m.ImportedMemories() {
		mod, n, _ := mem.Import()
		return fmt.Errorf("plugin imports memory %s.%s; a plugin must define and export its own memory (see ABI.md)", mod, n)
	}
	if _, ok := m.ExportedMemories()[exportMemory]; !ok {
		return fmt.Errorf("plugin does not export its memory as %q (see ABI.md)", exportMemory)
	}
	want := []struct {
		name           string
		params, result []api.ValueType
		optional       bool
	}{
		{exportVersion, nil, []api.ValueType{api.ValueTypeI32}, false},
		{exportAlloc, []api.ValueType{api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}, false},
		{exportExtract, []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI64}, false},
		{exportPrefixes, nil, []api.ValueType{api.ValueTypeI64}, true},
		{exportConfigure, []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}, true},
	}
	exports := m.ExportedFunctions()
	for _, w := range want {
		f, ok := exports[w.name]
		if !ok && w.optional {
			continue
		}
		if !ok {
			return fmt.Errorf("plugin does not export %s (see ABI.md; in Go: //go:wasmexport %s, built with -buildmode=c-shared)", w.name, w.name)
		}
		if !slices.Equal(f.ParamTypes(), w.params) || !slices.Equal(f.ResultTypes(), w.result) {
			return fmt.Errorf("plugin export %s has signature %s -> %s, want %s -> %s (see ABI.md)", w.name,
				typeNames(f.ParamTypes()), typeNames(f.ResultTypes()), typeNames(w.params), typeNames(w.result))
		}
	}
	return nil
}

func typeNames(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return "(" + strings.Join(names, ", ") + ")"
}

// startTimeout bounds starting an instance (a Go plugin's runtime init) and
// the version check, which may take much longer than a call.
func (p *Plugin) startTimeout() time.Duration {
	return max(100*p.timeout, 5*time.Second)
}

// callFuel and startFuel are the fuel budgets of a call and of start-up
// work (weft_alloc, weft_configure, _initialize): a unit per nanosecond of
// their deadline, as a loop iteration takes a nanosecond or more.
func callFuel(timeout time.Duration) int64 {
	return max(timeout.Nanoseconds(), int64(time.Millisecond))
}
func (p *Plugin) startFuel() int64 { return p.startTimeout().Nanoseconds() }

// instance is one running copy of the plugin, used by one caller at a time.
type instance struct {
	mod            api.Module
	mem            api.Memory
	alloc, extract api.Function
	inPtr, inCap   uint32 // the input buffer the plugin gave weft_alloc
	stack          [2]uint64
	stderr         headWriter
	keys           map[string]string // interned answer keys

	// The per-call deadline. wazero stops a call when the context it was
	// given is done; a context.WithTimeout per call costs allocations and
	// a timer each time, so every instance has one context for its whole
	// life and one timer, armed for each call, that cancels it. Once it
	// has fired the instance is dead anyway (wazero closes the module).
	ctx      context.Context
	cancel   context.CancelFunc
	timer    *time.Timer
	timedOut atomic.Bool
	// calling is true while weft_extract runs: the timer keeps emptying
	// the fuel until it returns.
	calling atomic.Bool

	// fuel is the instrumented module's fuel global (nil without). The
	// timer empties it from its own goroutine; fuelMu orders that with
	// the host's refills, as far as Go is concerned (the plugin's code
	// reads and writes it without Go knowing).
	fuel   api.MutableGlobal
	fuelMu sync.Mutex
}

// setFuel sets the instance's fuel, if it has any.
func (inst *instance) setFuel(v int64) {
	if inst.fuel == nil {
		return
	}
	inst.fuelMu.Lock()
	inst.fuel.Set(uint64(v))
	inst.fuelMu.Unlock()
}

// outOfFuel says whether the instrumented plugin stopped because its fuel
// ran out (or the timer emptied it).
func (inst *instance) outOfFuel() bool {
	if inst.fuel == nil {
		return false
	}
	inst.fuelMu.Lock()
	defer inst.fuelMu.Unlock()
	return int64(inst.fuel.Get()) < 0
}

// close stops the instance's timer and module.
func (inst *instance) close() {
	inst.timer.Stop()
	inst.cancel()
	_ = inst.mod.Close(context.Background())
}

func (p *Plugin) newInstance(ctx context.Context) (*instance, error) {
	inst := &instance{keys: make(map[string]string)}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous, so the pool may hold many instances
		// A reactor (Go -buildmode=c-shared) starts its runtime in
		// _initialize; a module without it has nothing to start.
		WithStartFunctions("_initialize").
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader).
		WithStderr(&inst.stderr)
	sctx, cancel := context.WithTimeout(ctx, p.startTimeout())
	defer cancel()
	mod, err := p.rt.InstantiateModule(sctx, p.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("starting an instance: %w%s", err, inst.stderr.suffix())
	}
	p.stats.instantiations.Add(1)
	inst.mod = mod
	inst.mem = mod.ExportedMemory(exportMemory)
	inst.alloc = mod.ExportedFunction(exportAlloc)
	inst.extract = mod.ExportedFunction(exportExtract)
	// Not derived from ctx: the instance outlives the call that made it.
	inst.ctx, inst.cancel = context.WithCancel(context.Background())
	if p.fuel {
		g, ok := mod.ExportedGlobal(fuelExport).(api.MutableGlobal)
		if !ok {
			_ = mod.Close(context.Background())
			return nil, fmt.Errorf("the instrumented module has no mutable %s (a bug in Weft)", fuelExport)
		}
		inst.fuel = g
	}
	inst.timer = time.AfterFunc(time.Hour, func() {
		inst.timedOut.Store(true)
		// The plugin traps at its next loop iteration; without fuel,
		// wazero closes the module when it sees the context done.
		inst.setFuel(0)
		inst.cancel()
		// A plugin between reading and writing its fuel global writes back
		// its old count minus one over the zero: empty it again until the
		// call has returned.
		if inst.calling.Load() {
			inst.timer.Reset(time.Millisecond)
		}
	})
	inst.timer.Stop()
	inst.setFuel(p.startFuel())
	if p.config != nil {
		if err := p.configure(ctx, inst); err != nil {
			inst.close()
			return nil, err
		}
	}
	return inst, nil
}

// configure hands the plugin's config to a new instance: written into the
// input buffer (which records reuse afterwards), then weft_configure. A
// plugin rejects its config by returning non-zero, and may say why on
// stderr.
func (p *Plugin) configure(ctx context.Context, inst *instance) error {
	inst.stderr.reset()
	if _, err := p.ensureBuffer(ctx, inst, len(p.config)); err != nil {
		return fmt.Errorf("getting a buffer for the config: %w%s", err, inst.stderr.suffix())
	}
	buf, ok := inst.mem.Read(inst.inPtr, uint32(len(p.config)))
	if !ok {
		return fmt.Errorf("input buffer %#x+%d is not inside the plugin's memory", inst.inPtr, len(p.config))
	}
	copy(buf, p.config)
	cctx, cancel := context.WithTimeout(ctx, p.startTimeout())
	defer cancel()
	inst.setFuel(p.startFuel())
	inst.stack[0], inst.stack[1] = uint64(inst.inPtr), uint64(len(p.config))
	if err := inst.mod.ExportedFunction(exportConfigure).CallWithStack(cctx, inst.stack[:2]); err != nil {
		return fmt.Errorf("%s failed: %w%s", exportConfigure, err, inst.stderr.suffix())
	}
	if rc := int32(inst.stack[0]); rc != 0 {
		msg := inst.stderr.String()
		if msg == "" {
			msg = "it gave no reason on stderr"
		}
		return fmt.Errorf("the plugin rejected its config (%s returned %d): %s", exportConfigure, rc, msg)
	}
	return nil
}

// ensureBuffer makes sure inst's input buffer holds size bytes, asking the
// plugin's weft_alloc for a larger one if not. weft_alloc runs once per
// instance or when records outgrow the buffer, and may grow memory and
// collect garbage: it gets the start-up deadline, not the per-record one.
func (p *Plugin) ensureBuffer(ctx context.Context, inst *instance, size int) (Failure, error) {
	if uint32(size) <= inst.inCap {
		return 0, nil
	}
	want := max(uint32(minInputBuffer), nextPow2(uint32(size)))
	actx, acancel := context.WithTimeout(ctx, p.startTimeout())
	defer acancel()
	inst.setFuel(p.startFuel())
	inst.stack[0] = uint64(want)
	if err := inst.alloc.CallWithStack(actx, inst.stack[:1]); err != nil {
		return p.classify(actx, inst, err), fmt.Errorf("%s(%d): %w", exportAlloc, want, err)
	}
	ptr := uint32(inst.stack[0])
	if ptr == 0 || uint64(ptr)+uint64(want) > uint64(inst.mem.Size()) {
		return FailureGarbage, fmt.Errorf("%s(%d) returned %#x, not a buffer inside its %d bytes of memory", exportAlloc, want, ptr, inst.mem.Size())
	}
	inst.inPtr, inst.inCap = ptr, want
	return 0, nil
}

// Name returns the name the plugin was loaded with.
func (p *Plugin) Name() string { return p.name }

// Stats returns the plugin's counters.
func (p *Plugin) Stats() Stats { return p.stats.snapshot() }

// Extract runs the plugin on rec and appends the pairs it extracted to dst.
// On error dst is returned unchanged and the error is a *CallError; the
// caller should pass the record on as it was and count the failure
// (FailureOf). It blocks only while all instances are busy, and no longer
// than ctx allows.
func (p *Plugin) Extract(ctx context.Context, rec Record, dst []KV) ([]KV, error) {
	p.stats.calls.Add(1)
	size, resN, spanN := encodedSize(rec, p.filter)
	if size > MaxInputBytes {
		return dst, p.fail(FailureInput, fmt.Errorf("record encodes to %d bytes, more than %d", size, MaxInputBytes), "")
	}
	// The caller's context is checked here and while waiting for an
	// instance; during the call the per-call deadline bounds the wait.
	if err := ctx.Err(); err != nil {
		return dst, p.fail(FailureUnavailable, err, "")
	}
	inst, err := p.acquire(ctx)
	if err != nil {
		return dst, p.fail(FailureUnavailable, err, "")
	}
	out, f, err := p.call(ctx, inst, rec, size, resN, spanN, dst)
	if err != nil {
		stderr := inst.stderr.String()
		// An instance that failed may be closed or half-way through
		// anything: drop it, the next caller of its slot starts a new one.
		inst.close()
		p.slots <- nil
		return dst, p.fail(f, err, stderr)
	}
	p.slots <- inst
	return out, nil
}

func (p *Plugin) fail(f Failure, err error, stderr string) error {
	p.stats.failures[f].Add(1)
	return &CallError{Plugin: p.name, Failure: f, Err: err, Stderr: stderr}
}

func (p *Plugin) acquire(ctx context.Context) (*instance, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	var inst *instance
	select {
	case inst = <-p.slots:
	default:
		select {
		case inst = <-p.slots:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a free instance: %w", ctx.Err())
		}
	}
	if inst != nil {
		return inst, nil
	}
	if p.closed.Load() {
		p.slots <- nil
		return nil, ErrClosed
	}
	inst, err := p.newInstance(ctx)
	if err != nil {
		p.slots <- nil
		return nil, err
	}
	return inst, nil
}

// call sends rec to inst and decodes the answer. It returns the failure kind
// with any error.
func (p *Plugin) call(ctx context.Context, inst *instance, rec Record, size, resN, spanN int, dst []KV) (out []KV, f Failure, err error) {
	inst.stderr.reset()
	// wazero turns panics inside the guest into errors; this is the last
	// line that keeps a bug on either side from taking the collector down.
	defer func() {
		if r := recover(); r != nil {
			out, f, err = dst, FailureTrap, fmt.Errorf("panic during call: %v", r)
		}
	}()

	if f, err := p.ensureBuffer(ctx, inst, size); err != nil {
		return dst, f, err
	}
	// Encode straight into the plugin's memory: one copy of the record.
	buf, ok := inst.mem.Read(inst.inPtr, uint32(size))
	if !ok {
		return dst, FailureGarbage, fmt.Errorf("input buffer %#x+%d is no longer inside the plugin's memory", inst.inPtr, size)
	}
	encode(buf, rec, p.filter, resN, spanN)

	inst.stack[0], inst.stack[1] = uint64(inst.inPtr), uint64(size)
	inst.setFuel(p.callFuel)
	inst.calling.Store(true)
	inst.timer.Reset(p.timeout)
	err = inst.extract.CallWithStack(inst.ctx, inst.stack[:2])
	inst.calling.Store(false)
	if !inst.timer.Stop() || inst.timedOut.Load() {
		// The deadline passed, during the call or just after it: either
		// way the instance's context is cancelled and it must go.
		return dst, FailureTimeout, fmt.Errorf("%s: did not return within %v", exportExtract, p.timeout)
	}
	if err != nil {
		return dst, p.classify(inst.ctx, inst, err), fmt.Errorf("%s: %w", exportExtract, err)
	}
	res := inst.stack[0]
	ptr, n := uint32(res>>32), uint32(res)
	if n == 0 {
		return dst, 0, nil
	}
	if n > MaxOutputBytes {
		return dst, FailureGarbage, fmt.Errorf("answer of %d bytes is larger than %d", n, MaxOutputBytes)
	}
	b, ok := inst.mem.Read(ptr, n)
	if !ok {
		return dst, FailureGarbage, fmt.Errorf("answer %#x+%d is outside the plugin's %d bytes of memory", ptr, n, inst.mem.Size())
	}
	out, err = decodeOutput(b, dst, inst.keys)
	if err != nil {
		return dst, FailureGarbage, err
	}
	return out, 0, nil
}

// classify names the failure of a call that returned err.
func (p *Plugin) classify(cctx context.Context, inst *instance, err error) Failure {
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == sys.ExitCodeDeadlineExceeded ||
		errors.Is(cctx.Err(), context.DeadlineExceeded) || inst.timedOut.Load() || inst.outOfFuel() {
		return FailureTimeout
	}
	// Memory exhaustion has no error of its own: Go's runtime prints "out of
	// memory" and exits, other languages trap. Memory close to the limit
	// (within the 4 MiB Go grows its heap by, or an eighth of the limit)
	// is taken as the cause.
	slack := max(p.memLimit/8, 4<<20)
	if strings.Contains(inst.stderr.String(), "out of memory") || uint64(inst.mem.Size())+slack >= p.memLimit {
		return FailureMemory
	}
	return FailureTrap
}

func nextPow2(v uint32) uint32 {
	if v <= 1 {
		return 1
	}
	v--
	for s := uint(1); s < 32; s <<= 1 {
		v |= v >> s
	}
	return v + 1
}

// Close stops all instances and frees the compiled module. Calls that are
// running finish or fail; later calls fail with ErrClosed.
func (p *Plugin) Close(ctx context.Context) error {
	p.closed.Store(true)
	return p.rt.Close(ctx)
}

// headWriter keeps the first stderrHead bytes written to it since reset:
// the start of a Go panic says what went wrong, the rest is a stack dump.
type headWriter struct {
	buf []byte
}

func (w *headWriter) Write(b []byte) (int, error) {
	if room := stderrHead - len(w.buf); room > 0 {
		w.buf = append(w.buf, b[:min(room, len(b))]...)
	}
	return len(b), nil
}

func (w *headWriter) reset()         { w.buf = w.buf[:0] }
func (w *headWriter) String() string { return strings.TrimSpace(string(w.buf)) }

func (w *headWriter) suffix() string {
	if s := w.String(); s != "" {
		return "; plugin stderr: " + s
	}
	return ""
}
