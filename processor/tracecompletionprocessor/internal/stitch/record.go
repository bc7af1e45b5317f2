// Package stitch is the trace_completion processor's engine: it holds spans
// in a compact form, groups related spans as they arrive (union-find over
// correlation keys), and when a group has been quiet for the wait, links its
// spans (parents and one trace id) and rebuilds them as pdata.
package stitch

import (
	"go.opentelemetry.io/collector/pdata/pcommon"
)

// obsPoint is an observation point. The values from obsCP to obsSP are the
// order in which a request crosses them, which is also their rank.
type obsPoint uint8

const (
	obsUnknown obsPoint = iota
	obsCP               // c-p: eBPF in the client process
	obsC                // c: client NIC
	obsCND              // c-nd: client K8s node
	obsCHV              // c-hv: client VM hypervisor
	obsCGWHV            // c-gw-hv
	obsCGW              // c-gw
	obsSGW              // s-gw
	obsSGWHV            // s-gw-hv
	obsSHV              // s-hv
	obsSND              // s-nd: server K8s node
	obsS                // s: server NIC
	obsSP               // s-p: eBPF in the server process
	obsLocal            // local NIC, side unknown
	obsRest             // other NIC, side unknown
	obsCApp             // application client span
	obsSApp             // application server span
	obsApp              // other application span
	numObs
)

// rank orders network captures of one request; captures whose side is
// unknown (and unknown points) sort between the two sides' extremes by
// duration only, so they share one rank.
func (o obsPoint) rank() int {
	switch {
	case o >= obsCP && o <= obsSP:
		return int(o)
	default:
		return 13
	}
}

func (o obsPoint) isApp() bool      { return o >= obsCApp }
func (o obsPoint) clientSide() bool { return o >= obsCP && o <= obsCGW }
func (o obsPoint) serverSide() bool { return o >= obsSGW && o <= obsSP }

// source is who produced a span.
type source uint8

const (
	srcApp source = iota
	srcEBPF
	srcPacket
	srcXFlow
)

// msgType says whether a row is a whole session or one half of it.
type msgType uint8

const (
	msgSession msgType = iota
	msgRequest
	msgResponse
)

const (
	// flagSynthetic: the trace id was made up by the receiver and may be
	// replaced by the group's.
	flagSynthetic uint8 = 1 << iota
	// flagSelfParent: the span named itself as its parent (DeepFlow does
	// that for eBPF spans without trace context); the parent is not real.
	flagSelfParent
	// flagTraceChanged: the trace id was derived (Pinpoint transaction id)
	// and differs from the one the span arrived with.
	flagTraceChanged
)

// fields is what linking needs to know about a span; everything else stays
// in the encoded blob.
type fields struct {
	traceID  pcommon.TraceID
	spanID   pcommon.SpanID
	parentID pcommon.SpanID // as received
	propID   pcommon.SpanID // the span id in the request's trace context
	start    int64          // ns since the epoch
	end      int64
	sysReq   uint64 // syscall trace ids
	sysResp  uint64
	xr0, xr1 uint64 // hashes of the X-Request-IDs; 0 = none
	observer uint32 // hash of the observer (agent) id; 0 = unknown
	pid      uint32
	tcpReq   uint32
	tcpResp  uint32
	// reqID is the protocol's own request id: the HTTP/2 or gRPC stream
	// id, the DNS transaction id; 0 = none.
	reqID  uint32
	obs    obsPoint
	src    source
	kind   uint8 // ptrace.SpanKind
	msg    msgType
	flags  uint8
	oneWay *oneWay // only for one-way rows
}

// oneWay is what pairs a one-way response row with its request row (with
// fields.reqID).
type oneWay struct {
	flowID  uint64
	l7      uint64 // hash of the protocol name
	capReq  uint32
	capResp uint32
}

func (f *fields) synthetic() bool { return f.flags&flagSynthetic != 0 }

// realTrace reports whether the trace id is an application's own.
func (f *fields) realTrace() bool { return f.flags&flagSynthetic == 0 && !f.traceID.IsEmpty() }

func (f *fields) isProcess() bool { return f.obs == obsCP || f.obs == obsSP }

func (f *fields) isNetwork() bool { return f.src != srcApp && !f.obs.isApp() }

func (f *fields) duration() int64 { return f.end - f.start }
