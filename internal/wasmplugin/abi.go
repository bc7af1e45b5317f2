package wasmplugin

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// ABIVersion is the version of the host/plugin contract described in ABI.md.
// A plugin's weft_abi_version must return exactly this value: the encoding
// has no self-description, so a mismatch would be read as garbage.
const ABIVersion = 1

// Names of the exports the host calls (ABI.md).
const (
	exportVersion = "weft_abi_version"
	exportAlloc   = "weft_alloc"
	exportExtract = "weft_extract"
	// exportPrefixes is optional: the attribute key prefixes the plugin
	// wants to see. The host sends only those attributes, which saves the
	// copy and, more, the plugin's walk over attributes it would skip.
	exportPrefixes = "weft_attribute_prefixes"
	// exportConfigure is optional: it receives the plugin's config (JSON)
	// once per instance, and may reject it.
	exportConfigure = "weft_configure"
	exportMemory    = "memory"
	wasiModule      = "wasi_snapshot_preview1"
)

// Limits on what crosses the boundary. They bound the work a broken plugin
// can make the host do; a real extraction returns a few short ids.
const (
	// MaxInputBytes is the largest encoded record the host sends; a larger
	// record is skipped (FailureInput) rather than copied into the sandbox.
	MaxInputBytes = 1 << 20
	// MaxOutputBytes and MaxOutputPairs bound a plugin's answer.
	MaxOutputBytes = 64 << 10
	MaxOutputPairs = 64
	// MaxPrefixes bounds the list a plugin's weft_attribute_prefixes gives.
	MaxPrefixes = 64

	// minInputBuffer is the smallest buffer the host asks weft_alloc for,
	// so that most records fit the first buffer and alloc runs once per
	// instance.
	minInputBuffer = 4 << 10
)

// Record is what a plugin sees of one span. Resource and Attributes must be
// valid maps (pcommon.NewMap() when there are none). Only string values, and
// the string elements of slice values, are passed on (ABI.md).
type Record struct {
	Name       string
	Kind       ptrace.SpanKind
	Resource   pcommon.Map
	Attributes pcommon.Map
}

// SpanRecord is the Record of a span and the resource it belongs to.
func SpanRecord(res pcommon.Resource, span ptrace.Span) Record {
	return Record{Name: span.Name(), Kind: span.Kind(), Resource: res.Attributes(), Attributes: span.Attributes()}
}

// KV is one key/value a plugin extracted.
type KV struct {
	Key, Value string
}

// keyFilter is the attribute key prefixes a plugin asked for; a nil
// *keyFilter means every attribute. It is asked about every attribute of
// every span, twice (size, then encoding), so most keys are turned away by
// their first byte without a string compare.
type keyFilter struct {
	prefixes []string
	all      bool      // one prefix is "": every key
	first    [256]bool // first bytes of the prefixes
}

func newKeyFilter(prefixes []string) *keyFilter {
	f := &keyFilter{prefixes: prefixes}
	for _, p := range prefixes {
		if p == "" {
			f.all = true
		} else {
			f.first[p[0]] = true
		}
	}
	return f
}

