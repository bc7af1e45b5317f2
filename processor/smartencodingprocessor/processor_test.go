package smartencodingprocessor

import (
	"context"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/weftobs/weft/extension/k8smetadataextension"
	"github.com/weftobs/weft/internal/vocab"
	"github.com/weftobs/weft/processor/smartencodingprocessor/internal/metadata"
)

// staticLookup is a fixed Lookup for unit tests of the encoding logic; the
// tests with the real extension are in tests/e2e.
type staticLookup struct {
	byIP   map[netip.Addr]k8smetadataextension.Resource
	byUID  map[string]k8smetadataextension.Resource
	vpc    uint32
	lookup int
}

func (s *staticLookup) ByIP(vpc uint32, ip netip.Addr) (k8smetadataextension.Resource, bool) {
	s.lookup++
	if vpc != s.vpc {
		return k8smetadataextension.Resource{}, false
	}
	r, ok := s.byIP[ip]
	return r, ok
}

func (s *staticLookup) ByPodUID(uid string) (k8smetadataextension.Resource, bool) {
	r, ok := s.byUID[uid]
	return r, ok
}

func (s *staticLookup) ByContainerID(string) (k8smetadataextension.Resource, bool) {
	return k8smetadataextension.Resource{}, false
}

func (s *staticLookup) ByService(uint32, netip.Addr, uint16) (k8smetadataextension.Resource, bool) {
	return k8smetadataextension.Resource{}, false
}
func (s *staticLookup) Ready() bool { return true }

type host struct {
	component.Host
	ext map[component.ID]component.Component
}

func (h host) GetExtensions() map[component.ID]component.Component { return h.ext }

type lookupExtension struct {
	component.StartFunc
	component.ShutdownFunc
	*staticLookup
}

var (
	cart = k8smetadataextension.Resource{VPC: 3, Cluster: 1, Namespace: 2, Node: 5, Workload: 7,
		WorkloadKind: k8smetadataextension.WorkloadDeployment, Pod: 100, Service: 9}
	db   = k8smetadataextension.Resource{VPC: 3, Cluster: 1, Namespace: 4, Node: 6, Workload: 8, WorkloadKind: k8smetadataextension.WorkloadStatefulSet, Pod: 200}
	node = k8smetadataextension.Resource{VPC: 3, Cluster: 1, Node: 5}
	pg   = k8smetadataextension.Resource{VPC: 3, Host: 12}
)

func newLookup() *staticLookup {
	return &staticLookup{vpc: 3, byIP: map[netip.Addr]k8smetadataextension.Resource{
		netip.MustParseAddr("10.244.0.8"):     cart,
		netip.MustParseAddr("10.244.1.9"):     db,
		netip.MustParseAddr("192.168.0.5"):    node,
		netip.MustParseAddr("10.0.5.10"):      pg,
		netip.MustParseAddr("::ffff:1.2.3.4"): {},
	}, byUID: map[string]k8smetadataextension.Resource{"uid-cart": cart}}
}

