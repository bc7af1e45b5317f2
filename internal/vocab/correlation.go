// Package vocab is Weft's shared attribute vocabulary.
//
// The correlation attributes below are what any receiver may put on a span
// (span attributes win over resource attributes of the same name) so that the
// trace_completion processor can stitch it to spans of other sources, and
// what the smart_clickhouse exporter stores next to each span so that the
// links can be checked or redone over stored data. A receiver sets the ones
// it knows and leaves the others out; a zero value means "unknown", never
// "zero".
//
// The link attributes are what trace_completion writes on the spans whose
// parent it set, so that users can see, trust or filter each link.
package vocab

// Correlation attributes: what a span says about where and how it was seen.
const (
	// SignalSource says who produced the span: one of SignalSource*. A span
	// without it is an application span (OTel SDK, Pinpoint agent).
	SignalSource = "weft.signal_source"

	// ObservationPoint is where on the path of a request the span was seen:
	// one of ObservationPoint*. Application spans may leave it out; their
	// span kind says it (SERVER/CONSUMER -> s-app, CLIENT/PRODUCER -> c-app).
	ObservationPoint = "weft.observation_point"

	// ObserverID names the agent that captured a network or eBPF span (a
	// DeepFlow agent, a node's eBPF collector). Syscall trace ids and process
	// ids are unique only per observer. String.
	ObserverID = "weft.observer.id"

	// ProcessID is the OS process id of the process the span was observed
	// in: the client process for c-p spans, the server process for s-p
	// spans. Int.
	ProcessID = "weft.process.id"

	// SyscallTraceIDRequest and SyscallTraceIDResponse are the ids an eBPF
	// agent gives to the request and the response of a c-p or s-p span: a
	// thread's inbound data gets a new id, its next outbound data takes that
	// id. Inside one synchronous server, s-p.request == the first c-p.request,
	// each c-p.response == the next c-p.request, and the last c-p.response ==
	// s-p.response. Int (unsigned 64-bit values are stored as their int64
	// bit pattern).
	SyscallTraceIDRequest  = "weft.syscall.trace_id.request"
	SyscallTraceIDResponse = "weft.syscall.trace_id.response"

	// SyscallCapSeqRequest and SyscallCapSeqResponse are the eBPF capture
	// sequence numbers of the request and the response: a response row
	// belongs to the request row whose capture sequence is one less. Int.
	SyscallCapSeqRequest  = "weft.syscall.cap_seq.request"
	SyscallCapSeqResponse = "weft.syscall.cap_seq.response"

	// TCPSeqRequest and TCPSeqResponse are the TCP sequence numbers of the
	// first request and the first response segment. Every capture point on
	// the path of one TCP request sees the same numbers (tcp_sock.write_seq
	// on send, copied_seq on receive for eBPF). Int, 0..2^32-1.
	TCPSeqRequest  = "weft.tcp.seq.request"
	TCPSeqResponse = "weft.tcp.seq.response"

	// XRequestID0 and XRequestID1 are the X-Request-ID (or a configured
	// equivalent) of the request and of the response headers. A gateway that
	// invents one returns it in the response of the inbound request (1) and
	// sends it in the request upstream (0). String.
	XRequestID0 = "weft.x_request_id.0"
	XRequestID1 = "weft.x_request_id.1"

	// UpstreamTraceID is the trace id a system that does not propagate W3C
	// trace context gave the request (a legacy tracer, a vendor gateway),
	// as a request header carried it. Wasm plugins extract it (the example
	// plugin from x-upstream-trace-id); it is kept on the span so that the
	// request can be found by it, not used for stitching. String.
	UpstreamTraceID = "weft.upstream.trace_id"

	// PropagatedSpanID is the span id the request carried in its trace
	// context headers (the calling client span), as 16 hex digits, for
	// network and eBPF spans that parsed them.
	PropagatedSpanID = "weft.propagated.span_id"

	// TraceIDSynthetic marks a trace id the receiver made up because the
	// span carried none: trace_completion replaces it with the trace id of
	// the group the span joins. Bool. Network and eBPF spans without
	// PropagatedSpanID are treated as synthetic unless this says false;
	// application spans as real unless this says true.
	TraceIDSynthetic = "weft.trace_id.synthetic"

	// MessageType is "request", "response" or "session". One-way request and
	// response rows are merged into one session span before linking. A span
	// without it is a session.
	MessageType = "weft.message.type"

	// FlowID identifies the transport flow (connection) a span was seen on,
	// per observer. One-way rows are merged only within one flow. Int.
	FlowID = "weft.flow.id"

	// L7RequestID is the protocol's own request id where it has one (DNS
	// transaction id, HTTP/2 stream id), used to pair one-way rows and to
	// tell apart requests whose TCP sequences are equal (HTTP/2 streams
	// whose headers shared a segment). Int.
	L7RequestID = "weft.l7.request_id"

	// L7Protocol is the application protocol (HTTP, HTTP2, gRPC, MySQL,
	// ...), used to pair one-way rows; HTTP2 and gRPC mark a multiplexed
	// connection, whose syscall ids trace_completion does not follow.
	// String.
	L7Protocol = "weft.l7.protocol"
)

