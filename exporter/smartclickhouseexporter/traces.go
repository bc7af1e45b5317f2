package smartclickhouseexporter

import (
	"encoding/hex"
	"slices"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
	"github.com/weftobs/weft/extension/k8smetadataextension"
	"github.com/weftobs/weft/internal/vocab"
)

// spanRows are the spans table's columns for one request.
type spanRows struct {
	// lookup, when set, finds the peer of client and server spans that do
	// not carry weft.peer.* ids (smart_encoding's peer_attributes: false).
	lookup k8smetadataextension.Lookup

	n                                               int
	time                                            []int64
	start, end, duration                            []uint64
	traceID, spanID, parentSpanID, traceState       []string
	flags                                           []uint32
	name                                            []string
	kind, statusCode                                []int8
	statusMessage                                   []string
	common                                          commonRows
	observationPoint, signalSource, observerID      []string
	processID                                       []uint32
	sysTraceReq, sysTraceResp, capSeqReq, capSeqRes []uint64
	tcpSeqReq, tcpSeqResp                           []uint32
	xRequestID0, xRequestID1, propagatedSpanID      []string
	traceIDSynthetic                                []int8
	messageType                                     []string
	flowID, l7RequestID                             []uint64
	l7Protocol, linkKey                             []string
	linkLate                                        []uint8
	linkOriginalParent, sessionResponse             []string
	sides                                           [2]tagRows
	evTime                                          [][]uint64
	evName                                          [][]string
	evAttrNames, evAttrValues                       [][][]string
	lnTraceID, lnSpanID, lnTraceState               [][]string
	lnAttrNames, lnAttrValues                       [][][]string
}

// skipped counts records left out of a request, by reason.
type skipped map[string]int64

const reasonTimestamp = "timestamp_out_of_range"

func traceIDString(id pcommon.TraceID) string {
	if id.IsEmpty() {
		return ""
	}
	return hex.EncodeToString(id[:])
}

func spanIDString(id pcommon.SpanID) string {
	if id.IsEmpty() {
		return ""
	}
	return hex.EncodeToString(id[:])
}

// spanTimesOK checks every timestamp of a span.
func spanTimesOK(s ptrace.Span) bool {
	if !timeOK(s.StartTimestamp()) || !timeOK(s.EndTimestamp()) {
		return false
	}
	for i := 0; i < s.Events().Len(); i++ {
		if !timeOK(s.Events().At(i).Timestamp()) {
			return false
		}
	}
	return true
}

// enum8 keeps a pdata enum within the Enum8's values; an unknown number
// (a newer OTLP) is stored as 0, unspecified, rather than failing the batch.
func enum8(v, maxValue int32) int8 {
	if v < 0 || v > maxValue {
		return 0
	}
	return int8(v)
}

// addTraces converts td into rows, skipping spans whose times cannot be
// stored. Each resource's attributes are read once.
func (r *spanRows) addTraces(td ptrace.Traces, skip skipped) {
	r.reserve(td.SpanCount())
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		ri := readResource(rs.Resource(), true)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			scope := ss.Scope()
			for k := 0; k < ss.Spans().Len(); k++ {
				s := ss.Spans().At(k)
				if !spanTimesOK(s) {
					skip[reasonTimestamp]++
					continue
				}
				r.add(&ri, scope.Name(), scope.Version(), s)
			}
		}
	}
}

// reserve sizes the columns for n more rows: appending to some eighty
// growing slices otherwise copies each several times.
func (r *spanRows) reserve(n int) {
	for _, s := range []*[]string{&r.traceID, &r.spanID, &r.parentSpanID, &r.traceState, &r.name, &r.statusMessage,
		&r.observationPoint, &r.signalSource, &r.observerID, &r.xRequestID0, &r.xRequestID1, &r.propagatedSpanID,
		&r.messageType, &r.l7Protocol, &r.linkKey, &r.linkOriginalParent, &r.sessionResponse} {
		*s = slices.Grow(*s, n)
	}
	for _, s := range []*[]uint64{&r.start, &r.end, &r.duration, &r.sysTraceReq, &r.sysTraceResp, &r.capSeqReq, &r.capSeqRes, &r.flowID, &r.l7RequestID} {
		*s = slices.Grow(*s, n)
	}
	for _, s := range []*[][]string{&r.evName, &r.lnTraceID, &r.lnSpanID, &r.lnTraceState} {
		*s = slices.Grow(*s, n)
	}
	for _, s := range []*[][][]string{&r.evAttrNames, &r.evAttrValues, &r.lnAttrNames, &r.lnAttrValues} {
		*s = slices.Grow(*s, n)
	}
	r.time = slices.Grow(r.time, n)
	r.evTime = slices.Grow(r.evTime, n)
	r.flags, r.processID = slices.Grow(r.flags, n), slices.Grow(r.processID, n)
	r.tcpSeqReq, r.tcpSeqResp = slices.Grow(r.tcpSeqReq, n), slices.Grow(r.tcpSeqResp, n)
	r.kind, r.statusCode, r.traceIDSynthetic = slices.Grow(r.kind, n), slices.Grow(r.statusCode, n), slices.Grow(r.traceIDSynthetic, n)
	r.linkLate = slices.Grow(r.linkLate, n)
	r.common.reserve(n)
	r.sides[0].reserve(n)
	r.sides[1].reserve(n)
}

