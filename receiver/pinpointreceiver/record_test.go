package pinpointreceiver_test

// This file records what real Pinpoint Node agents send into
// testdata/node-agent.rec, and checks that recording. The recording feeds
// the replay benchmark (tests/bench, BenchmarkScenarioPinpoint), which must
// not spend CPU on encoding, so it holds the agents' protobuf bytes as they
// came off the wire.
//
// Record it again (needs node and npm, see tests/harness/pinpoint.go):
//
//	go test ./receiver/pinpointreceiver -run TestRecordNodeAgent -record
//
// # Format of node-agent.rec
//
// JSON lines, one gRPC request message per line, in the order the messages
// arrived (across all calls). Each line is an object with:
//
//	method   full gRPC method, e.g. "/v1.Span/SendSpan"
//	call     number of the gRPC call that carried the message: the messages
//	         of one client stream share it
//	ms       milliseconds since the recording started
//	headers  the gRPC metadata the agent sent with the call (agentid,
//	         applicationname, starttime, ...; first value of each key),
//	         without the transport's own (content-type, user-agent, te,
//	         accept-encoding, grpc-*, :authority)
//	kind     for /v1.Span/SendSpan only: "span" (PSpanMessage.span) or
//	         "chunk" (PSpanMessage.spanChunk)
//	events   for /v1.Span/SendSpan only: the number of span events in the
//	         span or chunk, so that a replay counts events without
//	         decoding; omitted when 0
//	proto    the request message's protobuf bytes, base64 (standard, padded)
//
// Only calls that carry data are recorded: Agent/RequestAgentInfo, the
// Metadata requests, Span/SendSpan and Stat/SendAgentStat. Pings
// (Agent/PingSession) and the command service are answered, not recorded.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
	"github.com/weftobs/weft/receiver/pinpointreceiver/internal/translate"
	"github.com/weftobs/weft/tests/harness"
)

var record = flag.Bool("record", false, "TestRecordNodeAgent: run real Pinpoint Node agents and rewrite "+recordingPath)

const recordingPath = "testdata/node-agent.rec"

// recMessage is one line of the recording (see the format above).
type recMessage struct {
	Method  string            `json:"method"`
	Call    int64             `json:"call"`
	Millis  int64             `json:"ms"`
	Headers map[string]string `json:"headers"`
	Kind    string            `json:"kind,omitempty"`
	Events  int               `json:"events,omitempty"`
	Proto   []byte            `json:"proto"`
}

const (
	methodSendSpan    = "/v1.Span/SendSpan"
	methodAgentInfo   = "/v1.Agent/RequestAgentInfo"
	methodPing        = "/v1.Agent/PingSession"
	methodApiMeta     = "/v1.Metadata/RequestApiMetaData"
	methodStringMeta  = "/v1.Metadata/RequestStringMetaData"
	methodSqlMeta     = "/v1.Metadata/RequestSqlMetaData"
	methodSqlUidMeta  = "/v1.Metadata/RequestSqlUidMetaData"
	methodExceptionMd = "/v1.Metadata/RequestExceptionMetaData"
	methodSendStat    = "/v1.Stat/SendAgentStat"
)

// recordedMessage returns an empty message of the type method's requests
// carry, or nil for a method the recording must not hold.
func recordedMessage(method string) proto.Message {
	switch method {
	case methodSendSpan:
		return &v1.PSpanMessage{}
	case methodAgentInfo:
		return &v1.PAgentInfo{}
	case methodApiMeta:
		return &v1.PApiMetaData{}
	case methodStringMeta:
		return &v1.PStringMetaData{}
	case methodSqlMeta:
		return &v1.PSqlMetaData{}
	case methodSqlUidMeta:
		return &v1.PSqlUidMetaData{}
	case methodExceptionMd:
		return &v1.PExceptionMetaData{}
	case methodSendStat:
		return &v1.PStatMessage{}
	}
	return nil
}

// The topology the recording drives: web calls api, api calls store. Each
// entry is a request and how many Pinpoint spans it makes (one per service
// it passes through).
type recRequest struct {
	service string // web, api or store
	path    string
	status  int
	spans   int
	count   int
}

// fanout makes web send this many parallel requests to api from one
// request: more than the 20 events after which the Node agent flushes a
// span's call stack as a chunk, so the recording has overflow chunks too.
const fanout = 24

