// Package bench holds the scenarios of `make bench` that run weftcol as a
// process against real dependencies (the pipeline and Pinpoint scenarios),
// and their smoke tests that `make test` runs. The storage scenario lives
// with the exporter (exporter/smartclickhouseexporter); the report is
// written by tests/bench/report.
package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftobs/weft/tests/harness"
	"github.com/weftobs/weft/tests/workload"
)

const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// markerService is the service.name of the spans that measure latency.
const markerService = "weft-bench-marker"

// batch is one encoded OTLP export request and where the trace ids are in
// it: each replay of the pool writes a new cycle number into them, so that
// no trace id repeats and trace_completion sees new traces, as in
// production.
type batch struct {
	buf      []byte
	spans    int
	traceIDs []int // offsets of the 16-byte trace ids
}

// pool builds batches of about spansPerBatch spans from the workload, as an
// agent collector on each node forwards them: the spans of the pods of one
// node together, with their k8s resource attributes.
func pool(c *workload.Cluster, spans, spansPerBatch int) []*batch {
	gen := workload.NewGenerator(c, 7)
	byNode := map[int]ptrace.Traces{}
	var out []*batch
	flush := func(node int) {
		td := byNode[node]
		delete(byNode, node)
		out = append(out, encode(td))
	}
	for made := 0; made < spans; {
		td := gen.Traces(1000)
		made += td.SpanCount()
		for _, rs := range td.ResourceSpans().All() {
			node := nodeOf(c, rs.Resource().Attributes())
			dst, ok := byNode[node]
			if !ok {
				dst = ptrace.NewTraces()
				byNode[node] = dst
			}
			rs.CopyTo(dst.ResourceSpans().AppendEmpty())
			if dst.SpanCount() >= spansPerBatch {
				flush(node)
			}
		}
	}
	nodes := make([]int, 0, len(byNode))
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Ints(nodes)
	for _, n := range nodes {
		flush(n)
	}
	return out
}

func nodeOf(c *workload.Cluster, res pcommon.Map) int {
	name, _ := res.Get("k8s.node.name")
	for i := range c.Nodes {
		if c.Nodes[i].Name == name.Str() {
			return i
		}
	}
	return -1
}

func encode(td ptrace.Traces) *batch {
	buf, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		panic(err)
	}
	b := &batch{buf: buf, spans: td.SpanCount()}
	from := 0
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				tid := s.TraceID()
				i := bytes.Index(buf[from:], tid[:])
				if i < 0 {
					panic("trace id not found in its encoded batch")
				}
				b.traceIDs = append(b.traceIDs, from+i)
				from += i + len(tid)
			}
		}
	}
	return b
}

// setCycle writes cycle into the last 4 bytes of every trace id.
func (b *batch) setCycle(cycle uint32) {
	for _, off := range b.traceIDs {
		binary.BigEndian.PutUint32(b.buf[off+12:], cycle)
	}
}

// marker is a one-span batch whose trace id carries its sequence number.
func marker(seq uint64) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", markerService)
	s := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	s.SetName("marker")
	var tid pcommon.TraceID
	copy(tid[:], "WEFTMARK")
	binary.BigEndian.PutUint64(tid[8:], seq)
	s.SetTraceID(tid)
	s.SetSpanID(pcommon.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	now := time.Now()
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
	s.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
	buf, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		panic(err)
	}
	return buf
}

// markerSeq reads a marker's sequence number from its trace id.
func markerSeq(tid pcommon.TraceID) (uint64, bool) {
	if !bytes.Equal(tid[:8], []byte("WEFTMARK")) {
		return 0, false
	}
	return binary.BigEndian.Uint64(tid[8:]), true
}

// load is the result of a load generator run.
type load struct {
	sent, refused  int64 // spans accepted and refused by the collector
	refusal        error // the first refusal
	markerSent     map[uint64]time.Time
	start, stopped time.Time
}

// generate sends the pool to addr at rate spans/s (0: as fast as the
// collector accepts) for d, from several connections, and a marker every
// 250 ms.
func generate(ctx context.Context, addr string, batches []*batch, rate float64, d time.Duration) (*load, error) {
	const senders = 4
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(harness.RawCodec{}), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	l := &load{markerSent: map[uint64]time.Time{}, start: time.Now()}
	deadline := l.start.Add(d)
	var sent, refused atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := 0; w < senders; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var reply []byte
			for cycle := uint32(1); ; cycle++ {
				for i := w; i < len(batches); i += senders {
					now := time.Now()
					if now.After(deadline) || ctx.Err() != nil {
						return
					}
					if rate > 0 {
						// Pace the total: wait until the spans sent so far
						// are due.
						due := l.start.Add(time.Duration(float64(sent.Load()+refused.Load()) / rate * float64(time.Second)))
						if wait := time.Until(due); wait > 0 {
							time.Sleep(wait)
						}
					}
					b := batches[i]
					b.setCycle(cycle)
					if err := conn.Invoke(ctx, exportMethod, &b.buf, &reply); err != nil {
						refused.Add(int64(b.spans))
						firstErr.CompareAndSwap(nil, err)
						continue
					}
					sent.Add(int64(b.spans))
				}
			}
		}(w)
	}
	var reply []byte
	ticker := time.NewTicker(250 * time.Millisecond)
	for seq := uint64(1); time.Now().Before(deadline); seq++ {
		select {
		case <-ctx.Done():
		case <-ticker.C:
		}
		t := time.Now()
		m := marker(seq)
		if err := conn.Invoke(ctx, exportMethod, &m, &reply); err == nil {
			l.markerSent[seq] = t
		}
	}
	ticker.Stop()
	wg.Wait()
	l.stopped = time.Now()
	l.sent, l.refused = sent.Load(), refused.Load()
	l.refusal, _ = firstErr.Load().(error)
	if l.sent == 0 {
		return l, fmt.Errorf("the collector accepted no spans: %v", l.refusal)
	}
	return l, nil
}

// latencies are the markers' end-to-end latencies in milliseconds, sorted.
func latencies(sent map[uint64]time.Time, seen map[uint64]time.Time) []float64 {
	var ms []float64
	for seq, t := range sent {
		if s, ok := seen[seq]; ok {
			ms = append(ms, float64(s.Sub(t).Microseconds())/1000)
		}
	}
	sort.Float64s(ms)
	return ms
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// procCPU is a process's user+system CPU time (/proc/<pid>/stat).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q %q", pid, f[11], f[12])
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// peakRSS is a process's peak resident memory in bytes (VmHWM).
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}
