package pinpointreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weftobs/weft/internal/vocab"
	"github.com/weftobs/weft/internal/wasmplugin"
	"github.com/weftobs/weft/internal/wasmplugin/wasmplugintest"
	imeta "github.com/weftobs/weft/receiver/pinpointreceiver/internal/metadata"
	"github.com/weftobs/weft/receiver/pinpointreceiver/internal/metadatatest"
	v1 "github.com/weftobs/weft/receiver/pinpointreceiver/internal/proto/v1"
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

// headerSpan is a Java server span whose agent recorded the request's
// X-Request-ID header (profiler.http.record.request.headers): annotation
// 47, a (name, value) pair the receiver cannot map and keeps as
// pinpoint.http.request.header. A newer agent's typed attribute carries a
// tenant header.
func headerSpan() *v1.PSpan {
	s := javaSpan(1, 100)
	s.Annotation = append(s.Annotation, &v1.PAnnotation{Key: 47, Value: &v1.PAnnotationValue{
		Field: &v1.PAnnotationValue_StringStringValue{StringStringValue: &v1.PStringStringValue{
			StringValue1: wrapperspb.String("X-Request-ID"), StringValue2: wrapperspb.String("req-42")}}}})
	s.Attribute = append(s.Attribute, &v1.PAttribute{Key: "http.request.header.x-tenant",
		Value: &v1.PAttributeValue{Field: &v1.PAttributeValue_StringValue{StringValue: "acme"}}})
	return s
}

func sendSpan(t *testing.T, tr *testReceiver, s *v1.PSpan) {
	t.Helper()
	_, err := v1.NewSpanClient(tr.conns["span"]).SendSpanBatch(agentCtx(t, "shop-1", "shop", start),
		&v1.PSpanMessageBatch{Span: []*v1.PSpanMessage{{Field: &v1.PSpanMessage_Span{Span: s}}}})
	require.NoError(t, err)
}

// TestPluginExtractsFromUnmappedAnnotation: the example plugin finds the
// request id in the header annotation the receiver keeps as it is, and
// the tenant tag in an agent attribute; both go on the server span.
func TestPluginExtractsFromUnmappedAnnotation(t *testing.T) {
	plugin := buildPlugin(t, examplePlugin)
	for _, tags := range []bool{false, true} {
		t.Run(map[bool]string{false: "ids only", true: "tags_as_attributes"}[tags], func(t *testing.T) {
			tr := startReceiver(t, func(cfg *Config) {
				cfg.MetadataWait = 0 // names are not the point
				cfg.Wasm.Timeout = 5 * time.Second
				cfg.Plugins = []wasmplugin.PluginConfig{{Path: plugin, TagsAsAttributes: tags,
					Config: map[string]any{"tags": map[string]any{"x-tenant": "app.tenant"}}}}
			})
			sendSpan(t, tr, headerSpan())
			require.Eventually(t, func() bool { return tr.traces.SpanCount() == 3 }, 10*time.Second, 10*time.Millisecond)
			server := spanNames(tr.traces.AllTraces())["/cart"]
			require.Equal(t, ptrace.SpanKindServer, server.Kind())
			v, ok := server.Attributes().Get(vocab.XRequestID0)
			require.True(t, ok, "the request id from the header annotation: %v", server.Attributes().AsRaw())
			assert.Equal(t, "req-42", v.Str())
			v, ok = server.Attributes().Get("app.tenant")
			assert.Equal(t, tags, ok, "the tag only with tags_as_attributes")
			if tags {
				assert.Equal(t, "acme", v.Str())
			}
			for name, sp := range spanNames(tr.traces.AllTraces()) {
				if name != "/cart" {
					_, ok := sp.Attributes().Get(vocab.XRequestID0)
					assert.False(t, ok, "%s carries no header", name)
				}
			}
		})
	}
}

// TestPluginFailuresCounted: a plugin that fails every call leaves every
// span as converted, and each call is counted by failure.
func TestPluginFailuresCounted(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	plugin := buildPlugin(t, trapPlugin)
	tr := startReceiverWith(t, metadatatest.NewSettings(tt), func(cfg *Config) {
		cfg.MetadataWait = 0
		cfg.Wasm.Timeout = 5 * time.Second
		cfg.Plugins = []wasmplugin.PluginConfig{{Path: plugin}}
	})
	sendSpan(t, tr, headerSpan())
	require.Eventually(t, func() bool { return tr.traces.SpanCount() == 3 }, 10*time.Second, 10*time.Millisecond)
	server := spanNames(tr.traces.AllTraces())["/cart"]
	_, ok := server.Attributes().Get(vocab.XRequestID0)
	assert.False(t, ok)
	metadatatest.AssertEqualReceiverPinpointPluginFailures(t, tt, []metricdata.DataPoint[int64]{
		{Value: 3, Attributes: attribute.NewSet(attribute.String("failure", "trap"))},
	}, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
}

// TestPluginLoadFailsStart: a plugin that rejects its config fails Start
// with an error naming it, and nothing listens.
func TestPluginLoadFailsStart(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.Agent.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Stat.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Span.NetAddr.Endpoint = "127.0.0.1:0"
	plugin := buildPlugin(t, examplePlugin)
	cfg.Plugins = []wasmplugin.PluginConfig{{Path: plugin, Config: map[string]any{"request_id_headers": []any{""}}}}
	r, err := NewFactory().CreateTraces(t.Context(), receivertest.NewNopSettings(imeta.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = r.Start(t.Context(), componenttest.NewNopHost())
	require.ErrorContains(t, err, "pinpoint: plugins[0] ("+plugin+") could not be loaded")
	require.ErrorContains(t, err, "a header name is empty")
	assert.Empty(t, r.(*pinpointReceiver).servers)
	require.NoError(t, r.Shutdown(t.Context()))
}
