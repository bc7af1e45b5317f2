package stitch

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/weftobs/weft/internal/vocab"
)

// linkKey is how a parent link was made. The order is also the priority
// when links contradict each other: lower wins.
type linkKey uint8

const (
	keyNone linkKey = iota
	keyTCP
	keySpanID
	keySyscall
	keyXReq
	numKeys
)

var keyNames = [numKeys]string{"", vocab.LinkKeyTCPSeq, vocab.LinkKeySpanID, vocab.LinkKeySyscall, vocab.LinkKeyXRequestID}

// appSlack is how far an application span's times may be off those of the
// eBPF spans of its own process: agents that time in milliseconds
// (Pinpoint, many Java agents) truncate.
const appSlack = int64(time.Millisecond)

// lm is a group member during linking.
type lm struct {
	f        *fields
	parent   int32          // new parent inside the group, -1 none
	ext      pcommon.SpanID // new parent outside the group (a late join)
	key      linkKey
	late     bool
	joinTo   int32 // belongs to the component of this member, without a parent link
	seg      int32 // network segment, -1 none
	merged   int32 // response row merged into this request row, -1 none
	absorbed bool  // merged into another row; not sent on
}

func (m *lm) linked() bool { return m.parent >= 0 || !m.ext.IsEmpty() }

// segment is one request's captures that chain together, in order.
type segment struct {
	hop     int32 // segments of one request's captures share it
	members []int32
	prop    pcommon.SpanID // the span id of the request's trace context
	xr      [4]uint64      // X-Request-IDs seen on the request
	hasXR1  [4]bool        // ... as a response header
	nxr     int
}

func (s *segment) root() int32 { return s.members[0] }
func (s *segment) leaf() int32 { return s.members[len(s.members)-1] }

func (s *segment) addXR(x uint64, resp bool) {
	if x == 0 {
		return
	}
	for i := 0; i < s.nxr; i++ {
		if s.xr[i] == x {
			s.hasXR1[i] = s.hasXR1[i] || resp
			return
		}
	}
	if s.nxr < len(s.xr) {
		s.xr[s.nxr], s.hasXR1[s.nxr] = x, resp
		s.nxr++
	}
}

func (s *segment) hasX(x uint64) bool {
	for i := 0; i < s.nxr; i++ {
		if s.xr[i] == x {
			return true
		}
	}
	return false
}

type procKey struct {
	observer uint32
	id       uint64
}

type mergeKey struct {
	observer uint32
	obs      obsPoint
	flow     uint64
	l7       uint64
	reqID    uint32
}

// linker holds scratch space reused across groups.
type linker struct {
	e        *Engine
	m        []lm
	segs     []segment
	uf       []int32
	appByID  map[pcommon.SpanID]int32
	segByPro map[pcommon.SpanID][]int32
	callReq  map[procKey][]int32
	spReq    map[procKey][]int32
	claim    []int32
	children map[int32][]int32
	hasCall  map[int32]bool
	appReady bool
	stack    []int32
	merge    map[mergeKey][]int32
	// outs is what linking decided for the group being emitted; puts the
	// keys the run's groups leave for late spans, written to the late-join
	// memory once every run of the flush is done.
	outs []outSpan
	puts []latePut
}

