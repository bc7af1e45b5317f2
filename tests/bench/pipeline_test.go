package bench

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	// The otlp exporter compresses with gzip by default: the sink must
	// take it.
	_ "google.golang.org/grpc/encoding/gzip"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftobs/weft/tests/harness"
	"github.com/weftobs/weft/tests/workload"
)

// The pipeline scenario of `make bench` (issue #8): an OTLP gRPC load
// generator sends the production-shaped workload (tests/workload: 2000 pods,
// spans with their k8s resource attributes, batched per node as agent
// collectors forward them) at fixed rates and at saturation to weftcol
// running
//
//	weft         the default pipeline of distro/config.yaml (memory_limiter,
//	             smart_encoding with k8s_metadata watching a real
//	             kube-apiserver into PostgreSQL, trace_completion with its
//	             default 10 s wait, batch, smart_clickhouse into a real
//	             ClickHouse 18.16 with its persistent queue), without the
//	             file and debug exporters that `make run` adds for people to
//	             look at
//	passthrough  otlp -> batch -> otlp_grpc (gzip, its default), to a sink in this process: the
//	             baseline of the same binary, as the contrib testbed runs it
//
// and reports the collector's CPU (from /proc, per 10k spans/s), its peak
// RSS, the spans that did not arrive, and the end-to-end latency of marker
// spans sent every 250 ms (seen in ClickHouse, polled every 100 ms, or at the
// sink).
var (
	pipelineRates    = flag.String("pipeline.rates", "10k,50k,100k,max", "spans/s of BenchmarkScenarioPipeline; max: as fast as accepted")
	pipelineDuration = flag.Duration("pipeline.duration", 20*time.Second, "how long each rate is sent")
)

func BenchmarkScenarioPipeline(b *testing.B) {
	env := startPipelineEnv(b, workload.Production)
	for _, pipeline := range []string{"weft", "passthrough"} {
		b.Run(pipeline, func(b *testing.B) {
			for _, rate := range strings.Split(*pipelineRates, ",") {
				b.Run(rate, func(b *testing.B) {
					perSecond := parseRate(b, rate)
					for i := 0; i < b.N; i++ {
						r := runPipeline(b, env, pipeline, perSecond, *pipelineDuration)
						b.ReportMetric(r.spansPerSecond, "spans/s")
						b.ReportMetric(r.cpuPercent, "cpu-%")
						b.ReportMetric(r.cpuPercent/(r.spansPerSecond/10_000), "cpu-%/10k-spans/s")
						b.ReportMetric(float64(r.peakRSS)/(1<<20), "peak-RSS-MB")
						b.ReportMetric(float64(r.dropped), "dropped-spans")
						b.ReportMetric(r.p50, "p50-latency-ms")
						b.ReportMetric(r.p99, "p99-latency-ms")
						b.Logf("%s at %s: %d spans sent, %d refused (first: %v), %d stored, %d dropped, %d with a pod id, %d markers seen",
							pipeline, rate, r.sent, r.refused, r.refusal, r.stored, r.dropped, r.withPod, len(r.latencies))
					}
				})
			}
		})
	}
}

// TestScenarioPipelineSmoke runs both pipelines briefly at a low rate on a
// small cluster and checks what the benchmark relies on: every span sent
// arrives, smart_encoding found the pods, markers are seen.
func TestScenarioPipelineSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver, PostgreSQL, ClickHouse and weftcol")
	}
	env := startPipelineEnv(t, workload.Small)
	for _, pipeline := range []string{"weft", "passthrough"} {
		t.Run(pipeline, func(t *testing.T) {
			r := runPipeline(t, env, pipeline, 2000, 3*time.Second)
			require.Positive(t, r.sent)
			require.Zero(t, r.dropped, "spans sent but not delivered")
			require.NotEmpty(t, r.latencies, "no marker span arrived")
			if pipeline == "weft" {
				require.Equal(t, r.sent, r.withPod, "every span of a known pod has its pod id")
			}
		})
	}
}

func parseRate(tb testing.TB, s string) float64 {
	if s == "max" {
		return 0
	}
	n, err := strconv.ParseFloat(strings.TrimSuffix(s, "k"), 64)
	require.NoError(tb, err, "rate %q: a number of spans/s, with k for thousands, or max", s)
	if strings.HasSuffix(s, "k") {
		n *= 1000
	}
	return n
}

