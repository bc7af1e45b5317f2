package stat

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/weftobs/weft/receiver/pinpointreceiver/internal/metadata"
	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
)

var (
	// ErrNoData is wrapped by Translate's error when the message holds
	// nothing that can become a data point.
	ErrNoData = errors.New("pinpoint stat: nothing to translate")
	// ErrUnsupported is wrapped when the message is of a kind (or a bucket
	// version) this package does not read.
	ErrUnsupported = errors.New("pinpoint stat: unsupported message")
)

// Translate appends the metrics in msg to md, under one new ResourceMetrics
// whose resource is a copy of res. agentStart is the agent process's start
// (epoch ms, the starttime header): the start of the cumulative sums. It
// returns the number of data points written, and an error wrapping ErrNoData
// or ErrUnsupported, with md untouched, when msg yields no data point.
func Translate(md pmetric.Metrics, res pcommon.Resource, agentStart int64, msg *v1.PStatMessage) (int, error) {
	var (
		stats []*v1.PAgentStat
		one   [1]*v1.PAgentStat // spares a single stat a slice allocation
		uri   *v1.PAgentUriStat
	)
	switch f := msg.GetField().(type) {
	case *v1.PStatMessage_AgentStat:
		if f.AgentStat == nil {
			return 0, fmt.Errorf("%w: agentStat is empty", ErrNoData)
		}
		one[0] = f.AgentStat
		stats = one[:]
	case *v1.PStatMessage_AgentStatBatch:
		stats = f.AgentStatBatch.GetAgentStat()
		if len(stats) == 0 {
			return 0, fmt.Errorf("%w: agentStatBatch holds no stat", ErrNoData)
		}
	case *v1.PStatMessage_AgentUriStat:
		uri = f.AgentUriStat
		if v := uri.GetBucketVersion(); v != 0 {
			return 0, fmt.Errorf("%w: agentUriStat bucketVersion %d (only 0 is known)", ErrUnsupported, v)
		}
		if len(uri.GetEachUriStat()) == 0 {
			return 0, fmt.Errorf("%w: agentUriStat holds no URI", ErrNoData)
		}
	case *v1.PStatMessage_ProfilerMetric:
		return 0, fmt.Errorf("%w: profilerMetric", ErrUnsupported)
	default:
		return 0, fmt.Errorf("%w: PStatMessage has no field set", ErrNoData)
	}

	rms := md.ResourceMetrics()
	at := rms.Len()
	rm := rms.AppendEmpty()
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(metadata.ScopeName)
	w := writer{metrics: sm.Metrics(), agentStart: agentStart}
	if uri != nil {
		w.uriStat(uri)
	} else {
		w.stats = len(stats)
		w.metrics.EnsureCapacity(metricsUpperBound(stats))
		for _, st := range stats {
			w.stat(st)
		}
	}

	if w.points == 0 {
		// Take back the ResourceMetrics appended above; it is the last one.
		i := 0
		rms.RemoveIf(func(pmetric.ResourceMetrics) bool { i++; return i-1 == at })
		return 0, fmt.Errorf("%w: no value is present and known", ErrNoData)
	}
	res.CopyTo(rm.Resource())
	return w.points, nil
}

// Liveness appends the agent liveness gauge under a new ResourceMetrics whose
// resource is a copy of res: 1 at ts while the agent's PingSession is open
// (at each ping), 0 when the session has ended.
func Liveness(md pmetric.Metrics, res pcommon.Resource, ts time.Time, alive bool) {
	rm := md.ResourceMetrics().AppendEmpty()
	res.CopyTo(rm.Resource())
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName(metadata.ScopeName)
	w := writer{metrics: sm.Metrics(), stats: 1}
	var v int64
	if alive {
		v = 1
	}
	w.gaugeInt(idAgentAlive, pcommon.NewTimestampFromTime(ts), v)
}