// link links every detached group and rebuilds it as pdata. A big flush is
// split into runs of whole groups, up to procs, each linked and emitted by
// a goroutine of its own (the last by this one) with a linker and an
// emitter of its own; then the runs' output is joined (mergeEmitters) and
// the keys they leave for late spans are remembered, in group order. While
// the runs work the late-join memory is only read, and they see it as the
// flushes before left it.
func (e *Engine) link(now time.Time, groups []detached) Result {
	res := Result{Links: map[string]int{}}
	total := 0
	for gi := range groups {
		total += len(groups[gi].members)
		res.add(groups[gi].reason, 1)
	}
	runs := splitRuns(groups, total, min(e.procs, total/minRunSpans))
	t := now.UnixNano()
	e.flushMu.Lock()
	for len(e.linkers) < len(runs) {
		e.linkers = append(e.linkers, &linker{e: e})
	}
	ems := make([]*emitter, len(runs))
	counts := make([]Result, len(runs))
	var wg sync.WaitGroup
	for p, run := range runs {
		lk, em, c := e.linkers[p], newEmitter(), &counts[p]
		ems[p] = em
		c.Links = map[string]int{}
		if p == len(runs)-1 {
			lk.run(run, em, c)
		} else {
			wg.Go(func() { lk.run(run, em, c) })
		}
	}
	wg.Wait()
	for p := range runs {
		e.linkers[p].remember(t)
	}
	e.lateKeys.Store(int64(e.late.len()))
	e.flushMu.Unlock()
	mergeEmitters(ems, &res)
	for _, c := range counts {
		for k, n := range c.Links {
			res.Links[k] += n
		}
		res.LateJoins += c.LateJoins
		res.Merged += c.Merged
	}
	return res
}

// splitRuns cuts groups into parts runs of whole groups and about equal
// spans; the last takes the rest.
func splitRuns(groups []detached, total, parts int) [][]detached {
	if parts <= 1 {
		return [][]detached{groups}
	}
	runs := make([][]detached, 0, parts)
	gi := 0
	for p := range parts {
		g0, n := gi, 0
		for gi < len(groups) && (p == parts-1 || n < total/parts) {
			n += len(groups[gi].members)
			gi++
		}
		runs = append(runs, groups[g0:gi])
	}
	return runs
}

// run links and emits a run of groups, counting into res.
func (l *linker) run(groups []detached, em *emitter, res *Result) {
	l.puts = l.puts[:0]
	for gi := range groups {
		members := groups[gi].members
		l.outs = l.group(members, l.outs[:0], res)
		em.add(members, l.outs)
	}
}

func (l *linker) reset(n int) {
	if l.appByID == nil {
		l.appByID = map[pcommon.SpanID]int32{}
		l.segByPro = map[pcommon.SpanID][]int32{}
		l.callReq = map[procKey][]int32{}
		l.spReq = map[procKey][]int32{}
		l.children = map[int32][]int32{}
		l.hasCall = map[int32]bool{}
		l.merge = map[mergeKey][]int32{}
	}
	clear(l.appByID)
	clear(l.segByPro)
	clear(l.callReq)
	clear(l.spReq)
	clear(l.children)
	clear(l.hasCall)
	l.appReady = false
	clear(l.merge)
	l.m = slices.Grow(l.m[:0], n)[:n]
	l.segs = l.segs[:0]
	l.uf = slices.Grow(l.uf[:0], n)[:n]
	l.claim = slices.Grow(l.claim[:0], n)[:n]
}

// group links one group's members and appends what it decided for each to
// outs.
func (l *linker) group(members []held, outs []outSpan, res *Result) []outSpan {
	n := len(members)
	l.reset(n)
	for i := range members {
		l.m[i] = lm{f: &members[i].f, parent: -1, joinTo: -1, seg: -1, merged: -1}
		l.claim[i] = -1
	}
	// A lone span too: a late capture forms a segment of its own, which
	// late joins look at.
	res.Merged += l.mergeSessions()
	l.buildSegments()
	l.spanIDLinks()
	l.syscallLinks()
	l.xRequestLinks()
	offers := l.lateLinks()
	l.breakCycles()
	traces, viaLate := l.components(offers)
	for i := range l.m {
		m := &l.m[i]
		if m.absorbed {
			continue
		}
		if m.key != keyNone && (m.parent >= 0 || !m.ext.IsEmpty()) {
			res.Links[keyNames[m.key]]++
		}
		if m.late || viaLate[i] {
			res.LateJoins++
		}
	}
	l.leave(traces)
	for i := range l.m {
		m := &l.m[i]
		o := outSpan{trace: traces[i], merged: m.merged, key: m.key, late: m.late, absorbed: m.absorbed}
		switch {
		case m.parent >= 0:
			o.parent = members[m.parent].f.spanID
		case !m.ext.IsEmpty():
			o.parent = m.ext
		}
		outs = append(outs, o)
	}
	return outs
}

