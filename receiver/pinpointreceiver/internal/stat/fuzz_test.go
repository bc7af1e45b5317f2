package stat

import (
	"math"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"google.golang.org/protobuf/proto"

	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
)

// FuzzTranslate feeds arbitrary bytes through the stream's decoder into
// Translate: it must not panic, must write exactly the points it reports,
// each with a time and a finite value, and must leave md alone on error.
func FuzzTranslate(f *testing.F) {
	uri := &v1.PStatMessage{Field: &v1.PStatMessage_AgentUriStat{AgentUriStat: &v1.PAgentUriStat{
		EachUriStat: []*v1.PEachUriStat{{
			Uri: "GET /a", Timestamp: sampleMs,
			TotalHistogram:  &v1.PUriHistogram{Total: 10, Max: 7, Histogram: []int32{1, 1, 0, 0, 0, 0, 0, 0}},
			FailedHistogram: &v1.PUriHistogram{Total: 7, Max: 7, Histogram: []int32{1, 0, 0, 0, 0, 0, 0, 0}},
		}},
	}}}
	for _, msg := range []*v1.PStatMessage{
		single(javaStat(sampleMs)),
		batch(javaStat(sampleMs), javaStat(sampleMs+10_000)),
		single(nodeStat(sampleMs, 0.25)),
		uri,
		{},
	} {
		b, err := proto.Marshal(msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, int64(agentStartMs))
	}
	f.Fuzz(func(t *testing.T, b []byte, agentStart int64) {
		var msg v1.PStatMessage
		if proto.Unmarshal(b, &msg) != nil {
			return
		}
		md := pmetric.NewMetrics()
		n, err := Translate(md, pcommon.NewResource(), agentStart, &msg)
		if err != nil {
			if n != 0 || md.ResourceMetrics().Len() != 0 {
				t.Fatalf("error %v with %d points and %d ResourceMetrics", err, n, md.ResourceMetrics().Len())
			}
			return
		}
		if md.ResourceMetrics().Len() != 1 {
			t.Fatalf("%d ResourceMetrics, want 1", md.ResourceMetrics().Len())
		}
		if got := checkPoints(t, md); got != n || n == 0 {
			t.Fatalf("Translate reported %d points, md holds %d", n, got)
		}
	})
}

// checkPoints validates every data point in md and returns how many there are.
func checkPoints(t *testing.T, md pmetric.Metrics) int {
	t.Helper()
	n := 0
	times := func(name string, start, ts pcommon.Timestamp) {
		if ts == 0 {
			t.Fatalf("%s: point without a time", name)
		}
		if start > ts {
			t.Fatalf("%s: start %d after time %d", name, start, ts)
		}
	}
	finiteOrFail := func(name string, v float64) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("%s: value %v", name, v)
		}
	}
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				var nums pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					nums = m.Gauge().DataPoints()
				case pmetric.MetricTypeSum:
					nums = m.Sum().DataPoints()
				case pmetric.MetricTypeHistogram:
					for _, dp := range m.Histogram().DataPoints().All() {
						n++
						times(m.Name(), dp.StartTimestamp(), dp.Timestamp())
						finiteOrFail(m.Name(), dp.Sum())
						finiteOrFail(m.Name(), dp.Max())
						if dp.BucketCounts().Len() != dp.ExplicitBounds().Len()+1 {
							t.Fatalf("%s: %d buckets for %d bounds", m.Name(), dp.BucketCounts().Len(), dp.ExplicitBounds().Len())
						}
						var c uint64
						for _, b := range dp.BucketCounts().All() {
							c += b
						}
						if c != dp.Count() {
							t.Fatalf("%s: count %d, buckets hold %d", m.Name(), dp.Count(), c)
						}
					}
					continue
				default:
					t.Fatalf("%s: type %s", m.Name(), m.Type())
				}
				if nums.Len() == 0 {
					t.Fatalf("%s: metric without points", m.Name())
				}
				for _, dp := range nums.All() {
					n++
					times(m.Name(), dp.StartTimestamp(), dp.Timestamp())
					switch dp.ValueType() {
					case pmetric.NumberDataPointValueTypeDouble:
						finiteOrFail(m.Name(), dp.DoubleValue())
					case pmetric.NumberDataPointValueTypeInt:
					default:
						t.Fatalf("%s: point without a value", m.Name())
					}
				}
			}
		}
	}
	return n
}
