package stitch

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/internal/vocab"
	"github.com/weftobs/weft/processor/tracecompletionprocessor/groundtruth"
)

// fuzzKeys are the attribute names the decoder reads, plus a few it must
// leave alone.
var fuzzKeys = []string{
	dfObservationPoint, dfSignalSource, dfAgent, dfPID0, dfPID1, dfReqTCPSeq, dfRespTCPSeq, dfFlowID,
	dfL7Protocol, "telemetry.sdk.name", dfXRequestID, dfXRequestID0, dfXRequestID1, dfSyscallReq, dfSyscallResp, dfCapSeq0,
	dfCapSeq1, dfSpanReqTCPSeq, dfSpanRespTCPSeq, dfNativeTraceID, dfNativeSpanID, dfType, dfRequestID,
	vocab.SignalSource, vocab.ObservationPoint, vocab.ObserverID, vocab.ProcessID, vocab.SyscallTraceIDRequest,
	vocab.SyscallTraceIDResponse, vocab.SyscallCapSeqRequest, vocab.SyscallCapSeqResponse, vocab.TCPSeqRequest,
	vocab.TCPSeqResponse, vocab.XRequestID0, vocab.XRequestID1, vocab.PropagatedSpanID, vocab.TraceIDSynthetic,
	vocab.MessageType, vocab.FlowID, vocab.L7RequestID, vocab.L7Protocol,
	"http.method", "df.", "weft.", "w", "",
}

// fuzzStrings are values the decoder gives a meaning to.
var fuzzStrings = []string{
	"Client Process", "Server Process", "Server K8s Node", "Other NIC", "Client Application", "c-p", "s-nd",
	"eBPF", "Packet", "XFlow", "OTel", "ebpf", "deepflow", "request", "response", "session",
	"front-1^1700000000000^42", "0123456789abcdef", "00000000000000000000000000000001", "-", "null",
	"4294967296", "-1", "18446744073709551615", "12345", "",
}

// spanFromFuzz builds a resource and a span whose attributes the fuzzer
// chooses: each 3-byte group picks a map, a key and a value.
func spanFromFuzz(data []byte) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetSpanID(sid(7))
	sp.SetTraceID(tid(9))
	if len(data) > 0 && data[0]&1 == 1 {
		sp.SetParentSpanID(sid(7)) // DeepFlow's self-parent
	}
	sp.SetStartTimestamp(at(0))
	sp.SetEndTimestamp(at(100))
	for len(data) >= 3 {
		m := sp.Attributes()
		if data[0]&0x80 != 0 {
			m = rs.Resource().Attributes()
		}
		k := fuzzKeys[int(data[0]&0x7f)%len(fuzzKeys)]
		sel, arg := data[1], data[2]
		data = data[3:]
		switch sel % 6 {
		case 0:
			m.PutStr(k, fuzzStrings[int(arg)%len(fuzzStrings)])
		case 1:
			var n int64
			if len(data) >= 8 {
				n = int64(binary.LittleEndian.Uint64(data))
				data = data[8:]
			}
			m.PutInt(k, n)
		case 2:
			m.PutInt(k, int64(arg)-128)
		case 3:
			m.PutBool(k, arg&1 == 1)
		case 4:
			m.PutDouble(k, math.Float64frombits(uint64(arg)<<56))
		case 5:
			n := min(int(arg)%24, len(data))
			m.PutStr(k, string(data[:n]))
			data = data[n:]
		}
	}
	return td
}

// FuzzDecodeDeepFlow: DeepFlow's and Weft's correlation attributes, in any
// mix, type and value, never make decoding panic or produce out-of-range
// fields, and whatever goes into the engine comes out whole, once.
func FuzzDecodeDeepFlow(f *testing.F) {
	// Seeds: real DeepFlow rows and vocabulary rows from the simulation.
	for _, format := range []groundtruth.Format{groundtruth.DeepFlow, groundtruth.Vocabulary} {
		out := groundtruth.Generate(groundtruth.Config{Seed: 1, Requests: 1, OneWayRate: 0.5, Format: format})
		td := out.Batches[0].Traces
		for i := 0; i < min(td.ResourceSpans().Len(), 4); i++ {
			f.Add(seedFrom(td.ResourceSpans().At(i)))
		}
	}
	f.Add([]byte{0x80, 0, 0, 1, 5, 3, 0x81, 1, 0, 255, 255, 255, 255, 255, 255, 255, 255})
	f.Add([]byte{})

	opt := testOptions()
	f.Fuzz(func(t *testing.T, data []byte) {
		td := spanFromFuzz(data)
		rs := td.ResourceSpans().At(0)
		span := rs.ScopeSpans().At(0).Spans().At(0)
		x := Decode(rs.Resource().Attributes(), span)
		fl := x.f
		assert.Less(t, fl.obs, numObs)
		assert.LessOrEqual(t, fl.src, srcXFlow)
		if fl.src == srcApp {
			assert.True(t, fl.obs.isApp(), "application spans have application observation points")
			assert.Zero(t, fl.sysReq, "application spans have no syscall ids")
		}
		assert.LessOrEqual(t, fl.start, fl.end)
		if fl.flags&flagSelfParent != 0 {
			assert.NotEqual(t, fl.spanID, fl.propID, "a self-parent is not trace context")
		}
		assert.Equal(t, fl.oneWay != nil, fl.msg != msgSession)
		if fl.flags&flagTraceChanged != 0 {
			assert.False(t, fl.synthetic())
		}

		e := New(opt)
		e.Add(t0, td)
		res := e.Flush(t0, true)
		require.Equal(t, 1, res.Spans)
		got := res.Traces.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
		assert.Equal(t, span.SpanID(), got.SpanID())
		// Only what stitching may change differs: the trace id (Pinpoint),
		// a self-parent cleared.
		span.SetTraceID(got.TraceID())
		if fl.flags&flagSelfParent != 0 {
			span.SetParentSpanID(pcommon.SpanID{})
		}
		assert.Equal(t, spanViews(t, td), spanViews(t, res.Traces))
	})
}

// seedFrom turns a generated row back into the fuzzer's encoding, as far as
// its keys are known.
func seedFrom(rs ptrace.ResourceSpans) []byte {
	var b []byte
	add := func(res bool, k string, v pcommon.Value) {
		ki := -1
		for i, fk := range fuzzKeys {
			if fk == k {
				ki = i
			}
		}
		if ki < 0 {
			return
		}
		hi := byte(0)
		if res {
			hi = 0x80
		}
		switch v.Type() {
		case pcommon.ValueTypeInt:
			b = append(b, hi|byte(ki), 1, 0)
			b = binary.LittleEndian.AppendUint64(b, uint64(v.Int()))
		case pcommon.ValueTypeBool:
			b = append(b, hi|byte(ki), 3, map[bool]byte{true: 1, false: 0}[v.Bool()])
		default:
			s := v.AsString()
			if len(s) > 23 {
				s = s[:23]
			}
			b = append(b, hi|byte(ki), 5, byte(len(s)))
			b = append(b, s...)
		}
	}
	for k, v := range rs.Resource().Attributes().All() {
		add(true, k, v)
	}
	for k, v := range rs.ScopeSpans().At(0).Spans().At(0).Attributes().All() {
		add(false, k, v)
	}
	return b
}
