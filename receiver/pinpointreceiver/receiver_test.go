package pinpointreceiver

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	imeta "github.com/weftobs/weft/receiver/pinpointreceiver/internal/metadata"
	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
)

type testReceiver struct {
	r       *pinpointReceiver
	traces  *consumertest.TracesSink
	metrics *consumertest.MetricsSink
	conns   map[string]*grpc.ClientConn
}

// startReceiver runs the receiver on loopback ports of its own, with sinks
// for both signals, and gRPC client connections to its three servers.
func startReceiver(t *testing.T, mutate func(*Config)) *testReceiver {
	t.Helper()
	return startReceiverWith(t, receivertest.NewNopSettings(imeta.Type), mutate)
}

// startReceiverWith is startReceiver with the receiver's settings (its
// telemetry, for tests of its metrics).
func startReceiverWith(t *testing.T, set receiver.Settings, mutate func(*Config)) *testReceiver {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Agent.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Stat.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Span.NetAddr.Endpoint = "127.0.0.1:0"
	if mutate != nil {
		mutate(cfg)
	}
	tr := &testReceiver{traces: new(consumertest.TracesSink), metrics: new(consumertest.MetricsSink), conns: map[string]*grpc.ClientConn{}}
	f := NewFactory()
	rt, err := f.CreateTraces(t.Context(), set, cfg, tr.traces)
	require.NoError(t, err)
	rm, err := f.CreateMetrics(t.Context(), set, cfg, tr.metrics)
	require.NoError(t, err)
	require.Same(t, rt, rm, "one receiver serves both signals")
	tr.r = rt.(*pinpointReceiver)
	require.NoError(t, rt.Start(t.Context(), componenttest.NewNopHost()))
	require.NoError(t, rm.Start(t.Context(), componenttest.NewNopHost()))
	t.Cleanup(func() {
		for _, c := range tr.conns {
			c.Close()
		}
		require.NoError(t, rt.Shutdown(context.Background()))
		require.NoError(t, rm.Shutdown(context.Background()))
	})
	for name, addr := range tr.r.addrs {
		conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		tr.conns[name] = conn
	}
	return tr
}

func agentCtx(t *testing.T, agentID, app string, start int64) context.Context {
	return metadata.AppendToOutgoingContext(t.Context(),
		"agentid", agentID, "applicationname", app, "starttime", strconv.FormatInt(start, 10))
}

const start = int64(1763700000000)

func javaSpan(seq int64, spanID int64) *v1.PSpan {
	return &v1.PSpan{
		Version: 1, TransactionId: &v1.PTransactionId{AgentId: "shop-1", AgentStartTime: start, Sequence: seq},
		SpanId: spanID, ParentSpanId: -1, StartTime: start + 1000, Elapsed: 20, ApiId: 1, ServiceType: 1010,
		AcceptEvent: &v1.PAcceptEvent{Rpc: "/cart", EndPoint: "shop:8080", RemoteAddr: "10.0.0.7"},
		SpanEvent: []*v1.PSpanEvent{
			{Sequence: 0, Depth: 1, EndElapsed: 19, ServiceType: 5000, ApiId: 2},
			{Sequence: 1, Depth: 2, StartElapsed: 1, EndElapsed: 5, ServiceType: 2101, ApiId: 3,
				Annotation: []*v1.PAnnotation{{Key: 20, Value: &v1.PAnnotationValue{Field: &v1.PAnnotationValue_IntStringStringValue{
					IntStringStringValue: &v1.PIntStringStringValue{IntValue: 7, StringValue1: wrapperspb.String("1")}}}}}},
		},
	}
}

func spanNames(td []ptrace.Traces) map[string]ptrace.Span {
	out := map[string]ptrace.Span{}
	for _, t := range td {
		for i := 0; i < t.ResourceSpans().Len(); i++ {
			ss := t.ResourceSpans().At(i).ScopeSpans()
			for j := 0; j < ss.Len(); j++ {
				for k := 0; k < ss.At(j).Spans().Len(); k++ {
					s := ss.At(j).Spans().At(k)
					out[s.Name()] = s
				}
			}
		}
	}
	return out
}