var recPlan = []recRequest{
	{"web", "/call", 200, 3, 150},
	{"api", "/call", 200, 2, 60},
	{"store", "/hello", 200, 1, 40},
	{"web", "/fail", 500, 1, 10},
	{"web", "/nope", 404, 1, 10},
	{"web", "/broken", 502, 1, 10},
	{"web", "/fanout?n=" + strconv.Itoa(fanout), 200, 1 + 2*fanout, 6},
}

// TestRecordNodeAgent rewrites testdata/node-agent.rec from real Node agents
// when -record is given, and is skipped otherwise.
func TestRecordNodeAgent(t *testing.T) {
	if !*record {
		t.Skip("records only with -record (go test ./receiver/pinpointreceiver -run TestRecordNodeAgent -record)")
	}
	rec := startRecorder(t)
	defer rec.stop()

	store := harness.StartNodeService(t, harness.NodeService{Name: "store", Collector: rec.ports})
	api := harness.StartNodeService(t, harness.NodeService{Name: "api", Collector: rec.ports,
		Env: []string{"BACKEND_URL=" + store.URL + "/hello"}})
	web := harness.StartNodeService(t, harness.NodeService{Name: "web", Collector: rec.ports,
		Env: []string{"BACKEND_URL=" + api.URL + "/call", "BROKEN_URL=" + closedURL(t) + "/gone"}})
	urls := map[string]string{"web": web.URL, "api": api.URL, "store": store.URL}

	// The requests in a fixed shuffled order, four at a time, so that the
	// agents' streams interleave as they do under load.
	var jobs []recRequest
	wantSpans := 0
	for _, r := range recPlan {
		for range r.count {
			jobs = append(jobs, r)
		}
		wantSpans += r.count * r.spans
	}
	rng := rand.New(rand.NewPCG(8, 5))
	rng.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })
	client := &http.Client{Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	work := make(chan recRequest)
	errs := make(chan error, len(jobs))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for r := range work {
				resp, err := client.Get(urls[r.service] + r.path)
				if err != nil {
					errs <- err
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != r.status {
					errs <- fmt.Errorf("GET %s%s: %s, want %d", r.service, r.path, resp.Status, r.status)
				}
			}
		})
	}
	for _, j := range jobs {
		work <- j
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Every span, and a stat from every agent (they come every 5 s), then
	// a quiet second so that late chunks are in too.
	harness.WaitFor(t, 60*time.Second, "all spans and stats", func() error {
		c := rec.counts()
		if c.spans < wantSpans {
			return fmt.Errorf("%d spans of %d", c.spans, wantSpans)
		}
		if len(c.statAgents) < 3 {
			return fmt.Errorf("stats from %v only", c.statAgents)
		}
		if time.Since(c.last) < time.Second {
			return errors.New("messages still coming")
		}
		return nil
	})
	msgs := rec.stop()
	if c := countSpans(msgs); c != wantSpans {
		t.Fatalf("recorded %d spans, the requests make %d", c, wantSpans)
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, m := range msgs {
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(recordingPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d messages, %d bytes", recordingPath, len(msgs), buf.Len())
	// Keep-alive connections of the harness's readiness probes would
	// otherwise outlive the test and trip goleak.
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
}

// closedURL is the base URL of a loopback port nobody listens on.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// TestNodeAgentRecording checks the committed recording: every message
// decodes as the v1 type of its method without fields our .proto lacks,
// the event counts are right, and the recording is complete enough to
// replay (every chunk's span is in it, every API id its agent used is
// described).
func TestNodeAgentRecording(t *testing.T) {
	msgs := readRecording(t, recordingPath)
	type agent struct{ id, start string }
	type spanKey struct {
		tx     string
		spanID int64
	}
	methods := map[string]int{}
	agents := map[agent]bool{}
	infos := map[agent]bool{}
	apis := map[agent]map[int32]bool{}
	strs := map[agent]map[int32]bool{}
	spans := map[spanKey]bool{}
	var chunks []spanKey
	type use struct {
		agent agent
		api   int32
		str   int32
	}
	var uses []use
	nSpans, nChunks, nEvents := 0, 0, 0
	for i, m := range msgs {
		where := fmt.Sprintf("line %d (%s)", i+1, m.Method)
		msg := recordedMessage(m.Method)
		if msg == nil {
			t.Fatalf("%s: a method the recording should not hold", where)
		}
		if err := (proto.UnmarshalOptions{}).Unmarshal(m.Proto, msg); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if path, ok := unknownField(msg.ProtoReflect()); ok {
			t.Errorf("%s: fields our .proto does not know at %s", where, path)
		}
		methods[m.Method]++
		a := agent{m.Headers["agentid"], m.Headers["starttime"]}
		if a.id == "" || m.Headers["applicationname"] == "" {
			t.Fatalf("%s: headers without agentid or applicationname: %v", where, m.Headers)
		}
		if _, err := strconv.ParseInt(a.start, 10, 64); err != nil {
			t.Fatalf("%s: starttime header %q", where, a.start)
		}
		agents[a] = true
		switch msg := msg.(type) {
		case *v1.PAgentInfo:
			infos[a] = true
		case *v1.PApiMetaData:
			if apis[a] == nil {
				apis[a] = map[int32]bool{}
			}
			apis[a][msg.GetApiId()] = true
		case *v1.PStringMetaData:
			if strs[a] == nil {
				strs[a] = map[int32]bool{}
			}
			strs[a][msg.GetStringId()] = true
		case *v1.PSpanMessage:
			var evs []*v1.PSpanEvent
			var tx *v1.PTransactionId
			var key spanKey
			switch {
			case msg.GetSpan() != nil:
				s := msg.GetSpan()
				evs, tx = s.GetSpanEvent(), s.GetTransactionId()
				key.spanID = s.GetSpanId()
				if m.Kind != "span" {
					t.Errorf("%s: kind %q, the message holds a span", where, m.Kind)
				}
				nSpans++
				uses = append(uses, use{agent: a, api: s.GetApiId()})
			case msg.GetSpanChunk() != nil:
				c := msg.GetSpanChunk()
				evs, tx = c.GetSpanEvent(), c.GetTransactionId()
				key.spanID = c.GetSpanId()
				if m.Kind != "chunk" {
					t.Errorf("%s: kind %q, the message holds a chunk", where, m.Kind)
				}
				nChunks++
			default:
				t.Fatalf("%s: neither span nor chunk", where)
			}
			if m.Events != len(evs) {
				t.Errorf("%s: events %d, the message holds %d", where, m.Events, len(evs))
			}
			nEvents += len(evs)
			txAgent := tx.GetAgentId()
			if txAgent == "" {
				txAgent = a.id
			}
			key.tx = fmt.Sprintf("%s^%d^%d", txAgent, tx.GetAgentStartTime(), tx.GetSequence())
			if msg.GetSpan() != nil {
				spans[key] = true
			} else {
				chunks = append(chunks, key)
			}
			for _, ev := range evs {
				u := use{agent: a, api: ev.GetApiId()}
				if ex := ev.GetExceptionInfo(); ex != nil {
					u.str = ex.GetIntValue()
				}
				uses = append(uses, u)
			}
		default:
			if m.Kind != "" || m.Events != 0 {
				t.Errorf("%s: kind %q and events %d on a message that is not a span", where, m.Kind, m.Events)
			}
		}
	}
	t.Logf("%d messages %v; %d agents; %d spans, %d chunks, %d span events", len(msgs), methods, len(agents), nSpans, nChunks, nEvents)

	// Enough of everything for a replay to mean something.
	if len(agents) < 3 {
		t.Errorf("%d agents, want the 3 of the topology", len(agents))
	}
	if nSpans < 500 || nChunks < 100 || nEvents < 1000 {
		t.Errorf("only %d spans, %d chunks and %d events", nSpans, nChunks, nEvents)
	}
	for a := range agents {
		if !infos[a] {
			t.Errorf("agent %v sent no agent info", a)
		}
	}
	for _, k := range chunks {
		if !spans[k] {
			t.Errorf("chunk of span %v without the span: a replay would hold it back for chunk_wait", k)
		}
	}
	missing := map[string]bool{}
	for _, u := range uses {
		if u.api != 0 && !apis[u.agent][u.api] {
			missing[fmt.Sprintf("api %d of %v", u.api, u.agent)] = true
		}
		if u.str != 0 && !strs[u.agent][u.str] {
			missing[fmt.Sprintf("string %d of %v", u.str, u.agent)] = true
		}
	}
	for m := range missing {
		t.Errorf("%s is used but not in the recording's metadata", m)
	}
}

// unknownField finds fields in m, or in a message inside it, that the
// generated types did not know: what the agent sends but we would ignore.
func unknownField(m protoreflect.Message) (string, bool) {
	if len(m.GetUnknown()) > 0 {
		return string(m.Descriptor().FullName()), true
	}
	var path string
	var found bool
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		check := func(sub protoreflect.Message) bool {
			if p, ok := unknownField(sub); ok {
				path, found = string(fd.FullName())+" > "+p, true
				return false
			}
			return true
		}
		switch {
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				if !check(l.Get(i).Message()) {
					return false
				}
			}
		case fd.IsMap():
			// None of the v1 messages has a map.
		case fd.Message() != nil:
			return check(v.Message())
		}
		return true
	})
	return path, found
}

