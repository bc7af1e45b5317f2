package harness

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/protobuf/encoding/protowire"
)

// TestPinpointNodeAgent runs two real Node.js services instrumented by the
// real Pinpoint Node agent, front calling back over HTTP, against a gRPC
// server that records what the agents send, and checks that the agents
// speak the protocol Weft's pinpoint receiver implements.
func TestPinpointNodeAgent(t *testing.T) {
	start := time.Now()
	rec := startPinpointRecorder(t)

	back := StartNodeService(t, NodeService{
		Name:            "back",
		AgentID:         "weft-back-1",
		ApplicationName: "weft-back",
		Collector:       rec.collector,
	})
	front := StartNodeService(t, NodeService{
		Name:            "front",
		AgentID:         "weft-front-1",
		ApplicationName: "weft-front",
		Collector:       rec.collector,
		Env:             []string{"BACKEND_URL=" + back.URL + "/hello"},
	})

	const requests = 3
	for range requests {
		if got, want := front.Get(t, "/call"), "weft-front -> hello from weft-back\n"; got != want {
			t.Fatalf("front /call answered %q, want %q", got, want)
		}
	}

	agents := map[string]string{ // agent id -> application name
		front.AgentID: front.ApplicationName,
		back.AgentID:  back.ApplicationName,
	}
	// The agent sends its first stats five seconds after it starts (a
	// setInterval of 5000 ms), so this wait is the slow part of the test.
	WaitFor(t, 30*time.Second, "pinpoint agents' data", func() error {
		calls := rec.snapshot()
		var missing []string
		for id := range agents {
			if n := countSpans(calls, id, false); n < requests {
				missing = append(missing, fmt.Sprintf("%s: %d of %d spans", id, n, requests))
			}
			for _, m := range []string{"/v1.Agent/RequestAgentInfo", "/v1.Agent/PingSession", "/v1.Stat/SendAgentStat"} {
				if countMessages(calls, id, m) == 0 {
					missing = append(missing, id+": "+m)
				}
			}
		}
		if countMessages(calls, "", "/v1.Metadata/RequestApiMetaData") == 0 {
			missing = append(missing, "/v1.Metadata/RequestApiMetaData")
		}
		if len(missing) > 0 {
			return errors.New(strings.Join(missing, "; "))
		}
		return nil
	})

	// The log shows when each call was opened and when its messages came
	// (times since the test started): the streams are opened when the
	// agent starts, long before their first message.
	calls := rec.snapshot()
	for _, c := range calls {
		var times []string
		for _, m := range c.messages {
			times = append(times, strconv.FormatInt(m.at.Sub(start).Milliseconds(), 10))
		}
		t.Logf("%6dms %-5s port %-35s agentid=%s applicationname=%s starttime=%s socketid=%s messages at [%s]ms",
			c.at.Sub(start).Milliseconds(), rec.portName[c.port], c.method,
			c.header("agentid"), c.header("applicationname"), c.header("starttime"), c.header("socketid"),
			strings.Join(times, " "))
	}

	// Every call carries the agent's identity in its metadata, with one
	// start time per agent, taken while the test ran.
	startTimes := map[string]string{}
	for _, c := range calls {
		id := c.header("agentid")
		app, ok := agents[id]
		if !ok {
			t.Errorf("%s: agentid %q, want one of %v", c.method, id, agents)
			continue
		}
		if got := c.header("applicationname"); got != app {
			t.Errorf("%s from %s: applicationname %q, want %q", c.method, id, got, app)
		}
		st := c.header("starttime")
		ms, err := strconv.ParseInt(st, 10, 64)
		if err != nil || ms < start.UnixMilli() || ms > time.Now().UnixMilli() {
			t.Errorf("%s from %s: starttime %q is not an epoch-ms time during the test", c.method, id, st)
		}
		if prev, ok := startTimes[id]; ok && prev != st {
			t.Errorf("%s from %s: starttime %s, earlier calls had %s", c.method, id, st, prev)
		}
		startTimes[id] = st
	}

	// PAgentInfo (hostname=1, ip=2, serviceType=4, pid=5, agentVersion=6)
	// names the process that sent it.
	pids := map[string]int{front.AgentID: front.Process.Pid(), back.AgentID: back.Process.Pid()}
	for _, c := range calls {
		if c.method != "/v1.Agent/RequestAgentInfo" || len(c.messages) == 0 {
			continue
		}
		fields, err := protoFields(c.messages[0].data)
		if err != nil {
			t.Fatalf("PAgentInfo from %s: %v", c.header("agentid"), err)
		}
		info := map[protowire.Number]protoField{}
		for _, f := range fields {
			info[f.num] = f
		}
		id := c.header("agentid")
		t.Logf("PAgentInfo from %s: hostname=%q ip=%q serviceType=%d pid=%d agentVersion=%q",
			id, info[1].bytes, info[2].bytes, info[4].value, info[5].value, info[6].bytes)
		if got := string(info[6].bytes); got != PinpointNodeAgentVersion {
			t.Errorf("PAgentInfo from %s: agentVersion %q, want %q", id, got, PinpointNodeAgentVersion)
		}
		if got := info[4].value; got != 1400 {
			t.Errorf("PAgentInfo from %s: serviceType %d, want 1400 (NODE)", id, got)
		}
		if got := int(info[5].value); got != pids[id] {
			t.Errorf("PAgentInfo from %s: pid %d, want node's pid %d", id, got, pids[id])
		}
	}

	// Each service sends to the port Pinpoint assigns it.
	wantPort := map[string]string{
		"/v1.Agent/": "agent", "/v1.Metadata/": "agent", "/v1.Span/": "span", "/v1.Stat/": "stat",
	}
	for _, c := range calls {
		for prefix, port := range wantPort {
			if strings.HasPrefix(c.method, prefix) && rec.portName[c.port] != port {
				t.Errorf("%s arrived on the %s port, want the %s port", c.method, rec.portName[c.port], port)
			}
		}
	}

	// The spans of one request form one trace: back's span carries front's
	// transaction id, and its parent is front's span.
	spans := map[string][]spanSummary{}
	for _, c := range calls {
		if c.method != "/v1.Span/SendSpan" {
			continue
		}
		for _, m := range c.messages {
			s, err := summarizeSpanMessage(m.data)
			if err != nil {
				t.Fatalf("SendSpan message from %s: %v", c.header("agentid"), err)
			}
			t.Logf("SendSpan from %s: %+v", c.header("agentid"), s)
			if !s.chunk {
				spans[c.header("agentid")] = append(spans[c.header("agentid")], s)
			}
		}
	}
	for _, b := range spans[back.AgentID] {
		linked := false
		for _, f := range spans[front.AgentID] {
			if f.transactionID() == b.transactionID() && b.parentSpanID == f.spanID {
				linked = true
			}
		}
		if !linked {
			t.Errorf("back's span %+v has no parent span from front in %+v", b, spans[front.AgentID])
		}
		if b.transactionID() == "" || !strings.HasPrefix(b.transactionID(), front.AgentID+"^") {
			t.Errorf("back's span transaction id %q does not start with front's agent id", b.transactionID())
		}
	}
	for _, f := range spans[front.AgentID] {
		if f.parentSpanID != -1 {
			t.Errorf("front's span %+v is a root span, want parentSpanId -1", f)
		}
	}
}

