package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/rpc/jsonrpc"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/weftobs/weft/tests/harness"
)

// falconConfig receives Open-Falcon pushes on OF_*_PORT, tags them with
// smart_encoding (k8s_metadata reading a PostgreSQL database, no cluster to
// watch) and writes them to a file.
const falconConfig = `extensions:
  health_check:
    endpoint: ${env:WEFT_HEALTH_ENDPOINT}
  k8s_metadata:
    cluster_name: e2e
    vpc_id: 7
    watch: false
    database:
      dsn: ${env:OF_DSN}
    leader_election:
      enabled: false
    refresh_interval: 200ms
receivers:
  open_falcon:
    transfer_rpc:
      endpoint: 127.0.0.1:${env:OF_RPC_PORT}
    transfer_http:
      endpoint: 127.0.0.1:${env:OF_TRANSFER_HTTP_PORT}
    agent_http:
      endpoint: 127.0.0.1:${env:OF_AGENT_HTTP_PORT}
processors:
  smart_encoding:
    vpc_id: 7
exporters:
  file:
    path: ${env:WEFT_DATA_DIR}/metrics.jsonl
service:
  extensions: [health_check, k8s_metadata]
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: ${env:WEFT_TELEMETRY_HOST}
                port: ${env:WEFT_TELEMETRY_PORT}
  pipelines:
    metrics:
      receivers: [open_falcon]
      processors: [smart_encoding]
      exporters: [file]
`

// falconItem is falcon-agent's model.MetricValue, as its RPC client sends it.
type falconItem struct {
	Endpoint  string `json:"endpoint"`
	Metric    string `json:"metric"`
	Value     any    `json:"value"`
	Step      int64  `json:"step"`
	Type      string `json:"counterType"`
	Tags      string `json:"tags"`
	Timestamp int64  `json:"timestamp"`
}

// falconReply is falcon-agent's model.TransferResponse (no JSON tags).
type falconReply struct {
	Message string
	Total   int
	Invalid int
	Latency int64
}

// falconPoint is a data point read back, with its metric and resource.
type falconPoint struct {
	resource pcommon.Map
	metric   pmetric.Metric
	point    pmetric.NumberDataPoint
}

// readFalconPoints reads every number data point of a metrics file, keyed
// by host.name and metric name, in the order written.
func readFalconPoints(t *testing.T, path string) map[string][]falconPoint {
	out := map[string][]falconPoint{}
	for _, r := range readAllMetrics(t, path) {
		m := r.metric
		var dps pmetric.NumberDataPointSlice
		switch m.Type() {
		case pmetric.MetricTypeGauge:
			dps = m.Gauge().DataPoints()
		case pmetric.MetricTypeSum:
			dps = m.Sum().DataPoints()
		default:
			t.Fatalf("%s: unexpected metric type %s", m.Name(), m.Type())
		}
		host, _ := r.resource.Attributes().Get("host.name")
		key := host.Str() + " " + m.Name()
		for p := 0; p < dps.Len(); p++ {
			out[key] = append(out[key], falconPoint{r.resource.Attributes(), m, dps.At(p)})
		}
	}
	return out
}

// attrKeys lists a map's keys in stored order.
func attrKeys(m pcommon.Map) []string {
	var keys []string
	for k := range m.All() {
		keys = append(keys, k)
	}
	return keys
}

// promSample reads name{...} from Prometheus text where the labels include
// every one of want ("k=\"v\""); 0 when there is none yet.
func promSample(t *testing.T, text, name string, want ...string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, name+"_total{")
		if !ok {
			if rest, ok = strings.CutPrefix(line, name+"{"); !ok {
				continue
			}
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		all := true
		for _, w := range want {
			all = all && strings.Contains(","+labels+",", ","+w+",")
		}
		if all {
			f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
			require.NoError(t, err, line)
			return f
		}
	}
	return 0
}

