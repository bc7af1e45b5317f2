package stitch

import (
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Held spans are kept as compact byte strings instead of pdata trees: a
// pdata span with 40 attributes takes about 4 KiB and thousands of pointers
// the garbage collector has to scan; the encoded form takes a tenth of it
// and none. Strings that repeat (attribute keys, service names, IPs, span
// names) are interned in a dictionary and written as small integers.
//
// A span's encoding leaves out what fields already holds (ids, times, kind).
// Resource and scope are encoded once per ResourceSpans x ScopeSpans and
// shared by its spans.

const (
	// dictCap bounds one dictionary. When it is full a new one starts; the
	// old one lives on (through the blobs that use it) until its spans are
	// sent.
	dictCap = 1 << 16
	// seenSize is the size of the filter that admits a value into the
	// dictionary only the second time it is seen, so that unique values
	// (request ids, timestamps as strings) do not fill it.
	seenSize = 1 << 15
	// maxInterned is the longest value interned.
	maxInterned = 96
	// dictEntryBytes estimates what an interned string costs besides its
	// bytes: its slot in strs and its entry in ids (string header, id,
	// control byte, load factor and growth headroom).
	dictEntryBytes = 72
	// dictBaseBytes is what an empty dictionary costs: mostly the seen
	// filter and the hot cache, which live as long as the dictionary.
	dictBaseBytes = int64(unsafe.Sizeof(dict{}))
)

// dict interns strings. Encoders hold mu; decoders read a snapshot of strs
// published after each batch, so they never block encoders.
type dict struct {
	mu   sync.Mutex
	ids  map[string]uint32
	strs []string
	// roles is the role of each string of strs as an attribute key.
	roles []attrRole
	// pred is the keys of the last resource and span encoded, by
	// position (encoder.key).
	pred [numPred][predSize]hotEntry
	seen [seenSize]uint64
	// hot caches recent lookups in front of ids: most strings of a batch
	// (keys, service names) repeat, and one compare is cheaper than a map
	// probe.
	hot [hotSize]hotEntry
	pub atomic.Pointer[[]string]
	// filled is set (with publish) once the dictionary is full, for the
	// engine to start a new one without taking mu.
	filled atomic.Bool
	// size estimates the dictionary's memory (under mu); pubSize is it as
	// of the last publish. Held spans keep the whole dictionary alive, and
	// unique keys are interned at once, so the engine counts it against
	// max_bytes: a blob alone may be a tenth of what its span pins.
	size    int64
	pubSize atomic.Int64
	// users (resScopes held that were encoded with the dictionary) and
	// charged (what of its size Engine.bytes includes) are the engine's,
	// under Engine.mu.
	users   int32
	charged int64
}

const hotSize = 1 << 12

type hotEntry struct {
	s    string
	id   uint32
	role attrRole
}

func newDict() *dict {
	d := &dict{ids: make(map[string]uint32, 1024), size: dictBaseBytes}
	d.pub.Store(&d.strs)
	d.pubSize.Store(d.size)
	return d
}

// full is for holders of mu; others read filled.
func (d *dict) full() bool { return len(d.strs) >= dictCap }

// publish makes the strings interned so far visible to decoders. It must
// run before blobs using them are handed over.
func (d *dict) publish() {
	s := d.strs
	d.pub.Store(&s)
	d.pubSize.Store(d.size)
	d.filled.Store(d.full())
}

func (d *dict) snapshot() []string { return *d.pub.Load() }

var dictSeed = maphash.MakeSeed()

// encoder appends encodings to buf using dictionary d (whose mu it holds).
type encoder struct {
	d   *dict
	buf []byte
}

func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }

func (e *encoder) varint(v int64) { e.buf = binary.AppendVarint(e.buf, v) }

// str writes a string: an odd varint is a dictionary index, an even one the
// length of the literal bytes that follow. It returns the string's role as
// an attribute key (see attrRole), which the dictionary keeps with every
// string it interns: keys are interned on first sight, so a key's role is
// worked out once per dictionary rather than once per attribute.
func (e *encoder) str(s string, key bool) attrRole {
	if s == "" {
		e.buf = append(e.buf, 0)
		return roleNone
	}
	if id, r, ok := e.intern(s, key); ok {
		e.uvarint(uint64(id)<<1 | 1)
		return r
	}
	return e.literal(s, key)
}

