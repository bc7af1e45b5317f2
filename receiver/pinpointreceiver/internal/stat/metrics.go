package stat

// The metric vocabulary. Every name, unit, instrument type and attribute the
// package writes is defined here and nowhere else; doc.go and METRICS.md
// describe the same table, and metrics_doc_test.go keeps both in step.

// Metric names.
const (
	MetricCPULoad               = "pinpoint.cpu.load"
	MetricMemoryUsed            = "pinpoint.memory.used"
	MetricMemoryLimit           = "pinpoint.memory.limit"
	MetricMemoryPoolUtilization = "pinpoint.memory.pool.utilization"
	MetricGCCount               = "pinpoint.gc.count"
	MetricGCTime                = "pinpoint.gc.time"
	MetricTransactionCount      = "pinpoint.transaction.count"
	MetricActiveTraceCount      = "pinpoint.active_trace.count"
	MetricResponseTimeAvg       = "pinpoint.response_time.avg"
	MetricResponseTimeMax       = "pinpoint.response_time.max"
	MetricThreadCount           = "pinpoint.thread.count"
	MetricThreadDeadlocked      = "pinpoint.thread.deadlocked"
	MetricFileDescriptorOpen    = "pinpoint.file_descriptor.open"
	MetricClassCount            = "pinpoint.class.count"
	MetricClassUnloaded         = "pinpoint.class.unloaded"
	MetricBufferCount           = "pinpoint.buffer.count"
	MetricBufferMemoryUsed      = "pinpoint.buffer.memory.used"
	MetricDataSourceActive      = "pinpoint.datasource.connection.active"
	MetricDataSourceMax         = "pinpoint.datasource.connection.max"
	MetricURIRequestDuration    = "pinpoint.uri.request.duration"
	MetricURIFailedDuration     = "pinpoint.uri.request.failed.duration"
	MetricAgentAlive            = "pinpoint.agent.alive"
)

// Attribute keys. Keys that are not OpenTelemetry semantic conventions live
// under pinpoint.*: the unprefixed namespaces (cpu.*, gc.*, ...) belong to
// the conventions, and these values do not follow them.
const (
	AttrCPUScope          = "pinpoint.cpu.scope"
	AttrMemoryType        = "pinpoint.memory.type"
	AttrMemoryPool        = "pinpoint.memory.pool"
	AttrGCGeneration      = "pinpoint.gc.generation"
	AttrGCType            = "pinpoint.gc.type"
	AttrSampling          = "pinpoint.transaction.sampling"
	AttrTransactionKind   = "pinpoint.transaction.kind"
	AttrActiveTraceBucket = "pinpoint.active_trace.bucket"
	AttrActiveTraceSchema = "pinpoint.active_trace.schema"
	AttrBufferType        = "pinpoint.buffer.type"
	AttrDBNamespace       = "db.namespace" // semantic convention
	AttrDataSourceURL     = "pinpoint.datasource.url"
	AttrDataSourceID      = "pinpoint.datasource.id"
	AttrServiceType       = "pinpoint.service_type"
	AttrHTTPRoute         = "http.route"          // semantic convention
	AttrHTTPMethod        = "http.request.method" // semantic convention
)

// Attribute values.
const (
	CPUScopeProcess = "process"
	CPUScopeSystem  = "system"

	MemoryTypeHeap    = "heap"
	MemoryTypeNonHeap = "non_heap"

	PoolCodeCache = "code_cache"
	PoolNewGen    = "new_gen" // the Java agent measures the eden space here
	PoolOldGen    = "old_gen"
	PoolSurvivor  = "survivor"
	PoolPermGen   = "perm_gen"
	PoolMetaspace = "metaspace"

	GCGenerationOld   = "old"
	GCGenerationYoung = "young"

	SamplingSampled   = "sampled"
	SamplingUnsampled = "unsampled"
	SamplingSkipped   = "skipped"

	TransactionKindNew          = "new"
	TransactionKindContinuation = "continuation"

	BucketFast     = "fast"
	BucketNormal   = "normal"
	BucketSlow     = "slow"
	BucketVerySlow = "very_slow"

	// Pinpoint's two histogram schemas (typeCode 1 and 2).
	SchemaFast   = "fast"   // buckets end at 100 ms, 300 ms, 500 ms
	SchemaNormal = "normal" // buckets end at 1 s, 3 s, 5 s

	BufferTypeDirect = "direct"
	BufferTypeMapped = "mapped"
)

// gcTypes names PJvmGcType values (the enum's numbers are the index).
var gcTypes = [...]string{"unknown", "serial", "parallel", "cms", "g1", "zgc"}

// gcTypeName maps a collector type number to its attribute value; numbers
// added to the enum after this was written read as "unknown".
func gcTypeName(t int32) string {
	if t < 0 || int(t) >= len(gcTypes) {
		return gcTypes[0]
	}
	return gcTypes[t]
}

// activeTraceSchema maps PActiveTraceHistogram.histogramSchemaType to the
// schema name; other numbers have no known bucket bounds.
func activeTraceSchema(t int32) (string, bool) {
	switch t {
	case 1:
		return SchemaFast, true
	case 2:
		return SchemaNormal, true
	}
	return "", false
}

