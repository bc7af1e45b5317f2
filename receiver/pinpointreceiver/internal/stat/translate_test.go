package stat

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/weftobs/weft/receiver/pinpointreceiver/internal/metadata"
	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
)

// Times of the samples below (epoch ms).
const (
	agentStartMs = 1_700_000_000_000
	sampleMs     = 1_700_000_060_000
)

func testResource() pcommon.Resource {
	res := pcommon.NewResource()
	res.Attributes().PutStr("service.name", "orders")
	res.Attributes().PutStr("service.instance.id", "orders-1")
	return res
}

// javaStat is a PAgentStat as a Java agent with detailed GC metrics and two
// connection pools sends it. Doubles are exact in binary so that the golden
// lines compare exactly.
func javaStat(ts int64) *v1.PAgentStat {
	return &v1.PAgentStat{
		Timestamp:       ts,
		CollectInterval: 10_000,
		Gc: &v1.PJvmGc{
			Type:                 v1.PJvmGcType_JVM_GC_TYPE_G1,
			JvmMemoryHeapUsed:    73_842_768,
			JvmMemoryHeapMax:     436_207_616,
			JvmMemoryNonHeapUsed: 196_555_576,
			JvmMemoryNonHeapMax:  -1, // undefined for non-heap on most JVMs
			JvmGcOldCount:        5,
			JvmGcOldTime:         945,
			JvmGcDetailed: &v1.PJvmGcDetailed{
				JvmGcNewCount:            110,
				JvmGcNewTime:             1666,
				JvmPoolCodeCacheUsed:     0.25,
				JvmPoolNewGenUsed:        0.5,
				JvmPoolOldGenUsed:        0.125,
				JvmPoolSurvivorSpaceUsed: 0,  // an empty survivor space is real
				JvmPoolPermGenUsed:       -1, // no perm gen since Java 8
				JvmPoolMetaspaceUsed:     0.75,
			},
		},
		CpuLoad: &v1.PCpuLoad{JvmCpuLoad: 0.25, SystemCpuLoad: 0.5},
		Transaction: &v1.PTransaction{
			SampledNewCount:            10,
			SampledContinuationCount:   2,
			UnsampledNewCount:          30,
			UnsampledContinuationCount: 4,
			SkippedNewCount:            0,
			SkippedContinuationCount:   1,
		},
		ActiveTrace: &v1.PActiveTrace{Histogram: &v1.PActiveTraceHistogram{
			HistogramSchemaType: 2,
			ActiveTraceCount:    []int32{3, 2, 1, 0},
		}},
		DataSourceList: &v1.PDataSourceList{DataSource: []*v1.PDataSource{
			{Id: 1, ServiceTypeCode: 6060, DatabaseName: "orders", Url: "jdbc:mysql://db:3306/orders?user=app&password=secret", MaxConnectionSize: 10},
			{Id: 2, ServiceTypeCode: 6050, ActiveConnectionSize: 3},
		}},
		ResponseTime:   &v1.PResponseTime{Avg: 12, Max: 250},
		Deadlock:       &v1.PDeadlock{Count: 0},
		FileDescriptor: &v1.PFileDescriptor{OpenFileDescriptorCount: 321},
		DirectBuffer:   &v1.PDirectBuffer{DirectCount: 12, DirectMemoryUsed: 4096},
		Metadata:       "ignored",
		TotalThread:    &v1.PTotalThread{TotalThreadCount: 42},
		LoadedClass:    &v1.PLoadedClass{LoadedClassCount: 9000, UnloadedClassCount: 15},
	}
}

// nodeStat is what the Node agent sends: heap used and total, process CPU.
func nodeStat(ts int64, cpu float64) *v1.PAgentStat {
	return &v1.PAgentStat{
		Timestamp:       ts,
		CollectInterval: 1000,
		Gc:              &v1.PJvmGc{JvmMemoryHeapUsed: 10_000_000, JvmMemoryHeapMax: 20_000_000},
		CpuLoad:         &v1.PCpuLoad{JvmCpuLoad: cpu},
	}
}

func single(st *v1.PAgentStat) *v1.PStatMessage {
	return &v1.PStatMessage{Field: &v1.PStatMessage_AgentStat{AgentStat: st}}
}