// intern returns the dictionary id of s (not empty), adding s to the
// dictionary if it is admitted; ok is false when s is not interned.
func (e *encoder) intern(s string, key bool) (id uint32, r attrRole, ok bool) {
	d := e.d
	if len(s) > maxInterned {
		return 0, roleNone, false
	}
	h := maphash.String(dictSeed, s)
	hot := &d.hot[h&(hotSize-1)]
	if hot.s == s {
		return hot.id, hot.role, true
	}
	if id, ok := d.ids[s]; ok {
		hot.s, hot.id, hot.role = d.strs[id], id, d.roles[id]
		return id, hot.role, true
	}
	if d.full() {
		return 0, roleNone, false
	}
	if !key {
		slot := &d.seen[h&(seenSize-1)]
		admit := *slot == h
		*slot = h
		if !admit {
			return 0, roleNone, false
		}
	}
	id = uint32(len(d.strs))
	s = strings.Clone(s) // do not pin the receiver's buffers
	r = roleOf(s)
	d.strs = append(d.strs, s)
	d.roles = append(d.roles, r)
	d.ids[s] = id
	d.size += int64(len(s)) + dictEntryBytes
	hot.s, hot.id, hot.role = s, id, r
	return id, r, true
}

// key writes an attribute key, guessing that it is the key the previous
// map of the same kind had at the same position (pred): exporters write
// the attributes of like spans in one order, and one compare is cheaper
// than hashing the key.
func (e *encoder) key(k string, pred *hotEntry) attrRole {
	if pred.s == k && k != "" {
		e.uvarint(uint64(pred.id)<<1 | 1)
		return pred.role
	}
	if k == "" {
		e.buf = append(e.buf, 0)
		return roleNone
	}
	id, r, ok := e.intern(k, true)
	if !ok {
		return e.literal(k, true)
	}
	*pred = hotEntry{s: e.d.strs[id], id: id, role: r}
	e.uvarint(uint64(id)<<1 | 1)
	return r
}

// literal writes a string that is not interned.
func (e *encoder) literal(s string, key bool) attrRole {
	e.uvarint(uint64(len(s)) << 1)
	e.buf = append(e.buf, s...)
	if key {
		return roleOf(s)
	}
	return roleNone
}

// Value type tags.
const (
	tEmpty byte = iota
	tStr
	tInt
	tDouble
	tTrue
	tFalse
	tBytes
	tSlice
	tMap
)

func (e *encoder) value(v pcommon.Value) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		e.buf = append(e.buf, tStr)
		e.str(v.Str(), false)
	case pcommon.ValueTypeInt:
		e.buf = append(e.buf, tInt)
		e.varint(v.Int())
	case pcommon.ValueTypeDouble:
		e.buf = append(e.buf, tDouble)
		e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(v.Double()))
	case pcommon.ValueTypeBool:
		if v.Bool() {
			e.buf = append(e.buf, tTrue)
		} else {
			e.buf = append(e.buf, tFalse)
		}
	case pcommon.ValueTypeBytes:
		e.buf = append(e.buf, tBytes)
		b := v.Bytes().AsRaw()
		e.uvarint(uint64(len(b)))
		e.buf = append(e.buf, b...)
	case pcommon.ValueTypeSlice:
		e.buf = append(e.buf, tSlice)
		s := v.Slice()
		e.uvarint(uint64(s.Len()))
		for i := 0; i < s.Len(); i++ {
			e.value(s.At(i))
		}
	case pcommon.ValueTypeMap:
		e.buf = append(e.buf, tMap)
		e.attrs(v.Map(), nil, -1)
	default:
		e.buf = append(e.buf, tEmpty)
	}
}

// Kinds of attribute maps whose keys are predicted (dict.pred).
const (
	predResource = iota
	predSpan
	numPred
	predSize = 64 // positions predicted; later attributes are looked up
)

// attrs writes a map. p, when set, gets the correlation attributes, read
// in the same pass. kind is the map's kind for key prediction, or -1.
func (e *encoder) attrs(m pcommon.Map, p *corrPair, kind int) {
	e.uvarint(uint64(m.Len()))
	var pred []hotEntry
	if kind >= 0 {
		pred = e.d.pred[kind][:]
	}
	i := 0
	for k, v := range m.All() {
		var r attrRole
		if i < len(pred) {
			r = e.key(k, &pred[i])
		} else {
			r = e.str(k, true)
		}
		if r != roleNone && p != nil {
			p.attr(r, v)
		}
		e.value(v)
		i++
	}
}

