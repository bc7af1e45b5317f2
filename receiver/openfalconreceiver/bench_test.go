package openfalconreceiver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/rpc"
	"net/rpc/jsonrpc"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/falcon"
	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/metadata"
)

// benchPush is one falcon-agent push: a host's items of one step, about
// 40% of them counters with a tag, as the agent's built-in collectors send.
func benchPush(n int, ts int64) []*metricValue {
	items := make([]*metricValue, n)
	for i := range items {
		switch i % 5 {
		case 0, 1, 2:
			items[i] = &metricValue{Endpoint: "web-042.prod.example.com", Metric: fmt.Sprintf("sys.metric.%d", i), Value: float64(i) * 1.5,
				Step: 60, Type: "GAUGE", Timestamp: ts}
		case 3:
			items[i] = &metricValue{Endpoint: "web-042.prod.example.com", Metric: "net.if.in.bytes", Value: float64(i) * 1e6,
				Step: 60, Type: "COUNTER", Tags: fmt.Sprintf("iface=eth%d", i), Timestamp: ts}
		default:
			items[i] = &metricValue{Endpoint: "web-042.prod.example.com", Metric: "disk.io.read_bytes", Value: fmt.Sprint(i * 4096),
				Step: 60, Type: "COUNTER", Tags: fmt.Sprintf("device=sd%d,project=shop", i), Timestamp: ts}
		}
	}
	return items
}

// loopConn replays one request forever and discards the replies.
type loopConn struct {
	req []byte
	off int
}

func (c *loopConn) Read(p []byte) (int, error) {
	n := copy(p, c.req[c.off:])
	c.off = (c.off + n) % len(c.req)
	return n, nil
}
func (c *loopConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *loopConn) Close() error                { return nil }

// BenchmarkTransferUpdate serves Transfer.Update calls of a 500-item push
// through net/rpc and the receiver's JSON-RPC codec — what a connected agent
// costs: reading and framing the request, decoding, transfer's checks,
// mapping to pdata, the reply — into a pipeline that takes it at once. Run
// it on one core (-cpu 1) for items/s per core. codec=jsonrpc is the same
// through net/rpc/jsonrpc's codec, for comparison.
func BenchmarkTransferUpdate(b *testing.B) {
	const n = 500
	set := receivertest.NewNopSettings(metadata.Type)
	r, err := newReceiver(createDefaultConfig().(*Config), set, consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	srv, err := falcon.NewRPCServer(func(items []falcon.Item) (int, error) {
		return r.push(context.Background(), transferRPC, items)
	})
	if err != nil {
		b.Fatal(err)
	}
	params, err := json.Marshal([]any{benchPush(n, 1732000000)})
	if err != nil {
		b.Fatal(err)
	}
	req := []byte(fmt.Sprintf(`{"method":"Transfer.Update","params":%s,"id":1}`+"\n", params))
	for _, bc := range []struct {
		name  string
		codec func(io.ReadWriteCloser) rpc.ServerCodec
	}{
		{"weft", func(c io.ReadWriteCloser) rpc.ServerCodec { return r.newRPCCodec(c, "bench") }},
		{"jsonrpc", jsonrpc.NewServerCodec},
	} {
		b.Run("codec="+bc.name, func(b *testing.B) {
			codec := bc.codec(&loopConn{req: req})
			b.SetBytes(int64(len(req)))
			b.ReportAllocs()
			for b.Loop() {
				if err := srv.ServeRequest(codec); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "items/s")
			b.ReportMetric(float64(len(req))/n, "B/item")
		})
	}
}
