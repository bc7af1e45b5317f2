package openfalconreceiver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/rpc/jsonrpc"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/metadatatest"
)

// metricValue is falcon-agent's model.MetricValue, as its RPC client
// encodes it.
type metricValue struct {
	Endpoint  string      `json:"endpoint"`
	Metric    string      `json:"metric"`
	Value     interface{} `json:"value"`
	Step      int64       `json:"step"`
	Type      string      `json:"counterType"`
	Tags      string      `json:"tags"`
	Timestamp int64       `json:"timestamp"`
}

// transferResponse is falcon-agent's model.TransferResponse: no JSON tags,
// so the client reads capitalised keys.
type transferResponse struct {
	Message string
	Total   int
	Invalid int
	Latency int64
}

// simpleRPCResponse is Open-Falcon's model.SimpleRpcResponse.
type simpleRPCResponse struct {
	Code int `json:"code"`
}

type testReceiver struct {
	*falconReceiver
	tel *componenttest.Telemetry
}

func (r testReceiver) addr(l listener) string { return r.addrs[l].String() }

// start runs a receiver on free loopback ports, sending to next.
func start(t *testing.T, next consumer.Metrics, change func(*Config)) testReceiver {
	t.Helper()
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	cfg.TransferRPC.Endpoint = "127.0.0.1:0"
	cfg.TransferHTTP.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.AgentHTTP.NetAddr.Endpoint = "127.0.0.1:0"
	if change != nil {
		change(cfg)
	}
	require.NoError(t, cfg.Validate())
	r, err := newReceiver(cfg, metadatatest.NewSettings(tel), next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return testReceiver{r, tel}
}

// agentItems is a falcon-agent push of a host: a GAUGE, a COUNTER with a
// tag, a DERIVE with a numeric string, and two items transfer refuses.
func agentItems(ts int64) []*metricValue {
	return []*metricValue{
		{Endpoint: "10.0.5.10", Metric: "cpu.idle", Value: 97.5, Step: 60, Type: "GAUGE", Timestamp: ts},
		{Endpoint: "10.0.5.10", Metric: "net.if.in.bytes", Value: 123456789, Step: 60, Type: "COUNTER", Tags: "iface=eth0", Timestamp: ts},
		nil,
		{Endpoint: "10.0.5.10", Metric: "disk.io.read_requests", Value: "1000", Step: 60, Type: "DERIVE", Tags: "device=sda", Timestamp: ts},
		{Endpoint: "10.0.5.10", Metric: "mem.memfree", Value: 1, Step: 0, Type: "GAUGE", Timestamp: ts},
	}
}

// checkAgentMetrics checks what agentItems became.
func checkAgentMetrics(t *testing.T, md pmetric.Metrics, ts int64) {
	t.Helper()
	require.Equal(t, 1, md.ResourceMetrics().Len())
	rm := md.ResourceMetrics().At(0)
	assert.Equal(t, map[string]any{"host.name": "10.0.5.10", "host.ip": []any{"10.0.5.10"}}, rm.Resource().Attributes().AsRaw())
	ms := rm.ScopeMetrics().At(0).Metrics()
	require.Equal(t, 3, ms.Len())
	byName := map[string]pmetric.Metric{}
	for i := 0; i < ms.Len(); i++ {
		byName[ms.At(i).Name()] = ms.At(i)
	}
	tsNs := pcommon.Timestamp(ts * 1e9)

	cpu := byName["cpu.idle"]
	require.Equal(t, pmetric.MetricTypeGauge, cpu.Type())
	dp := cpu.Gauge().DataPoints().At(0)
	assert.Equal(t, 97.5, dp.DoubleValue())
	assert.Equal(t, tsNs, dp.Timestamp())
	assert.Equal(t, map[string]any{"falcon.step": int64(60)}, dp.Attributes().AsRaw())

	in := byName["net.if.in.bytes"]
	require.Equal(t, pmetric.MetricTypeSum, in.Type())
	assert.True(t, in.Sum().IsMonotonic())
	assert.Equal(t, pmetric.AggregationTemporalityCumulative, in.Sum().AggregationTemporality())
	dp = in.Sum().DataPoints().At(0)
	assert.Equal(t, 123456789.0, dp.DoubleValue())
	assert.Equal(t, tsNs, dp.StartTimestamp())
	assert.Equal(t, map[string]any{"iface": "eth0", "falcon.step": int64(60)}, dp.Attributes().AsRaw())

	io := byName["disk.io.read_requests"]
	require.Equal(t, pmetric.MetricTypeSum, io.Type())
	assert.False(t, io.Sum().IsMonotonic())
	assert.Equal(t, 1000.0, io.Sum().DataPoints().At(0).DoubleValue())
}

// TestTransferUpdate: falcon-agent's own client — Go's net/rpc with the
// JSON codec — pushes twice on one connection, as the agent does every step.
func TestTransferUpdate(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, nil)
	client, err := jsonrpc.Dial("tcp", r.addr(transferRPC))
	require.NoError(t, err)
	defer client.Close()

	ts := time.Now().Unix() - 5
	for i := range 2 {
		var resp transferResponse
		require.NoError(t, client.Call("Transfer.Update", agentItems(ts+int64(i)*60), &resp))
		assert.Equal(t, "ok", resp.Message)
		assert.Equal(t, 5, resp.Total, "Total counts the invalid items too")
		assert.Equal(t, 2, resp.Invalid)
		assert.GreaterOrEqual(t, resp.Latency, int64(0))
	}
	require.Len(t, sink.AllMetrics(), 2)
	checkAgentMetrics(t, sink.AllMetrics()[0], ts)
	second := sink.AllMetrics()[1].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for i := 0; i < second.Len(); i++ {
		if m := second.At(i); m.Name() == "net.if.in.bytes" {
			dp := m.Sum().DataPoints().At(0)
			assert.Equal(t, pcommon.Timestamp(ts*1e9), dp.StartTimestamp(), "the series keeps its start")
			assert.Equal(t, pcommon.Timestamp((ts+60)*1e9), dp.Timestamp())
		}
	}

	var pong simpleRPCResponse
	require.NoError(t, client.Call("Transfer.Ping", struct{}{}, &pong))
	assert.Equal(t, simpleRPCResponse{}, pong)

	err = client.Call("Transfer.Nothing", 1, &pong)
	require.ErrorContains(t, err, "rpc: can't find method Transfer.Nothing")
}

