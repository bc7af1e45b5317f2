// Package workload generates the Kubernetes cluster and the telemetry that
// Weft's benchmarks (make bench) and the tests that smoke-run them work on:
// the shape of a production cluster as the SmartEncoding figures describe it
// (about 40 fixed resource tags and 60 custom tags per request), with
// realistic cardinalities of services, endpoints and pods.
//
// Everything is deterministic for a seed, so two layouts or two pipelines fed
// from one Generator store the same spans.
package workload

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Shape is the size of a generated cluster.
type Shape struct {
	Namespaces int
	Workloads  int // Deployments, spread evenly over the namespaces
	Pods       int // spread evenly over the workloads
	Nodes      int
	// Per pod: labels, annotations (some over 100 bytes) and plain env
	// values of its container.
	Labels, Annotations, Env int
}

// Production is the cluster of issue #8: 20 namespaces, 200 workloads, 2000
// pods, each pod with 10 labels, 5 annotations and 20 env values.
var Production = Shape{Namespaces: 20, Workloads: 200, Pods: 2000, Nodes: 50, Labels: 10, Annotations: 5, Env: 20}

// Small is the same shape scaled down, for smoke tests.
var Small = Shape{Namespaces: 3, Workloads: 12, Pods: 48, Nodes: 4, Labels: 10, Annotations: 5, Env: 20}

// KV is one tag.
type KV struct{ Key, Value string }

// Cluster is a generated cluster. Indexes are stable: Pods[i] is pod i.
type Cluster struct {
	Name       string
	Region     string
	Namespaces []string
	Nodes      []Node
	Workloads  []Workload
	Pods       []Pod
}

// Node is a Kubernetes node.
type Node struct {
	Name, IP, Zone, InstanceID string
	Labels                     []KV
}

// Workload is a Deployment and the Service in front of it.
type Workload struct {
	Name, Namespace string
	ReplicaSet      string // the current ReplicaSet's name
	Image, Version  string
	// Endpoints are the HTTP routes it serves; Calls are the workloads it
	// calls (indexes into Cluster.Workloads).
	Endpoints []string
	Calls     []int
	Pods      []int // indexes into Cluster.Pods
}

// Pod is a pod with one application container.
type Pod struct {
	Name, UID, IP, ContainerID string
	Workload, Node             int // indexes
	StartTime                  string
	Labels, Annotations, Env   []KV
}

