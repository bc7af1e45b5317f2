package translate

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/types/known/wrapperspb"

	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// names is a static Names for tests.
type names struct {
	apis    map[int32]string
	sqls    map[int32]string
	strings map[int32]string
}

func (n names) API(id int32) (API, bool) {
	s, ok := n.apis[id]
	return API{Info: s}, ok
}
func (n names) SQL(id int32) (string, bool)     { s, ok := n.sqls[id]; return s, ok }
func (n names) SQLUID([]byte) (string, bool)    { return "", false }
func (n names) String(id int32) (string, bool)  { s, ok := n.strings[id]; return s, ok }
func (n names) with(id int32, api string) names { n.apis[id] = api; return n }

func javaNames() names {
	return names{
		apis: map[int32]string{
			1: "org.apache.catalina.core.StandardHostValve.invoke(Request request, Response response)",
			2: "com.shop.CartController.get(String id)",
			3: "com.shop.CartService.load(String id)",
			4: "com.mysql.jdbc.PreparedStatement.executeQuery()",
			5: "org.apache.http.impl.client.CloseableHttpClient.execute(HttpUriRequest request)",
			6: "com.shop.CartService.price(Cart cart)",
			7: "java.util.concurrent.Executor.execute(Runnable r)",
			8: "com.shop.Audit.run()",
		},
		sqls:    map[int32]string{11: "SELECT * FROM carts WHERE id = ?"},
		strings: map[int32]string{21: "java.lang.IllegalStateException"},
	}
}

var tx = &v1.PTransactionId{AgentId: "front-1", AgentStartTime: 1763700000000, Sequence: 42}

const t0 = int64(1763700100000)

func ev(seq, depth, startElapsed, endElapsed, serviceType, apiID int32) *v1.PSpanEvent {
	return &v1.PSpanEvent{Sequence: seq, Depth: depth, StartElapsed: startElapsed, EndElapsed: endElapsed, ServiceType: serviceType, ApiId: apiID}
}

func str(key int32, s string) *v1.PAnnotation {
	return &v1.PAnnotation{Key: key, Value: &v1.PAnnotationValue{Field: &v1.PAnnotationValue_StringValue{StringValue: s}}}
}

func integer(key, n int32) *v1.PAnnotation {
	return &v1.PAnnotation{Key: key, Value: &v1.PAnnotationValue{Field: &v1.PAnnotationValue_IntValue{IntValue: n}}}
}

func next(spanID int64, dest string) *v1.PNextEvent {
	return &v1.PNextEvent{Field: &v1.PNextEvent_MessageEvent{MessageEvent: &v1.PMessageEvent{NextSpanId: spanID, DestinationId: dest}}}
}

func translateAll(t *testing.T, n Names, bundles ...Bundle) (ptrace.SpanSlice, Result) {
	t.Helper()
	spans := ptrace.NewSpanSlice()
	tr := NewTranslator(Options{})
	var total Result
	for _, b := range bundles {
		r, err := tr.Translate(spans, "header-agent", b, n)
		require.NoError(t, err)
		total.Spans += r.Spans
		total.Unresolved += r.Unresolved
		total.Duplicates += r.Duplicates
	}
	require.Equal(t, spans.Len(), total.Spans)
	return spans, total
}

