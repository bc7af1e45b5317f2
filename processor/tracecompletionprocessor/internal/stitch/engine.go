package stitch

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Options configure an Engine; they mirror the processor's config.
type Options struct {
	// Wait is how long a group is held after its last span arrived.
	Wait time.Duration
	// MaxWait is how long a group is held at most after its first span
	// arrived, however busy it stays (a long-lived trace).
	MaxWait time.Duration
	// MaxSpans and MaxBytes bound what is held; past them the oldest
	// groups are linked and sent as they are.
	MaxSpans int
	MaxBytes int64
	// LateJoinTTL is how long the keys of a sent group are remembered (at
	// least; at most twice as long). 0 disables late joins.
	LateJoinTTL time.Duration
	// LateJoinMaxKeys bounds the remembered keys; past it the oldest half
	// is forgotten early.
	LateJoinMaxKeys int
	// TimeTolerance is how far apart two captures of one TCP request may
	// start (or end), and how much two hosts' clocks may differ.
	TimeTolerance time.Duration
}

// Flush reasons.
const (
	ReasonWait     = "wait"
	ReasonMaxWait  = "max_wait"
	ReasonPressure = "pressure"
	ReasonShutdown = "shutdown"
)

// Limits that force spans out early.
const (
	LimitMaxSpans = "max_spans"
	LimitMaxBytes = "max_bytes"
)

// Key chains: each record is on one chain per key it has. Chains of the same
// key space (a syscall id as request or as response; an X-Request-ID in the
// request or the response) share a map entry, so a chain node says which of
// the record's slots it is: node = ref<<3 | slot.
const (
	chSysReq = iota
	chSysResp
	chTCPReq
	chTCPResp
	chXR0
	chXR1
	chFlow
	numChains
)

// Key kinds, mixed into the index hash.
const (
	kTrace uint64 = iota + 1
	kSyscall
	kTCPReq
	kTCPResp
	kXReq
	kFlow
)

// maxChainWalk bounds how many records sharing one key are compared with a
// new one. A key shared by more is not discriminating (a constant
// X-Request-ID); it stops joining groups rather than slowing every insert.
const maxChainWalk = 256

// maxSyscallChain bounds a walk along a process's syscall id chain.
const maxSyscallChain = 64

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func keyOf(kind, a, b uint64) uint64 {
	return mix64(mix64(a^kind<<58^0x9e3779b97f4a7c15) ^ b)
}

func traceKey(id pcommon.TraceID) uint64 {
	a := uint64(id[0])<<56 | uint64(id[1])<<48 | uint64(id[2])<<40 | uint64(id[3])<<32 |
		uint64(id[4])<<24 | uint64(id[5])<<16 | uint64(id[6])<<8 | uint64(id[7])
	b := uint64(id[8])<<56 | uint64(id[9])<<48 | uint64(id[10])<<40 | uint64(id[11])<<32 |
		uint64(id[12])<<24 | uint64(id[13])<<16 | uint64(id[14])<<8 | uint64(id[15])
	return keyOf(kTrace, a, b)
}

// chainKey is the index key of a record's slot, 0 when it has none.
func chainKey(f *fields, slot int) uint64 {
	switch slot {
	case chSysReq:
		if f.sysReq != 0 && f.isProcess() {
			return keyOf(kSyscall, uint64(f.observer), f.sysReq)
		}
	case chSysResp:
		if f.sysResp != 0 && f.isProcess() && f.sysResp != f.sysReq {
			return keyOf(kSyscall, uint64(f.observer), f.sysResp)
		}
	case chTCPReq:
		if f.tcpReq != 0 && f.isNetwork() {
			return keyOf(kTCPReq, uint64(f.tcpReq), 0)
		}
	case chTCPResp:
		if f.tcpResp != 0 && f.isNetwork() {
			return keyOf(kTCPResp, uint64(f.tcpResp), 0)
		}
	case chXR0:
		if f.xr0 != 0 {
			return keyOf(kXReq, f.xr0, 0)
		}
	case chXR1:
		if f.xr1 != 0 && f.xr1 != f.xr0 {
			return keyOf(kXReq, f.xr1, 0)
		}
	case chFlow:
		if f.oneWay != nil && f.oneWay.flowID != 0 {
			return keyOf(kFlow, uint64(f.observer), f.oneWay.flowID)
		}
	}
	return 0
}