func batch(st ...*v1.PAgentStat) *v1.PStatMessage {
	return &v1.PStatMessage{Field: &v1.PStatMessage_AgentStatBatch{AgentStatBatch: &v1.PAgentStatBatch{AgentStat: st}}}
}

// golden flattens md into one sorted line per data point, naming everything
// a consumer sees: metric, instrument, unit, attributes, times (ms) and value.
func golden(t *testing.T, md pmetric.Metrics) []string {
	t.Helper()
	var lines []string
	ms := func(ts pcommon.Timestamp) string {
		if ts == 0 {
			return "-"
		}
		if ts%pcommon.Timestamp(time.Millisecond) != 0 {
			t.Errorf("timestamp %d is not a whole millisecond", ts)
		}
		return fmt.Sprint(uint64(ts) / uint64(time.Millisecond))
	}
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Description() == "" {
					t.Errorf("%s has no description", m.Name())
				}
				head := m.Name() + " " + m.Unit() + " "
				var nums pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeGauge:
					head += "gauge"
					nums = m.Gauge().DataPoints()
				case pmetric.MetricTypeSum:
					head += fmt.Sprintf("sum/%s/monotonic=%t", m.Sum().AggregationTemporality(), m.Sum().IsMonotonic())
					nums = m.Sum().DataPoints()
				case pmetric.MetricTypeHistogram:
					head += "histogram/" + m.Histogram().AggregationTemporality().String()
					for _, dp := range m.Histogram().DataPoints().All() {
						lines = append(lines, fmt.Sprintf("%s %s start=%s t=%s count=%d sum=%g max=%g bounds=%v buckets=%v",
							head, attrs(dp.Attributes()), ms(dp.StartTimestamp()), ms(dp.Timestamp()),
							dp.Count(), dp.Sum(), dp.Max(), dp.ExplicitBounds().AsRaw(), dp.BucketCounts().AsRaw()))
					}
					continue
				default:
					t.Fatalf("%s: unexpected type %s", m.Name(), m.Type())
				}
				for _, dp := range nums.All() {
					var v string
					switch dp.ValueType() {
					case pmetric.NumberDataPointValueTypeInt:
						v = fmt.Sprintf("int:%d", dp.IntValue())
					case pmetric.NumberDataPointValueTypeDouble:
						v = fmt.Sprintf("double:%g", dp.DoubleValue())
					default:
						v = "empty"
					}
					lines = append(lines, fmt.Sprintf("%s %s start=%s t=%s %s",
						head, attrs(dp.Attributes()), ms(dp.StartTimestamp()), ms(dp.Timestamp()), v))
				}
			}
		}
	}
	slices.Sort(lines)
	return lines
}

func attrs(m pcommon.Map) string {
	kv := make([]string, 0, m.Len())
	for k, v := range m.All() {
		kv = append(kv, k+"="+v.AsString())
	}
	slices.Sort(kv)
	return "{" + strings.Join(kv, ",") + "}"
}

func assertLines(t *testing.T, got, want []string) {
	t.Helper()
	want = slices.Sorted(slices.Values(want))
	if slices.Equal(got, want) {
		return
	}
	for _, l := range want {
		if !slices.Contains(got, l) {
			t.Errorf("missing: %s", l)
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			t.Errorf("unexpected: %s", l)
		}
	}
}

