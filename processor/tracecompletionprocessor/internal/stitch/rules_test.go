package stitch

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/vocab"
)

// TestTCPChainsCapturesByObservationPoint: the captures of one request,
// arriving in any order and on hosts whose clocks differ by less than the
// tolerance, are chained from the client process to the server process.
func TestTCPChainsCapturesByObservationPoint(t *testing.T) {
	h := hop(100, "node-1", "node-2", 0, 5000, 1111, 2222)
	for i := 3; i < 6; i++ { // the server's clock is 20ms ahead
		h[i].start += 20_000
		h[i].end += 20_000
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(h), func(i, j int) { h[i], h[j] = h[j], h[i] })
	o, res := stitchAll(t, testOptions(), tracers(h...)...)

	assert.Equal(t, uint64(0), o.parent(t, 101), "c-p is the root")
	for id := uint64(102); id <= 106; id++ {
		assert.Equal(t, id-1, o.parent(t, id), "span %d", id)
		assert.Equal(t, vocab.LinkKeyTCPSeq, o.key(t, id))
		assert.Equal(t, o.trace(t, 101), o.trace(t, id), "one trace id")
	}
	assert.Equal(t, 5, res.Links[vocab.LinkKeyTCPSeq])
	assert.Equal(t, 1, res.Groups[ReasonShutdown])
}

// TestTCPNeedsTimesWithinTolerance: an equal sequence number is not enough;
// captures further apart than the tolerance are different requests.
func TestTCPNeedsTimesWithinTolerance(t *testing.T) {
	h := hop(100, "node-1", "node-2", 0, 5000, 1111, 2222)[:2]
	far := hop(200, "node-1", "node-2", 0, 5000, 1111, 3333)[3:5]
	for i := range far {
		far[i].start += 61_000 // 61ms later, tolerance 60ms
		far[i].end += 61_000
	}
	o, _ := stitchAll(t, testOptions(), tracers(append(h, far...)...)...)
	assert.Equal(t, uint64(101), o.parent(t, 102))
	assert.Equal(t, uint64(0), o.parent(t, 204), "not linked across the tolerance")
	assert.NotEqual(t, o.trace(t, 101), o.trace(t, 204))
	assert.Equal(t, uint64(204), o.parent(t, 205))
}

// TestCoalescedStreamsStayApart: two gRPC calls on one HTTP/2 connection
// whose headers left in one TCP segment share its sequence numbers and
// nearly their times; their stream ids keep each call's captures in a
// chain of their own, also for a capture that arrives after its call was
// sent.
func TestCoalescedStreamsStayApart(t *testing.T) {
	a := hop(100, "node-1", "node-2", 0, 5000, 1111, 2222)
	b := hop(200, "node-1", "node-2", 3, 5004, 1111, 2222)
	for i := range a {
		a[i].stream, b[i].stream = 1, 3
	}
	late := b[4] // b's server NIC capture, sent after b's group left
	spans := tracers(append(append([]net{}, a...), append(b[:4:4], b[5])...)...)
	opt := testOptions()
	e := New(opt)
	var tds []ptrace.Traces
	for _, s := range spans {
		e.Add(t0, s.traces())
	}
	tds = append(tds, e.Flush(t0.Add(opt.Wait+time.Second), false).Traces)
	e.Add(t0.Add(opt.Wait+2*time.Second), late.traces())
	tds = append(tds, e.Flush(t0.Add(time.Hour), true).Traces)
	o := collect(tds...)

	// b's s-p went out under b's s-nd, the nearest capture then; the late
	// s capture goes under s-nd too.
	want := map[uint64]uint64{102: 101, 103: 102, 104: 103, 105: 104, 106: 105,
		202: 201, 203: 202, 204: 203, 205: 204, 206: 204}
	for id, parent := range want {
		assert.Equal(t, parent, o.parent(t, id), "capture %d", id)
		assert.Equal(t, o.trace(t, id/100*100+1), o.trace(t, id), "capture %d", id)
	}
	assert.Equal(t, uint64(0), o.parent(t, 101))
	assert.Equal(t, uint64(0), o.parent(t, 201))
	assert.NotEqual(t, o.trace(t, 101), o.trace(t, 201), "two calls, two traces")
	assert.Equal(t, true, o.span(t, 205).Attributes().AsRaw()[vocab.LinkLate], "the late capture joined late")
}