func (f *keyFilter) wants(k string) bool {
	if f == nil || f.all {
		return true
	}
	if k == "" || !f.first[k[0]] {
		return false
	}
	for _, p := range f.prefixes {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// mapSize returns how many entries and bytes the encoding of m takes
// (without its count prefix).
func mapSize(m pcommon.Map, f *keyFilter) (entries, size int) {
	for k, v := range m.All() {
		if !f.wants(k) {
			continue
		}
		switch v.Type() {
		case pcommon.ValueTypeStr:
			entries++
			size += 8 + len(k) + len(v.Str())
		case pcommon.ValueTypeSlice:
			s := v.Slice()
			for i := 0; i < s.Len(); i++ {
				if e := s.At(i); e.Type() == pcommon.ValueTypeStr {
					entries++
					size += 8 + len(k) + len(e.Str())
				}
			}
		}
	}
	return entries, size
}

// encodedSize returns the size of rec's encoding and the entry counts of its
// two maps, which encode needs up front.
func encodedSize(rec Record, f *keyFilter) (size, resEntries, spanEntries int) {
	resEntries, rs := mapSize(rec.Resource, f)
	spanEntries, ss := mapSize(rec.Attributes, f)
	return 4 + len(rec.Name) + 4 + 4 + rs + 4 + ss, resEntries, spanEntries
}

// encode writes rec into buf, which is exactly encodedSize long: it is a
// view of the plugin's memory, so the record is copied once, straight into
// the sandbox.
func encode(buf []byte, rec Record, f *keyFilter, resEntries, spanEntries int) {
	le := binary.LittleEndian
	o := putBytes(buf, 0, rec.Name)
	le.PutUint32(buf[o:], uint32(rec.Kind))
	o += 4
	le.PutUint32(buf[o:], uint32(resEntries))
	o = encodeMap(buf, o+4, rec.Resource, f)
	le.PutUint32(buf[o:], uint32(spanEntries))
	encodeMap(buf, o+4, rec.Attributes, f)
}

func encodeMap(buf []byte, o int, m pcommon.Map, f *keyFilter) int {
	for k, v := range m.All() {
		if !f.wants(k) {
			continue
		}
		switch v.Type() {
		case pcommon.ValueTypeStr:
			o = putBytes(buf, putBytes(buf, o, k), v.Str())
		case pcommon.ValueTypeSlice:
			s := v.Slice()
			for i := 0; i < s.Len(); i++ {
				if e := s.At(i); e.Type() == pcommon.ValueTypeStr {
					o = putBytes(buf, putBytes(buf, o, k), e.Str())
				}
			}
		}
	}
	return o
}

func putBytes(buf []byte, o int, s string) int {
	binary.LittleEndian.PutUint32(buf[o:], uint32(len(s)))
	return o + 4 + copy(buf[o+4:], s)
}

// maxInternedKeys bounds the per-instance key cache: a plugin returns a
// few fixed keys, one that makes up keys must not grow the host's memory.
const maxInternedKeys = 256

// decodeOutput parses a plugin's answer and appends its pairs to dst. Keys
// and values are copied out of b (the plugin's memory, reused on its next
// call); keys through the cache keys (nil for none), since a plugin returns
// the same few keys for every record. Anything malformed rejects the whole
// answer, so a broken plugin never adds half of what it meant.
func decodeOutput(b []byte, dst []KV, keys map[string]string) ([]KV, error) {
	le := binary.LittleEndian
	if len(b) < 4 {
		return dst, fmt.Errorf("answer of %d bytes is shorter than its pair count", len(b))
	}
	n := le.Uint32(b)
	if n > MaxOutputPairs {
		return dst, fmt.Errorf("answer has %d pairs, more than the %d allowed", n, MaxOutputPairs)
	}
	start := len(dst)
	o := 4
	next := func() ([]byte, bool) {
		if len(b)-o < 4 {
			return nil, false
		}
		l := int(le.Uint32(b[o:]))
		o += 4
		if l > len(b)-o {
			return nil, false
		}
		s := b[o : o+l]
		o += l
		return s, utf8.Valid(s)
	}
	for i := uint32(0); i < n; i++ {
		kb, ok := next()
		if !ok || len(kb) == 0 {
			return dst[:start], fmt.Errorf("pair %d: key is empty, truncated or not UTF-8", i)
		}
		k, cached := keys[string(kb)] // no allocation for the lookup
		if !cached {
			k = string(kb)
			if keys != nil && len(keys) < maxInternedKeys {
				keys[k] = k
			}
		}
		vb, ok := next()
		if !ok {
			return dst[:start], fmt.Errorf("pair %d (%q): value is truncated or not UTF-8", i, k)
		}
		v := string(vb)
		dst = append(dst, KV{Key: k, Value: v})
	}
	if o != len(b) {
		return dst[:start], fmt.Errorf("answer has %d bytes after its %d pairs", len(b)-o, n)
	}
	return dst, nil
}

// decodePrefixes parses the answer of weft_attribute_prefixes: a count and
// that many length-prefixed strings, the same layout as a list of pairs
// without values.
func decodePrefixes(b []byte) (*keyFilter, error) {
	le := binary.LittleEndian
	if len(b) < 4 {
		return nil, fmt.Errorf("list of %d bytes is shorter than its count", len(b))
	}
	n := le.Uint32(b)
	if n > MaxPrefixes {
		return nil, fmt.Errorf("list has %d prefixes, more than the %d allowed", n, MaxPrefixes)
	}
	f := make([]string, 0, n)
	o := 4
	for i := uint32(0); i < n; i++ {
		if len(b)-o < 4 {
			return nil, fmt.Errorf("prefix %d is truncated", i)
		}
		l := int(le.Uint32(b[o:]))
		o += 4
		if l > len(b)-o || !utf8.Valid(b[o:o+l]) {
			return nil, fmt.Errorf("prefix %d is truncated or not UTF-8", i)
		}
		f = append(f, string(b[o:o+l]))
		o += l
	}
	if o != len(b) {
		return nil, fmt.Errorf("list has %d bytes after its %d prefixes", len(b)-o, n)
	}
	return newKeyFilter(f), nil
}