// mergeSessions pairs one-way response rows with their request rows (same
// observer, capture point, flow, protocol and request id) and merges each
// pair into the request row. eBPF rows carry capture sequences, and a response belongs to
// the request whose sequence is one less. Other rows pair only when the
// request is the latest before the response, the response the first after
// the request, and another capture of the same request saw the same pair
// (TCP sequences, times within tolerance): on a keep-alive flow whose other
// half went elsewhere (another collector, a late export), pairing by time
// alone would join two requests. Unpaired halves stay separate spans; each
// still joins its request's captures by its own TCP sequence.
func (l *linker) mergeSessions() int {
	any := false
	for i := range l.m {
		f := l.m[i].f
		if f.oneWay == nil {
			continue
		}
		any = true
		k := mergeKey{observer: f.observer, obs: f.obs, flow: f.oneWay.flowID, l7: f.oneWay.l7, reqID: f.reqID}
		l.merge[k] = append(l.merge[k], int32(i))
	}
	if !any {
		return 0
	}
	merged := 0
	// Keys in the order of their first member, not the map's: merging a
	// pair makes the request row a session, which confirmed() then counts
	// for the pairs of other keys, so the order must not be random.
	for i := range l.m {
		f := l.m[i].f
		if f.oneWay == nil {
			continue
		}
		k := mergeKey{observer: f.observer, obs: f.obs, flow: f.oneWay.flowID, l7: f.oneWay.l7, reqID: f.reqID}
		idx, ok := l.merge[k]
		if !ok {
			continue // done
		}
		delete(l.merge, k)
		slices.SortFunc(idx, func(a, b int32) int { return cmp.Compare(l.m[a].f.start, l.m[b].f.start) })
		for pos, r := range idx {
			rf := l.m[r].f
			if rf.msg != msgResponse {
				continue
			}
			best := int32(-1)
			for qpos := pos - 1; qpos >= 0; qpos-- {
				q := idx[qpos]
				qm := &l.m[q]
				qf := qm.f
				if qf.msg != msgRequest || qm.merged >= 0 {
					continue
				}
				exact := qf.oneWay.capReq != 0 && rf.oneWay.capResp != 0
				if exact {
					if qf.oneWay.capReq+1 == rf.oneWay.capResp {
						best = q
						break
					}
					continue
				}
				// The latest request before the response; nothing but
				// requests may lie between them.
				between := false
				for _, x := range idx[qpos+1 : pos] {
					if l.m[x].f.msg == msgResponse && !l.m[x].absorbed {
						between = true
					}
				}
				if !between && l.confirmed(qf, rf) {
					best = q
				}
				break
			}
			if best < 0 {
				continue
			}
			q := &l.m[best]
			qf := q.f
			qf.end = max(qf.end, rf.end)
			if qf.tcpResp == 0 {
				qf.tcpResp = rf.tcpResp
			}
			if qf.sysResp == 0 {
				qf.sysResp = rf.sysResp
			}
			if qf.xr1 == 0 {
				qf.xr1 = rf.xr1
			}
			if qf.xr0 == 0 {
				qf.xr0 = rf.xr0
			}
			qf.msg = msgSession
			q.merged = r
			l.m[r].absorbed = true
			merged++
		}
	}
	return merged
}

// confirmed says whether another capture saw request q and response r as
// one session: the same request sequence near q's start and the same
// response sequence near r's end.
func (l *linker) confirmed(q, r *fields) bool {
	if q.tcpReq == 0 || r.tcpResp == 0 {
		return false
	}
	for i := range l.m {
		o := l.m[i].f
		if o.msg == msgSession && o.isNetwork() && o.tcpReq == q.tcpReq && o.tcpResp == r.tcpResp &&
			abs(o.start-q.start) <= l.e.tol && abs(o.end-r.end) <= l.e.tol {
			return true
		}
	}
	return false
}