// ExtractedID reports whether k is a correlation id of this vocabulary that
// a Wasm plugin (internal/wasmplugin) may extract: XRequestID0,
// XRequestID1, UpstreamTraceID. Components write those on the span for
// every plugin; other keys a plugin returns are tags, written only when the
// plugin's attributes option is on.
func ExtractedID(k string) bool {
	switch k {
	case XRequestID0, XRequestID1, UpstreamTraceID:
		return true
	}
	return false
}

// Signal sources (values of SignalSource).
const (
	SignalSourceApp    = "app"    // an OTel SDK or APM agent
	SignalSourceEBPF   = "ebpf"   // syscalls seen by an eBPF agent (c-p, s-p)
	SignalSourcePacket = "packet" // packets captured on a NIC
	SignalSourceXFlow  = "xflow"  // NetFlow/sFlow records
)

// Observation points (values of ObservationPoint), from the client process
// to the server process. A request crosses them in this order.
const (
	ObservationPointClientProcess    = "c-p"     // eBPF in the client process
	ObservationPointClientNIC        = "c"       // the client's (pod) NIC
	ObservationPointClientNode       = "c-nd"    // the client's Kubernetes node NIC
	ObservationPointClientHypervisor = "c-hv"    // the client VM's hypervisor
	ObservationPointClientGatewayHV  = "c-gw-hv" // a client-side gateway's hypervisor
	ObservationPointClientGateway    = "c-gw"    // a client-side gateway
	ObservationPointServerGateway    = "s-gw"    // a server-side gateway
	ObservationPointServerGatewayHV  = "s-gw-hv" // a server-side gateway's hypervisor
	ObservationPointServerHypervisor = "s-hv"    // the server VM's hypervisor
	ObservationPointServerNode       = "s-nd"    // the server's Kubernetes node NIC
	ObservationPointServerNIC        = "s"       // the server's (pod) NIC
	ObservationPointServerProcess    = "s-p"     // eBPF in the server process
	ObservationPointLocal            = "local"   // a local NIC, side unknown
	ObservationPointRest             = "rest"    // another NIC on the path, side unknown
	ObservationPointClientApp        = "c-app"   // an application client span
	ObservationPointServerApp        = "s-app"   // an application server span
	ObservationPointApp              = "app"     // another application span
)

// Link attributes: what trace_completion writes on a span whose parent it set.
const (
	// LinkKey is the key the parent link was made by: one of LinkKey*.
	LinkKey = "weft.link.key"

	// LinkLate is true when the link was made through a key remembered
	// after the parent's group had been sent (a late span). Bool.
	LinkLate = "weft.link.late"

	// LinkOriginalParentSpanID keeps, as 16 hex digits, the parent span id
	// the span arrived with when trace_completion replaced it (an
	// application server span moved under the server-side network span of
	// its request).
	LinkOriginalParentSpanID = "weft.link.original_parent_span_id"

	// SessionResponseSpanID is set on a request row that a one-way response
	// row was merged into: the response row's span id, 16 hex digits. The
	// response row itself is not sent on.
	SessionResponseSpanID = "weft.session.response_span_id"
)

// Link keys (values of LinkKey).
const (
	// LinkKeyTCPSeq: two captures of one TCP request (equal TCP sequence,
	// times within time_tolerance), chained by observation point.
	LinkKeyTCPSeq = "tcp_seq"
	// LinkKeySpanID: an application span and the network spans of the
	// request it sent or received, by the span id in the trace context.
	LinkKeySpanID = "span_id"
	// LinkKeySyscall: a server process span and the calls it made, by
	// syscall trace id chaining inside one process.
	LinkKeySyscall = "syscall"
	// LinkKeyXRequestID: the request a gateway received and the request it
	// sent upstream, by X-Request-ID.
	LinkKeyXRequestID = "x_request_id"
)