// The Java agent's way: agent info and metadata first, spans in batches.
func TestJavaAgentBatch(t *testing.T) {
	tr := startReceiver(t, nil)
	ctx := agentCtx(t, "shop-1", "shop", start)
	agent := v1.NewAgentClient(tr.conns["agent"])
	meta := v1.NewMetadataClient(tr.conns["agent"])

	res, err := agent.RequestAgentInfo(ctx, &v1.PAgentInfo{Hostname: "shop-host", Ip: "10.0.0.7", ServiceType: 1010, Pid: 4321, AgentVersion: "3.1.0", VmVersion: "21.0.2"})
	require.NoError(t, err)
	assert.True(t, res.GetSuccess())
	for id, name := range map[int32]string{1: "StandardHostValve.invoke()", 2: "CartController.get()", 3: "PreparedStatement.executeQuery()"} {
		_, err := meta.RequestApiMetaData(ctx, &v1.PApiMetaData{ApiId: id, ApiInfo: name})
		require.NoError(t, err)
	}
	_, err = meta.RequestSqlMetaData(ctx, &v1.PSqlMetaData{SqlId: 7, Sql: "SELECT * FROM cart WHERE id = ?"})
	require.NoError(t, err)

	span := v1.NewSpanClient(tr.conns["span"])
	out, err := span.SendSpanBatch(ctx, &v1.PSpanMessageBatch{Span: []*v1.PSpanMessage{
		{Field: &v1.PSpanMessage_Span{Span: javaSpan(1, 100)}},
		{Field: &v1.PSpanMessage_Span{Span: &v1.PSpan{Version: 7, TransactionId: &v1.PTransactionId{Sequence: 2}}}},
		{},
	}})
	require.NoError(t, err)
	assert.Equal(t, int64(2), out.GetPartialSuccess().GetRejectedSpans())
	assert.Contains(t, out.GetPartialSuccess().GetErrorMessage(), "span version 7 is not supported")

	require.Eventually(t, func() bool { return tr.traces.SpanCount() == 3 }, 10*time.Second, 10*time.Millisecond)
	spans := spanNames(tr.traces.AllTraces())
	require.Contains(t, spans, "/cart")
	db := spans["PreparedStatement.executeQuery()"]
	v, _ := db.Attributes().Get("db.query.text")
	assert.Equal(t, "SELECT * FROM cart WHERE id = ?", v.Str())

	res0 := tr.traces.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes()
	for k, want := range map[string]any{
		"service.name": "shop", "service.instance.id": "shop-1", "host.name": "shop-host",
		"process.pid": int64(4321), "telemetry.sdk.language": "java", "telemetry.sdk.version": "3.1.0",
		"process.runtime.version": "21.0.2", "host.ip": []any{"10.0.0.7"},
	} {
		got, ok := res0.Get(k)
		require.True(t, ok, k)
		assert.Equal(t, want, got.AsRaw(), k)
	}
}

