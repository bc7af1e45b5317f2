package smartclickhouseexporter

import (
	"math"
	"net/netip"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
	"github.com/weftobs/weft/extension/k8smetadataextension"
	"github.com/weftobs/weft/internal/vocab"
)

// The rule for attributes: one that went into a column is left out of the
// name/value arrays; one that did not fit its column (a wrong type, an id
// out of range, a host name where an IP was expected) stays in the arrays
// and the column keeps its zero, "unknown". Nothing is stored twice and
// nothing is lost.

const numIDs = len(schema.IDColumns)

// ids are the resource ids of one side, in the order of schema.IDColumns.
type ids [numIDs]uint32

// idMax is the largest value each id column holds.
var idMax = func() [numIDs]int64 {
	var m [numIDs]int64
	for i, c := range schema.IDColumns {
		switch c.Kind {
		case schema.UInt8:
			m[i] = math.MaxUint8
		case schema.UInt16:
			m[i] = math.MaxUint16
		default:
			m[i] = math.MaxUint32
		}
	}
	return m
}()

// localIDIndex and peerIDIndex map the vocab's id attributes (weft.pod_id,
// weft.peer.pod_id) to their column in schema.IDColumns (pod_id). An id
// attribute without a column stays in the attribute arrays.
var localIDIndex, peerIDIndex = func() (map[string]int, map[string]int) {
	local, peer := map[string]int{}, map[string]int{}
	for _, attr := range vocab.ResourceIDs {
		name := strings.TrimPrefix(attr, "weft.")
		for i, c := range schema.IDColumns {
			if c.Name == name {
				local[attr] = i
				peer[vocab.PeerPrefix+name] = i
			}
		}
	}
	return local, peer
}()

// vpcIndex is the VPC's place in ids: lookups are by (VPC, IP).
var vpcIndex = localIDIndex[vocab.VPCID]

// resourceIDColumn is the id column of each of vocab.ResourceIDs, in that
// order: the order of k8smetadataextension.Resource.IDs.
var resourceIDColumn = func() (cols [len(vocab.ResourceIDs)]int) {
	for i, attr := range vocab.ResourceIDs {
		c, ok := localIDIndex[attr]
		if !ok {
			panic("smart_clickhouse: no id column for " + attr)
		}
		cols[i] = c
	}
	return cols
}()

// idsOf are the ids of a resource the k8s_metadata extension found, in
// column order; one that does not fit its column stays 0.
func idsOf(r k8smetadataextension.Resource) ids {
	var d ids
	for i, v := range r.IDs() {
		if c := resourceIDColumn[i]; int64(v) <= idMax[c] {
			d[c] = v
		}
	}
	return d
}

// addr is the address again, for lookups.
func (a ip) addr() netip.Addr {
	if a.v6 == ([16]byte{}) {
		return netip.AddrFrom4([4]byte{byte(a.v4 >> 24), byte(a.v4 >> 16), byte(a.v4 >> 8), byte(a.v4)})
	}
	return netip.AddrFrom16(a.v6)
}

// setID stores an id attribute's value if it fits its column.
func (d *ids) set(i int, v pcommon.Value) bool {
	if v.Type() != pcommon.ValueTypeInt || v.Int() < 0 || v.Int() > idMax[i] {
		return false
	}
	d[i] = uint32(v.Int())
	return true
}

// ip is an address as the ip4/ip6 columns hold it: an IPv4 address (also
// one mapped into IPv6) in ip4, anything else in ip6.
type ip struct {
	v4 uint32
	v6 [16]byte
}

// parseIP reads an IP from a string attribute, or from a string array of
// exactly one element. Addresses with a zone are not taken: the column
// cannot keep the zone.
func parseIP(v pcommon.Value) (ip, bool) {
	var s string
	switch v.Type() {
	case pcommon.ValueTypeStr:
		s = v.Str()
	case pcommon.ValueTypeSlice:
		if v.Slice().Len() != 1 || v.Slice().At(0).Type() != pcommon.ValueTypeStr {
			return ip{}, false
		}
		s = v.Slice().At(0).Str()
	default:
		return ip{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return ip{}, false
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return ip{v4: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])}, true
	}
	return ip{v6: a.As16()}, true
}

// firstIP finds the first of keys that holds an IP. skip names a key that
// describes the span's own side.
func firstIP(m pcommon.Map, keys []string, skip string) (ip, string) {
	for _, k := range keys {
		if k == skip {
			continue
		}
		if v, ok := m.Get(k); ok {
			if a, ok := parseIP(v); ok {
				return a, k
			}
		}
	}
	return ip{}, ""
}

