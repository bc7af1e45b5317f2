package translate

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

const sec = int64(1e9)

func TestSeriesStart(t *testing.T) {
	s := NewSeries(100)
	var st SeriesStats
	t0 := now * sec
	// COUNTER: starts at its first point, keeps its start while it grows.
	assert.Equal(t, t0, s.start(1, true, t0, 100, &st))
	assert.Equal(t, t0, s.start(1, true, t0+60*sec, 160, &st))
	assert.Equal(t, t0, s.start(1, true, t0+120*sec, 160, &st), "no change is no reset")
	// A drop is a reset: the new run starts just after the last point.
	assert.Equal(t, t0+120*sec+1, s.start(1, true, t0+180*sec, 7, &st))
	assert.Equal(t, t0+120*sec+1, s.start(1, true, t0+240*sec, 70, &st))
	// A late point within the run keeps the run's start; older than the
	// start, it gets its own time and changes nothing.
	assert.Equal(t, t0+120*sec+1, s.start(1, true, t0+200*sec, 1, &st))
	assert.Equal(t, t0+60*sec, s.start(1, true, t0+60*sec, 999, &st))
	assert.Equal(t, t0+120*sec+1, s.start(1, true, t0+300*sec, 80, &st), "the late points did not count as resets")
	// The same point again changes nothing.
	assert.Equal(t, t0+120*sec+1, s.start(1, true, t0+300*sec, 0, &st))

	// DERIVE may go down without a reset.
	assert.Equal(t, t0, s.start(2, false, t0, 100, &st))
	assert.Equal(t, t0, s.start(2, false, t0+60*sec, 5, &st))
	assert.Equal(t, SeriesStats{Added: 2}, st)
	assert.Equal(t, 2, s.Len())
}

// TestSeriesBound: at most limit series are remembered; a series seen
// again before limit/2 others is never forgotten; a forgotten series starts
// anew.
func TestSeriesBound(t *testing.T) {
	const limit = 20
	s := NewSeries(limit)
	var st SeriesStats
	t0 := now * sec
	// Between two points of an active series, 5 other active series and 4
	// one-off series are seen: 9, fewer than limit/2.
	active := []uint64{1, 2, 3, 4, 5, 6}
	for _, k := range active {
		s.start(k, true, t0, 1, &st)
	}
	for round := int64(1); round <= 50; round++ {
		for i := range uint64(4) {
			s.start(1000*uint64(round)+i, true, t0, 1, &st)
			assert.LessOrEqual(t, s.Len(), limit)
		}
		for _, k := range active {
			assert.Equal(t, t0, s.start(k, true, t0+round*60*sec, float64(round+1), &st), "series %d forgotten in round %d", k, round)
		}
	}
	assert.Equal(t, 6+50*4, st.Added)
	assert.Equal(t, st.Added-st.Evicted, s.Len(), "Added and Evicted account for every series")
	assert.Positive(t, st.Evicted)

	// One-off series of round 1 are long forgotten: this one starts anew.
	assert.Equal(t, t0+3600*sec, s.start(1000, true, t0+3600*sec, 0, &st))

	// With 11 others between its points, a series can be forgotten: the
	// bound is real.
	s = NewSeries(limit)
	for k := range uint64(12) {
		s.start(k, true, t0, 1, &st)
	}
	forgotten := 0
	for k := range uint64(12) {
		if s.start(k, true, t0+60*sec, 0, &st) == t0+60*sec {
			forgotten++
		}
	}
	assert.Positive(t, forgotten)
}

func TestSeriesShards(t *testing.T) {
	s := NewSeries(1_000_000)
	assert.Len(t, s.shards, 16)
	var st SeriesStats
	for k := range uint64(100_000) {
		s.start(k*0x9e3779b97f4a7c15, false, 1, 1, &st)
	}
	assert.Equal(t, 100_000, s.Len())
	assert.Equal(t, 0, st.Evicted)
	assert.Len(t, NewSeries(10).shards, 1, "small limits keep one shard so the bound is exact")
}
