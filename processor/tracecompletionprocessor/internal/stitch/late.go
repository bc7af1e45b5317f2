package stitch

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Late joins. When a group is sent, the keys a later span of the same
// requests could carry are remembered with the trace id the group got and,
// where the key says where such a span belongs, the span it should hang
// under:
//
//   - a TCP sequence, per observation point rank: a late capture of a
//     request goes under the capture of the nearest lower rank;
//   - a server process span's request id and its calls' response ids: a
//     late call goes under the server span (when the server's application
//     is not traced; else it only joins the trace);
//   - an X-Request-ID a gateway returned: a late upstream request goes under
//     the gateway's inbound request.
//
// Remembered keys live in two generations of maps: each Flush after
// late_join_ttl moves the current one to the previous and drops the
// previous one, so a key lives between one and two ttls; past
// LateJoinMaxKeys the oldest generation goes early.

const (
	kLateTCP uint64 = iota + 100
	kLateSys
	kLateX
)

type lateEntry struct {
	trace      pcommon.TraceID
	anchor     pcommon.SpanID // empty: join the trace only
	start, end int64
	xr0, xr1   uint64 // the anchor's X-Request-IDs, to refuse a conflicting join
	stream     uint32 // the TCP capture's stream id (fields.reqID)
	// ambiguous: captures of two requests were remembered under the key
	// (equal sequences, stream ids unknown); it joins nothing.
	ambiguous bool
}

// conflicts says whether a span cannot belong where the entry points.
func (e *lateEntry) conflicts(f *fields) bool {
	if (e.xr0 != 0 || e.xr1 != 0) && (f.xr0 != 0 || f.xr1 != 0) {
		for _, x := range [2]uint64{f.xr0, f.xr1} {
			if x != 0 && (x == e.xr0 || x == e.xr1) {
				return false
			}
		}
		return true
	}
	return false
}

type lateMemory struct {
	ttl     int64
	max     int
	cur     map[uint64]lateEntry
	prev    map[uint64]lateEntry
	rotated int64
}

func newLateMemory(ttl time.Duration, max int) *lateMemory {
	if max <= 0 {
		max = 1_000_000
	}
	return &lateMemory{ttl: ttl.Nanoseconds(), max: max, cur: map[uint64]lateEntry{}, prev: map[uint64]lateEntry{}}
}

func (l *lateMemory) enabled() bool { return l.ttl > 0 }

func (l *lateMemory) len() int { return len(l.cur) + len(l.prev) }

func (l *lateMemory) rotate(now int64) {
	l.prev, l.cur = l.cur, make(map[uint64]lateEntry, len(l.cur))
	l.rotated = now
}

func (l *lateMemory) expire(now int64) {
	if !l.enabled() {
		return
	}
	if l.rotated == 0 {
		l.rotated = now
	}
	if now-l.rotated >= l.ttl {
		l.rotate(now)
	}
}

func (l *lateMemory) put(k uint64, e lateEntry, now int64) {
	if !l.enabled() {
		return
	}
	if len(l.cur) >= l.max/2 {
		l.rotate(now)
	}
	l.cur[k] = e
}

func (l *lateMemory) get(k uint64) (lateEntry, bool) {
	if e, ok := l.cur[k]; ok {
		return e, true
	}
	e, ok := l.prev[k]
	return e, ok
}

// lateTCPKey is the key of a TCP request's capture at rank, with its stream
// id or (stream 0) without: concurrent HTTP/2 streams can share a segment,
// and so a sequence number.
func lateTCPKey(seq, stream uint32, rank int) uint64 {
	return keyOf(kLateTCP, uint64(seq)|uint64(stream)<<32, uint64(rank))
}

// latePut is a key a sent group leaves for late spans.
type latePut struct {
	key uint64
	e   lateEntry
	// shared: a TCP sequence without its stream id, which captures of two
	// requests may share (see remember).
	shared bool
}

// putTCP leaves a TCP capture under its sequence and stream id, and under
// its sequence alone for late captures whose stream id is unknown.
func (l *linker) putTCP(f *fields, rank int, e lateEntry) {
	e.stream = f.reqID
	if f.reqID != 0 {
		l.puts = append(l.puts, latePut{key: lateTCPKey(f.tcpReq, f.reqID, rank), e: e})
	}
	l.puts = append(l.puts, latePut{key: lateTCPKey(f.tcpReq, 0, rank), e: e, shared: true})
}

// remember writes the keys the linker's groups left into the late-join
// memory. A sequence without stream id that captures of two requests
// left turns ambiguous and joins nothing (while captures of both keep
// coming).
func (l *linker) remember(now int64) {
	mem := l.e.late
	for _, p := range l.puts {
		if p.shared {
			if o, ok := mem.get(p.key); ok && (o.ambiguous || o.trace != p.e.trace) && abs(o.start-p.e.start) <= 2*l.e.tol {
				p.e.ambiguous = true
			}
		}
		mem.put(p.key, p.e, now)
	}
	// A flush of hundreds of thousands of spans leaves a buffer of tens
	// of MB that max_bytes does not see: let it go rather than keep it.
	if cap(l.puts) > maxKeptPuts {
		l.puts = nil
	} else {
		l.puts = l.puts[:0]
	}
}

// maxKeptPuts is the largest puts buffer a linker keeps between flushes
// (about 5 MB).
const maxKeptPuts = 1 << 16

