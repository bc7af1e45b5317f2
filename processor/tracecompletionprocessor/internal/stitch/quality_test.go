package stitch

import (
	"hash/fnv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/processor/tracecompletionprocessor/groundtruth"
)

// busy is a shop under load: many requests in flight sharing keep-alive
// connections and threads, clocks 10ms apart, retries and one-way rows.
func busy(seed uint64) groundtruth.Config {
	return groundtruth.Config{
		Seed: seed, Requests: 600, Rate: 1500, RetryRate: 0.15, OneWayRate: 0.1,
		ClockSkew: 10 * time.Millisecond, ExportDelay: 2 * time.Second,
	}
}

func logReport(t *testing.T, rep groundtruth.Report) {
	t.Helper()
	t.Log(rep)
	for _, w := range rep.Wrong {
		t.Log("wrong:", w)
	}
	for _, m := range rep.Missed {
		t.Log("missed:", m)
	}
	for _, m := range rep.Astray {
		t.Log("astray:", m)
	}
}

// assertStitched checks a report of a stitchable simulation: every span out
// once, at least 99% precision and recall, nothing linked across requests.
func assertStitched(t *testing.T, rep groundtruth.Report) {
	t.Helper()
	assert.Zero(t, rep.Missing, "every span comes out")
	assert.Zero(t, rep.Unexpected, "only once, and merged response rows not at all")
	assert.GreaterOrEqual(t, rep.Precision(), 0.99)
	assert.GreaterOrEqual(t, rep.Recall(), 0.99)
	assert.Zero(t, rep.CrossTrace, "no link between different requests")
	assert.Zero(t, rep.SharedTraceIDs, "no trace id shared by different requests")
	assert.Zero(t, rep.Broken, "a link's two ends share the trace id")
	assert.Zero(t, rep.UnstitchableMislinked)
}

// TestPrecisionAndRecall runs the simulated shop through the engine and
// checks every link against the truth: on topologies whose links the data
// reveals, at least 99% of them are found and (nearly) none is wrong; links
// never join two requests; unstitchable spans (thread pool, pipelining)
// stay unlinked rather than mislinked.
func TestPrecisionAndRecall(t *testing.T) {
	tests := []struct {
		name         string
		mod          func(*groundtruth.Config)
		unstitchable bool
		keys         []string
	}{
		{"traced services, DeepFlow export", func(c *groundtruth.Config) { c.Instrument = groundtruth.InstrumentAll },
			false, []string{"tcp_seq", "span_id", "syscall", "x_request_id"}},
		{"no tracing, DeepFlow export", func(c *groundtruth.Config) { c.Instrument = groundtruth.InstrumentNone },
			false, []string{"tcp_seq", "syscall", "x_request_id"}},
		{"front service traced, Weft vocabulary", func(c *groundtruth.Config) {
			c.Instrument, c.Format = groundtruth.InstrumentFront, groundtruth.Vocabulary
		}, false, []string{"tcp_seq", "span_id", "syscall", "x_request_id"}},
		{"traced, thread pool and pipelining", func(c *groundtruth.Config) {
			c.Instrument, c.ThreadPool, c.Pipeline = groundtruth.InstrumentAll, true, true
		}, true, []string{"tcp_seq", "span_id", "syscall", "x_request_id"}},
		{"no tracing, thread pool and pipelining", func(c *groundtruth.Config) {
			c.Instrument, c.ThreadPool, c.Pipeline = groundtruth.InstrumentNone, true, true
		}, true, []string{"tcp_seq", "syscall", "x_request_id"}},
		{"traced, gRPC calls multiplexed on HTTP/2", func(c *groundtruth.Config) {
			c.Instrument, c.Multiplex = groundtruth.InstrumentAll, true
		}, true, []string{"tcp_seq", "span_id", "syscall", "x_request_id"}},
		{"no tracing, gRPC calls multiplexed on HTTP/2, DeepFlow export", func(c *groundtruth.Config) {
			c.Instrument, c.Multiplex = groundtruth.InstrumentNone, true
		}, true, []string{"tcp_seq", "syscall", "x_request_id"}},
		{"no tracing, gRPC calls multiplexed on HTTP/2, Weft vocabulary", func(c *groundtruth.Config) {
			c.Instrument, c.Multiplex, c.Format = groundtruth.InstrumentNone, true, groundtruth.Vocabulary
		}, true, []string{"tcp_seq", "syscall", "x_request_id"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := busy(uint64(100 + i))
			tt.mod(&cfg)
			out := groundtruth.Generate(cfg)
			tds, _ := replay(New(testOptions()), out, 100*time.Millisecond)
			rep := groundtruth.Evaluate(out.Truth, tds)
			logReport(t, rep)

			assertStitched(t, rep)
			if tt.unstitchable {
				assert.Positive(t, rep.Unstitchable, "the scenario has spans whose parent the data hides")
			} else {
				assert.Zero(t, rep.Unstitchable)
			}
			for _, k := range tt.keys {
				assert.Positive(t, rep.ByKey[k][0], "links by %s", k)
			}
			assert.Positive(t, rep.Sessions, "one-way rows were merged")
		})
	}
}

