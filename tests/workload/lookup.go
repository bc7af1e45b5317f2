package workload

import (
	"net/netip"

	"github.com/weftobs/weft/extension/k8smetadataextension"
)

// IDs of the cluster's resources as the k8s_metadata extension would give
// them: index + 1 for pods, nodes, namespaces and workloads (each workload's
// Service has its workload's id), cluster 1.
type lookup struct {
	c     *Cluster
	vpc   uint32
	byIP  map[netip.Addr]k8smetadataextension.Resource
	byUID map[string]k8smetadataextension.Resource
}

// Lookup answers the way k8s_metadata answers for this cluster in VPC vpc,
// from memory: for benchmarks of the layers above it, whose cost must not
// include the database.
func (c *Cluster) Lookup(vpc uint32) k8smetadataextension.Lookup {
	l := &lookup{c: c, vpc: vpc, byIP: map[netip.Addr]k8smetadataextension.Resource{}, byUID: map[string]k8smetadataextension.Resource{}}
	ns := map[string]uint16{}
	for i, n := range c.Namespaces {
		ns[n] = uint16(i + 1)
	}
	for i, n := range c.Nodes {
		l.byIP[netip.MustParseAddr(n.IP)] = k8smetadataextension.Resource{VPC: vpc, Cluster: 1, Node: uint32(i + 1)}
	}
	for i, p := range c.Pods {
		w := c.Workloads[p.Workload]
		r := k8smetadataextension.Resource{VPC: vpc, Cluster: 1, Namespace: ns[w.Namespace], Node: uint32(p.Node + 1),
			Workload: uint32(p.Workload + 1), WorkloadKind: k8smetadataextension.WorkloadDeployment, Pod: uint32(i + 1), Service: uint32(p.Workload + 1)}
		l.byIP[netip.MustParseAddr(p.IP)] = r
		l.byUID[p.UID] = r
	}
	return l
}

func (l *lookup) ByIP(vpc uint32, ip netip.Addr) (k8smetadataextension.Resource, bool) {
	if vpc != l.vpc {
		return k8smetadataextension.Resource{}, false
	}
	r, ok := l.byIP[ip.Unmap()]
	return r, ok
}

func (l *lookup) ByPodUID(uid string) (k8smetadataextension.Resource, bool) {
	r, ok := l.byUID[uid]
	return r, ok
}

func (l *lookup) ByContainerID(string) (k8smetadataextension.Resource, bool) {
	return k8smetadataextension.Resource{}, false
}

func (l *lookup) ByService(uint32, netip.Addr, uint16) (k8smetadataextension.Resource, bool) {
	return k8smetadataextension.Resource{}, false
}

func (l *lookup) Ready() bool { return true }