func TestTranslateJavaStat(t *testing.T) {
	md := pmetric.NewMetrics()
	n, err := Translate(md, testResource(), agentStartMs, single(javaStat(sampleMs)))
	if err != nil {
		t.Fatal(err)
	}
	const s, c, iv = "start=1700000000000", "t=1700000060000", "start=1700000050000"
	want := []string{
		"pinpoint.cpu.load 1 gauge {pinpoint.cpu.scope=process} start=- " + c + " double:0.25",
		"pinpoint.cpu.load 1 gauge {pinpoint.cpu.scope=system} start=- " + c + " double:0.5",
		"pinpoint.memory.used By gauge {pinpoint.memory.type=heap} start=- " + c + " int:73842768",
		"pinpoint.memory.used By gauge {pinpoint.memory.type=non_heap} start=- " + c + " int:196555576",
		"pinpoint.memory.limit By gauge {pinpoint.memory.type=heap} start=- " + c + " int:436207616",
		"pinpoint.gc.count {collection} sum/Cumulative/monotonic=true {pinpoint.gc.generation=old,pinpoint.gc.type=g1} " + s + " " + c + " int:5",
		"pinpoint.gc.count {collection} sum/Cumulative/monotonic=true {pinpoint.gc.generation=young,pinpoint.gc.type=g1} " + s + " " + c + " int:110",
		"pinpoint.gc.time ms sum/Cumulative/monotonic=true {pinpoint.gc.generation=old,pinpoint.gc.type=g1} " + s + " " + c + " int:945",
		"pinpoint.gc.time ms sum/Cumulative/monotonic=true {pinpoint.gc.generation=young,pinpoint.gc.type=g1} " + s + " " + c + " int:1666",
		"pinpoint.memory.pool.utilization 1 gauge {pinpoint.memory.pool=code_cache} start=- " + c + " double:0.25",
		"pinpoint.memory.pool.utilization 1 gauge {pinpoint.memory.pool=new_gen} start=- " + c + " double:0.5",
		"pinpoint.memory.pool.utilization 1 gauge {pinpoint.memory.pool=old_gen} start=- " + c + " double:0.125",
		"pinpoint.memory.pool.utilization 1 gauge {pinpoint.memory.pool=survivor} start=- " + c + " double:0",
		"pinpoint.memory.pool.utilization 1 gauge {pinpoint.memory.pool=metaspace} start=- " + c + " double:0.75",
		"pinpoint.transaction.count {transaction} sum/Delta/monotonic=true {pinpoint.transaction.kind=new,pinpoint.transaction.sampling=sampled} " + iv + " " + c + " int:10",
		"pinpoint.transaction.count {transaction} sum/Delta/monotonic=true {pinpoint.transaction.kind=continuation,pinpoint.transaction.sampling=sampled} " + iv + " " + c + " int:2",
		"pinpoint.transaction.count {transaction} sum/Delta/monotonic=true {pinpoint.transaction.kind=new,pinpoint.transaction.sampling=unsampled} " + iv + " " + c + " int:30",
		"pinpoint.transaction.count {transaction} sum/Delta/monotonic=true {pinpoint.transaction.kind=continuation,pinpoint.transaction.sampling=unsampled} " + iv + " " + c + " int:4",
		"pinpoint.transaction.count {transaction} sum/Delta/monotonic=true {pinpoint.transaction.kind=new,pinpoint.transaction.sampling=skipped} " + iv + " " + c + " int:0",
		"pinpoint.transaction.count {transaction} sum/Delta/monotonic=true {pinpoint.transaction.kind=continuation,pinpoint.transaction.sampling=skipped} " + iv + " " + c + " int:1",
		"pinpoint.active_trace.count {request} gauge {pinpoint.active_trace.bucket=fast,pinpoint.active_trace.schema=normal} start=- " + c + " int:3",
		"pinpoint.active_trace.count {request} gauge {pinpoint.active_trace.bucket=normal,pinpoint.active_trace.schema=normal} start=- " + c + " int:2",
		"pinpoint.active_trace.count {request} gauge {pinpoint.active_trace.bucket=slow,pinpoint.active_trace.schema=normal} start=- " + c + " int:1",
		"pinpoint.active_trace.count {request} gauge {pinpoint.active_trace.bucket=very_slow,pinpoint.active_trace.schema=normal} start=- " + c + " int:0",
		"pinpoint.response_time.avg ms gauge {} start=- " + c + " int:12",
		"pinpoint.response_time.max ms gauge {} start=- " + c + " int:250",
		"pinpoint.thread.count {thread} gauge {} start=- " + c + " int:42",
		"pinpoint.thread.deadlocked {thread} gauge {} start=- " + c + " int:0",
		"pinpoint.file_descriptor.open {file_descriptor} gauge {} start=- " + c + " int:321",
		"pinpoint.class.count {class} gauge {} start=- " + c + " int:9000",
		"pinpoint.class.unloaded {class} sum/Cumulative/monotonic=true {} " + s + " " + c + " int:15",
		"pinpoint.buffer.count {buffer} gauge {pinpoint.buffer.type=direct} start=- " + c + " int:12",
		"pinpoint.buffer.count {buffer} gauge {pinpoint.buffer.type=mapped} start=- " + c + " int:0",
		"pinpoint.buffer.memory.used By gauge {pinpoint.buffer.type=direct} start=- " + c + " int:4096",
		"pinpoint.buffer.memory.used By gauge {pinpoint.buffer.type=mapped} start=- " + c + " int:0",
		"pinpoint.datasource.connection.active {connection} gauge {db.namespace=orders,pinpoint.datasource.id=1,pinpoint.datasource.url=jdbc:mysql://db:3306/orders,pinpoint.service_type=6060} start=- " + c + " int:0",
		"pinpoint.datasource.connection.max {connection} gauge {db.namespace=orders,pinpoint.datasource.id=1,pinpoint.datasource.url=jdbc:mysql://db:3306/orders,pinpoint.service_type=6060} start=- " + c + " int:10",
		"pinpoint.datasource.connection.active {connection} gauge {pinpoint.datasource.id=2,pinpoint.service_type=6050} start=- " + c + " int:3",
	}
	assertLines(t, golden(t, md), want)
	if n != len(want) {
		t.Errorf("Translate returned %d points, want %d", n, len(want))
	}

	// The typed values matter to backends: ratios are doubles, counts ints.
	checkResourceAndScope(t, md)
	m := findMetric(t, md, MetricDataSourceActive)
	if v, _ := m.Gauge().DataPoints().At(0).Attributes().Get(AttrDataSourceID); v.Type() != pcommon.ValueTypeInt {
		t.Errorf("%s is %s, want Int", AttrDataSourceID, v.Type())
	}
}

