package falcon

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/rpc"
	"net/rpc/jsonrpc"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memConn is a connection in memory: reads give in, at most chunk bytes at
// a time (all that is left when chunk is 0), then io.EOF — or, with block
// set, nothing until Close; writes are collected.
type memConn struct {
	in     []byte
	chunk  int
	block  bool
	read   int // bytes read so far
	mu     sync.Mutex
	out    bytes.Buffer
	closed chan struct{}
	once   sync.Once
}

func newMemConn(in []byte, chunk int) *memConn {
	return &memConn{in: in, chunk: chunk, closed: make(chan struct{})}
}

func (c *memConn) Read(p []byte) (int, error) {
	if c.read == len(c.in) {
		if c.block {
			<-c.closed
			return 0, io.ErrClosedPipe
		}
		return 0, io.EOF
	}
	n := len(c.in) - c.read
	if c.chunk > 0 {
		n = min(n, c.chunk)
	}
	n = copy(p, c.in[c.read:c.read+n])
	c.read += n
	return n, nil
}

func (c *memConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *memConn) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// itemsDigest stands for the items a push handed over, in its reply's
// Invalid field: two codecs that decode differently answer differently.
func itemsDigest(items []Item) int {
	h := fnv.New32a()
	fmt.Fprintf(h, "%d %+v", len(items), items)
	return int(h.Sum32() % 1_000_000)
}

// testServer is the Transfer service with a handler that records the
// pushes and answers with itemsDigest.
func testServer(t testing.TB) (*rpc.Server, func() [][]Item) {
	var mu sync.Mutex
	var pushes [][]Item
	srv, err := NewRPCServer(func(items []Item) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		pushes = append(pushes, slices.Clone(items))
		return itemsDigest(items), nil
	})
	require.NoError(t, err)
	return srv, func() [][]Item {
		mu.Lock()
		defer mu.Unlock()
		return pushes
	}
}

// serve runs a connection fed with in (chunk bytes a read) through codec
// until the server closes it, and returns what was written. Arbitrary
// input must end in time: the server reads to the end or refuses earlier.
func serve(t testing.TB, srv *rpc.Server, newCodec func(io.ReadWriteCloser) rpc.ServerCodec, in []byte, chunk int) string {
	t.Helper()
	conn := newMemConn(in, chunk)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ServeCodec(newCodec(conn))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the server still runs 10 s after the end of %.200q", in)
	}
	return conn.output()
}

func weftCodec(conn io.ReadWriteCloser) rpc.ServerCodec { return NewServerCodec(conn, 20<<20) }

var latency = regexp.MustCompile(`"Latency":\d+`)

// replies are a connection's reply lines, sorted (net/rpc runs calls
// concurrently, so replies may come in any order), latencies zeroed.
func replies(out string) []string {
	lines := strings.SplitAfter(latency.ReplaceAllString(out, `"Latency":0`), "\n")
	slices.Sort(lines)
	return slices.DeleteFunc(lines, func(s string) bool { return s == "" })
}

// compareWithJSONRPC serves in through ServerCodec and through
// net/rpc/jsonrpc's codec, and checks the replies are the same bytes.
func compareWithJSONRPC(t testing.TB, in []byte, chunk int) []string {
	t.Helper()
	srv, _ := testServer(t)
	got := replies(serve(t, srv, weftCodec, in, chunk))
	want := replies(serve(t, srv, jsonrpc.NewServerCodec, in, chunk))
	if !slices.Equal(got, want) {
		t.Fatalf("%.300q in reads of %d bytes:\n got %q\nwant %q", in, chunk, got, want)
	}
	return got
}

const (
	pushParams = `[[{"endpoint":"web-01","metric":"cpu.idle","value":97.5,"step":60,"counterType":"GAUGE","tags":"","timestamp":1732000000},` +
		`{"endpoint":"web-01","metric":"net.if.in.bytes","value":"123","step":60,"counterType":"COUNTER","tags":"iface=eth0","timestamp":1732000000},null,7]]`
	updateReq = `{"method":"Transfer.Update","params":` + pushParams + `,"id":1}`
	pingReq   = `{"method":"Transfer.Ping","params":[{}],"id":2}`
)

