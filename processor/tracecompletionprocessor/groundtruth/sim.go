// Package groundtruth simulates a small Kubernetes shop — a gateway, three
// services, a database and a cache on four nodes, each node with an eBPF
// and packet agent — and emits the spans every observation point would
// export (DeepFlow's OTLP export or Weft's vocabulary), the application
// spans of the traced services (OTLP from an SDK), and the true parent of
// every span. Tests and benchmarks of trace_completion run on it.
//
// The simulation models what breaks stitching in practice: keep-alive
// connections shared by requests of different traces, a single-threaded
// event-loop gateway, pipelined cache calls, retried calls, a thread pool
// that calls the database from another thread than the one that received
// the request, one-way request/response rows, clock offsets between nodes
// and late exports. Syscall trace ids are assigned by replaying every
// process's socket reads and writes in time order with the eBPF agent's
// rule (inbound data takes a new id unless the socket's last data was
// inbound too; outbound data takes the thread's id and clears it), so
// whether a chain is intact is a consequence of the threading, not a flag.
package groundtruth

import (
	"math/rand/v2"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Format is how network and eBPF spans are exported.
type Format int

const (
	// DeepFlow is DeepFlow's OTLP export: df.* attributes, observation
	// points as display names, one span per ResourceSpans, made-up trace ids
	// and self-parents when a request carried no trace context.
	DeepFlow Format = iota
	// Vocabulary is Weft's own correlation attributes (internal/vocab).
	Vocabulary
)

// Instrumentation says which services run an OTel SDK. The gateway, the
// database and the cache never do.
type Instrumentation int

const (
	// InstrumentAll: services A, B and C are traced.
	InstrumentAll Instrumentation = iota
	// InstrumentNone: only eBPF and packet spans exist.
	InstrumentNone
	// InstrumentFront: only A, which propagates its trace context to B and
	// C (their eBPF spans carry it).
	InstrumentFront
)

// Config describes one simulation.
type Config struct {
	Seed     uint64
	Requests int
	// Rate is client requests per second; it sets how many requests are in
	// flight at once, and so how much connections and threads are shared.
	Rate  float64
	Start time.Time

	Instrument Instrumentation
	// ThreadPool makes B call the database from a worker thread: the
	// syscall ids of those calls do not chain to B's request.
	ThreadPool bool
	// Pipeline makes C send its two cache calls on one connection before
	// reading either response.
	Pipeline bool
	// Multiplex makes A call B over gRPC: one HTTP/2 connection carries
	// the calls of every request at once, each on a stream of its own, and
	// the headers of calls sent within coalesceWindow of each other leave
	// in one TCP segment, so those calls share its sequence numbers.
	Multiplex bool
	// RetryRate is the share of A -> C calls whose first attempt fails
	// (503) and is retried inside the same client span.
	RetryRate float64
	// OneWayRate is the share of network and eBPF rows exported as separate
	// request and response rows.
	OneWayRate float64
	// ClockSkew bounds each node's clock offset.
	ClockSkew time.Duration
	// ExportDelay bounds the delay between a span's end and its arrival.
	ExportDelay time.Duration
	// LateRate is the share of network and eBPF rows that arrive LateDelay
	// after the others (more than the processor's wait).
	LateRate  float64
	LateDelay time.Duration
	// Batch is the arrival window that goes into one batch (default 100ms).
	Batch time.Duration

	Format Format
}

type serviceKind int

const (
	kindGateway serviceKind = iota
	kindApp
	kindDB
	kindCache
)

type node struct {
	name    string
	agent   string
	offset  int64 // clock offset, ns
	nextSys uint64
	nextRow uint64
}

type service struct {
	name         string
	kind         serviceKind
	node         *node
	pid          uint32
	ip           string
	port         int
	instrumented bool
	threads      []int64 // busy until
	workers      []int64
}

// Observation points, in path order.
type obsPoint int

const (
	cp obsPoint = iota
	cNIC
	cNode
	sNode
	sNIC
	sp
)

var obsNames = [...]string{"Client Process", "Client NIC", "Client K8s Node", "Server K8s Node", "Server NIC", "Server Process"}
var obsCodes = [...]string{"c-p", "c", "c-nd", "s-nd", "s", "s-p"}

// point is one capture of a hop.
type point struct {
	obs     obsPoint
	node    *node
	id      uint64 // DeepFlow's row id = span id
	respID  uint64 // the response row's id when exported one-way
	start   int64
	end     int64
	late    bool
	arrival int64
	oneWay  bool
	capSeq  uint32
	flowID  uint64
}

// conn is a TCP connection between two services.
type conn struct {
	id     int
	client *service
	server *service
	up     tcpDir // client to server
	down   tcpDir
	port   int
	busy   int64
	flow   uint64
	// per side: the last data's direction and syscall id
	lastIn [2]bool
	lastID [2]uint64
	// HTTP/2: the last stream id.
	stream uint32
}

// tcpDir is one direction of a connection.
type tcpDir struct {
	seq uint32 // of the last byte sent
	// the last segment of an HTTP/2 connection: when it left, its sequence
	lastAt  int64
	lastSeq uint32
}

// send returns the sequence number of a message of size bytes.
func (d *tcpDir) send(size uint32) uint32 {
	seq := nonZero(d.seq + 1)
	d.seq += size
	return seq
}

// sendCoalesced is send on an HTTP/2 connection: a message sent at most
// coalesceWindow after the previous one leaves in its segment.
func (d *tcpDir) sendCoalesced(at int64, size uint32) uint32 {
	if d.lastSeq == 0 || at-d.lastAt > coalesceWindow {
		d.lastSeq = nonZero(d.seq + 1)
	}
	d.lastAt = at
	d.seq += size
	return d.lastSeq
}

// coalesceWindow is how close in time two HTTP/2 calls' headers (or
// responses) are sent to leave in one TCP segment.
const coalesceWindow = 100 * us

// hop is one request on the wire.
type hop struct {
	req        *request
	client     *service // nil for the external client
	server     *service
	proto      string // HTTP, gRPC, MySQL, Redis
	stream     uint32 // HTTP/2 stream id (gRPC)
	path       string
	ctx        bool // carries trace context
	prop       pcommon.SpanID
	xr0, xr1   string
	status     int
	tWrite     int64 // the client process writes the request
	tRead      int64 // the server process reads it
	tRespWrite int64 // the server process writes the response
	tRespRead  int64 // the client process reads it
	reqSize    uint32
	respSize   uint32
	conn       *conn
	pipeline   *hop // the other hop of a pipelined pair
	reqSeq     uint32
	respSeq    uint32
	sysCReq    uint64 // syscall ids of the c-p span
	sysCResp   uint64
	sysSReq    uint64 // ... and of the s-p span
	sysSResp   uint64
	cThread    int // client thread (-1: the worker pool's)
	worker     bool
	sThread    int
	points     []*point
	// callerCtx is the true parent of the hop's first capture: the client
	// span that made the call, or the server process span of the request
	// the caller was serving.
	callerCtx  pcommon.SpanID
	callerHop  *hop     // the request the caller was serving
	callerSpan *appSpan // the caller's client span, when traced
	serverSpan *appSpan // the server's span for this request, when traced
	calls      []*hop   // downstream calls made while serving it
}

// appSpan is a span an OTel SDK exports.
type appSpan struct {
	svc      *service
	trace    pcommon.TraceID
	id       pcommon.SpanID
	parent   pcommon.SpanID // as the SDK sets it
	truth    pcommon.SpanID // true parent
	stitch   bool
	name     string
	kind     int // 2 server, 3 client
	start    int64
	end      int64
	status   int
	arrival  int64
	protocol string
}

type request struct {
	n     int
	trace pcommon.TraceID // the application trace, when A is traced
	xr    string
	hops  []*hop
	spans []*appSpan
}

type sim struct {
	cfg                    Config
	rng                    *rand.Rand
	nodes                  []*node
	gw, a, b, c, db, cache *service
	conns                  map[[2]*service][]*conn
	connN                  int
	reqs                   []*request
	services               []*service
}

const us = int64(time.Microsecond)

func newSim(cfg Config) *sim {
	if cfg.Batch == 0 {
		cfg.Batch = 100 * time.Millisecond
	}
	if cfg.Rate == 0 {
		cfg.Rate = 200
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Unix(1_760_000_000, 0)
	}
	s := &sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)), conns: map[[2]*service][]*conn{}}
	for i := 1; i <= 4; i++ {
		off := int64(0)
		if cfg.ClockSkew > 0 {
			off = s.rng.Int64N(2*int64(cfg.ClockSkew)) - int64(cfg.ClockSkew)
		}
		s.nodes = append(s.nodes, &node{
			name: "node-" + itoa(i), agent: "agent-node-" + itoa(i), offset: off,
			nextSys: uint64(i)<<48 | uint64(s.rng.Uint32()), nextRow: uint64(i)<<56 | uint64(s.rng.Uint32())<<8,
		})
	}
	traced := func(name string) bool {
		switch cfg.Instrument {
		case InstrumentAll:
			return true
		case InstrumentFront:
			return name == "svc-a"
		}
		return false
	}
	mk := func(name string, k serviceKind, n int, port int, threads int) *service {
		svc := &service{name: name, kind: k, node: s.nodes[n], pid: uint32(1000 + 17*len(s.services)), port: port,
			ip: "10.0." + itoa(n+1) + "." + itoa(10+len(s.services)), instrumented: k == kindApp && traced(name),
			threads: make([]int64, threads)}
		s.services = append(s.services, svc)
		return svc
	}
	s.gw = mk("gateway", kindGateway, 0, 8080, 1) // one event loop thread
	s.a = mk("svc-a", kindApp, 1, 8080, 64)
	s.b = mk("svc-b", kindApp, 2, 8080, 64)
	s.c = mk("svc-c", kindApp, 1, 8080, 64) // same node as A: no node NIC between them
	s.db = mk("mysql", kindDB, 3, 3306, 64)
	s.cache = mk("redis", kindCache, 2, 6379, 1)
	s.b.workers = make([]int64, 4)
	return s
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [20]byte
	n := len(b)
	neg := i < 0
	if neg {
		i = -i
	}
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	if neg {
		n--
		b[n] = '-'
	}
	return string(b[n:])
}

