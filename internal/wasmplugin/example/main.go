//go:build wasip1

// Command example is a Weft Wasm plugin (ABI.md) that extracts a request
// id, an upstream trace id and tags from captured HTTP headers, so that
// trace_completion can join spans that carry the same ids. Which headers
// carry what is its config (see README.md). Build it with `make plugins`,
// or:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o example.wasm ./internal/wasmplugin/example
//
// It is also a template: everything but configure() and extract() is the
// ABI plumbing any Go plugin needs.
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"unsafe"

	"github.com/weftobs/weft/internal/vocab"
)

// Where captured headers are. OTel semantic conventions put a header in an
// attribute of its own, named after the lower-case header name, with a
// slice of its values. Pinpoint agents record the headers they are told to
// (profiler.http.record.request.headers) as a (name, value) annotation,
// which the pinpoint receiver cannot map and keeps under these names; the
// host sends its two strings as two entries of the same key.
const (
	otelRequestHeader      = "http.request.header."
	otelResponseHeader     = "http.response.header."
	pinpointRequestHeader  = "pinpoint.http.request.header"
	pinpointResponseHeader = "pinpoint.http.response.header"
)

// The Pinpoint keys as bytes, for equal.
var (
	ppRequestKey  = []byte(pinpointRequestHeader)
	ppResponseKey = []byte(pinpointResponseHeader)
)

// config is what the plugin accepts as its config (README.md).
type config struct {
	// RequestIDHeaders name the headers that carry a request id, in order
	// of preference. Default: x-request-id.
	RequestIDHeaders []string `json:"request_id_headers"`
	// UpstreamTraceIDHeaders name the request headers that carry the trace
	// id of a system that does not propagate W3C trace context. Default:
	// x-upstream-trace-id.
	UpstreamTraceIDHeaders []string `json:"upstream_trace_id_headers"`
	// Tags maps a request header to the key its value is returned under.
	Tags map[string]string `json:"tags"`
}

// role says what a header is for.
type role uint8

const (
	roleRequestID role = iota
	roleUpstream
	roleTag
)

// rule is one header the plugin looks for.
type rule struct {
	header []byte // lower-case header name
	role   role
	tag    string // the key of a roleTag
}

// attrRule is a rule bound to the OTel attribute name it is read from.
type attrRule struct {
	attr     []byte // http.request.header.<name> or http.response.header.<name>
	response bool
	rule     int // index into rules
}

// State set by weft_configure; every instance gets the same config.
var (
	rules     []rule
	attrRules []attrRule
	prefixes  []byte // the answer of weft_attribute_prefixes
)

func init() {
	// Defaults, for a host that does not call weft_configure (ABI.md: it
	// calls it whenever the plugin exports it, with {} for no config).
	if err := configure([]byte("{}")); err != nil {
		panic(err)
	}
}

// configure parses the config and builds the rules. It rejects unknown
// fields, so that a misspelt key is an error at Start and not a plugin that
// silently extracts nothing.
func configure(raw []byte) error {
	var c config
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("config: %v", err)
	}
	if c.RequestIDHeaders == nil {
		c.RequestIDHeaders = []string{"x-request-id"}
	}
	if c.UpstreamTraceIDHeaders == nil {
		c.UpstreamTraceIDHeaders = []string{"x-upstream-trace-id"}
	}
	var rs []rule
	add := func(field string, names []string, r role, tag func(string) string) error {
		for _, n := range names {
			n = strings.ToLower(strings.TrimSpace(n))
			if n == "" {
				return fmt.Errorf("config: %s: a header name is empty", field)
			}
			rs = append(rs, rule{header: []byte(n), role: r, tag: tag(n)})
		}
		return nil
	}
	none := func(string) string { return "" }
	if err := add("request_id_headers", c.RequestIDHeaders, roleRequestID, none); err != nil {
		return err
	}
	if err := add("upstream_trace_id_headers", c.UpstreamTraceIDHeaders, roleUpstream, none); err != nil {
		return err
	}
	lower := map[string]string{}
	var tagHeaders []string
	for h, key := range c.Tags {
		if key == "" {
			return fmt.Errorf("config: tags: header %q has an empty key", h)
		}
		lower[strings.ToLower(strings.TrimSpace(h))] = key
		tagHeaders = append(tagHeaders, h)
	}
	sort.Strings(tagHeaders) // answers in a stable order
	if len(tagHeaders) > 60 {
		return fmt.Errorf("config: tags: %d headers, at most 60 (an answer has at most 64 pairs)", len(tagHeaders))
	}
	if err := add("tags", tagHeaders, roleTag, func(n string) string { return lower[n] }); err != nil {
		return err
	}

	var ars []attrRule
	list := []string{pinpointRequestHeader, pinpointResponseHeader}
	for i, r := range rs {
		ars = append(ars, attrRule{attr: []byte(otelRequestHeader + string(r.header)), rule: i})
		list = append(list, otelRequestHeader+string(r.header))
		if r.role == roleRequestID {
			ars = append(ars, attrRule{attr: []byte(otelResponseHeader + string(r.header)), response: true, rule: i})
			list = append(list, otelResponseHeader+string(r.header))
		}
	}
	if len(list) > 64 {
		return fmt.Errorf("config: %d headers in all, too many", len(rs))
	}
	var p []byte
	p = binary.LittleEndian.AppendUint32(p, uint32(len(list)))
	for _, s := range list {
		p = binary.LittleEndian.AppendUint32(p, uint32(len(s)))
		p = append(p, s...)
	}
	rules, attrRules, prefixes = rs, ars, p
	return nil
}

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

