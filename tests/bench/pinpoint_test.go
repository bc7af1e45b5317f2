package bench

import (
	"flag"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/weftobs/weft/tests/harness"
)

// Scenario 5 of `make bench` (issue #8): recorded Node-agent traffic
// (receiver/pinpointreceiver/testdata/node-agent.rec) replayed at high rate
// into the pinpoint receiver of a weftcol process; span events per second
// and per second of the collector's CPU.
//
//	go test -run '^$' -bench ScenarioPinpoint -benchtime 1x ./tests/bench/
//
// One benchmark iteration is the whole scenario: use -benchtime 1x.
var (
	pinpointDuration = flag.Duration("pinpoint.duration", 15*time.Second, "how long BenchmarkScenarioPinpoint replays")
	pinpointWorkers  = flag.Int("pinpoint.workers", 4, "BenchmarkScenarioPinpoint: replaying connections, each with one SendSpan stream per recorded agent")
	pinpointRate     = flag.Float64("pinpoint.rate", 0, "BenchmarkScenarioPinpoint: span events/s over all workers; 0: as fast as the collector takes them")
)

// pinpointConfig is pinpoint -> batch -> otlp_grpc to the counting sink. The
// exporter sends uncompressed (gzip would be most of the collector's CPU
// and say nothing about the receiver) and the collector's own telemetry is
// quiet.
const pinpointConfig = `extensions:
  health_check:
    endpoint: ${env:WEFT_HEALTH_ENDPOINT}

receivers:
  pinpoint:
    agent:
      endpoint: ${env:WEFT_PINPOINT_AGENT_ENDPOINT}
    stat:
      endpoint: ${env:WEFT_PINPOINT_STAT_ENDPOINT}
    span:
      endpoint: ${env:WEFT_PINPOINT_SPAN_ENDPOINT}

processors:
  batch:
    send_batch_size: 8192
    timeout: 200ms

exporters:
  otlp_grpc:
    endpoint: ${env:PINPOINT_SINK}
    compression: none
    tls:
      insecure: true

service:
  extensions: [health_check]
  telemetry:
    logs:
      level: warn
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [pinpoint]
      processors: [batch]
      exporters: [otlp_grpc]
`

// pinpointResult is one run of the scenario.
type pinpointResult struct {
	load      *pinpointLoad
	delivered int64         // OTel spans the sink got
	expected  int64         // OTel spans the accepted messages make
	cpu       time.Duration // the collector's CPU from the first message until drained
	drained   time.Duration // from the first message until the last span reached the sink
	peakRSS   int64
	loadCPU   time.Duration // this process's CPU (load generator and sink) over the same time
}

type pinpointEnv struct {
	col  *harness.Collector
	sink *pinpointSink
	rec  *pinpointRecording
}

func pinpointStart(tb testing.TB) *pinpointEnv {
	tb.Helper()
	rec := pinpointLoadRecording(tb)
	sink := pinpointStartSink(tb)
	col := harness.StartCollector(tb, pinpointConfig, "PINPOINT_SINK="+sink.addr)
	pinpointSendMetadata(tb, rec, col.Pinpoint.AgentPort)
	return &pinpointEnv{col: col, sink: sink, rec: rec}
}

// run replays for d and waits for the pipeline to drain.
func (e *pinpointEnv) run(tb testing.TB, workers int, rate float64, d time.Duration) pinpointResult {
	tb.Helper()
	pid := e.col.Pid()
	before := e.sink.spans.Load()
	cpu0, err := procCPU(pid)
	if err != nil {
		tb.Fatal(err)
	}
	self0, err := procCPU(os.Getpid())
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Now()
	load := pinpointReplay(tb, e.rec, e.col.Pinpoint.SpanPort, workers, rate, d)
	// Every Pinpoint span and every span event becomes one OTel span.
	expected := load.acceptedSpans + load.acceptedEvents
	last := pinpointWaitDrained(e.sink, before+expected, 3*time.Second, time.Minute)
	cpu1, err := procCPU(pid)
	if err != nil {
		tb.Fatal(err)
	}
	self1, err := procCPU(os.Getpid())
	if err != nil {
		tb.Fatal(err)
	}
	rss, err := peakRSS(pid)
	if err != nil {
		tb.Fatal(err)
	}
	if load.firstErr != nil {
		tb.Logf("%d of %d rounds had a failed stream; first: %v", load.failedStreams, load.rounds, load.firstErr)
	}
	return pinpointResult{
		load:      load,
		delivered: e.sink.spans.Load() - before,
		expected:  expected,
		cpu:       cpu1 - cpu0,
		drained:   last.Sub(start),
		peakRSS:   rss,
		loadCPU:   self1 - self0,
	}
}