// The Node and Go agents' way: one long stream; chunks before their span.
func TestStreamChunkBeforeSpan(t *testing.T) {
	tr := startReceiver(t, nil)
	ctx := agentCtx(t, "front", "front", start)
	stream, err := v1.NewSpanClient(tr.conns["span"]).SendSpan(ctx)
	require.NoError(t, err)
	txid := &v1.PTransactionId{AgentStartTime: start, Sequence: 9}
	require.NoError(t, stream.Send(&v1.PSpanMessage{Field: &v1.PSpanMessage_SpanChunk{SpanChunk: &v1.PSpanChunk{
		Version: 1, TransactionId: txid, SpanId: 5, KeyTime: start + 1002, LocalAsyncId: &v1.PLocalAsyncId{AsyncId: 1},
		SpanEvent: []*v1.PSpanEvent{{Depth: 1, ServiceType: 100, ApiId: 2}},
	}}}))
	// A bad message in between is skipped; the stream goes on.
	require.NoError(t, stream.Send(&v1.PSpanMessage{}))
	require.NoError(t, stream.Send(&v1.PSpanMessage{Field: &v1.PSpanMessage_Span{Span: &v1.PSpan{
		Version: 1, TransactionId: txid, SpanId: 5, ParentSpanId: -1, StartTime: start + 1000, Elapsed: 9, ApiId: 1, ServiceType: 1400,
		AcceptEvent: &v1.PAcceptEvent{Rpc: "/call"},
		SpanEvent:   []*v1.PSpanEvent{{Depth: 1, ServiceType: 9057, AsyncEvent: 1, Annotation: []*v1.PAnnotation{{Key: 12, Value: &v1.PAnnotationValue{Field: &v1.PAnnotationValue_StringValue{StringValue: "http.request"}}}}}},
	}}}))
	// Node's API ids 1 and 2 are known without metadata, once the agent
	// info says it is a Node agent.
	_, err = v1.NewAgentClient(tr.conns["agent"]).RequestAgentInfo(ctx, &v1.PAgentInfo{ServiceType: 1400})
	require.NoError(t, err)

	require.Eventually(t, func() bool { return tr.traces.SpanCount() == 3 }, 10*time.Second, 10*time.Millisecond)
	require.Len(t, tr.traces.AllTraces(), 1, "the chunk waited for its span and went out with it")
	spans := spanNames(tr.traces.AllTraces())
	require.Contains(t, spans, "Asynchronous Invocation")
	assert.Equal(t, spans["http.request"].SpanID(), spans["Asynchronous Invocation"].ParentSpanID())
	_, err = stream.CloseAndRecv()
	require.NoError(t, err)
}

// A span whose names never arrive goes out after metadata_wait with
// placeholders, and a chunk whose span never comes after chunk_wait.
func TestWaitsEnd(t *testing.T) {
	tr := startReceiver(t, func(c *Config) {
		c.MetadataWait = 200 * time.Millisecond
		c.ChunkWait = 300 * time.Millisecond
	})
	ctx := agentCtx(t, "lonely", "lonely", start)
	stream, err := v1.NewSpanClient(tr.conns["span"]).SendSpan(ctx)
	require.NoError(t, err)
	s := javaSpan(3, 300)
	s.TransactionId.AgentId = "lonely"
	require.NoError(t, stream.Send(&v1.PSpanMessage{Field: &v1.PSpanMessage_Span{Span: s}}))
	require.NoError(t, stream.Send(&v1.PSpanMessage{Field: &v1.PSpanMessage_SpanChunk{SpanChunk: &v1.PSpanChunk{
		Version: 1, TransactionId: s.TransactionId, SpanId: 301, KeyTime: start,
		SpanEvent: []*v1.PSpanEvent{{Depth: 1, ServiceType: 5000, ApiId: 0, Annotation: []*v1.PAnnotation{{Key: 12, Value: &v1.PAnnotationValue{Field: &v1.PAnnotationValue_StringValue{StringValue: "orphan"}}}}}},
	}}}))
	require.Eventually(t, func() bool { return tr.traces.SpanCount() == 4 }, 10*time.Second, 10*time.Millisecond)
	spans := spanNames(tr.traces.AllTraces())
	assert.Contains(t, spans, "unknown api 2")
	assert.Contains(t, spans, "orphan")
	v, _ := spans["unknown api 3"].Attributes().Get("db.query.text")
	assert.Equal(t, "unknown sql 7", v.Str())
}