func startTraces(t *testing.T, l *staticLookup, mutate func(*Config)) (*consumertest.TracesSink, func(ptrace.Traces)) {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.VPCID = 3
	if mutate != nil {
		mutate(cfg)
	}
	sink := new(consumertest.TracesSink)
	p, err := NewFactory().CreateTraces(t.Context(), processortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	h := host{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{cfg.Metadata: lookupExtension{staticLookup: l}}}
	require.NoError(t, p.Start(t.Context(), h))
	t.Cleanup(func() { require.NoError(t, p.Shutdown(context.Background())) })
	return sink, func(td ptrace.Traces) { require.NoError(t, p.ConsumeTraces(t.Context(), td)) }
}

// A span shaped the way k8sattributesprocessor and an OTel SDK shape it.
func k8sSpan(kind ptrace.SpanKind, peerKey, peerIP string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	ra := rs.Resource().Attributes()
	ra.PutStr("service.name", "cart")
	ra.PutStr("k8s.pod.ip", "10.244.0.8")
	ra.PutStr("k8s.pod.name", "cart-7d9f-x2")
	ra.PutStr("k8s.pod.uid", "uid-cart")
	ra.PutStr("k8s.namespace.name", "shop")
	ra.PutStr("k8s.node.name", "node-a")
	ra.PutStr("k8s.deployment.name", "cart")
	ra.PutStr("k8s.replicaset.name", "cart-7d9f")
	ra.PutStr("k8s.container.name", "app")
	ra.PutStr("k8s.pod.labels.app", "cart")
	ra.PutStr("k8s.pod.annotations.team", "payments")
	ra.PutStr("cloud.region", "eu-west-1")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("op")
	sp.SetKind(kind)
	sp.Attributes().PutStr("http.route", "/cart")
	if peerKey != "" {
		sp.Attributes().PutStr(peerKey, peerIP)
	}
	return td
}

func attr(m pcommon.Map, k string) any {
	v, ok := m.Get(k)
	if !ok {
		return nil
	}
	return v.AsRaw()
}

func TestEncodesBothSidesAndStrips(t *testing.T) {
	sink, consume := startTraces(t, newLookup(), nil)
	consume(k8sSpan(ptrace.SpanKindClient, "server.address", "10.244.1.9"))
	res := sink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes()
	span := sink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()

	// The local side is on the resource.
	assert.Equal(t, int64(3), attr(res, vocab.VPCID))
	assert.Equal(t, int64(100), attr(res, vocab.PodID))
	assert.Equal(t, int64(7), attr(res, vocab.WorkloadID))
	assert.Equal(t, int64(k8smetadataextension.WorkloadDeployment), attr(res, vocab.WorkloadKind))
	assert.Equal(t, int64(vocab.AutoTypePod), attr(res, vocab.AutoInstanceType))
	assert.Equal(t, int64(vocab.AutoTypeService), attr(res, vocab.AutoServiceType))
	assert.Equal(t, int64(9), attr(res, vocab.AutoServiceID))
	// What the ids determine is gone; what they do not is kept.
	for _, gone := range []string{"k8s.pod.name", "k8s.pod.uid", "k8s.pod.ip", "k8s.namespace.name", "k8s.node.name",
		"k8s.deployment.name", "k8s.pod.labels.app", "k8s.pod.annotations.team"} {
		assert.Nil(t, attr(res, gone), gone)
	}
	for k, v := range map[string]any{"service.name": "cart", "k8s.replicaset.name": "cart-7d9f", "k8s.container.name": "app", "cloud.region": "eu-west-1"} {
		assert.Equal(t, v, attr(res, k), k)
	}
	// The peer (a client span's server) is on the span.
	assert.Equal(t, int64(200), attr(span, "weft.peer.pod_id"))
	assert.Equal(t, int64(vocab.AutoTypeWorkloadMin+1), attr(span, "weft.peer.auto_service_type"), "a StatefulSet without a service")
	assert.Equal(t, "10.244.1.9", attr(span, "server.address"), "the peer's IP stays")
	assert.Equal(t, "/cart", attr(span, "http.route"))
}

// A server span's server.address is its own address, never the peer.
func TestServerSpanPeerIsTheClient(t *testing.T) {
	sink, consume := startTraces(t, newLookup(), nil)
	td := k8sSpan(ptrace.SpanKindServer, "server.address", "10.244.1.9")
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("client.address", "192.168.0.5")
	consume(td)
	span := sink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
	assert.Equal(t, int64(5), attr(span, "weft.peer.node_id"))
	assert.Nil(t, attr(span, "weft.peer.pod_id"))
	assert.Equal(t, int64(vocab.AutoTypeNode), attr(span, "weft.peer.auto_instance_type"))
}

// Records from unknown IPs pass through unharmed: their IP and names stay,
// and no id is guessed.
func TestUnknownIPPassesUnharmed(t *testing.T) {
	sink, consume := startTraces(t, newLookup(), nil)
	td := k8sSpan(ptrace.SpanKindClient, "server.address", "10.99.99.99")
	ra := td.ResourceSpans().At(0).Resource().Attributes()
	ra.PutStr("k8s.pod.ip", "10.99.0.1")
	ra.Remove("k8s.pod.uid")
	want := ptrace.NewTraces()
	td.CopyTo(want)
	consume(td)
	got := sink.AllTraces()[0]
	res := got.ResourceSpans().At(0).Resource().Attributes()
	assert.Equal(t, int64(3), attr(res, vocab.VPCID), "the VPC is known")
	res.Remove(vocab.VPCID)
	assert.Equal(t, want, got, "nothing else changed")
}

// Another VPC is another address space: the same IP is not the same pod.
func TestVPCFromResourceAttribute(t *testing.T) {
	sink, consume := startTraces(t, newLookup(), func(c *Config) { c.VPCIDAttribute = "cloud.vpc.id" })
	td := k8sSpan(ptrace.SpanKindClient, "server.address", "10.244.1.9")
	ra := td.ResourceSpans().At(0).Resource().Attributes()
	ra.Remove("k8s.pod.uid")
	ra.PutStr("cloud.vpc.id", "4")
	consume(td)
	res := sink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes()
	assert.Equal(t, int64(4), attr(res, vocab.VPCID))
	assert.Nil(t, attr(res, vocab.PodID))
	assert.Equal(t, "cart-7d9f-x2", attr(res, "k8s.pod.name"), "not found, so not stripped")
}

func TestKeepWins(t *testing.T) {
	sink, consume := startTraces(t, newLookup(), func(c *Config) { c.Keep = []string{"k8s.pod.name"} })
	consume(k8sSpan(ptrace.SpanKindInternal, "", ""))
	res := sink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes()
	assert.Equal(t, "cart-7d9f-x2", attr(res, "k8s.pod.name"))
	assert.Nil(t, attr(res, "k8s.pod.uid"))
}

// Metrics and logs get the local side.
func TestLogs(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.VPCID = 3
	sink := new(consumertest.LogsSink)
	p, err := NewFactory().CreateLogs(t.Context(), processortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(t.Context(), host{Host: componenttest.NewNopHost(),
		ext: map[component.ID]component.Component{cfg.Metadata: lookupExtension{staticLookup: newLookup()}}}))
	defer p.Shutdown(context.Background()) //nolint:errcheck
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutEmptySlice("host.ip").AppendEmpty().SetStr("192.168.0.5")
	rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("x")
	require.NoError(t, p.ConsumeLogs(t.Context(), ld))
	res := sink.AllLogs()[0].ResourceLogs().At(0).Resource().Attributes()
	assert.Equal(t, int64(5), attr(res, vocab.NodeID))
	assert.Equal(t, int64(vocab.AutoTypeNode), attr(res, vocab.AutoInstanceType))
}

func TestStartWithoutExtension(t *testing.T) {
	p, err := NewFactory().CreateTraces(t.Context(), processortest.NewNopSettings(metadata.Type), createDefaultConfig(), consumertest.NewNop())
	require.NoError(t, err)
	err = p.Start(t.Context(), componenttest.NewNopHost())
	require.ErrorContains(t, err, `smart_encoding needs the k8s_metadata extension "k8s_metadata"`)
}

func TestPeerCacheAvoidsRepeatedLookups(t *testing.T) {
	l := newLookup()
	_, consume := startTraces(t, l, nil)
	td := k8sSpan(ptrace.SpanKindClient, "server.address", "10.244.1.9")
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := 0; i < 9; i++ {
		spans.At(0).CopyTo(spans.AppendEmpty())
	}
	l.lookup = 0
	consume(td)
	assert.Equal(t, 1, l.lookup, "ten spans to the same peer, one lookup")
}

// A call to a host outside Kubernetes (k8s_metadata's static resources).
func TestPeerIsStaticHost(t *testing.T) {
	sink, consume := startTraces(t, newLookup(), nil)
	consume(k8sSpan(ptrace.SpanKindClient, "server.address", "10.0.5.10"))
	span := sink.AllTraces()[0].ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes()
	assert.Equal(t, int64(12), attr(span, "weft.peer.host_id"))
	assert.Equal(t, int64(vocab.AutoTypeHost), attr(span, "weft.peer.auto_instance_type"))
	assert.Equal(t, int64(12), attr(span, "weft.peer.auto_instance_id"))
}
