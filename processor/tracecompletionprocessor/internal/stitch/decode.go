package stitch

import (
	"encoding/hex"
	"hash/maphash"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/vocab"
)

// DeepFlow's OTLP export (server/ingester/.../otlp_export.go). Rows carry
// these instead of Weft's vocabulary; both are read, Weft's winning.
const (
	dfObservationPoint = "df.capture_info.observation_point" // resource, display name
	dfSignalSource     = "df.capture_info.signal_source"     // resource
	dfAgent            = "df.capture_info.agent"             // resource
	dfPID0             = "process.pid_0"                     // resource, client process
	dfPID1             = "process.pid_1"                     // resource, server process
	dfReqTCPSeq        = "df.transport.req_tcp_seq"          // resource
	dfRespTCPSeq       = "df.transport.resp_tcp_seq"         // resource
	dfFlowID           = "df.flow_info.flow_id"              // resource
	dfL7Protocol       = "df.application.l7_protocol"        // resource

	dfXRequestID     = "df.span.x_request_id" // older exporters: the request's
	dfXRequestID0    = "df.span.x_request_id_0"
	dfXRequestID1    = "df.span.x_request_id_1"
	dfSyscallReq     = "df.span.syscall_trace_id_request"
	dfSyscallResp    = "df.span.syscall_trace_id_response"
	dfCapSeq0        = "df.span.syscall_cap_seq_0"
	dfCapSeq1        = "df.span.syscall_cap_seq_1"
	dfSpanReqTCPSeq  = "df.span.req_tcp_seq" // older exporters put them on the span
	dfSpanRespTCPSeq = "df.span.resp_tcp_seq"
	dfNativeTraceID  = "df.span.native.trace_id"
	dfNativeSpanID   = "df.span.native.span_id"
	dfType           = "df.span.type"
	dfRequestID      = "df.global.request_id"
)

// dfObservationPoints maps DeepFlow's display names (and the raw codes, which
// Weft's vocabulary uses) to observation points.
var dfObservationPoints = map[string]obsPoint{
	"Client Process": obsCP, "Client NIC": obsC, "Client K8s Node": obsCND,
	"Client VM Hypervisor": obsCHV, "Client-side Gateway Hypervisor": obsCGWHV,
	"Client-side Gateway": obsCGW, "Server-side Gateway": obsSGW,
	"Server-side Gateway Hypervisor": obsSGWHV, "Server VM Hypervisor": obsSHV,
	"Server K8s Node": obsSND, "Server NIC": obsS, "Server Process": obsSP,
	"Local NIC": obsLocal, "Other NIC": obsRest, "Client Application": obsCApp,
	"Server Application": obsSApp, "Application": obsApp,

	vocab.ObservationPointClientProcess: obsCP, vocab.ObservationPointClientNIC: obsC,
	vocab.ObservationPointClientNode: obsCND, vocab.ObservationPointClientHypervisor: obsCHV,
	vocab.ObservationPointClientGatewayHV: obsCGWHV, vocab.ObservationPointClientGateway: obsCGW,
	vocab.ObservationPointServerGateway: obsSGW, vocab.ObservationPointServerGatewayHV: obsSGWHV,
	vocab.ObservationPointServerHypervisor: obsSHV, vocab.ObservationPointServerNode: obsSND,
	vocab.ObservationPointServerNIC: obsS, vocab.ObservationPointServerProcess: obsSP,
	vocab.ObservationPointLocal: obsLocal, vocab.ObservationPointRest: obsRest,
	vocab.ObservationPointClientApp: obsCApp, vocab.ObservationPointServerApp: obsSApp,
	vocab.ObservationPointApp: obsApp,
}

// obsCodes is the vocabulary code of each observation point.
var obsCodes = [numObs]string{
	obsUnknown: "", obsCP: vocab.ObservationPointClientProcess, obsC: vocab.ObservationPointClientNIC,
	obsCND: vocab.ObservationPointClientNode, obsCHV: vocab.ObservationPointClientHypervisor,
	obsCGWHV: vocab.ObservationPointClientGatewayHV, obsCGW: vocab.ObservationPointClientGateway,
	obsSGW: vocab.ObservationPointServerGateway, obsSGWHV: vocab.ObservationPointServerGatewayHV,
	obsSHV: vocab.ObservationPointServerHypervisor, obsSND: vocab.ObservationPointServerNode,
	obsS: vocab.ObservationPointServerNIC, obsSP: vocab.ObservationPointServerProcess,
	obsLocal: vocab.ObservationPointLocal, obsRest: vocab.ObservationPointRest,
	obsCApp: vocab.ObservationPointClientApp, obsSApp: vocab.ObservationPointServerApp,
	obsApp: vocab.ObservationPointApp,
}