// TestLateCaptureWithoutStreamID: a late capture that could not read its
// stream id (a packet capture that missed the HPACK state) still joins a
// request that was alone on its sequence, but not one of two coalesced
// streams: it cannot tell which.
func TestLateCaptureWithoutStreamID(t *testing.T) {
	run := func(coalesced bool) out {
		a := hop(100, "node-1", "node-2", 0, 5000, 1111, 2222)
		b := hop(200, "node-1", "node-2", 3, 5004, 1111, 2222)
		for i := range a {
			a[i].stream, b[i].stream = 1, 3
		}
		late := a[4]
		late.stream = 0
		early := append(append([]net{}, a[:4]...), a[5])
		if coalesced {
			early = append(early, b...)
		}
		opt := testOptions()
		e := New(opt)
		for _, n := range early {
			e.Add(t0, n.traces())
		}
		tds := []ptrace.Traces{e.Flush(t0.Add(opt.Wait+time.Second), false).Traces}
		e.Add(t0.Add(opt.Wait+2*time.Second), late.traces())
		return collect(append(tds, e.Flush(t0.Add(time.Hour), true).Traces)...)
	}
	o := run(false)
	assert.Equal(t, uint64(104), o.parent(t, 105), "alone on its sequence: joins under s-nd")
	assert.Equal(t, o.trace(t, 101), o.trace(t, 105))
	o = run(true)
	assert.Equal(t, uint64(0), o.parent(t, 105), "two streams shared the sequence: no parent")
	assert.NotEqual(t, o.trace(t, 101), o.trace(t, 105))
	assert.NotEqual(t, o.trace(t, 201), o.trace(t, 105))
}

// TestConflictingTraceContextsStayApart: a client calls twice at once in
// one trace over one HTTP/2 connection whose captures carry no stream id:
// equal sequences and times, one trace id, but each call's own propagated
// span id keeps its captures apart.
func TestConflictingTraceContextsStayApart(t *testing.T) {
	a := hop(100, "node-1", "node-2", 0, 5000, 1111, 2222)
	b := hop(200, "node-1", "node-2", 3, 5004, 1111, 2222)
	for i := range a {
		a[i].trace, a[i].prop = 7, 70
		b[i].trace, b[i].prop = 7, 80
	}
	o, _ := stitchAll(t, testOptions(), tracers(append(a, b...)...)...)
	for _, h := range [][]net{a, b} {
		for _, c := range h[1:] {
			assert.Equal(t, c.id-1, o.parent(t, c.id), "capture %d", c.id)
			assert.Equal(t, tid(7), o.trace(t, c.id), "capture %d", c.id)
		}
	}
}

// TestSpanIDLinksApplicationSpans: the client span that sent a request is
// the parent of its first capture; the server span that received it moves
// under the last capture, keeping its old parent in an attribute.
func TestSpanIDLinksApplicationSpans(t *testing.T) {
	const trace = 9
	client := app{id: 1, parent: 0, trace: trace, kind: ptrace.SpanKindClient, start: -50, end: 5050, service: "a"}
	server := app{id: 2, parent: 1, trace: trace, kind: ptrace.SpanKindServer, start: 200, end: 4800, service: "b"}
	h := hop(100, "node-1", "node-2", 0, 5000, 1111, 2222)
	for i := range h {
		h[i].trace, h[i].prop = trace, 1
	}
	o, res := stitchAll(t, testOptions(), append(tracers(h...), client, server)...)

	assert.Equal(t, uint64(1), o.parent(t, 101))
	assert.Equal(t, vocab.LinkKeySpanID, o.key(t, 101))
	assert.Equal(t, uint64(106), o.parent(t, 2), "server span under s-p")
	assert.Equal(t, vocab.LinkKeySpanID, o.key(t, 2))
	orig, ok := o.span(t, 2).Attributes().Get(vocab.LinkOriginalParentSpanID)
	require.True(t, ok)
	assert.Equal(t, sid(1).String(), orig.Str())
	assert.Equal(t, "", o.key(t, 1), "the client span is left as it was")
	assert.Equal(t, 1, o.span(t, 1).Attributes().Len())
	for id := range o {
		assert.Equal(t, tid(trace), o[id].TraceID(), "the application's trace id wins")
	}
	assert.Equal(t, 2, res.Links[vocab.LinkKeySpanID])
}