// TestServerCodecMatchesJSONRPC: for requests of every shape, the replies
// are net/rpc/jsonrpc's, byte for byte, however the bytes arrive.
func TestServerCodecMatchesJSONRPC(t *testing.T) {
	for _, in := range []string{
		updateReq + "\n",
		pingReq,
		// Back to back, with and without whitespace between.
		updateReq + pingReq + " \r\n\t" + updateReq + "\n" + pingReq,
		// Ping's params as agents send them, and others.
		`{"method":"Transfer.Ping","params":[null],"id":1}`,
		`{"method":"Transfer.Ping","params":[],"id":1}`,
		`{"method":"Transfer.Ping","params":[{"x":[1]}],"id":1}`,
		`{"method":"Transfer.Ping","params":[1],"id":1}{"method":"Transfer.Ping","params":{},"id":2}`,
		// Update's params: none, null, not an array of items, extra elements.
		`{"method":"Transfer.Update","params":[],"id":1}`,
		`{"method":"Transfer.Update","params":[null],"id":1}`,
		`{"method":"Transfer.Update","params":[[]],"id":1}`,
		`{"method":"Transfer.Update","params":[[],[{"metric":"x"}],3],"id":1}`,
		`{"method":"Transfer.Update","params":[{"metric":"m"}],"id":1}`,
		`{"method":"Transfer.Update","params":["x"],"id":1}{"method":"Transfer.Update","params":[true],"id":2}`,
		`{"method":"Transfer.Update","params":{"metric":"m"},"id":1}`,
		`{"method":"Transfer.Update","params":"x","id":1}`,
		`{"method":"Transfer.Update","params":null,"id":1}`,
		`{"method":"Transfer.Update","id":1}`,
		`{"method":"Transfer.Update","params":[[{"step":"60","value":1e999,"timestamp":1.5}]],"id":1}`,
		// The params before the method, keys in any case, the last
		// duplicate winning, unknown keys.
		`{"params":` + pushParams + `,"id":1,"method":"Transfer.Update"}`,
		`{"METHOD":"Transfer.Update","Params":` + pushParams + `,"iD":1,"jsonrpc":"2.0"}`,
		`{"method":"Transfer.Update","params":[[{"metric":"a"}]],"params":[[{"metric":"b"}]],"id":1,"id":2}`,
		`{"method":"Transfer.Update","params":[[{"metric":"a"}]],"params":null,"id":1}`,
		`{"method":"Transfer.Update","params":[[{"metric":"a"}]],"method":"Transfer.Ping","id":1}`,
		`{"method":"Transfer.Ping","params":[[{"metric":"a"}]],"method":"Transfer.Update","id":1}`,
		`{"method":"Transfer.Update","method":null,"params":[[]],"id":1}`,
		`{"paramſ":[[{"metric":"a"}]],"method":"Transfer.Update","id":1}`,
		// Unicode escapes and raw UTF-8, valid or not, in every string.
		`{"method":"Transfer\u002eUpdate","params":[[{"endpoint":"h\u00e9\ud83d\ude00","metric":"\u6e29\u5ea6","tags":"k=\ud800","counterType":"GAUGE"}]],"id":"\u00e9"}`,
		"{\"method\":\"Transfer.Update\",\"params\":[[{\"endpoint\":\"h\xe9\",\"metric\":\"温度\xff\"}]],\"id\":\"\xff\"}",
		// Ids of every kind, echoed as encoding/json writes them.
		`{"method":"Transfer.Ping","params":[{}],"id":"<a&b>` + "\u2028" + `"}`,
		`{"method":"Transfer.Ping","params":[{}],"id": { "a" : [ 1 , 2.5e3 , "x y" ] , "b":null } }`,
		`{"method":"Transfer.Ping","params":[{}],"id":null}`,
		`{"method":"Transfer.Ping","params":[{}]}`,
		`{"method":"Transfer.Ping","params":[{}],"id":-0.0e+0}`,
		`{"method":"Transfer.Ping","params":[{}],"id":` + strings.Repeat("9", 5000) + `}`,
		`{"method":"Transfer.Ping","params":[{}],"id":"` + strings.Repeat("\\u0041x", 5000) + `"}`,
		// Methods that are not the Transfer service's.
		`{"method":"Transfer.Nothing","params":[{}],"id":1}` + pingReq,
		`{"method":"Agent.Push","params":[[1]],"id":1}` + pingReq,
		`{"method":"NoDot","params":[],"id":1}{"method":"","id":2}{}` + pingReq,
		`{"method":"Transfer.Update<&>\u2028","id":1}{"method":"a\"b\\c\u0001\n","id":2}`,
		`{"method":"Transfer.Update"}`,
		// A bare null is an empty request to jsonrpc; other JSON is not.
		"null" + pingReq,
		`null null`,
		pingReq + `[1]` + pingReq,
		pingReq + `"x"`,
		pingReq + `42 `,
		pingReq + `true`,
		// Not JSON: the connection ends, after the replies to what came before.
		pingReq + "update web-01 cpu.idle 1732000000 97\n" + pingReq,
		pingReq + `{"method":"Transfer.Ping","params":[{}],"id":1 2}` + pingReq,
		pingReq + `{"method":"Transfer.Ping","params":[{}],"id":1]` + pingReq,
		pingReq + `{"method":1,"params":[{}],"id":1}` + pingReq,
		pingReq + `{"method":"Transfer.Update","params":[[{"metric":"m",}]],"id":1}` + pingReq,
		pingReq + `{"method":"Transfer.Update","params":[[{"metric":"m"]],"id":1}` + pingReq,
		pingReq + "{\"method\":\"Transfer.Ping\",\"params\":[{}],\"id\":\"a\tb\"}" + pingReq,
		pingReq + `{"method":"Transfer.Ping","params":[{}],"id":"\x"}` + pingReq,
		pingReq + `nul` + pingReq,
		"\x00\x01\x02\xff",
		"",
		"   \n",
		// Cut short.
		pingReq + `{"method":"Transfer.Update","params":[[{"metric":"m"`,
		pingReq + `{"method":"Transfer.Update","params":[[{"metric":"m" 1`,
		pingReq + `{"method":"Transfer.Ping","params":[{}],"id":"\`,
		pingReq + `nu`,
		// Nesting up to encoding/json's limit, and past it.
		`{"method":"Transfer.Ping","params":[{}],"id":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `}`,
		`{"method":"Transfer.Ping","params":[{}],"id":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`,
		`{"method":"Transfer.Update","params":[[{"x":` + strings.Repeat("[", maxDepth-4) + strings.Repeat("]", maxDepth-4) + `}]],"id":1}`,
		`{"method":"Transfer.Update","params":[[{"x":` + strings.Repeat("[", maxDepth-3) + strings.Repeat("]", maxDepth-3) + `}]],"id":1}`,
	} {
		for _, chunk := range []int{0, 1, 7} {
			compareWithJSONRPC(t, []byte(in), chunk)
		}
	}
}

// TestServerCodecReplies: the replies' exact bytes for the calls agents
// make, and that each call gets its own id back.
func TestServerCodecReplies(t *testing.T) {
	srv, pushes := testServer(t)
	in := updateReq + "\n" + pingReq + `{"method":"Transfer.Update","params":[[]],"id":"s"}` +
		`{"method":"Transfer.Update","params":[{"metric":"m"}],"id":[3]}` + `{"method":"Agent.Push","params":[[]],"id":4}` + pingReq
	got := replies(serve(t, srv, weftCodec, []byte(in), 0))
	want := []string{
		`{"id":"s","result":{"Message":"ok","Total":0,"Invalid":` + fmt.Sprint(itemsDigest([]Item{})) + `,"Latency":0},"error":null}` + "\n",
		`{"id":1,"result":{"Message":"ok","Total":4,"Invalid":` + fmt.Sprint(itemsDigest(pushes()[0])) + `,"Latency":0},"error":null}` + "\n",
		`{"id":2,"result":{"code":0},"error":null}` + "\n",
		`{"id":2,"result":{"code":0},"error":null}` + "\n",
		`{"id":4,"result":null,"error":"rpc: can't find service Agent.Push"}` + "\n",
		`{"id":[3],"result":null,"error":"Transfer.Update params: a push must be a JSON array of metric items, got an object"}` + "\n",
	}
	slices.Sort(want)
	assert.Equal(t, want, got)
	require.Len(t, pushes(), 2)
	assert.Equal(t, []Item{
		{Endpoint: "web-01", Metric: "cpu.idle", CounterType: "GAUGE", Value: Value{Kind: ValueNumber, Num: 97.5}, Step: 60, Timestamp: 1732000000},
		{Endpoint: "web-01", Metric: "net.if.in.bytes", CounterType: "COUNTER", Tags: "iface=eth0", Value: Value{Kind: ValueString, Str: "123"}, Step: 60, Timestamp: 1732000000},
		{Null: true},
		{Malformed: true},
	}, pushes()[0])
}

// TestServerCodecSplitReads: a request arriving a byte at a time is the
// same request.
func TestServerCodecSplitReads(t *testing.T) {
	srv, pushes := testServer(t)
	whole := serve(t, srv, weftCodec, []byte(updateReq), 0)
	split := serve(t, srv, weftCodec, []byte(updateReq), 1)
	assert.Equal(t, replies(whole), replies(split))
	require.Len(t, pushes(), 2)
	assert.Equal(t, pushes()[0], pushes()[1])
}

// TestServerCodecUnicode: escapes are decoded as encoding/json decodes
// them, in the method name and in items.
func TestServerCodecUnicode(t *testing.T) {
	srv, pushes := testServer(t)
	in := `{"method":"Transfer\u002eUpdate","params":[[{"endpoint":"h\u00e9\ud83d\ude00","metric":"\u6e29\u5ea6","tags":"k=\ud800"}]],"id":"\u00e9"}`
	got := replies(serve(t, srv, weftCodec, []byte(in), 0))
	require.Len(t, got, 1)
	assert.True(t, strings.HasPrefix(got[0], `{"id":"\u00e9","result":{"Message":"ok","Total":1,`), got[0])
	require.Len(t, pushes(), 1)
	assert.Equal(t, []Item{{Endpoint: "hé😀", Metric: "温度", Tags: "k=\ufffd"}}, pushes()[0])
}

// TestServerCodecHugeID: an id of any size within the limit is echoed.
func TestServerCodecHugeID(t *testing.T) {
	srv, _ := testServer(t)
	id := strings.Repeat("1234567890", 100_000) // a million digits
	in := `{"method":"Transfer.Ping","params":[{}],"id":` + id + `}`
	got := serve(t, srv, weftCodec, []byte(in), 4096)
	assert.Equal(t, `{"id":`+id+`,"result":{"code":0},"error":null}`+"\n", got)
}

// TestServerCodecLimit: a request of exactly the limit is read; one byte
// more ends the connection, and no more than the limit is read for it.
// Whitespace between requests does not count.
func TestServerCodecLimit(t *testing.T) {
	const limit = 1000
	req := func(size int) string {
		head := `{"method":"Transfer.Ping","params":[{}],"id":"`
		return head + strings.Repeat("x", size-len(head)-2) + `"}`
	}
	require.Len(t, req(limit), limit)

	in := "\n\n   " + req(limit) + "\n" + req(limit) + strings.Repeat(" ", 5000) + req(limit+1) + req(60)
	conn := newMemConn([]byte(in), 0)
	c := NewServerCodec(conn, limit)
	for range 2 {
		var r rpc.Request
		require.NoError(t, c.ReadRequestHeader(&r))
		assert.Equal(t, "Transfer.Ping", r.ServiceMethod)
		require.NoError(t, c.ReadRequestBody(new(NullRPCRequest)))
	}
	var r rpc.Request
	require.ErrorIs(t, c.ReadRequestHeader(&r), ErrRequestTooLarge)

	big := newMemConn([]byte(`{"method":"Transfer.Update","params":[[`+strings.Repeat(`{"metric":"m"},`, 1000)), 0)
	c = NewServerCodec(big, limit)
	require.ErrorIs(t, c.ReadRequestHeader(&r), ErrRequestTooLarge)
	assert.LessOrEqual(t, big.read, limit, "read no more than the limit")
}

// TestServerCodecRefusesAtOnce: bytes that cannot begin or continue a
// JSON-RPC request end the connection as they come, without waiting for
// more, as net/rpc/jsonrpc's codec does.
func TestServerCodecRefusesAtOnce(t *testing.T) {
	for _, in := range []string{
		"update web-01 cpu.idle 1732000000 97\n",
		"GET / HTTP/1.1\r\n",
		"\x00\x01\x02",
		"[1,2",
		`"method"`,
		"nulx",
		`{update`,
		`{"method":"Transfer.Ping",]`,
		`{"params":[[{"metric":"m"}}`,
		"{\"method\":\"a\x01",
		`{"method":` + strings.Repeat("[", maxDepth),
	} {
		conn := newMemConn([]byte(in), 0)
		conn.block = true // more would never come
		c := NewServerCodec(conn, 1<<20)
		errc := make(chan error, 1)
		go func() {
			var r rpc.Request
			errc <- c.ReadRequestHeader(&r)
		}()
		select {
		case err := <-errc:
			var malformed *MalformedRequestError
			require.ErrorAs(t, err, &malformed, "%q", in)
		case <-time.After(10 * time.Second):
			t.Fatalf("%q: still waiting for more", in)
		}
		c.Close()
	}
}

// TestServerCodecCutShort: a connection ending in the middle of a request
// is a connection ending (io.ErrUnexpectedEOF, as json.Decoder says) when
// what came is valid so far, and a malformed request when it is not.
func TestServerCodecCutShort(t *testing.T) {
	for in, malformed := range map[string]bool{
		`{"method":"Transfer.Update","params":[[{"metric":"m"`: false,
		`{"method":"Transfer.Ping","id":tr`:                    false,
		`nu`:                                                   false,
		`{"method":"Transfer.Update","params":[[{"metric" 1`: true,
		`{"method":"Transfer.Ping","params":[{}] "id"`:       true,
	} {
		c := NewServerCodec(newMemConn([]byte(in), 3), 1<<20)
		var r rpc.Request
		err := c.ReadRequestHeader(&r)
		if malformed {
			var m *MalformedRequestError
			assert.ErrorAs(t, err, &m, in)
		} else {
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF, in)
		}
	}
	c := NewServerCodec(newMemConn([]byte(pingReq+" \n"), 0), 1<<20)
	var r rpc.Request
	require.NoError(t, c.ReadRequestHeader(&r))
	require.NoError(t, c.ReadRequestBody(new(NullRPCRequest)))
	assert.ErrorIs(t, c.ReadRequestHeader(&r), io.EOF, "the end between requests is a clean end")
}

