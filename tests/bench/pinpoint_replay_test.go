package bench

// Helpers of the Pinpoint scenario (pinpoint_test.go): reading the recording
// of real Node-agent traffic, replaying it over gRPC with little CPU, an OTLP
// sink that counts spans without decoding them, and the collector's CPU.
// Everything is named pinpoint* because the package is shared with the
// pipeline scenario.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/weftobs/weft/tests/harness"
)

// pinpointRecordingPath is the recording of real Node agents made by
// TestRecordNodeAgent; its format is documented in
// receiver/pinpointreceiver/record_test.go.
var pinpointRecordingPath = filepath.Join("receiver", "pinpointreceiver", "testdata", "node-agent.rec")

// pinpointRecLine is one line of the recording.
type pinpointRecLine struct {
	Method  string            `json:"method"`
	Headers map[string]string `json:"headers"`
	Kind    string            `json:"kind"`
	Events  int               `json:"events"`
	Proto   []byte            `json:"proto"`
}

// pinpointUnary is a recorded unary call: agent info or metadata.
type pinpointUnary struct {
	method string
	md     metadata.MD
	body   []byte
}

// pinpointSpanFrame is a recorded span message, ready to be sent again with
// another transaction start time.
type pinpointSpanFrame struct {
	agent  int // index into pinpointRecording.agents
	raw    []byte
	events int
	spans  int // 1 for a span, 0 for a chunk
	// The PTransactionId.agentStartTime varint inside raw: replays add a
	// round number to it, so that every replay of a transaction is a new
	// transaction (same ids again would be merged by the receiver as
	// duplicate chunks of one span).
	startAt, startLen int
	start             uint64
}

// pinpointRecording is the recording, arranged for replay.
type pinpointRecording struct {
	unary  []pinpointUnary
	agents []metadata.MD // headers of each agent's SendSpan stream
	frames []pinpointSpanFrame
	events int // span events in one replay of frames
	spans  int // Pinpoint spans in one replay
	// cut[i] tells whether a replay may stop before frames[i]: no chunk
	// before i waits for a span at i or later. A replay stopped elsewhere
	// leaves chunks that the receiver holds for chunk_wait (30 s).
	cut []bool
}

