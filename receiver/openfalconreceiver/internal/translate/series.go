package translate

import (
	"sync"
)

// Series remembers, per COUNTER and DERIVE series, the start time of its
// cumulative values and its last point, so that consumers can compute rates.
//
// It is bounded: each shard keeps two generations of series. New series go
// into the current one; a series found in the previous one moves back to the
// current; when the current one holds half the shard's share of max, the
// previous generation is forgotten and the current one becomes the previous.
// So at most limit series are remembered, and a series is forgotten only
// after limit/2 other series were seen since its last point (it does at
// least as well as a least-recently-used cache of limit/2). A forgotten
// series that comes back starts anew: its next point is its start.
type Series struct {
	shards []shard
	half   int // a generation's size
}

type shard struct {
	mu       sync.Mutex
	cur, old map[uint64]series
}

type series struct {
	start  int64 // Unix ns
	lastTS int64 // Unix ns
	last   float64
}

// NewSeries returns a tracker of at most limit series (limit >= 1).
func NewSeries(limit int) *Series {
	n := 16 // shards: pushes on several connections rarely wait for each other
	if limit < n*64 {
		n = 1
	}
	s := &Series{shards: make([]shard, n), half: max(limit/n/2, 1)}
	for i := range s.shards {
		s.shards[i].cur = map[uint64]series{}
		s.shards[i].old = map[uint64]series{}
	}
	return s
}

// SeriesStats says how the remembered series changed.
type SeriesStats struct {
	Added   int // series seen for the first time (or again after being forgotten)
	Evicted int // series forgotten
}

// start records a point of the series key at ts (Unix ns) with value v and
// returns the point's start time:
//   - a new series starts at its first point;
//   - a monotonic series (COUNTER) whose value drops below the previous
//     point's has been reset: it starts again 1 ns after that point, the
//     latest instant the reset can have happened;
//   - a point older than its series' start (sent late) gets its own time,
//     as start time must not follow time, and changes nothing.
func (s *Series) start(key uint64, monotonic bool, ts int64, v float64, stats *SeriesStats) int64 {
	sh := &s.shards[key%uint64(len(s.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st, inCur := sh.cur[key]
	found := inCur
	if !found {
		if st, found = sh.old[key]; found {
			delete(sh.old, key)
		}
	}
	switch {
	case !found:
		st = series{start: ts, lastTS: ts, last: v}
		stats.Added++
	case ts < st.start:
		if !inCur {
			s.put(sh, key, st, stats)
		}
		return ts
	case ts > st.lastTS:
		if monotonic && v < st.last {
			st.start = st.lastTS + 1
		}
		st.lastTS, st.last = ts, v
	}
	if !inCur {
		s.put(sh, key, st, stats)
	} else {
		sh.cur[key] = st
	}
	return st.start
}

// put adds a series to the current generation, first starting a new one if
// it is full.
func (s *Series) put(sh *shard, key uint64, st series, stats *SeriesStats) {
	if len(sh.cur) >= s.half {
		stats.Evicted += len(sh.old)
		sh.old = sh.cur
		sh.cur = make(map[uint64]series, s.half)
	}
	sh.cur[key] = st
}

// Len is the number of series remembered.
func (s *Series) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.cur) + len(sh.old)
		sh.mu.Unlock()
	}
	return n
}