// maxMillis is the last epoch millisecond whose nanoseconds fit an int64.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// validMillis reports whether ms is a usable point in time: proto3 sends an
// unset timestamp as 0, and a data point without a time is meaningless.
func validMillis(ms int64) bool { return ms > 0 && ms <= maxMillis }

func nanos(ms int64) pcommon.Timestamp { return pcommon.Timestamp(ms * int64(time.Millisecond)) }

// finite is for the doubles on the wire: a random or broken agent can send
// NaN or ±Inf, which no backend can store.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// writer collects the points of one ResourceMetrics, one Metric per name: a
// batch's stats all land in the same metrics, in stat order.
type writer struct {
	metrics    pmetric.MetricSlice
	nums       [numMetrics]pmetric.NumberDataPointSlice
	hists      [2]pmetric.HistogramDataPointSlice // idURIRequestDuration, idURIFailedDuration
	made       uint32                             // bit id: the metric exists
	stats      int                                // stats in the message, to size point slices
	points     int
	agentStart int64
}

// create appends metric id with room for n points.
func (w *writer) create(id metricID, n int) {
	d := &defs[id]
	m := w.metrics.AppendEmpty()
	m.SetName(d.name)
	m.SetUnit(d.unit)
	m.SetDescription(d.desc)
	switch d.kind {
	case gauge:
		w.nums[id] = m.SetEmptyGauge().DataPoints()
	case cumulativeSum, deltaSum:
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		if d.kind == cumulativeSum {
			s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		} else {
			s.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		}
		w.nums[id] = s.DataPoints()
	case deltaHistogram:
		h := m.SetEmptyHistogram()
		h.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
		w.hists[id-idURIRequestDuration] = h.DataPoints()
		w.hists[id-idURIRequestDuration].EnsureCapacity(n)
		w.made |= 1 << id
		return
	}
	w.nums[id].EnsureCapacity(n)
	w.made |= 1 << id
}

// number appends a point to number metric id, creating the metric with room
// for n points (or the stats' worth of its def) on first use.
func (w *writer) number(id metricID, n int) pmetric.NumberDataPoint {
	if w.made&(1<<id) == 0 {
		if per := defs[id].perStat; per > 0 {
			n = per * w.stats
		}
		w.create(id, n)
	}
	w.points++
	return w.nums[id].AppendEmpty()
}

// gaugeInt writes an integer gauge point.
func (w *writer) gaugeInt(id metricID, ts pcommon.Timestamp, v int64) pmetric.NumberDataPoint {
	dp := w.number(id, 0)
	dp.SetTimestamp(ts)
	dp.SetIntValue(v)
	return dp
}

// cumulative writes a cumulative sum point counted from the agent's start.
func (w *writer) cumulative(id metricID, start, ts pcommon.Timestamp, v int64) pmetric.NumberDataPoint {
	dp := w.number(id, 0)
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(ts)
	dp.SetIntValue(v)
	return dp
}

// metricsUpperBound counts the metrics the stats can produce, from the
// sub-messages present, to size the metric slice once.
func metricsUpperBound(stats []*v1.PAgentStat) int {
	var cpu, gc, detailed, tx, active, ds, rt, thread, dead, fd, class, buf bool
	for _, st := range stats {
		cpu = cpu || st.GetCpuLoad() != nil
		gc = gc || st.GetGc() != nil
		detailed = detailed || st.GetGc().GetJvmGcDetailed() != nil
		tx = tx || st.GetTransaction() != nil
		active = active || st.GetActiveTrace() != nil
		ds = ds || len(st.GetDataSourceList().GetDataSource()) > 0
		rt = rt || st.GetResponseTime() != nil
		thread = thread || st.GetTotalThread() != nil
		dead = dead || st.GetDeadlock() != nil
		fd = fd || st.GetFileDescriptor() != nil
		class = class || st.GetLoadedClass() != nil
		buf = buf || st.GetDirectBuffer() != nil
	}
	n := 0
	for _, c := range [...]struct {
		present bool
		metrics int
	}{{cpu, 1}, {gc, 4}, {detailed, 1}, {tx, 1}, {active, 1}, {ds, 2}, {rt, 2}, {thread, 1}, {dead, 1}, {fd, 1}, {class, 2}, {buf, 2}} {
		if c.present {
			n += c.metrics
		}
	}
	return n
}