// resScope is the encoded resource and scope shared by the spans of one
// ResourceSpans x ScopeSpans.
type resScope struct {
	blob []byte
	d    *dict
	refs int32 // records using it; under Engine.mu
	// flush is the Engine.flush that last took out a record using it
	// (under Engine.mu): detach tells the emitter which resources and
	// scopes only one of a flush's spans uses.
	flush uint32
	size  int64
}

// rec is a held span.
type rec struct {
	f       fields
	blob    []byte
	rsc     *resScope
	arrival int64
	gen     uint32 // bumped when the slot is freed, so stale FIFO entries are recognised
	uf      uint32 // union-find parent; the root points to itself; 0 while being flushed
	next    uint32 // next member of the group
	grp     uint32 // the group's slot, valid at the root
	bytes   uint32 // what the record is accounted for
	chain   [numChains]uint32
}

type group struct {
	head, tail  uint32
	count       uint32
	first, last int64
}

type fifoEnt struct {
	ref, gen uint32
	at       int64
}

// Estimated memory of index entries and FIFO entries, for max_bytes.
const (
	indexEntryBytes = 32
	fifoEntryBytes  = 16
	recBytes        = int64(unsafe.Sizeof(rec{}))
)

// held is a record taken out of the buffer for linking.
type held struct {
	f    fields
	blob []byte
	rsc  *resScope
	// alone: no other span of the flush uses rsc (a DeepFlow row has a
	// resource of its own), so the emitter need not look for it.
	alone bool
}

type detached struct {
	members []held
	reason  string
}

// Engine holds spans and stitches them. Add and Flush may be called from any
// goroutine.
type Engine struct {
	opt Options
	tol int64

	// dicts are the dictionaries batches are encoded with: an encoder
	// holds its dictionary's lock for the whole batch, so batches arriving
	// together (one per receiver goroutine) each take one and encode in
	// parallel. One more is made when all are taken, up to one per core
	// and maxDicts. dmu guards the slice.
	dmu   sync.Mutex
	dicts []*dict
	dnext int

	// procs is how many runs a big flush is cut into at most (link).
	procs int

	mu     sync.Mutex
	pages  [][]rec // records in pages, so growing never copies them
	nrec   uint32  // slots handed out so far
	free   []uint32
	groups []group
	gfree  []uint32
	idx    keyTable
	fifo   []fifoEnt
	fhead  int
	spans  int
	bytes  int64
	flush  uint32 // counts the times records were taken out for linking

	// flushMu serialises flushes: it guards late and the linkers, one per
	// run of groups a flush is split into (link).
	flushMu  sync.Mutex
	late     *lateMemory
	linkers  []*linker
	lateKeys atomic.Int64 // late.len(), readable without waiting for a flush
}

// New returns an engine.
func New(opt Options) *Engine {
	if opt.MaxWait < opt.Wait {
		opt.MaxWait = opt.Wait
	}
	e := &Engine{
		opt:    opt,
		tol:    int64(opt.TimeTolerance),
		dicts:  []*dict{newDict()},
		procs:  max(1, runtime.GOMAXPROCS(0)),
		nrec:   1, // slot 0 is nil
		groups: make([]group, 1, 256),
		idx:    newKeyTable(),
		late:   newLateMemory(opt.LateJoinTTL, opt.LateJoinMaxKeys),
	}
	return e
}

// Result is what an Add or a Flush sent on, and what happened on the way.
type Result struct {
	// Traces holds the stitched spans; empty when nothing was due.
	Traces ptrace.Traces
	// Spans is the number of spans in Traces.
	Spans int
	// Groups counts the groups flushed, by reason.
	Groups map[string]int
	// Links counts the parent links set, by key.
	Links map[string]int
	// LateJoins counts spans that joined a trace already sent.
	LateJoins int
	// Evicted counts spans sent early, by limit.
	Evicted map[string]int
	// Merged counts response rows merged into their request row.
	Merged int
	// Corrupt counts held spans (or their resource and scope) whose
	// encoding did not decode: a bug in Weft, and those spans went out
	// incomplete or, for merged response rows, not at all.
	Corrupt int
}