func (s *sim) jitter(lo, hi int64) int64 { return lo + s.rng.Int64N(hi-lo+1) }

func (s *sim) newTraceID() pcommon.TraceID {
	var t pcommon.TraceID
	for i := range t {
		t[i] = byte(s.rng.Uint32())
	}
	return t
}

func (s *sim) newSpanID() pcommon.SpanID {
	var id pcommon.SpanID
	for i := range id {
		id[i] = byte(s.rng.Uint32())
	}
	id[0] |= 0x80 // keeps app span ids apart from DeepFlow's row ids
	return id
}

// run simulates every request.
func (s *sim) run() {
	t := s.cfg.Start.UnixNano()
	for n := 0; n < s.cfg.Requests; n++ {
		t += int64(s.rng.ExpFloat64() / s.cfg.Rate * float64(time.Second))
		r := &request{n: n, xr: "req-" + hex16(uint64(n)*0x9e3779b97f4a7c15^s.cfg.Seed)}
		if s.a.instrumented {
			r.trace = s.newTraceID()
		}
		s.reqs = append(s.reqs, r)
		in := s.newHop(r, nil, s.gw, "HTTP", "/shop/checkout")
		in.tRead = t
		in.xr1 = r.xr
		s.serveGateway(in)
	}
	s.assignConnections()
	s.assignThreads()
	s.replaySyscalls()
}