// stat writes the points of one PAgentStat. Only present sub-messages are
// read. Pinpoint agents send -1 for a value they could not collect, and
// proto3 cannot tell 0 from "not sent"; so negative values are always
// skipped, and 0 is skipped where a live process cannot measure 0 (used
// heap, threads, open files, loaded classes, system CPU).
func (w *writer) stat(st *v1.PAgentStat) {
	ms := st.GetTimestamp()
	if !validMillis(ms) {
		return
	}
	ts := nanos(ms)
	// The counters of cumulative sums start with the agent process; a start
	// after the sample (clock trouble) is left unset rather than made up.
	var start pcommon.Timestamp
	if w.agentStart > 0 && w.agentStart <= ms {
		start = nanos(w.agentStart)
	}

	if c := st.GetCpuLoad(); c != nil {
		// Node agents always send 0 (so: nothing) for systemCpuLoad, and a
		// whole system is never exactly idle while the agent runs on it.
		if v := c.GetJvmCpuLoad(); v >= 0 && finite(v) {
			w.cpu(ts, CPUScopeProcess, v)
		}
		if v := c.GetSystemCpuLoad(); v > 0 && finite(v) {
			w.cpu(ts, CPUScopeSystem, v)
		}
	}
	if g := st.GetGc(); g != nil {
		w.gc(g, start, ts)
	}
	if t := st.GetTransaction(); t != nil {
		// Counts over the collect interval that ends at the sample; without
		// an interval there is no start, and a delta needs one.
		if ci := st.GetCollectInterval(); ci > 0 && ci < ms {
			w.transactions(t, nanos(ms-ci), ts)
		}
	}
	if h := st.GetActiveTrace().GetHistogram(); h != nil {
		w.activeTrace(h, ts)
	}
	if r := st.GetResponseTime(); r != nil {
		// The agent sends avg and max of the interval's transactions; both 0
		// means there was none, and a mean of nothing is not 0 ms.
		avg, mx := r.GetAvg(), r.GetMax()
		if avg >= 0 && mx >= 0 && (avg > 0 || mx > 0) {
			w.gaugeInt(idResponseTimeAvg, ts, avg)
			w.gaugeInt(idResponseTimeMax, ts, mx)
		}
	}
	if t := st.GetTotalThread(); t != nil {
		if v := t.GetTotalThreadCount(); v > 0 {
			w.gaugeInt(idThreadCount, ts, v)
		}
	}
	if d := st.GetDeadlock(); d != nil {
		if v := d.GetCount(); v >= 0 {
			w.gaugeInt(idThreadDeadlocked, ts, int64(v))
		}
	}
	if f := st.GetFileDescriptor(); f != nil {
		if v := f.GetOpenFileDescriptorCount(); v > 0 {
			w.gaugeInt(idFileDescriptorOpen, ts, v)
		}
	}
	if c := st.GetLoadedClass(); c != nil {
		if v := c.GetLoadedClassCount(); v > 0 {
			w.gaugeInt(idClassCount, ts, v)
		}
		// The JVM's unloaded-class counter only grows: a cumulative sum.
		if v := c.GetUnloadedClassCount(); v >= 0 {
			w.cumulative(idClassUnloaded, start, ts, v)
		}
	}
	if b := st.GetDirectBuffer(); b != nil {
		w.buffer(ts, BufferTypeDirect, b.GetDirectCount(), b.GetDirectMemoryUsed())
		w.buffer(ts, BufferTypeMapped, b.GetMappedCount(), b.GetMappedMemoryUsed())
	}
	if l := st.GetDataSourceList().GetDataSource(); len(l) > 0 {
		w.dataSources(l, ts)
	}
}

