package workload

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// PeerPrefix starts the names of the peer's tags on a span (peer.k8s.pod.name,
// peer.k8s.pod.labels.app, ...): what an enrichment has to add to every
// span when the store cannot join the peer's tags at query time.
const PeerPrefix = "peer."

// FixedTags are a pod's fixed resource tags, as k8sattributesprocessor and
// resource detectors name them: 20 per side of a call, 40 per request.
func (c *Cluster) FixedTags(pod int) []KV {
	p := &c.Pods[pod]
	w := &c.Workloads[p.Workload]
	n := &c.Nodes[p.Node]
	return []KV{
		{"k8s.cluster.name", c.Name},
		{"k8s.namespace.name", w.Namespace},
		{"k8s.node.name", n.Name},
		{"k8s.pod.name", p.Name},
		{"k8s.pod.uid", p.UID},
		{"k8s.pod.ip", p.IP},
		{"k8s.pod.start_time", p.StartTime},
		{"k8s.deployment.name", w.Name},
		{"k8s.replicaset.name", w.ReplicaSet},
		{"k8s.container.name", "app"},
		{"container.id", p.ContainerID},
		{"container.image.name", w.Image},
		{"container.image.tag", w.Version},
		{"service.name", w.Name},
		{"service.namespace", w.Namespace},
		{"service.version", w.Version},
		{"host.name", n.Name},
		{"cloud.provider", "aws"},
		{"cloud.region", c.Region},
		{"cloud.availability_zone", n.Zone},
	}
}

// CustomTags are a pod's labels, annotations and env values as tags
// (k8s.pod.labels.<key>, k8s.pod.annotations.<key>, k8s.pod.env.<name>),
// at most max of them: 35 for the span's own pod and 25 for its peer make
// the 60 custom tags per request.
func (c *Cluster) CustomTags(pod int, max int) []KV {
	p := &c.Pods[pod]
	var tags []KV
	for _, group := range []struct {
		prefix string
		kvs    []KV
	}{{"k8s.pod.labels.", p.Labels}, {"k8s.pod.annotations.", p.Annotations}, {"k8s.pod.env.", p.Env}} {
		for _, kv := range group.kvs {
			if len(tags) == max {
				return tags
			}
			tags = append(tags, KV{group.prefix + kv.Key, kv.Value})
		}
	}
	return tags
}

// Custom tags per side of a call.
const (
	OwnCustomTags  = 35
	PeerCustomTags = 25
)

// Generator emits the spans of requests between the cluster's workloads:
// for each request a client span in the caller's pod and a server span in
// the callee's pod, in one trace. Callers are Zipf-distributed over the
// workloads and endpoints over each service's routes, as in production
// where a few services and routes take most of the traffic.
type Generator struct {
	c         *Cluster
	rng       *rand.Rand
	workloads *rand.Zipf
	endpoints *rand.Zipf
	// Start is the first span's start time; each request starts Step later.
	Start time.Time
	Step  time.Duration
	// PeerTags adds the peer's fixed and custom tags to each span as
	// peer.* attributes (45 per span): the layouts that cannot join them
	// at query time store them per span.
	PeerTags bool
	seq      uint64
	// resource attributes of each pod, built once: they dominate the
	// generator's cost otherwise.
	resources map[int]pcommon.Map
	peers     map[int][]KV
}

// NewGenerator returns a generator of requests in c, deterministic for seed.
func NewGenerator(c *Cluster, seed uint64) *Generator {
	rng := rand.New(rand.NewPCG(seed, 0xca11))
	return &Generator{
		c:         c,
		rng:       rng,
		workloads: rand.NewZipf(rng, 1.1, 4, uint64(len(c.Workloads)-1)),
		endpoints: rand.NewZipf(rng, 1.2, 2, 39),
		Start:     time.Now().Add(-time.Hour).Truncate(time.Second),
		Step:      100 * time.Microsecond,
		resources: map[int]pcommon.Map{},
		peers:     map[int][]KV{},
	}
}

