package openfalconreceiver

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/metadatatest"
)

// dialRPC opens a raw TCP connection to the RPC listener; every read on it
// gives up after 10 s, so a server that hangs fails the test.
func dialRPC(t *testing.T, r testReceiver) (*net.TCPConn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", r.addr(transferRPC))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	return conn.(*net.TCPConn), bufio.NewReaderSize(conn, 4<<20)
}

// rpcReply is a reply line, its id kept raw.
type rpcReply struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *string         `json:"error"`
}

// readReplies reads n reply lines, by id: net/rpc runs the calls of one
// connection concurrently, so replies come in any order.
func readReplies(t *testing.T, rd *bufio.Reader, n int) map[string]rpcReply {
	t.Helper()
	got := map[string]rpcReply{}
	for range n {
		line, err := rd.ReadString('\n')
		require.NoError(t, err)
		var rep rpcReply
		require.NoError(t, json.Unmarshal([]byte(line), &rep), line)
		got[string(rep.ID)] = rep
	}
	return got
}

// requireClosed checks the server closed the connection (EOF, or a reset
// when it closed with bytes unread), not that the read timed out.
func requireClosed(t *testing.T, rd *bufio.Reader) {
	t.Helper()
	_, err := io.ReadAll(rd)
	if ne, ok := err.(net.Error); ok {
		require.False(t, ne.Timeout(), "the server left the connection open")
	}
}

func updateRequest(id string, ts int64, items string) string {
	return fmt.Sprintf(`{"method":"Transfer.Update","params":[[%s]],"id":%s}`, strings.ReplaceAll(items, "TS", fmt.Sprint(ts)), id)
}

const rpcItems = `{"endpoint":"web-01","metric":"cpu.idle","value":97.5,"step":60,"counterType":"GAUGE","tags":"","timestamp":TS},` +
	`{"endpoint":"web-01","metric":"net.if.in.bytes","value":"123","step":60,"counterType":"COUNTER","tags":"iface=eth0","timestamp":TS}`

// TestTransferBackToBack: requests sent back to back in one write, with
// and without whitespace between them, are each answered.
func TestTransferBackToBack(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, nil)
	conn, rd := dialRPC(t, r)
	ts := time.Now().Unix()
	_, err := io.WriteString(conn, updateRequest("1", ts, rpcItems)+`{"method":"Transfer.Ping","params":[{}],"id":2}`+
		" \r\n\t"+updateRequest(`"three"`, ts+60, rpcItems)+"\n")
	require.NoError(t, err)
	got := readReplies(t, rd, 3)
	assert.Regexp(t, `^\{"Message":"ok","Total":2,"Invalid":0,"Latency":\d+\}$`, string(got["1"].Result))
	assert.JSONEq(t, `{"code":0}`, string(got["2"].Result))
	assert.Regexp(t, `^\{"Message":"ok","Total":2,"Invalid":0,"Latency":\d+\}$`, string(got[`"three"`].Result))
	assert.Equal(t, 4, sink.DataPointCount())
}

// TestTransferSplitWrites: a request trickling in small TCP segments is
// read whole.
func TestTransferSplitWrites(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, nil)
	conn, rd := dialRPC(t, r)
	require.NoError(t, conn.SetNoDelay(true))
	req := updateRequest("7", time.Now().Unix(), rpcItems) + "\n"
	for i := 0; i < len(req); i += 5 {
		_, err := io.WriteString(conn, req[i:min(i+5, len(req))])
		require.NoError(t, err)
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // let segments go out one by one
		}
	}
	got := readReplies(t, rd, 1)
	require.Contains(t, got, "7")
	assert.Nil(t, got["7"].Error)
	assert.Equal(t, 2, sink.DataPointCount())
}

