// Package stat translates the statistics Pinpoint agents send on the Stat
// service (PStatMessage) into OpenTelemetry metrics, and writes the agent
// liveness gauge. It is pure: no I/O, no state between calls.
//
// One PStatMessage becomes one ResourceMetrics; a batch keeps one metric per
// name with all its samples' points. Each point's time is the sample's
// timestamp; cumulative sums start at the agent's start time (the starttime
// header); transaction counts are deltas over the collectInterval ending at
// the sample. Only sub-messages that are present are read. Agents send -1
// for a value they could not collect and proto3 cannot tell 0 from "not
// sent": negative values are never written, and 0 is not written where a
// live process cannot measure 0 (used memory, threads, open files, loaded
// classes, system CPU, a connection pool's maximum).
//
// The vocabulary (METRICS.md has the source field and notes of each):
//
//	metric                                instrument               unit               attributes
//	pinpoint.cpu.load                     gauge double             1                  pinpoint.cpu.scope=process|system
//	pinpoint.memory.used                  gauge int                By                 pinpoint.memory.type=heap|non_heap
//	pinpoint.memory.limit                 gauge int                By                 pinpoint.memory.type=heap|non_heap
//	pinpoint.gc.count                     sum cumulative monotonic {collection}       pinpoint.gc.generation=old|young, pinpoint.gc.type=serial|parallel|cms|g1|zgc|unknown
//	pinpoint.gc.time                      sum cumulative monotonic ms                 pinpoint.gc.generation, pinpoint.gc.type
//	pinpoint.memory.pool.utilization      gauge double             1                  pinpoint.memory.pool=code_cache|new_gen|old_gen|survivor|perm_gen|metaspace
//	pinpoint.transaction.count            sum delta monotonic      {transaction}      pinpoint.transaction.sampling=sampled|unsampled|skipped, pinpoint.transaction.kind=new|continuation
//	pinpoint.active_trace.count           gauge int                {request}          pinpoint.active_trace.bucket=fast|normal|slow|very_slow, pinpoint.active_trace.schema=fast|normal
//	pinpoint.response_time.avg            gauge int                ms
//	pinpoint.response_time.max            gauge int                ms
//	pinpoint.thread.count                 gauge int                {thread}
//	pinpoint.thread.deadlocked            gauge int                {thread}
//	pinpoint.file_descriptor.open         gauge int                {file_descriptor}
//	pinpoint.class.count                  gauge int                {class}
//	pinpoint.class.unloaded               sum cumulative monotonic {class}
//	pinpoint.buffer.count                 gauge int                {buffer}           pinpoint.buffer.type=direct|mapped
//	pinpoint.buffer.memory.used           gauge int                By                 pinpoint.buffer.type=direct|mapped
//	pinpoint.datasource.connection.active gauge int                {connection}       pinpoint.datasource.id, pinpoint.service_type, db.namespace, pinpoint.datasource.url
//	pinpoint.datasource.connection.max    gauge int                {connection}       as above
//	pinpoint.uri.request.duration         histogram delta          ms                 http.route, http.request.method
//	pinpoint.uri.request.failed.duration  histogram delta          ms                 http.route, http.request.method
//	pinpoint.agent.alive                  gauge int                1
//
// The active-trace schemas bound their buckets at 100/300/500 ms (fast) and
// 1/3/5 s (normal). The URI histograms cover 30 s windows starting at each
// entry's timestamp, with Pinpoint's bucket version 0 bounds (100, 300, 500,
// 1000, 3000, 5000, 8000 ms); the failed histogram counts the failed requests
// that the other one also counts. profilerMetric messages are not translated.
package stat
