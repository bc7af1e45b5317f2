package k8smetadataextension

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
	"github.com/weftobs/weft/internal/vocab"
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func testRows() rows {
	rs := rows{}
	rs.apply([]model.Row{
		{Kind: model.KindNode, ID: 3, ClusterID: 1, IPs: []netip.Addr{ip("192.168.0.5")}},
		{Kind: model.KindService, ID: 9, ClusterID: 1, NamespaceID: 2, IPs: []netip.Addr{ip("10.96.0.20")},
			Ports: []model.ServicePort{{Port: 80}, {Port: 443}}},
		{Kind: model.KindPod, ID: 100, UID: "uid-100", ClusterID: 1, NamespaceID: 2, NodeID: 3, WorkloadID: 7,
			WorkloadKind: model.WorkloadDeployment, ServiceID: 9, IPs: []netip.Addr{ip("10.244.0.8"), ip("fd00::8")},
			ContainerIDs: []string{"c1", "c2"}},
		// A pod on the host network: its IP is the node's.
		{Kind: model.KindPod, ID: 101, UID: "uid-101", ClusterID: 1, NamespaceID: 2, NodeID: 3, HostNetwork: true,
			IPs: []netip.Addr{ip("192.168.0.5")}},
		// A host outside Kubernetes, in static VPC 10.
		{Kind: model.KindVPC, ID: 1, UID: "static:vpc:10", ClusterID: 1},
		{Kind: model.KindHost, ID: 4, UID: "static:host:pg", ClusterID: 1, ParentKind: model.KindVPC, ParentID: 1,
			IPs: []netip.Addr{ip("10.0.5.10")}},
		// Another cluster, in another VPC, with an overlapping pod IP.
		{Kind: model.KindPod, ID: 200, UID: "uid-200", ClusterID: 2, NamespaceID: 5, IPs: []netip.Addr{ip("10.244.0.8")}},
	})
	return rs
}

func vpcs(cluster uint32) uint32 { return map[uint32]uint32{1: 10, 2: 20}[cluster] }

func TestLookups(t *testing.T) {
	var l lookups
	_, ok := l.ByIP(10, ip("10.244.0.8"))
	assert.False(t, ok, "no snapshot yet")
	assert.False(t, l.Ready())

	l.snap.Store(testRows().build(5, vpcs))
	require.True(t, l.Ready())
	pod := Resource{VPC: 10, Cluster: 1, Namespace: 2, Node: 3, Workload: 7, WorkloadKind: WorkloadDeployment, Pod: 100, Service: 9}

	r, ok := l.ByIP(10, ip("10.244.0.8"))
	assert.True(t, ok)
	assert.Equal(t, pod, r)
	r, _ = l.ByIP(10, ip("fd00::8"))
	assert.Equal(t, pod, r, "dual stack")
	r, _ = l.ByIP(10, netip.AddrFrom16(ip("10.244.0.8").As16()))
	assert.Equal(t, pod, r, "an IPv4-mapped IPv6 address is the IPv4 address")
	r, _ = l.ByIP(20, ip("10.244.0.8"))
	assert.Equal(t, uint32(200), r.Pod, "the same IP in another VPC is another pod")
	r, _ = l.ByIP(10, ip("192.168.0.5"))
	assert.Equal(t, Resource{VPC: 10, Cluster: 1, Node: 3}, r, "a host-network pod's IP is its node")
	r, _ = l.ByIP(10, ip("10.0.5.10"))
	assert.Equal(t, Resource{VPC: 10, Host: 4}, r, "a static host, in its VPC")
	r, _ = l.ByIP(10, ip("10.96.0.20"))
	assert.Equal(t, Resource{VPC: 10, Cluster: 1, Namespace: 2, Service: 9}, r)
	_, ok = l.ByIP(10, ip("10.244.9.9"))
	assert.False(t, ok, "unknown IPs miss, they are never guessed")

	r, _ = l.ByPodUID("uid-100")
	assert.Equal(t, pod, r)
	r, _ = l.ByContainerID("c2")
	assert.Equal(t, pod, r)
	r, ok = l.ByService(10, ip("10.96.0.20"), 443)
	assert.True(t, ok)
	assert.Equal(t, uint32(9), r.Service)
	_, ok = l.ByService(10, ip("10.96.0.20"), 8080)
	assert.False(t, ok)
	assert.Equal(t, uint64(10), l.hits.Load())
	assert.Equal(t, uint64(3), l.misses.Load())
}