func checkResourceAndScope(t *testing.T, md pmetric.Metrics) {
	t.Helper()
	if md.ResourceMetrics().Len() != 1 {
		t.Fatalf("%d ResourceMetrics, want 1", md.ResourceMetrics().Len())
	}
	rm := md.ResourceMetrics().At(0)
	if got, want := rm.Resource().Attributes().AsRaw(), testResource().Attributes().AsRaw(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("resource %v, want %v", got, want)
	}
	if rm.ScopeMetrics().Len() != 1 || rm.ScopeMetrics().At(0).Scope().Name() != metadata.ScopeName {
		t.Errorf("want one scope named %s", metadata.ScopeName)
	}
	// One Metric per name, however many stats fed it.
	seen := map[string]bool{}
	for _, m := range rm.ScopeMetrics().At(0).Metrics().All() {
		if seen[m.Name()] {
			t.Errorf("metric %s appears twice", m.Name())
		}
		seen[m.Name()] = true
	}
}

func findMetric(t *testing.T, md pmetric.Metrics, name string) pmetric.Metric {
	t.Helper()
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				if m.Name() == name {
					return m
				}
			}
		}
	}
	t.Fatalf("no metric %s", name)
	return pmetric.Metric{}
}

func TestTranslateNodeShape(t *testing.T) {
	const c1, c2 = "t=1700000060000", "t=1700000065000"
	want := []string{
		"pinpoint.memory.used By gauge {pinpoint.memory.type=heap} start=- " + c1 + " int:10000000",
		"pinpoint.memory.limit By gauge {pinpoint.memory.type=heap} start=- " + c1 + " int:20000000",
		"pinpoint.cpu.load 1 gauge {pinpoint.cpu.scope=process} start=- " + c1 + " double:0.125",
		"pinpoint.memory.used By gauge {pinpoint.memory.type=heap} start=- " + c2 + " int:10000000",
		"pinpoint.memory.limit By gauge {pinpoint.memory.type=heap} start=- " + c2 + " int:20000000",
		// An idle process: 0 is a real process load.
		"pinpoint.cpu.load 1 gauge {pinpoint.cpu.scope=process} start=- " + c2 + " double:0",
	}
	md := pmetric.NewMetrics()
	n, err := Translate(md, testResource(), agentStartMs, batch(nodeStat(sampleMs, 0.125), nodeStat(sampleMs+5000, 0)))
	if err != nil {
		t.Fatal(err)
	}
	assertLines(t, golden(t, md), want)
	if n != len(want) {
		t.Errorf("Translate returned %d points, want %d", n, len(want))
	}
	checkResourceAndScope(t, md)
	if got := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().Len(); got != 3 {
		t.Errorf("%d metrics, want 3", got)
	}

	// What the Node agent really sends: one agentStat per message.
	md = pmetric.NewMetrics()
	if n, err = Translate(md, testResource(), agentStartMs, single(nodeStat(sampleMs, 0.125))); err != nil || n != 3 {
		t.Fatalf("single Node stat: %d points, %v", n, err)
	}
	assertLines(t, golden(t, md), want[:3])
}

