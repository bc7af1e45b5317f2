// Package translate maps valid Open-Falcon points to OpenTelemetry metrics.
package translate

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/falcon"
	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/metadata"
)

// StepAttribute is the data point attribute holding the step, in seconds.
// Graph keeps a series per step, so the step is part of a series' identity,
// as an attribute is; a metric's description could hold one step only.
const StepAttribute = "falcon.step"

// Translator maps points to metrics. It is safe for concurrent use.
type Translator struct {
	minStep int64 // seconds
	series  *Series
	seed    maphash.Seed
}

// New returns a Translator that raises steps below minStep (seconds) to it
// and keeps cumulative series' start times in series.
func New(minStep int64, series *Series) *Translator {
	return &Translator{minStep: minStep, series: series, seed: maphash.MakeSeed()}
}

type metricKey struct {
	endpoint, metric string
	typ              falcon.CounterType
}

// Append adds points to md: a ResourceMetrics per endpoint (host.name, and
// host.ip when the endpoint is an IP address), in it a metric per name and
// counter type, a data point per point. It returns how the remembered
// series changed.
func (t *Translator) Append(md pmetric.Metrics, points []falcon.Point) SeriesStats {
	var stats SeriesStats
	if len(points) == 0 {
		return stats
	}
	rms := md.ResourceMetrics()
	resources := map[string]pmetric.MetricSlice{}
	metrics := map[metricKey]pmetric.NumberDataPointSlice{}
	// Agents send a host's metrics together: most points belong where the
	// previous one went.
	var last metricKey
	var lastPoints pmetric.NumberDataPointSlice
	var h maphash.Hash
	h.SetSeed(t.seed)
	for i := range points {
		p := &points[i]
		k := metricKey{p.Endpoint, p.Metric, p.Type}
		dps := lastPoints
		if i == 0 || k != last {
			ms, ok := resources[p.Endpoint]
			if !ok {
				ms = newResource(rms, p.Endpoint)
				resources[p.Endpoint] = ms
			}
			if dps, ok = metrics[k]; !ok {
				dps = newMetric(ms, p.Metric, p.Type)
				metrics[k] = dps
			}
			last, lastPoints = k, dps
		}
		step := max(p.Step, t.minStep)
		ts := p.Timestamp * 1e9
		dp := dps.AppendEmpty()
		dp.SetTimestamp(pcommon.Timestamp(ts))
		dp.SetDoubleValue(p.Value)
		if p.Type != falcon.Gauge {
			start := t.series.start(seriesKey(&h, p, step), p.Type == falcon.Counter, ts, p.Value, &stats)
			dp.SetStartTimestamp(pcommon.Timestamp(start))
		}
		attrs := dp.Attributes()
		attrs.EnsureCapacity(len(p.Tags) + 1)
		for _, tag := range p.Tags {
			// OpenTelemetry forbids empty attribute keys; a "=v" tag of
			// Open-Falcon's cannot be carried.
			if tag.Key != "" {
				attrs.PutStr(tag.Key, tag.Value)
			}
		}
		attrs.PutInt(StepAttribute, step)
	}
	return stats
}

func newResource(rms pmetric.ResourceMetricsSlice, endpoint string) pmetric.MetricSlice {
	rm := rms.AppendEmpty()
	attrs := rm.Resource().Attributes()
	attrs.PutStr("host.name", endpoint)
	// Agents name a host by its IP when it has no hostname configured; as
	// host.ip, smart_encoding finds the host's resource ids by it.
	if ip, err := netip.ParseAddr(endpoint); err == nil {
		attrs.PutEmptySlice("host.ip").AppendEmpty().SetStr(ip.Unmap().WithZone("").String())
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(metadata.ScopeName)
	return sm.Metrics()
}

func newMetric(ms pmetric.MetricSlice, name string, typ falcon.CounterType) pmetric.NumberDataPointSlice {
	m := ms.AppendEmpty()
	m.SetName(name)
	if typ == falcon.Gauge {
		return m.SetEmptyGauge().DataPoints()
	}
	sum := m.SetEmptySum()
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	// A COUNTER only grows but for resets; DERIVE may go down.
	sum.SetIsMonotonic(typ == falcon.Counter)
	return sum.DataPoints()
}

// seriesKey identifies a series as graph does: endpoint, metric, tags,
// counter type and step. Strings are valid UTF-8, so 0xff cannot occur in
// them and separates them unambiguously.
func seriesKey(h *maphash.Hash, p *falcon.Point, step int64) uint64 {
	h.Reset()
	h.WriteString(p.Endpoint)
	h.WriteByte(0xff)
	h.WriteString(p.Metric)
	h.WriteByte(0xff)
	for _, tag := range p.Tags {
		h.WriteString(tag.Key)
		h.WriteByte(0xfe)
		h.WriteString(tag.Value)
		h.WriteByte(0xff)
	}
	var b [9]byte
	b[0] = byte(p.Type)
	binary.LittleEndian.PutUint64(b[1:], uint64(step))
	h.Write(b[:])
	return h.Sum64()
}
