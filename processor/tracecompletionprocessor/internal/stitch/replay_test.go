package stitch

import (
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/processor/tracecompletionprocessor/groundtruth"
)

func testOptions() Options {
	return Options{
		Wait: 2 * time.Second, MaxWait: 30 * time.Second, MaxSpans: 1 << 30, MaxBytes: 1 << 40,
		LateJoinTTL: 2 * time.Minute, LateJoinMaxKeys: 1 << 20, TimeTolerance: 60 * time.Millisecond,
	}
}

// replay feeds a simulation's batches to e in arrival order, flushing on a
// simulated clock every tick, and returns everything e sent on.
func replay(e *Engine, out groundtruth.Output, tick time.Duration) ([]ptrace.Traces, []Result) {
	var tds []ptrace.Traces
	var results []Result
	play(e, out, tick, false, false, func(r Result) {
		results = append(results, r)
		if r.Spans > 0 {
			tds = append(tds, r.Traces)
		}
	})
	return tds, results
}

// play is replay with the results handed to sink. With consume, each
// batch is dropped from out once added, as a pipeline lets go of a batch
// it passed on: the benchmark then does not keep the whole stream alive
// (and marked by every GC) while the engine works through it. With
// concurrent, the batches that arrive between two ticks are added at once,
// each from a goroutine of its own, as receivers hand them over; sink is
// then called from those goroutines, one call at a time.
func play(e *Engine, out groundtruth.Output, tick time.Duration, consume, concurrent bool, sink func(Result)) {
	if len(out.Batches) == 0 {
		return
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	add := func(b *groundtruth.Batch) {
		res := e.Add(b.At, b.Traces)
		if consume {
			b.Traces = ptrace.Traces{}
		}
		mu.Lock()
		sink(res)
		mu.Unlock()
	}
	now := out.Batches[0].At
	for i := range out.Batches {
		b := &out.Batches[i]
		if now.After(b.At) {
			// Arrived before the next tick, with the batches before it.
			if concurrent {
				wg.Go(func() { add(b) })
			} else {
				add(b)
			}
			continue
		}
		wg.Wait()
		for !now.After(b.At) {
			sink(e.Flush(now, false))
			now = now.Add(tick)
		}
		if concurrent {
			wg.Go(func() { add(b) })
		} else {
			add(b)
		}
	}
	wg.Wait()
	for end := now.Add(e.opt.MaxWait + e.opt.Wait); now.Before(end); now = now.Add(tick) {
		sink(e.Flush(now, false))
	}
	sink(e.Flush(now, true))
}