func TestTranslateBatchKeepsOneMetricPerName(t *testing.T) {
	md := pmetric.NewMetrics()
	stats := make([]*v1.PAgentStat, 6)
	for i := range stats {
		stats[i] = javaStat(sampleMs + int64(i)*10_000)
	}
	n, err := Translate(md, testResource(), agentStartMs, batch(stats...))
	if err != nil {
		t.Fatal(err)
	}
	if n != 6*38 {
		t.Errorf("%d points, want %d", n, 6*38)
	}
	checkResourceAndScope(t, md)
	dps := findMetric(t, md, MetricTransactionCount).Sum().DataPoints()
	if dps.Len() != 36 {
		t.Fatalf("%d transaction points, want 36", dps.Len())
	}
	// Points follow the stats: the last six belong to the last sample.
	last := dps.At(35)
	if got, want := last.Timestamp(), nanos(sampleMs+50_000); got != want {
		t.Errorf("last point at %d, want %d", got, want)
	}
	if got, want := last.StartTimestamp(), nanos(sampleMs+40_000); got != want {
		t.Errorf("last point starts at %d, want %d", got, want)
	}
}

func TestTranslateSkipsUnknownValues(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	// Every value is the agents' "uncollected" or something no backend can
	// store, so nothing is left and nothing may be appended.
	unknown := &v1.PAgentStat{
		Timestamp:       sampleMs,
		CollectInterval: 5000,
		Gc: &v1.PJvmGc{
			Type:                 v1.PJvmGcType_JVM_GC_TYPE_CMS,
			JvmMemoryHeapUsed:    -1,
			JvmMemoryHeapMax:     -1,
			JvmMemoryNonHeapUsed: -1,
			JvmMemoryNonHeapMax:  -1,
			JvmGcOldCount:        -1,
			JvmGcOldTime:         -1,
			JvmGcDetailed: &v1.PJvmGcDetailed{
				JvmGcNewCount: -1, JvmGcNewTime: -1,
				JvmPoolCodeCacheUsed: -1, JvmPoolNewGenUsed: nan, JvmPoolOldGenUsed: inf,
				JvmPoolSurvivorSpaceUsed: -inf, JvmPoolPermGenUsed: -1, JvmPoolMetaspaceUsed: -1,
			},
		},
		CpuLoad: &v1.PCpuLoad{JvmCpuLoad: -1, SystemCpuLoad: nan},
		Transaction: &v1.PTransaction{
			SampledNewCount: -1, SampledContinuationCount: -1, UnsampledNewCount: -1,
			UnsampledContinuationCount: -1, SkippedNewCount: -1, SkippedContinuationCount: -1,
		},
		ActiveTrace:    &v1.PActiveTrace{Histogram: &v1.PActiveTraceHistogram{HistogramSchemaType: 2, ActiveTraceCount: []int32{-1, -1, -1, -1}}},
		DataSourceList: &v1.PDataSourceList{DataSource: []*v1.PDataSource{{Id: 1, ActiveConnectionSize: -1, MaxConnectionSize: -1}}},
		ResponseTime:   &v1.PResponseTime{}, // no transaction in the interval
		Deadlock:       &v1.PDeadlock{Count: -1},
		FileDescriptor: &v1.PFileDescriptor{OpenFileDescriptorCount: -1},
		DirectBuffer:   &v1.PDirectBuffer{DirectCount: -1, DirectMemoryUsed: -1, MappedCount: -1, MappedMemoryUsed: -1},
		TotalThread:    &v1.PTotalThread{}, // 0 threads: not measured
		LoadedClass:    &v1.PLoadedClass{LoadedClassCount: 0, UnloadedClassCount: -1},
	}
	assertRefused(t, single(unknown), ErrNoData)

	// Shapes Pinpoint cannot read are skipped, not guessed at.
	cases := map[string]*v1.PAgentStat{
		"no timestamp":       {CpuLoad: &v1.PCpuLoad{JvmCpuLoad: 0.5}},
		"timestamp overflow": {Timestamp: math.MaxInt64, CpuLoad: &v1.PCpuLoad{JvmCpuLoad: 0.5}},
		"three slots":        {Timestamp: sampleMs, ActiveTrace: &v1.PActiveTrace{Histogram: &v1.PActiveTraceHistogram{HistogramSchemaType: 2, ActiveTraceCount: []int32{1, 2, 3}}}},
		"unknown schema":     {Timestamp: sampleMs, ActiveTrace: &v1.PActiveTrace{Histogram: &v1.PActiveTraceHistogram{HistogramSchemaType: 7, ActiveTraceCount: []int32{1, 2, 3, 4}}}},
		"no interval":        {Timestamp: sampleMs, Transaction: &v1.PTransaction{SampledNewCount: 3}},
		"interval too long":  {Timestamp: sampleMs, CollectInterval: sampleMs, Transaction: &v1.PTransaction{SampledNewCount: 3}},
		"gc of unknown type": {Timestamp: sampleMs, Gc: &v1.PJvmGc{JvmGcOldCount: 4, JvmGcOldTime: 9}},
		"system load 0":      {Timestamp: sampleMs, CpuLoad: &v1.PCpuLoad{JvmCpuLoad: -1}},
		"zero heap":          {Timestamp: sampleMs, Gc: &v1.PJvmGc{Type: v1.PJvmGcType_JVM_GC_TYPE_G1, JvmGcOldCount: -1, JvmGcOldTime: -1}},
	}
	for name, st := range cases {
		t.Run(name, func(t *testing.T) { assertRefused(t, single(st), ErrNoData) })
	}

	// A single unknown value leaves its neighbours alone.
	md := pmetric.NewMetrics()
	st := &v1.PAgentStat{Timestamp: sampleMs, CpuLoad: &v1.PCpuLoad{JvmCpuLoad: -1, SystemCpuLoad: 0.5}}
	if n, err := Translate(md, testResource(), agentStartMs, single(st)); err != nil || n != 1 {
		t.Fatalf("%d points, %v", n, err)
	}
	assertLines(t, golden(t, md), []string{"pinpoint.cpu.load 1 gauge {pinpoint.cpu.scope=system} start=- t=1700000060000 double:0.5"})
}