// correlation holds the vocab correlation and link attributes of a span.
type correlation struct {
	observationPoint, signalSource, observerID string
	processID                                  uint32
	syscallTraceIDRequest, syscallTraceIDResp  uint64
	syscallCapSeqRequest, syscallCapSeqResp    uint64
	tcpSeqRequest, tcpSeqResponse              uint32
	xRequestID0, xRequestID1                   string
	propagatedSpanID                           string
	traceIDSynthetic                           int8 // schema.TriStateEnum
	messageType                                string
	flowID, l7RequestID                        uint64
	l7Protocol                                 string
	linkKey                                    string
	linkLate                                   uint8
	linkOriginalParentSpanID                   string
	sessionResponseSpanID                      string
}

// setU64 takes an Int; unsigned 64-bit values arrive as their int64 bit
// pattern (vocab), so every Int fits.
func setU64(dst func(*correlation) *uint64) func(*correlation, pcommon.Value) bool {
	return func(c *correlation, v pcommon.Value) bool {
		if v.Type() != pcommon.ValueTypeInt {
			return false
		}
		*dst(c) = uint64(v.Int())
		return true
	}
}

func setU32(dst func(*correlation) *uint32) func(*correlation, pcommon.Value) bool {
	return func(c *correlation, v pcommon.Value) bool {
		if v.Type() != pcommon.ValueTypeInt || v.Int() < 0 || v.Int() > math.MaxUint32 {
			return false
		}
		*dst(c) = uint32(v.Int())
		return true
	}
}

func setS(dst func(*correlation) *string) func(*correlation, pcommon.Value) bool {
	return func(c *correlation, v pcommon.Value) bool {
		if v.Type() != pcommon.ValueTypeStr {
			return false
		}
		*dst(c) = v.Str()
		return true
	}
}

// correlationSetters store each correlation attribute in its field; false
// means the value did not fit and the attribute stays in the arrays.
var correlationSetters = map[string]func(*correlation, pcommon.Value) bool{
	vocab.SignalSource:           setS(func(c *correlation) *string { return &c.signalSource }),
	vocab.ObservationPoint:       setS(func(c *correlation) *string { return &c.observationPoint }),
	vocab.ObserverID:             setS(func(c *correlation) *string { return &c.observerID }),
	vocab.ProcessID:              setU32(func(c *correlation) *uint32 { return &c.processID }),
	vocab.SyscallTraceIDRequest:  setU64(func(c *correlation) *uint64 { return &c.syscallTraceIDRequest }),
	vocab.SyscallTraceIDResponse: setU64(func(c *correlation) *uint64 { return &c.syscallTraceIDResp }),
	vocab.SyscallCapSeqRequest:   setU64(func(c *correlation) *uint64 { return &c.syscallCapSeqRequest }),
	vocab.SyscallCapSeqResponse:  setU64(func(c *correlation) *uint64 { return &c.syscallCapSeqResp }),
	vocab.TCPSeqRequest:          setU32(func(c *correlation) *uint32 { return &c.tcpSeqRequest }),
	vocab.TCPSeqResponse:         setU32(func(c *correlation) *uint32 { return &c.tcpSeqResponse }),
	vocab.XRequestID0:            setS(func(c *correlation) *string { return &c.xRequestID0 }),
	vocab.XRequestID1:            setS(func(c *correlation) *string { return &c.xRequestID1 }),
	vocab.PropagatedSpanID:       setS(func(c *correlation) *string { return &c.propagatedSpanID }),
	vocab.TraceIDSynthetic: func(c *correlation, v pcommon.Value) bool {
		if v.Type() != pcommon.ValueTypeBool {
			return false
		}
		c.traceIDSynthetic = 1
		if v.Bool() {
			c.traceIDSynthetic = 2
		}
		return true
	},
	vocab.MessageType: setS(func(c *correlation) *string { return &c.messageType }),
	vocab.FlowID:      setU64(func(c *correlation) *uint64 { return &c.flowID }),
	vocab.L7RequestID: setU64(func(c *correlation) *uint64 { return &c.l7RequestID }),
	vocab.L7Protocol:  setS(func(c *correlation) *string { return &c.l7Protocol }),
	vocab.LinkKey:     setS(func(c *correlation) *string { return &c.linkKey }),
	vocab.LinkLate: func(c *correlation, v pcommon.Value) bool {
		if v.Type() != pcommon.ValueTypeBool {
			return false
		}
		c.linkLate = 0
		if v.Bool() {
			c.linkLate = 1
		}
		return true
	},
	vocab.LinkOriginalParentSpanID: setS(func(c *correlation) *string { return &c.linkOriginalParentSpanID }),
	vocab.SessionResponseSpanID:    setS(func(c *correlation) *string { return &c.sessionResponseSpanID }),
}