//lint:ignore U1000 called by the host (//go:wasmexport), which staticcheck does not see
//go:wasmexport weft_configure
func configureExport(ptr, n int32) int32 {
	if len(input) == 0 || ptr != int32(uintptr(unsafe.Pointer(&input[0]))) || n < 0 || int(n) > len(input) {
		fmt.Fprintln(os.Stderr, "weft_configure: the config is not in the buffer weft_alloc gave")
		return 2
	}
	// configure copies what it keeps: the host reuses the buffer.
	if err := configure(input[:n]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

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

// found is what one map (resource or span attributes) gave.
type found struct {
	reqID, respID, upstream []byte
	// The rule each id came from: of several headers configured for one
	// id, the one listed first wins.
	reqRule, respRule, upRule int
	tags                      [][]byte // by rule index; nil for none
}

func (f *found) reset() {
	f.reqID, f.respID, f.upstream = nil, nil, nil
	if cap(f.tags) < len(rules) {
		f.tags = make([][]byte, len(rules))
	}
	f.tags = f.tags[:len(rules)]
	clear(f.tags)
}

// take records v for rule i seen in a request (or response) header. Within
// one map the first non-empty value of a header wins.
func (f *found) take(i int, response bool, v []byte) {
	v = trim(v)
	if len(v) == 0 {
		return
	}
	better := func(cur []byte, curRule int) bool { return cur == nil || i < curRule }
	switch r := &rules[i]; {
	case r.role == roleRequestID && response:
		if better(f.respID, f.respRule) {
			f.respID, f.respRule = v, i
		}
	case r.role == roleRequestID:
		if better(f.reqID, f.reqRule) {
			f.reqID, f.reqRule = v, i
		}
	case response:
		// Upstream ids and tags are read from request headers only.
	case r.role == roleUpstream:
		if better(f.upstream, f.upRule) {
			f.upstream, f.upRule = v, i
		}
	default:
		if f.tags[i] == nil {
			f.tags[i] = v
		}
	}
}

// scratch holds the per-map results between calls, so extract allocates
// nothing once it has run.
var scratch [2]found

// extract reads the record and appends the answer to out. Values are
// sub-slices of rec: nothing is copied until the answer is written.
func extract(rec []byte, out []byte) []byte {
	_, o, ok := field(rec, 0) // span name
	o += 4                    // span kind
	// Resource attributes come first, span attributes second; a span
	// attribute replaces the resource one.
	for scope := 0; scope < 2 && ok; scope++ {
		f := &scratch[scope]
		f.reset()
		var n uint32
		if n, o, ok = count(rec, o); !ok {
			break
		}
		var ppName []byte // a Pinpoint header name waiting for its value
		ppResponse := false
		for ; n > 0; n-- {
			var k, v []byte
			if k, o, ok = field(rec, o); !ok {
				break
			}
			if v, o, ok = field(rec, o); !ok {
				break
			}
			if len(k) > 0 && k[0] == 'p' { // pinpoint.http.{request,response}.header
				resp := equal(k, ppResponseKey)
				if !resp && !equal(k, ppRequestKey) {
					continue
				}
				if ppName == nil || ppResponse != resp {
					ppName, ppResponse = v, resp
					continue
				}
				for i := range rules {
					if equalFold(ppName, rules[i].header) {
						f.take(i, resp, v)
					}
				}
				ppName = nil
				continue
			}
			// A header may be configured for more than one use.
			for _, ar := range attrRules {
				if len(ar.attr) == len(k) && equal(k, ar.attr) {
					f.take(ar.rule, ar.response, v)
				}
			}
		}
	}
	if !ok {
		return out[:0] // not a record we understand: extract nothing
	}
	res, span := &scratch[0], &scratch[1]
	pick := func(a, b []byte) []byte {
		if b != nil {
			return b
		}
		return a
	}
	out = append(out, 0, 0, 0, 0) // pair count, set below
	n := uint32(0)
	if v := pick(res.reqID, span.reqID); v != nil {
		out, n = appendPair(out, vocab.XRequestID0, v), n+1
	}
	if v := pick(res.respID, span.respID); v != nil {
		out, n = appendPair(out, vocab.XRequestID1, v), n+1
	}
	if v := pick(res.upstream, span.upstream); v != nil {
		out, n = appendPair(out, vocab.UpstreamTraceID, v), n+1
	}
	for i := range rules {
		if v := pick(res.tags[i], span.tags[i]); v != nil {
			out, n = appendPair(out, rules[i].tag, v), n+1
		}
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

// equal reports whether k == want, comparing 8-byte words while it can: a
// Go wasm loop pays for every iteration more than native code does.
func equal(k, want []byte) bool {
	n := len(want)
	if len(k) != n {
		return false
	}
	le := binary.LittleEndian
	i := 0
	for ; i+8 <= n; i += 8 {
		if le.Uint64(k[i:]) != le.Uint64(want[i:]) {
			return false
		}
	}
	for ; i < n; i++ {
		if k[i] != want[i] {
			return false
		}
	}
	return true
}

// equalFold reports whether name equals the lower-case header h in ASCII
// case: HTTP header names are case-insensitive, and Pinpoint agents record
// them as the application wrote them.
func equalFold(name, h []byte) bool {
	if len(name) != len(h) {
		return false
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != h[i] {
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