// buildSegments finds the captures of each TCP request (equal sequence,
// times within tolerance) and orders them from the client process to the
// server process. Each capture's parent is the one before it; a pair that
// cannot be consecutive (different hosts whose times do not overlap, two
// eBPF spans other than c-p -> s-p) starts a new segment.
func (l *linker) buildSegments() {
	tol := l.e.tol
	var net []int32
	for i := range l.m {
		m := &l.m[i]
		if m.absorbed || !m.f.isNetwork() || (m.f.tcpReq == 0 && m.f.tcpResp == 0) {
			continue
		}
		net = append(net, int32(i))
		l.uf[i] = int32(i)
	}
	if len(net) == 0 {
		return
	}
	find := func(x int32) int32 {
		for l.uf[x] != x {
			l.uf[x] = l.uf[l.uf[x]]
			x = l.uf[x]
		}
		return x
	}
	join := func(field func(*fields) uint32, at func(*fields) int64) {
		slices.SortFunc(net, func(a, b int32) int {
			fa, fb := l.m[a].f, l.m[b].f
			if c := cmp.Compare(field(fa), field(fb)); c != 0 {
				return c
			}
			return cmp.Compare(at(fa), at(fb))
		})
		for i := 1; i < len(net); i++ {
			fi := l.m[net[i]].f
			if field(fi) == 0 {
				continue
			}
			for j := i - 1; j >= 0; j-- {
				fj := l.m[net[j]].f
				if field(fj) != field(fi) || at(fi)-at(fj) > tol {
					break
				}
				if sameTCP(fi, fj, tol) {
					if a, b := find(net[i]), find(net[j]); a != b {
						l.uf[a] = b
					}
				}
			}
		}
	}
	join(func(f *fields) uint32 { return f.tcpReq }, func(f *fields) int64 { return f.start })
	join(func(f *fields) uint32 { return f.tcpResp }, func(f *fields) int64 { return f.end })

	hops := map[int32][]int32{}
	for _, i := range net {
		r := find(i)
		hops[r] = append(hops[r], i)
	}
	roots := make([]int32, 0, len(hops))
	for r := range hops {
		roots = append(roots, r)
	}
	slices.Sort(roots) // deterministic output
	for _, r := range roots {
		l.orderHop(hops[r], r)
	}
}

// orderHop orders one request's captures and chains them into segments.
func (l *linker) orderHop(hop []int32, hopID int32) {
	// The agent that saw the client side first ranks before the agents in
	// the middle, the one that saw the server side last after them.
	var ingress, egress uint32
	bestC, bestS := 99, -1
	for _, i := range hop {
		f := l.m[i].f
		r := f.obs.rank()
		if f.obs.clientSide() && r < bestC {
			bestC, ingress = r, f.observer
		}
		if f.obs.serverSide() && r > bestS {
			bestS, egress = r, f.observer
		}
	}
	agentRank := func(f *fields) int {
		switch {
		case f.obs == obsCP:
			return -1
		case f.obs == obsSP:
			return 3
		case f.observer != 0 && f.observer == ingress && !(f.obs.serverSide() && ingress == egress):
			return 0
		case f.observer != 0 && f.observer == egress:
			return 2
		}
		return 1
	}
	slices.SortFunc(hop, func(a, b int32) int {
		fa, fb := l.m[a].f, l.m[b].f
		if c := cmp.Compare(agentRank(fa), agentRank(fb)); c != 0 {
			return c
		}
		ra, rb := fa.obs.rank(), fb.obs.rank()
		if ra != 13 && rb != 13 && ra != rb {
			return cmp.Compare(ra, rb)
		}
		if c := cmp.Compare(fb.duration(), fa.duration()); c != 0 {
			return c
		}
		if c := cmp.Compare(fa.start, fb.start); c != 0 {
			return c
		}
		return slices.Compare(fa.spanID[:], fb.spanID[:])
	})
	start := 0
	for i := 1; i <= len(hop); i++ {
		if i < len(hop) && l.consecutive(l.m[hop[i-1]].f, l.m[hop[i]].f) {
			l.m[hop[i]].parent = hop[i-1]
			l.m[hop[i]].key = keyTCP
			continue
		}
		l.addSegment(hop[start:i], hopID)
		start = i
	}
}