// render draws spans as a tree (children under parents, in start order) with
// kind, times relative to t0, status and attributes: the golden form.
func render(spans ptrace.SpanSlice) string {
	byID := map[pcommon.SpanID]int{}
	children := map[pcommon.SpanID][]int{}
	traces := map[pcommon.TraceID]bool{}
	for i := 0; i < spans.Len(); i++ {
		byID[spans.At(i).SpanID()] = i
		traces[spans.At(i).TraceID()] = true
	}
	var roots []int
	for i := 0; i < spans.Len(); i++ {
		p := spans.At(i).ParentSpanID()
		if _, ok := byID[p]; ok {
			children[p] = append(children[p], i)
		} else {
			roots = append(roots, i)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "traces: %d, spans: %d\n", len(traces), spans.Len())
	var walk func(list []int, indent string)
	walk = func(list []int, indent string) {
		sort.SliceStable(list, func(a, c int) bool {
			return spans.At(list[a]).StartTimestamp() < spans.At(list[c]).StartTimestamp()
		})
		for _, i := range list {
			s := spans.At(i)
			parent := "root"
			if !s.ParentSpanID().IsEmpty() {
				parent = "parent missing"
				if _, ok := byID[s.ParentSpanID()]; ok {
					parent = ""
				}
			}
			fmt.Fprintf(&b, "%s%s [%s] +%dms..+%dms", indent, s.Name(), s.Kind(),
				int64(s.StartTimestamp())/1e6-t0, int64(s.EndTimestamp())/1e6-t0)
			if parent != "" {
				fmt.Fprintf(&b, " (%s)", parent)
			}
			if s.Status().Code() != ptrace.StatusCodeUnset {
				fmt.Fprintf(&b, " status=%s", s.Status().Code())
			}
			b.WriteString("\n")
			keys := make([]string, 0, s.Attributes().Len())
			s.Attributes().Range(func(k string, _ pcommon.Value) bool { keys = append(keys, k); return true })
			sort.Strings(keys)
			for _, k := range keys {
				v, _ := s.Attributes().Get(k)
				fmt.Fprintf(&b, "%s    %s=%s\n", indent, k, v.AsString())
			}
			for j := 0; j < s.Events().Len(); j++ {
				e := s.Events().At(j)
				fmt.Fprintf(&b, "%s    event %s %v\n", indent, e.Name(), e.Attributes().AsRaw())
			}
			walk(children[s.SpanID()], indent+"  ")
		}
	}
	walk(roots, "")
	return b.String()
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), got)
}

// A Java span: depths compressed (0 = same as the previous event), a DB
// call with SQL from metadata, an HTTP client call to another span, an
// exception.
func TestJavaCompressedDepth(t *testing.T) {
	db := ev(3, 0, 1, 4, 2101, 4) // depth 0: same as seq 2 -> 3
	db.Annotation = []*v1.PAnnotation{{Key: annSQLID, Value: &v1.PAnnotationValue{Field: &v1.PAnnotationValue_IntStringStringValue{
		IntStringStringValue: &v1.PIntStringStringValue{IntValue: 11, StringValue1: wrapperspb.String("42"), StringValue2: wrapperspb.String("'c-1'")}}}}}
	db.NextEvent = &v1.PNextEvent{Field: &v1.PNextEvent_MessageEvent{MessageEvent: &v1.PMessageEvent{NextSpanId: -1, EndPoint: "mysql-0:3306", DestinationId: "shop"}}}
	httpCall := ev(5, 3, 6, 20, 9052, 5)
	httpCall.NextEvent = next(777, "pricing:8080")
	httpCall.Annotation = []*v1.PAnnotation{str(annHTTPURL, "http://pricing:8080/price?cart=c-1"), integer(annHTTPStatus, 503)}
	failing := ev(6, 1, 25, 2, 5000, 6)
	failing.ExceptionInfo = &v1.PIntStringValue{IntValue: 21, StringValue: wrapperspb.String("cart is empty")}

	span := &v1.PSpan{
		Version: 1, TransactionId: tx, SpanId: 1001, ParentSpanId: -1, StartTime: t0, Elapsed: 50,
		ApiId: 1, ServiceType: 1010, Err: 1,
		AcceptEvent: &v1.PAcceptEvent{Rpc: "/cart/c-1", EndPoint: "front:8080", RemoteAddr: "10.0.0.9"},
		Annotation:  []*v1.PAnnotation{str(annHTTPMethod, "GET"), integer(annHTTPStatus, 500)},
		SpanEvent: []*v1.PSpanEvent{
			ev(0, 1, 0, 48, 1011, 1),
			ev(1, 2, 1, 40, 5050, 2),
			ev(2, 3, 0, 10, 5000, 3),
			db,
			ev(4, 2, 0, 1, 5000, 6), // real depth again: under seq 1
			httpCall,
			failing,
		},
	}
	spans, r := translateAll(t, javaNames(), Bundle{Span: span})
	assert.Equal(t, Result{Spans: 8}, r)
	golden(t, "java_compressed_depth", render(spans))
}