// A name that arrives while its span waits is used.
func TestMetadataArrivesWhileSpanWaits(t *testing.T) {
	tr := startReceiver(t, func(c *Config) { c.MetadataWait = time.Minute })
	ctx := agentCtx(t, "shop-1", "shop", start)
	_, err := v1.NewSpanClient(tr.conns["span"]).SendSpanBatch(ctx, &v1.PSpanMessageBatch{Span: []*v1.PSpanMessage{
		{Field: &v1.PSpanMessage_Span{Span: javaSpan(4, 400)}}}})
	require.NoError(t, err)
	assert.Equal(t, 0, tr.traces.SpanCount(), "held back for its names")
	meta := v1.NewMetadataClient(tr.conns["agent"])
	for id, name := range map[int32]string{2: "a()", 3: "b()"} {
		_, err := meta.RequestApiMetaData(ctx, &v1.PApiMetaData{ApiId: id, ApiInfo: name})
		require.NoError(t, err)
	}
	assert.Equal(t, 0, tr.traces.SpanCount(), "the SQL is still missing")
	_, err = meta.RequestSqlMetaData(ctx, &v1.PSqlMetaData{SqlId: 7, Sql: "SELECT 1"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return tr.traces.SpanCount() == 3 }, 5*time.Second, 10*time.Millisecond)
	assert.Contains(t, spanNames(tr.traces.AllTraces()), "b()")
}

func TestHeadersRejected(t *testing.T) {
	tr := startReceiver(t, nil)
	bad := metadata.AppendToOutgoingContext(t.Context(), "agentid", "no spaces allowed", "starttime", "1")
	_, err := v1.NewAgentClient(tr.conns["agent"]).RequestAgentInfo(bad, &v1.PAgentInfo{})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "header agentid")

	stream, err := v1.NewSpanClient(tr.conns["span"]).SendSpan(metadata.AppendToOutgoingContext(t.Context(), "agentid", "a"))
	require.NoError(t, err)
	_, err = stream.CloseAndRecv()
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "missing header starttime")
}

// Stats become metrics; pings answer and report liveness.
func TestStatsAndPing(t *testing.T) {
	tr := startReceiver(t, nil)
	ctx := agentCtx(t, "front", "front", start)
	stats, err := v1.NewStatClient(tr.conns["stat"]).SendAgentStat(ctx)
	require.NoError(t, err)
	require.NoError(t, stats.Send(&v1.PStatMessage{Field: &v1.PStatMessage_AgentStat{AgentStat: &v1.PAgentStat{
		Timestamp: start + 5000, CollectInterval: 5000,
		Gc:      &v1.PJvmGc{JvmMemoryHeapUsed: 1 << 20, JvmMemoryHeapMax: 4 << 20},
		CpuLoad: &v1.PCpuLoad{JvmCpuLoad: 0.25},
	}}}))
	ping, err := v1.NewAgentClient(tr.conns["agent"]).PingSession(ctx)
	require.NoError(t, err)
	require.NoError(t, ping.Send(&v1.PPing{}))
	_, err = ping.Recv()
	require.NoError(t, err, "every ping is answered")
	require.NoError(t, ping.CloseSend())

	require.Eventually(t, func() bool {
		names := map[string]bool{}
		for _, md := range tr.metrics.AllMetrics() {
			rms := md.ResourceMetrics()
			for i := 0; i < rms.Len(); i++ {
				sms := rms.At(i).ScopeMetrics()
				for j := 0; j < sms.Len(); j++ {
					for k := 0; k < sms.At(j).Metrics().Len(); k++ {
						names[sms.At(j).Metrics().At(k).Name()] = true
					}
				}
			}
		}
		return names["pinpoint.memory.used"] && names["pinpoint.cpu.load"] && names["pinpoint.agent.alive"]
	}, 10*time.Second, 10*time.Millisecond)
	res := tr.metrics.AllMetrics()[0].ResourceMetrics().At(0).Resource()
	v, _ := res.Attributes().Get("service.instance.id")
	assert.Equal(t, "front", v.Str())
}

// Shutdown does not wait for agents to close the streams they hold open.
func TestShutdownWithOpenStreams(t *testing.T) {
	tr := startReceiver(t, nil)
	ctx := agentCtx(t, "front", "front", start)
	_, err := v1.NewSpanClient(tr.conns["span"]).SendSpan(ctx)
	require.NoError(t, err)
	ping, err := v1.NewAgentClient(tr.conns["agent"]).PingSession(ctx)
	require.NoError(t, err)
	require.NoError(t, ping.Send(&v1.PPing{}))
	_, err = ping.Recv()
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- tr.r.Shutdown(context.Background()) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown waits for open agent streams")
	}
}