// getTCP finds the remembered capture of f's TCP request at rank.
func (l *linker) getTCP(f *fields, rank int) (lateEntry, bool) {
	mem := l.e.late
	if f.reqID != 0 {
		if e, ok := mem.get(lateTCPKey(f.tcpReq, f.reqID, rank)); ok {
			return e, true
		}
	}
	e, ok := mem.get(lateTCPKey(f.tcpReq, 0, rank))
	if !ok || e.ambiguous || (f.reqID != 0 && e.stream != 0 && e.stream != f.reqID) {
		return lateEntry{}, false
	}
	return e, true
}

func lateSysKey(observer uint32, id uint64) uint64 { return keyOf(kLateSys, uint64(observer), id) }

func lateXKey(x uint64) uint64 { return keyOf(kLateX, x, 0) }

// lateLinks looks the group's keys up among the remembered ones. Members
// still without a parent get one outside the group where a key says where
// they belong; every match also offers its trace id to the member's trace.
// It returns the offered trace id per member.
func (l *linker) lateLinks() map[int32]pcommon.TraceID {
	mem := l.e.late
	if mem.len() == 0 {
		return nil
	}
	tol := l.e.tol
	var offers map[int32]pcommon.TraceID
	offer := func(i int, e lateEntry) {
		if offers == nil {
			offers = map[int32]pcommon.TraceID{}
		}
		if _, ok := offers[int32(i)]; !ok {
			offers[int32(i)] = e.trace
		}
	}
	// A member placed under a remembered span takes that span's trace id,
	// whatever its other keys offered.
	place := func(i int, m *lm, e lateEntry, k linkKey) {
		m.ext, m.key, m.late = e.anchor, k, true
		offer(i, e)
		offers[int32(i)] = e.trace
	}
	for i := range l.m {
		m := &l.m[i]
		if m.absorbed {
			continue
		}
		f := m.f
		free := !m.linked() && m.joinTo < 0
		if f.isNetwork() && f.tcpReq != 0 {
			if e, ok := l.getTCP(f, 0); ok && abs(e.start-f.start) <= tol {
				offer(i, e)
				for r := f.obs.rank() - 1; free && r >= 1; r-- {
					e, ok := l.getTCP(f, r)
					if ok && abs(e.start-f.start) <= tol && !e.anchor.IsEmpty() {
						place(i, m, e, keyTCP)
						free = false
					}
				}
			}
		}
		// A call's request id is only trusted inside the server span it
		// continues, and without a conflicting X-Request-ID: thread pools
		// and event loops reuse ids across requests.
		if f.obs == obsCP && f.src == srcEBPF && f.sysReq != 0 {
			if e, ok := mem.get(lateSysKey(f.observer, f.sysReq)); ok && e.start <= f.start && f.end <= e.end && !e.conflicts(f) {
				offer(i, e)
				if free && !e.anchor.IsEmpty() {
					place(i, m, e, keySyscall)
					free = false
				}
			}
		}
		if f.xr0 != 0 && f.isNetwork() {
			if e, ok := mem.get(lateXKey(f.xr0)); ok && e.start <= f.start+tol && f.end <= e.end+tol {
				offer(i, e)
				if free && m.seg >= 0 && l.segs[m.seg].root() == int32(i) && !e.anchor.IsEmpty() {
					place(i, m, e, keyXReq)
				}
			}
		}
	}
	return offers
}

// leave collects the group's keys for late spans, for remember.
func (l *linker) leave(traces []pcommon.TraceID) {
	if !l.e.late.enabled() {
		return
	}
	// A server span whose application is traced has its calls under client
	// spans Weft cannot pick for a late call: late calls only join.
	traced := map[int32]bool{}
	for i := range l.m {
		if m := &l.m[i]; m.parent >= 0 && l.isApp(int32(i)) && l.m[m.parent].f.obs == obsSP {
			traced[m.parent] = true
		}
	}
	for i := range l.m {
		m := &l.m[i]
		if m.absorbed {
			continue
		}
		f := m.f
		t := traces[i]
		if f.isNetwork() && f.tcpReq != 0 {
			e := lateEntry{trace: t, start: f.start, end: f.end}
			l.putTCP(f, 0, e)
			e.anchor = f.spanID
			l.putTCP(f, f.obs.rank(), e)
		}
		if f.src == srcEBPF && f.obs == obsSP && f.sysReq != 0 {
			e := lateEntry{trace: t, start: f.start, end: f.end, xr0: f.xr0, xr1: f.xr1}
			if !traced[int32(i)] && f.sysReq != f.sysResp {
				e.anchor = f.spanID
			}
			l.puts = append(l.puts, latePut{key: lateSysKey(f.observer, f.sysReq), e: e})
		}
		if s := l.claim[i]; s >= 0 && f.sysResp != 0 {
			sf := l.m[s].f
			e := lateEntry{trace: t, start: sf.start, end: sf.end, xr0: sf.xr0, xr1: sf.xr1}
			if !traced[s] {
				e.anchor = sf.spanID
			}
			l.puts = append(l.puts, latePut{key: lateSysKey(f.observer, f.sysResp), e: e})
		}
	}
	for si := range l.segs {
		s := &l.segs[si]
		leaf := s.leaf()
		lf := l.m[leaf].f
		for x := 0; x < s.nxr; x++ {
			if s.hasXR1[x] {
				l.puts = append(l.puts, latePut{key: lateXKey(s.xr[x]),
					e: lateEntry{trace: traces[leaf], anchor: lf.spanID, start: lf.start, end: lf.end}})
			}
		}
	}
}
