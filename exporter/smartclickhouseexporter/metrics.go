package smartclickhouseexporter

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
)

// metricRows are the metrics table's columns: one row per data point.
type metricRows struct {
	n                                 int
	time                              []int64
	ts, startTS                       []uint64
	name, description, unit           []string
	typ, temporality                  []int8
	monotonic                         []uint8
	flags                             []uint32
	value, sum, min, max              []float64
	count                             []uint64
	bounds                            [][]float64
	counts                            [][]uint64
	expScale, expPosOffset, expNegOff []int32
	expZero                           []uint64
	expPosCounts, expNegCounts        [][]uint64
	quantiles, quantileValues         [][]float64
	common                            commonRows
	tags                              tagRows
	emptyFloats                       []float64
	emptyCounts                       []uint64
	curName, curDescription, curUnit  string
	curType, curTemporality           int8
	curMonotonic                      uint8
	curResource                       *resourceInfo
	curScopeName, curScopeVersion     string
}

// point is what every data point type has.
type point interface {
	Timestamp() pcommon.Timestamp
	StartTimestamp() pcommon.Timestamp
	Attributes() pcommon.Map
	Flags() pmetric.DataPointFlags
}

func (r *metricRows) addMetrics(md pmetric.Metrics, skip skipped) {
	r.emptyFloats, r.emptyCounts = []float64{}, []uint64{}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		ri := readResource(rm.Resource(), false)
		r.curResource = &ri
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			sm := rm.ScopeMetrics().At(j)
			r.curScopeName, r.curScopeVersion = sm.Scope().Name(), sm.Scope().Version()
			for k := 0; k < sm.Metrics().Len(); k++ {
				r.addMetric(sm.Metrics().At(k), skip)
			}
		}
	}
}

func (r *metricRows) addMetric(m pmetric.Metric, skip skipped) {
	r.curName, r.curDescription, r.curUnit = m.Name(), m.Description(), m.Unit()
	r.curType = enum8(int32(m.Type()), int32(pmetric.MetricTypeSummary))
	r.curTemporality, r.curMonotonic = 0, 0
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			r.addNumber(dps.At(i), skip)
		}
	case pmetric.MetricTypeSum:
		r.curTemporality = enum8(int32(m.Sum().AggregationTemporality()), int32(pmetric.AggregationTemporalityCumulative))
		if m.Sum().IsMonotonic() {
			r.curMonotonic = 1
		}
		dps := m.Sum().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			r.addNumber(dps.At(i), skip)
		}
	case pmetric.MetricTypeHistogram:
		r.curTemporality = enum8(int32(m.Histogram().AggregationTemporality()), int32(pmetric.AggregationTemporalityCumulative))
		dps := m.Histogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if !r.begin(dp, skip) {
				continue
			}
			r.value = append(r.value, 0)
			r.count = append(r.count, dp.Count())
			r.sum = append(r.sum, optional(dp.HasSum(), dp.Sum()))
			r.min = append(r.min, optional(dp.HasMin(), dp.Min()))
			r.max = append(r.max, optional(dp.HasMax(), dp.Max()))
			r.bounds = append(r.bounds, nonNilF(dp.ExplicitBounds().AsRaw()))
			r.counts = append(r.counts, nonNilU(dp.BucketCounts().AsRaw()))
			r.noExp()
			r.noQuantiles()
		}
	case pmetric.MetricTypeExponentialHistogram:
		r.curTemporality = enum8(int32(m.ExponentialHistogram().AggregationTemporality()), int32(pmetric.AggregationTemporalityCumulative))
		dps := m.ExponentialHistogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if !r.begin(dp, skip) {
				continue
			}
			r.value = append(r.value, 0)
			r.count = append(r.count, dp.Count())
			r.sum = append(r.sum, optional(dp.HasSum(), dp.Sum()))
			r.min = append(r.min, optional(dp.HasMin(), dp.Min()))
			r.max = append(r.max, optional(dp.HasMax(), dp.Max()))
			r.bounds = append(r.bounds, r.emptyFloats)
			r.counts = append(r.counts, r.emptyCounts)
			r.expScale = append(r.expScale, dp.Scale())
			r.expZero = append(r.expZero, dp.ZeroCount())
			r.expPosOffset = append(r.expPosOffset, dp.Positive().Offset())
			r.expPosCounts = append(r.expPosCounts, nonNilU(dp.Positive().BucketCounts().AsRaw()))
			r.expNegOff = append(r.expNegOff, dp.Negative().Offset())
			r.expNegCounts = append(r.expNegCounts, nonNilU(dp.Negative().BucketCounts().AsRaw()))
			r.noQuantiles()
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			dp := dps.At(i)
			if !r.begin(dp, skip) {
				continue
			}
			r.value = append(r.value, 0)
			r.count = append(r.count, dp.Count())
			r.sum = append(r.sum, dp.Sum())
			r.min = append(r.min, math.NaN())
			r.max = append(r.max, math.NaN())
			r.bounds = append(r.bounds, r.emptyFloats)
			r.counts = append(r.counts, r.emptyCounts)
			r.noExp()
			qs := dp.QuantileValues()
			q, v := make([]float64, qs.Len()), make([]float64, qs.Len())
			for j := 0; j < qs.Len(); j++ {
				q[j], v[j] = qs.At(j).Quantile(), qs.At(j).Value()
			}
			r.quantiles = append(r.quantiles, q)
			r.quantileValues = append(r.quantileValues, v)
		}
	}
}