func (o obsPoint) String() string { return obsCodes[o] }

func parseSource(s string) (source, bool) {
	switch {
	case strings.EqualFold(s, vocab.SignalSourceApp), strings.EqualFold(s, "otel"):
		return srcApp, true
	case strings.EqualFold(s, vocab.SignalSourceEBPF):
		return srcEBPF, true
	case strings.EqualFold(s, vocab.SignalSourcePacket):
		return srcPacket, true
	case strings.EqualFold(s, vocab.SignalSourceXFlow):
		return srcXFlow, true
	}
	return srcApp, false
}

func parseMsgType(s string) (msgType, bool) {
	switch {
	case strings.EqualFold(s, "session"):
		return msgSession, true
	case strings.EqualFold(s, "request"):
		return msgRequest, true
	case strings.EqualFold(s, "response"):
		return msgResponse, true
	}
	return msgSession, false
}

// Presence bits of corr's fields.
const (
	hObs uint32 = 1 << iota
	hSrc
	hObserver
	hPID
	hPID0
	hPID1
	hSysReq
	hSysResp
	hCapReq
	hCapResp
	hTCPReq
	hTCPResp
	hXR0
	hXR1
	hProp
	hSynth
	hMsg
	hFlow
	hReqID
	hL7
	hNativeTrace
)

// corr is the correlation attributes found in one attribute map, with a bit
// per field found, so that maps of different precedence can be merged.
type corr struct {
	has         uint32
	obs         obsPoint
	src         source
	synthetic   bool
	msg         msgType
	observer    uint32
	pid         uint32
	pid0, pid1  uint32
	capReq      uint32
	capResp     uint32
	reqID       uint32
	tcpReq      uint32
	tcpResp     uint32
	sysReq      uint64
	sysResp     uint64
	xr0, xr1    uint64
	flowID      uint64
	l7          uint64
	mux         bool // l7 is a multiplexed protocol (HTTP/2, gRPC)
	propID      pcommon.SpanID
	nativeTrace string
}

// fill copies into c the fields o has and c has not: c is of higher
// precedence.
func (c *corr) fill(o *corr) {
	miss := o.has &^ c.has
	if miss&hObs != 0 {
		c.obs = o.obs
	}
	if miss&hSrc != 0 {
		c.src = o.src
	}
	if miss&hObserver != 0 {
		c.observer = o.observer
	}
	if miss&hPID != 0 {
		c.pid = o.pid
	}
	if miss&hPID0 != 0 {
		c.pid0 = o.pid0
	}
	if miss&hPID1 != 0 {
		c.pid1 = o.pid1
	}
	if miss&hSysReq != 0 {
		c.sysReq = o.sysReq
	}
	if miss&hSysResp != 0 {
		c.sysResp = o.sysResp
	}
	if miss&hCapReq != 0 {
		c.capReq = o.capReq
	}
	if miss&hCapResp != 0 {
		c.capResp = o.capResp
	}
	if miss&hTCPReq != 0 {
		c.tcpReq = o.tcpReq
	}
	if miss&hTCPResp != 0 {
		c.tcpResp = o.tcpResp
	}
	if miss&hXR0 != 0 {
		c.xr0 = o.xr0
	}
	if miss&hXR1 != 0 {
		c.xr1 = o.xr1
	}
	if miss&hProp != 0 {
		c.propID = o.propID
	}
	if miss&hSynth != 0 {
		c.synthetic = o.synthetic
	}
	if miss&hMsg != 0 {
		c.msg = o.msg
	}
	if miss&hFlow != 0 {
		c.flowID = o.flowID
	}
	if miss&hReqID != 0 {
		c.reqID = o.reqID
	}
	if miss&hL7 != 0 {
		c.l7, c.mux = o.l7, o.mux
	}
	if miss&hNativeTrace != 0 {
		c.nativeTrace = o.nativeTrace
	}
	c.has |= o.has
}

