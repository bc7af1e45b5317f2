package stitch

import (
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/processor/tracecompletionprocessor/groundtruth"
)

// benchInput is a busy shop: every service traced, DeepFlow rows for every
// capture, retries, some one-way rows; about 60 spans per request, three
// quarters of them DeepFlow rows of some 30 attributes.
func benchInput(seed uint64, requests int, start time.Time) groundtruth.Output {
	return groundtruth.Generate(groundtruth.Config{
		Seed: seed, Requests: requests, Rate: 2000, Instrument: groundtruth.InstrumentAll, RetryRate: 0.1,
		OneWayRate: 0.05, ClockSkew: 5 * time.Millisecond, ExportDelay: time.Second, Start: start,
	})
}

// BenchmarkEngine is the whole path a span takes: decoding its correlation
// attributes and encoding it on the way in, grouping, linking and
// rebuilding pdata on the way out. One engine takes a fresh stream each
// iteration, as a running collector would. Run it with -cpu 1 for spans
// per second per core; with more (-cpu 1,2) batches that arrive together
// are added at once, as receivers would, and spans/s shows how the engine
// scales.
//
// Each iteration's stream is generated with the timer stopped, and the
// generator's garbage collected (runtime.GC) then too: generating a stream
// allocates several times what the engine does. Only the stream being
// played is alive, and it is let go batch by batch as the engine takes it,
// as in a collector: holding every iteration's stream up front left
// gigabytes of pdata for each GC to mark, a third of the engine's CPU. Each
// iteration takes about 60k spans (some 150 MB of pdata), so keep
// -benchtime small (5x).
//
// "mixed" is the simulated shop as exported: three quarters DeepFlow rows
// of about 30 attributes (resource and span), a quarter application spans
// of about 10. "app" keeps only the application spans (trace-id and
// span-id stitching of SDK batches), "deepflow" only the DeepFlow rows.
func BenchmarkEngine(b *testing.B) {
	for _, mix := range []string{"mixed", "app", "deepflow"} {
		b.Run(mix, func(b *testing.B) {
			e := New(testOptions())
			b.ReportAllocs()
			out := 0
			spans, cpu := timeStreams(b, mix, func(in groundtruth.Output) {
				// What the engine sends on is dropped, as the next
				// consumer would; batches are dropped once added.
				play(e, in, 250*time.Millisecond, true, runtime.GOMAXPROCS(0) > 1, func(r Result) { out += r.Spans })
			})
			if out == 0 || out > spans {
				b.Fatalf("%d spans in, %d out", spans, out)
			}
			b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
			if cpu > 0 {
				// With -cpu 1 this is spans/s per core, and it holds up when
				// other processes compete for the cores (wall time does not).
				b.ReportMetric(float64(spans)/cpu.Seconds(), "spans/cpu-s")
			}
		})
	}
}

// timeStreams calls fn with a fresh stream of mix each iteration, made
// with the timer stopped and its garbage collected before fn starts, and
// returns the spans fn was given and the CPU time it took.
func timeStreams(b *testing.B, mix string, fn func(groundtruth.Output)) (spans int, cpu time.Duration) {
	start := time.Unix(1_760_000_000, 0)
	for i := range b.N {
		b.StopTimer()
		in := benchStream(uint64(i), mix, start)
		start = start.Add(10 * time.Minute)
		spans += in.Spans
		runtime.GC()
		b.StartTimer()
		cpu0 := cpuTime()
		fn(in)
		cpu += cpuTime() - cpu0
	}
	return spans, cpu
}

// benchStream is one iteration's input of a mix.
func benchStream(seed uint64, mix string, start time.Time) groundtruth.Output {
	in := benchInput(seed, 1000, start)
	if mix != "mixed" {
		in = keep(in, mix == "app")
	}
	in.Truth = nil // not needed here; it only takes memory
	return in
}

// keep keeps the application spans (app) or the DeepFlow rows.
func keep(in groundtruth.Output, app bool) groundtruth.Output {
	out := groundtruth.Output{Truth: in.Truth}
	for _, b := range in.Batches {
		b.Traces.ResourceSpans().RemoveIf(func(rs ptrace.ResourceSpans) bool {
			v, _ := rs.Resource().Attributes().Get("telemetry.sdk.name")
			return (v.Str() == "deepflow") == app
		})
		out.Spans += b.Traces.SpanCount()
		out.Batches = append(out.Batches, b)
	}
	return out
}

// BenchmarkHeldBytes measures the memory the engine holds per buffered
// span: heap in use after a GC, before and after adding the spans (nothing
// leaves: the wait is an hour), over the spans held. est-B/span is the
// engine's own estimate, which max_bytes is checked against.
func BenchmarkHeldBytes(b *testing.B) {
	for _, mix := range []string{"mixed", "app", "deepflow"} {
		b.Run(mix, func(b *testing.B) {
			in := benchInput(42, 2000, time.Time{})
			if mix != "mixed" {
				in = keep(in, mix == "app")
			}
			opt := testOptions()
			opt.Wait, opt.MaxWait = time.Hour, time.Hour
			var perSpan, est float64
			b.ReportAllocs()
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				e := New(opt)
				for _, batch := range in.Batches {
					e.Add(batch.At, batch.Traces)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				n, bytes := e.Buffered()
				perSpan = float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
				est = float64(bytes) / float64(n)
				runtime.KeepAlive(e)
			}
			b.ReportMetric(perSpan, "B/span")
			b.ReportMetric(est, "est-B/span")
		})
	}
}

// BenchmarkCopyFloor is what rebuilding the same spans as new pdata costs
// and nothing else: each batch is copied (CopyTo) into fresh Traces and
// the copy dropped, as the engine's output would be. An engine that holds
// spans compactly and rebuilds them cannot send spans faster than this;
// compare its spans/cpu-s with BenchmarkEngine's.
func BenchmarkCopyFloor(b *testing.B) {
	for _, mix := range []string{"mixed", "app", "deepflow"} {
		b.Run(mix, func(b *testing.B) {
			b.ReportAllocs()
			spans, cpu := timeStreams(b, mix, func(in groundtruth.Output) {
				for j := range in.Batches {
					out := ptrace.NewTraces()
					in.Batches[j].Traces.CopyTo(out)
					in.Batches[j].Traces = ptrace.Traces{}
				}
			})
			b.ReportMetric(float64(spans)/cpu.Seconds(), "spans/cpu-s")
		})
	}
}