// process is a server process span on agent "n2" serving [0, 10000] that
// makes calls; ids follow the eBPF agent's rule.
func process(calls ...[2]int64) []net {
	s := net{id: 10, obs: "s-p", agent: "n2", pid: 7, start: 0, end: 10_000, sysReq: 500, tcpReq: 1, tcpResp: 2}
	spans := []net{s}
	id := int64(500)
	for i, c := range calls {
		spans = append(spans, net{id: uint64(20 + i), obs: "c-p", agent: "n2", pid: 7, start: c[0], end: c[1],
			sysReq: id, sysResp: id + 1, tcpReq: int64(100 + i), tcpResp: int64(200 + i)})
		id++
	}
	spans[0].sysResp = id
	return spans
}

// TestSyscallChainsCallsUnderTheirServer: s-p.req == first c-p.req, each
// c-p.resp == the next c-p.req, last c-p.resp == s-p.resp.
func TestSyscallChainsCallsUnderTheirServer(t *testing.T) {
	spans := process([2]int64{1000, 2000}, [2]int64{3000, 4000}, [2]int64{5000, 6000})
	o, res := stitchAll(t, testOptions(), tracers(spans...)...)
	for _, c := range []uint64{20, 21, 22} {
		assert.Equal(t, uint64(10), o.parent(t, c), "call %d", c)
		assert.Equal(t, vocab.LinkKeySyscall, o.key(t, c))
		assert.Equal(t, o.trace(t, 10), o.trace(t, c))
	}
	assert.Equal(t, 3, res.Links[vocab.LinkKeySyscall])
}

// TestSyscallChainMustBeComplete: a chain that does not reach the server's
// response id (a call missing, or ids reused by a thread pool) links
// nothing: unlinked beats mislinked.
func TestSyscallChainMustBeComplete(t *testing.T) {
	spans := process([2]int64{1000, 2000}, [2]int64{3000, 4000}, [2]int64{5000, 6000})
	spans = append(spans[:2], spans[3:]...) // the middle call is missing
	o, _ := stitchAll(t, testOptions(), tracers(spans...)...)
	assert.Equal(t, uint64(0), o.parent(t, 20))
	assert.Equal(t, uint64(0), o.parent(t, 22))
	assert.NotEqual(t, o.trace(t, 10), o.trace(t, 20))
}

// TestSyscallChainNeedsTimeAndAgreement: a call outside the server's time
// range, or carrying another X-Request-ID, breaks the chain.
func TestSyscallChainNeedsTimeAndAgreement(t *testing.T) {
	t.Run("outside", func(t *testing.T) {
		spans := process([2]int64{1000, 2000}, [2]int64{3000, 11_000})
		o, _ := stitchAll(t, testOptions(), tracers(spans...)...)
		assert.Equal(t, uint64(0), o.parent(t, 20))
		assert.Equal(t, uint64(0), o.parent(t, 21))
	})
	t.Run("conflicting x_request_id", func(t *testing.T) {
		spans := process([2]int64{1000, 2000}, [2]int64{3000, 4000})
		spans[0].xr1 = "request-one"
		spans[2].xr0 = "request-two" // an event loop's id went to another request
		o, _ := stitchAll(t, testOptions(), tracers(spans...)...)
		assert.Equal(t, uint64(0), o.parent(t, 21))
		assert.NotEqual(t, o.trace(t, 10), o.trace(t, 21))
	})
	t.Run("two servers claim the chain", func(t *testing.T) {
		spans := process([2]int64{1000, 2000})
		dup := spans[0]
		dup.id = 11
		o, _ := stitchAll(t, testOptions(), tracers(append(spans, dup)...)...)
		assert.Equal(t, uint64(0), o.parent(t, 20))
	})
}