// NewCluster generates a cluster of the given shape.
func NewCluster(s Shape, seed uint64) *Cluster {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	c := &Cluster{Name: "prod-eu1", Region: "eu-west-1"}
	teams := []string{"payments", "checkout", "catalog", "search", "identity", "shipping", "pricing", "reviews",
		"ads", "recommendations", "inventory", "loyalty", "notifications", "fraud", "billing", "media", "gateway",
		"analytics", "support", "platform"}
	for i := 0; i < s.Namespaces; i++ {
		c.Namespaces = append(c.Namespaces, fmt.Sprintf("%s-%s", teams[i%len(teams)], []string{"prod", "edge", "batch"}[i/len(teams)%3]))
	}
	for i := 0; i < s.Nodes; i++ {
		zone := fmt.Sprintf("%s%c", c.Region, 'a'+i%3)
		c.Nodes = append(c.Nodes, Node{
			Name:       fmt.Sprintf("ip-10-0-%d-%d.%s.compute.internal", 16+i/250, i%250+4, c.Region),
			IP:         fmt.Sprintf("10.0.%d.%d", 16+i/250, i%250+4),
			Zone:       zone,
			InstanceID: fmt.Sprintf("i-0%016x", rng.Uint64()>>4),
			Labels: []KV{{"kubernetes.io/os", "linux"}, {"node.kubernetes.io/instance-type", []string{"m6i.2xlarge", "c6i.4xlarge", "r6i.2xlarge"}[i%3]},
				{"topology.kubernetes.io/zone", zone}, {"topology.kubernetes.io/region", c.Region}},
		})
	}
	words := []string{"api", "worker", "gateway", "store", "indexer", "sync", "router", "cache", "scheduler", "reader", "writer", "bff"}
	for i := 0; i < s.Workloads; i++ {
		ns := i % s.Namespaces
		team := strings.SplitN(c.Namespaces[ns], "-", 2)[0]
		name := fmt.Sprintf("%s-%s", team, words[(i/s.Namespaces)%len(words)])
		if i/s.Namespaces >= len(words) {
			name = fmt.Sprintf("%s-%d", name, i/s.Namespaces/len(words))
		}
		w := Workload{
			Name: name, Namespace: c.Namespaces[ns],
			ReplicaSet: fmt.Sprintf("%s-%s", name, podHash(rng, 10)),
			Image:      fmt.Sprintf("registry.example.com/%s/%s", team, name),
			Version:    fmt.Sprintf("v%d.%d.%d", 1+rng.IntN(4), rng.IntN(30), rng.IntN(10)),
		}
		// Services have 5-40 endpoints; a few dominate (see Generator).
		for e := 0; e < 5+rng.IntN(36); e++ {
			w.Endpoints = append(w.Endpoints, endpoint(rng, team, e))
		}
		c.Workloads = append(c.Workloads, w)
	}
	// A layered call graph: each workload calls up to three others with a
	// higher index, so requests fan out and end at leaf stores.
	for i := range c.Workloads {
		for k := 0; k < 3 && i+1 < len(c.Workloads); k++ {
			c.Workloads[i].Calls = append(c.Workloads[i].Calls, i+1+rng.IntN(min(40, len(c.Workloads)-i-1)))
		}
	}
	for i := 0; i < s.Pods; i++ {
		wi := i % s.Workloads
		w := &c.Workloads[wi]
		p := Pod{
			Name:        fmt.Sprintf("%s-%s", w.ReplicaSet, podHash(rng, 5)),
			UID:         fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff, rng.Uint32()&0xfff, rng.Uint32()&0x3fff|0x8000, rng.Uint64()&0xffffffffffff),
			IP:          fmt.Sprintf("10.244.%d.%d", i/250, i%250+2),
			ContainerID: fmt.Sprintf("%016x%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()),
			Workload:    wi,
			Node:        rng.IntN(s.Nodes),
			StartTime:   fmt.Sprintf("2026-11-%02dT%02d:%02d:%02dZ", 1+rng.IntN(20), rng.IntN(24), rng.IntN(60), rng.IntN(60)),
		}
		p.Labels = podLabels(s.Labels, w, c.Namespaces, rng)
		p.Annotations = podAnnotations(s.Annotations, w, rng)
		p.Env = podEnv(s.Env, w, rng)
		w.Pods = append(w.Pods, i)
		c.Pods = append(c.Pods, p)
	}
	return c
}

func podHash(rng *rand.Rand, n int) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(b)
}

func endpoint(rng *rand.Rand, team string, i int) string {
	nouns := []string{"orders", "items", "users", "sessions", "carts", "prices", "invoices", "events", "products", "accounts", "tokens", "reports"}
	n := nouns[(i+rng.IntN(3))%len(nouns)]
	switch i % 4 {
	case 0:
		return fmt.Sprintf("/api/v%d/%s/%s", 1+i%2, team, n)
	case 1:
		return fmt.Sprintf("/api/v%d/%s/%s/{id}", 1+i%2, team, n)
	case 2:
		return fmt.Sprintf("/api/v1/%s/{id}/%s", n, nouns[(i*7)%len(nouns)])
	}
	return fmt.Sprintf("/internal/%s/%s/%d", team, n, i)
}

// podLabels are the usual app/helm labels plus team-specific ones, up to n.
func podLabels(n int, w *Workload, namespaces []string, rng *rand.Rand) []KV {
	team := strings.SplitN(w.Namespace, "-", 2)[0]
	all := []KV{
		{"app", w.Name},
		{"app.kubernetes.io/name", w.Name},
		{"app.kubernetes.io/instance", w.Name + "-" + w.Namespace},
		{"app.kubernetes.io/version", w.Version},
		{"app.kubernetes.io/component", []string{"backend", "frontend", "worker", "database"}[rng.IntN(4)]},
		{"app.kubernetes.io/part-of", team},
		{"app.kubernetes.io/managed-by", "Helm"},
		{"helm.sh/chart", fmt.Sprintf("%s-%d.%d.%d", w.Name, rng.IntN(5), rng.IntN(20), rng.IntN(10))},
		{"pod-template-hash", w.ReplicaSet[strings.LastIndexByte(w.ReplicaSet, '-')+1:]},
		{"team", team},
		{"cost-center", fmt.Sprintf("cc-%04d", 1000+rng.IntN(len(namespaces))*37)},
		{"tier", []string{"gold", "silver", "bronze"}[rng.IntN(3)]},
	}
	for len(all) < n {
		all = append(all, KV{fmt.Sprintf("example.com/flag-%d", len(all)), fmt.Sprintf("%t", rng.IntN(2) == 0)})
	}
	return all[:n]
}