func (l *linker) consecutive(prev, cur *fields) bool {
	if prev.isProcess() && cur.isProcess() {
		return prev.obs == obsCP && cur.obs == obsSP && overlaps(prev, cur, l.e.tol)
	}
	if prev.observer != 0 && prev.observer == cur.observer {
		return true
	}
	return overlaps(prev, cur, l.e.tol)
}

func (l *linker) addSegment(members []int32, hopID int32) {
	s := segment{hop: hopID, members: slices.Clone(members)}
	propOK := true
	for _, i := range members {
		f := l.m[i].f
		if !f.propID.IsEmpty() {
			switch {
			case s.prop.IsEmpty():
				s.prop = f.propID
			case s.prop != f.propID:
				propOK = false
			}
		}
		s.addXR(f.xr0, false)
		s.addXR(f.xr1, true)
	}
	if !propOK {
		s.prop = pcommon.SpanID{}
	}
	id := int32(len(l.segs))
	for _, i := range members {
		l.m[i].seg = id
	}
	l.segs = append(l.segs, s)
	if !s.prop.IsEmpty() {
		l.segByPro[s.prop] = append(l.segByPro[s.prop], id)
	}
}

func (l *linker) isApp(i int32) bool {
	m := &l.m[i]
	return !m.absorbed && m.f.src == srcApp
}

// spanIDLinks joins application spans and the network segments of the
// requests they sent or received, by the span id of the trace context:
// the client span is the parent of its request's first capture, and the
// server span that received the request becomes the child of its last
// capture.
func (l *linker) spanIDLinks() {
	for i := range l.m {
		if !l.isApp(int32(i)) {
			continue
		}
		id := l.m[i].f.spanID
		if _, dup := l.appByID[id]; dup {
			l.appByID[id] = -1
		} else {
			l.appByID[id] = int32(i)
		}
	}
	if len(l.segByPro) == 0 {
		return
	}
	for si := range l.segs {
		s := &l.segs[si]
		if s.prop.IsEmpty() {
			continue
		}
		a, ok := l.appByID[s.prop]
		root := s.root()
		if !ok || a < 0 || l.m[root].linked() || conflict(l.m[a].f, l.m[root].f) {
			continue
		}
		l.m[root].parent, l.m[root].key = a, keySpanID
	}
	for i := range l.m {
		y := int32(i)
		if !l.isApp(y) {
			continue
		}
		yf := l.m[y].f
		if yf.obs != obsSApp || yf.parentID.IsEmpty() {
			continue
		}
		segs := l.segByPro[yf.parentID]
		best, bestDur, tie := int32(-1), int64(0), false
		for _, si := range segs {
			leaf := l.segs[si].leaf()
			lf := l.m[leaf].f
			// A server-side capture runs on the server's clock: the span must
			// fit inside it. Only a client-side one needs the clock tolerance.
			slack := appSlack
			if !lf.obs.serverSide() {
				slack = l.e.tol
			}
			if !covers(lf, yf, slack) || conflict(lf, yf) {
				continue
			}
			switch d := lf.duration(); {
			case best < 0 || d < bestDur:
				best, bestDur, tie = leaf, d, false
			case d == bestDur:
				tie = true
			}
		}
		if best >= 0 && !tie {
			l.m[y].parent, l.m[y].key = best, keySpanID
		}
	}
}

// appRoot walks up from application span a through the parents the spans
// arrived with, inside the group, to the topmost. ok is false when the walk
// meets a span already placed under a network span.
func (l *linker) appRoot(a int32) (int32, bool) {
	for steps := 0; steps < len(l.m); steps++ {
		m := &l.m[a]
		if m.parent >= 0 {
			return a, false
		}
		p, ok := l.appByID[m.f.parentID]
		if m.f.parentID.IsEmpty() || !ok || p < 0 {
			return a, true
		}
		a = p
	}
	return a, false
}