// TestOpenFalcon runs weftcol with the open_falcon receiver and smart_encoding
// (k8s_metadata on a real PostgreSQL) and pushes the three ways Open-Falcon
// users push: falcon-agent's JSON-RPC client, transfer's /api/push and the
// agent's /v1/push. The replies are Open-Falcon's; what the file exporter
// writes has the right names, types, values, start times and attributes;
// the IP endpoints, unknown to the database, pass unharmed with weft.vpc_id,
// after being looked up by host.ip.
func TestOpenFalcon(t *testing.T) {
	db := harness.Postgres(t)
	rpcPort, transferPort, agentPort := harness.FreePort(t), harness.FreePort(t), harness.FreePort(t)
	col := harness.StartCollector(t, falconConfig,
		"OF_DSN="+db.DSN,
		"OF_RPC_PORT="+strconv.Itoa(rpcPort),
		"OF_TRANSFER_HTTP_PORT="+strconv.Itoa(transferPort),
		"OF_AGENT_HTTP_PORT="+strconv.Itoa(agentPort))
	// Unknown IPs are only meaningful once the database has answered.
	harness.WaitFor(t, 60*time.Second, "k8s_metadata lookups ready", func() error {
		if !strings.Contains(col.Log(), "Lookups ready") {
			return fmt.Errorf("not yet")
		}
		return nil
	})

	// falcon-agent: net/rpc with the JSON codec, two steps on one
	// connection.
	ts := time.Now().Unix() - 120
	agent, err := jsonrpc.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", rpcPort))
	require.NoError(t, err)
	defer agent.Close()
	for step := range int64(2) {
		items := []*falconItem{
			{Endpoint: "10.20.0.5", Metric: "cpu.idle", Value: 97.5 - float64(step), Step: 60, Type: "GAUGE", Timestamp: ts + 60*step},
			{Endpoint: "10.20.0.5", Metric: "net.if.in.bytes", Value: 1000 + 600*step, Step: 60, Type: "COUNTER", Tags: "iface=eth0", Timestamp: ts + 60*step},
			{Endpoint: "10.20.0.5", Metric: "disk.io.msec_read", Value: strconv.Itoa(int(50 - 10*step)), Step: 60, Type: "DERIVE", Tags: "device=sda", Timestamp: ts + 60*step},
			nil,
			{Endpoint: "10.20.0.5", Metric: "kernel.hostname", Value: "h", Step: 60, Type: "GAUGE", Timestamp: ts},
		}
		var reply falconReply
		require.NoError(t, agent.Call("Transfer.Update", items, &reply))
		assert.Equal(t, falconReply{Message: "ok", Total: 5, Invalid: 2, Latency: reply.Latency}, reply)
	}
	var pong struct {
		Code int `json:"code"`
	}
	require.NoError(t, agent.Call("Transfer.Ping", struct{}{}, &pong))

	// A push script against transfer's HTTP API.
	body := fmt.Sprintf(`[{"endpoint":"web-01","metric":"df.bytes.free.percent","value":42.5,"step":10,"counterType":"GAUGE","tags":"mount=/,fstype=ext4","timestamp":%d},`+
		`{"endpoint":"web-01","metric":"df.bytes.free.percent","value":"x","step":60,"counterType":"GAUGE","tags":"mount=/"}]`, ts)
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/api/push", transferPort), "application/json", strings.NewReader(body))
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Regexp(t, regexp.MustCompile(`^\{"msg":"success","data":\{"Message":"ok","Total":2,"Invalid":1,"Latency":\d+\}\}$`), string(b))

	// A script pushing through the local agent.
	body = fmt.Sprintf(`[{"endpoint":"10.20.0.6","metric":"app.requests","value":12345,"step":60,"counterType":"COUNTER","tags":"service=cart,env=prod","timestamp":%d}]`, ts)
	resp, err = http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/push", agentPort), "application/json", strings.NewReader(body))
	require.NoError(t, err)
	b, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "success", string(b))

	var points map[string][]falconPoint
	harness.WaitFor(t, 30*time.Second, "every pushed point in metrics.jsonl", func() error {
		points = readFalconPoints(t, filepath.Join(col.DataDir, "metrics.jsonl"))
		n := 0
		for _, ps := range points {
			n += len(ps)
		}
		if n < 8 {
			return fmt.Errorf("%d points of 8", n)
		}
		return nil
	})
	require.Len(t, points, 5, "%v", points)
	tsAt := func(s int64) pcommon.Timestamp { return pcommon.Timestamp(s * 1e9) }

	// The IP endpoint: host.name and host.ip, and from smart_encoding only
	// the VPC — the database knows no such host, so nothing else is added
	// and nothing is stripped.
	cpu := points["10.20.0.5 cpu.idle"]
	require.Len(t, cpu, 2)
	assert.Equal(t, map[string]any{"host.name": "10.20.0.5", "host.ip": []any{"10.20.0.5"}, "weft.vpc_id": int64(7)}, cpu[0].resource.AsRaw())
	assert.Equal(t, pmetric.MetricTypeGauge, cpu[0].metric.Type())
	assert.Equal(t, []float64{97.5, 96.5}, []float64{cpu[0].point.DoubleValue(), cpu[1].point.DoubleValue()})
	assert.Equal(t, tsAt(ts), cpu[0].point.Timestamp())
	assert.Equal(t, tsAt(ts+60), cpu[1].point.Timestamp())
	assert.Equal(t, map[string]any{"falcon.step": int64(60)}, cpu[0].point.Attributes().AsRaw())

	// COUNTER: a monotonic cumulative sum whose start stays the first point's.
	in := points["10.20.0.5 net.if.in.bytes"]
	require.Len(t, in, 2)
	assert.Equal(t, pmetric.MetricTypeSum, in[0].metric.Type())
	assert.True(t, in[0].metric.Sum().IsMonotonic())
	assert.Equal(t, pmetric.AggregationTemporalityCumulative, in[0].metric.Sum().AggregationTemporality())
	assert.Equal(t, []float64{1000, 1600}, []float64{in[0].point.DoubleValue(), in[1].point.DoubleValue()})
	assert.Equal(t, tsAt(ts), in[0].point.StartTimestamp())
	assert.Equal(t, tsAt(ts), in[1].point.StartTimestamp())
	assert.Equal(t, map[string]any{"iface": "eth0", "falcon.step": int64(60)}, in[1].point.Attributes().AsRaw())

	// DERIVE: non-monotonic; going down is not a reset.
	disk := points["10.20.0.5 disk.io.msec_read"]
	require.Len(t, disk, 2)
	assert.False(t, disk[0].metric.Sum().IsMonotonic())
	assert.Equal(t, []float64{50, 40}, []float64{disk[0].point.DoubleValue(), disk[1].point.DoubleValue()})
	assert.Equal(t, tsAt(ts), disk[1].point.StartTimestamp())

	// A host name endpoint: no host.ip; tags in canonical order; step 10
	// raised to graph's 30.
	df := points["web-01 df.bytes.free.percent"]
	require.Len(t, df, 1)
	assert.Equal(t, map[string]any{"host.name": "web-01", "weft.vpc_id": int64(7)}, df[0].resource.AsRaw())
	assert.Equal(t, []string{"fstype", "mount", "falcon.step"}, attrKeys(df[0].point.Attributes()))
	assert.Equal(t, map[string]any{"fstype": "ext4", "mount": "/", "falcon.step": int64(30)}, df[0].point.Attributes().AsRaw())
	assert.Equal(t, 42.5, df[0].point.DoubleValue())

	app := points["10.20.0.6 app.requests"]
	require.Len(t, app, 1)
	assert.Equal(t, map[string]any{"host.name": "10.20.0.6", "host.ip": []any{"10.20.0.6"}, "weft.vpc_id": int64(7)}, app[0].resource.AsRaw())
	assert.Equal(t, []string{"env", "service", "falcon.step"}, attrKeys(app[0].point.Attributes()))
	assert.Equal(t, 12345.0, app[0].point.DoubleValue())
	assert.True(t, app[0].metric.Sum().IsMonotonic())

	// The receiver's and the extension's own metrics: the invalid items by
	// reason, and one lookup (a miss) per IP resource — host.ip is what
	// smart_encoding looked the hosts up by; web-01 has none.
	telemetry := fmt.Sprintf("http://127.0.0.1:%d/metrics", col.TelemetryPort)
	harness.WaitFor(t, 30*time.Second, "the receiver's and k8s_metadata's metrics", func() error {
		text := scrape(t, telemetry)
		got := map[string]float64{
			"rpc null":            promSample(t, text, "otelcol_receiver_open_falcon_invalid_items", `listener="transfer_rpc"`, `reason="null"`),
			"rpc kernel_hostname": promSample(t, text, "otelcol_receiver_open_falcon_invalid_items", `listener="transfer_rpc"`, `reason="kernel_hostname"`),
			"http value":          promSample(t, text, "otelcol_receiver_open_falcon_invalid_items", `listener="transfer_http"`, `reason="value"`),
			"lookup misses":       promSample(t, text, "otelcol_k8s_metadata_lookups", `result="miss"`),
			"lookup hits":         promSample(t, text, "otelcol_k8s_metadata_lookups", `result="hit"`),
			"accepted rpc points": promSample(t, text, "otelcol_receiver_accepted_metric_points", `receiver="open_falcon"`, `transport="tcp"`),
		}
		want := map[string]float64{
			"rpc null": 2, "rpc kernel_hostname": 2, "http value": 1,
			"lookup misses": 3, "lookup hits": 0, "accepted rpc points": 6,
		}
		if !assert.ObjectsAreEqual(want, got) {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	})
}

