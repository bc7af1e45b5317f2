package groundtruth

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func cfg() Config {
	return Config{Seed: 11, Requests: 50, Rate: 1000, Instrument: InstrumentAll, RetryRate: 0.3, OneWayRate: 0.2,
		ThreadPool: true, Pipeline: true, ClockSkew: 5 * time.Millisecond, ExportDelay: time.Second}
}

// TestDeterministic: one seed, one output — tests and benchmarks depend on
// it.
func TestDeterministic(t *testing.T) {
	a, b := Generate(cfg()), Generate(cfg())
	require.Equal(t, len(a.Batches), len(b.Batches))
	var m ptrace.ProtoMarshaler
	for i := range a.Batches {
		x, err := m.MarshalTraces(a.Batches[i].Traces)
		require.NoError(t, err)
		y, err := m.MarshalTraces(b.Batches[i].Traces)
		require.NoError(t, err)
		assert.Equal(t, x, y, "batch %d", i)
	}
	assert.Equal(t, a.Truth, b.Truth)
}

// TestTruthIsATreePerRequest: every span has a truth; every true parent is a
// span of the same request; each request has one root (the gateway's
// first capture); batches arrive in order.
func TestTruthIsATreePerRequest(t *testing.T) {
	out := Generate(cfg())
	spans := 0
	last := time.Time{}
	for _, b := range out.Batches {
		assert.False(t, b.At.Before(last))
		last = b.At
		spans += b.Traces.SpanCount()
		for i := 0; i < b.Traces.ResourceSpans().Len(); i++ {
			ss := b.Traces.ResourceSpans().At(i).ScopeSpans()
			for j := 0; j < ss.Len(); j++ {
				for k := 0; k < ss.At(j).Spans().Len(); k++ {
					_, ok := out.Truth[ss.At(j).Spans().At(k).SpanID()]
					assert.True(t, ok, "a span without truth")
				}
			}
		}
	}
	assert.Equal(t, out.Spans, spans)
	assert.Len(t, out.Truth, spans)
	roots := map[int]int{}
	for id, tr := range out.Truth {
		if tr.Absorbed {
			s, ok := out.Truth[tr.Session]
			require.True(t, ok)
			assert.Equal(t, tr.Request, s.Request)
			continue
		}
		if tr.Parent.IsEmpty() {
			roots[tr.Request]++
			continue
		}
		p, ok := out.Truth[tr.Parent]
		require.True(t, ok, "parent of %s is not a span", id)
		assert.Equal(t, tr.Request, p.Request)
		assert.False(t, p.Absorbed, "parents are sessions, not response rows")
	}
	assert.Len(t, roots, out.Requests)
	for r, n := range roots {
		assert.Equal(t, 1, n, "request %d has %d roots", r, n)
	}
}

// TestScenariosShowUp: the switches produce what they promise: retries,
// one-way rows, thread-pool and pipelined calls marked unstitchable, late
// rows.
func TestScenariosShowUp(t *testing.T) {
	c := cfg()
	c.LateRate, c.LateDelay = 0.05, 10*time.Second
	out := Generate(c)
	var absorbed, unstitchable, late, app int
	for _, tr := range out.Truth {
		switch {
		case tr.Absorbed:
			absorbed++
		case !tr.Stitchable:
			unstitchable++
		}
		if tr.Late {
			late++
		}
		if tr.App {
			app++
		}
	}
	assert.Positive(t, absorbed)
	assert.Positive(t, unstitchable)
	assert.Positive(t, late)
	assert.Positive(t, app)

	c = cfg()
	c.ThreadPool, c.Pipeline = false, false
	for _, tr := range Generate(c).Truth {
		assert.True(t, tr.Absorbed || tr.Stitchable, "without thread pools and pipelining every link is stitchable")
	}
}
