package groundtruth

import (
	"encoding/binary"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/vocab"
)

// Truth is what a span really is.
type Truth struct {
	// Request is the client request (true trace) the span belongs to.
	Request int
	// Parent is the true parent; empty for the root of a request.
	Parent pcommon.SpanID
	// Input is the parent the span was exported with.
	Input pcommon.SpanID
	// Stitchable says the data carries what it takes to find Parent (a
	// TCP sequence, a trace context, an intact syscall chain, an
	// X-Request-ID). Thread-pool and pipelined calls are not.
	Stitchable bool
	// Absorbed marks a one-way response row: it is merged into the request
	// row Session and not sent on.
	Absorbed bool
	Session  pcommon.SpanID
	// Late marks a row that arrives after the others of its request.
	Late bool
	// App marks an application span.
	App bool
	// Point is the observation point code (c-p, s, s-app, ...).
	Point string
	// InputTrace is the trace id the span was exported with (made up for
	// rows without trace context).
	InputTrace pcommon.TraceID
}

// Batch is what one export delivers.
type Batch struct {
	At     time.Time
	Traces ptrace.Traces
}

// Output is a simulation's spans, in arrival order, and their truth.
type Output struct {
	Batches []Batch
	Truth   map[pcommon.SpanID]Truth
	// Spans counts the spans in Batches.
	Spans int
	// Requests is the number of client requests simulated.
	Requests int
}

// Generate runs a simulation.
func Generate(cfg Config) Output {
	s := newSim(cfg)
	s.run()
	return s.emit()
}

// item is one span waiting to be put into a batch.
type item struct {
	arrival int64
	row     *row
	app     *appSpan
}

// row is one exported network or eBPF row.
type row struct {
	h        *hop
	p        *point
	response bool // the response half of a one-way pair
	request  bool // the request half
}

func spanIDOf(v uint64) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], v)
	return id
}

// capture builds the observation points of a hop, in path order.
func (s *sim) capture(h *hop) {
	d := 10 * us
	add := func(o obsPoint, n *node, start, end int64) {
		n.nextRow++
		h.points = append(h.points, &point{obs: o, node: n, id: n.nextRow, start: start, end: end})
	}
	ext := h.client == nil
	same := !ext && h.client.node == h.server.node
	if !ext {
		cn := h.client.node
		add(cp, cn, h.tWrite, h.tRespRead)
		add(cNIC, cn, h.tWrite+d, h.tRespRead-d)
		if !same {
			add(cNode, cn, h.tWrite+2*d, h.tRespRead-2*d)
		}
	}
	sn := h.server.node
	if !same {
		add(sNode, sn, h.tRead-2*d, h.tRespWrite+2*d)
	}
	add(sNIC, sn, h.tRead-d, h.tRespWrite+d)
	add(sp, sn, h.tRead, h.tRespWrite)
}

// onChain says whether call h is on the intact syscall chain of the request
// its caller was serving: caller.s-p.req == first call's req, each call's
// resp == the next one's req, the last call's resp == caller.s-p.resp, with
// one call per id, and none of them on a multiplexed (HTTP/2) connection.
func (s *sim) onChain(h *hop, byReq map[*service]map[uint64][]*hop) bool {
	c := h.callerHop
	if c == nil || h.client == nil || c.sysSReq == 0 || c.sysSReq == c.sysSResp || c.stream != 0 {
		return false
	}
	calls := byReq[h.client]
	id, found := c.sysSReq, false
	for step := 0; step < 64; step++ {
		next := calls[id]
		// Ids read on a multiplexed connection may be another stream's.
		if len(next) != 1 || next[0].stream != 0 {
			return false
		}
		if next[0] == h {
			found = true
		}
		id = next[0].sysCResp
		if id == c.sysSResp {
			return found
		}
		if id == 0 {
			return false
		}
	}
	return false
}