// Traces returns the spans of n requests (2n spans), one ResourceSpans per
// pod that has spans in the batch.
func (g *Generator) Traces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	byPod := map[int]ptrace.SpanSlice{}
	spans := func(pod int) ptrace.SpanSlice {
		if s, ok := byPod[pod]; ok {
			return s
		}
		rs := td.ResourceSpans().AppendEmpty()
		g.resource(pod).CopyTo(rs.Resource().Attributes())
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("io.opentelemetry.spring-webmvc-6.0")
		ss.Scope().SetVersion("2.10.0-alpha")
		byPod[pod] = ss.Spans()
		return ss.Spans()
	}
	for i := 0; i < n; i++ {
		caller := int(g.workloads.Uint64())
		w := &g.c.Workloads[caller]
		if len(w.Calls) == 0 {
			caller = 0
			w = &g.c.Workloads[0]
		}
		callee := &g.c.Workloads[w.Calls[g.rng.IntN(len(w.Calls))]]
		from := w.Pods[g.rng.IntN(len(w.Pods))]
		to := callee.Pods[g.rng.IntN(len(callee.Pods))]
		route := callee.Endpoints[int(g.endpoints.Uint64())%len(callee.Endpoints)]
		method := []string{"GET", "GET", "GET", "POST", "PUT", "DELETE"}[g.rng.IntN(6)]
		status := int64([]int{200, 200, 200, 200, 200, 201, 204, 400, 404, 500}[g.rng.IntN(10)])
		path := strings.ReplaceAll(route, "{id}", strconv.FormatUint(g.rng.Uint64N(1_000_000), 10))

		var tid pcommon.TraceID
		var clientID, serverID pcommon.SpanID
		putRandom(g.rng, tid[:])
		putRandom(g.rng, clientID[:])
		putRandom(g.rng, serverID[:])
		start := g.Start.Add(time.Duration(g.seq) * g.Step)
		g.seq++
		server := time.Duration(math.Min(g.rng.ExpFloat64()*15e6, 5e9)) + 200*time.Microsecond
		network := time.Duration(200+g.rng.IntN(800)) * time.Microsecond

		cs := spans(from).AppendEmpty()
		cs.SetTraceID(tid)
		cs.SetSpanID(clientID)
		cs.SetName(method)
		cs.SetKind(ptrace.SpanKindClient)
		cs.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		cs.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(server + 2*network)))
		a := cs.Attributes()
		a.PutStr("http.request.method", method)
		a.PutStr("server.address", g.c.Pods[to].IP)
		a.PutInt("server.port", 8080)
		a.PutStr("url.full", "http://"+callee.Name+"."+callee.Namespace+":8080"+path)
		a.PutInt("http.response.status_code", status)
		a.PutStr("network.protocol.version", "1.1")
		g.peerTags(a, to)

		ss := spans(to).AppendEmpty()
		ss.SetTraceID(tid)
		ss.SetSpanID(serverID)
		ss.SetParentSpanID(clientID)
		ss.SetName(method + " " + route)
		ss.SetKind(ptrace.SpanKindServer)
		ss.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(network)))
		ss.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(network + server)))
		if status >= 500 {
			ss.Status().SetCode(ptrace.StatusCodeError)
		}
		a = ss.Attributes()
		a.PutStr("http.request.method", method)
		a.PutStr("http.route", route)
		a.PutStr("url.path", path)
		a.PutStr("url.scheme", "http")
		a.PutInt("http.response.status_code", status)
		a.PutStr("client.address", g.c.Pods[from].IP)
		a.PutStr("user_agent.original", fmt.Sprintf("Java-http-client/21.0.%d", g.rng.IntN(6)))
		a.PutStr("network.protocol.version", "1.1")
		g.peerTags(a, from)
	}
	return td
}

func (g *Generator) resource(pod int) pcommon.Map {
	if m, ok := g.resources[pod]; ok {
		return m
	}
	m := pcommon.NewMap()
	tags := append(g.c.FixedTags(pod), g.c.CustomTags(pod, OwnCustomTags)...)
	m.EnsureCapacity(len(tags) + 3)
	for _, kv := range tags {
		m.PutStr(kv.Key, kv.Value)
	}
	m.PutStr("telemetry.sdk.name", "opentelemetry")
	m.PutStr("telemetry.sdk.language", "java")
	m.PutStr("telemetry.sdk.version", "1.44.1")
	g.resources[pod] = m
	return m
}

func (g *Generator) peerTags(a pcommon.Map, pod int) {
	if !g.PeerTags {
		return
	}
	tags, ok := g.peers[pod]
	if !ok {
		for _, kv := range append(g.c.FixedTags(pod), g.c.CustomTags(pod, PeerCustomTags)...) {
			tags = append(tags, KV{PeerPrefix + kv.Key, kv.Value})
		}
		g.peers[pod] = tags
	}
	for _, kv := range tags {
		a.PutStr(kv.Key, kv.Value)
	}
}

func putRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}
