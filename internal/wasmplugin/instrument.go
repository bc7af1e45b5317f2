package wasmplugin

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// The per-call deadline is enforced by the plugin's own code: before
// compiling, instrument adds a mutable i64 global, the fuel, and at the top
// of every loop body, and of every function that calls (recursion runs
// for ever without a loop too), a few instructions that take one from it
// and trap (unreachable) when it is below zero. The host sets the fuel before each
// call, and a timer sets it to zero when the call overruns its deadline.
//
// This replaces wazero's WithCloseOnContextDone, which makes every loop
// iteration call into Go to see whether the module was closed (about 30ns
// each in wazero 1.12, and a goroutine per call to watch the context); the
// fuel check is a load, a store and a compare in native code. The fuel
// also bounds a call when the timer cannot run: native code cannot be
// preempted, so with GOMAXPROCS=1, or while a stop-the-world GC waits for
// the call, only the fuel stops a plugin that loops. The budget is one unit
// per nanosecond of the deadline, and a loop iteration takes about a
// nanosecond at least, so the fuel alone stops a tight loop within about
// the deadline; the timer stops slower loops.
//
// A module the rewriter does not understand (an opcode it does not know)
// is run with WithCloseOnContextDone instead: slower, as safe.

// fuelExport is the name the fuel global is exported under, for the host.
const fuelExport = "weft$fuel"

// Section ids of the binary format.
const (
	secCustom = 0
	secImport = 2
	secMemory = 5
	secTag    = 13
	secGlobal = 6
	secExport = 7
	secCode   = 10
)

// errUnsupported says instrument met something it cannot rewrite safely.
var errUnsupported = errors.New("cannot instrument")

// instrument returns wasm with the fuel global (initial value fuel) and the
// loop checks added. It fails, leaving the caller to use another deadline,
// on anything it does not understand; it never returns a module that means
// something else than the input.
func instrument(wasm []byte, fuel int64) (out []byte, err error) {
	defer func() {
		// A truncated or malformed module can make the reader index past
		// the end; the module is then not ours to fix: wazero will say
		// what is wrong with it.
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("%w: malformed module: %v", errUnsupported, r)
		}
	}()
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" || binary.LittleEndian.Uint32(wasm[4:]) != 1 {
		return nil, fmt.Errorf("%w: not a wasm binary, version 1", errUnsupported)
	}
	type section struct {
		id   byte
		body []byte
	}
	var sections []section
	r := &reader{b: wasm, o: 8}
	for r.o < len(r.b) {
		id := r.byte()
		n := int(r.u32())
		body := r.bytes(n)
		if id == secCustom {
			// Debug info and code metadata point at code offsets, which
			// move; the rest (names, producers) is kept. wazero rejects a
			// name that is not UTF-8: dropping the section must not hide
			// that.
			name := (&reader{b: body}).name()
			if !utf8.ValidString(name) {
				return nil, fmt.Errorf("%w: custom section name is not UTF-8", errUnsupported)
			}
			if strings.HasPrefix(name, ".debug_") || strings.HasPrefix(name, "metadata.code.") {
				continue
			}
		}
		sections = append(sections, section{id, body})
	}

	// The fuel's index comes after every imported and defined global.
	importedGlobals, definedGlobals := 0, 0
	hasGlobal := false
	var exports []byte
	for _, s := range sections {
		switch s.id {
		case secImport:
			importedGlobals = countImportedGlobals(s.body)
		case secGlobal:
			hasGlobal = true
			n, err := countGlobals(s.body)
			if err != nil {
				return nil, err
			}
			definedGlobals = n
		case secExport:
			exports = s.body
		}
	}
	if exports == nil {
		return nil, fmt.Errorf("%w: the module exports nothing", errUnsupported)
	}
	if importedGlobals+definedGlobals >= math.MaxUint32 {
		return nil, fmt.Errorf("%w: too many globals", errUnsupported)
	}
	fuelIndex := uint32(importedGlobals + definedGlobals)
	// The original may not name the fuel: not as an export, and not in its
	// code (instrumentFunc). Such a module was invalid (no global has that
	// index) and would become valid, with a plugin that refills its fuel.
	if err := checkExports(exports, fuelIndex); err != nil {
		return nil, err
	}
	check := loopCheck(fuelIndex)

	// The new global: (mut i64) (i64.const fuel).
	newGlobal := []byte{0x7e, 0x01, 0x42}
	newGlobal = appendS64(newGlobal, fuel)
	newGlobal = append(newGlobal, 0x0b)

	res := append([]byte(nil), wasm[:8]...)
	put := func(id byte, body []byte) {
		res = append(res, id)
		res = appendU32(res, uint32(len(body)))
		res = append(res, body...)
	}
	globalDone := false
	putGlobal := func(body []byte) {
		globalDone = true
		if body == nil {
			put(secGlobal, append(appendU32(nil, 1), newGlobal...))
			return
		}
		rb := &reader{b: body}
		n := rb.u32() // below MaxUint32: checked with fuelIndex
		nb := appendU32(nil, n+1)
		nb = append(nb, body[rb.o:]...)
		put(secGlobal, append(nb, newGlobal...))
	}
	for _, s := range sections {
		switch {
		case s.id == secGlobal:
			putGlobal(s.body)
			continue
		case !hasGlobal && !globalDone && s.id != secCustom && order(s.id) > order(secGlobal):
			putGlobal(nil)
		}
		switch s.id {
		case secExport:
			rb := &reader{b: s.body}
			n := rb.u32()
			if n == math.MaxUint32 {
				return nil, fmt.Errorf("%w: too many exports", errUnsupported)
			}
			nb := appendU32(nil, n+1)
			nb = append(nb, s.body[rb.o:]...)
			nb = appendU32(nb, uint32(len(fuelExport)))
			nb = append(nb, fuelExport...)
			nb = append(nb, 0x03) // global
			nb = appendU32(nb, fuelIndex)
			put(secExport, nb)
		case secCode:
			body, err := instrumentCode(s.body, check, fuelIndex)
			if err != nil {
				return nil, err
			}
			put(secCode, body)
		default:
			put(s.id, s.body)
		}
	}
	if !globalDone {
		putGlobal(nil)
	}
	return res, nil
}