func (s *sim) emit() Output {
	out := Output{Truth: map[pcommon.SpanID]Truth{}, Requests: len(s.reqs)}
	byReq := map[*service]map[uint64][]*hop{}
	for _, r := range s.reqs {
		for _, h := range r.hops {
			s.capture(h)
			if h.client != nil && h.sysCReq != 0 {
				if byReq[h.client] == nil {
					byReq[h.client] = map[uint64][]*hop{}
				}
				byReq[h.client][h.sysCReq] = append(byReq[h.client][h.sysCReq], h)
			}
		}
	}
	var items []item
	for _, r := range s.reqs {
		for _, h := range r.hops {
			for k, p := range h.points {
				// Truth first.
				t := Truth{Request: r.n, Point: obsCodes[p.obs], Stitchable: true}
				if k > 0 {
					t.Parent = spanIDOf(h.points[k-1].id)
				} else {
					switch {
					case h.callerSpan != nil:
						t.Parent = h.callerSpan.id
						t.Stitchable = h.ctx || (h.pipeline == nil && s.onChain(h, byReq))
					case h.callerHop != nil:
						t.Parent = spanIDOf(h.callerHop.points[len(h.callerHop.points)-1].id)
						t.Stitchable = h.client.kind == kindGateway || s.onChain(h, byReq)
					}
				}
				if h.ctx {
					t.Input = h.prop
				}
				// Export.
				p.oneWay = h.pipeline == nil && s.rng.Float64() < s.cfg.OneWayRate
				p.late = s.rng.Float64() < s.cfg.LateRate
				t.Late = p.late
				p.arrival = s.clock(p.node, p.end) + s.jitter(int64(s.cfg.ExportDelay)/4+1, int64(s.cfg.ExportDelay)+2)
				if p.late {
					p.arrival += int64(s.cfg.LateDelay)
				}
				p.flowID = h.conn.flow<<4 | uint64(p.node.name[len(p.node.name)-1]-'0')
				out.Truth[spanIDOf(p.id)] = t
				if p.oneWay {
					p.node.nextRow++
					p.respID = p.node.nextRow
					if p.obs == cp || p.obs == sp {
						p.capSeq = s.rng.Uint32()>>2 + 1
					}
					out.Truth[spanIDOf(p.respID)] = Truth{Request: r.n, Absorbed: true, Session: spanIDOf(p.id), Late: p.late, Point: obsCodes[p.obs]}
					items = append(items, item{arrival: p.arrival, row: &row{h: h, p: p, request: true}},
						item{arrival: p.arrival, row: &row{h: h, p: p, response: true}})
				} else {
					items = append(items, item{arrival: p.arrival, row: &row{h: h, p: p}})
				}
			}
			if sv := h.serverSpan; sv != nil {
				sv.truth = spanIDOf(h.points[len(h.points)-1].id)
				// With trace context the span names its caller; without it
				// (behind the gateway) only an intact syscall chain through
				// its own traced calls places it.
				sv.stitch = h.ctx
				if !h.ctx {
					for _, c := range h.calls {
						if c.ctx && s.onChain(c, byReq) {
							sv.stitch = true
						}
					}
				}
			}
		}
		for _, a := range r.spans {
			a.arrival = s.clock(a.svc.node, a.end) + s.jitter(int64(s.cfg.ExportDelay)/4+1, int64(s.cfg.ExportDelay)+2)
			out.Truth[a.id] = Truth{Request: r.n, Parent: a.truth, Input: a.parent, Stitchable: a.stitch, App: true,
				Point: map[int]string{2: "s-app", 3: "c-app"}[a.kind]}
			items = append(items, item{arrival: a.arrival, app: a})
		}
	}
	slices.SortStableFunc(items, func(a, b item) int { return cmpI64(a.arrival, b.arrival) })
	out.Spans = len(items)

	// Batches: what arrived within one window, in one export.
	win := int64(s.cfg.Batch)
	for i := 0; i < len(items); {
		end := (items[i].arrival/win + 1) * win
		td := ptrace.NewTraces()
		apps := map[*service]ptrace.SpanSlice{}
		for ; i < len(items) && items[i].arrival < end; i++ {
			it := items[i]
			if it.row != nil {
				s.putRow(td.ResourceSpans().AppendEmpty(), it.row)
				continue
			}
			ss, ok := apps[it.app.svc]
			if !ok {
				rs := td.ResourceSpans().AppendEmpty()
				putAppResource(rs.Resource().Attributes(), it.app.svc)
				sc := rs.ScopeSpans().AppendEmpty()
				sc.Scope().SetName("io.opentelemetry.java")
				sc.Scope().SetVersion("2.9.0")
				ss = sc.Spans()
				apps[it.app.svc] = ss
			}
			putApp(ss.AppendEmpty(), it.app)
		}
		out.Batches = append(out.Batches, Batch{At: time.Unix(0, end), Traces: td})
	}
	for _, b := range out.Batches {
		rss := b.Traces.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				for k := 0; k < sss.At(j).Spans().Len(); k++ {
					sp := sss.At(j).Spans().At(k)
					t := out.Truth[sp.SpanID()]
					t.InputTrace = sp.TraceID()
					out.Truth[sp.SpanID()] = t
				}
			}
		}
	}
	return out
}