func readRecording(t *testing.T, path string) []recMessage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var msgs []recMessage
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var m recMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s line %d: %v", path, len(msgs)+1, err)
		}
		msgs = append(msgs, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(msgs) == 0 {
		t.Fatalf("%s is empty", path)
	}
	return msgs
}

func countSpans(msgs []recMessage) int {
	n := 0
	for _, m := range msgs {
		if m.Kind == "span" {
			n++
		}
	}
	return n
}

// recorder is a stand-in Pinpoint collector that answers every call as the
// real one would and keeps the requests. It serves all three ports from one
// gRPC server: the agent tells the services apart by method, not by port.
type recorder struct {
	ports harness.PinpointCollector
	srv   *grpc.Server
	start time.Time
	calls atomic.Int64

	mu         sync.Mutex
	msgs       []recMessage
	last       time.Time
	statAgents map[string]bool
	stopped    bool
}

func startRecorder(t *testing.T) *recorder {
	r := &recorder{start: time.Now(), statAgents: map[string]bool{}}
	r.srv = grpc.NewServer(grpc.ForceServerCodecV2(harness.RawCodec{}), grpc.UnknownServiceHandler(r.handle))
	var lis [3]net.Listener
	for i := range lis {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lis[i] = l
		go r.srv.Serve(l)
	}
	port := func(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }
	r.ports = harness.PinpointCollector{AgentPort: port(lis[0]), StatPort: port(lis[1]), SpanPort: port(lis[2])}
	return r
}