// syscallLinks follows each server process span's syscall id chain through
// the calls it made (s-p.req == first c-p.req, c-p.resp == next c-p.req,
// last c-p.resp == s-p.resp). A chain counts only when it is complete,
// unambiguous (one span per id), inside the server span's time range and
// free of conflicting trace ids or X-Request-IDs: thread pools, event loops
// and pipelining break it, and then the calls stay unlinked.
func (l *linker) syscallLinks() {
	var servers []int32
	for i := range l.m {
		m := &l.m[i]
		if m.absorbed || m.f.src != srcEBPF {
			continue
		}
		f := m.f
		switch f.obs {
		case obsCP:
			if f.sysReq != 0 {
				k := procKey{f.observer, f.sysReq}
				l.callReq[k] = append(l.callReq[k], int32(i))
			}
		case obsSP:
			if f.sysReq != 0 && f.sysResp != 0 && f.sysReq != f.sysResp {
				k := procKey{f.observer, f.sysReq}
				l.spReq[k] = append(l.spReq[k], int32(i))
				servers = append(servers, int32(i))
			}
		}
	}
	if len(servers) == 0 || len(l.callReq) == 0 {
		return
	}
	chains := map[int32][]int32{}
	for _, s := range servers {
		sf := l.m[s].f
		if len(l.spReq[procKey{sf.observer, sf.sysReq}]) != 1 {
			continue
		}
		var chain []int32
		id, complete := sf.sysReq, false
		for step := 0; step < maxSyscallChain; step++ {
			calls := l.callReq[procKey{sf.observer, id}]
			if len(calls) != 1 {
				break
			}
			c := calls[0]
			cf := l.m[c].f
			if !covers(sf, cf, 0) || conflict(sf, cf) || (sf.pid != 0 && cf.pid != 0 && sf.pid != cf.pid) {
				break
			}
			chain = append(chain, c)
			id = cf.sysResp
			if id == sf.sysResp {
				complete = true
				break
			}
			if id == 0 {
				break
			}
		}
		if !complete {
			continue
		}
		for _, c := range chain {
			if l.claim[c] == -1 {
				l.claim[c] = s
			} else {
				l.claim[c] = -2 // two servers claim it: neither gets it
			}
		}
		chains[s] = chain
	}

	// Application spans under the server span: the ones already placed
	// under it by span id, and the root of the application spans the
	// chain's calls belong to (the server had no trace context to
	// propagate, e.g. behind a gateway that starts no trace).
	appChild := map[int32]int32{}
	for i := range l.m {
		if m := &l.m[i]; l.isApp(int32(i)) && m.parent >= 0 && l.m[m.parent].f.obs == obsSP {
			appChild[m.parent] = int32(i)
		}
	}
	for _, s := range servers {
		chain, ok := chains[s]
		if !ok {
			continue
		}
		if _, has := appChild[s]; has {
			continue
		}
		root, agree := int32(-1), true
		for _, c := range chain {
			if l.claim[c] != s {
				continue
			}
			p := l.m[c].parent
			if p < 0 || !l.isApp(p) {
				continue
			}
			r, ok := l.appRoot(p)
			if !ok || (root >= 0 && r != root) {
				agree = false
				break
			}
			root = r
		}
		if !agree || root < 0 {
			continue
		}
		rf, sf := l.m[root].f, l.m[s].f
		if rf.obs != obsSApp || !rf.parentID.IsEmpty() || l.m[root].linked() ||
			!covers(sf, rf, appSlack) || conflict(sf, rf) {
			continue
		}
		l.m[root].parent, l.m[root].key = s, keySyscall
		appChild[s] = root
	}

	// The calls not placed by span id: under the server span, or, when the
	// server's application is traced, under its client span that made the
	// call (the one whose time matches, if exactly one does), else only in
	// the server's trace.
	for _, s := range servers {
		for _, c := range chains[s] {
			if l.claim[c] != s || l.m[c].linked() {
				continue
			}
			y, traced := appChild[s]
			if !traced {
				l.m[c].parent, l.m[c].key = s, keySyscall
				continue
			}
			if a := l.clientSpanFor(y, c); a >= 0 {
				l.m[c].parent, l.m[c].key = a, keySyscall
			} else {
				l.m[c].joinTo = s
			}
		}
	}
}