func TestTranslateCumulativeStart(t *testing.T) {
	st := &v1.PAgentStat{Timestamp: sampleMs, LoadedClass: &v1.PLoadedClass{UnloadedClassCount: 2}}
	for _, tc := range []struct {
		name  string
		start int64
		want  pcommon.Timestamp
	}{
		{"agent start", agentStartMs, nanos(agentStartMs)},
		{"unknown start", 0, 0},
		{"start after the sample", sampleMs + 1, 0},
	} {
		md := pmetric.NewMetrics()
		if _, err := Translate(md, testResource(), tc.start, single(st)); err != nil {
			t.Fatal(err)
		}
		if got := findMetric(t, md, MetricClassUnloaded).Sum().DataPoints().At(0).StartTimestamp(); got != tc.want {
			t.Errorf("%s: start %d, want %d", tc.name, got, tc.want)
		}
	}
}

// assertRefused checks that msg is refused with err and that md, which holds
// data already, is left byte for byte as it was.
func assertRefused(t *testing.T, msg *v1.PStatMessage, want error) {
	t.Helper()
	md := pmetric.NewMetrics()
	if _, err := Translate(md, testResource(), agentStartMs, single(nodeStat(sampleMs, 0.5))); err != nil {
		t.Fatal(err)
	}
	var m pmetric.ProtoMarshaler
	before, _ := m.MarshalMetrics(md)
	n, err := Translate(md, testResource(), agentStartMs, msg)
	if !errors.Is(err, want) {
		t.Errorf("error %v, want %v", err, want)
	}
	if n != 0 {
		t.Errorf("%d points on error", n)
	}
	after, _ := m.MarshalMetrics(md)
	if string(before) != string(after) {
		t.Errorf("md changed although Translate failed")
	}
}