// hashSeed is fixed for the process: hashes are compared only within it.
var hashSeed = maphash.MakeSeed()

// hashStr hashes a correlation string; 0 means "none", so it is never
// returned.
func hashStr(s string) uint64 {
	h := maphash.String(hashSeed, s)
	if h == 0 {
		h = 1
	}
	return h
}

func hash32(s string) uint32 {
	h := uint32(hashStr(s))
	if h == 0 {
		h = 1
	}
	return h
}

// intOf reads an integer attribute that may also arrive as a string (some
// pipelines turn every attribute into a string). ok is false for other
// types and for strings that are not decimal integers.
func intOf(v pcommon.Value) (int64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), true
	case pcommon.ValueTypeStr:
		s := v.Str()
		if s == "" || len(s) > 20 {
			return 0, false
		}
		neg := s[0] == '-'
		if neg {
			s = s[1:]
		}
		if s == "" {
			return 0, false
		}
		var n uint64
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			d := uint64(c - '0')
			if n > (1<<64-1-d)/10 {
				return 0, false
			}
			n = n*10 + d
		}
		if neg {
			return -int64(n), true
		}
		return int64(n), true
	}
	return 0, false
}

// u32 reads a 32-bit unsigned value (TCP sequence, pid, capture sequence);
// values outside the range are not that field and are ignored.
func u32(v pcommon.Value) (uint32, bool) {
	n, ok := intOf(v)
	if !ok || n < 0 || n > 1<<32-1 {
		return 0, false
	}
	return uint32(n), true
}

// attrRole says which correlation field an attribute key sets, and how;
// keys of Weft's vocabulary and of DeepFlow's export that read a field the
// same way share a role. The encoder learns a key's role when it interns
// the key, so that the attributes of a span cost an array lookup each
// instead of a string switch; roleOf is the lookup for the rest.
type attrRole uint8

const (
	roleNone attrRole = iota
	roleSrc
	roleObs
	roleObserver
	rolePID
	rolePID0
	rolePID1
	roleSysReq
	roleSysResp
	roleCapReq
	roleCapResp
	roleTCPReq
	roleTCPResp
	roleXR0
	roleXR0First // DeepFlow's two request X-Request-ID keys: the first seen wins
	roleXR1
	roleProp
	roleSynth
	roleMsg
	roleFlow
	roleReqID
	roleL7
	roleNativeTrace

	// roleDF marks a DeepFlow key: it goes to the corr of DeepFlow's
	// attributes, which Weft's vocabulary takes precedence over.
	roleDF attrRole = 0x80
)

var weftRoles = map[string]attrRole{
	vocab.SignalSource: roleSrc, vocab.ObservationPoint: roleObs, vocab.ObserverID: roleObserver,
	vocab.ProcessID: rolePID, vocab.SyscallTraceIDRequest: roleSysReq, vocab.SyscallTraceIDResponse: roleSysResp,
	vocab.SyscallCapSeqRequest: roleCapReq, vocab.SyscallCapSeqResponse: roleCapResp,
	vocab.TCPSeqRequest: roleTCPReq, vocab.TCPSeqResponse: roleTCPResp,
	vocab.XRequestID0: roleXR0, vocab.XRequestID1: roleXR1, vocab.PropagatedSpanID: roleProp,
	vocab.TraceIDSynthetic: roleSynth, vocab.MessageType: roleMsg, vocab.FlowID: roleFlow,
	vocab.L7RequestID: roleReqID, vocab.L7Protocol: roleL7,
}

var dfRoles = map[string]attrRole{
	dfObservationPoint: roleObs, dfSignalSource: roleSrc, dfAgent: roleObserver,
	dfPID0: rolePID0, dfPID1: rolePID1,
	dfReqTCPSeq: roleTCPReq, dfSpanReqTCPSeq: roleTCPReq, dfRespTCPSeq: roleTCPResp, dfSpanRespTCPSeq: roleTCPResp,
	dfFlowID: roleFlow, dfL7Protocol: roleL7,
	dfXRequestID0: roleXR0First, dfXRequestID: roleXR0First, dfXRequestID1: roleXR1,
	dfSyscallReq: roleSysReq, dfSyscallResp: roleSysResp, dfCapSeq0: roleCapReq, dfCapSeq1: roleCapResp,
	dfNativeTraceID: roleNativeTrace, dfNativeSpanID: roleProp, dfType: roleMsg, dfRequestID: roleReqID,
}