// TestSyscallPlacesTracedCallsUnderClientSpans: when the server's
// application is traced, a call without trace context (a database query)
// goes under the client span whose time matches it.
func TestSyscallPlacesTracedCallsUnderClientSpans(t *testing.T) {
	const trace = 5
	in := hop(100, "n1", "n2", -500, 10_500, 1, 2) // s-p 106 covers [-360, 10360]
	for i := range in {
		in[i].trace, in[i].prop = trace, 90 // the caller's client span, not here
	}
	in[5].sysReq, in[5].sysResp = 500, 502
	calls := []net{
		{id: 20, obs: "c-p", agent: "n2", start: 1000, end: 2000, sysReq: 500, sysResp: 501, tcpReq: 30, tcpResp: 31},
		{id: 21, obs: "c-p", agent: "n2", start: 3000, end: 4000, sysReq: 501, sysResp: 502, tcpReq: 40, tcpResp: 41},
	}
	srv := app{id: 1, parent: 90, trace: trace, kind: ptrace.SpanKindServer, start: 0, end: 10_000, service: "b"}
	q1 := app{id: 2, parent: 1, trace: trace, kind: ptrace.SpanKindClient, start: 950, end: 2050, service: "b"}
	q2 := app{id: 3, parent: 1, trace: trace, kind: ptrace.SpanKindClient, start: 2950, end: 4050, service: "b"}
	o, _ := stitchAll(t, testOptions(), append(tracers(append(in, calls...)...), srv, q1, q2)...)
	assert.Equal(t, uint64(106), o.parent(t, 1), "server span under its s-p")
	assert.Equal(t, uint64(2), o.parent(t, 20), "first query under its client span")
	assert.Equal(t, uint64(3), o.parent(t, 21))
	assert.Equal(t, vocab.LinkKeySyscall, o.key(t, 20))
	assert.Equal(t, tid(trace), o.trace(t, 20), "untraced calls join the trace")
}

// TestXRequestIDLinksThroughAGateway: the request a gateway sent upstream
// hangs under the request it received, by the X-Request-ID it added; the
// innermost covering capture wins, and a tie links nothing.
func TestXRequestIDLinksThroughAGateway(t *testing.T) {
	in := hop(100, "client", "gw", 0, 10_000, 1, 2)[3:] // s-nd, s, s-p of the gateway
	out := hop(200, "gw", "a", 1000, 9000, 3, 4)
	for i := range in {
		in[i].xr1 = "req-0001"
	}
	for i := range out {
		out[i].xr0 = "req-0001"
	}
	o, res := stitchAll(t, testOptions(), tracers(append(in, out...)...)...)
	assert.Equal(t, uint64(106), o.parent(t, 201))
	assert.Equal(t, vocab.LinkKeyXRequestID, o.key(t, 201))
	assert.Equal(t, o.trace(t, 104), o.trace(t, 206))
	assert.Equal(t, 1, res.Links[vocab.LinkKeyXRequestID])

	t.Run("tie", func(t *testing.T) {
		other := hop(300, "client", "gw", 0, 10_000, 5, 6)[3:]
		for i := range other {
			other[i].xr1 = "req-0001"
		}
		o, _ := stitchAll(t, testOptions(), tracers(append(append(in, other...), out...)...)...)
		assert.Equal(t, uint64(0), o.parent(t, 201))
	})
}

// TestOneWayRowsMergeIntoSessions: a response row is merged into the latest
// earlier request row of its flow with the next capture sequence; the
// session carries the response's attributes, the response row is not sent.
func TestOneWayRowsMergeIntoSessions(t *testing.T) {
	req := net{id: 1, obs: "s-p", agent: "n", start: 0, end: 0, tcpReq: 10, sysReq: 70, msg: "request", flow: 42, capReq: 7}
	resp := net{id: 2, obs: "s-p", agent: "n", start: 3000, end: 3000, tcpResp: 20, sysResp: 71, msg: "response", flow: 42, capResp: 8,
		attrs: map[string]string{"http.status_code": "503"}}
	stale := net{id: 3, obs: "s-p", agent: "n", start: -9000, end: -9000, tcpReq: 9, msg: "request", flow: 42, capReq: 3}
	nic := net{id: 4, obs: "s", agent: "n", start: -10, end: 3010, tcpReq: 10, tcpResp: 20}
	o, res := stitchAll(t, testOptions(), req, resp, stale, nic)

	assert.Equal(t, 1, res.Merged)
	_, sent := o[sid(2)]
	assert.False(t, sent, "the response row is merged, not sent")
	s := o.span(t, 1)
	assert.Equal(t, at(3000), s.EndTimestamp())
	v, _ := s.Attributes().Get("http.status_code")
	assert.Equal(t, "503", v.Str())
	v, _ = s.Attributes().Get(vocab.SessionResponseSpanID)
	assert.Equal(t, sid(2).String(), v.Str())
	v, _ = s.Attributes().Get(vocab.MessageType)
	assert.Equal(t, "session", v.Str())
	v, _ = s.Attributes().Get(vocab.TCPSeqResponse)
	assert.Equal(t, int64(20), v.Int())
	assert.Equal(t, uint64(4), o.parent(t, 1), "the session is chained as a whole")
	assert.Equal(t, uint64(0), o.parent(t, 3))
}