// TestServerCodecBuffer: the buffer grows to a request and is given back
// when the connection idles after one larger than maxKeptBuffer.
func TestServerCodecBuffer(t *testing.T) {
	big := `{"method":"Transfer.Ping","params":[{}],"id":"` + strings.Repeat("x", 2*maxKeptBuffer) + `"}`
	c := NewServerCodec(newMemConn([]byte(big+pingReq), 0), 10<<20)
	var r rpc.Request
	require.NoError(t, c.ReadRequestHeader(&r))
	require.NoError(t, c.ReadRequestBody(nil))
	assert.GreaterOrEqual(t, cap(c.buf), len(big))
	require.NoError(t, c.ReadRequestHeader(&r))
	require.NoError(t, c.ReadRequestBody(nil))
	assert.Equal(t, uint64(2), r.Seq)
	require.ErrorIs(t, c.ReadRequestHeader(&r), io.EOF)
	assert.LessOrEqual(t, cap(c.buf), initialBuffer, "the big buffer is not kept once idle")
}

// TestServerCodecWriteResponse: replies of other types go through
// encoding/json; an unknown sequence number is refused.
func TestServerCodecWriteResponse(t *testing.T) {
	conn := newMemConn([]byte(`{"method":"X.Y","id":"a"}{"method":"X.Y","id":"b"}`), 0)
	c := NewServerCodec(conn, 1<<20)
	var r1, r2 rpc.Request
	require.NoError(t, c.ReadRequestHeader(&r1))
	require.NoError(t, c.ReadRequestBody(nil))
	require.NoError(t, c.ReadRequestHeader(&r2))
	require.NoError(t, c.ReadRequestBody(nil))
	require.NoError(t, c.WriteResponse(&rpc.Response{Seq: r2.Seq}, &TransferResponse{Message: "<ok>\n", Total: -1}))
	require.NoError(t, c.WriteResponse(&rpc.Response{Seq: r1.Seq}, map[string]int{"b": 2, "a": 1}))
	require.Error(t, c.WriteResponse(&rpc.Response{Seq: r1.Seq}, nil), "answered already")
	assert.Equal(t, `{"id":"b","result":{"Message":"\u003cok\u003e\n","Total":-1,"Invalid":0,"Latency":0},"error":null}`+"\n"+
		`{"id":"a","result":{"a":1,"b":2},"error":null}`+"\n", conn.output())
	assert.ErrorContains(t, c.WriteResponse(&rpc.Response{Seq: 99}, nil), "invalid sequence number")
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "idempotent")
}

// TestServerCodecConnectionErrors: a read error other than the end is the
// connection's end, returned as it is.
func TestServerCodecConnectionErrors(t *testing.T) {
	boom := errors.New("connection reset")
	c := NewServerCodec(&errConn{err: boom, data: []byte(`{"method":`)}, 1<<20)
	var r rpc.Request
	require.ErrorIs(t, c.ReadRequestHeader(&r), boom)
	c = NewServerCodec(&errConn{}, 1<<20)
	require.ErrorIs(t, c.ReadRequestHeader(&r), io.ErrNoProgress, "a reader giving nothing, forever")
}

// errConn gives data, then err (or nothing at all, forever, when nil).
type errConn struct {
	data []byte
	err  error
}

func (c *errConn) Read(p []byte) (int, error) {
	if len(c.data) > 0 {
		n := copy(p, c.data)
		c.data = c.data[n:]
		return n, nil
	}
	return 0, c.err
}
func (c *errConn) Write(p []byte) (int, error) { return len(p), nil }
func (c *errConn) Close() error                { return nil }