func (r *spanRows) add(ri *resourceInfo, scopeName, scopeVersion string, s ptrace.Span) {
	si := readSpan(s, ri.corr)
	if r.lookup != nil && !si.hasPeer && si.peerIP != (ip{}) {
		if res, ok := r.lookup.ByIP(ri.ids[vpcIndex], si.peerIP.addr()); ok {
			si.peer, si.hasPeer = idsOf(res), true
		}
	}
	c := &si.corr
	if c.signalSource == "" {
		c.signalSource = vocab.SignalSourceApp
	}
	if c.observationPoint == "" && c.signalSource == vocab.SignalSourceApp {
		c.observationPoint = defaultObservationPoint(s.Kind())
	}

	r.n++
	start, end := uint64(s.StartTimestamp()), uint64(s.EndTimestamp())
	r.time = append(r.time, seconds(s.StartTimestamp()))
	r.start = append(r.start, start)
	r.end = append(r.end, end)
	var d uint64
	if end > start {
		d = end - start
	}
	r.duration = append(r.duration, d)
	r.traceID = append(r.traceID, traceIDString(s.TraceID()))
	r.spanID = append(r.spanID, spanIDString(s.SpanID()))
	r.parentSpanID = append(r.parentSpanID, spanIDString(s.ParentSpanID()))
	r.traceState = append(r.traceState, s.TraceState().AsRaw())
	r.flags = append(r.flags, s.Flags())
	r.name = append(r.name, s.Name())
	r.kind = append(r.kind, enum8(int32(s.Kind()), int32(ptrace.SpanKindConsumer)))
	r.statusCode = append(r.statusCode, enum8(int32(s.Status().Code()), int32(ptrace.StatusCodeError)))
	r.statusMessage = append(r.statusMessage, s.Status().Message())
	r.common.add(ri, scopeName, scopeVersion, emptyIfNil(si.names), emptyIfNil(si.values))

	r.observationPoint = append(r.observationPoint, c.observationPoint)
	r.signalSource = append(r.signalSource, c.signalSource)
	r.observerID = append(r.observerID, c.observerID)
	r.processID = append(r.processID, c.processID)
	r.sysTraceReq = append(r.sysTraceReq, c.syscallTraceIDRequest)
	r.sysTraceResp = append(r.sysTraceResp, c.syscallTraceIDResp)
	r.capSeqReq = append(r.capSeqReq, c.syscallCapSeqRequest)
	r.capSeqRes = append(r.capSeqRes, c.syscallCapSeqResp)
	r.tcpSeqReq = append(r.tcpSeqReq, c.tcpSeqRequest)
	r.tcpSeqResp = append(r.tcpSeqResp, c.tcpSeqResponse)
	r.xRequestID0 = append(r.xRequestID0, c.xRequestID0)
	r.xRequestID1 = append(r.xRequestID1, c.xRequestID1)
	r.propagatedSpanID = append(r.propagatedSpanID, c.propagatedSpanID)
	r.traceIDSynthetic = append(r.traceIDSynthetic, c.traceIDSynthetic)
	r.messageType = append(r.messageType, c.messageType)
	r.flowID = append(r.flowID, c.flowID)
	r.l7RequestID = append(r.l7RequestID, c.l7RequestID)
	r.l7Protocol = append(r.l7Protocol, c.l7Protocol)
	r.linkKey = append(r.linkKey, c.linkKey)
	r.linkLate = append(r.linkLate, c.linkLate)
	r.linkOriginalParent = append(r.linkOriginalParent, c.linkOriginalParentSpanID)
	r.sessionResponse = append(r.sessionResponse, c.sessionResponseSpanID)

	local := localSide(s.Kind(), c.observationPoint)
	var none ids
	r.sides[local].add(&ri.ids, ri.ip)
	if si.hasPeer || si.peerIP != (ip{}) {
		r.sides[1-local].add(&si.peer, si.peerIP)
	} else {
		r.sides[1-local].add(&none, ip{})
	}

	evs := s.Events()
	evTime := make([]uint64, evs.Len())
	evName := make([]string, evs.Len())
	evNames := make([][]string, evs.Len())
	evValues := make([][]string, evs.Len())
	for i := 0; i < evs.Len(); i++ {
		e := evs.At(i)
		evTime[i] = uint64(e.Timestamp())
		evName[i] = e.Name()
		n, v := splitAttrs(e.Attributes())
		evNames[i], evValues[i] = emptyIfNil(n), emptyIfNil(v)
	}
	r.evTime = append(r.evTime, evTime)
	r.evName = append(r.evName, evName)
	r.evAttrNames = append(r.evAttrNames, evNames)
	r.evAttrValues = append(r.evAttrValues, evValues)

	lns := s.Links()
	lnTrace := make([]string, lns.Len())
	lnSpan := make([]string, lns.Len())
	lnState := make([]string, lns.Len())
	lnNames := make([][]string, lns.Len())
	lnValues := make([][]string, lns.Len())
	for i := 0; i < lns.Len(); i++ {
		l := lns.At(i)
		lnTrace[i] = traceIDString(l.TraceID())
		lnSpan[i] = spanIDString(l.SpanID())
		lnState[i] = l.TraceState().AsRaw()
		n, v := splitAttrs(l.Attributes())
		lnNames[i], lnValues[i] = emptyIfNil(n), emptyIfNil(v)
	}
	r.lnTraceID = append(r.lnTraceID, lnTrace)
	r.lnSpanID = append(r.lnSpanID, lnSpan)
	r.lnTraceState = append(r.lnTraceState, lnState)
	r.lnAttrNames = append(r.lnAttrNames, lnNames)
	r.lnAttrValues = append(r.lnAttrValues, lnValues)
}