func (w *writer) cpu(ts pcommon.Timestamp, scope string, v float64) {
	dp := w.number(idCPULoad, 0)
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(v)
	dp.Attributes().PutStr(AttrCPUScope, scope)
}

func (w *writer) gc(g *v1.PJvmGc, start, ts pcommon.Timestamp) {
	w.memory(idMemoryUsed, ts, MemoryTypeHeap, g.GetJvmMemoryHeapUsed())
	w.memory(idMemoryLimit, ts, MemoryTypeHeap, g.GetJvmMemoryHeapMax())
	w.memory(idMemoryUsed, ts, MemoryTypeNonHeap, g.GetJvmMemoryNonHeapUsed())
	w.memory(idMemoryLimit, ts, MemoryTypeNonHeap, g.GetJvmMemoryNonHeapMax())

	// The Java agent counts old-generation collections only for a collector
	// it recognises (else it sends -1); Node agents send type 0 and no
	// counts. So an unknown type means there is no count to report.
	typ := int32(g.GetType())
	gcType := gcTypeName(typ)
	if typ != int32(v1.PJvmGcType_JVM_GC_TYPE_UNKNOWN) {
		w.gcCounters(start, ts, GCGenerationOld, gcType, g.GetJvmGcOldCount(), g.GetJvmGcOldTime())
	}
	d := g.GetJvmGcDetailed()
	if d == nil {
		return
	}
	w.gcCounters(start, ts, GCGenerationYoung, gcType, d.GetJvmGcNewCount(), d.GetJvmGcNewTime())
	// Fractions of the pool's max (or committed) size; -1 when the JVM has
	// no such pool (perm gen after Java 7, metaspace before Java 8).
	w.pool(ts, PoolCodeCache, d.GetJvmPoolCodeCacheUsed())
	w.pool(ts, PoolNewGen, d.GetJvmPoolNewGenUsed())
	w.pool(ts, PoolOldGen, d.GetJvmPoolOldGenUsed())
	w.pool(ts, PoolSurvivor, d.GetJvmPoolSurvivorSpaceUsed())
	w.pool(ts, PoolPermGen, d.GetJvmPoolPermGenUsed())
	w.pool(ts, PoolMetaspace, d.GetJvmPoolMetaspaceUsed())
}

// memory writes a byte gauge. Used memory is never 0 in a live process, and
// a max of -1 (or 0) is the JVM's "undefined": both mean there is no value.
func (w *writer) memory(id metricID, ts pcommon.Timestamp, typ string, v int64) {
	if v <= 0 {
		return
	}
	w.gaugeInt(id, ts, v).Attributes().PutStr(AttrMemoryType, typ)
}

func (w *writer) gcCounters(start, ts pcommon.Timestamp, gen, gcType string, count, millis int64) {
	if count >= 0 {
		a := w.cumulative(idGCCount, start, ts, count).Attributes()
		a.EnsureCapacity(2)
		a.PutStr(AttrGCGeneration, gen)
		a.PutStr(AttrGCType, gcType)
	}
	if millis >= 0 {
		a := w.cumulative(idGCTime, start, ts, millis).Attributes()
		a.EnsureCapacity(2)
		a.PutStr(AttrGCGeneration, gen)
		a.PutStr(AttrGCType, gcType)
	}
}

func (w *writer) pool(ts pcommon.Timestamp, pool string, v float64) {
	if v < 0 || !finite(v) {
		return
	}
	dp := w.number(idMemoryPoolUtilization, 0)
	dp.SetTimestamp(ts)
	dp.SetDoubleValue(v)
	dp.Attributes().PutStr(AttrMemoryPool, pool)
}

