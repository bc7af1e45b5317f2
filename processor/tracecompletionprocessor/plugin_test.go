package tracecompletionprocessor

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/attribute"

	"github.com/weftobs/weft/internal/vocab"
	"github.com/weftobs/weft/internal/wasmplugin/wasmplugintest"
	"github.com/weftobs/weft/processor/tracecompletionprocessor/internal/metadatatest"
)

// buildPlugin builds the Go plugin in dir (relative to this package) into
// a temporary directory and returns its path.
func buildPlugin(t *testing.T, dir string) string {
	t.Helper()
	return wasmplugintest.Build(t, dir, t.TempDir())
}

const (
	examplePlugin = "../../internal/wasmplugin/example"
	trapPlugin    = "../../internal/wasmplugin/testdata/trap"
)

var hopStart = time.Unix(1_760_000_000, 0)

func hopSpanID(v uint64) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], v)
	return id
}

// ebpfSpan is one eBPF capture in the gateway process (agent "gw", pid 7):
// no trace context, so a made-up trace id; its only header is a captured
// X-Request-ID in attribute header, if any.
func ebpfSpan(id uint64, obs string, startUs, endUs, sysReq, sysResp, tcpReq int64, header, xRequestID string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "gateway")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	var tid pcommon.TraceID
	binary.BigEndian.PutUint64(tid[8:], 1<<40|id)
	sp.SetTraceID(tid)
	sp.SetSpanID(hopSpanID(id))
	sp.SetName("GET /orders")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(hopStart.Add(time.Duration(startUs) * time.Microsecond)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(hopStart.Add(time.Duration(endUs) * time.Microsecond)))
	kind := ptrace.SpanKindServer
	if obs == vocab.ObservationPointClientProcess {
		kind = ptrace.SpanKindClient
	}
	sp.SetKind(kind)
	a := sp.Attributes()
	a.PutStr(vocab.SignalSource, vocab.SignalSourceEBPF)
	a.PutStr(vocab.ObservationPoint, obs)
	a.PutStr(vocab.ObserverID, "gw")
	a.PutInt(vocab.ProcessID, 7)
	a.PutInt(vocab.SyscallTraceIDRequest, sysReq)
	a.PutInt(vocab.SyscallTraceIDResponse, sysResp)
	a.PutInt(vocab.TCPSeqRequest, tcpReq)
	a.PutInt(vocab.TCPSeqResponse, tcpReq+1)
	a.PutBool(vocab.TraceIDSynthetic, true)
	if xRequestID != "" {
		// As OTel captures headers: a slice of the header's values.
		a.PutEmptySlice(header).AppendEmpty().SetStr(xRequestID)
	}
	return td
}

// threadPoolHop is a gateway that received a request on one thread (its
// server capture, span 1) and sent it upstream from a pool thread (span 2):
// the syscall trace ids of the two threads have nothing in common and the
// TCP connections differ. The gateway made up an X-Request-ID, returned it
// in its response and sent it upstream in the request; only these captured
// headers tie the two spans.
func threadPoolHop() []ptrace.Traces {
	return []ptrace.Traces{
		ebpfSpan(1, vocab.ObservationPointServerProcess, 0, 10_000, 11, 12, 1000, "http.response.header.x-request-id", "req-7f3a"),
		ebpfSpan(2, vocab.ObservationPointClientProcess, 2_000, 8_000, 901, 902, 5000, "http.request.header.x-request-id", "req-7f3a"),
	}
}

// runHop sends the hop through a processor configured with plugins and
// returns the spans that came out, by span id.
func runHop(t *testing.T, tt *componenttest.Telemetry, plugins ...string) map[pcommon.SpanID]ptrace.Span {
	t.Helper()
	var pcs []PluginConfig
	for _, pl := range plugins {
		pcs = append(pcs, PluginConfig{Path: pl})
	}
	return runHopWith(t, tt, threadPoolHop(), pcs...)
}