// roleOf is the role of an attribute key, roleNone for most keys.
func roleOf(k string) attrRole {
	// Every correlation key starts with "weft.", "df." or "process.":
	// checking the first byte spares the others a map lookup.
	if len(k) < 5 {
		return roleNone
	}
	switch k[0] {
	case 'w':
		return weftRoles[k]
	case 'd', 'p':
		if r := dfRoles[k]; r != roleNone {
			return r | roleDF
		}
	}
	return roleNone
}

// corrPair is the correlation attributes of one map, Weft's and
// DeepFlow's apart.
type corrPair struct{ weft, df corr }

// attr records an attribute whose key has role r.
func (p *corrPair) attr(r attrRole, v pcommon.Value) {
	if r&roleDF != 0 {
		p.df.set(r&^roleDF, v)
	} else {
		p.weft.set(r, v)
	}
}

func (c *corr) weftAttr(k string, v pcommon.Value) {
	if r := weftRoles[k]; r != roleNone {
		c.set(r, v)
	}
}

func (c *corr) dfAttr(k string, v pcommon.Value) {
	if r := dfRoles[k]; r != roleNone {
		c.set(r, v)
	}
}

// set reads an attribute of role r into c. Values that do not parse are
// ignored, as if the attribute were not there.
func (c *corr) set(r attrRole, v pcommon.Value) {
	switch r {
	case roleSrc:
		if s, ok := parseSource(v.Str()); ok {
			c.src, c.has = s, c.has|hSrc
		}
	case roleObs:
		if o, ok := dfObservationPoints[v.Str()]; ok {
			c.obs, c.has = o, c.has|hObs
		}
	case roleObserver:
		if s := v.AsString(); s != "" {
			c.observer, c.has = hash32(s), c.has|hObserver
		}
	case rolePID:
		if n, ok := u32(v); ok && n != 0 {
			c.pid, c.has = n, c.has|hPID
		}
	case rolePID0:
		if n, ok := u32(v); ok && n != 0 {
			c.pid0, c.has = n, c.has|hPID0
		}
	case rolePID1:
		if n, ok := u32(v); ok && n != 0 {
			c.pid1, c.has = n, c.has|hPID1
		}
	case roleSysReq:
		if n, ok := intOf(v); ok && n != 0 {
			c.sysReq, c.has = uint64(n), c.has|hSysReq
		}
	case roleSysResp:
		if n, ok := intOf(v); ok && n != 0 {
			c.sysResp, c.has = uint64(n), c.has|hSysResp
		}
	case roleCapReq:
		if n, ok := u32(v); ok && n != 0 {
			c.capReq, c.has = n, c.has|hCapReq
		}
	case roleCapResp:
		if n, ok := u32(v); ok && n != 0 {
			c.capResp, c.has = n, c.has|hCapResp
		}
	case roleTCPReq:
		if n, ok := u32(v); ok && n != 0 {
			c.tcpReq, c.has = n, c.has|hTCPReq
		}
	case roleTCPResp:
		if n, ok := u32(v); ok && n != 0 {
			c.tcpResp, c.has = n, c.has|hTCPResp
		}
	case roleXR0:
		if s := v.Str(); usableRequestID(s) {
			c.xr0, c.has = hashStr(s), c.has|hXR0
		}
	case roleXR0First:
		if s := v.Str(); usableRequestID(s) && c.has&hXR0 == 0 {
			c.xr0, c.has = hashStr(s), c.has|hXR0
		}
	case roleXR1:
		if s := v.Str(); usableRequestID(s) {
			c.xr1, c.has = hashStr(s), c.has|hXR1
		}
	case roleProp:
		if id, ok := parseSpanID(v.Str()); ok {
			c.propID, c.has = id, c.has|hProp
		}
	case roleSynth:
		if v.Type() == pcommon.ValueTypeBool {
			c.synthetic, c.has = v.Bool(), c.has|hSynth
		}
	case roleMsg:
		if m, ok := parseMsgType(v.Str()); ok {
			c.msg, c.has = m, c.has|hMsg
		}
	case roleFlow:
		if n, ok := intOf(v); ok && n != 0 {
			c.flowID, c.has = uint64(n), c.has|hFlow
		}
	case roleReqID:
		if n, ok := u32(v); ok {
			c.reqID, c.has = n, c.has|hReqID
		}
	case roleL7:
		if s := v.Str(); s != "" {
			c.l7, c.has = hashStr(s), c.has|hL7
			c.mux = strings.EqualFold(s, "http2") || strings.EqualFold(s, "http/2") || strings.EqualFold(s, "grpc")
		}
	case roleNativeTrace:
		if s := v.Str(); s != "" {
			c.nativeTrace, c.has = s, c.has|hNativeTrace
		}
	}
}