// TestApplicationTraceIDsAreNeverMerged: two captures that look like one
// request but carry different application trace ids stay apart.
func TestApplicationTraceIDsAreNeverMerged(t *testing.T) {
	h := hop(100, "n1", "n2", 0, 5000, 1, 2)
	for i := range h {
		h[i].trace, h[i].prop = 1, 77
	}
	h[4].trace = 2
	o, _ := stitchAll(t, testOptions(), tracers(h...)...)
	assert.Equal(t, tid(1), o.trace(t, 104))
	assert.Equal(t, tid(2), o.trace(t, 105))
	assert.NotEqual(t, uint64(104), o.parent(t, 105))
	assert.NotEqual(t, uint64(105), o.parent(t, 106))
}

// TestJoinOnlySpansAreLeftAlone: spans linked to nothing keep everything
// but a self-parent (DeepFlow's "no parent"), which is cleared.
func TestJoinOnlySpansAreLeftAlone(t *testing.T) {
	lone := app{id: 1, parent: 99, trace: 3, kind: ptrace.SpanKindServer, start: 0, end: 10, service: "x"}
	td := net{id: 5, obs: "s", agent: "n", start: 0, end: 10, tcpReq: 7}.traces()
	self := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	self.SetParentSpanID(self.SpanID())
	e := New(testOptions())
	e.Add(t0, lone.traces())
	e.Add(t0, td)
	o := collect(e.Flush(t0, true).Traces)
	s := o.span(t, 1)
	assert.Equal(t, sid(99), s.ParentSpanID())
	assert.Equal(t, tid(3), s.TraceID())
	assert.Equal(t, 1, s.Attributes().Len())
	assert.True(t, o.span(t, 5).ParentSpanID().IsEmpty())
}

// TestPinpointTraceIDJoinsPinpointSpans: an eBPF span that parsed a
// Pinpoint-TraceID header gets the trace id the pinpoint receiver derives
// from the transaction id.
func TestPinpointTraceIDJoinsPinpointSpans(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("telemetry.sdk.name", "deepflow")
	rs.Resource().Attributes().PutStr("df.capture_info.signal_source", "eBPF")
	rs.Resource().Attributes().PutStr("df.capture_info.observation_point", "Server Process")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetSpanID(sid(1))
	sp.SetTraceID(tid(12345))
	sp.Attributes().PutStr("df.span.native.trace_id", "front-1^1700000000000^42")
	f := Decode(rs.Resource().Attributes(), sp)
	// The pinpoint receiver's README: the first 16 bytes of SHA-256 of the
	// transaction id.
	sum := sha256.Sum256([]byte("front-1^1700000000000^42"))
	assert.Equal(t, hex.EncodeToString(sum[:16]), f.TraceID().String())
	assert.False(t, f.SyntheticTrace())
}

// TestLateSpanJoinsItsTrace: a capture that arrives after its request's
// group was sent still gets the trace id and hangs under the capture before
// it, marked late; with late joins off it does not.
func TestLateSpanJoinsItsTrace(t *testing.T) {
	h := hop(100, "n1", "n2", 0, 5000, 1111, 2222)
	late := h[4] // s
	early := append(append([]net{}, h[:4]...), h[5])
	for _, ttl := range []time.Duration{2 * time.Minute, 0} {
		opt := testOptions()
		opt.LateJoinTTL = ttl
		e := New(opt)
		for _, n := range early {
			e.Add(t0, n.traces())
		}
		first := collect(e.Flush(t0.Add(opt.Wait), false).Traces)
		require.Len(t, first, 5, "the group leaves after the wait")
		assert.Equal(t, uint64(104), first.parent(t, 106))
		e.Add(t0.Add(3*time.Second), late.traces())
		res := e.Flush(t0.Add(3*time.Second+opt.Wait), false)
		o := collect(res.Traces)
		if ttl == 0 {
			assert.Equal(t, uint64(0), o.parent(t, 105))
			assert.NotEqual(t, first.trace(t, 101), o.trace(t, 105))
			continue
		}
		assert.Equal(t, uint64(104), o.parent(t, 105))
		assert.Equal(t, first.trace(t, 101), o.trace(t, 105))
		v, ok := o.span(t, 105).Attributes().Get(vocab.LinkLate)
		require.True(t, ok)
		assert.True(t, v.Bool())
		assert.Equal(t, 1, res.LateJoins)
	}
}