func (r *Result) add(reason string, n int) {
	if r.Groups == nil {
		r.Groups = map[string]int{}
	}
	r.Groups[reason] += n
}

// Buffered reports the spans and the estimated bytes held.
func (e *Engine) Buffered() (int, int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.spans, e.bytes
}

// LateKeys reports how many keys are remembered for late spans.
func (e *Engine) LateKeys() int { return int(e.lateKeys.Load()) }

// Add takes a batch of spans. The batch is not kept: what is held is its
// encoding. When holding it exceeds a limit, the oldest groups are stitched
// and returned at once.
func (e *Engine) Add(now time.Time, td ptrace.Traces) Result {
	batch := e.encode(td)
	t := now.UnixNano()
	e.mu.Lock()
	for i := range batch.recs {
		e.insert(&batch.recs[i], t)
	}
	var out []detached
	evicted := map[string]int{}
	e.flush++
	for e.spans > e.opt.MaxSpans || e.bytes > e.opt.MaxBytes {
		limit := LimitMaxSpans
		if e.spans <= e.opt.MaxSpans {
			limit = LimitMaxBytes
		}
		d, ok := e.detachOldest()
		if !ok {
			break
		}
		evicted[limit] += len(d.members)
		out = append(out, d)
	}
	e.mu.Unlock()
	if len(out) == 0 {
		return Result{}
	}
	res := e.link(now, out)
	res.Evicted = evicted
	return res
}

// Flush stitches and returns the groups that are due at now; all flushes
// everything (shutdown).
func (e *Engine) Flush(now time.Time, all bool) Result {
	t := now.UnixNano()
	e.mu.Lock()
	e.flush++
	var out []detached
	if all {
		out = e.detachAll()
	} else {
		out = e.detachDue(t)
	}
	e.mu.Unlock()
	e.flushMu.Lock()
	e.late.expire(t)
	e.lateKeys.Store(int64(e.late.len()))
	e.flushMu.Unlock()
	if len(out) == 0 {
		return Result{}
	}
	return e.link(now, out)
}

// encodedBatch is a batch ready to insert.
type encodedBatch struct {
	recs []rec
}

func (e *Engine) encode(td ptrace.Traces) encodedBatch {
	d := e.lockDict()
	defer d.mu.Unlock()
	enc := encoder{d: d, buf: make([]byte, 0, 4096)}
	var batch encodedBatch
	batch.recs = make([]rec, 0, td.SpanCount())

	// Correlation attributes of the resource (read from the first scope
	// only: a resource is one) and of the span being encoded.
	var res, sp corrPair
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		first := true
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			spans := ss.Spans()
			if spans.Len() == 0 {
				continue
			}
			enc.buf = enc.buf[:0]
			if first {
				res = corrPair{}
				enc.resScope(rs, ss, &res)
				first = false
			} else {
				enc.resScope(rs, ss, nil)
			}
			rsc := &resScope{d: d}
			// A ResourceSpans of one span (every DeepFlow row) keeps both
			// encodings in one allocation.
			one := spans.Len() == 1
			if !one {
				rsc.blob = append([]byte(nil), enc.buf...)
			}
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				sp = corrPair{}
				var blob []byte
				if one {
					n := len(enc.buf)
					enc.span(span, &sp)
					both := append([]byte(nil), enc.buf...)
					rsc.blob, blob = both[:n:n], both[n:]
				} else {
					enc.buf = enc.buf[:0]
					enc.span(span, &sp)
					blob = append([]byte(nil), enc.buf...)
				}
				c := sp.weft
				c.fill(&sp.df)
				c.fill(&res.weft)
				c.fill(&res.df)
				batch.recs = append(batch.recs, rec{blob: blob, rsc: rsc})
				c.resolve(span, &batch.recs[len(batch.recs)-1].f)
			}
			rsc.size = int64(cap(rsc.blob)) + int64(unsafe.Sizeof(resScope{}))
		}
	}
	d.publish()
	return batch
}