// resourceInfo is what a resource gives every row under it.
type resourceInfo struct {
	ids         ids
	ip          ip
	serviceName string
	// names and values are the resource attributes that went into no
	// column. Rows share these slices: clickhouse-go copies on append.
	names, values []string
	// corr are correlation attributes set on the resource: defaults for
	// its spans, whose own attributes win.
	corr correlation
}

// readResource splits a resource's attributes into columns and arrays.
// Correlation attributes are taken only for spans (withCorrelation).
func readResource(res pcommon.Resource, withCorrelation bool) resourceInfo {
	var ri resourceInfo
	attrs := res.Attributes()
	var ipKey string
	ri.ip, ipKey = firstIP(attrs, vocab.LocalIPAttributes, "")
	ri.names = make([]string, 0, attrs.Len())
	ri.values = make([]string, 0, attrs.Len())
	attrs.Range(func(k string, v pcommon.Value) bool {
		if k == ipKey {
			return true
		}
		if i, ok := localIDIndex[k]; ok && ri.ids.set(i, v) {
			return true
		}
		if k == "service.name" && v.Type() == pcommon.ValueTypeStr {
			ri.serviceName = v.Str()
			return true
		}
		if withCorrelation {
			if set, ok := correlationSetters[k]; ok && set(&ri.corr, v) {
				return true
			}
		}
		ri.names = append(ri.names, k)
		ri.values = append(ri.values, v.AsString())
		return true
	})
	return ri
}

// splitAttrs puts every attribute into the arrays.
func splitAttrs(m pcommon.Map) (names, values []string) {
	if m.Len() == 0 {
		return nil, nil
	}
	names = make([]string, 0, m.Len())
	values = make([]string, 0, m.Len())
	m.Range(func(k string, v pcommon.Value) bool {
		names = append(names, k)
		values = append(values, v.AsString())
		return true
	})
	return names, values
}

// spanInfo is what a span's own attributes give: the peer side, the
// correlation columns and the remaining attributes.
type spanInfo struct {
	peer          ids
	hasPeer       bool
	peerIP        ip
	corr          correlation
	names, values []string
}

// readSpan splits a span's attributes. corr starts from the resource's
// correlation attributes, which the span's own override.
func readSpan(span ptrace.Span, resCorr correlation) spanInfo {
	si := spanInfo{corr: resCorr}
	attrs := span.Attributes()
	var ipKey string
	if own := vocab.OwnAddress(span.Kind()); own != "" {
		si.peerIP, ipKey = firstIP(attrs, vocab.PeerIPAttributes, own)
	}
	if attrs.Len() > 0 {
		si.names = make([]string, 0, attrs.Len())
		si.values = make([]string, 0, attrs.Len())
	}
	attrs.Range(func(k string, v pcommon.Value) bool {
		if k == ipKey {
			return true
		}
		// Every column attribute is weft.*: the rest skip the lookups.
		if strings.HasPrefix(k, "weft.") {
			if i, ok := peerIDIndex[k]; ok && si.peer.set(i, v) {
				si.hasPeer = true
				return true
			}
			if set, ok := correlationSetters[k]; ok && set(&si.corr, v) {
				return true
			}
		}
		si.names = append(si.names, k)
		si.values = append(si.values, v.AsString())
		return true
	})
	return si
}

// localSide is the side (0 client, 1 server) of the resource that emitted a
// span; the peer is the other. SERVER and CONSUMER spans are emitted by the
// server side, CLIENT and PRODUCER spans by the client side (DeepFlow's
// convention, as smart_encoding tags them). Other spans have no side of
// their own: an observation point on the server half of the path (s-*)
// puts them on side 1, anything else — an internal application span — on
// side 0.
func localSide(kind ptrace.SpanKind, observationPoint string) int {
	switch kind {
	case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
		return 1
	case ptrace.SpanKindClient, ptrace.SpanKindProducer:
		return 0
	}
	if len(observationPoint) > 0 && observationPoint[0] == 's' {
		return 1
	}
	return 0
}

// defaultObservationPoint is what an application span's kind says when it
// carries no observation point (vocab.ObservationPoint).
func defaultObservationPoint(kind ptrace.SpanKind) string {
	switch kind {
	case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
		return vocab.ObservationPointServerApp
	case ptrace.SpanKindClient, ptrace.SpanKindProducer:
		return vocab.ObservationPointClientApp
	}
	return vocab.ObservationPointApp
}
