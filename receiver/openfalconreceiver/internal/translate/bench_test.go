package translate

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/falcon"
)

// benchPush is one falcon-agent push of 500 items of a host, about 40%
// counters with tags, in JSON as the agent sends it.
func benchPush() []byte {
	var b strings.Builder
	b.WriteString("[")
	for i := range 500 {
		if i > 0 {
			b.WriteString(",")
		}
		switch i % 5 {
		case 0, 1, 2:
			fmt.Fprintf(&b, `{"endpoint":"web-042.prod.example.com","metric":"sys.metric.%d","value":%g,"step":60,"counterType":"GAUGE","tags":"","timestamp":1732000000}`, i, float64(i)*1.5)
		case 3:
			fmt.Fprintf(&b, `{"endpoint":"web-042.prod.example.com","metric":"net.if.in.bytes","value":%d,"step":60,"counterType":"COUNTER","tags":"iface=eth%d","timestamp":1732000000}`, i*1000000, i)
		default:
			fmt.Fprintf(&b, `{"endpoint":"web-042.prod.example.com","metric":"disk.io.read_bytes","value":"%d","step":60,"counterType":"COUNTER","tags":"device=sd%d,project=shop","timestamp":1732000000}`, i*4096, i)
		}
	}
	b.WriteString("]")
	return []byte(b.String())
}

// BenchmarkDecodeCheckMap is the receiver's own work on a push, without
// net/rpc's JSON codec: decoding the params, transfer's checks, mapping to
// pdata. Run it on one core (-cpu 1) for items/s per core.
func BenchmarkDecodeCheckMap(b *testing.B) {
	data := benchPush()
	tr := New(30, NewSeries(1_000_000))
	var d falcon.Decoder
	var items []falcon.Item
	var points []falcon.Point
	var tags []falcon.Tag
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		items, err = d.Decode(data, items[:0])
		if err != nil {
			b.Fatal(err)
		}
		points, tags = points[:0], tags[:0]
		for i := range items {
			p, t, reason := falcon.Check(&items[i], 1732000100, tags)
			tags = t
			if reason == falcon.Valid {
				points = append(points, p)
			}
		}
		md := pmetric.NewMetrics()
		tr.Append(md, points)
		if md.DataPointCount() != 500 {
			b.Fatal(md.DataPointCount())
		}
	}
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkSeriesMemory reports the heap a remembered series takes, at the
// default max_series: 1,000,000 counters, the generation maps full.
func BenchmarkSeriesMemory(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := NewSeries(n)
		var st SeriesStats
		for k := range uint64(n) {
			s.start(k*0x9e3779b97f4a7c15, true, 1, 1, &st)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(s.Len()), "B/series")
		b.ReportMetric(float64(s.Len()), "series")
		runtime.KeepAlive(s)
	}
}