// maxDicts bounds the dictionaries: each interns the strings it sees again
// and costs some 400 KB before it holds any, so more than a few buy nothing.
const maxDicts = 8

// lockDict returns a dictionary locked for the caller: a free one if there
// is, else a new one while there are fewer than cores and maxDicts, else
// one to wait for, in turn. A full dictionary is replaced by a new one; the spans
// encoded with it keep it alive until they are sent.
func (e *Engine) lockDict() *dict {
	e.dmu.Lock()
	for i, d := range e.dicts {
		if d.filled.Load() {
			d = newDict()
			e.dicts[i] = d
		}
		if d.mu.TryLock() {
			e.dmu.Unlock()
			return d
		}
	}
	if len(e.dicts) < min(e.procs, maxDicts) {
		d := newDict()
		d.mu.Lock()
		e.dicts = append(e.dicts, d)
		e.dmu.Unlock()
		return d
	}
	d := e.dicts[e.dnext%len(e.dicts)]
	e.dnext++
	e.dmu.Unlock()
	d.mu.Lock()
	return d
}

const pageBits = 12

// at is the record in slot r.
func (e *Engine) at(r uint32) *rec { return &e.pages[r>>pageBits][r&(1<<pageBits-1)] }

// alloc takes a free slot.
func (e *Engine) alloc() uint32 {
	if n := len(e.free); n > 0 {
		r := e.free[n-1]
		e.free = e.free[:n-1]
		return r
	}
	r := e.nrec
	if int(r>>pageBits) == len(e.pages) {
		e.pages = append(e.pages, make([]rec, 1<<pageBits))
	}
	e.nrec++
	return r
}

func (e *Engine) allocGroup() uint32 {
	if n := len(e.gfree); n > 0 {
		g := e.gfree[n-1]
		e.gfree = e.gfree[:n-1]
		return g
	}
	e.groups = append(e.groups, group{})
	return uint32(len(e.groups) - 1)
}

func (e *Engine) find(r uint32) uint32 {
	for {
		x := e.at(r)
		if x.uf == r {
			return r
		}
		p := e.at(x.uf)
		x.uf = p.uf // path halving
		r = p.uf
	}
}

func (e *Engine) union(a, b uint32) {
	ra, rb := e.find(a), e.find(b)
	if ra == rb {
		return
	}
	ga, gb := &e.groups[e.at(ra).grp], &e.groups[e.at(rb).grp]
	if ga.count < gb.count {
		ra, rb = rb, ra
		ga, gb = gb, ga
	}
	e.at(rb).uf = ra
	e.at(ga.tail).next = gb.head
	ga.tail = gb.tail
	ga.count += gb.count
	ga.first = min(ga.first, gb.first)
	ga.last = max(ga.last, gb.last)
	e.gfree = append(e.gfree, e.at(rb).grp)
}

// insert adds a record and joins it to the groups of the records it is
// related to.
func (e *Engine) insert(src *rec, now int64) {
	r := e.alloc()
	rp := e.at(r)
	gen := rp.gen
	*rp = *src
	rp.gen = gen
	rp.uf = r
	rp.arrival = now
	g := e.allocGroup()
	e.groups[g] = group{head: r, tail: r, count: 1, first: now, last: now}
	rp.grp = g
	f := &rp.f

	size := recBytes + int64(cap(rp.blob)) + fifoEntryBytes
	if rp.rsc.refs == 0 {
		e.bytes += rp.rsc.size
		rp.rsc.d.users++
	}
	rp.rsc.refs++
	e.chargeDict(rp.rsc.d)

	if f.realTrace() {
		k := traceKey(f.traceID)
		if o := e.idx.get(k); o != 0 {
			if e.at(o).f.traceID == f.traceID {
				e.union(r, o)
			}
		} else {
			e.idx.set(k, r)
			size += indexEntryBytes
		}
	}
	for slot := 0; slot < numChains; slot++ {
		k := chainKey(f, slot)
		if k == 0 {
			continue
		}
		// r heads the key's chain now; the walk starts at the old head.
		head := e.idx.swap(k, r<<3|uint32(slot))
		e.at(r).chain[slot] = head
		// Syscall ids join through whole chains (joinProcess); a flow only
		// finds a one-way row's other half, which joins through its TCP
		// sequence: a keep-alive flow carries many requests.
		join := slot != chSysReq && slot != chSysResp && slot != chFlow
		e.joinChain(r, slot, head, join)
		size += indexEntryBytes
	}
	if f.isProcess() && (f.sysReq != 0 || f.sysResp != 0) {
		e.joinProcess(r)
	}
	e.at(r).bytes = uint32(size)
	e.bytes += size
	e.spans++
	e.fifo = append(e.fifo, fifoEnt{ref: r, gen: gen, at: now + int64(e.opt.Wait)})
}