// order is a section's place in the binary format's order (the tag
// section, 13, goes between memory and global).
func order(id byte) int {
	switch {
	case id == secTag:
		return secMemory*2 + 1
	case id == 12: // data count, between element and code
		return 9*2 + 1
	}
	return int(id) * 2
}

// loopCheck is what goes at the top of every loop body (and of every
// function that calls): fuel -= 1; if fuel < 0 { unreachable }. It leaves
// the operand stack as it found it, so it fits any loop, with or without
// parameters.
func loopCheck(fuel uint32) []byte {
	var b []byte
	b = append(b, 0x23) // global.get
	b = appendU32(b, fuel)
	b = append(b, 0x42, 0x01, 0x7d) // i64.const 1; i64.sub
	b = append(b, 0x24)             // global.set
	b = appendU32(b, fuel)
	b = append(b, 0x23) // global.get
	b = appendU32(b, fuel)
	b = append(b, 0x42, 0x00, 0x53) // i64.const 0; i64.lt_s
	b = append(b, 0x04, 0x40, 0x00, 0x0b)
	return b // if; unreachable; end
}

func countImportedGlobals(body []byte) int {
	r := &reader{b: body}
	n := int(r.u32())
	globals := 0
	for range n {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // func: type index
			r.u32()
		case 0x01: // table: reftype, limits
			r.byte()
			r.limits()
		case 0x02: // memory: limits
			r.limits()
		case 0x03: // global: valtype, mutability
			r.byte()
			r.byte()
			globals++
		case 0x04: // tag: attribute, type index
			r.byte()
			r.u32()
		default:
			panic(fmt.Sprintf("import kind %#x", kind))
		}
	}
	return globals
}

// checkExports fails if the export section already uses the fuel's name,
// or exports a global at or past fuelIndex (the fuel's, once added).
func checkExports(body []byte, fuelIndex uint32) error {
	r := &reader{b: body}
	n := int(r.u32())
	for range n {
		if r.name() == fuelExport {
			return fmt.Errorf("%w: the module already exports %s", errUnsupported, fuelExport)
		}
		kind, index := r.byte(), r.u32()
		if kind == 0x03 && index >= fuelIndex {
			return fmt.Errorf("%w: export of global %d, which the module does not have", errUnsupported, index)
		}
	}
	// The fuel's export goes after the last: bytes after it would read as
	// part of the new export.
	if r.o != len(body) {
		return fmt.Errorf("%w: %d bytes after the exports", errUnsupported, len(body)-r.o)
	}
	return nil
}