// stop ends every call (agents keep theirs open) and returns the recording.
func (r *recorder) stop() []recMessage {
	r.mu.Lock()
	if r.stopped {
		defer r.mu.Unlock()
		return r.msgs
	}
	r.stopped = true
	r.mu.Unlock()
	r.srv.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs
}

type recCounts struct {
	spans      int
	statAgents map[string]bool
	last       time.Time
}

func (r *recorder) counts() recCounts {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := recCounts{spans: countSpans(r.msgs), last: r.last, statAgents: map[string]bool{}}
	for a := range r.statAgents {
		c.statAgents[a] = true
	}
	return c
}

func (r *recorder) add(method string, call int64, md metadata.MD, b []byte) error {
	m := recMessage{Method: method, Call: call, Headers: map[string]string{}, Proto: b}
	for k, vs := range md {
		switch {
		case strings.HasPrefix(k, ":"), strings.HasPrefix(k, "grpc-"),
			k == "content-type", k == "user-agent", k == "te", k == "accept-encoding":
			continue
		}
		if len(vs) > 0 {
			m.Headers[k] = vs[0]
		}
	}
	if method == methodSendSpan {
		var sm v1.PSpanMessage
		if err := proto.Unmarshal(b, &sm); err != nil {
			return err
		}
		switch {
		case sm.GetSpan() != nil:
			m.Kind, m.Events = "span", len(sm.GetSpan().GetSpanEvent())
		case sm.GetSpanChunk() != nil:
			m.Kind, m.Events = "chunk", len(sm.GetSpanChunk().GetSpanEvent())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return nil
	}
	now := time.Now()
	m.Millis = now.Sub(r.start).Milliseconds()
	r.last = now
	if method == methodSendStat {
		r.statAgents[m.Headers["agentid"]] = true
	}
	r.msgs = append(r.msgs, m)
	return nil
}

// handle serves every method: unary requests get a successful PResult,
// client streams are read to their end, pings are answered.
func (r *recorder) handle(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	md, _ := metadata.FromIncomingContext(stream.Context())
	call := r.calls.Add(1)
	recv := func() ([]byte, error) {
		var b []byte
		err := stream.RecvMsg(&b)
		return b, err
	}
	empty := []byte{}
	switch {
	case method == methodPing:
		for {
			if _, err := recv(); err != nil {
				return nil
			}
			// An empty PPing answers a ping.
			if err := stream.SendMsg(&empty); err != nil {
				return err
			}
		}
	case strings.HasPrefix(method, "/v1.ProfilerCommandService/"):
		// The agent waits for commands that never come.
		for {
			if _, err := recv(); err != nil {
				return nil
			}
		}
	case method == methodSendSpan || method == methodSendStat:
		for {
			b, err := recv()
			if errors.Is(err, io.EOF) {
				return stream.SendMsg(&empty) // google.protobuf.Empty
			}
			if err != nil {
				return err
			}
			if err := r.add(method, call, md, b); err != nil {
				return err
			}
		}
	case recordedMessage(method) != nil:
		b, err := recv()
		if err != nil {
			return err
		}
		if err := r.add(method, call, md, b); err != nil {
			return err
		}
		return stream.SendMsg(&v1.PResult{Success: true})
	}
	// Anything else (SendSpanBatch, which the Node agent does not use)
	// would need answers of other types: refuse it loudly.
	return fmt.Errorf("the recorder does not serve %s", method)
}

// recNames resolves the API and string ids of one agent from the recording.
type recNames struct {
	apis map[int32]*v1.PApiMetaData
	strs map[int32]string
}

func (n recNames) API(id int32) (translate.API, bool) {
	a, ok := n.apis[id]
	if !ok {
		return translate.API{}, false
	}
	return translate.API{Info: a.GetApiInfo(), Line: a.GetLine(), Type: a.GetType(), Location: a.GetLocation()}, true
}
func (n recNames) SQL(int32) (string, bool)     { return "", false }
func (n recNames) SQLUID([]byte) (string, bool) { return "", false }
func (n recNames) String(id int32) (string, bool) {
	s, ok := n.strs[id]
	return s, ok
}

// TestNodeAgentRecordingTranslates converts the recording span by span,
// each span with all its chunks, as the receiver does when nothing is late:
// every Pinpoint span and every span event must become one OTel span, with
// every name resolved. The replay benchmark counts on both.
func TestNodeAgentRecordingTranslates(t *testing.T) {
	msgs := readRecording(t, recordingPath)
	names := map[string]recNames{}
	agentNames := func(h map[string]string) recNames {
		k := h["agentid"] + "/" + h["starttime"]
		n, ok := names[k]
		if !ok {
			n = recNames{apis: map[int32]*v1.PApiMetaData{}, strs: map[int32]string{}}
			names[k] = n
		}
		return n
	}
	type bundle struct {
		agentID string
		names   recNames
		b       translate.Bundle
	}
	var order []string
	bundles := map[string]*bundle{}
	wantSpans := 0
	for _, m := range msgs {
		switch m.Method {
		case methodApiMeta:
			var a v1.PApiMetaData
			if err := proto.Unmarshal(m.Proto, &a); err != nil {
				t.Fatal(err)
			}
			agentNames(m.Headers).apis[a.GetApiId()] = &a
		case methodStringMeta:
			var s v1.PStringMetaData
			if err := proto.Unmarshal(m.Proto, &s); err != nil {
				t.Fatal(err)
			}
			agentNames(m.Headers).strs[s.GetStringId()] = s.GetStringValue()
		case methodSendSpan:
			var sm v1.PSpanMessage
			if err := proto.Unmarshal(m.Proto, &sm); err != nil {
				t.Fatal(err)
			}
			b := translate.Bundle{Span: sm.GetSpan()}
			if c := sm.GetSpanChunk(); c != nil {
				b = translate.Bundle{Chunks: []*v1.PSpanChunk{c}}
			}
			tx, spanID, err := translate.Check(b, m.Headers["agentid"])
			if err != nil {
				t.Fatal(err)
			}
			key := tx.String() + "/" + strconv.FormatInt(spanID, 10)
			bu := bundles[key]
			if bu == nil {
				bu = &bundle{agentID: m.Headers["agentid"], names: agentNames(m.Headers)}
				bundles[key] = bu
				order = append(order, key)
			}
			if b.Span != nil {
				bu.b.Span = b.Span
			}
			bu.b.Chunks = append(bu.b.Chunks, b.Chunks...)
			wantSpans += m.Events
			if m.Kind == "span" {
				wantSpans++
			}
		}
	}
	tr := translate.NewTranslator(translate.Options{})
	got := 0
	for _, key := range order {
		bu := bundles[key]
		spans := ptrace.NewSpanSlice()
		r, err := tr.Translate(spans, bu.agentID, bu.b, bu.names)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if r.Duplicates != 0 || r.Unresolved != 0 {
			t.Errorf("%s: %d duplicate events, %d unresolved names", key, r.Duplicates, r.Unresolved)
		}
		got += r.Spans
	}
	if got != wantSpans {
		t.Errorf("%d OTel spans from %d Pinpoint spans and span events", got, wantSpans)
	}
}