func (w *writer) transactions(t *v1.PTransaction, start, ts pcommon.Timestamp) {
	w.transaction(start, ts, SamplingSampled, TransactionKindNew, t.GetSampledNewCount())
	w.transaction(start, ts, SamplingSampled, TransactionKindContinuation, t.GetSampledContinuationCount())
	w.transaction(start, ts, SamplingUnsampled, TransactionKindNew, t.GetUnsampledNewCount())
	w.transaction(start, ts, SamplingUnsampled, TransactionKindContinuation, t.GetUnsampledContinuationCount())
	w.transaction(start, ts, SamplingSkipped, TransactionKindNew, t.GetSkippedNewCount())
	w.transaction(start, ts, SamplingSkipped, TransactionKindContinuation, t.GetSkippedContinuationCount())
}

func (w *writer) transaction(start, ts pcommon.Timestamp, sampling, kind string, v int64) {
	if v < 0 {
		return
	}
	dp := w.number(idTransactionCount, 0)
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(ts)
	dp.SetIntValue(v)
	a := dp.Attributes()
	a.EnsureCapacity(2)
	a.PutStr(AttrSampling, sampling)
	a.PutStr(AttrTransactionKind, kind)
}

// activeTrace writes the four slots of the histogram (fast, normal, slow,
// very slow), as the Pinpoint collector reads them: any other length, or an
// unknown schema (whose bounds nobody knows), is not a histogram it can read.
func (w *writer) activeTrace(h *v1.PActiveTraceHistogram, ts pcommon.Timestamp) {
	counts := h.GetActiveTraceCount()
	schema, ok := activeTraceSchema(h.GetHistogramSchemaType())
	if !ok || len(counts) != len(activeTraceBuckets) {
		return
	}
	for i, c := range counts {
		if c < 0 {
			continue
		}
		a := w.gaugeInt(idActiveTraceCount, ts, int64(c)).Attributes()
		a.EnsureCapacity(2)
		a.PutStr(AttrActiveTraceBucket, activeTraceBuckets[i])
		a.PutStr(AttrActiveTraceSchema, schema)
	}
}

// buffer writes one buffer pool; an empty pool (0) is a real value, -1 is not.
func (w *writer) buffer(ts pcommon.Timestamp, typ string, count, used int64) {
	if count >= 0 {
		w.gaugeInt(idBufferCount, ts, count).Attributes().PutStr(AttrBufferType, typ)
	}
	if used >= 0 {
		w.gaugeInt(idBufferMemoryUsed, ts, used).Attributes().PutStr(AttrBufferType, typ)
	}
}

func (w *writer) dataSources(l []*v1.PDataSource, ts pcommon.Timestamp) {
	n := len(l) * w.stats
	for _, ds := range l {
		// The agent leaves out an active size of 0, so absent is 0 here; a
		// pool that may open no connection at all does not exist, so a max
		// of 0 (or less) is unknown.
		if v := ds.GetActiveConnectionSize(); v >= 0 {
			dp := w.number(idDataSourceActive, n)
			dp.SetTimestamp(ts)
			dp.SetIntValue(int64(v))
			dataSourceAttrs(dp.Attributes(), ds)
		}
		if v := ds.GetMaxConnectionSize(); v > 0 {
			dp := w.number(idDataSourceMax, n)
			dp.SetTimestamp(ts)
			dp.SetIntValue(int64(v))
			dataSourceAttrs(dp.Attributes(), ds)
		}
	}
}

func dataSourceAttrs(a pcommon.Map, ds *v1.PDataSource) {
	a.EnsureCapacity(4)
	a.PutInt(AttrDataSourceID, int64(ds.GetId()))
	a.PutInt(AttrServiceType, int64(ds.GetServiceTypeCode()))
	if v := ds.GetDatabaseName(); v != "" {
		a.PutStr(AttrDBNamespace, v)
	}
	if v := ds.GetUrl(); v != "" {
		a.PutStr(AttrDataSourceURL, redactURL(v))
	}
}

