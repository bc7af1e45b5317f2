package e2e

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/weftobs/weft/tests/harness"
)

// pinpointConfig receives from Pinpoint agents on PP_*_PORT, keeps their
// metadata in file_storage at PP_STORAGE_DIR (when storage is on), and writes
// traces and metrics to files.
func pinpointConfig(storage bool) string {
	storageExt, storageKey := "", ""
	if storage {
		storageExt = "  file_storage:\n    directory: ${env:PP_STORAGE_DIR}\n"
		storageKey = "    storage: file_storage\n"
	}
	exts := "[health_check]"
	if storage {
		exts = "[health_check, file_storage]"
	}
	return `extensions:
  health_check:
    endpoint: ${env:WEFT_HEALTH_ENDPOINT}
` + storageExt + `
receivers:
  pinpoint:
    agent:
      endpoint: 127.0.0.1:${env:PP_AGENT_PORT}
    stat:
      endpoint: 127.0.0.1:${env:PP_STAT_PORT}
    span:
      endpoint: 127.0.0.1:${env:PP_SPAN_PORT}
    metadata_wait: 3s
` + storageKey + `
exporters:
  file/traces:
    path: ${env:WEFT_DATA_DIR}/traces.jsonl
  file/metrics:
    path: ${env:WEFT_DATA_DIR}/metrics.jsonl

service:
  extensions: ` + exts + `
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [pinpoint]
      exporters: [file/traces]
    metrics:
      receivers: [pinpoint]
      exporters: [file/metrics]
`
}

type pinpointSetup struct {
	collector harness.PinpointCollector
	env       []string
}

func newPinpointSetup(t *testing.T) pinpointSetup {
	c := harness.PinpointCollector{AgentPort: harness.FreePort(t), StatPort: harness.FreePort(t), SpanPort: harness.FreePort(t)}
	return pinpointSetup{collector: c, env: []string{
		"PP_AGENT_PORT=" + strconv.Itoa(c.AgentPort),
		"PP_STAT_PORT=" + strconv.Itoa(c.StatPort),
		"PP_SPAN_PORT=" + strconv.Itoa(c.SpanPort),
		"PP_STORAGE_DIR=" + t.TempDir(),
	}}
}

// TestPinpointNodeAgents: two real Node services instrumented by the real
// Pinpoint agent, front calling back over HTTP, send to weftcol running the
// default pipeline (distro/config.yaml); every
// request comes out as one OTel trace holding both services, linked through
// the outbound HTTP client span, with names from the agents' metadata;
// DeepFlow eBPF rows that parsed the calls' Pinpoint-TraceID join those
// traces; and the agents' stats come out as metrics.
func TestPinpointNodeAgents(t *testing.T) {
	col := harness.StartCollector(t, harness.DistroConfig(t))
	back := harness.StartNodeService(t, harness.NodeService{Name: "back", Collector: col.Pinpoint})
	front := harness.StartNodeService(t, harness.NodeService{Name: "front", Collector: col.Pinpoint,
		Env: []string{"BACKEND_URL=" + back.URL + "/hello"}})

	const requests = 5
	for range requests {
		assert.Equal(t, "front -> hello from back", strings.TrimSpace(front.Get(t, "/call")))
	}

	var traces map[pcommon.TraceID][]spanRec
	harness.WaitFor(t, 30*time.Second, "one trace per request with both services", func() error {
		traces = byTrace(readAllSpans(t, filepath.Join(col.DataDir, "traces.jsonl")))
		complete := 0
		for _, spans := range traces {
			if len(services(spans)) == 2 && len(spans) == 5 {
				complete++
			}
		}
		if complete < requests {
			return fmt.Errorf("%d complete traces of %d (%d traces)", complete, requests, len(traces))
		}
		return nil
	})
	require.Len(t, traces, requests, "one trace per request, nothing else")

	for id, spans := range traces {
		byName := map[string]spanRec{}
		for _, s := range spans {
			assert.NotContains(t, s.span.Name(), "unknown", "trace %s: a name did not resolve", id)
			byName[s.span.Name()] = s
		}
		server, client, callee := byName["/call"], byName["GET"], byName["/hello"]
		require.Equal(t, ptrace.SpanKindServer, server.span.Kind(), "trace %s: %v", id, names(spans))
		assert.True(t, server.span.ParentSpanID().IsEmpty(), "front's server span is the root")
		assert.Equal(t, "front", server.service())

		require.Equal(t, ptrace.SpanKindClient, client.span.Kind(), "the outbound HTTP call")
		assert.Equal(t, "front", client.service())
		assertAttr(t, client.span.Attributes(), "http.request.method", "GET")
		assertAttr(t, client.span.Attributes(), "url.path", "/hello")
		assertAttr(t, client.span.Attributes(), "server.port", int64(back.Port))

		require.Equal(t, ptrace.SpanKindServer, callee.span.Kind())
		assert.Equal(t, "back", callee.service())
		assert.Equal(t, client.span.SpanID(), callee.span.ParentSpanID(), "back's span is the child of front's HTTP client span")

		// Every span's parent is in the trace: one connected tree.
		ids := map[pcommon.SpanID]bool{}
		for _, s := range spans {
			ids[s.span.SpanID()] = true
		}
		for _, s := range spans {
			if p := s.span.ParentSpanID(); !p.IsEmpty() {
				assert.True(t, ids[p], "trace %s: %q has a parent outside the trace", id, s.span.Name())
			}
		}
		// The Node names from metadata: API 2 on the async hand-off.
		assert.Contains(t, byName, "Asynchronous Invocation")
		tx, _ := server.span.Attributes().Get("pinpoint.transaction_id")
		assert.True(t, strings.HasPrefix(tx.Str(), "front^"), "transaction id %q", tx.Str())
		assertAttr(t, server.resource.Attributes(), "telemetry.sdk.language", "nodejs")
		assertAttr(t, server.resource.Attributes(), "service.instance.id", "front")
		_, hasHost := server.resource.Attributes().Get("host.name")
		assert.True(t, hasHost, "host.name from the agent info")
	}

	joinDeepFlowRows(t, col, traces)

	// Stats arrive every 5 s per agent.
	harness.WaitFor(t, 30*time.Second, "agent stats from both agents", func() error {
		got := metricServices(t, filepath.Join(col.DataDir, "metrics.jsonl"), "pinpoint.memory.used")
		if !got["front"] || !got["back"] {
			return fmt.Errorf("pinpoint.memory.used from %v", got)
		}
		return nil
	})
}