// TestOpenFalconIntoClickHouse: the default pipeline (distro/config.yaml)
// from a falcon push through smart_encoding into the smart_clickhouse metrics
// table of a ClickHouse of the test's own.
func TestOpenFalconIntoClickHouse(t *testing.T) {
	ch := harness.StartClickHouse(t)
	col := harness.StartCollector(t, harness.DistroConfig(t),
		"WEFT_CLICKHOUSE_ENDPOINT="+ch.Endpoint(), "WEFT_CLICKHOUSE_DATABASE=falcon", "WEFT_VPC_ID=5")
	now := time.Now().Unix()
	body := fmt.Sprintf(`[{"endpoint":"10.9.8.7","metric":"e2e.cpu.idle","timestamp":%d,"step":60,"value":93.5,"counterType":"GAUGE","tags":"core=3,dc=eu"},
{"endpoint":"db-01","metric":"e2e.net.in","timestamp":%d,"step":60,"value":"1200","counterType":"COUNTER","tags":""},
{"endpoint":"","metric":"invalid","timestamp":%d,"step":60,"value":1,"counterType":"GAUGE"}]`, now, now, now)
	resp, err := http.Post("http://"+col.FalconHTTP+"/api/push", "application/json", strings.NewReader(body))
	require.NoError(t, err)
	reply, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", reply)

	var rows string
	harness.WaitFor(t, 60*time.Second, "falcon points in ClickHouse", func() error {
		out, err := ch.Query("SELECT name, type, value, ip4, vpc_id, arrayStringConcat(attr_names, ','), arrayStringConcat(attr_values, ','), " +
			"has(resource_names, 'host.name') FROM falcon.metrics WHERE name LIKE 'e2e.%' ORDER BY name FORMAT TSV")
		if err != nil {
			return err
		}
		if strings.Count(out, "\n") < 2 {
			return fmt.Errorf("rows so far: %q", out)
		}
		rows = out
		return nil
	})
	lines := strings.Split(strings.TrimSpace(rows), "\n")
	require.Len(t, lines, 2, "the invalid item is not stored")
	cpu := strings.Split(lines[0], "\t")
	assert.Equal(t, "e2e.cpu.idle", cpu[0])
	assert.Equal(t, "93.5", cpu[2])
	assert.Equal(t, strconv.FormatUint(uint64(10)<<24|9<<16|8<<8|7, 10), cpu[3], "the endpoint's IP as a number")
	assert.Equal(t, "5", cpu[4], "smart_encoding's VPC")
	assert.Equal(t, "core,dc,falcon.step", cpu[5])
	assert.Equal(t, "3,eu,60", cpu[6])
	net := strings.Split(lines[1], "\t")
	assert.Equal(t, "e2e.net.in", net[0])
	assert.Equal(t, "1200", net[2])
	assert.Equal(t, "0", net[3], "a host name is no IP")
	assert.Equal(t, "1", net[7], "host.name kept: no id determines it")
}