// chargeDict brings what Engine.bytes includes for a dictionary held spans
// use up to its size: it grows while they are held, as later batches
// intern strings.
func (e *Engine) chargeDict(d *dict) {
	n := d.pubSize.Load()
	e.bytes += n - d.charged
	d.charged = n
}

// releaseDict stops counting a dictionary once no held span uses it. The
// engine's current dictionaries (one per batch encoded at once, at most
// maxDicts) stay alive regardless; they are not what max_bytes has to
// bound.
func (e *Engine) releaseDict(d *dict) {
	if d.users--; d.users == 0 {
		e.bytes -= d.charged
		d.charged = 0
	}
}

// joinChain joins r to the records on a key chain (from node, the head
// before r) it is compatible with, when join is set; r is about to become
// the chain's head. In the same walk it cuts the chain after maxChainWalk
// records, counting r: joins never look further, so the older records
// beyond would only make every later unchain of the key walk them (with a
// key many records share, a constant X-Request-ID or a long keep-alive
// flow, removal became quadratic).
func (e *Engine) joinChain(r uint32, slot int, node uint32, join bool) {
	f := &e.at(r).f
	for n := 0; node != 0 && n < maxChainWalk; n++ {
		o, oslot := node>>3, int(node&7)
		op := e.at(o)
		node = op.chain[oslot]
		if n == maxChainWalk-2 && node != 0 {
			// op is the last record to keep once r heads the chain. The
			// join walk still visits the next one, as before r arrived.
			op.chain[oslot] = 0
		}
		if !join {
			if n >= maxChainWalk-2 {
				return
			}
			continue
		}
		if e.compatible(f, &op.f, slot) {
			e.union(r, o)
		}
	}
}

// compatible says whether two records sharing a key of slot's kind are
// likely the same request, so that they belong in one group. Linking checks
// again, more strictly; this only keeps groups from growing through
// coincidences.
func (e *Engine) compatible(a, b *fields, slot int) bool {
	switch slot {
	case chTCPReq:
		return sameTCP(a, b, e.tol) && a.tcpReq == b.tcpReq
	case chTCPResp:
		return sameTCP(a, b, e.tol) && a.tcpResp == b.tcpResp
	case chXR0, chXR1:
		return !(a.realTrace() && b.realTrace() && a.traceID != b.traceID) && sharesXReq(a, b) && overlaps(a, b, e.tol)
	}
	return false
}

// sameTCP: two captures of one TCP request see the same sequences and times
// within the tolerance, and nothing else they both carry differs. Equal
// sequences are not always one request: HTTP/2 and gRPC send the headers
// of concurrent streams in one segment, so their requests share it, and
// only the stream ids (or the trace contexts) tell them apart.
func sameTCP(a, b *fields, tol int64) bool {
	if a.tcpReq != 0 && b.tcpReq != 0 {
		if a.tcpReq != b.tcpReq || abs(a.start-b.start) > tol {
			return false
		}
	}
	if a.tcpResp != 0 && b.tcpResp != 0 {
		if a.tcpResp != b.tcpResp || abs(a.end-b.end) > tol {
			return false
		}
	}
	if (a.tcpReq == 0 || b.tcpReq == 0) && (a.tcpResp == 0 || b.tcpResp == 0) {
		return false // nothing in common
	}
	return !distinctRequests(a, b)
}