// redactURL drops what may carry credentials from a connection URL: the
// parameters (?user=..&password=.., ;password=..) and the user info
// (scheme://user:password@host, Oracle's user/password@host).
func redactURL(u string) string {
	if i := strings.IndexAny(u, "?;"); i >= 0 {
		u = u[:i]
	}
	if s := strings.Index(u, "//"); s >= 0 {
		auth := u[s+2:]
		if e := strings.IndexByte(auth, '/'); e >= 0 {
			auth = auth[:e]
		}
		if at := strings.LastIndexByte(auth, '@'); at >= 0 {
			return u[:s+2] + u[s+2+at+1:]
		}
		// Oracle's user/password@//host:port/service has its '@' before "//".
		if at := strings.LastIndexByte(u[:s], '@'); at >= 0 {
			return dropOracleUser(u, at)
		}
		return u
	}
	if at := strings.LastIndexByte(u, '@'); at >= 0 {
		return dropOracleUser(u, at)
	}
	return u
}

// dropOracleUser turns jdbc:oracle:thin:user/password@host into
// jdbc:oracle:thin:@host, the form Oracle documents for no credentials.
func dropOracleUser(u string, at int) string {
	colon := strings.LastIndexByte(u[:at], ':')
	return u[:colon+1] + u[at:]
}

// uriStat writes each URI's histograms for the window that starts at its
// timestamp (the agents align windows to multiples of their length).
func (w *writer) uriStat(u *v1.PAgentUriStat) {
	each := u.GetEachUriStat()
	for _, e := range each {
		ms := e.GetTimestamp()
		if !validMillis(ms) || ms > maxMillis-uriWindowMs {
			continue
		}
		start, end := nanos(ms), nanos(ms+uriWindowMs)
		method, route := splitMethod(e.GetUri())
		w.uriHistogram(idURIRequestDuration, len(each), e.GetTotalHistogram(), start, end, method, route)
		w.uriHistogram(idURIFailedDuration, len(each), e.GetFailedHistogram(), start, end, method, route)
	}
}

func (w *writer) uriHistogram(id metricID, n int, h *v1.PUriHistogram, start, end pcommon.Timestamp, method, route string) {
	buckets := h.GetHistogram()
	// The Java agent sends an empty histogram when nothing was counted.
	if len(buckets) != len(uriBounds)+1 || h.GetTotal() < 0 || h.GetMax() < 0 {
		return
	}
	var count uint64
	for _, b := range buckets {
		if b < 0 {
			return
		}
		count += uint64(b)
	}
	if count == 0 {
		return
	}
	if w.made&(1<<id) == 0 {
		w.create(id, n)
	}
	w.points++
	dp := w.hists[id-idURIRequestDuration].AppendEmpty()
	dp.SetStartTimestamp(start)
	dp.SetTimestamp(end)
	dp.SetCount(count)
	dp.SetSum(float64(h.GetTotal()))
	dp.SetMax(float64(h.GetMax()))
	dp.ExplicitBounds().FromRaw(uriBounds[:])
	bc := dp.BucketCounts()
	bc.EnsureCapacity(len(buckets))
	for _, b := range buckets {
		bc.Append(uint64(b))
	}
	a := dp.Attributes()
	a.EnsureCapacity(2)
	if route != "" {
		a.PutStr(AttrHTTPRoute, route)
	}
	if method != "" {
		a.PutStr(AttrHTTPMethod, method)
	}
}

// splitMethod separates the HTTP method that agents configured to collect
// it put in front of the URI template ("GET /users/{id}").
func splitMethod(uri string) (method, route string) {
	sp := strings.IndexByte(uri, ' ')
	if sp <= 0 {
		return "", uri
	}
	for i := 0; i < sp; i++ {
		if c := uri[i]; c < 'A' || c > 'Z' {
			return "", uri
		}
	}
	return uri[:sp], uri[sp+1:]
}