// The Node agent's real shape for front -> back over HTTP (see
// docs/pinpoint-node-agent.md): front's async chunk arrives before front's
// span, the link to back sits in the chunk, back's span arrives first of all
// in a message of its own.
func TestNodeChunkBeforeSpanAndNextSpanID(t *testing.T) {
	n := names{apis: map[int32]string{1: "Node Server Process", 2: "Asynchronous Invocation"}}
	const frontSpan, backSpan = 4242, 9191
	back := &v1.PSpan{
		Version: 1, TransactionId: &v1.PTransactionId{AgentId: "front", AgentStartTime: 1763700000000, Sequence: 3},
		SpanId: backSpan, ParentSpanId: frontSpan, StartTime: t0 + 5, Elapsed: 3, ApiId: 1, ServiceType: 1400,
		AcceptEvent: &v1.PAcceptEvent{Rpc: "/hello", EndPoint: "127.0.0.1:40002", RemoteAddr: "127.0.0.1",
			ParentInfo: &v1.PParentInfo{ParentApplicationName: "front", ParentApplicationType: 1400, AcceptorHost: "127.0.0.1:40002"}},
		Annotation: []*v1.PAnnotation{integer(annHTTPStatus, 200)},
	}
	client := ev(1, 2, 1, 8, 9056, 0)
	client.Annotation = []*v1.PAnnotation{str(annAPI, "GET"), str(annHTTPURL, "127.0.0.1:40002/hello"), integer(annHTTPStatus, 200)}
	client.NextEvent = &v1.PNextEvent{Field: &v1.PNextEvent_MessageEvent{MessageEvent: &v1.PMessageEvent{
		NextSpanId: backSpan, EndPoint: "127.0.0.1:40001", DestinationId: "127.0.0.1:40002"}}}
	chunk := &v1.PSpanChunk{
		Version: 1, TransactionId: &v1.PTransactionId{AgentStartTime: 1763700000000, Sequence: 3}, // agent id left out
		SpanId: frontSpan, KeyTime: t0 + 2, ApplicationServiceType: 1400,
		LocalAsyncId: &v1.PLocalAsyncId{AsyncId: 7}, // sequence 0: absent on the wire
		SpanEvent:    []*v1.PSpanEvent{ev(0, 1, 0, 10, serviceTypeAsync, 2), client},
	}
	wrapper := ev(0, 1, 1, 1, serviceTypeAsyncHTTPClientInternal, 0)
	wrapper.Annotation = []*v1.PAnnotation{str(annAPI, "http.request")}
	wrapper.AsyncEvent = 7
	wrapper.NextEvent = next(-1, "")
	front := &v1.PSpan{
		Version: 1, TransactionId: &v1.PTransactionId{AgentStartTime: 1763700000000, Sequence: 3},
		SpanId: frontSpan, ParentSpanId: -1, StartTime: t0, Elapsed: 15, ApiId: 1, ServiceType: 1400,
		AcceptEvent: &v1.PAcceptEvent{Rpc: "/call", EndPoint: "127.0.0.1:40001", RemoteAddr: "127.0.0.1", ParentInfo: &v1.PParentInfo{}},
		Annotation:  []*v1.PAnnotation{integer(annHTTPStatus, 200)},
		SpanEvent:   []*v1.PSpanEvent{wrapper},
	}

	// Back's own agent sends back's span; front's agent the chunk and the
	// span. The header agent id fills the transaction's missing agent id.
	spans := ptrace.NewSpanSlice()
	tr := NewTranslator(Options{})
	_, err := tr.Translate(spans, "back", Bundle{Span: back}, n)
	require.NoError(t, err)
	_, err = tr.Translate(spans, "front", Bundle{Span: front, Chunks: []*v1.PSpanChunk{chunk}}, n)
	require.NoError(t, err)
	golden(t, "node_front_back", render(spans))

	// The same spans converted with the chunk on its own (its span came
	// later, or never) get the same ids.
	alone := ptrace.NewSpanSlice()
	_, err = tr.Translate(alone, "back", Bundle{Span: back}, n)
	require.NoError(t, err)
	_, err = tr.Translate(alone, "front", Bundle{Chunks: []*v1.PSpanChunk{chunk}}, n)
	require.NoError(t, err)
	_, err = tr.Translate(alone, "front", Bundle{Span: front}, n)
	require.NoError(t, err)
	assert.Equal(t, render(spans), render(alone))
}