// pinpointRecorder is a gRPC server that accepts every Pinpoint RPC without
// knowing its messages and records the calls.
type pinpointRecorder struct {
	collector PinpointCollector
	portName  map[int]string // local port -> "agent", "stat" or "span"

	mu    sync.Mutex
	calls []*recordedCall
}

// recordedCall is one RPC as the server saw it. Messages of a stream are
// added as they arrive: the agent keeps its streams open for minutes.
type recordedCall struct {
	method   string // full method name, such as /v1.Span/SendSpan
	md       metadata.MD
	port     int // the server port the call came in on
	at       time.Time
	messages []recordedMessage
}

// recordedMessage is one message of a call, as bytes on the wire.
type recordedMessage struct {
	at   time.Time
	data []byte
}

func (c *recordedCall) header(key string) string {
	return strings.Join(c.md.Get(key), ",")
}

// startPinpointRecorder starts a recorder on three loopback ports and stops
// it when the test ends.
func startPinpointRecorder(t *testing.T) *pinpointRecorder {
	t.Helper()
	r := &pinpointRecorder{portName: map[int]string{}}
	srv := grpc.NewServer(
		grpc.UnknownServiceHandler(r.handle),
		grpc.ForceServerCodecV2(RawCodec{}),
	)
	ports := map[string]*int{"agent": &r.collector.AgentPort, "stat": &r.collector.StatPort, "span": &r.collector.SpanPort}
	for name, port := range ports {
		// Listening on port 0 leaves no window in which another process
		// could take a port picked by FreePort.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("pinpoint recorder: %v", err)
		}
		*port = l.Addr().(*net.TCPAddr).Port
		r.portName[*port] = name
		go srv.Serve(l)
	}
	// Stop, not GracefulStop: the agents never close their streams.
	t.Cleanup(srv.Stop)
	return r
}