// clientSpanFor finds, below application span y, the client span that made
// call c: a client span with no request of its own attached whose time
// overlaps at least half of c's. When two do, it is ambiguous and -1.
func (l *linker) clientSpanFor(y, c int32) int32 {
	l.prepApp()
	cf := l.m[c].f
	need := cf.duration() / 2
	best, found := int32(-1), 0
	stack := append(l.stack[:0], y)
	for steps := 0; len(stack) > 0 && steps <= len(l.m); steps++ {
		a := stack[len(stack)-1]
		stack = append(stack[:len(stack)-1], l.children[a]...)
		af := l.m[a].f
		if af.obs != obsCApp || l.hasCall[a] {
			continue
		}
		ov := min(af.end, cf.end) - max(af.start, cf.start)
		if ov < 0 || ov < need || (cf.duration() == 0 && !covers(af, cf, appSlack)) {
			continue
		}
		best = a
		found++
	}
	l.stack = stack
	if found != 1 {
		return -1
	}
	return best
}

// prepApp indexes, once per group, the application spans' children (by the
// parents they arrived with) and which client spans already have their
// request attached.
func (l *linker) prepApp() {
	if l.appReady {
		return
	}
	l.appReady = true
	for i := range l.m {
		if !l.isApp(int32(i)) {
			continue
		}
		f := l.m[i].f
		if p, ok := l.appByID[f.parentID]; ok && p >= 0 && l.m[i].parent < 0 {
			l.children[p] = append(l.children[p], int32(i))
		}
	}
	for i := range l.m {
		if p := l.m[i].parent; p >= 0 && l.m[i].key == keySpanID && l.m[i].f.isNetwork() {
			l.hasCall[p] = true
		}
	}
}

// xRequestLinks places the first capture of a request a gateway sent
// upstream under the last capture of the request it received, when both
// carry the same X-Request-ID: the gateway's inbound request must cover the
// upstream one in time, and of several such the shortest (innermost) wins.
func (l *linker) xRequestLinks() {
	for si := range l.segs {
		s := &l.segs[si]
		root := s.root()
		rm := &l.m[root]
		if rm.linked() || rm.joinTo >= 0 || rm.f.xr0 == 0 {
			continue
		}
		rf := rm.f
		best, bestDur, tie := int32(-1), int64(0), false
		for pj := range l.segs {
			if l.segs[pj].hop == s.hop || !l.segs[pj].hasX(rf.xr0) {
				continue // its own request's captures are not its gateway
			}
			leaf := l.segs[pj].leaf()
			lf := l.m[leaf].f
			if !covers(lf, rf, l.e.tol) || (lf.realTrace() && rf.realTrace() && lf.traceID != rf.traceID) {
				continue
			}
			switch d := lf.duration(); {
			case best < 0 || d < bestDur:
				best, bestDur, tie = leaf, d, false
			case d == bestDur:
				tie = true
			}
		}
		if best >= 0 && !tie {
			rm.parent, rm.key = best, keyXReq
		}
	}
}

// breakCycles removes links that would make a member its own ancestor
// (possible only with contradictory input); the weakest link of a cycle
// goes.
func (l *linker) breakCycles() {
	n := len(l.m)
	state := l.uf[:n] // reuse: 0 unvisited, 1 on the current walk, 2 done
	for i := range state {
		state[i] = 0
	}
	for i := 0; i < n; i++ {
		var walk []int32
		x := int32(i)
		for x >= 0 && state[x] == 0 {
			state[x] = 1
			walk = append(walk, x)
			x = l.m[x].parent
		}
		if x >= 0 && state[x] == 1 {
			weakest := x
			for y := l.m[x].parent; y != x; y = l.m[y].parent {
				if l.m[y].key > l.m[weakest].key {
					weakest = y
				}
			}
			l.m[weakest].parent, l.m[weakest].key = -1, keyNone
		}
		for _, w := range walk {
			state[w] = 2
		}
	}
}