// TestLateJoinMemoryExpires: keys are forgotten after one to two ttls.
func TestLateJoinMemoryExpires(t *testing.T) {
	opt := testOptions()
	opt.LateJoinTTL = time.Minute
	e := New(opt)
	e.Add(t0, net{id: 1, obs: "c", agent: "n", start: 0, end: 10, tcpReq: 5}.traces())
	e.Flush(t0.Add(opt.Wait), false)
	assert.Positive(t, e.LateKeys())
	e.Flush(t0.Add(opt.Wait+time.Minute), false)
	assert.Positive(t, e.LateKeys(), "kept at least one ttl")
	e.Flush(t0.Add(opt.Wait+2*time.Minute), false)
	assert.Zero(t, e.LateKeys(), "gone after two")
}

// TestWaitRestartsWithEachRelatedSpan: a group leaves wait after its last
// span, and after max_wait however busy.
func TestWaitRestartsWithEachRelatedSpan(t *testing.T) {
	opt := testOptions()
	opt.Wait, opt.MaxWait = 2*time.Second, 5*time.Second
	e := New(opt)
	h := hop(100, "n1", "n2", 0, 5000, 1, 2)
	e.Add(t0, h[0].traces())
	e.Add(t0.Add(1500*time.Millisecond), h[1].traces())
	assert.Zero(t, e.Flush(t0.Add(2500*time.Millisecond), false).Spans, "the second span restarted the wait")
	res := e.Flush(t0.Add(3500*time.Millisecond), false)
	assert.Equal(t, 2, res.Spans)
	assert.Equal(t, 1, res.Groups[ReasonWait])

	// A span of one trace every second: the group leaves max_wait after its
	// first span, with the spans it has by then.
	var sent []int
	for i := 0; i < 8; i++ {
		now := t0.Add(time.Duration(10+i) * time.Second)
		e.Add(now, app{id: uint64(300 + i), trace: 77, kind: ptrace.SpanKindInternal, service: "batch"}.traces())
		if res := e.Flush(now, false); res.Spans > 0 {
			assert.Equal(t, 1, res.Groups[ReasonMaxWait])
			sent = append(sent, res.Spans)
		}
	}
	assert.Equal(t, []int{6}, sent, "spans of 10s..15s left at 15s")
}

// TestPressureSendsOldestGroupsFirst: past max_spans the oldest groups
// leave at once, stitched as they are, and nothing is dropped.
func TestPressureSendsOldestGroupsFirst(t *testing.T) {
	opt := testOptions()
	opt.MaxSpans = 6
	e := New(opt)
	var sent []ptrace.Traces
	for r := 0; r < 3; r++ {
		for _, n := range hop(uint64(100*(r+1)), "n1", "n2", int64(r)*10_000, int64(r)*10_000+5000, int64(r+1), int64(r+10)) {
			if res := e.Add(t0.Add(time.Duration(r)*time.Second), n.traces()); res.Spans > 0 {
				assert.Equal(t, 1, res.Groups[ReasonPressure])
				assert.Equal(t, res.Spans, res.Evicted[LimitMaxSpans])
				sent = append(sent, res.Traces)
			}
		}
	}
	early := collect(sent...)
	assert.Len(t, early, 12, "each request left when the next began")
	assert.Equal(t, uint64(105), early.parent(t, 106), "stitched as far as it was")
	assert.Equal(t, uint64(205), early.parent(t, 206))
	n, _ := e.Buffered()
	assert.LessOrEqual(t, n, opt.MaxSpans)
	rest := collect(e.Flush(t0.Add(time.Hour), true).Traces)
	assert.Len(t, rest, 6)

	t.Run("max_bytes", func(t *testing.T) {
		opt := testOptions()
		opt.MaxBytes = 2000
		e := New(opt)
		total := 0
		for _, n := range hop(100, "n1", "n2", 0, 5000, 1, 2) {
			res := e.Add(t0, n.traces())
			total += res.Evicted[LimitMaxBytes]
		}
		_, b := e.Buffered()
		assert.LessOrEqual(t, b, opt.MaxBytes)
		assert.Positive(t, total)
	})
}

