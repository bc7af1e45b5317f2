package stitch

import (
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
	keep := func(r Result) {
		results = append(results, r)
		if r.Spans > 0 {
			tds = append(tds, r.Traces)
		}
	}
	if len(out.Batches) == 0 {
		return nil, nil
	}
	now := out.Batches[0].At
	for _, b := range out.Batches {
		for !now.After(b.At) {
			keep(e.Flush(now, false))
			now = now.Add(tick)
		}
		keep(e.Add(b.At, b.Traces))
	}
	for end := now.Add(e.opt.MaxWait + e.opt.Wait); now.Before(end); now = now.Add(tick) {
		keep(e.Flush(now, false))
	}
	keep(e.Flush(now, true))
	return tds, results
}