// pipelineEnv is what both pipelines share: the cluster in a real
// kube-apiserver, the metadata database, ClickHouse, and the load.
type pipelineEnv struct {
	cluster    *workload.Cluster
	kubeconfig string
	dsn        string
	ch         *harness.ClickHouse
	batches    []*batch
	runs       int
}

func startPipelineEnv(tb testing.TB, shape workload.Shape) *pipelineEnv {
	kube := harness.StartKube(tb)
	restCfg, err := clientcmd.BuildConfigFromFlags("", kube.KubeconfigPath)
	require.NoError(tb, err)
	restCfg.QPS, restCfg.Burst = 2000, 2000
	client, err := kubernetes.NewForConfig(restCfg)
	require.NoError(tb, err)
	c := workload.NewCluster(shape, 1)
	require.NoError(tb, c.Apply(context.Background(), client))
	spans := 200_000
	if shape.Pods < 100 {
		spans = 10_000
	}
	return &pipelineEnv{
		cluster:    c,
		kubeconfig: kube.KubeconfigPath,
		dsn:        harness.Postgres(tb).DSN,
		ch:         harness.StartClickHouse(tb),
		batches:    pool(c, spans, 1000),
	}
}

type pipelineResult struct {
	// sent were acknowledged, refused answered with an error (refusal is
	// the first); stored counts what arrived.
	sent, refused, stored int64
	refusal               error
	dropped, withPod      int64
	spansPerSecond        float64
	cpuPercent            float64
	peakRSS               int64
	p50, p99              float64
	latencies             []float64
}