func TestTranslateRefusesEmpty(t *testing.T) {
	for name, tc := range map[string]struct {
		msg  *v1.PStatMessage
		want error
	}{
		"nil message":    {nil, ErrNoData},
		"no field":       {&v1.PStatMessage{}, ErrNoData},
		"nil agentStat":  {&v1.PStatMessage{Field: &v1.PStatMessage_AgentStat{}}, ErrNoData},
		"empty stat":     {single(&v1.PAgentStat{}), ErrNoData},
		"stat time only": {single(&v1.PAgentStat{Timestamp: sampleMs, CollectInterval: 5000}), ErrNoData},
		"nil batch":      {&v1.PStatMessage{Field: &v1.PStatMessage_AgentStatBatch{}}, ErrNoData},
		"empty batch":    {batch(), ErrNoData},
		"batch of nils":  {batch(nil, nil), ErrNoData},
		"nil uri stat":   {&v1.PStatMessage{Field: &v1.PStatMessage_AgentUriStat{}}, ErrNoData},
		"uri stat empty histograms": {&v1.PStatMessage{Field: &v1.PStatMessage_AgentUriStat{AgentUriStat: &v1.PAgentUriStat{
			EachUriStat: []*v1.PEachUriStat{{Uri: "/a", Timestamp: sampleMs, TotalHistogram: &v1.PUriHistogram{}}},
		}}}, ErrNoData},
		"uri bucket version 1": {&v1.PStatMessage{Field: &v1.PStatMessage_AgentUriStat{AgentUriStat: &v1.PAgentUriStat{BucketVersion: 1}}}, ErrUnsupported},
		"profiler metric":      {&v1.PStatMessage{Field: &v1.PStatMessage_ProfilerMetric{ProfilerMetric: &v1.PProfilerMetric{Name: "x"}}}, ErrUnsupported},
	} {
		t.Run(name, func(t *testing.T) { assertRefused(t, tc.msg, tc.want) })
	}
}

func TestTranslateURIStat(t *testing.T) {
	const window = 1_700_000_040_000 // a multiple of 30 s, as agents align windows
	msg := &v1.PStatMessage{Field: &v1.PStatMessage_AgentUriStat{AgentUriStat: &v1.PAgentUriStat{
		BucketVersion: 0,
		EachUriStat: []*v1.PEachUriStat{
			{
				Uri:             "GET /users/{id}",
				Timestamp:       window,
				TotalHistogram:  &v1.PUriHistogram{Total: 9000, Max: 8500, Histogram: []int32{5, 3, 1, 0, 0, 0, 0, 1}},
				FailedHistogram: &v1.PUriHistogram{Total: 8500, Max: 8500, Histogram: []int32{0, 0, 0, 0, 0, 0, 0, 1}},
			},
			{
				// The Java agent's empty failed histogram has no buckets.
				Uri:             "/health",
				Timestamp:       window,
				TotalHistogram:  &v1.PUriHistogram{Total: 50, Max: 9, Histogram: []int32{10, 0, 0, 0, 0, 0, 0, 0}},
				FailedHistogram: &v1.PUriHistogram{},
			},
			// Broken entries are skipped: negative bucket, wrong length, no time.
			{Uri: "/neg", Timestamp: window, TotalHistogram: &v1.PUriHistogram{Histogram: []int32{1, -1, 0, 0, 0, 0, 0, 0}}},
			{Uri: "/short", Timestamp: window, TotalHistogram: &v1.PUriHistogram{Histogram: []int32{1, 1}}},
			{Uri: "/notime", TotalHistogram: &v1.PUriHistogram{Histogram: []int32{1, 0, 0, 0, 0, 0, 0, 0}}},
		},
	}}}
	md := pmetric.NewMetrics()
	n, err := Translate(md, testResource(), agentStartMs, msg)
	if err != nil {
		t.Fatal(err)
	}
	const times = "start=1700000040000 t=1700000070000"
	const bounds = "bounds=[100 300 500 1000 3000 5000 8000]"
	want := []string{
		"pinpoint.uri.request.duration ms histogram/Delta {http.request.method=GET,http.route=/users/{id}} " + times + " count=10 sum=9000 max=8500 " + bounds + " buckets=[5 3 1 0 0 0 0 1]",
		"pinpoint.uri.request.failed.duration ms histogram/Delta {http.request.method=GET,http.route=/users/{id}} " + times + " count=1 sum=8500 max=8500 " + bounds + " buckets=[0 0 0 0 0 0 0 1]",
		"pinpoint.uri.request.duration ms histogram/Delta {http.route=/health} " + times + " count=10 sum=50 max=9 " + bounds + " buckets=[10 0 0 0 0 0 0 0]",
	}
	assertLines(t, golden(t, md), want)
	if n != len(want) {
		t.Errorf("%d points, want %d", n, len(want))
	}
	checkResourceAndScope(t, md)
	dp := findMetric(t, md, MetricURIRequestDuration).Histogram().DataPoints().At(0)
	if dp.HasMin() || !dp.HasMax() || !dp.HasSum() {
		t.Errorf("min %t max %t sum %t: Pinpoint sends a max and a total, no min", dp.HasMin(), dp.HasMax(), dp.HasSum())
	}
}