// activeTraceBuckets is the order of PActiveTraceHistogram.activeTraceCount.
var activeTraceBuckets = [4]string{BucketFast, BucketNormal, BucketSlow, BucketVerySlow}

// uriBounds are the explicit bounds (ms) of bucket version 0 of Pinpoint's
// URI histogram: [0,100) [100,300) [300,500) [500,1000) [1000,3000)
// [3000,5000) [5000,8000) [8000,∞). Counts are copied bucket for bucket.
// Pinpoint's buckets include their lower bound, OpenTelemetry's their upper
// one, so a request of exactly 100 ms is reported in (100,300] where
// OpenTelemetry's rule would put it in (−∞,100]; only whole-millisecond
// values on a bound are affected.
var uriBounds = [7]float64{100, 300, 500, 1000, 3000, 5000, 8000}

// uriWindowMs is the span of one URI statistics window. The agents do not
// send it: the Java agent always aggregates 30 s windows, and so does the
// Node agent unless PINPOINT_FEATURES_URI_STATS_TIME_WINDOW changes it.
const uriWindowMs = 30_000

// kind is how a metric is written.
type kind uint8

const (
	gauge          kind = iota
	cumulativeSum       // monotonic, since the agent started
	deltaSum            // monotonic, over one collect interval
	deltaHistogram      // over one URI statistics window
)

// metricID indexes defs.
type metricID uint8

const (
	idCPULoad metricID = iota
	idMemoryUsed
	idMemoryLimit
	idGCCount
	idGCTime
	idMemoryPoolUtilization
	idTransactionCount
	idActiveTraceCount
	idResponseTimeAvg
	idResponseTimeMax
	idThreadCount
	idThreadDeadlocked
	idFileDescriptorOpen
	idClassCount
	idClassUnloaded
	idBufferCount
	idBufferMemoryUsed
	idDataSourceActive
	idDataSourceMax
	idURIRequestDuration
	idURIFailedDuration
	idAgentAlive
	numMetrics
)

// def is one metric of the vocabulary.
type def struct {
	name string
	unit string // UCUM
	desc string
	kind kind
	// perStat is how many points one PAgentStat can add, to size the point
	// slice for a batch; 0 when it varies (data sources, URIs).
	perStat int
}

var defs = [numMetrics]def{
	idCPULoad:               {MetricCPULoad, "1", "CPU load as a fraction of all CPUs: of the agent's process, and of the whole system.", gauge, 2},
	idMemoryUsed:            {MetricMemoryUsed, "By", "Memory in use.", gauge, 2},
	idMemoryLimit:           {MetricMemoryLimit, "By", "Largest size the memory area may grow to (for Node agents: V8's current heap size).", gauge, 2},
	idGCCount:               {MetricGCCount, "{collection}", "Garbage collections since the agent started.", cumulativeSum, 2},
	idGCTime:                {MetricGCTime, "ms", "Time spent in garbage collection since the agent started.", cumulativeSum, 2},
	idMemoryPoolUtilization: {MetricMemoryPoolUtilization, "1", "Fraction of a memory pool in use (used / max, or used / committed when max is undefined).", gauge, 6},
	idTransactionCount:      {MetricTransactionCount, "{transaction}", "Transactions started in the collect interval.", deltaSum, 6},
	idActiveTraceCount:      {MetricActiveTraceCount, "{request}", "Requests in flight, by how long they have been running.", gauge, 4},
	idResponseTimeAvg:       {MetricResponseTimeAvg, "ms", "Mean response time of the transactions of the collect interval.", gauge, 1},
	idResponseTimeMax:       {MetricResponseTimeMax, "ms", "Longest response time of the transactions of the collect interval.", gauge, 1},
	idThreadCount:           {MetricThreadCount, "{thread}", "Live threads.", gauge, 1},
	idThreadDeadlocked:      {MetricThreadDeadlocked, "{thread}", "Threads in a deadlock.", gauge, 1},
	idFileDescriptorOpen:    {MetricFileDescriptorOpen, "{file_descriptor}", "Open file descriptors.", gauge, 1},
	idClassCount:            {MetricClassCount, "{class}", "Classes currently loaded.", gauge, 1},
	idClassUnloaded:         {MetricClassUnloaded, "{class}", "Classes unloaded since the agent started.", cumulativeSum, 1},
	idBufferCount:           {MetricBufferCount, "{buffer}", "Buffers in the pool.", gauge, 2},
	idBufferMemoryUsed:      {MetricBufferMemoryUsed, "By", "Memory the pool's buffers use.", gauge, 2},
	idDataSourceActive:      {MetricDataSourceActive, "{connection}", "Connections of the pool in use.", gauge, 0},
	idDataSourceMax:         {MetricDataSourceMax, "{connection}", "Most connections the pool may open.", gauge, 0},
	idURIRequestDuration:    {MetricURIRequestDuration, "ms", "Response times of the requests served in the window, failed ones included.", deltaHistogram, 0},
	idURIFailedDuration:     {MetricURIFailedDuration, "ms", "Response times of the failed requests served in the window.", deltaHistogram, 0},
	idAgentAlive:            {MetricAgentAlive, "1", "1 while the agent's ping session is open, 0 once it has ended.", gauge, 1},
}
