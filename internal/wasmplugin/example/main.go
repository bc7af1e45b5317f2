//go:build wasip1

// Command example is a Weft Wasm plugin (ABI.md) that extracts a request id
// and an upstream trace id from captured HTTP header attributes, so that
// trace_completion can join spans that carry the same ids. Build it with
// `make plugins`, or:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o example.wasm ./internal/wasmplugin/example
//
// It is also a template: everything but extract() is the ABI plumbing any
// Go plugin needs.
package main

import (
	"encoding/binary"
	"unsafe"

	"github.com/weftobs/weft/internal/vocab"
)

// Attributes read, as OTel semantic conventions name captured headers.
const (
	requestIDReq  = "http.request.header.x-request-id"
	requestIDResp = "http.response.header.x-request-id"
	upstreamTrace = "http.request.header.x-upstream-trace-id"
)

// The same keys as bytes, for equal.
var (
	keyReq  = []byte(requestIDReq)
	keyResp = []byte(requestIDResp)
	keyUp   = []byte(upstreamTrace)
)

// UpstreamTraceID is the key the upstream trace id is returned under.
const UpstreamTraceID = "weft.upstream.trace_id"

// The input buffer handed to the host by weft_alloc and the answer buffer.
// Both are kept in globals so Go's (non-moving) GC keeps them alive, and
// reused across calls so a call allocates nothing.
var (
	input  []byte
	output []byte
)

//lint:ignore U1000 called by the host (//go:wasmexport), which staticcheck does not see
//go:wasmexport weft_abi_version
func abiVersion() int32 { return 1 }

// prefixes is the answer of weft_attribute_prefixes: the host sends only
// attributes under these prefixes, so extract walks a handful of entries
// instead of all of a span's attributes.
var prefixes = func() []byte {
	var b []byte
	list := []string{"http.request.header.", "http.response.header."}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(list)))
	for _, p := range list {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	return b
}()

//lint:ignore U1000 called by the host (//go:wasmexport), which staticcheck does not see
//go:wasmexport weft_attribute_prefixes
func attributePrefixes() int64 { return pack(prefixes) }

//lint:ignore U1000 called by the host (//go:wasmexport), which staticcheck does not see
//go:wasmexport weft_alloc
func alloc(size int32) int32 {
	if size <= 0 {
		return 0
	}
	input = make([]byte, size)
	return int32(uintptr(unsafe.Pointer(&input[0])))
}

//lint:ignore U1000 called by the host (//go:wasmexport), which staticcheck does not see
//go:wasmexport weft_extract
func extractExport(ptr, n int32) int64 {
	// The host wrote the record at the start of the buffer weft_alloc
	// handed out (ABI.md): use that slice rather than trusting a raw
	// pointer, and answer nothing if the host said something else.
	if len(input) == 0 || ptr != int32(uintptr(unsafe.Pointer(&input[0]))) || n < 0 || int(n) > len(input) {
		return 0
	}
	output = extract(input[:n], output[:0])
	return pack(output)
}

// pack returns b as the ABI's packed pointer (high 32 bits) and length
// (low 32 bits); 0 for nothing.
func pack(b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	return int64(uint64(uintptr(unsafe.Pointer(&b[0])))<<32 | uint64(len(b)))
}

// extract reads the record and appends the answer to out. Values are
// sub-slices of rec: nothing is copied until the answer is written.
//
// It is written for speed under the host's deadline check, which costs
// about 30ns at every loop iteration and every call that is not inlined
// (ABI.md, "Performance"): one pass, keys told apart by length and
// compared a word at a time, helpers small enough to inline, values
// trimmed only when they are used.
func extract(rec []byte, out []byte) []byte {
	_, o, ok := field(rec, 0) // span name
	o += 4                    // span kind
	var reqID, respID, upstream []byte
	// Resource attributes come first, span attributes second; a span
	// attribute replaces the resource one, the first non-empty value of a
	// multi-valued header wins within one map.
	for scope := 0; scope < 2 && ok; scope++ {
		var n uint32
		if n, o, ok = count(rec, o); !ok {
			break
		}
		var sReq, sResp, sUp []byte
		for ; n > 0; n-- {
			var k, v []byte
			if k, o, ok = field(rec, o); !ok {
				break
			}
			if v, o, ok = field(rec, o); !ok {
				break
			}
			// Keys are told apart by length first (the three differ), then
			// compared a word at a time: a byte-at-a-time compare (Go's
			// string ==) costs a deadline check per byte (ABI.md).
			switch len(k) {
			case len(requestIDReq):
				if sReq == nil && equal(k, keyReq) {
					sReq = nonEmpty(trim(v))
				}
			case len(requestIDResp):
				if sResp == nil && equal(k, keyResp) {
					sResp = nonEmpty(trim(v))
				}
			case len(upstreamTrace):
				if sUp == nil && equal(k, keyUp) {
					sUp = nonEmpty(trim(v))
				}
			}
		}
		if sReq != nil {
			reqID = sReq
		}
		if sResp != nil {
			respID = sResp
		}
		if sUp != nil {
			upstream = sUp
		}
	}
	if !ok {
		return out[:0] // not a record we understand: extract nothing
	}
	out = append(out, 0, 0, 0, 0) // pair count, set below
	n := uint32(0)
	if reqID != nil {
		out, n = appendPair(out, vocab.XRequestID0, reqID), n+1
	}
	if respID != nil {
		out, n = appendPair(out, vocab.XRequestID1, respID), n+1
	}
	if upstream != nil {
		out, n = appendPair(out, UpstreamTraceID, upstream), n+1
	}
	if n == 0 {
		return out[:0]
	}
	binary.LittleEndian.PutUint32(out, n)
	return out
}

// field reads one length-prefixed string at o; ok is false if the record
// ends early.
func field(b []byte, o int) (v []byte, next int, ok bool) {
	if len(b)-o < 4 {
		return nil, o, false
	}
	n := int(binary.LittleEndian.Uint32(b[o:]))
	if o += 4; n > len(b)-o {
		return nil, o, false
	}
	return b[o : o+n], o + n, true
}

// count reads an entry count at o.
func count(b []byte, o int) (n uint32, next int, ok bool) {
	if len(b)-o < 4 {
		return 0, o, false
	}
	return binary.LittleEndian.Uint32(b[o:]), o + 4, true
}

// equal reports whether k == want (len(want) >= 8), comparing 8-byte words;
// the last word first, since keys that share a prefix differ at the end.
func equal(k, want []byte) bool {
	n := len(want)
	if len(k) != n {
		return false
	}
	le := binary.LittleEndian
	if le.Uint64(k[n-8:]) != le.Uint64(want[n-8:]) {
		return false
	}
	for i := 0; i < n-8; i += 8 {
		if le.Uint64(k[i:]) != le.Uint64(want[i:]) {
			return false
		}
	}
	return true
}

func appendPair(out []byte, k string, v []byte) []byte {
	out = binary.LittleEndian.AppendUint32(out, uint32(len(k)))
	out = append(out, k...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(v)))
	return append(out, v...)
}

// nonEmpty returns nil for an empty value, so that "not found yet" and
// "found empty" are the same to the caller and the next value is tried.
func nonEmpty(v []byte) []byte {
	if len(v) == 0 {
		return nil
	}
	return v
}

func trim(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// main is not run in a -buildmode=c-shared module; the host calls the
// exports after _initialize.
func main() {}