// components joins members into traces: members with one application trace
// id, and members linked to each other, strongest links first. A link
// between two different application trace ids is dropped. Each trace gets
// the application trace id if it has one, else one remembered for a late
// join, else the trace id of its first root. It returns each member's
// trace id.
func (l *linker) components(late map[int32]pcommon.TraceID) ([]pcommon.TraceID, []bool) {
	n := len(l.m)
	uf := l.uf[:n]
	for i := range uf {
		uf[i] = int32(i)
	}
	find := func(x int32) int32 {
		for uf[x] != x {
			uf[x] = uf[uf[x]]
			x = uf[x]
		}
		return x
	}
	real := make([]pcommon.TraceID, n)
	byTrace := map[pcommon.TraceID]int32{}
	for i := range l.m {
		f := l.m[i].f
		if !f.realTrace() {
			continue
		}
		real[i] = f.traceID
		if r, ok := byTrace[f.traceID]; ok {
			uf[find(int32(i))] = find(r)
		} else {
			byTrace[f.traceID] = int32(i)
		}
	}
	try := func(a, b int32) bool {
		ra, rb := find(a), find(b)
		if ra == rb {
			return true
		}
		if !real[ra].IsEmpty() && !real[rb].IsEmpty() && real[ra] != real[rb] {
			return false
		}
		if real[ra].IsEmpty() {
			real[ra] = real[rb]
		}
		uf[rb] = ra
		return true
	}
	for k := keyTCP; k < numKeys; k++ {
		for i := range l.m {
			m := &l.m[i]
			if m.key != k || m.parent < 0 {
				continue
			}
			if !try(int32(i), m.parent) {
				m.parent, m.key = -1, keyNone
			}
		}
	}
	for i := range l.m {
		m := &l.m[i]
		if m.joinTo >= 0 && !try(int32(i), m.joinTo) {
			m.joinTo = -1
		}
		if m.merged >= 0 {
			try(int32(i), m.merged)
		}
	}
	// Late joins: a trace takes the trace id remembered for one of its
	// members' keys, unless it has an application trace id of its own that
	// differs.
	lateOf := map[int32]pcommon.TraceID{}
	// Members placed under a remembered span first: their trace id must be
	// their component's, or the link would cross traces.
	order := make([]int32, 0, len(late))
	for i := range late {
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		pa, pb := !l.m[a].ext.IsEmpty(), !l.m[b].ext.IsEmpty()
		if pa != pb {
			if pa {
				return -1
			}
			return 1
		}
		return cmp.Compare(a, b)
	})
	for _, i := range order {
		t := late[i]
		r := find(i)
		if !real[r].IsEmpty() && real[r] != t {
			if m := &l.m[i]; !m.ext.IsEmpty() {
				m.ext, m.key, m.late = pcommon.SpanID{}, keyNone, false
			}
			continue
		}
		if have, ok := lateOf[r]; !ok {
			lateOf[r] = t
		} else if have != t {
			if m := &l.m[i]; !m.ext.IsEmpty() {
				m.ext, m.key, m.late = pcommon.SpanID{}, keyNone, false
			}
		}
	}
	// The first root of each component (earliest start, then smallest span
	// id) names a trace without an application trace id.
	first := map[int32]int32{}
	for i := range l.m {
		m := &l.m[i]
		if m.linked() || m.absorbed {
			continue
		}
		r := find(int32(i))
		if f, ok := first[r]; ok {
			ff, mf := l.m[f].f, m.f
			if ff.start < mf.start || (ff.start == mf.start && slices.Compare(ff.spanID[:], mf.spanID[:]) <= 0) {
				continue
			}
		}
		first[r] = int32(i)
	}
	out := make([]pcommon.TraceID, n)
	viaLate := make([]bool, n)
	for i := range l.m {
		r := find(int32(i))
		switch {
		case !real[r].IsEmpty():
			out[i] = real[r]
		case !lateOf[r].IsEmpty():
			out[i] = lateOf[r]
			viaLate[i] = out[i] != l.m[i].f.traceID
		default:
			if f, ok := first[r]; ok {
				out[i] = l.m[f].f.traceID
			} else {
				out[i] = l.m[i].f.traceID
			}
		}
	}
	return out, viaLate
}

// LinkKeys lists the values a link's key takes (weft.link.key).
func LinkKeys() []string { return keyNames[1:] }
