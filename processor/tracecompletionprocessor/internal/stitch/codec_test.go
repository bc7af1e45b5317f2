package stitch

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// richTraces uses every part of the OTLP span model.
func richTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	for r := 0; r < 2; r++ {
		rs := td.ResourceSpans().AppendEmpty()
		rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
		res := rs.Resource()
		res.SetDroppedAttributesCount(2)
		res.Attributes().PutStr("service.name", "checkout")
		res.Attributes().PutInt("process.pid", int64(1000+r))
		for sc := 0; sc < 2; sc++ {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.SetSchemaUrl("https://example.com/scope")
			ss.Scope().SetName("io.opentelemetry.http")
			ss.Scope().SetVersion("1.2.3")
			ss.Scope().Attributes().PutBool("scope.flag", true)
			ss.Scope().SetDroppedAttributesCount(1)
			for k := 0; k < 3; k++ {
				sp := ss.Spans().AppendEmpty()
				sp.SetTraceID(tid(42))
				sp.SetSpanID(sid(uint64(100*r + 10*sc + k + 1)))
				if k > 0 {
					sp.SetParentSpanID(sid(uint64(100*r + 10*sc + 1)))
				}
				sp.SetName("GET /cart/" + strings.Repeat("x", 200*k)) // long names stay literal
				sp.SetKind(ptrace.SpanKind(k + 1))
				sp.SetStartTimestamp(at(int64(k)))
				sp.SetEndTimestamp(at(int64(k) + 900))
				sp.TraceState().FromRaw("vendor=value,other=1")
				sp.SetFlags(0x101)
				sp.Status().SetCode(ptrace.StatusCodeError)
				sp.Status().SetMessage("boom")
				sp.SetDroppedAttributesCount(3)
				sp.SetDroppedEventsCount(4)
				sp.SetDroppedLinksCount(5)
				a := sp.Attributes()
				a.PutStr("str", "value")
				a.PutStr("empty", "")
				a.PutInt("int", -1234567890123)
				a.PutDouble("double", 3.14159)
				a.PutBool("true", true)
				a.PutBool("false", false)
				a.PutEmptyBytes("bytes").FromRaw([]byte{0, 1, 2, 255})
				a.PutEmpty("nil")
				sl := a.PutEmptySlice("slice")
				sl.AppendEmpty().SetStr("a")
				sl.AppendEmpty().SetInt(7)
				sl.AppendEmpty().SetEmptyMap().PutStr("in", "map")
				m := a.PutEmptyMap("map")
				m.PutDouble("d", -0.5)
				m.PutEmptySlice("s").AppendEmpty().SetBool(true)
				ev := sp.Events().AppendEmpty()
				ev.SetTimestamp(at(int64(k) + 50))
				ev.SetName("exception")
				ev.Attributes().PutStr("exception.type", "java.io.IOException")
				ev.SetDroppedAttributesCount(1)
				before := sp.Events().AppendEmpty() // an event before the span
				before.SetTimestamp(at(int64(k) - 5))
				ln := sp.Links().AppendEmpty()
				ln.SetTraceID(tid(7))
				ln.SetSpanID(sid(8))
				ln.TraceState().FromRaw("k=v")
				ln.SetFlags(1)
				ln.Attributes().PutStr("link", "attr")
				ln.SetDroppedAttributesCount(2)
			}
		}
	}
	return td
}

// spanView is one span with its resource and scope, as JSON, for
// comparison regardless of how spans are batched.
func spanViews(t *testing.T, td ptrace.Traces) []string {
	t.Helper()
	var views []string
	var m ptrace.JSONMarshaler
	for i := 0; i < td.ResourceSpans().Len(); i++ {
		rs := td.ResourceSpans().At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			for k := 0; k < ss.Spans().Len(); k++ {
				one := ptrace.NewTraces()
				ors := one.ResourceSpans().AppendEmpty()
				rs.Resource().CopyTo(ors.Resource())
				ors.SetSchemaUrl(rs.SchemaUrl())
				oss := ors.ScopeSpans().AppendEmpty()
				ss.Scope().CopyTo(oss.Scope())
				oss.SetSchemaUrl(ss.SchemaUrl())
				ss.Spans().At(k).CopyTo(oss.Spans().AppendEmpty())
				b, err := m.MarshalTraces(one)
				require.NoError(t, err)
				views = append(views, string(b))
			}
		}
	}
	slices.Sort(views)
	return views
}