func hex16(v uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

func (s *sim) newHop(r *request, client, server *service, proto, path string) *hop {
	h := &hop{req: r, client: client, server: server, proto: proto, path: path, status: 200,
		reqSize: uint32(s.jitter(200, 900)), respSize: uint32(s.jitter(300, 4000)), cThread: -1, sThread: -1}
	r.hops = append(r.hops, h)
	return h
}

// pathDelay is the one-way wire time between the two processes.
func pathDelay(h *hop) int64 {
	if h.client != nil && h.client.node == h.server.node {
		return 40 * us
	}
	return 140 * us
}

// call makes client (serving caller) send h, starting at t, and returns
// when the client has read the response.
func (s *sim) call(caller *hop, h *hop, t int64, clientSpan *appSpan) int64 {
	h.tWrite = t
	h.tRead = t + pathDelay(h)
	h.callerHop = caller
	h.callerSpan = clientSpan
	caller.calls = append(caller.calls, h)
	if clientSpan != nil {
		h.callerCtx = clientSpan.id
	}
	if clientSpan != nil && (h.proto == "HTTP" || h.proto == "gRPC") {
		h.ctx = true
		h.prop = clientSpan.id
	}
	s.serve(h)
	h.tRespRead = h.tRespWrite + pathDelay(h)
	return h.tRespRead
}

func (s *sim) serve(h *hop) {
	switch h.server.kind {
	case kindDB:
		h.tRespWrite = h.tRead + s.jitter(400*us, 3000*us)
	case kindCache:
		h.tRespWrite = h.tRead + s.jitter(50*us, 300*us)
	default:
		s.serveApp(h)
	}
}

func (s *sim) serveGateway(in *hop) {
	r := in.req
	out := s.newHop(r, s.gw, s.a, "HTTP", "/api/checkout")
	out.xr0 = r.xr
	t := s.call(in, out, in.tRead+s.jitter(30*us, 200*us), nil)
	in.tRespWrite = t + s.jitter(20*us, 80*us)
	in.tWrite = in.tRead - pathDelay(in)
	in.tRespRead = in.tRespWrite + pathDelay(in)
}

// serverSpan starts the span of a traced service for request h.
func (s *sim) serverSpan(h *hop) *appSpan {
	svc := h.server
	if !svc.instrumented {
		return nil
	}
	r := h.req
	sp := &appSpan{svc: svc, trace: r.trace, id: s.newSpanID(), name: "GET " + h.path, kind: 2,
		start: h.tRead + s.jitter(10*us, 40*us), protocol: "HTTP"}
	if h.ctx {
		sp.parent = h.prop
	}
	h.serverSpan = sp
	r.spans = append(r.spans, sp)
	return sp
}

func (s *sim) clientSpan(r *request, parent *appSpan, name, proto string, start int64) *appSpan {
	if parent == nil {
		return nil
	}
	sp := &appSpan{svc: parent.svc, trace: parent.trace, id: s.newSpanID(), parent: parent.id, truth: parent.id,
		stitch: true, name: name, kind: 3, start: start, protocol: proto}
	r.spans = append(r.spans, sp)
	return sp
}

func (s *sim) serveApp(h *hop) {
	srv := s.serverSpan(h)
	t := h.tRead + s.jitter(80*us, 400*us)
	switch h.server {
	case s.a:
		// B, then C (retried once when the first attempt fails).
		var cs *appSpan
		var hb *hop
		if s.cfg.Multiplex {
			cs = s.clientSpan(h.req, srv, "shop.B/Get", "gRPC", t-s.jitter(10*us, 30*us))
			hb = s.newHop(h.req, s.a, s.b, "gRPC", "/shop.B/Get")
		} else {
			cs = s.clientSpan(h.req, srv, "GET /api/b", "HTTP", t-s.jitter(10*us, 30*us))
			hb = s.newHop(h.req, s.a, s.b, "HTTP", "/api/b")
		}
		t = s.call(h, hb, t, cs)
		cs.setEnd(t + s.jitter(10*us, 30*us))
		t += s.jitter(50*us, 300*us)
		cs = s.clientSpan(h.req, srv, "GET /api/c", "HTTP", t-s.jitter(10*us, 30*us))
		hc := s.newHop(h.req, s.a, s.c, "HTTP", "/api/c")
		if s.rng.Float64() < s.cfg.RetryRate {
			hc.status = 503
			t = s.call(h, hc, t, cs)
			t += s.jitter(200*us, 1000*us)
			hc = s.newHop(h.req, s.a, s.c, "HTTP", "/api/c")
		}
		t = s.call(h, hc, t, cs)
		cs.setEnd(t + s.jitter(10*us, 30*us))
	case s.b:
		// Two queries, from a worker thread when ThreadPool is set.
		for q := 0; q < 2; q++ {
			cs := s.clientSpan(h.req, srv, "SELECT orders", "MySQL", t-s.jitter(10*us, 30*us))
			hd := s.newHop(h.req, s.b, s.db, "MySQL", "SELECT * FROM orders WHERE id = ?")
			hd.worker = s.cfg.ThreadPool
			t = s.call(h, hd, t, cs)
			cs.setEnd(t + s.jitter(10*us, 30*us))
			t += s.jitter(30*us, 200*us)
		}
	case s.c:
		if h.status == 503 {
			break // the failing attempt answers at once
		}
		// Two cache reads (pipelined or not), then one query.
		c1 := s.clientSpan(h.req, srv, "GET", "Redis", t-s.jitter(10*us, 30*us))
		h1 := s.newHop(h.req, s.c, s.cache, "Redis", "GET cart")
		if s.cfg.Pipeline {
			c2 := s.clientSpan(h.req, srv, "GET", "Redis", t-s.jitter(5*us, 9*us))
			h2 := s.newHop(h.req, s.c, s.cache, "Redis", "GET price")
			h1.pipeline, h2.pipeline = h2, h1
			e1 := s.call(h, h1, t, c1)
			e2 := s.call(h, h2, t+5*us, c2)
			t = max(e1, e2)
			c1.setEnd(e1 + s.jitter(10*us, 30*us))
			c2.setEnd(e2 + s.jitter(10*us, 30*us))
		} else {
			t = s.call(h, h1, t, c1)
			c1.setEnd(t + s.jitter(10*us, 30*us))
			t += s.jitter(30*us, 100*us)
			c2 := s.clientSpan(h.req, srv, "GET", "Redis", t-s.jitter(10*us, 30*us))
			h2 := s.newHop(h.req, s.c, s.cache, "Redis", "GET price")
			t = s.call(h, h2, t, c2)
			c2.setEnd(t + s.jitter(10*us, 30*us))
		}
		t += s.jitter(30*us, 100*us)
		cs := s.clientSpan(h.req, srv, "SELECT prices", "MySQL", t-s.jitter(10*us, 30*us))
		hd := s.newHop(h.req, s.c, s.db, "MySQL", "SELECT * FROM prices WHERE sku = ?")
		t = s.call(h, hd, t, cs)
		cs.setEnd(t + s.jitter(10*us, 30*us))
	}
	h.tRespWrite = t + s.jitter(50*us, 300*us)
	if srv != nil {
		srv.end = h.tRespWrite - s.jitter(10*us, 40*us)
		if h.status >= 500 {
			srv.status = 2
		}
	}
}

func (a *appSpan) setEnd(t int64) {
	if a != nil {
		a.end = t
	}
}

// assignConnections gives every hop a connection from its client -> server
// pool (keep-alive: a free one if any, else a new one); the two hops of a
// pipelined pair share one. Sequence numbers advance with each message.
func (s *sim) assignConnections() {
	var hops []*hop
	for _, r := range s.reqs {
		hops = append(hops, r.hops...)
	}
	slices.SortStableFunc(hops, func(a, b *hop) int { return cmpI64(a.tWrite, b.tWrite) })
	var streams []*hop
	for _, h := range hops {
		if h.conn != nil {
			continue
		}
		key := [2]*service{h.client, h.server}
		if h.proto == "gRPC" {
			s.openStream(h, key)
			streams = append(streams, h)
			continue
		}
		end := h.tRespRead
		if h.pipeline != nil {
			end = max(end, h.pipeline.tRespRead)
		}
		var c *conn
		for _, cand := range s.conns[key] {
			if cand.busy < h.tWrite {
				c = cand
				break
			}
		}
		if c == nil {
			c = s.newConn(key)
		}
		c.busy = end
		for _, x := range []*hop{h, h.pipeline} {
			if x == nil {
				continue
			}
			x.conn = c
			x.reqSeq = c.up.send(x.reqSize)
		}
		for _, x := range []*hop{h, h.pipeline} {
			if x == nil {
				continue
			}
			x.respSeq = c.down.send(x.respSize)
		}
	}
	answerStreams(streams)
}

// newConn opens a connection from key's client to its server.
func (s *sim) newConn(key [2]*service) *conn {
	s.connN++
	c := &conn{id: s.connN, client: key[0], server: key[1], up: tcpDir{seq: s.rng.Uint32()}, down: tcpDir{seq: s.rng.Uint32()},
		port: 30000 + s.connN, flow: uint64(s.connN)<<20 | uint64(s.rng.Uint32()&0xfffff)}
	s.conns[key] = append(s.conns[key], c)
	return c
}

// openStream puts gRPC call h on the one HTTP/2 connection of its client
// and server, on a new stream.
func (s *sim) openStream(h *hop, key [2]*service) {
	if len(s.conns[key]) == 0 {
		s.newConn(key)
	}
	c := s.conns[key][0]
	h.conn = c
	c.stream += 2
	if c.stream == 2 {
		c.stream = 1
	}
	h.stream = c.stream
	h.reqSeq = c.up.sendCoalesced(h.tWrite, h.reqSize)
}

// answerStreams gives gRPC calls their response sequence numbers, in the
// order the server wrote the responses.
func answerStreams(streams []*hop) {
	slices.SortStableFunc(streams, func(a, b *hop) int { return cmpI64(a.tRespWrite, b.tRespWrite) })
	for _, h := range streams {
		h.respSeq = h.conn.down.sendCoalesced(h.tRespWrite, h.respSize)
	}
}

func nonZero(v uint32) uint32 {
	if v == 0 {
		return 1
	}
	return v
}

func cmpI64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// assignThreads gives every served request a thread of its server (the
// gateway has one event loop thread for all), and B's queries a worker
// when ThreadPool is set.
func (s *sim) assignThreads() {
	var hops []*hop
	for _, r := range s.reqs {
		hops = append(hops, r.hops...)
	}
	slices.SortStableFunc(hops, func(a, b *hop) int { return cmpI64(a.tRead, b.tRead) })
	pick := func(pool []int64, from, to int64) int {
		best := -1
		for i, busy := range pool {
			if busy < from && (best < 0 || busy < pool[best]) {
				best = i
			}
		}
		if best < 0 { // all busy: the least busy (a real server would queue)
			best = 0
			for i := range pool {
				if pool[i] < pool[best] {
					best = i
				}
			}
		}
		pool[best] = to
		return best
	}
	for _, h := range hops {
		if h.server.kind == kindGateway {
			h.sThread = 0
		} else {
			h.sThread = pick(h.server.threads, h.tRead, h.tRespWrite)
		}
		for _, c := range h.calls {
			c.cThread = h.sThread
		}
	}
	// B's worker jobs: one job per request, from its first query to its last.
	for _, h := range hops {
		if h.server != s.b || !s.cfg.ThreadPool || len(h.calls) == 0 {
			continue
		}
		from, to := h.calls[0].tWrite, h.calls[len(h.calls)-1].tRespRead
		w := pick(s.b.workers, from, to)
		for _, c := range h.calls {
			c.cThread = 1000 + w
		}
	}
}

// sysEvent is one socket read or write seen by the eBPF agent.
type sysEvent struct {
	t      int64
	thread int
	conn   *conn
	side   int // 0 client socket, 1 server socket
	in     bool
	dst    *uint64
	seq    int // tie-break: program order
}

// replaySyscalls assigns syscall trace ids by replaying each process's
// reads and writes in time order.
func (s *sim) replaySyscalls() {
	events := map[*service][]sysEvent{}
	seq := 0
	add := func(svc *service, e sysEvent) {
		if svc == nil {
			return
		}
		seq++
		e.seq = seq
		events[svc] = append(events[svc], e)
	}
	for _, r := range s.reqs {
		for _, h := range r.hops {
			add(h.server, sysEvent{t: h.tRead, thread: h.sThread, conn: h.conn, side: 1, in: true, dst: &h.sysSReq})
			add(h.server, sysEvent{t: h.tRespWrite, thread: h.sThread, conn: h.conn, side: 1, dst: &h.sysSResp})
			add(h.client, sysEvent{t: h.tWrite, thread: h.cThread, conn: h.conn, side: 0, dst: &h.sysCReq})
			add(h.client, sysEvent{t: h.tRespRead, thread: h.cThread, conn: h.conn, side: 0, in: true, dst: &h.sysCResp})
		}
	}
	// Processes of one node share its agent's id counter: replay them in a
	// fixed order so that a seed always gives the same ids.
	for _, svc := range s.services {
		evs := events[svc]
		slices.SortFunc(evs, func(a, b sysEvent) int {
			if c := cmpI64(a.t, b.t); c != 0 {
				return c
			}
			return a.seq - b.seq
		})
		stored := map[int]uint64{}
		for _, e := range evs {
			c := e.conn
			if e.in {
				id := c.lastID[e.side]
				if !c.lastIn[e.side] || id == 0 {
					svc.node.nextSys++
					id = svc.node.nextSys
				}
				stored[e.thread] = id
				c.lastIn[e.side], c.lastID[e.side] = true, id
				*e.dst = id
			} else {
				*e.dst = stored[e.thread]
				delete(stored, e.thread)
				c.lastIn[e.side], c.lastID[e.side] = false, 0
			}
		}
	}
}