func TestLiveness(t *testing.T) {
	md := pmetric.NewMetrics()
	at := time.UnixMilli(sampleMs)
	Liveness(md, testResource(), at, true)
	Liveness(md, testResource(), at.Add(time.Minute), false)
	assertLines(t, golden(t, md), []string{
		"pinpoint.agent.alive 1 gauge {} start=- t=1700000060000 int:1",
		"pinpoint.agent.alive 1 gauge {} start=- t=1700000120000 int:0",
	})
	if md.ResourceMetrics().Len() != 2 {
		t.Fatalf("%d ResourceMetrics, want 2", md.ResourceMetrics().Len())
	}
	if v, _ := md.ResourceMetrics().At(1).Resource().Attributes().Get("service.name"); v.Str() != "orders" {
		t.Errorf("resource not copied: %v", md.ResourceMetrics().At(1).Resource().Attributes().AsRaw())
	}
}

func TestTranslateCopiesResource(t *testing.T) {
	res := testResource()
	md := pmetric.NewMetrics()
	if _, err := Translate(md, res, agentStartMs, single(nodeStat(sampleMs, 0.5))); err != nil {
		t.Fatal(err)
	}
	res.Attributes().PutStr("service.name", "changed")
	if v, _ := md.ResourceMetrics().At(0).Resource().Attributes().Get("service.name"); v.Str() != "orders" {
		t.Errorf("resource shared with the caller: %q", v.Str())
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"jdbc:mysql://db:3306/orders":                                  "jdbc:mysql://db:3306/orders",
		"jdbc:mysql://db:3306/orders?user=app&password=secret":         "jdbc:mysql://db:3306/orders",
		"jdbc:postgresql://app:s3cr@t@db:5432/orders":                  "jdbc:postgresql://db:5432/orders",
		"jdbc:sqlserver://db:1433;databaseName=orders;password=secret": "jdbc:sqlserver://db:1433",
		"jdbc:oracle:thin:scott/tiger@db:1521:orcl":                    "jdbc:oracle:thin:@db:1521:orcl",
		"jdbc:oracle:thin:scott/tiger@//db:1521/svc":                   "jdbc:oracle:thin:@//db:1521/svc",
		"jdbc:oracle:thin:@db:1521:orcl":                               "jdbc:oracle:thin:@db:1521:orcl",
		"mongodb://app:secret@db1,db2/orders?replicaSet=rs":            "mongodb://db1,db2/orders",
		"jdbc:h2:mem:test":                                             "jdbc:h2:mem:test",
		"jdbc:mysql://db/files@2024":                                   "jdbc:mysql://db/files@2024", // '@' in the path is no user info
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitMethod(t *testing.T) {
	for in, want := range map[string][2]string{
		"GET /users/{id}": {"GET", "/users/{id}"},
		"/users/{id}":     {"", "/users/{id}"},
		"/a b":            {"", "/a b"},
		" /a":             {"", " /a"},
		"/NULL":           {"", "/NULL"},
	} {
		if m, r := splitMethod(in); m != want[0] || r != want[1] {
			t.Errorf("splitMethod(%q) = %q, %q; want %q, %q", in, m, r, want[0], want[1])
		}
	}
}