// TestTransferRequestSizeBoundary: a request of exactly max_request_size
// bytes is served; one byte more closes the connection, counted too_large.
func TestTransferRequestSizeBoundary(t *testing.T) {
	const limit = 2048
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, func(cfg *Config) { cfg.TransferRPC.MaxRequestSize = limit })
	sized := func(size int, id string) string {
		head := `{"method":"Transfer.Update","params":[[{"endpoint":"h","metric":"m","value":1,"step":60,"counterType":"GAUGE","tags":"`
		tail := `"}]],"id":` + id + `}`
		return head + strings.Repeat("a", size-len(head)-len(tail)) + tail
	}
	require.Len(t, sized(limit, "1"), limit)

	conn, rd := dialRPC(t, r)
	_, err := io.WriteString(conn, sized(limit, "1")+"\n"+sized(limit, "2")+"\n")
	require.NoError(t, err)
	got := readReplies(t, rd, 2)
	assert.Nil(t, got["1"].Error)
	assert.Nil(t, got["2"].Error)

	_, err = io.WriteString(conn, sized(limit+1, "3"))
	require.NoError(t, err)
	requireClosed(t, rd)
	metadatatest.AssertEqualReceiverOpenFalconRejectedRequests(t, r.tel, []metricdata.DataPoint[int64]{
		{Value: 1, Attributes: attribute.NewSet(attribute.String("listener", "transfer_rpc"), attribute.String("reason", "too_large"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestTransferGarbageBytes: bytes that are not JSON-RPC close the
// connection as they come — the server does not wait for more — and are
// counted; a request before them is still answered.
func TestTransferGarbageBytes(t *testing.T) {
	r := start(t, consumertest.NewNop(), nil)
	for _, garbage := range []string{
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // a TLS hello
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		`{"method":"Transfer.Ping","params":[{}],"id":1]`,
		`{update web-01 cpu.idle`,
	} {
		conn, rd := dialRPC(t, r)
		_, err := io.WriteString(conn, `{"method":"Transfer.Ping","params":[{}],"id":0}`+garbage)
		require.NoError(t, err)
		got := readReplies(t, rd, 1)
		assert.Contains(t, got, "0")
		requireClosed(t, rd) // the client keeps its side open
	}
	metadatatest.AssertEqualReceiverOpenFalconRejectedRequests(t, r.tel, []metricdata.DataPoint[int64]{
		{Value: 4, Attributes: attribute.NewSet(attribute.String("listener", "transfer_rpc"), attribute.String("reason", "malformed"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestTransferHugeID: an id of a megabyte (any JSON, as net/rpc/jsonrpc
// takes) is echoed as sent.
func TestTransferHugeID(t *testing.T) {
	r := start(t, consumertest.NewNop(), nil)
	conn, rd := dialRPC(t, r)
	id := strings.Repeat("1234567890", 100_000)
	_, err := io.WriteString(conn, `{"method":"Transfer.Ping","params":[{}],"id":`+id+"}\n")
	require.NoError(t, err)
	line, err := rd.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, `{"id":`+id+`,"result":{"code":0},"error":null}`+"\n", line)
}

// TestTransferUnicodeEscapes: \u escapes, surrogate pairs included, are
// decoded in the method and the items; a lone surrogate becomes U+FFFD, as
// encoding/json makes it.
func TestTransferUnicodeEscapes(t *testing.T) {
	sink := new(consumertest.MetricsSink)
	r := start(t, sink, nil)
	conn, rd := dialRPC(t, r)
	ts := time.Now().Unix()
	_, err := io.WriteString(conn, fmt.Sprintf(`{"method":"Transfer\u002eUpdate","params":[[{"endpoint":"h\u00e9\ud83d\ude00",`+
		`"metric":"\u6e29\u5ea6","value":1,"step":60,"counterType":"GAUGE","tags":"k=\ud800","timestamp":%d}]],"id":"\u00e9<"}`+"\n", ts))
	require.NoError(t, err)
	line, err := rd.ReadString('\n')
	require.NoError(t, err)
	assert.Regexp(t, `^\{"id":"\\u00e9\\u003c","result":\{"Message":"ok","Total":1,"Invalid":0,`, line)
	require.Len(t, sink.AllMetrics(), 1)
	rm := sink.AllMetrics()[0].ResourceMetrics().At(0)
	host, _ := rm.Resource().Attributes().Get("host.name")
	assert.Equal(t, "hé😀", host.Str())
	m := rm.ScopeMetrics().At(0).Metrics().At(0)
	assert.Equal(t, "温度", m.Name())
	assert.Equal(t, map[string]any{"k": "\ufffd", "falcon.step": int64(60)}, m.Gauge().DataPoints().At(0).Attributes().AsRaw())
}

// TestTransferOtherMethods: methods that are not the Transfer service's
// get net/rpc's error replies, and the connection goes on.
func TestTransferOtherMethods(t *testing.T) {
	r := start(t, consumertest.NewNop(), nil)
	conn, rd := dialRPC(t, r)
	_, err := io.WriteString(conn, `{"method":"Agent.Push","params":[[]],"id":1}`+
		`{"method":"Transfer.Nothing","params":[{}],"id":2}`+
		`{"method":"NoDot","params":[],"id":3}`+
		`{"method":"Transfer.Ping","params":[null],"id":4}`)
	require.NoError(t, err)
	got := readReplies(t, rd, 4)
	for id, msg := range map[string]string{
		"1": "rpc: can't find service Agent.Push",
		"2": "rpc: can't find method Transfer.Nothing",
		"3": "rpc: service/method request ill-formed: NoDot",
	} {
		require.NotNil(t, got[id].Error, id)
		assert.Equal(t, msg, *got[id].Error)
		assert.Equal(t, "null", string(got[id].Result))
	}
	assert.Nil(t, got["4"].Error)
	assert.JSONEq(t, `{"code":0}`, string(got["4"].Result))
}