func runHopWith(t *testing.T, tt *componenttest.Telemetry, hop []ptrace.Traces, plugins ...PluginConfig) map[pcommon.SpanID]ptrace.Span {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.Wait, cfg.MaxWait, cfg.LateJoinTTL = time.Hour, time.Hour, time.Hour
	cfg.Wasm.Timeout = 5 * time.Second // not about the deadline: -race, busy machines
	cfg.Plugins = plugins
	require.NoError(t, cfg.Validate())
	sink := new(consumertest.TracesSink)
	p := newTestProcessor(t, cfg, tt, sink)
	for _, td := range hop {
		require.NoError(t, p.ConsumeTraces(t.Context(), td))
	}
	require.NoError(t, p.Shutdown(t.Context()))
	out := map[pcommon.SpanID]ptrace.Span{}
	for _, td := range sink.AllTraces() {
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			sss := rss.At(i).ScopeSpans()
			for j := 0; j < sss.Len(); j++ {
				for k := 0; k < sss.At(j).Spans().Len(); k++ {
					sp := sss.At(j).Spans().At(k)
					out[sp.SpanID()] = sp
				}
			}
		}
	}
	require.Len(t, out, 2)
	return out
}

// TestPluginStitchesThreadPoolHop: the example plugin turns the captured
// X-Request-ID header into weft.x_request_id.0, and the engine links the
// upstream request under the gateway's server capture by it.
func TestPluginStitchesThreadPoolHop(t *testing.T) {
	t.Run("without plugin", func(t *testing.T) {
		out := runHop(t, componenttest.NewTelemetry())
		up := out[hopSpanID(2)]
		assert.True(t, up.ParentSpanID().IsEmpty(), "syscall ids alone cannot link a thread-pool hop")
		_, ok := up.Attributes().Get(vocab.LinkKey)
		assert.False(t, ok)
		assert.NotEqual(t, out[hopSpanID(1)].TraceID(), up.TraceID())
	})
	t.Run("with plugin", func(t *testing.T) {
		tt := componenttest.NewTelemetry()
		t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
		out := runHop(t, tt, buildPlugin(t, examplePlugin))
		gw, up := out[hopSpanID(1)], out[hopSpanID(2)]
		for sp, key := range map[ptrace.Span]string{gw: vocab.XRequestID1, up: vocab.XRequestID0} {
			v, ok := sp.Attributes().Get(key)
			require.True(t, ok, "the plugin's key %s is written on the span", key)
			assert.Equal(t, "req-7f3a", v.Str())
		}
		assert.Equal(t, hopSpanID(1), up.ParentSpanID())
		key, ok := up.Attributes().Get(vocab.LinkKey)
		require.True(t, ok)
		assert.Equal(t, vocab.LinkKeyXRequestID, key.Str())
		assert.Equal(t, gw.TraceID(), up.TraceID())
		assert.Equal(t, int64(1), sum(t, tt, "otelcol_processor_trace_completion_links", attribute.String("key", vocab.LinkKeyXRequestID)))
		_, err := tt.GetMetric("otelcol_processor_trace_completion_plugin_failures")
		assert.Error(t, err, "no failures recorded")
	})
}