// clock is what node n's clock says at true time t.
func (s *sim) clock(n *node, t int64) int64 { return t + n.offset }

func putAppResource(m pcommon.Map, svc *service) {
	m.PutStr("service.name", svc.name)
	m.PutStr("service.instance.id", svc.name+"-7d9f5c-x2"+svc.node.name[len(svc.node.name)-1:])
	m.PutStr("host.name", svc.node.name)
	m.PutInt("process.pid", int64(svc.pid))
	m.PutStr("telemetry.sdk.name", "opentelemetry")
	m.PutStr("telemetry.sdk.language", "java")
	m.PutStr("k8s.pod.ip", svc.ip)
}

func putApp(sp ptrace.Span, a *appSpan) {
	sp.SetTraceID(a.trace)
	sp.SetSpanID(a.id)
	sp.SetParentSpanID(a.parent)
	sp.SetName(a.name)
	sp.SetKind(ptrace.SpanKind(a.kind))
	off := a.svc.node.offset
	sp.SetStartTimestamp(pcommon.Timestamp(a.start + off))
	sp.SetEndTimestamp(pcommon.Timestamp(a.end + off))
	if a.status == 2 {
		sp.Status().SetCode(ptrace.StatusCodeError)
	}
	attrs := sp.Attributes()
	switch a.protocol {
	case "HTTP":
		attrs.PutStr("http.request.method", "GET")
		attrs.PutStr("url.path", a.name[4:])
		attrs.PutInt("http.response.status_code", map[bool]int64{true: 503, false: 200}[a.status == 2])
	case "gRPC":
		attrs.PutStr("rpc.system", "grpc")
		attrs.PutStr("rpc.method", a.name)
	case "MySQL":
		attrs.PutStr("db.system", "mysql")
		attrs.PutStr("db.query.text", "SELECT * FROM t WHERE id = ?")
	case "Redis":
		attrs.PutStr("db.system", "redis")
		attrs.PutStr("db.operation.name", "GET")
	}
	attrs.PutStr("thread.name", "http-nio-8080-exec-4")
}