// optional is a histogram's optional field, NaN when absent: 0 would
// be a real minimum.
func optional(has bool, v float64) float64 {
	if !has {
		return math.NaN()
	}
	return v
}

func nonNilF(s []float64) []float64 {
	if s == nil {
		return []float64{}
	}
	return s
}

func nonNilU(s []uint64) []uint64 {
	if s == nil {
		return []uint64{}
	}
	return s
}

// begin appends the columns every point has, or skips a point whose times
// cannot be stored.
func (r *metricRows) begin(dp point, skip skipped) bool {
	if !timeOK(dp.Timestamp()) || !timeOK(dp.StartTimestamp()) {
		skip[reasonTimestamp]++
		return false
	}
	r.n++
	r.time = append(r.time, seconds(dp.Timestamp()))
	r.ts = append(r.ts, uint64(dp.Timestamp()))
	r.startTS = append(r.startTS, uint64(dp.StartTimestamp()))
	r.name = append(r.name, r.curName)
	r.description = append(r.description, r.curDescription)
	r.unit = append(r.unit, r.curUnit)
	r.typ = append(r.typ, r.curType)
	r.temporality = append(r.temporality, r.curTemporality)
	r.monotonic = append(r.monotonic, r.curMonotonic)
	r.flags = append(r.flags, uint32(dp.Flags()))
	n, v := splitAttrs(dp.Attributes())
	r.common.add(r.curResource, r.curScopeName, r.curScopeVersion, emptyIfNil(n), emptyIfNil(v))
	r.tags.add(&r.curResource.ids, r.curResource.ip)
	return true
}

func (r *metricRows) addNumber(dp pmetric.NumberDataPoint, skip skipped) {
	if !r.begin(dp, skip) {
		return
	}
	v := dp.DoubleValue()
	if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
		v = float64(dp.IntValue())
	}
	r.value = append(r.value, v)
	r.count = append(r.count, 0)
	r.sum = append(r.sum, 0)
	r.min = append(r.min, math.NaN())
	r.max = append(r.max, math.NaN())
	r.bounds = append(r.bounds, r.emptyFloats)
	r.counts = append(r.counts, r.emptyCounts)
	r.noExp()
	r.noQuantiles()
}

func (r *metricRows) noExp() {
	r.expScale = append(r.expScale, 0)
	r.expZero = append(r.expZero, 0)
	r.expPosOffset = append(r.expPosOffset, 0)
	r.expPosCounts = append(r.expPosCounts, r.emptyCounts)
	r.expNegOff = append(r.expNegOff, 0)
	r.expNegCounts = append(r.expNegCounts, r.emptyCounts)
}

func (r *metricRows) noQuantiles() {
	r.quantiles = append(r.quantiles, r.emptyFloats)
	r.quantileValues = append(r.quantileValues, r.emptyFloats)
}

func (r *metricRows) columns(f schema.Features) map[string]any {
	out := map[string]any{
		"time":                r.time,
		"timestamp":           time64(f, r.ts),
		"start_timestamp":     time64(f, r.startTS),
		"name":                r.name,
		"description":         r.description,
		"unit":                r.unit,
		"type":                r.typ,
		"temporality":         r.temporality,
		"is_monotonic":        r.monotonic,
		"flags":               r.flags,
		"value":               r.value,
		"count":               r.count,
		"sum":                 r.sum,
		"min":                 r.min,
		"max":                 r.max,
		"bucket_bounds":       r.bounds,
		"bucket_counts":       r.counts,
		"exp_scale":           r.expScale,
		"exp_zero_count":      r.expZero,
		"exp_positive_offset": r.expPosOffset,
		"exp_positive_counts": r.expPosCounts,
		"exp_negative_offset": r.expNegOff,
		"exp_negative_counts": r.expNegCounts,
		"quantiles":           r.quantiles,
		"quantile_values":     r.quantileValues,
	}
	r.common.columns(out)
	r.tags.columns(f, "", out)
	return out
}