// usableRequestID rejects values that many requests share ("-", "null",
// empty), which would chain unrelated requests together.
func usableRequestID(s string) bool {
	if len(s) < 4 || len(s) > 256 {
		return false
	}
	return !strings.EqualFold(s, "null") && !strings.EqualFold(s, "none") && !strings.EqualFold(s, "undefined") && !strings.EqualFold(s, "unknown")
}

// parseSpanID reads exactly 16 hex digits; anything else (Pinpoint's
// decimal span ids, SkyWalking's segment ids) is not an OTel span id.
func parseSpanID(s string) (pcommon.SpanID, bool) {
	var id pcommon.SpanID
	if len(s) != 16 {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil || id.IsEmpty() {
		return pcommon.SpanID{}, false
	}
	return id, true
}

// pinpointTraceID is the trace id Weft's pinpoint receiver gives a Pinpoint
// transaction (agentId^startTime^seq), so that eBPF spans that parsed a
// Pinpoint-TraceID header join the Pinpoint agent's own spans.
func pinpointTraceID(tx string) (pcommon.TraceID, bool) {
	if strings.Count(tx, "^") != 2 {
		return pcommon.TraceID{}, false
	}
	id, _ := vocab.PinpointTransaction([]byte(tx))
	return id, true
}

// resolve turns the merged correlation attributes of a span into fields.
func (c *corr) resolve(span ptrace.Span, f *fields) {
	f.traceID = span.TraceID()
	f.spanID = span.SpanID()
	f.parentID = span.ParentSpanID()
	f.start = int64(span.StartTimestamp())
	f.end = int64(span.EndTimestamp())
	if f.end < f.start {
		f.end = f.start
	}
	f.kind = uint8(span.Kind())
	f.flags = 0
	f.oneWay = nil
	if !f.parentID.IsEmpty() && f.parentID == f.spanID {
		f.flags |= flagSelfParent
	}

	f.src = srcApp
	if c.has&hSrc != 0 {
		f.src = c.src
	}
	f.obs = obsUnknown
	if c.has&hObs != 0 {
		f.obs = c.obs
	}
	if f.src == srcApp && !f.obs.isApp() {
		f.obs = appObs(span.Kind())
	}
	if f.src != srcApp && f.obs.isApp() {
		// A network or eBPF row that calls itself an application span is
		// not one for linking: keep it out of the network rules.
		f.src = srcApp
	}

	f.observer = c.observer
	f.pid = c.pid
	if c.has&hPID == 0 {
		switch {
		case f.obs.clientSide():
			f.pid = c.pid0
		case f.obs.serverSide():
			f.pid = c.pid1
		}
	}
	f.tcpReq, f.tcpResp = c.tcpReq, c.tcpResp
	f.reqID = c.reqID
	f.xr0, f.xr1 = c.xr0, c.xr1
	f.msg = c.msg
	// A syscall id follows a thread (or coroutine) through the socket
	// data it reads and writes, and the agent gives inbound data the id of
	// the socket's previous inbound data: on a multiplexed connection
	// (HTTP/2, gRPC) that is another stream's, so the rows of concurrent
	// calls share ids and no chain through them can be trusted.
	if f.src != srcApp && !c.mux {
		f.sysReq, f.sysResp = c.sysReq, c.sysResp
	} else {
		f.sysReq, f.sysResp = 0, 0
	}

	// The span id in the request's trace context. DeepFlow writes it as the
	// parent of network and eBPF rows, or the row's own id when there is
	// none.
	f.propID = pcommon.SpanID{}
	if f.src != srcApp {
		switch {
		case c.has&hProp != 0:
			f.propID = c.propID
		case !f.parentID.IsEmpty() && f.flags&flagSelfParent == 0:
			f.propID = f.parentID
		}
	}

	// Is the trace id the application's? Receivers make one up for spans
	// that parsed no trace context (DeepFlow: its row id in the first 8
	// bytes): an explicit weft.trace_id.synthetic says so; else a network
	// or eBPF span counts as traced only when it carries a trace context
	// (DeepFlow's native trace id, a propagated span id).
	synthetic := f.traceID.IsEmpty()
	switch {
	case c.has&hSynth != 0:
		synthetic = synthetic || c.synthetic
	case f.src == srcApp:
	case c.has&hNativeTrace != 0:
		if id, ok := pinpointTraceID(c.nativeTrace); ok && id != f.traceID {
			f.traceID = id
			f.flags |= flagTraceChanged
		}
	case f.propID.IsEmpty():
		synthetic = true
	}
	if synthetic {
		f.flags |= flagSynthetic
	}

	if f.msg != msgSession {
		f.oneWay = &oneWay{flowID: c.flowID, l7: c.l7, capReq: c.capReq, capResp: c.capResp}
	}
}

func appObs(k ptrace.SpanKind) obsPoint {
	switch k {
	case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
		return obsSApp
	case ptrace.SpanKindClient, ptrace.SpanKindProducer:
		return obsCApp
	}
	return obsApp
}

// Decode reads the correlation fields of one span, given its resource
// attributes. It is what the processor does for every span it holds, minus
// the encoding; the fuzz test drives it with arbitrary attributes.
func Decode(res pcommon.Map, span ptrace.Span) Fields {
	var rw, rd, sw, sd corr
	for k, v := range res.All() {
		rw.weftAttr(k, v)
		rd.dfAttr(k, v)
	}
	for k, v := range span.Attributes().All() {
		sw.weftAttr(k, v)
		sd.dfAttr(k, v)
	}
	c := sw
	c.fill(&sd)
	c.fill(&rw)
	c.fill(&rd)
	var f fields
	c.resolve(span, &f)
	return Fields{f: f}
}

// Fields is the exported view of a decoded span, for tests of the decoder.
type Fields struct{ f fields }

// ObservationPoint is the decoded observation point's vocabulary code.
func (x Fields) ObservationPoint() string { return x.f.obs.String() }

// SignalSource is the decoded signal source's vocabulary value.
func (x Fields) SignalSource() string {
	return [...]string{vocab.SignalSourceApp, vocab.SignalSourceEBPF, vocab.SignalSourcePacket, vocab.SignalSourceXFlow}[x.f.src]
}

// TraceID is the trace id linking starts from (a Pinpoint transaction id
// turns into the pinpoint receiver's trace id).
func (x Fields) TraceID() pcommon.TraceID { return x.f.traceID }

// SyntheticTrace reports whether the trace id counts as made up.
func (x Fields) SyntheticTrace() bool { return x.f.synthetic() }

// PropagatedSpanID is the span id of the request's trace context.
func (x Fields) PropagatedSpanID() pcommon.SpanID { return x.f.propID }

// Syscall returns the syscall trace ids of request and response.
func (x Fields) Syscall() (uint64, uint64) { return x.f.sysReq, x.f.sysResp }

// TCPSeq returns the TCP sequences of request and response.
func (x Fields) TCPSeq() (uint32, uint32) { return x.f.tcpReq, x.f.tcpResp }

// HasXRequestID reports whether the request and the response carried one.
func (x Fields) HasXRequestID() (bool, bool) { return x.f.xr0 != 0, x.f.xr1 != 0 }

// ProcessID is the process the span was seen in.
func (x Fields) ProcessID() uint32 { return x.f.pid }

// OneWay reports whether the row is one half of a session.
func (x Fields) OneWay() bool { return x.f.oneWay != nil }