func BenchmarkScenarioPinpoint(b *testing.B) {
	env := pinpointStart(b)
	b.ResetTimer()
	var total pinpointResult
	total.load = &pinpointLoad{}
	for range b.N {
		r := env.run(b, *pinpointWorkers, *pinpointRate, *pinpointDuration)
		total.load.acceptedEvents += r.load.acceptedEvents
		total.load.sentEvents += r.load.sentEvents
		total.load.rounds += r.load.rounds
		total.load.failedStreams += r.load.failedStreams
		total.load.wall += r.load.wall
		total.delivered += r.delivered
		total.expected += r.expected
		total.cpu += r.cpu
		total.drained += r.drained
		total.peakRSS = max(total.peakRSS, r.peakRSS)
		total.loadCPU += r.loadCPU
	}
	b.StopTimer()
	l := total.load
	b.ReportMetric(float64(l.acceptedEvents)/l.wall.Seconds(), "span-events/s")
	b.ReportMetric(float64(l.acceptedEvents)/total.cpu.Seconds(), "span-events/cpu-s")
	b.ReportMetric(float64(total.delivered)/total.drained.Seconds(), "spans-out/s")
	b.ReportMetric(float64(total.expected-total.delivered), "dropped")
	b.ReportMetric(total.cpu.Seconds()/total.drained.Seconds(), "collector-cores")
	b.ReportMetric(float64(total.peakRSS)/(1<<20), "peak-rss-MB")
	// The load generator and the sink share the machine with the
	// collector: when collector-cores plus loadgen-cores is the machine's
	// core count, span-events/s is bounded by the machine, not by Weft, and
	// span-events/cpu-s is the figure to compare.
	b.ReportMetric(total.loadCPU.Seconds()/total.drained.Seconds(), "loadgen-cores")
	b.Logf("%d workers x %d agent streams, %d rounds of the recording (%d events, %d spans each), %d failed; "+
		"accepted %d of %d span events sent in %s; %d OTel spans out of %d expected by %s; CPU: collector %s, load generator and sink %s",
		*pinpointWorkers, len(env.rec.agents), l.rounds, env.rec.events, env.rec.spans, l.failedStreams,
		l.acceptedEvents, l.sentEvents, l.wall.Round(time.Millisecond), total.delivered, total.expected,
		total.drained.Round(time.Millisecond), total.cpu, total.loadCPU)
}

// TestScenarioPinpointSmoke replays the recording slowly for a few seconds
// and checks that every span event (and every span) came out as an OTel
// span: nothing is lost or merged on the way.
func TestScenarioPinpointSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("runs weftcol for a few seconds")
	}
	env := pinpointStart(t)
	const rate = 1500 // span events/s: less than one core's worth
	r := env.run(t, 2, rate, 3*time.Second)
	l := r.load
	t.Logf("%d rounds, %d span events sent, %d accepted, %d OTel spans out of %d expected, collector CPU %s",
		l.rounds, l.sentEvents, l.acceptedEvents, r.delivered, r.expected, r.cpu)
	if l.firstErr != nil {
		t.Errorf("%d rounds had a failed stream; first: %v", l.failedStreams, l.firstErr)
	}
	if l.acceptedEvents < int64(env.rec.events) {
		t.Errorf("accepted %d span events, not even one replay of the recording (%d)", l.acceptedEvents, env.rec.events)
	}
	if l.acceptedEvents != l.sentEvents {
		t.Errorf("sent %d span events, %d accepted", l.sentEvents, l.acceptedEvents)
	}
	if r.delivered != r.expected {
		t.Errorf("%d OTel spans out, want %d (one per accepted Pinpoint span and span event)", r.delivered, r.expected)
	}
	if got, want := float64(l.sentEvents)/l.wall.Seconds(), float64(rate); got > want*1.2 {
		t.Errorf("sent %.0f span events/s, the pacing allows %s", got, strconv.Itoa(rate))
	}
}