// resScope writes a resource and a scope.
func (e *encoder) resScope(rs ptrace.ResourceSpans, ss ptrace.ScopeSpans, p *corrPair) {
	e.attrs(rs.Resource().Attributes(), p, predResource)
	e.uvarint(uint64(rs.Resource().DroppedAttributesCount()))
	e.str(rs.SchemaUrl(), true)
	sc := ss.Scope()
	e.str(sc.Name(), true)
	e.str(sc.Version(), true)
	e.attrs(sc.Attributes(), nil, -1)
	e.uvarint(uint64(sc.DroppedAttributesCount()))
	e.str(ss.SchemaUrl(), true)
}

// span writes what fields does not hold of a span.
func (e *encoder) span(s ptrace.Span, p *corrPair) {
	e.str(s.Name(), false)
	e.str(s.TraceState().AsRaw(), false)
	e.uvarint(uint64(s.Flags()))
	e.uvarint(uint64(s.Status().Code()))
	e.str(s.Status().Message(), false)
	e.uvarint(uint64(s.DroppedAttributesCount()))
	e.uvarint(uint64(s.DroppedEventsCount()))
	e.uvarint(uint64(s.DroppedLinksCount()))
	e.attrs(s.Attributes(), p, predSpan)
	start := int64(s.StartTimestamp())
	evs := s.Events()
	e.uvarint(uint64(evs.Len()))
	for i := 0; i < evs.Len(); i++ {
		ev := evs.At(i)
		e.varint(int64(ev.Timestamp()) - start)
		e.str(ev.Name(), false)
		e.attrs(ev.Attributes(), nil, -1)
		e.uvarint(uint64(ev.DroppedAttributesCount()))
	}
	links := s.Links()
	e.uvarint(uint64(links.Len()))
	for i := 0; i < links.Len(); i++ {
		l := links.At(i)
		tid, sid := l.TraceID(), l.SpanID()
		e.buf = append(e.buf, tid[:]...)
		e.buf = append(e.buf, sid[:]...)
		e.str(l.TraceState().AsRaw(), false)
		e.uvarint(uint64(l.Flags()))
		e.attrs(l.Attributes(), nil, -1)
		e.uvarint(uint64(l.DroppedAttributesCount()))
	}
}

var errCorrupt = errors.New("corrupt span encoding")

// decoder reads an encoding. Errors stick: after one, reads return zero
// values and err says what happened. Encodings are Weft's own, so an error
// is a bug, but it must not take the collector down.
type decoder struct {
	b    []byte
	strs []string
	err  error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

// uvarint reads an unsigned varint. Nearly all are one to three bytes
// (counts, tags, lengths, dictionary ids), which are read here without the
// general loop.
func (d *decoder) uvarint() uint64 {
	b := d.b
	if len(b) > 0 && b[0] < 0x80 {
		d.b = b[1:]
		return uint64(b[0])
	}
	if len(b) > 1 && b[1] < 0x80 {
		d.b = b[2:]
		return uint64(b[0]&0x7f) | uint64(b[1])<<7
	}
	if len(b) > 2 && b[2] < 0x80 { // dictionary ids from 8192
		d.b = b[3:]
		return uint64(b[0]&0x7f) | uint64(b[1]&0x7f)<<7 | uint64(b[2])<<14
	}
	return d.uvarintSlow()
}

func (d *decoder) uvarintSlow() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// varint reads a zig-zag varint, as binary.AppendVarint writes it.
func (d *decoder) varint() int64 {
	u := d.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bytes(n uint64) []byte {
	if uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) str() string {
	v := d.uvarint()
	if v&1 == 1 {
		id := v >> 1
		if id >= uint64(len(d.strs)) {
			d.fail()
			return ""
		}
		return d.strs[id]
	}
	return string(d.bytes(v >> 1))
}

// count reads a length and checks it against what is left (every element
// takes at least one byte), so corrupt input cannot make us allocate much.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) value(v pcommon.Value) {
	switch d.byte() {
	case tStr:
		v.SetStr(d.str())
	case tInt:
		v.SetInt(d.varint())
	case tDouble:
		v.SetDouble(math.Float64frombits(binary.LittleEndian.Uint64(pad8(d.bytes(8)))))
	case tTrue:
		v.SetBool(true)
	case tFalse:
		v.SetBool(false)
	case tBytes:
		v.SetEmptyBytes().FromRaw(d.bytes(d.uvarint()))
	case tSlice:
		n := d.count()
		s := v.SetEmptySlice()
		s.EnsureCapacity(n)
		for i := 0; i < n && d.err == nil; i++ {
			d.value(s.AppendEmpty())
		}
	case tMap:
		d.attrs(v.SetEmptyMap())
	case tEmpty:
	default:
		d.fail()
	}
}

func pad8(b []byte) []byte {
	if len(b) == 8 {
		return b
	}
	return make([]byte, 8)
}

// attrs reads a map into m (empty), with room for extra more attributes
// (the link attributes added afterwards would otherwise copy the whole
// map). Put* is used for the common scalar types: it is cheaper than
// PutEmpty followed by a set.
func (d *decoder) attrs(m pcommon.Map, extra ...int) {
	n := d.count()
	if len(extra) > 0 {
		m.EnsureCapacity(n + extra[0])
	} else {
		m.EnsureCapacity(n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		k := d.str()
		if d.err != nil {
			return
		}
		switch tag := d.peek(); tag {
		case tStr:
			d.b = d.b[1:]
			m.PutStr(k, d.str())
		case tInt:
			d.b = d.b[1:]
			m.PutInt(k, d.varint())
		case tTrue, tFalse:
			d.b = d.b[1:]
			m.PutBool(k, tag == tTrue)
		default:
			d.value(m.PutEmpty(k))
		}
	}
}

func (d *decoder) peek() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0xff
	}
	return d.b[0]
}