// pinpointLoadRecording reads the recording. Stats are left out: the
// scenario measures spans.
func pinpointLoadRecording(tb testing.TB) *pinpointRecording {
	tb.Helper()
	path := filepath.Join(harness.RepoRoot(), pinpointRecordingPath)
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	rec := &pinpointRecording{}
	agentIndex := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for line := 1; sc.Scan(); line++ {
		var l pinpointRecLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			tb.Fatalf("%s line %d: %v", path, line, err)
		}
		md := metadata.New(l.Headers)
		switch {
		case l.Method == "/v1.Span/SendSpan":
			key := l.Headers["agentid"] + "/" + l.Headers["starttime"]
			a, ok := agentIndex[key]
			if !ok {
				a = len(rec.agents)
				agentIndex[key] = a
				rec.agents = append(rec.agents, md)
			}
			fr := pinpointSpanFrame{agent: a, raw: l.Proto, events: l.Events}
			if l.Kind == "span" {
				fr.spans = 1
			}
			if fr.startAt, fr.startLen, fr.start, err = pinpointStartTimeAt(l.Proto); err != nil {
				tb.Fatalf("%s line %d: %v", path, line, err)
			}
			rec.frames = append(rec.frames, fr)
			rec.events += fr.events
			rec.spans += fr.spans
		case strings.HasPrefix(l.Method, "/v1.Agent/"), strings.HasPrefix(l.Method, "/v1.Metadata/"):
			rec.unary = append(rec.unary, pinpointUnary{method: l.Method, md: md, body: l.Proto})
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	if err := rec.findCuts(); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	if len(rec.frames) == 0 || len(rec.unary) == 0 {
		tb.Fatalf("%s: %d span messages and %d agent/metadata calls", path, len(rec.frames), len(rec.unary))
	}
	return rec
}

// findCuts fills rec.cut.
func (rec *pinpointRecording) findCuts() error {
	// A span is known by its transaction id and span id, both as bytes.
	key := func(msg []byte) (string, error) {
		lo, hi, ok := pinpointField(msg, 0, len(msg), 1)
		if !ok {
			lo, hi, ok = pinpointField(msg, 0, len(msg), 2)
		}
		if !ok {
			return "", errors.New("span message with neither span nor chunk")
		}
		txLo, txHi, ok := pinpointField(msg, lo, hi, 2)
		if !ok {
			return "", errors.New("span message without transactionId")
		}
		for off := lo; off < hi; {
			num, typ, l := protowire.ConsumeTag(msg[off:hi])
			if l < 0 {
				return "", protowire.ParseError(l)
			}
			off += l
			n := protowire.ConsumeFieldValue(num, typ, msg[off:hi])
			if n < 0 {
				return "", protowire.ParseError(n)
			}
			if num == 3 && typ == protowire.Fixed64Type { // spanId
				return string(msg[txLo:txHi]) + "/" + string(msg[off:off+n]), nil
			}
			off += n
		}
		return "", errors.New("span message without spanId")
	}
	spanAt := map[string]int{}
	keys := make([]string, len(rec.frames))
	for i, f := range rec.frames {
		k, err := key(f.raw)
		if err != nil {
			return err
		}
		keys[i] = k
		if f.spans == 1 {
			spanAt[k] = i
		}
	}
	// open counts the chunks before i whose span is at i or later.
	rec.cut = make([]bool, len(rec.frames)+1)
	waiting := map[int]int{} // span index -> chunks before it that wait for it
	open := 0
	for i, f := range rec.frames {
		rec.cut[i] = open == 0
		open -= waiting[i]
		if f.spans == 0 {
			s, ok := spanAt[keys[i]]
			if !ok {
				return fmt.Errorf("chunk %d has no span in the recording", i)
			}
			if s > i {
				waiting[s]++
				open++
			}
		}
	}
	rec.cut[len(rec.frames)] = true
	return nil
}

// pinpointStartTimeAt finds PSpanMessage.{span=1|spanChunk=2}.transactionId=2
// .agentStartTime=2 in a span message: its offset, length and value.
func pinpointStartTimeAt(msg []byte) (at, n int, v uint64, err error) {
	lo, hi, ok := pinpointField(msg, 0, len(msg), 1)
	if !ok {
		lo, hi, ok = pinpointField(msg, 0, len(msg), 2)
	}
	if !ok {
		return 0, 0, 0, errors.New("span message with neither span nor chunk")
	}
	if lo, hi, ok = pinpointField(msg, lo, hi, 2); !ok {
		return 0, 0, 0, errors.New("span message without transactionId")
	}
	for off := lo; off < hi; {
		num, typ, l := protowire.ConsumeTag(msg[off:hi])
		if l < 0 {
			return 0, 0, 0, protowire.ParseError(l)
		}
		off += l
		if num == 2 && typ == protowire.VarintType {
			v, l := protowire.ConsumeVarint(msg[off:hi])
			if l < 0 {
				return 0, 0, 0, protowire.ParseError(l)
			}
			return off, l, v, nil
		}
		if l = protowire.ConsumeFieldValue(num, typ, msg[off:hi]); l < 0 {
			return 0, 0, 0, protowire.ParseError(l)
		}
		off += l
	}
	return 0, 0, 0, errors.New("transactionId without agentStartTime")
}

// pinpointField finds the first length-delimited field num of the message
// in msg[lo:hi] and returns where its value lies in msg.
func pinpointField(msg []byte, lo, hi int, num protowire.Number) (int, int, bool) {
	for off := lo; off < hi; {
		n, typ, l := protowire.ConsumeTag(msg[off:hi])
		if l < 0 {
			return 0, 0, false
		}
		off += l
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(msg[off:hi])
			if l < 0 {
				return 0, 0, false
			}
			start := off + l - len(v)
			return start, start + len(v), true
		}
		if l = protowire.ConsumeFieldValue(n, typ, msg[off:hi]); l < 0 {
			return 0, 0, false
		}
		off += l
	}
	return 0, 0, false
}

// pinpointOut is a message to send: raw bytes, or a span frame whose
// transaction start time is moved by delta.
type pinpointOut struct {
	raw   []byte
	frame *pinpointSpanFrame
	delta uint64
}