// distinctRequests says whether two captures carry ids that two captures
// of one request cannot differ in: X-Request-IDs, stream (request) ids,
// trace ids, propagated span ids. It is stricter than conflict, which
// relates spans of one request inside a process (a server span and its
// calls): those share some X-Request-ID, while two captures of one request
// carry the same request header.
func distinctRequests(a, b *fields) bool {
	differ := func(x, y uint64) bool { return x != 0 && y != 0 && x != y }
	switch {
	case differ(a.xr0, b.xr0), differ(uint64(a.reqID), uint64(b.reqID)):
		return true
	case a.realTrace() && b.realTrace() && a.traceID != b.traceID:
		return true
	case !a.propID.IsEmpty() && !b.propID.IsEmpty() && a.propID != b.propID:
		return true
	}
	return false
}

func sharesXReq(a, b *fields) bool {
	for _, x := range [2]uint64{a.xr0, a.xr1} {
		if x != 0 && (x == b.xr0 || x == b.xr1) {
			return true
		}
	}
	return false
}

func overlaps(a, b *fields, tol int64) bool {
	return a.start <= b.end+tol && b.start <= a.end+tol
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

// covers: a's interval contains b's, with slack.
func covers(a, b *fields, slack int64) bool {
	return a.start <= b.start+slack && b.end <= a.end+slack
}

// conflict: two spans that cannot be of one request because they carry
// different application trace ids or different X-Request-IDs.
func conflict(a, b *fields) bool {
	if a.realTrace() && b.realTrace() && a.traceID != b.traceID {
		return true
	}
	if (a.xr0 != 0 || a.xr1 != 0) && (b.xr0 != 0 || b.xr1 != 0) && !sharesXReq(a, b) {
		return true
	}
	return false
}

// syscallPeers calls fn for each process record of the same observer with
// syscall id id (as request or response), until fn returns false.
func (e *Engine) syscallPeers(observer uint32, id uint64, fn func(o uint32, of *fields) bool) {
	if id == 0 {
		return
	}
	node := e.idx.get(keyOf(kSyscall, uint64(observer), id))
	for n := 0; node != 0 && n < maxChainWalk; n++ {
		o, slot := node>>3, int(node&7)
		node = e.at(o).chain[slot]
		of := &e.at(o).f
		if of.observer == observer && (of.sysReq == id || of.sysResp == id) {
			if !fn(o, of) {
				return
			}
		}
	}
}

// uniqueCall returns the one c-p record of observer other than skip whose
// request id (or, with resp, response id) is id, or 0 when there is none or
// more than one.
func (e *Engine) uniqueCall(observer uint32, id uint64, skip uint32, resp bool) uint32 {
	var found uint32
	many := false
	e.syscallPeers(observer, id, func(o uint32, of *fields) bool {
		own := of.sysReq
		if resp {
			own = of.sysResp
		}
		if o == skip || of.obs != obsCP || own != id {
			return true
		}
		if found != 0 {
			many = true
			return false
		}
		found = o
		return true
	})
	if many {
		return 0
	}
	return found
}

// partner finds the other half of a one-way row (same observer, capture
// point and flow; the response follows the request, with the next capture
// sequence when known), or 0.
func (e *Engine) partner(r uint32) uint32 {
	f := &e.at(r).f
	if f.oneWay == nil || f.oneWay.flowID == 0 {
		return 0
	}
	var best uint32
	node := e.idx.get(keyOf(kFlow, uint64(f.observer), f.oneWay.flowID))
	for n := 0; node != 0 && n < maxChainWalk; n++ {
		o, slot := node>>3, int(node&7)
		node = e.at(o).chain[slot]
		of := &e.at(o).f
		if o == r || of.oneWay == nil || of.observer != f.observer || of.obs != f.obs || of.oneWay.flowID != f.oneWay.flowID {
			continue // a flow is one capture point's
		}
		req, resp := f, of
		if f.msg == msgResponse {
			req, resp = of, f
		}
		if req.msg != msgRequest || resp.msg != msgResponse || req.start > resp.start {
			continue
		}
		if req.oneWay.capReq != 0 && resp.oneWay.capResp != 0 && req.oneWay.capReq+1 != resp.oneWay.capResp {
			continue
		}
		// The closest in time is the pair (keep-alive flows carry many).
		if best == 0 || abs(of.start-f.start) < abs(e.at(best).f.start-f.start) {
			best = o
		}
	}
	return best
}

// sysReqOf and sysRespOf are a process record's syscall ids, taken from
// the other half when the record is a one-way row.
func (e *Engine) sysReqOf(r uint32) uint64 {
	f := &e.at(r).f
	if f.sysReq == 0 && f.msg == msgResponse {
		if p := e.partner(r); p != 0 {
			return e.at(p).f.sysReq
		}
	}
	return f.sysReq
}

func (e *Engine) sysRespOf(r uint32) uint64 {
	f := &e.at(r).f
	if f.sysResp == 0 && f.msg == msgRequest {
		if p := e.partner(r); p != 0 {
			return e.at(p).f.sysResp
		}
	}
	return f.sysResp
}

// contains says whether server record s can contain call record c in time.
// A one-way row only knows one end of its session: the other is open.
func contains(s, c *fields) bool {
	lo, hi := s.start, s.end
	switch s.msg {
	case msgRequest:
		hi = 1<<63 - 1
	case msgResponse:
		lo = -1 << 63
	}
	return lo <= c.start && c.end <= hi
}

// serverOf finds the s-p record whose syscall chain a process record is on:
// itself for an s-p; for a c-p, walking back from its request id through
// earlier calls to the s-p whose request id starts the chain, or else the
// s-p whose response id ends it.
func (e *Engine) serverOf(r uint32) uint32 {
	f := &e.at(r).f
	if f.obs == obsSP {
		return r
	}
	id := e.sysReqOf(r)
	for step := 0; id != 0 && step < maxSyscallChain; step++ {
		var server, prev uint32
		e.syscallPeers(f.observer, id, func(o uint32, of *fields) bool {
			switch {
			case of.obs == obsSP && of.sysReq == id:
				server = o
			case of.obs == obsCP && of.sysResp == id && o != r:
				prev = o
			}
			return true
		})
		if server != 0 {
			return server
		}
		if prev == 0 {
			break
		}
		id = e.sysReqOf(prev)
	}
	id = e.sysRespOf(r)
	for step := 0; id != 0 && step < maxSyscallChain; step++ {
		var server, next uint32
		e.syscallPeers(f.observer, id, func(o uint32, of *fields) bool {
			switch {
			case of.obs == obsSP && of.sysResp == id:
				server = o
			case of.obs == obsCP && of.sysReq == id && o != r:
				next = o
			}
			return true
		})
		if server != 0 {
			return server
		}
		if next == 0 {
			break
		}
		id = e.sysRespOf(next)
	}
	return 0
}

// joinProcess groups a process record with the server span whose calls it
// is part of, and that server's calls with it: following the chain forward
// from the server's request id, and backward from its response id (so that
// one missing call does not cut off the rest). Only calls the server's
// time range covers join; linking later checks the whole chain.
func (e *Engine) joinProcess(r uint32) {
	s := e.serverOf(r)
	if s == 0 {
		return
	}
	if p := e.partner(s); p != 0 {
		e.union(s, p)
	}
	sf := e.at(s).f
	sReq, sResp := e.sysReqOf(s), e.sysRespOf(s)
	if sReq != 0 && sReq == sResp {
		return // a leaf server: no calls to join
	}
	join := func(c uint32) bool {
		cf := &e.at(c).f
		if !contains(&sf, cf) || conflict(&sf, cf) {
			return false
		}
		e.union(s, c)
		if p := e.partner(c); p != 0 {
			e.union(c, p)
		}
		return true
	}
	id := sReq
	for step := 0; id != 0 && id != sResp && step < maxSyscallChain; step++ {
		c := e.uniqueCall(sf.observer, id, s, false)
		if c == 0 || !join(c) {
			break
		}
		id = e.sysRespOf(c)
	}
	id = sResp
	for step := 0; id != 0 && id != sReq && step < maxSyscallChain; step++ {
		c := e.uniqueCall(sf.observer, id, s, true)
		if c == 0 || !join(c) {
			break
		}
		id = e.sysReqOf(c)
	}
}

// detachDue takes out the groups whose wait (or max wait) is over.
func (e *Engine) detachDue(now int64) []detached {
	var out []detached
	for e.fhead < len(e.fifo) && e.fifo[e.fhead].at <= now {
		ent := e.fifo[e.fhead]
		e.fhead++
		r := e.at(ent.ref)
		if r.gen != ent.gen || r.uf == 0 || r.blob == nil {
			continue
		}
		root := e.find(ent.ref)
		g := &e.groups[e.at(root).grp]
		switch {
		case g.last+int64(e.opt.Wait) <= now:
			out = append(out, e.detach(root, ReasonWait))
		case g.first+int64(e.opt.MaxWait) <= now:
			out = append(out, e.detach(root, ReasonMaxWait))
		}
	}
	e.compactFIFO()
	return out
}

// detachOldest takes out the group of the oldest FIFO entry, under
// pressure.
func (e *Engine) detachOldest() (detached, bool) {
	for e.fhead < len(e.fifo) {
		ent := e.fifo[e.fhead]
		e.fhead++
		r := e.at(ent.ref)
		if r.gen != ent.gen || r.uf == 0 || r.blob == nil {
			continue
		}
		d := e.detach(e.find(ent.ref), ReasonPressure)
		e.compactFIFO()
		return d, true
	}
	e.compactFIFO()
	return detached{}, false
}

func (e *Engine) detachAll() []detached {
	var out []detached
	for r := uint32(1); r < e.nrec; r++ {
		if rp := e.at(r); rp.blob != nil && rp.uf == r {
			out = append(out, e.detach(r, ReasonShutdown))
		}
	}
	e.fifo, e.fhead = e.fifo[:0], 0
	return out
}

func (e *Engine) compactFIFO() {
	if e.fhead > 4096 && e.fhead*2 > len(e.fifo) {
		n := copy(e.fifo, e.fifo[e.fhead:])
		e.fifo = e.fifo[:n]
		e.fhead = 0
	}
}

// detach removes a group from the buffer and the index.
func (e *Engine) detach(root uint32, reason string) detached {
	g := e.groups[e.at(root).grp]
	e.gfree = append(e.gfree, e.at(root).grp)
	members := make([]held, 0, g.count)
	for r := g.head; r != 0; r = e.at(r).next {
		rp := e.at(r)
		rp.uf = 0 // marks it as leaving, for the chain cleanup below
		rsc := rp.rsc
		// refs still counts every record of this group; a record of the
		// flush taken out before has marked rsc.
		alone := rsc.refs == 1 && rsc.flush != e.flush
		rsc.flush = e.flush
		members = append(members, held{f: rp.f, blob: rp.blob, rsc: rsc, alone: alone})
	}
	for r := g.head; r != 0; r = e.at(r).next {
		f := &e.at(r).f
		if f.realTrace() {
			k := traceKey(f.traceID)
			if o := e.idx.get(k); o != 0 && e.at(o).uf == 0 {
				e.idx.del(k)
			}
		}
		for slot := 0; slot < numChains; slot++ {
			k := chainKey(f, slot)
			if k == 0 {
				continue
			}
			e.unchain(k) // a second call for a shared key finds it gone
		}
	}
	var next uint32
	for r := g.head; r != 0; r = next {
		rp := e.at(r)
		next = rp.next
		e.spans--
		e.bytes -= int64(rp.bytes)
		if rp.rsc.refs--; rp.rsc.refs == 0 {
			e.bytes -= rp.rsc.size
			e.releaseDict(rp.rsc.d)
		}
		*rp = rec{gen: rp.gen + 1}
		e.free = append(e.free, r)
	}
	return detached{members: members, reason: reason}
}

// unchain drops the leaving records from a key's chain.
func (e *Engine) unchain(k uint64) {
	node := e.idx.get(k)
	var head, tail uint32
	for node != 0 {
		o, slot := node>>3, int(node&7)
		next := e.at(o).chain[slot]
		if e.at(o).uf != 0 {
			if tail == 0 {
				head = node
			} else {
				e.at(tail >> 3).chain[int(tail&7)] = node
			}
			tail = node
		}
		node = next
	}
	if tail != 0 {
		e.at(tail >> 3).chain[int(tail&7)] = 0
	}
	if head == 0 {
		e.idx.del(k)
	} else {
		e.idx.set(k, head)
	}
}
