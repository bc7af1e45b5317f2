package stitch

import (
	"runtime"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"testing"
	"time"

	"github.com/weftobs/weft/processor/tracecompletionprocessor/groundtruth"
)

// benchInput is a busy shop: every service traced, DeepFlow rows for every
// capture, retries, some one-way rows; about 60 spans per request, three
// quarters of them DeepFlow rows of some 45 attributes.
func benchInput(seed uint64, requests int, start time.Time) groundtruth.Output {
	return groundtruth.Generate(groundtruth.Config{
		Seed: seed, Requests: requests, Rate: 2000, Instrument: groundtruth.InstrumentAll, RetryRate: 0.1,
		OneWayRate: 0.05, ClockSkew: 5 * time.Millisecond, ExportDelay: time.Second, Start: start,
	})
}

// BenchmarkEngine is the whole path a span takes: decoding its correlation
// attributes and encoding it on the way in, grouping, linking and
// rebuilding pdata on the way out. One engine takes a fresh stream each
// iteration (generated with the timer stopped), as a running collector
// would. Run it with -cpu 1 for spans per second per core.
//
// "mixed" is the simulated shop as exported: three quarters DeepFlow rows
// of about 45 attributes (resource and span), a quarter application spans
// of about 10. "app" keeps only the application spans (trace-id and
// span-id stitching of SDK batches), "deepflow" only the DeepFlow rows.
func BenchmarkEngine(b *testing.B) {
	for _, mix := range []string{"mixed", "app", "deepflow"} {
		b.Run(mix, func(b *testing.B) {
			opt := testOptions()
			e := New(opt)
			start := time.Unix(1_760_000_000, 0)
			spans := 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				in := benchInput(uint64(i), 1000, start)
				if mix != "mixed" {
					in = keep(in, mix == "app")
				}
				start = start.Add(10 * time.Minute)
				spans += in.Spans
				b.StartTimer()
				replay(e, in, 250*time.Millisecond)
			}
			b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
		})
	}
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