// TestBufferedBytesReturnToZero: the accounting adds up.
func TestBufferedBytesReturnToZero(t *testing.T) {
	e := New(testOptions())
	for _, n := range hop(100, "n1", "n2", 0, 5000, 1, 2) {
		e.Add(t0, n.traces())
	}
	n, b := e.Buffered()
	assert.Equal(t, 6, n)
	assert.Positive(t, b)
	e.Flush(t0, true)
	n, b = e.Buffered()
	assert.Zero(t, n)
	assert.Zero(t, b)
}

// TestOutputKeepsBatches: spans that came in one ResourceSpans leave in one.
func TestOutputKeepsBatches(t *testing.T) {
	// 6,000 traces: a flush big enough to be rebuilt by four goroutines,
	// whose runs all hold spans of the one resource.
	for _, procs := range []int{1, 4} {
		const n = 6000
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "a")
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("lib")
		for i := 1; i <= n; i++ {
			app{id: uint64(i), trace: uint64(i), kind: ptrace.SpanKindInternal, service: "a"}.traces().
				ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).CopyTo(ss.Spans().AppendEmpty())
		}
		e := New(testOptions())
		e.procs = procs
		e.Add(t0, td)
		res := e.Flush(t0, true)
		require.Equal(t, n, res.Spans)
		got := res.Traces
		require.Equal(t, 1, got.ResourceSpans().Len(), "procs %d", procs)
		assert.Equal(t, n, got.ResourceSpans().At(0).ScopeSpans().At(0).Spans().Len())
		assert.Equal(t, "lib", got.ResourceSpans().At(0).ScopeSpans().At(0).Scope().Name())
		assert.Equal(t, 1, got.ResourceSpans().At(0).Resource().Attributes().Len())
	}
}

// TestLateCallAndUpstreamRequest: a call arriving after its server span
// left goes under it by syscall id; a gateway's upstream request arriving
// after the inbound request left goes under it by X-Request-ID.
func TestLateCallAndUpstreamRequest(t *testing.T) {
	opt := testOptions()
	late := t0.Add(5 * time.Second)

	t.Run("syscall", func(t *testing.T) {
		spans := process([2]int64{1000, 2000}, [2]int64{3000, 4000})
		e := New(opt)
		e.Add(t0, spans[0].traces())
		e.Add(t0, spans[1].traces())
		first := collect(e.Flush(t0.Add(opt.Wait), false).Traces)
		require.Len(t, first, 2)
		e.Add(late, spans[2].traces()) // the second call: req id == first call's resp id
		res := e.Flush(late.Add(opt.Wait), false)
		o := collect(res.Traces)
		// The chain was incomplete when the server left: the first call's
		// response id was not remembered (only complete chains' are), so a
		// call continuing it is not placed.
		assert.Equal(t, uint64(0), o.parent(t, 21))

		e = New(opt)
		e.Add(t0, spans[0].traces())
		e.Add(t0, spans[2].traces())
		first = collect(e.Flush(t0.Add(opt.Wait), false).Traces)
		e.Add(late, spans[1].traces()) // the first call: its request id is the server's
		res = e.Flush(late.Add(opt.Wait), false)
		o = collect(res.Traces)
		assert.Equal(t, uint64(10), o.parent(t, 20))
		assert.Equal(t, vocab.LinkKeySyscall, o.key(t, 20))
		assert.Equal(t, first.trace(t, 10), o.trace(t, 20))
		assert.Equal(t, 1, res.LateJoins)
	})

	t.Run("x_request_id", func(t *testing.T) {
		in := hop(100, "client", "gw", 0, 10_000, 1, 2)[3:]
		for i := range in {
			in[i].xr1 = "req-0001"
		}
		out := hop(200, "gw", "a", 1000, 9000, 3, 4)[1] // the gateway's NIC capture of the upstream request
		out.xr0 = "req-0001"
		e := New(opt)
		for _, n := range in {
			e.Add(t0, n.traces())
		}
		first := collect(e.Flush(t0.Add(opt.Wait), false).Traces)
		require.Len(t, first, 3)
		e.Add(late, out.traces())
		o := collect(e.Flush(late.Add(opt.Wait), false).Traces)
		assert.Equal(t, uint64(106), o.parent(t, 202))
		assert.Equal(t, vocab.LinkKeyXRequestID, o.key(t, 202))
		assert.Equal(t, first.trace(t, 104), o.trace(t, 202))
	})
}

