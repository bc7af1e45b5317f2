package translate

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/falcon"
	"github.com/weftobs/weft/receiver/openfalconreceiver/internal/metadata"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// now is the Unix time the tests' pushes arrive at.
const now = 1732000100

// TestGolden runs each testdata/*.jsonl — one push per line, as agents send
// them — through decoding, transfer's checks and the mapping, with min_step
// 30 s, and compares what comes out with testdata/*.golden.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.jsonl"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".jsonl")
		t.Run(name, func(t *testing.T) {
			tr := New(30, NewSeries(1000))
			f, err := os.Open(file)
			require.NoError(t, err)
			defer f.Close()
			var out strings.Builder
			sc := bufio.NewScanner(f)
			sc.Buffer(nil, 1<<20)
			for n := 1; sc.Scan(); n++ {
				var d falcon.Decoder
				items, err := d.Decode(sc.Bytes(), nil)
				require.NoError(t, err, "push %d", n)
				var points []falcon.Point
				var tags []falcon.Tag
				var invalid []string
				for i := range items {
					p, t2, reason := falcon.Check(&items[i], now, tags)
					tags = t2
					if reason != falcon.Valid {
						invalid = append(invalid, fmt.Sprintf("#%d %s", i, reason))
						continue
					}
					points = append(points, p)
				}
				md := pmetric.NewMetrics()
				stats := tr.Append(md, points)
				fmt.Fprintf(&out, "push %d: %d items, invalid: [%s], new series: %d\n", n, len(items), strings.Join(invalid, ", "), stats.Added)
				render(&out, md)
			}
			require.NoError(t, sc.Err())
			golden(t, name, out.String())
		})
	}
}

// render writes metrics as text: times relative to now, attributes in the
// order they are stored, which is the order consumers see.
func render(b *strings.Builder, md pmetric.Metrics) {
	rel := func(ts pcommon.Timestamp) string {
		d := int64(ts) - now*1e9
		if d%1e9 == 0 {
			return fmt.Sprintf("now%+ds", d/1e9)
		}
		return fmt.Sprintf("now%+dns", d)
	}
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		rm := rms.At(i)
		fmt.Fprintf(b, "  resource %s\n", attrs(rm.Resource().Attributes()))
		sms := rm.ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			sm := sms.At(j)
			fmt.Fprintf(b, "    scope %s\n", sm.Scope().Name())
			for k := 0; k < sm.Metrics().Len(); k++ {
				m := sm.Metrics().At(k)
				var dps pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					fmt.Fprintf(b, "      %s gauge\n", m.Name())
					dps = m.Gauge().DataPoints()
				case pmetric.MetricTypeSum:
					fmt.Fprintf(b, "      %s sum %s monotonic=%v\n", m.Name(), m.Sum().AggregationTemporality(), m.Sum().IsMonotonic())
					dps = m.Sum().DataPoints()
				default:
					fmt.Fprintf(b, "      %s unexpected type %s\n", m.Name(), m.Type())
					continue
				}
				for p := 0; p < dps.Len(); p++ {
					dp := dps.At(p)
					start := "-"
					if dp.StartTimestamp() != 0 {
						start = rel(dp.StartTimestamp())
					}
					fmt.Fprintf(b, "        t=%s start=%s value=%v %s\n", rel(dp.Timestamp()), start, dp.DoubleValue(), attrs(dp.Attributes()))
				}
			}
		}
	}
}

func attrs(m pcommon.Map) string {
	var parts []string
	for k, v := range m.All() {
		parts = append(parts, fmt.Sprintf("%s=%s(%s)", k, v.AsString(), v.Type()))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), got)
}

func point(endpoint, metric string, typ falcon.CounterType, ts int64, v float64, tags ...falcon.Tag) falcon.Point {
	return falcon.Point{Endpoint: endpoint, Metric: metric, Type: typ, Value: v, Step: 60, Timestamp: ts, Tags: tags}
}

// TestAppendGroups: one resource per endpoint and one metric per name and
// type, however the points are interleaved.
func TestAppendGroups(t *testing.T) {
	tr := New(0, NewSeries(100))
	md := pmetric.NewMetrics()
	tr.Append(md, []falcon.Point{
		point("a", "m", falcon.Gauge, now, 1),
		point("b", "m", falcon.Gauge, now, 2),
		point("a", "m", falcon.Gauge, now+60, 3),
		point("a", "m", falcon.Counter, now, 4),
		point("a", "n", falcon.Gauge, now, 5),
		point("b", "m", falcon.Gauge, now+60, 6),
	})
	require.Equal(t, 2, md.ResourceMetrics().Len())
	a := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	b := md.ResourceMetrics().At(1).ScopeMetrics().At(0).Metrics()
	require.Equal(t, 3, a.Len())
	require.Equal(t, 1, b.Len())
	assert.Equal(t, 2, a.At(0).Gauge().DataPoints().Len())
	assert.Equal(t, pmetric.MetricTypeSum, a.At(1).Type())
	assert.Equal(t, "n", a.At(2).Name())
	assert.Equal(t, 2, b.At(0).Gauge().DataPoints().Len())
	assert.Equal(t, 6, md.DataPointCount())
	assert.Equal(t, metadata.ScopeName, md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope().Name())
}

func TestHostIP(t *testing.T) {
	for _, tt := range []struct{ endpoint, ip string }{
		{"10.1.2.3", "10.1.2.3"},
		{"::ffff:10.1.2.3", "10.1.2.3"},
		{"2001:db8::1", "2001:db8::1"},
		{"fe80::1%eth0", "fe80::1"},
		{"web-01", ""},
		{"10.1.2.3:8080", ""},
		{"10.1.2", ""},
	} {
		t.Run(tt.endpoint, func(t *testing.T) {
			md := pmetric.NewMetrics()
			New(0, NewSeries(10)).Append(md, []falcon.Point{point(tt.endpoint, "m", falcon.Gauge, now, 1)})
			res := md.ResourceMetrics().At(0).Resource().Attributes()
			name, _ := res.Get("host.name")
			assert.Equal(t, tt.endpoint, name.Str())
			ip, ok := res.Get("host.ip")
			if tt.ip == "" {
				assert.False(t, ok)
				assert.Equal(t, 1, res.Len())
				return
			}
			require.True(t, ok)
			require.Equal(t, pcommon.ValueTypeSlice, ip.Type(), "host.ip is a string array in the semantic conventions")
			assert.Equal(t, []any{tt.ip}, ip.Slice().AsRaw())
		})
	}
}

// TestAppendConcurrent: pushes on several connections share the series.
func TestAppendConcurrent(t *testing.T) {
	tr := New(30, NewSeries(1<<12))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				md := pmetric.NewMetrics()
				tr.Append(md, []falcon.Point{point(fmt.Sprintf("h%d", i%50), "m", falcon.Counter, now+int64(i), float64(g*i))})
				if md.DataPointCount() != 1 {
					t.Errorf("%d points", md.DataPointCount())
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 50, tr.series.Len())
}

// TestEmptyTagKeyDropped: OpenTelemetry has no empty attribute keys.
func TestEmptyTagKeyDropped(t *testing.T) {
	md := pmetric.NewMetrics()
	New(0, NewSeries(10)).Append(md, []falcon.Point{point("h", "m", falcon.Gauge, now, 1, falcon.Tag{Value: "x"}, falcon.Tag{Key: "k", Value: "v"})})
	got := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).Attributes()
	assert.Equal(t, map[string]any{"k": "v", StepAttribute: int64(60)}, got.AsRaw())
}