// Continuations of one async id (sequences 0, 1, 2) converted in any order,
// bundled or not, all hang under the event that started them.
func TestAsyncChunksUnderTheirEvent(t *testing.T) {
	n := javaNames()
	starter := ev(1, 2, 2, 1, 5000, 7)
	starter.AsyncEvent = 3
	span := &v1.PSpan{Version: 1, TransactionId: tx, SpanId: 55, ParentSpanId: -1, StartTime: t0, Elapsed: 10, ApiId: 2, ServiceType: 1010,
		SpanEvent: []*v1.PSpanEvent{ev(0, 1, 0, 9, 5000, 2), starter}}
	cont := func(seq int32, keyTime int64) *v1.PSpanChunk {
		return &v1.PSpanChunk{Version: 1, TransactionId: tx, SpanId: 55, KeyTime: keyTime,
			LocalAsyncId: &v1.PLocalAsyncId{AsyncId: 3, Sequence: seq},
			SpanEvent:    []*v1.PSpanEvent{ev(0, 1, 0, 5, serviceTypeAsync, 0), ev(1, 2, 1, 3, 5000, 8)}}
	}
	bundled, _ := translateAll(t, n, Bundle{Span: span, Chunks: []*v1.PSpanChunk{cont(2, t0+30), cont(0, t0+4), cont(1, t0+20)}})
	golden(t, "async_chunks", render(bundled))

	separate, _ := translateAll(t, n, Bundle{Chunks: []*v1.PSpanChunk{cont(1, t0+20)}}, Bundle{Span: span},
		Bundle{Chunks: []*v1.PSpanChunk{cont(2, t0+30)}}, Bundle{Chunks: []*v1.PSpanChunk{cont(0, t0+4)}})
	assert.Equal(t, render(bundled), render(separate))
}

// A chunk without an async id continues the span's own call stack (sent
// before the span when the stack overflowed the agent's buffer): its events
// find their parents among the span's.
func TestOverflowChunkContinuesTheStack(t *testing.T) {
	span := &v1.PSpan{Version: 1, TransactionId: tx, SpanId: 66, ParentSpanId: -1, StartTime: t0, Elapsed: 30, ApiId: 2, ServiceType: 1010,
		SpanEvent: []*v1.PSpanEvent{ev(0, 1, 0, 29, 5000, 2), ev(1, 2, 1, 20, 5000, 3), ev(4, 2, 18, 2, 5000, 6)}}
	overflow := &v1.PSpanChunk{Version: 1, TransactionId: tx, SpanId: 66, KeyTime: t0 + 2,
		SpanEvent: []*v1.PSpanEvent{ev(2, 3, 0, 5, 5000, 6), ev(3, 0, 6, 5, 5000, 6)}}
	spans, r := translateAll(t, javaNames(), Bundle{Span: span, Chunks: []*v1.PSpanChunk{overflow, overflow}})
	assert.Equal(t, 2, r.Duplicates, "the chunk sent twice adds nothing")
	golden(t, "overflow_chunk", render(spans))
}