func runPipeline(tb testing.TB, env *pipelineEnv, pipeline string, rate float64, d time.Duration) pipelineResult {
	env.runs++
	var (
		col      *harness.Collector
		seen     = map[uint64]time.Time{}
		seenMu   sync.Mutex
		received func() int64
		withPod  func() int64
	)
	switch pipeline {
	case "weft":
		database := fmt.Sprintf("bench_%d", env.runs)
		config := strings.Replace(harness.DistroConfig(tb), "exporters: [smart_clickhouse, file/traces, debug]", "exporters: [smart_clickhouse]", 1)
		require.Contains(tb, config, "exporters: [smart_clickhouse]\n", "distro/config.yaml's traces pipeline changed: update the scenario")
		col = harness.StartCollector(tb, config,
			"WEFT_CLICKHOUSE_ENDPOINT="+env.ch.Endpoint(), "WEFT_CLICKHOUSE_DATABASE="+database,
			"WEFT_K8S_WATCH=true", "WEFT_KUBECONFIG="+env.kubeconfig, "WEFT_METADATA_DSN="+env.dsn,
			"WEFT_VPC_ID=1", "WEFT_CLUSTER_NAME="+env.cluster.Name,
			// The default pipeline's wait, not the tests' shorter one.
			"WEFT_TRACE_COMPLETION_WAIT=10s")
		waitForPods(tb, col, len(env.cluster.Pods))
		count := func(where string) int64 {
			out, err := env.ch.Query(fmt.Sprintf("SELECT count() FROM %s.spans WHERE %s", database, where))
			if err != nil {
				return 0 // the table appears with the first batch
			}
			n, _ := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
			return n
		}
		received = func() int64 { return count("service_name != '" + markerService + "'") }
		withPod = func() int64 { return count("service_name != '" + markerService + "' AND pod_id_0 != 0") }
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				out, err := env.ch.Query(fmt.Sprintf("SELECT trace_id FROM %s.spans WHERE service_name = '%s'", database, markerService))
				if err != nil {
					continue
				}
				now := time.Now()
				seenMu.Lock()
				for _, line := range strings.Fields(out) {
					var tid [16]byte
					if b, err := hex.DecodeString(line); err == nil && len(b) == 16 {
						copy(tid[:], b)
						if seq, ok := markerSeq(tid); ok {
							if _, dup := seen[seq]; !dup {
								seen[seq] = now
							}
						}
					}
				}
				seenMu.Unlock()
			}
		}()
	case "passthrough":
		sink := startSink(tb, func(seq uint64) {
			seenMu.Lock()
			if _, dup := seen[seq]; !dup {
				seen[seq] = time.Now()
			}
			seenMu.Unlock()
		})
		col = harness.StartCollector(tb, fmt.Sprintf(`extensions:
  health_check:
    endpoint: ${env:WEFT_HEALTH_ENDPOINT}
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:WEFT_OTLP_GRPC_ENDPOINT}
processors:
  batch:
    send_batch_size: 8192
    timeout: 200ms
exporters:
  otlp_grpc:
    endpoint: %s
    tls:
      insecure: true
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [otlp_grpc]
  telemetry:
    metrics:
      level: none
`, sink.addr))
		received = func() int64 { return sink.spans.Load() }
	}

	pid := col.Pid()
	cpu0, err := procCPU(pid)
	require.NoError(tb, err)
	l, err := generate(context.Background(), col.OTLPGRPC, env.batches, rate, d)
	require.NoError(tb, err)
	cpu1, err := procCPU(pid)
	require.NoError(tb, err)
	window := l.stopped.Sub(l.start)

	// Drain: everything sent arrives, or nothing more arrives for a while
	// after trace_completion's wait.
	var last int64
	lastChange := time.Now()
	for received() < l.sent && time.Since(lastChange) < 20*time.Second {
		time.Sleep(250 * time.Millisecond)
		if n := received(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	rss, err := peakRSS(pid)
	require.NoError(tb, err)
	seenMu.Lock()
	lat := latencies(l.markerSent, seen)
	seenMu.Unlock()
	stored := received()
	r := pipelineResult{
		sent:           l.sent,
		refused:        l.refused,
		refusal:        l.refusal,
		stored:         stored,
		dropped:        l.sent - stored + l.refused,
		spansPerSecond: float64(l.sent) / window.Seconds(),
		cpuPercent:     100 * (cpu1 - cpu0).Seconds() / window.Seconds(),
		peakRSS:        rss,
		p50:            percentile(lat, 0.50),
		p99:            percentile(lat, 0.99),
		latencies:      lat,
	}
	if r.dropped < 0 {
		r.dropped = 0 // the collector may deliver a retried batch twice
	}
	if withPod != nil {
		r.withPod = withPod()
	}
	require.NoError(tb, col.Stop(30*time.Second))
	return r
}

var objectsLine = regexp.MustCompile(`(?m)^otelcol_k8s_metadata_objects\{[^}]*kind="pod"[^}]*\} (\d+)`)

// waitForPods waits until k8s_metadata's lookup snapshot holds the
// cluster's pods (its otelcol_k8s_metadata_objects gauge).
func waitForPods(tb testing.TB, col *harness.Collector, pods int) {
	harness.WaitFor(tb, 120*time.Second, "k8s_metadata to hold the cluster's pods", func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", col.TelemetryPort))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		m := objectsLine.FindSubmatch(body)
		if m == nil {
			return fmt.Errorf("no otelcol_k8s_metadata_objects{kind=\"pod\"} yet")
		}
		if n, _ := strconv.Atoi(string(m[1])); n < pods {
			return fmt.Errorf("%d of %d pods", n, pods)
		}
		return nil
	})
}

// sink is an OTLP gRPC server that counts spans and reports markers.
type sink struct {
	ptraceotlp.UnimplementedGRPCServer
	addr   string
	spans  atomic.Int64
	marker func(seq uint64)
}

func startSink(tb testing.TB, marker func(seq uint64)) *sink {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	s := &sink{addr: lis.Addr().String(), marker: marker}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(256 << 20))
	ptraceotlp.RegisterGRPCServer(srv, s)
	go func() { _ = srv.Serve(lis) }()
	tb.Cleanup(srv.Stop)
	return s
}

func (s *sink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	td := req.Traces()
	for _, rs := range td.ResourceSpans().All() {
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok && v.Str() == markerService {
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					if seq, ok := markerSeq(sp.TraceID()); ok {
						s.marker(seq)
					}
				}
			}
			continue
		}
		for _, ss := range rs.ScopeSpans().All() {
			s.spans.Add(int64(ss.Spans().Len()))
		}
	}
	return ptraceotlp.NewExportResponse(), nil
}