// TestSpansComeOutAsTheyWentIn: holding a span in its compact form loses
// nothing; spans nothing links come out exactly as they went in.
func TestSpansComeOutAsTheyWentIn(t *testing.T) {
	in := richTraces()
	e := New(testOptions())
	// Twice, so that the second batch finds its strings in the dictionary.
	e.Add(t0, in)
	res := e.Flush(t0, true)
	assert.Equal(t, spanViews(t, in), spanViews(t, res.Traces))
	e.Add(t0, in)
	res = e.Flush(t0, true)
	assert.Equal(t, spanViews(t, in), spanViews(t, res.Traces))
	assert.Equal(t, 4, res.Traces.ResourceSpans().Len(), "one ResourceSpans per resource x scope")
}

// TestDictionaryRollsOver: a full dictionary is replaced; spans encoded
// with the old one still decode.
func TestDictionaryRollsOver(t *testing.T) {
	e := New(testOptions())
	mk := func(i int) ptrace.Traces {
		td := app{id: uint64(i + 1), trace: uint64(i + 1), kind: ptrace.SpanKindServer, service: "s"}.traces()
		a := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
		for k := 0; k < 64; k++ { // unique keys are interned at once
			a.PutStr("key."+strconv.Itoa(i)+"."+strconv.Itoa(k), "v")
		}
		return td
	}
	first := e.dicts[0]
	var want []string
	for i := 0; i < dictCap/64+2; i++ {
		td := mk(i)
		want = append(want, spanViews(t, td)...)
		e.Add(t0, td)
	}
	assert.NotSame(t, first, e.dicts[0], "a new dictionary started")
	got := spanViews(t, e.Flush(t0.Add(time.Hour), true).Traces)
	slices.Sort(want)
	assert.Equal(t, want, got)
}

// FuzzCodecDecoder: whatever bytes a blob holds, decoding never panics or
// allocates without bound.
func FuzzCodecDecoder(f *testing.F) {
	d := newDict()
	d.mu.Lock()
	enc := encoder{d: d}
	td := richTraces()
	rs := td.ResourceSpans().At(0)
	enc.resScope(rs, rs.ScopeSpans().At(0), nil)
	f.Add(append([]byte(nil), enc.buf...), true)
	enc.buf = enc.buf[:0]
	enc.span(rs.ScopeSpans().At(0).Spans().At(1), nil)
	f.Add(append([]byte(nil), enc.buf...), false)
	d.publish()
	d.mu.Unlock()
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, false)
	strs := d.snapshot()
	f.Fuzz(func(t *testing.T, b []byte, res bool) {
		dec := decoder{b: b, strs: strs}
		if res {
			rs := ptrace.NewResourceSpans()
			dec.resScope(rs, rs.ScopeSpans().AppendEmpty())
			return
		}
		var fl fields
		dec.span(ptrace.NewSpan(), &fl)
	})
}

// TestHeldBytesCountInternedKeys: attribute keys (of map values too) are
// interned at once, so a span with unique keys pins far more dictionary
// than its blob; max_bytes must see that memory, and give it back when the
// spans leave.
func TestHeldBytesCountInternedKeys(t *testing.T) {
	e := New(testOptions())
	mk := func(i int) (ptrace.Traces, int) {
		td := app{id: uint64(i + 1), trace: uint64(i + 1), kind: ptrace.SpanKindServer, service: "s"}.traces()
		a := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
		nested := a.PutEmptyMap("nested")
		n := 0
		for k := 0; k < 20; k++ {
			key := "custom.attribute.with.a.long.name." + strconv.Itoa(i) + "." + strconv.Itoa(k)
			a.PutInt(key, 1)
			nk := "nested." + key
			nested.PutInt(nk, 1)
			n += len(key) + len(nk)
		}
		return td, n
	}
	td, _ := mk(0)
	e.Add(t0, td)
	_, first := e.Buffered()
	keyBytes := 0
	for i := 1; i < 200; i++ {
		td, n := mk(i)
		keyBytes += n
		e.Add(t0, td)
	}
	_, held := e.Buffered()
	assert.GreaterOrEqual(t, held-first, int64(keyBytes), "held bytes grow at least with the interned keys")
	e.Flush(t0.Add(time.Hour), true)
	_, held = e.Buffered()
	assert.Zero(t, held, "a dictionary no held span uses is not counted")
}

// TestCorruptEncodingsAreReported: a held span whose encoding does not
// decode still leaves, and the result says so.
func TestCorruptEncodingsAreReported(t *testing.T) {
	e := New(testOptions())
	e.Add(t0, app{id: 1, trace: 1, kind: ptrace.SpanKindServer, service: "s"}.traces())
	e.Add(t0, app{id: 2, parent: 1, trace: 1, kind: ptrace.SpanKindClient, service: "s"}.traces())
	e.mu.Lock()
	e.at(1).blob = []byte{0xff} // a truncated varint
	e.mu.Unlock()
	res := e.Flush(t0.Add(time.Hour), true)
	assert.Equal(t, 2, res.Spans)
	assert.Equal(t, 1, res.Corrupt)
}