// buffers sends the recorded bytes; a span frame's start-time varint is
// replaced without copying the rest.
func (m *pinpointOut) Buffers() (mem.BufferSlice, error) {
	if m.frame == nil {
		return mem.BufferSlice{mem.SliceBuffer(m.raw)}, nil
	}
	f := m.frame
	// Only the varint changes: send the recorded bytes around it. It
	// keeps its length (a longer-than-needed varint is valid protobuf),
	// so no length prefix around it changes.
	v := make([]byte, f.startLen)
	x := f.start + m.delta
	for i := range v {
		v[i] = byte(x&0x7f) | 0x80
		x >>= 7
	}
	v[len(v)-1] &^= 0x80
	if x != 0 {
		return nil, fmt.Errorf("start time %d+%d does not fit %d varint bytes", f.start, m.delta, f.startLen)
	}
	return mem.BufferSlice{
		mem.SliceBuffer(f.raw[:f.startAt]),
		mem.SliceBuffer(v),
		mem.SliceBuffer(f.raw[f.startAt+f.startLen:]),
	}, nil
}

func pinpointDial(tb testing.TB, port int) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient("127.0.0.1:"+strconv.Itoa(port),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(harness.RawCodec{})))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return conn
}

// pinpointSendMetadata sends the recorded agent info and metadata, as the
// agents did before their spans, so that the receiver resolves names
// instead of holding spans back for them.
func pinpointSendMetadata(tb testing.TB, rec *pinpointRecording, agentPort int) {
	tb.Helper()
	conn := pinpointDial(tb, agentPort)
	for _, u := range rec.unary {
		ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), u.md), 10*time.Second)
		var reply []byte
		err := conn.Invoke(ctx, u.method, &pinpointOut{raw: u.body}, &reply)
		cancel()
		if err != nil {
			tb.Fatalf("%s: %v", u.method, err)
		}
	}
}

// pinpointLoad is what a replay sent and what the collector accepted: a
// message counts as accepted when the stream that carried it was closed by
// the collector with success, which SendSpan does only after it handed
// every message of the stream to the pipeline.
type pinpointLoad struct {
	rounds         int64
	sentEvents     int64
	acceptedEvents int64
	acceptedSpans  int64
	failedStreams  int64
	firstErr       error
	wall           time.Duration
}