// columns are the rows by column name, in the types of a server with f.
func (r *spanRows) columns(f schema.Features) map[string]any {
	out := map[string]any{
		"time":                         r.time,
		"start_time":                   time64(f, r.start),
		"end_time":                     time64(f, r.end),
		"duration":                     r.duration,
		"trace_id":                     r.traceID,
		"span_id":                      r.spanID,
		"parent_span_id":               r.parentSpanID,
		"trace_state":                  r.traceState,
		"flags":                        r.flags,
		"name":                         r.name,
		"kind":                         r.kind,
		"status_code":                  r.statusCode,
		"status_message":               r.statusMessage,
		"observation_point":            r.observationPoint,
		"signal_source":                r.signalSource,
		"observer_id":                  r.observerID,
		"process_id":                   r.processID,
		"syscall_trace_id_request":     r.sysTraceReq,
		"syscall_trace_id_response":    r.sysTraceResp,
		"syscall_cap_seq_request":      r.capSeqReq,
		"syscall_cap_seq_response":     r.capSeqRes,
		"tcp_seq_request":              r.tcpSeqReq,
		"tcp_seq_response":             r.tcpSeqResp,
		"x_request_id_0":               r.xRequestID0,
		"x_request_id_1":               r.xRequestID1,
		"propagated_span_id":           r.propagatedSpanID,
		"trace_id_synthetic":           r.traceIDSynthetic,
		"message_type":                 r.messageType,
		"flow_id":                      r.flowID,
		"l7_request_id":                r.l7RequestID,
		"l7_protocol":                  r.l7Protocol,
		"link_key":                     r.linkKey,
		"link_late":                    r.linkLate,
		"link_original_parent_span_id": r.linkOriginalParent,
		"session_response_span_id":     r.sessionResponse,
		"events.time":                  arrayTime64(f, r.evTime),
		"events.name":                  r.evName,
		"events.attr_names":            r.evAttrNames,
		"events.attr_values":           r.evAttrValues,
		"links.trace_id":               r.lnTraceID,
		"links.span_id":                r.lnSpanID,
		"links.trace_state":            r.lnTraceState,
		"links.attr_names":             r.lnAttrNames,
		"links.attr_values":            r.lnAttrValues,
	}
	r.common.columns(out)
	r.sides[0].columns(f, "_0", out)
	r.sides[1].columns(f, "_1", out)
	return out
}