// IDs line up with vocab.ResourceIDs, the names components write them as.
func TestResourceIDsFollowVocab(t *testing.T) {
	r := Resource{VPC: 21, Cluster: 22, Namespace: 23, Node: 24, Workload: 25, WorkloadKind: WorkloadStatefulSet, Pod: 26}
	got := map[string]uint32{}
	for i, v := range r.IDs() {
		got[vocab.ResourceIDs[i]] = v
	}
	assert.Equal(t, map[string]uint32{
		vocab.VPCID: 21, vocab.ClusterID: 22, vocab.NodeID: 24, vocab.NamespaceID: 23, vocab.WorkloadID: 25,
		vocab.WorkloadKind: uint32(WorkloadStatefulSet), vocab.PodID: 26, vocab.ServiceID: 0, vocab.HostID: 0,
		vocab.AutoInstanceType: vocab.AutoTypePod, vocab.AutoInstanceID: 26,
		vocab.AutoServiceType: vocab.AutoTypeWorkloadMin + 1, vocab.AutoServiceID: 25,
	}, got)
}

// A deleted pod leaves the indexes: its IP may already be a new pod's.
func TestDeletedRowsLeave(t *testing.T) {
	rs := testRows()
	rs.apply([]model.Row{{Kind: model.KindPod, ID: 100, Deleted: true}})
	s := rs.build(6, vpcs)
	_, ok := s.byIP[keyIP(10, ip("10.244.0.8"))]
	assert.False(t, ok)
	_, ok = s.byPodUID["uid-100"]
	assert.False(t, ok)
}

// benchSnapshot is a cluster of n pods with two containers each, 200 nodes
// and n/10 services.
func benchSnapshot(n int) *snapshot {
	rs := rows{}
	var batch []model.Row
	for i := 0; i < 200; i++ {
		batch = append(batch, model.Row{Kind: model.KindNode, ID: uint32(i + 1), ClusterID: 1,
			IPs: []netip.Addr{netip.AddrFrom4([4]byte{192, 168, byte(i >> 8), byte(i)})}})
	}
	for i := 0; i < n/10; i++ {
		batch = append(batch, model.Row{Kind: model.KindService, ID: uint32(i + 1), ClusterID: 1,
			IPs: []netip.Addr{netip.AddrFrom4([4]byte{10, 96, byte(i >> 8), byte(i)})}, Ports: []model.ServicePort{{Port: 80}}})
	}
	for i := 0; i < n; i++ {
		batch = append(batch, model.Row{Kind: model.KindPod, ID: uint32(i + 1), UID: fmt.Sprintf("%08x-1111-2222-3333-444444444444", i),
			ClusterID: 1, NamespaceID: 2, NodeID: uint32(i%200 + 1), WorkloadID: uint32(i/10 + 1), ServiceID: uint32(i/10 + 1),
			IPs:          []netip.Addr{netip.AddrFrom4([4]byte{10, 244, byte(i >> 8), byte(i)})},
			ContainerIDs: []string{fmt.Sprintf("%064x", i), fmt.Sprintf("%063xf", i)}})
	}
	rs.apply(batch)
	return rs.build(1, func(uint32) uint32 { return 1 })
}

func BenchmarkLookupByIP(b *testing.B) {
	var l lookups
	l.snap.Store(benchSnapshot(10_000))
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{10, 244, byte(i * 7 >> 8), byte(i * 7)})
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, ok := l.ByIP(1, addrs[i&1023]); !ok {
			b.Fatal("miss")
		}
		i++
	}
}

func BenchmarkLookupByContainerID(b *testing.B) {
	var l lookups
	l.snap.Store(benchSnapshot(10_000))
	id := fmt.Sprintf("%064x", 4242)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := l.ByContainerID(id); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkSnapshotMemory reports the heap a snapshot takes per pod (its
// indexes; the rows it was built from are the refresher's).
func BenchmarkSnapshotMemory(b *testing.B) {
	const n = 20_000
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s := benchSnapshot(n)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/pod")
		runtime.KeepAlive(s)
	}
}