// TestPluginConfigAndTags: the plugin's config names the header that
// carries the request id (X-Correlation-ID here), which then stitches the
// hop; with tags_as_attributes its tag is written too, and an attribute
// the span already had is not replaced.
func TestPluginConfigAndTags(t *testing.T) {
	plugin := buildPlugin(t, examplePlugin)
	hop := func() []ptrace.Traces {
		tds := []ptrace.Traces{
			ebpfSpan(1, vocab.ObservationPointServerProcess, 0, 10_000, 11, 12, 1000, "http.response.header.x-correlation-id", "corr-1"),
			ebpfSpan(2, vocab.ObservationPointClientProcess, 2_000, 8_000, 901, 902, 5000, "http.request.header.x-correlation-id", "corr-1"),
		}
		a := tds[1].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
		a.PutEmptySlice("http.request.header.x-tenant").AppendEmpty().SetStr("acme")
		a.PutStr("app.tenant", "set-by-the-app")
		a = tds[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
		a.PutEmptySlice("http.request.header.x-tenant").AppendEmpty().SetStr("acme")
		return tds
	}
	config := map[string]any{"request_id_headers": []any{"x-correlation-id"}, "tags": map[string]any{"x-tenant": "app.tenant"}}
	for _, tags := range []bool{false, true} {
		t.Run(fmt.Sprintf("tags_as_attributes=%v", tags), func(t *testing.T) {
			out := runHopWith(t, componenttest.NewTelemetry(), hop(), PluginConfig{Path: plugin, Config: config, TagsAsAttributes: tags})
			gw, up := out[hopSpanID(1)], out[hopSpanID(2)]
			assert.Equal(t, hopSpanID(1), up.ParentSpanID(), "stitched by the configured header")
			v, _ := up.Attributes().Get(vocab.XRequestID0)
			assert.Equal(t, "corr-1", v.Str())
			v, _ = up.Attributes().Get("app.tenant")
			assert.Equal(t, "set-by-the-app", v.Str(), "an attribute the span has is never replaced")
			v, ok := gw.Attributes().Get("app.tenant")
			assert.Equal(t, tags, ok, "the tag is written only with tags_as_attributes")
			if tags {
				assert.Equal(t, "acme", v.Str())
			}
		})
	}
}

// TestPluginRejectsConfigFailsStart: a config the plugin rejects fails
// Start with an error naming the plugin and quoting its reason.
func TestPluginRejectsConfigFailsStart(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	path := buildPlugin(t, examplePlugin)
	cfg.Plugins = []PluginConfig{{Path: path, Config: map[string]any{"request_id_header": "x-req"}}}
	require.NoError(t, cfg.Validate(), "the plugin checks its config at Start")
	p, err := NewFactory().CreateTraces(t.Context(), metadatatest.NewSettings(componenttest.NewTelemetry()), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = p.Start(t.Context(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "trace_completion: plugins[0] ("+path+") could not be loaded")
	require.ErrorContains(t, err, `unknown field "request_id_header"`)
	require.NoError(t, p.Shutdown(t.Context()))
}

// TestFailingPluginLeavesSpansUnchanged: a plugin that traps on every span
// adds nothing, the spans go on as without plugins, and every call is
// counted as a trap.
func TestFailingPluginLeavesSpansUnchanged(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	cfg.Wasm.Timeout = 5 * time.Second
	cfg.Plugins = []PluginConfig{{Path: buildPlugin(t, trapPlugin)}}
	p := newTestProcessor(t, cfg, tt, new(consumertest.TracesSink))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })

	for _, td := range threadPoolHop() {
		before := ptrace.NewTraces()
		td.CopyTo(before)
		p.plugins.Traces(t.Context(), td)
		assert.Equal(t, before, td, "a failed call leaves the span unchanged")
		require.NoError(t, p.ConsumeTraces(t.Context(), td))
	}
	// Two spans, two passes each (Traces above, then ConsumeTraces).
	assert.Equal(t, int64(4), sum(t, tt, "otelcol_processor_trace_completion_plugin_failures", attribute.String("failure", "trap")))
	assert.Equal(t, int64(4), sum(t, tt, "otelcol_processor_trace_completion_plugin_failures"))
}

// TestPluginLoadErrorFailsStart: a plugin that cannot be read fails Start
// with an error naming it.
func TestPluginLoadErrorFailsStart(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	missing := filepath.Join(t.TempDir(), "missing.wasm")
	cfg.Plugins = []PluginConfig{{Path: missing}}
	require.NoError(t, cfg.Validate(), "readability is checked at Start")
	p, err := NewFactory().CreateTraces(t.Context(), metadatatest.NewSettings(componenttest.NewTelemetry()), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = p.Start(t.Context(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "plugins[0] ("+missing+") could not be loaded")
	require.NoError(t, p.Shutdown(t.Context()))
}

// TestNoPluginsNoPluginWork: without plugins nothing is loaded and spans
// are not passed to any.
func TestNoPluginsNoPluginWork(t *testing.T) {
	p := newTestProcessor(t, createDefaultConfig().(*Config), componenttest.NewTelemetry(), new(consumertest.TracesSink))
	assert.Nil(t, p.plugins)
	require.NoError(t, p.Shutdown(t.Context()))
}

// TestBrokenPluginSuspended: a plugin that fails every call is suspended
// after 20 failures in a row (the chain's default): the rest of the spans
// are not given to it, and the suspension is counted.
func TestBrokenPluginSuspended(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	cfg := createDefaultConfig().(*Config)
	cfg.Wasm.Timeout = 5 * time.Second
	cfg.Plugins = []PluginConfig{{Path: buildPlugin(t, trapPlugin)}}
	p := newTestProcessor(t, cfg, tt, new(consumertest.TracesSink))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })

	td := ptrace.NewTraces()
	for i := range 30 {
		ebpfSpan(uint64(i+1), vocab.ObservationPointServerProcess, 0, 1000, int64(i), int64(i), int64(i), "", "").
			ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	}
	require.NoError(t, p.ConsumeTraces(t.Context(), td))
	assert.Equal(t, int64(20), sum(t, tt, "otelcol_processor_trace_completion_plugin_failures"), "30 spans, 20 calls")
	assert.Equal(t, int64(1), sum(t, tt, "otelcol_processor_trace_completion_plugin_suspensions"))
}