// podAnnotations include the long ones production pods carry: config
// checksums, Prometheus scrape settings, sidecar status JSON.
func podAnnotations(n int, w *Workload, rng *rand.Rand) []KV {
	hex := func(bytes int) string {
		var sb strings.Builder
		for i := 0; i < bytes; i++ {
			fmt.Fprintf(&sb, "%02x", rng.IntN(256))
		}
		return sb.String()
	}
	all := []KV{
		{"checksum/config", hex(32)},
		{"prometheus.io/scrape", "true"},
		{"prometheus.io/port", fmt.Sprint(8000 + rng.IntN(2000))},
		{"sidecar.istio.io/status", fmt.Sprintf(`{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy","istio-data","istio-podinfo","istio-token","istiod-ca-cert"],"imagePullSecrets":null,"revision":"1-%d-%d"}`, 20+rng.IntN(4), rng.IntN(10))},
		{"kubectl.kubernetes.io/restartedAt", fmt.Sprintf("2026-11-%02dT%02d:%02d:%02dZ", 1+rng.IntN(20), rng.IntN(24), rng.IntN(60), rng.IntN(60))},
		{"checksum/secrets", hex(32)},
		{"example.com/owner", fmt.Sprintf("%s@example.com", strings.SplitN(w.Namespace, "-", 2)[0])},
	}
	for len(all) < n {
		all = append(all, KV{fmt.Sprintf("example.com/note-%d", len(all)), hex(20)})
	}
	return all[:n]
}

// podEnv are a container's plain env values: mostly shared by the
// workload's pods, a few per pod.
func podEnv(n int, w *Workload, rng *rand.Rand) []KV {
	team := strings.SplitN(w.Namespace, "-", 2)[0]
	all := []KV{
		{"JAVA_TOOL_OPTIONS", "-XX:MaxRAMPercentage=75 -XX:+UseG1GC -Dfile.encoding=UTF-8"},
		{"SPRING_PROFILES_ACTIVE", "prod"},
		{"LOG_LEVEL", []string{"INFO", "WARN"}[rng.IntN(2)]},
		{"SERVER_PORT", "8080"},
		{"MANAGEMENT_PORT", "8081"},
		{"DB_HOST", fmt.Sprintf("%s-db.%s.svc.cluster.local", team, w.Namespace)},
		{"DB_POOL_SIZE", fmt.Sprint(10 + rng.IntN(40))},
		{"REDIS_URL", fmt.Sprintf("redis://%s-cache.%s.svc.cluster.local:6379/0", team, w.Namespace)},
		{"KAFKA_BOOTSTRAP_SERVERS", "kafka-0.kafka.data.svc:9092,kafka-1.kafka.data.svc:9092,kafka-2.kafka.data.svc:9092"},
		{"OTEL_SERVICE_NAME", w.Name},
		{"OTEL_EXPORTER_OTLP_ENDPOINT", "http://weftcol.observability.svc:4317"},
		{"OTEL_RESOURCE_ATTRIBUTES", fmt.Sprintf("service.namespace=%s,deployment.environment=prod", w.Namespace)},
		{"FEATURE_FLAGS", fmt.Sprintf("new-checkout=%t,fast-search=%t", rng.IntN(2) == 0, rng.IntN(2) == 0)},
		{"TZ", "UTC"},
		{"LANG", "C.UTF-8"},
		{"APP_VERSION", w.Version},
		{"HTTP_TIMEOUT_MS", fmt.Sprint(500 * (1 + rng.IntN(10)))},
		{"MAX_INFLIGHT", fmt.Sprint(64 << rng.IntN(4))},
		{"REGION", "eu-west-1"},
		{"INSTANCE_SEED", fmt.Sprint(rng.Uint32())},
	}
	for len(all) < n {
		all = append(all, KV{fmt.Sprintf("EXTRA_%d", len(all)), fmt.Sprint(rng.Uint32())})
	}
	return all[:n]
}