func (d *decoder) resScope(rs ptrace.ResourceSpans, ss ptrace.ScopeSpans) {
	res := rs.Resource()
	d.attrs(res.Attributes())
	res.SetDroppedAttributesCount(uint32(d.uvarint()))
	rs.SetSchemaUrl(d.str())
	sc := ss.Scope()
	sc.SetName(d.str())
	sc.SetVersion(d.str())
	d.attrs(sc.Attributes())
	sc.SetDroppedAttributesCount(uint32(d.uvarint()))
	ss.SetSchemaUrl(d.str())
}

// span reads a span's encoding into s; f supplies ids, times and kind.
func (d *decoder) span(s ptrace.Span, f *fields) {
	s.SetTraceID(f.traceID)
	s.SetSpanID(f.spanID)
	s.SetParentSpanID(f.parentID)
	s.SetStartTimestamp(pcommon.Timestamp(f.start))
	s.SetEndTimestamp(pcommon.Timestamp(f.end))
	s.SetKind(ptrace.SpanKind(f.kind))
	s.SetName(d.str())
	if ts := d.str(); ts != "" {
		s.TraceState().FromRaw(ts)
	}
	s.SetFlags(uint32(d.uvarint()))
	s.Status().SetCode(ptrace.StatusCode(d.uvarint()))
	s.Status().SetMessage(d.str())
	s.SetDroppedAttributesCount(uint32(d.uvarint()))
	s.SetDroppedEventsCount(uint32(d.uvarint()))
	s.SetDroppedLinksCount(uint32(d.uvarint()))
	d.attrs(s.Attributes(), 3)
	if n := d.count(); n > 0 {
		evs := s.Events()
		evs.EnsureCapacity(n)
		for i := 0; i < n && d.err == nil; i++ {
			ev := evs.AppendEmpty()
			ev.SetTimestamp(pcommon.Timestamp(f.start + d.varint()))
			ev.SetName(d.str())
			d.attrs(ev.Attributes())
			ev.SetDroppedAttributesCount(uint32(d.uvarint()))
		}
	}
	if n := d.count(); n > 0 {
		links := s.Links()
		links.EnsureCapacity(n)
		for i := 0; i < n && d.err == nil; i++ {
			l := links.AppendEmpty()
			var tid pcommon.TraceID
			var sid pcommon.SpanID
			copy(tid[:], d.bytes(16))
			copy(sid[:], d.bytes(8))
			l.SetTraceID(tid)
			l.SetSpanID(sid)
			if ts := d.str(); ts != "" {
				l.TraceState().FromRaw(ts)
			}
			l.SetFlags(uint32(d.uvarint()))
			d.attrs(l.Attributes())
			l.SetDroppedAttributesCount(uint32(d.uvarint()))
		}
	}
}