// TestConcurrentAddsAndParallelEmit: batches added from several goroutines
// at once, and big flushes rebuilt by four, stitch as well as one at a
// time: no span lost or sent twice, the same precision and recall.
func TestConcurrentAddsAndParallelEmit(t *testing.T) {
	cfg := busy(11)
	cfg.Instrument = groundtruth.InstrumentAll
	cfg.Requests = 1500
	out := groundtruth.Generate(cfg)
	e := New(testOptions())
	e.procs = 4
	var tds []ptrace.Traces
	parallel := 0
	play(e, out, 500*time.Millisecond, false, true, func(r Result) {
		if r.Spans > 0 {
			tds = append(tds, r.Traces)
		}
		if r.Spans >= 2*minRunSpans {
			parallel++
		}
	})
	require.Positive(t, parallel, "some flushes are big enough to be split")
	rep := groundtruth.Evaluate(out.Truth, tds)
	logReport(t, rep)
	assertStitched(t, rep)
}

// TestLateSpans: spans exported after their request's group left still
// join their request's trace; links around them point at true ancestors
// (the true parent may have left before it could be linked), never across
// requests.
func TestLateSpans(t *testing.T) {
	cfg := busy(7)
	cfg.Instrument = groundtruth.InstrumentNone
	cfg.LateRate, cfg.LateDelay = 0.03, 6*time.Second // wait is 2s
	out := groundtruth.Generate(cfg)
	tds, results := replay(New(testOptions()), out, 100*time.Millisecond)
	rep := groundtruth.Evaluate(out.Truth, tds)
	logReport(t, rep)
	late := 0
	for _, r := range results {
		late += r.LateJoins
	}
	assert.Positive(t, rep.LateSpans)
	assert.Positive(t, late, "late joins counted")
	assert.GreaterOrEqual(t, float64(rep.LateJoined)/float64(rep.LateSpans), 0.8)
	assert.Equal(t, rep.Made, rep.Ancestor, "every link points at a true ancestor")
	assert.GreaterOrEqual(t, rep.Precision(), 0.95)
	assert.Zero(t, rep.CrossTrace)
	assert.Zero(t, rep.SharedTraceIDs)
	assert.Zero(t, rep.Missing)
}

// TestScaleOutByTraceID is the two-tier deployment: a first tier routes
// spans by trace id (load_balancing, routing_key traceID) to three second-
// tier collectors running trace_completion. Links between spans that carry
// the same trace id are all kept; links that need a span without trace
// context (DeepFlow rows of uninstrumented hops, whose made-up trace ids
// scatter) are made only when both ends land on one collector; no link is
// ever wrong or crosses requests.
func TestScaleOutByTraceID(t *testing.T) {
	const collectors = 3
	cfg := busy(8)
	cfg.Instrument = groundtruth.InstrumentAll
	out := groundtruth.Generate(cfg)
	shards := make([]groundtruth.Output, collectors)
	for _, b := range out.Batches {
		parts := routeByTraceID(b.Traces, collectors)
		for i := range shards {
			shards[i].Batches = append(shards[i].Batches, groundtruth.Batch{At: b.At, Traces: parts[i]})
		}
	}
	var all []ptrace.Traces
	for i := range shards {
		tds, _ := replay(New(testOptions()), shards[i], 100*time.Millisecond)
		all = append(all, tds...)
	}
	rep := groundtruth.Evaluate(out.Truth, all)
	logReport(t, rep)
	assert.Zero(t, rep.Missing)
	assert.GreaterOrEqual(t, rep.SameTraceRecall(), 0.99, "links within one trace id are all kept")
	assert.Less(t, rep.Recall(), 0.9, "links through made-up trace ids are mostly lost")
	assert.Equal(t, rep.Made, rep.Ancestor, "what is linked is linked right, or to an ancestor")
	assert.Zero(t, rep.CrossTrace)
	assert.Zero(t, rep.SharedTraceIDs)
}

// routeByTraceID splits a batch as load_balancing's traceID routing does:
// each span goes to the collector its trace id hashes to, with a copy of
// its resource and scope.
func routeByTraceID(td ptrace.Traces, n int) []ptrace.Traces {
	parts := make([]ptrace.Traces, n)
	for i := range parts {
		parts[i] = ptrace.NewTraces()
	}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		for j := 0; j < rs.ScopeSpans().Len(); j++ {
			ss := rs.ScopeSpans().At(j)
			for k := 0; k < ss.Spans().Len(); k++ {
				sp := ss.Spans().At(k)
				h := fnv.New32a()
				id := sp.TraceID()
				h.Write(id[:])
				dst := parts[h.Sum32()%uint32(n)].ResourceSpans().AppendEmpty()
				rs.Resource().CopyTo(dst.Resource())
				dss := dst.ScopeSpans().AppendEmpty()
				ss.Scope().CopyTo(dss.Scope())
				sp.CopyTo(dss.Spans().AppendEmpty())
			}
		}
	}
	return parts
}