// handle serves any RPC. The kind of RPC is known from its name, as the
// server has no service descriptions: it answers unary calls with an empty
// message (a valid empty PResult), pings with an empty PPing, and client
// streams with an empty message when the client closes them.
func (r *pinpointRecorder) handle(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	md, _ := metadata.FromIncomingContext(stream.Context())
	c := &recordedCall{method: method, md: md, at: time.Now()}
	if p, ok := peer.FromContext(stream.Context()); ok && p.LocalAddr != nil {
		c.port = p.LocalAddr.(*net.TCPAddr).Port
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()

	empty := []byte{}
	for {
		var msg []byte
		err := stream.RecvMsg(&msg)
		if err == io.EOF {
			if method == "/v1.Agent/PingSession" {
				return nil
			}
			return stream.SendMsg(&empty)
		}
		if err != nil {
			return err
		}
		r.mu.Lock()
		c.messages = append(c.messages, recordedMessage{time.Now(), msg})
		r.mu.Unlock()
		switch {
		case method == "/v1.Agent/PingSession":
			if err := stream.SendMsg(&empty); err != nil {
				return err
			}
		case !isClientStream(method):
			return stream.SendMsg(&empty)
		}
	}
}

// isClientStream reports whether method is one of Pinpoint's client-stream
// RPCs; all others but PingSession and the command streams are unary.
func isClientStream(method string) bool {
	switch method {
	case "/v1.Span/SendSpan", "/v1.Stat/SendAgentStat",
		"/v1.ProfilerCommandService/CommandStreamActiveThreadCount":
		return true
	}
	return false
}

// snapshot returns copies of the calls recorded so far.
func (r *pinpointRecorder) snapshot() []recordedCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]recordedCall, len(r.calls))
	for i, c := range r.calls {
		out[i] = *c
		out[i].messages = append([]recordedMessage(nil), c.messages...)
	}
	return out
}

// countMessages counts the messages sent to method by the agent agentID, or
// by any agent if agentID is empty.
func countMessages(calls []recordedCall, agentID, method string) int {
	n := 0
	for _, c := range calls {
		if c.method == method && (agentID == "" || c.header("agentid") == agentID) {
			n += len(c.messages)
		}
	}
	return n
}

// countSpans counts the PSpan (or, if chunks, PSpanChunk) messages agentID
// sent on SendSpan.
func countSpans(calls []recordedCall, agentID string, chunks bool) int {
	n := 0
	for _, c := range calls {
		if c.method != "/v1.Span/SendSpan" || c.header("agentid") != agentID {
			continue
		}
		for _, m := range c.messages {
			if s, err := summarizeSpanMessage(m.data); err == nil && s.chunk == chunks {
				n++
			}
		}
	}
	return n
}

// spanSummary is what the test reads of a PSpanMessage: whether it is a
// span or a chunk, its transaction id and its span ids.
type spanSummary struct {
	chunk                bool
	agentID              string
	agentStartTime, seq  int64
	spanID, parentSpanID int64
	events               int   // number of span events
	asyncID, asyncSeq    int64 // a chunk's localAsyncId
}

func (s spanSummary) transactionID() string {
	if s.agentID == "" && s.agentStartTime == 0 {
		return ""
	}
	return fmt.Sprintf("%s^%d^%d", s.agentID, s.agentStartTime, s.seq)
}

// summarizeSpanMessage reads a PSpanMessage (field numbers from Pinpoint's
// Span.proto): oneof span=1 PSpan | spanChunk=2 PSpanChunk.
func summarizeSpanMessage(b []byte) (spanSummary, error) {
	var s spanSummary
	top, err := protoFields(b)
	if err != nil {
		return s, err
	}
	if len(top) != 1 || (top[0].num != 1 && top[0].num != 2) {
		return s, fmt.Errorf("PSpanMessage with fields %v, want one field 1 or 2", top)
	}
	s.chunk = top[0].num == 2
	fields, err := protoFields(top[0].bytes)
	if err != nil {
		return s, err
	}
	for _, f := range fields {
		switch {
		case f.num == 2: // transactionId, in PSpan and PSpanChunk
			tid, err := protoFields(f.bytes)
			if err != nil {
				return s, err
			}
			for _, g := range tid {
				switch g.num {
				case 1:
					s.agentID = string(g.bytes)
				case 2:
					s.agentStartTime = int64(g.value)
				case 3:
					s.seq = int64(g.value)
				}
			}
		case f.num == 3: // spanId, sfixed64 in both
			s.spanID = int64(f.value)
		case f.num == 4 && !s.chunk: // parentSpanId
			s.parentSpanID = int64(f.value)
		case f.num == 13 && !s.chunk, f.num == 5 && s.chunk: // spanEvent
			s.events++
		case f.num == 8 && s.chunk: // localAsyncId {asyncId=1, sequence=2}
			la, err := protoFields(f.bytes)
			if err != nil {
				return s, err
			}
			for _, g := range la {
				switch g.num {
				case 1:
					s.asyncID = int64(g.value)
				case 2:
					s.asyncSeq = int64(g.value)
				}
			}
		}
	}
	return s, nil
}

// protoField is one field of an encoded protobuf message: bytes for
// length-delimited fields, value for varint and fixed-size ones.
type protoField struct {
	num   protowire.Number
	typ   protowire.Type
	bytes []byte
	value uint64
}

func (f protoField) String() string { return fmt.Sprintf("%d:%d", f.num, f.typ) }

// protoFields splits an encoded protobuf message into its fields.
func protoFields(b []byte) ([]protoField, error) {
	var out []protoField
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		f := protoField{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.value, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			f.value, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.value = uint64(v)
		case protowire.BytesType:
			f.bytes, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		out = append(out, f)
	}
	return out, nil
}