// countGlobals returns the number of globals in the global section body,
// and fails if the section has bytes after them: they would read as part
// of the fuel global, appended after the last.
func countGlobals(body []byte) (int, error) {
	r := &reader{b: body}
	n := int(r.u32())
	for range n {
		if t := r.byte(); t == 0x63 || t == 0x64 { // GC reference types: a heap type follows
			return 0, fmt.Errorf("%w: global of type %#x", errUnsupported, t)
		}
		r.byte() // mutability
		// The initializer: a constant expression, no blocks, up to end.
		for op := r.byte(); op != 0x0b; op = r.byte() {
			if err := r.skipImmediates(op); err != nil {
				return 0, err
			}
		}
	}
	if r.o != len(body) {
		return 0, fmt.Errorf("%w: %d bytes after the globals", errUnsupported, len(body)-r.o)
	}
	return n, nil
}

// instrumentCode rewrites the code section: every function body with the
// check after each loop instruction, and at its start if it calls.
func instrumentCode(body []byte, check []byte, fuelIndex uint32) ([]byte, error) {
	r := &reader{b: body}
	n := r.u32()
	out := appendU32(make([]byte, 0, len(body)+len(body)/8), n)
	var fn []byte
	for range n {
		size := int(r.u32())
		code := r.bytes(size)
		var err error
		if fn, err = instrumentFunc(fn[:0], code, check, fuelIndex); err != nil {
			return nil, err
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	if r.o != len(r.b) {
		return nil, fmt.Errorf("%w: %d bytes after the code section's functions", errUnsupported, len(r.b)-r.o)
	}
	return out, nil
}

// instrumentFunc copies one function body (locals, then instructions) to
// dst, adding check after every loop's block type, and after the locals if
// the function calls another. Recursion (a cycle in the call graph) repeats
// without a loop instruction, and every function on such a cycle calls; a
// function that does not call either returns or runs a loop, which has its
// own check.
func instrumentFunc(dst, code, check []byte, fuelIndex uint32) ([]byte, error) {
	r := &reader{b: code}
	groups := int(r.u32())
	for range groups {
		r.u32()
		if t := r.byte(); t == 0x63 || t == 0x64 { // GC reference types: a heap type follows
			return nil, fmt.Errorf("%w: local of type %#x", errUnsupported, t)
		}
	}
	dst = append(dst, code[:r.o]...)
	entry := len(dst) // where the function's check goes, if it calls
	calls := false
	last := r.o // code[last:r.o] is copied but not yet written
	for r.o < len(code) {
		op := r.byte()
		switch {
		case op == 0x03: // loop
			r.blockType()
			dst = append(dst, code[last:r.o]...)
			dst = append(dst, check...)
			last = r.o
		case op == 0x02 || op == 0x04: // block, if
			r.blockType()
		case op == 0x23 || op == 0x24: // global.get, global.set
			// Only the rewriter may touch the fuel (see instrument).
			if g := r.u32(); g >= fuelIndex {
				return nil, fmt.Errorf("%w: global %d, which the module does not have", errUnsupported, g)
			}
		default:
			// call, call_indirect, return_call, return_call_indirect
			calls = calls || (op >= 0x10 && op <= 0x13)
			if err := r.skipImmediates(op); err != nil {
				return nil, err
			}
		}
	}
	dst = append(dst, code[last:]...)
	if calls {
		dst = slices.Insert(dst, entry, check...)
	}
	return dst, nil
}

// reader reads the binary format. It panics past the end of its bytes;
// instrument recovers.
type reader struct {
	b []byte
	o int
}

func (r *reader) byte() byte {
	c := r.b[r.o]
	r.o++
	return c
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b)-r.o {
		panic("length past the end")
	}
	b := r.b[r.o : r.o+n]
	r.o += n
	return b
}

// leb skips or reads an unsigned LEB128 value of at most 10 bytes.
func (r *reader) leb() uint64 {
	var v uint64
	for shift := 0; ; shift += 7 {
		if shift >= 70 {
			panic("LEB128 too long")
		}
		c := r.byte()
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
}

// u32 reads an unsigned LEB128 value of 32 bits, at most 5 bytes, as
// wazero does: a longer or larger one would be re-encoded by the rewriter
// as a valid one, where wazero rejects the original.
func (r *reader) u32() uint32 {
	var v uint32
	for i := 0; ; i++ {
		c := r.byte()
		if i == 4 && c&0xf0 != 0 { // the 5th byte holds bits 28-31
			panic("LEB128 u32 overflows")
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v
		}
	}
}

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

func (r *reader) limits() {
	flags := r.byte()
	r.leb()
	if flags&0x01 != 0 {
		r.leb()
	}
}

// blockType skips a block type: 0x40 (empty), a value type (one byte), or
// a type index (a signed LEB128, positive).
func (r *reader) blockType() {
	switch c := r.b[r.o]; {
	case c == 0x40 || (c >= 0x6f && c <= 0x7f):
		r.o++
	default:
		r.leb()
	}
}

func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.leb()
}

// skipImmediates skips the immediates of the instruction op (already
// read), as the WebAssembly 2.0 core spec, SIMD, threads and exception
// handling define them. An opcode it does not know is an error.
func (r *reader) skipImmediates(op byte) error {
	switch {
	case op <= 0x01, op == 0x05, op == 0x0a, op == 0x0b, op == 0x0f, op == 0x19,
		op == 0x1a, op == 0x1b, op >= 0x45 && op <= 0xc4, op == 0xd1:
		// No immediates.
	case op == 0x06: // try (legacy exception handling)
		r.blockType()
	case op == 0x07, op == 0x08, op == 0x09, op == 0x18, // catch, throw, rethrow, delegate
		op == 0x0c, op == 0x0d, op == 0x10, op == 0x12, // br, br_if, call, return_call
		op >= 0x20 && op <= 0x26, // local.*, global.*, table.get/set
		op == 0x3f, op == 0x40,   // memory.size/grow
		op == 0xd2: // ref.func
		r.u32()
	case op == 0x0e: // br_table
		n := int(r.u32())
		for range n + 1 {
			r.u32()
		}
	case op == 0x11, op == 0x13: // call_indirect, return_call_indirect
		r.u32()
		r.u32()
	case op == 0x1c: // select t*
		n := int(r.u32())
		r.bytes(n)
	case op == 0x1f: // try_table
		r.blockType()
		n := int(r.u32())
		for range n {
			if kind := r.byte(); kind <= 0x01 {
				r.u32() // tag
			}
			r.u32() // label
		}
	case op >= 0x28 && op <= 0x3e: // loads and stores
		r.memarg()
	case op == 0x41, op == 0x42: // i32.const, i64.const
		r.leb()
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xd0: // ref.null
		r.byte()
	case op == 0xfc:
		switch sub := r.u32(); {
		case sub <= 7: // saturating truncations
		case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
			r.u32()
			r.u32()
		case sub <= 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
			r.u32()
		default:
			return fmt.Errorf("%w: opcode 0xfc %d", errUnsupported, sub)
		}
	case op == 0xfd:
		switch sub := r.u32(); {
		case sub <= 11, sub == 92, sub == 93: // loads, stores
			r.memarg()
		case sub == 12, sub == 13: // v128.const, i8x16.shuffle
			r.bytes(16)
		case sub >= 21 && sub <= 34: // extract/replace lane
			r.byte()
		case sub >= 84 && sub <= 91: // load/store lane
			r.memarg()
			r.byte()
		case sub <= 0x113: // the rest, relaxed SIMD included, have none
		default:
			return fmt.Errorf("%w: opcode 0xfd %d", errUnsupported, sub)
		}
	case op == 0xfe:
		switch sub := r.u32(); {
		case sub == 3: // atomic.fence
			r.byte()
		case sub <= 0x4e:
			r.memarg()
		default:
			return fmt.Errorf("%w: opcode 0xfe %d", errUnsupported, sub)
		}
	default:
		return fmt.Errorf("%w: opcode %#x", errUnsupported, op)
	}
	return nil
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