// joinDeepFlowRows is the seeds' join of Pinpoint with DeepFlow: DeepFlow's
// eBPF agent on back parses the Pinpoint-TraceID header of each call and
// exports the row with a made-up trace id and the transaction id as
// df.span.native.trace_id. Sent over OTLP to the same weftcol, each row
// comes out in the trace the pinpoint receiver built for that transaction.
func joinDeepFlowRows(t *testing.T, col *harness.Collector, traces map[pcommon.TraceID][]spanRec) {
	t.Helper()
	td := ptrace.NewTraces()
	want := map[pcommon.SpanID]pcommon.TraceID{}
	row := uint64(0xdf00)
	for id, spans := range traces {
		for _, s := range spans {
			if s.span.Name() != "/hello" {
				continue
			}
			tx, _ := s.span.Attributes().Get("pinpoint.transaction_id")
			row++
			rs := td.ResourceSpans().AppendEmpty()
			res := rs.Resource().Attributes()
			res.PutStr("service.name", "back")
			res.PutStr("telemetry.sdk.name", "deepflow")
			res.PutStr("df.capture_info.signal_source", "eBPF")
			res.PutStr("df.capture_info.observation_point", "Server Process")
			res.PutStr("df.capture_info.agent", "agent-e2e")
			res.PutStr("df.application.l7_protocol", "HTTP")
			sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
			var rowID pcommon.SpanID
			binary.BigEndian.PutUint64(rowID[:], row)
			var madeUp pcommon.TraceID
			binary.BigEndian.PutUint64(madeUp[:], row)
			sp.SetSpanID(rowID)
			sp.SetTraceID(madeUp)
			sp.SetParentSpanID(rowID) // DeepFlow's "no parent"
			sp.SetKind(ptrace.SpanKindServer)
			sp.SetName("GET /hello")
			sp.SetStartTimestamp(s.span.StartTimestamp())
			sp.SetEndTimestamp(s.span.EndTimestamp())
			sp.Attributes().PutStr("df.span.native.trace_id", tx.Str())
			sp.Attributes().PutStr("df.span.type", "session")
			want[rowID] = id
		}
	}
	require.Len(t, want, len(traces), "one /hello span per trace")

	conn, err := grpc.NewClient(col.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	_, err = ptraceotlp.NewGRPCClient(conn).Export(t.Context(), ptraceotlp.NewExportRequestFromTraces(td))
	require.NoError(t, err)

	harness.WaitFor(t, 60*time.Second, "the DeepFlow rows, stitched", func() error {
		got := 0
		for _, s := range readAllSpans(t, filepath.Join(col.DataDir, "traces.jsonl")) {
			trace, ok := want[s.span.SpanID()]
			if !ok {
				continue
			}
			if s.span.TraceID() != trace {
				return fmt.Errorf("row %s in trace %s, want the transaction's %s", s.span.SpanID(), s.span.TraceID(), trace)
			}
			if !s.span.ParentSpanID().IsEmpty() {
				return fmt.Errorf("row %s keeps parent %s; a self-parent means none", s.span.SpanID(), s.span.ParentSpanID())
			}
			got++
		}
		if got < len(want) {
			return fmt.Errorf("%d of %d rows so far", got, len(want))
		}
		return nil
	})
}

// TestPinpointMetadataSurvivesRestart: agents send their metadata and agent
// info once; with file_storage, a restarted weftcol still names their spans
// and knows their hosts. Without storage, the same restart loses both — the
// control that shows the test can fail.
func TestPinpointMetadataSurvivesRestart(t *testing.T) {
	for _, storage := range []bool{true, false} {
		t.Run(fmt.Sprintf("storage=%v", storage), func(t *testing.T) {
			pp := newPinpointSetup(t)
			first := harness.StartCollector(t, pinpointConfig(storage), pp.env...)
			svc := harness.StartNodeService(t, harness.NodeService{Name: "solo", Collector: pp.collector})
			svc.Get(t, "/hello")
			harness.WaitFor(t, 30*time.Second, "the first span", func() error {
				if len(readAllSpans(t, filepath.Join(first.DataDir, "traces.jsonl"))) == 0 {
					return fmt.Errorf("no span yet")
				}
				return nil
			})
			require.NoError(t, first.Signal(syscall.SIGTERM))
			require.NoError(t, first.Wait(30*time.Second))

			second := harness.StartCollector(t, pinpointConfig(storage), pp.env...)
			// The agent loses what it writes to the stream that broke, then
			// opens a new one: keep asking until spans arrive.
			var spans []spanRec
			harness.WaitFor(t, 60*time.Second, "spans after the restart", func() error {
				svc.Get(t, "/hello")
				spans = readAllSpans(t, filepath.Join(second.DataDir, "traces.jsonl"))
				if len(spans) == 0 {
					return fmt.Errorf("no span yet")
				}
				return nil
			})
			s := spans[0]
			_, hasHost := s.resource.Attributes().Get("host.name")
			if storage {
				assert.Equal(t, "/hello", s.span.Name())
				assert.True(t, hasHost, "agent info from storage")
				assertAttr(t, s.resource.Attributes(), "telemetry.sdk.language", "nodejs")
			} else {
				assert.False(t, hasHost, "without storage the agent info is gone")
			}
		})
	}
}

type spanRec struct {
	span     ptrace.Span
	resource pcommon.Resource
}

func (s spanRec) service() string {
	v, _ := s.resource.Attributes().Get("service.name")
	return v.Str()
}

func readAllSpans(t *testing.T, path string) []spanRec {
	var out []spanRec
	var u ptrace.JSONUnmarshaler
	for _, line := range readLines(t, path) {
		td, err := u.UnmarshalTraces(line)
		require.NoError(t, err)
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			rs := td.ResourceSpans().At(i)
			for j := 0; j < rs.ScopeSpans().Len(); j++ {
				ss := rs.ScopeSpans().At(j).Spans()
				for k := 0; k < ss.Len(); k++ {
					out = append(out, spanRec{span: ss.At(k), resource: rs.Resource()})
				}
			}
		}
	}
	return out
}

func byTrace(spans []spanRec) map[pcommon.TraceID][]spanRec {
	out := map[pcommon.TraceID][]spanRec{}
	for _, s := range spans {
		out[s.span.TraceID()] = append(out[s.span.TraceID()], s)
	}
	return out
}

func services(spans []spanRec) map[string]bool {
	out := map[string]bool{}
	for _, s := range spans {
		out[s.service()] = true
	}
	return out
}

func names(spans []spanRec) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.span.Name())
	}
	return out
}

// metricServices is the set of service.name values that sent metric name.
func metricServices(t *testing.T, path, name string) map[string]bool {
	out := map[string]bool{}
	for _, m := range readAllMetrics(t, path) {
		if m.metric.Name() == name {
			svc, _ := m.resource.Attributes().Get("service.name")
			out[svc.Str()] = true
		}
	}
	return out
}