// pinpointReplay sends the recording's span messages to spanPort from
// workers goroutines, each on its own connection with one SendSpan stream
// per recorded agent (the agent's headers), over and over for d. rate caps
// span events per second over all workers (0: as fast as the collector
// takes them). Every replay of the recording (a round) gets new
// transaction ids. Streams are closed at the end of each round, as an agent
// does on reconnect, so that acceptance is known round by round.
func pinpointReplay(tb testing.TB, rec *pinpointRecording, spanPort, workers int, rate float64, d time.Duration) *pinpointLoad {
	tb.Helper()
	var (
		res    pinpointLoad
		nextID atomic.Uint64
		mu     sync.Mutex
		wg     sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		conn := pinpointDial(tb, spanPort)
		wg.Go(func() {
			var local pinpointLoad
			sentEvents := 0.0
			perWorker := rate / float64(workers)
			for time.Now().Before(deadline) {
				delta := nextID.Add(1)
				err := pinpointRound(conn, rec, delta, deadline, &local, func(events int) {
					if rate <= 0 {
						return
					}
					sentEvents += float64(events)
					due := start.Add(time.Duration(sentEvents / perWorker * float64(time.Second)))
					if wait := time.Until(due); wait > 0 {
						time.Sleep(wait)
					}
				})
				local.rounds++
				if err != nil {
					local.failedStreams++
					if local.firstErr == nil {
						local.firstErr = err
					}
					// A collector that refuses streams would make this a
					// busy loop.
					time.Sleep(100 * time.Millisecond)
				}
			}
			mu.Lock()
			res.rounds += local.rounds
			res.sentEvents += local.sentEvents
			res.acceptedEvents += local.acceptedEvents
			res.acceptedSpans += local.acceptedSpans
			res.failedStreams += local.failedStreams
			if res.firstErr == nil {
				res.firstErr = local.firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.wall = time.Since(start)
	return &res
}

// pinpointRound replays the recording once, or until deadline, with
// transaction start times moved by delta.
func pinpointRound(conn *grpc.ClientConn, rec *pinpointRecording, delta uint64, deadline time.Time,
	load *pinpointLoad, pace func(events int),
) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type stream struct {
		cs            grpc.ClientStream
		events, spans int64
		broken        bool
	}
	streams := make([]*stream, len(rec.agents))
	desc := &grpc.StreamDesc{StreamName: "SendSpan", ClientStreams: true}
	for i, md := range rec.agents {
		cs, err := conn.NewStream(metadata.NewOutgoingContext(ctx, md), desc, "/v1.Span/SendSpan")
		if err != nil {
			return err
		}
		streams[i] = &stream{cs: cs}
	}
	out := &pinpointOut{delta: delta}
	for i := range rec.frames {
		if rec.cut[i] && time.Now().After(deadline) {
			break
		}
		f := &rec.frames[i]
		s := streams[f.agent]
		if s.broken {
			continue
		}
		out.frame = f
		// SendMsg has encoded the message when it returns, so out can be
		// reused.
		if err := s.cs.SendMsg(out); err != nil {
			s.broken = true
			continue
		}
		load.sentEvents += int64(f.events)
		s.events += int64(f.events)
		s.spans += int64(f.spans)
		pace(f.events)
	}
	var firstErr error
	for _, s := range streams {
		err := s.cs.CloseSend()
		if err == nil {
			var reply []byte
			err = s.cs.RecvMsg(&reply)
		}
		if err != nil || s.broken {
			if err == nil {
				// The real error comes from RecvMsg, which a broken
				// stream returned above.
				err = errors.New("stream broke")
			}
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		load.acceptedEvents += s.events
		load.acceptedSpans += s.spans
	}
	return firstErr
}

// pinpointSink is an OTLP/gRPC trace endpoint that counts spans by walking
// the protobuf wire format, so that the exporter's receiving end costs
// little CPU of the machine the collector runs on.
type pinpointSink struct {
	addr  string
	spans atomic.Int64
	last  atomic.Int64 // unix nanoseconds of the last export
}

func pinpointStartSink(tb testing.TB) *pinpointSink {
	tb.Helper()
	s := &pinpointSink{}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(harness.RawCodec{}), grpc.UnknownServiceHandler(s.handle))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.addr = l.Addr().String()
	go srv.Serve(l)
	tb.Cleanup(srv.Stop)
	return s
}

const pinpointExportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

func (s *pinpointSink) handle(_ any, stream grpc.ServerStream) error {
	if m, _ := grpc.MethodFromServerStream(stream); m != pinpointExportMethod {
		return fmt.Errorf("the sink serves only %s, not %s", pinpointExportMethod, m)
	}
	var req []byte
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	n, err := pinpointCountSpans(req)
	if err != nil {
		return err
	}
	s.spans.Add(int64(n))
	s.last.Store(time.Now().UnixNano())
	empty := []byte{} // ExportTraceServiceResponse without partial success
	return stream.SendMsg(&empty)
}

// pinpointCountSpans counts ExportTraceServiceRequest.resource_spans=1
// .scope_spans=2.spans=2.
func pinpointCountSpans(req []byte) (int, error) {
	n := 0
	err := pinpointEach(req, 1, func(rs []byte) error {
		return pinpointEach(rs, 2, func(ss []byte) error {
			return pinpointEach(ss, 2, func([]byte) error { n++; return nil })
		})
	})
	return n, err
}

// pinpointEach calls fn with every length-delimited field num of msg.
func pinpointEach(msg []byte, num protowire.Number, fn func([]byte) error) error {
	for len(msg) > 0 {
		n, typ, l := protowire.ConsumeTag(msg)
		if l < 0 {
			return protowire.ParseError(l)
		}
		msg = msg[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(msg)
			if l < 0 {
				return protowire.ParseError(l)
			}
			if err := fn(v); err != nil {
				return err
			}
			msg = msg[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, msg)
		if l < 0 {
			return protowire.ParseError(l)
		}
		msg = msg[l:]
	}
	return nil
}

// pinpointWaitDrained waits until the sink has want spans, or nothing has
// arrived for quiet (what is missing then is lost), at most max. It
// returns when the last span arrived.
func pinpointWaitDrained(s *pinpointSink, want int64, quiet, max time.Duration) time.Time {
	begin := time.Now()
	for time.Since(begin) < max {
		last := time.Unix(0, s.last.Load())
		if s.spans.Load() >= want {
			return last
		}
		if time.Since(last) > quiet && time.Since(begin) > quiet {
			return last
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Unix(0, s.last.Load())
}