// TestSharedKeyChainsStayShort: a key thousands of held spans share (a
// constant X-Request-ID, unrelated requests) keeps a bounded chain, so that
// spans leaving do not walk all the others; every span still leaves.
func TestSharedKeyChainsStayShort(t *testing.T) {
	e := New(testOptions())
	const requests = 1500
	for i := 0; i < requests; i++ {
		nodes := hop(uint64(1000+10*i), "client", "gw", int64(i)*20_000, 5_000, int64(2*i+1), int64(2*i+2))[3:]
		for j := range nodes {
			nodes[j].xr1 = "constant-request-id"
			e.Add(t0, nodes[j].traces())
		}
	}
	longest := 0
	for _, head := range e.idx.all() {
		n := 0
		for node := head; node != 0 && n <= 2*maxChainWalk; n++ {
			node = e.at(node >> 3).chain[int(node&7)]
		}
		longest = max(longest, n)
	}
	assert.LessOrEqual(t, longest, maxChainWalk)
	n, _ := e.Buffered()
	assert.Equal(t, requests*3, n)
	e.Flush(t0, true)
	n, b := e.Buffered()
	assert.Zero(t, n)
	assert.Zero(t, b)
}

// TestMergedResponseKeepsEventsLinksAndChildren: the response row merged
// into a session is not sent, so its events and links move to the session,
// and a span whose parent it was goes under the session.
func TestMergedResponseKeepsEventsLinksAndChildren(t *testing.T) {
	req := net{id: 1, obs: "s-p", agent: "n", start: 0, end: 0, tcpReq: 10, sysReq: 70, msg: "request", flow: 42, capReq: 7, trace: 9, prop: 50}
	resp := net{id: 2, obs: "s-p", agent: "n", start: 3000, end: 3000, tcpResp: 20, sysResp: 71, msg: "response", flow: 42, capResp: 8, trace: 9, prop: 50}
	child := app{id: 5, parent: 2, trace: 9, kind: ptrace.SpanKindInternal, start: 3100, end: 3200, service: "s"}
	respTD := resp.traces()
	sp := respTD.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	ev := sp.Events().AppendEmpty()
	ev.SetName("exception")
	ev.SetTimestamp(at(3000))
	sp.SetDroppedEventsCount(2)
	ln := sp.Links().AppendEmpty()
	ln.SetTraceID(tid(77))
	ln.SetSpanID(sid(78))

	e := New(testOptions())
	e.Add(t0, req.traces())
	e.Add(t0, respTD)
	e.Add(t0, child.traces())
	res := e.Flush(t0.Add(time.Hour), true)
	o := collect(res.Traces)

	require.Equal(t, 1, res.Merged)
	_, sent := o[sid(2)]
	require.False(t, sent, "the response row is merged, not sent")
	s := o.span(t, 1)
	require.Equal(t, 1, s.Events().Len())
	assert.Equal(t, "exception", s.Events().At(0).Name())
	assert.Equal(t, at(3000), s.Events().At(0).Timestamp())
	assert.Equal(t, uint32(2), s.DroppedEventsCount())
	require.Equal(t, 1, s.Links().Len())
	assert.Equal(t, sid(78), s.Links().At(0).SpanID())
	assert.Equal(t, uint64(1), o.parent(t, 5), "the response row's child is under the session")
	v, ok := o.span(t, 5).Attributes().Get(vocab.LinkOriginalParentSpanID)
	require.True(t, ok)
	assert.Equal(t, sid(2).String(), v.Str())
}