// rawCall writes one JSON-RPC request on conn and returns the reply line.
func rawCall(t *testing.T, conn net.Conn, rd *bufio.Reader, req string) string {
	t.Helper()
	_, err := io.WriteString(conn, req)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	line, err := rd.ReadString('\n')
	require.NoError(t, err)
	return line
}

// TestTransferReplyBytes: replies are byte for byte transfer's, the id
// echoed as sent, the result keys capitalised.
func TestTransferReplyBytes(t *testing.T) {
	r := start(t, consumertest.NewNop(), nil)
	conn, err := net.Dial("tcp", r.addr(transferRPC))
	require.NoError(t, err)
	defer conn.Close()
	rd := bufio.NewReader(conn)

	got := rawCall(t, conn, rd, `{"method":"Transfer.Update","params":[[{"endpoint":"h","metric":"m","value":1,"step":60,"counterType":"GAUGE"},{"endpoint":"h","metric":"m","value":1,"step":60,"counterType":"gauge"}]],"id":7}`)
	assert.Regexp(t, regexp.MustCompile(`^\{"id":7,"result":\{"Message":"ok","Total":2,"Invalid":1,"Latency":\d+\},"error":null\}\n$`), got)

	got = rawCall(t, conn, rd, `{"method":"Transfer.Ping","params":[null],"id":"p1"}`)
	assert.Equal(t, `{"id":"p1","result":{"code":0},"error":null}`+"\n", got)

	got = rawCall(t, conn, rd, `{"method":"Transfer.Update","params":[null],"id":9}`)
	assert.Regexp(t, regexp.MustCompile(`^\{"id":9,"result":\{"Message":"ok","Total":0,"Invalid":0,"Latency":\d+\},"error":null\}\n$`), got)

	// Params that are not an array of items: the call fails, with a reason,
	// and the connection stays usable.
	got = rawCall(t, conn, rd, `{"method":"Transfer.Update","params":[{"metric":"m"}],"id":10}`)
	assert.Equal(t, `{"id":10,"result":null,"error":"Transfer.Update params: a push must be a JSON array of metric items, got an object"}`+"\n", got)
	got = rawCall(t, conn, rd, `{"method":"Transfer.Ping","params":[{}],"id":11}`)
	assert.Equal(t, `{"id":11,"result":{"code":0},"error":null}`+"\n", got)

	metadatatest.AssertEqualReceiverOpenFalconRejectedRequests(t, r.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("listener", "transfer_rpc"), attribute.String("reason", "malformed"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualReceiverOpenFalconInvalidItems(t, r.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("listener", "transfer_rpc"), attribute.String("reason", "counter_type"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestTransferGarbage: a connection that does not speak JSON-RPC is closed,
// as transfer closes it; other connections are unaffected.
func TestTransferGarbage(t *testing.T) {
	r := start(t, consumertest.NewNop(), nil)
	conn, err := net.Dial("tcp", r.addr(transferRPC))
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "update web-01 cpu.idle 1732000000 97\n")
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.ReadAll(conn)
	require.NoError(t, err, "closed by the server, not timed out")

	client, err := jsonrpc.Dial("tcp", r.addr(transferRPC))
	require.NoError(t, err)
	defer client.Close()
	var resp transferResponse
	require.NoError(t, client.Call("Transfer.Update", agentItems(time.Now().Unix()), &resp))
	assert.Equal(t, 5, resp.Total)

	metadatatest.AssertEqualReceiverOpenFalconRejectedRequests(t, r.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("listener", "transfer_rpc"), attribute.String("reason", "malformed"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestTransferTooLarge: a request over max_request_size is not read into
// memory: the connection is closed and the refusal counted.
func TestTransferTooLarge(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, func(cfg *Config) { cfg.TransferRPC.MaxRequestSize = 4096 })

	client, err := jsonrpc.Dial("tcp", r.addr(transferRPC))
	require.NoError(t, err)
	defer client.Close()
	big := make([]*metricValue, 200)
	for i := range big {
		big[i] = &metricValue{Endpoint: "h", Metric: "m", Value: i, Step: 60, Type: "GAUGE"}
	}
	var resp transferResponse
	// The server closes the connection: the client sees EOF, or a reset
	// when it was still writing.
	require.Error(t, client.Call("Transfer.Update", big, &resp))
	assert.Empty(t, sink.AllMetrics())

	// Requests under the bound still pass, one after another on a
	// connection, though their sum is over it.
	client, err = jsonrpc.Dial("tcp", r.addr(transferRPC))
	require.NoError(t, err)
	defer client.Close()
	for range 5 {
		require.NoError(t, client.Call("Transfer.Update", big[:20], &resp))
		assert.Equal(t, 20, resp.Total)
	}
	metadatatest.AssertEqualReceiverOpenFalconRejectedRequests(t, r.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("listener", "transfer_rpc"), attribute.String("reason", "too_large"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestTransferPipelineRefuses: when the pipeline refuses, the call fails, so
// the agent sends to its next transfer instead of believing it delivered.
func TestTransferPipelineRefuses(t *testing.T) {
	r := start(t, consumertest.NewErr(errors.New("sending queue is full")), nil)
	client, err := jsonrpc.Dial("tcp", r.addr(transferRPC))
	require.NoError(t, err)
	defer client.Close()
	var resp transferResponse
	err = client.Call("Transfer.Update", agentItems(time.Now().Unix()), &resp)
	require.EqualError(t, err, "sending queue is full")

	// Only invalid items: nothing reaches the pipeline, so nothing fails.
	require.NoError(t, client.Call("Transfer.Update", []*metricValue{nil}, &resp))
	assert.Equal(t, transferResponse{Message: "ok", Total: 1, Invalid: 1, Latency: resp.Latency}, resp)
}

func post(t *testing.T, url, body string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b), resp.Header
}

const httpPush = `[{"endpoint":"10.0.5.10","metric":"cpu.idle","value":97.5,"step":60,"counterType":"GAUGE","tags":"","timestamp":%d},` +
	`{"endpoint":"10.0.5.10","metric":"net.if.in.bytes","value":123456789,"step":60,"counterType":"COUNTER","tags":"iface=eth0","timestamp":%d},` +
	`null,` +
	`{"endpoint":"10.0.5.10","metric":"disk.io.read_requests","value":"1000","step":60,"counterType":"DERIVE","tags":"device=sda","timestamp":%d},` +
	`{"endpoint":"10.0.5.10","metric":"mem.memfree","value":1,"step":0,"counterType":"GAUGE","timestamp":%d}]`

func httpBody(ts int64) string {
	return fmt.Sprintf(httpPush, ts, ts, ts, ts)
}

// TestTransferHTTP: POST /api/push answers exactly as transfer does.
func TestTransferHTTP(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, nil)
	url := "http://" + r.addr(transferHTTP) + "/api/push"
	ts := time.Now().Unix()

	status, body, header := post(t, url, httpBody(ts))
	assert.Equal(t, http.StatusOK, status)
	assert.Regexp(t, regexp.MustCompile(`^\{"msg":"success","data":\{"Message":"ok","Total":5,"Invalid":2,"Latency":\d+\}\}$`), body)
	assert.Equal(t, "application/json; charset=UTF-8", header.Get("Content-Type"))
	require.Len(t, sink.AllMetrics(), 1)
	checkAgentMetrics(t, sink.AllMetrics()[0], ts)

	// transfer's error replies.
	status, body, _ = post(t, url, "")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "blank body\n", body)
	status, body, _ = post(t, url, `[{"metric":`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "decode error\n", body)
	status, body, _ = post(t, url, `{"metric":"m"}`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "decode error\n", body)
	// As transfer's decoder, the first JSON value is read, the rest ignored.
	status, body, _ = post(t, url, `null trailing`)
	assert.Equal(t, http.StatusOK, status)
	assert.Regexp(t, `"Total":0,"Invalid":0`, body)

	resp, err := http.Get(url)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "a GET has no body")
	status, _, _ = post(t, "http://"+r.addr(transferHTTP)+"/v1/push", httpBody(ts))
	assert.Equal(t, http.StatusNotFound, status, "each listener has its own path")

	metadatatest.AssertEqualReceiverOpenFalconRejectedRequests(t, r.tel, []metricdata.DataPoint[int64]{
		{Value: 2, Attributes: attribute.NewSet(attribute.String("listener", "transfer_http"), attribute.String("reason", "blank_body"))},
		{Value: 2, Attributes: attribute.NewSet(attribute.String("listener", "transfer_http"), attribute.String("reason", "malformed"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualReceiverOpenFalconInvalidItems(t, r.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("listener", "transfer_http"), attribute.String("reason", "null"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("listener", "transfer_http"), attribute.String("reason", "step"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
	metadatatest.AssertEqualReceiverOpenFalconTrackedSeries(t, r.tel, []metricdata.DataPoint[int64]{{Value: 2}},
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestAgentHTTP: POST /v1/push answers exactly as falcon-agent does.
func TestAgentHTTP(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, nil)
	url := "http://" + r.addr(agentHTTP) + "/v1/push"
	ts := time.Now().Unix()

	status, body, _ := post(t, url, httpBody(ts))
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, "success", body)
	require.Len(t, sink.AllMetrics(), 1)
	checkAgentMetrics(t, sink.AllMetrics()[0], ts)

	status, body, _ = post(t, url, "")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "body is blank\n", body)
	status, body, _ = post(t, url, `[{"metric":}]`)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "connot decode body\n", body)

	metadatatest.AssertEqualReceiverOpenFalconInvalidItems(t, r.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("listener", "agent_http"), attribute.String("reason", "null"))},
		{Value: 1, Attributes: attribute.NewSet(attribute.String("listener", "agent_http"), attribute.String("reason", "step"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestHTTPLimitsAndPipeline: a body over max_request_body_size gets a 413
// naming the setting; a refusing pipeline a 503, or a 400 when retrying
// cannot help.
func TestHTTPLimitsAndPipeline(t *testing.T) {
	r := start(t, consumertest.NewNop(), func(cfg *Config) { cfg.AgentHTTP.MaxRequestBodySize = 1024 })
	big := "[" + strings.Repeat(`{"endpoint":"h","metric":"m","value":1,"step":60,"counterType":"GAUGE"},`, 100) + "null]"
	status, body, _ := post(t, "http://"+r.addr(agentHTTP)+"/v1/push", big)
	assert.Equal(t, http.StatusRequestEntityTooLarge, status)
	assert.Equal(t, "request body larger than 1024 bytes: send smaller batches or raise agent_http.max_request_body_size\n", body)
	status, _, _ = post(t, "http://"+r.addr(transferHTTP)+"/api/push", big)
	assert.Equal(t, http.StatusOK, status, "the other listener has the default bound")

	busy := start(t, consumertest.NewErr(errors.New("sending queue is full")), nil)
	status, body, _ = post(t, "http://"+busy.addr(agentHTTP)+"/v1/push", httpBody(time.Now().Unix()))
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, "the pipeline cannot take data now, send again later: sending queue is full\n", body)

	broken := start(t, consumertest.NewErr(consumererror.NewPermanent(errors.New("bad data"))), nil)
	status, body, _ = post(t, "http://"+broken.addr(transferHTTP)+"/api/push", httpBody(time.Now().Unix()))
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Equal(t, "the pipeline refused the data: Permanent error: bad data\n", body)
}

// TestListenersOff: an empty endpoint opens nothing.
func TestListenersOff(t *testing.T) {
	r := start(t, consumertest.NewNop(), func(cfg *Config) {
		cfg.TransferRPC.Endpoint = ""
		cfg.TransferHTTP.NetAddr.Endpoint = ""
	})
	assert.Len(t, r.addrs, 1)
	assert.Contains(t, r.addrs, agentHTTP)
}

// TestShutdownWithAgentConnected: agents never hang up; shutdown closes
// their connections rather than wait (goleak checks nothing is left).
func TestShutdownWithAgentConnected(t *testing.T) {
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	cfg := createDefaultConfig().(*Config)
	cfg.TransferRPC.Endpoint = "127.0.0.1:0"
	cfg.TransferHTTP.NetAddr.Endpoint = ""
	cfg.AgentHTTP.NetAddr.Endpoint = ""
	r, err := newReceiver(cfg, metadatatest.NewSettings(tel), consumertest.NewNop())
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	client, err := jsonrpc.Dial("tcp", r.addrs[transferRPC].String())
	require.NoError(t, err)
	defer client.Close()
	var resp transferResponse
	require.NoError(t, client.Call("Transfer.Update", agentItems(time.Now().Unix()), &resp))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, r.Shutdown(ctx))
	err = client.Call("Transfer.Update", agentItems(time.Now().Unix()), &resp)
	require.Error(t, err, "the connection is closed")
	_, err = net.Dial("tcp", r.addrs[transferRPC].String())
	require.Error(t, err, "the listener is closed")
}

// TestStartFailsOnBusyPort: a port in use fails Start with the listener's
// name, and Shutdown closes what was opened.
func TestStartFailsOnBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	tel := componenttest.NewTelemetry()
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	cfg := createDefaultConfig().(*Config)
	cfg.TransferRPC.Endpoint = "127.0.0.1:0"
	cfg.TransferHTTP.NetAddr.Endpoint = busy.Addr().String()
	cfg.AgentHTTP.NetAddr.Endpoint = ""
	r, err := newReceiver(cfg, metadatatest.NewSettings(tel), consumertest.NewNop())
	require.NoError(t, err)
	err = r.Start(context.Background(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "transfer_http: listening on "+busy.Addr().String())
	rpcAddr := r.addrs[transferRPC].String()
	require.NoError(t, r.Shutdown(context.Background()))
	_, err = net.Dial("tcp", rpcAddr)
	require.Error(t, err, "the RPC listener opened before the failure is closed")
}