// Names that have not arrived become placeholders, and are counted.
func TestUnresolvedNames(t *testing.T) {
	failing := ev(0, 1, 0, 3, 5000, 99)
	failing.ExceptionInfo = &v1.PIntStringValue{IntValue: 1234}
	span := &v1.PSpan{Version: 1, TransactionId: tx, SpanId: 77, ParentSpanId: -1, StartTime: t0, Elapsed: 5, ApiId: 98, ServiceType: 1000,
		SpanEvent: []*v1.PSpanEvent{failing}}
	b := Bundle{Span: span}
	n := javaNames()
	assert.Equal(t, 3, Unresolved(b, n))
	spans, r := translateAll(t, n, b)
	assert.Equal(t, 3, r.Unresolved)
	golden(t, "unresolved", render(spans))

	n = n.with(98, "com.shop.Batch.run()").with(99, "com.shop.Batch.step()")
	n.strings[1234] = "java.io.IOException"
	assert.Equal(t, 0, Unresolved(b, n))
	_, r = translateAll(t, n, b)
	assert.Equal(t, 0, r.Unresolved)
}

func TestRejects(t *testing.T) {
	tr := NewTranslator(Options{})
	spans := ptrace.NewSpanSlice()
	_, err := tr.Translate(spans, "a", Bundle{}, javaNames())
	assert.ErrorIs(t, err, ErrEmptyBundle)
	_, err = tr.Translate(spans, "a", Bundle{Span: &v1.PSpan{Version: 1}}, javaNames())
	assert.ErrorIs(t, err, ErrNoTransaction)
	_, err = tr.Translate(spans, "a", Bundle{Span: &v1.PSpan{Version: 2, TransactionId: tx}}, javaNames())
	assert.ErrorContains(t, err, "span version 2 is not supported")
	_, err = tr.Translate(spans, "", Bundle{Chunks: []*v1.PSpanChunk{{Version: 1, TransactionId: &v1.PTransactionId{Sequence: 1}}}}, javaNames())
	assert.ErrorIs(t, err, ErrNoTransaction, "no agent id in the transaction nor in the header")
	_, err = tr.Translate(spans, "a", Bundle{Span: &v1.PSpan{Version: 1, TransactionId: tx, SpanEvent: []*v1.PSpanEvent{ev(-1, 1, 0, 0, 0, 0)}}}, javaNames())
	assert.ErrorIs(t, err, ErrImpossibleEvent)
	assert.ErrorContains(t, err, "sequence -1 is negative")
	_, err = tr.Translate(spans, "a", Bundle{Chunks: []*v1.PSpanChunk{{Version: 1, TransactionId: tx, SpanEvent: []*v1.PSpanEvent{ev(0, -2, 0, 0, 0, 0)}}}}, javaNames())
	assert.ErrorContains(t, err, "depth -2 is out of range")
	assert.Equal(t, 0, spans.Len(), "nothing is appended for a rejected bundle")
}

func TestTraceIDIsTheTransaction(t *testing.T) {
	a := newIDs(Transaction{AgentID: "front", StartTime: 1, Sequence: 2})
	b := newIDs(Transaction{AgentID: "front", StartTime: 1, Sequence: 2})
	c := newIDs(Transaction{AgentID: "front", StartTime: 1, Sequence: 3})
	assert.Equal(t, a.trace, b.trace)
	assert.NotEqual(t, a.trace, c.trace)
	assert.Equal(t, "front^1^2", Transaction{AgentID: "front", StartTime: 1, Sequence: 2}.String())
}

func TestSplitHostPort(t *testing.T) {
	for in, want := range map[string]struct {
		host string
		port int64
		ok   bool
	}{
		"db:3306": {"db", 3306, true}, "10.0.0.1": {"10.0.0.1", 0, true}, "[::1]:80": {"::1", 80, true},
		"fe80::1": {"fe80::1", 0, true}, "": {"", 0, false}, "a:b": {"", 0, false}, "h/p": {"", 0, false},
		":80": {"", 0, false}, "h:99999": {"", 0, false},
	} {
		host, port, ok := splitHostPort(in)
		assert.Equal(t, want.ok, ok, in)
		if want.ok {
			assert.Equal(t, want.host, host, in)
			assert.Equal(t, want.port, port, in)
		}
	}
}