// putRow writes one network or eBPF row the way the configured exporter
// does.
func (s *sim) putRow(rs ptrace.ResourceSpans, rw *row) {
	h, p := rw.h, rw.p
	ebpf := p.obs == cp || p.obs == sp
	clientSide := p.obs <= cNode
	id := p.id
	if rw.response {
		id = p.respID
	}
	start, end := s.clock(p.node, p.start), s.clock(p.node, p.end)
	switch {
	case rw.request:
		end = start
	case rw.response:
		start = end
	}
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetSpanID(spanIDOf(id))
	sp.SetStartTimestamp(pcommon.Timestamp(start))
	sp.SetEndTimestamp(pcommon.Timestamp(end))
	if clientSide {
		sp.SetKind(ptrace.SpanKindClient)
	} else {
		sp.SetKind(ptrace.SpanKindServer)
	}
	if h.status >= 500 {
		sp.Status().SetCode(ptrace.StatusCodeError)
	}
	switch h.proto {
	case "HTTP":
		sp.SetName("GET " + h.path)
	case "gRPC":
		sp.SetName(h.path)
	case "MySQL":
		sp.SetName("SELECT")
	default:
		sp.SetName("GET")
	}
	res := rs.Resource().Attributes()
	attrs := sp.Attributes()
	clientSvc, serverSvc := h.client, h.server
	svc := serverSvc
	if clientSide {
		svc = clientSvc
	}
	res.PutStr("service.name", svc.name)
	if clientSvc != nil {
		res.PutInt("process.pid_0", int64(clientSvc.pid))
	}
	res.PutInt("process.pid_1", int64(serverSvc.pid))
	clientIP := "203.0.113.7"
	if clientSvc != nil {
		clientIP = clientSvc.ip
	}
	res.PutBool("df.network.is_ipv4", true)
	res.PutStr("df.network.ip_0", clientIP)
	res.PutStr("df.network.ip_1", serverSvc.ip)
	res.PutStr("df.network.protocol", "TCP")
	res.PutInt("df.transport.client_port", int64(h.conn.port))
	res.PutInt("df.transport.server_port", int64(serverSvc.port))
	res.PutInt("df.flow_info.id", int64(id))
	res.PutInt("df.flow_info.time", end/1000)
	attrs.PutStr("df.span.endpoint", h.path)
	attrs.PutInt("df.metrics.response_duration_us", (p.end-p.start)/1000)
	attrs.PutInt("df.metrics.request_length", int64(h.reqSize))
	attrs.PutInt("df.metrics.response_length", int64(h.respSize))
	switch h.proto {
	case "HTTP":
		attrs.PutStr("http.method", "GET")
		attrs.PutStr("http.flavor", "1.1")
		attrs.PutStr("df.http.path", h.path)
		if !rw.request {
			attrs.PutInt("http.status_code", int64(h.status))
		}
	case "gRPC":
		attrs.PutStr("rpc.system", "grpc")
		attrs.PutStr("rpc.method", h.path)
	case "MySQL":
		attrs.PutStr("db.system", "mysql")
		attrs.PutStr("db.statement", h.path)
	case "Redis":
		attrs.PutStr("db.system", "redis")
		attrs.PutStr("db.statement", h.path)
	}
	attrs.PutStr("net.sock.peer.addr", serverSvc.ip)

	var reqSeq, respSeq uint32 = h.reqSeq, h.respSeq
	var sysReq, sysResp uint64
	if ebpf {
		if p.obs == cp {
			sysReq, sysResp = h.sysCReq, h.sysCResp
		} else {
			sysReq, sysResp = h.sysSReq, h.sysSResp
		}
	}
	xr0, xr1 := h.xr0, h.xr1
	var capReq, capResp uint32
	msg := "session"
	switch {
	case rw.request:
		respSeq, sysResp, xr1, capReq, msg = 0, 0, "", p.capSeq, "request"
	case rw.response:
		reqSeq, sysReq, xr0, msg = 0, 0, "", "response"
		if p.capSeq != 0 {
			capResp = p.capSeq + 1
		}
	}
	source := "Packet"
	if ebpf {
		source = "eBPF"
	}

	if s.cfg.Format == Vocabulary {
		res.PutStr("telemetry.sdk.name", "weft-capture")
		w := attrs
		w.PutStr(vocab.SignalSource, map[bool]string{true: vocab.SignalSourceEBPF, false: vocab.SignalSourcePacket}[ebpf])
		w.PutStr(vocab.ObservationPoint, obsCodes[p.obs])
		w.PutStr(vocab.ObserverID, p.node.agent)
		if ebpf {
			pid := serverSvc.pid
			if clientSide {
				pid = clientSvc.pid
			}
			w.PutInt(vocab.ProcessID, int64(pid))
		}
		putNZ(w, vocab.SyscallTraceIDRequest, int64(sysReq))
		putNZ(w, vocab.SyscallTraceIDResponse, int64(sysResp))
		putNZ(w, vocab.SyscallCapSeqRequest, int64(capReq))
		putNZ(w, vocab.SyscallCapSeqResponse, int64(capResp))
		putNZ(w, vocab.TCPSeqRequest, int64(reqSeq))
		putNZ(w, vocab.TCPSeqResponse, int64(respSeq))
		putS(w, vocab.XRequestID0, xr0)
		putS(w, vocab.XRequestID1, xr1)
		putNZ(w, vocab.L7RequestID, int64(h.stream))
		w.PutStr(vocab.L7Protocol, h.proto)
		if msg != "session" {
			w.PutStr(vocab.MessageType, msg)
			w.PutInt(vocab.FlowID, int64(p.flowID))
		}
		if h.ctx {
			sp.SetTraceID(h.req.trace)
			w.PutStr(vocab.PropagatedSpanID, h.prop.String())
		} else {
			var t pcommon.TraceID
			binary.BigEndian.PutUint64(t[:], id^0xabcdef)
			binary.BigEndian.PutUint64(t[8:], id)
			sp.SetTraceID(t)
			w.PutBool(vocab.TraceIDSynthetic, true)
		}
		return
	}

	res.PutStr("telemetry.sdk.name", "deepflow")
	res.PutStr("telemetry.sdk.version", "v6.6.9")
	res.PutStr("df.capture_info.signal_source", source)
	res.PutStr("df.capture_info.observation_point", obsNames[p.obs])
	res.PutStr("df.capture_info.agent", p.node.agent)
	res.PutStr("df.capture_info.capture_nic_type", map[bool]string{true: "eBPF", false: "Local NIC"}[ebpf])
	res.PutInt("df.flow_info.flow_id", int64(p.flowID))
	putNZ(res, "df.transport.req_tcp_seq", int64(reqSeq))
	putNZ(res, "df.transport.resp_tcp_seq", int64(respSeq))
	res.PutStr("df.application.l7_protocol", h.proto)
	putS(attrs, "df.span.x_request_id_0", xr0)
	putS(attrs, "df.span.x_request_id_1", xr1)
	putNZ(attrs, "df.span.syscall_trace_id_request", int64(sysReq))
	putNZ(attrs, "df.span.syscall_trace_id_response", int64(sysResp))
	if ebpf {
		attrs.PutInt("df.span.syscall_thread_0", 4000+int64(h.cThread))
		attrs.PutInt("df.span.syscall_thread_1", 4000+int64(h.sThread))
	}
	putNZ(attrs, "df.span.syscall_cap_seq_0", int64(capReq))
	putNZ(attrs, "df.span.syscall_cap_seq_1", int64(capResp))
	attrs.PutStr("df.span.type", msg)
	putNZ(attrs, "df.global.request_id", int64(h.stream))
	if h.ctx {
		sp.SetTraceID(h.req.trace)
		sp.SetParentSpanID(h.prop)
		attrs.PutStr("df.span.native.trace_id", h.req.trace.String())
		attrs.PutStr("df.span.native.span_id", h.prop.String())
	} else {
		var t pcommon.TraceID
		binary.BigEndian.PutUint64(t[:], id)
		sp.SetTraceID(t)
		sp.SetParentSpanID(spanIDOf(id))
	}
}

func putNZ(m pcommon.Map, k string, v int64) {
	if v != 0 {
		m.PutInt(k, v)
	}
}

func putS(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}
