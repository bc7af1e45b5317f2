package k8smetadataextension

import (
	"net/netip"
	"sync/atomic"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
	"github.com/weftobs/weft/extension/k8smetadataextension/internal/static"
	"github.com/weftobs/weft/internal/vocab"
)

// Lookup is what the k8s_metadata extension serves to other components.
// Find it with host.GetExtensions()[id] and a type assertion:
//
//	ext, ok := host.GetExtensions()[cfg.Metadata]
//	lookup, ok := ext.(k8smetadataextension.Lookup)
//
// Answers come from an immutable snapshot that is swapped atomically when
// the database changes: every method is safe for concurrent use, takes no
// lock and allocates nothing.
type Lookup interface {
	// ByIP finds the pod, node or service (cluster IP) that has ip in the
	// VPC vpc. Pods on the host network are found as their node.
	ByIP(vpc uint32, ip netip.Addr) (Resource, bool)
	// ByPodUID finds a pod by its Kubernetes uid.
	ByPodUID(uid string) (Resource, bool)
	// ByContainerID finds the pod of a container, by the id the runtime
	// reports (without a "containerd://" prefix).
	ByContainerID(id string) (Resource, bool)
	// ByService finds a service by one of its cluster IPs and ports.
	ByService(vpc uint32, clusterIP netip.Addr, port uint16) (Resource, bool)
	// Ready reports whether the first snapshot has been loaded; before,
	// every lookup misses.
	Ready() bool
}

// WorkloadKind is the controller kind of a workload (Deployment,
// StatefulSet, ...); its String is the Kubernetes kind.
type WorkloadKind = model.WorkloadKind

// Workload kinds, as stored in the database and in telemetry.
const (
	WorkloadNone        = model.WorkloadNone
	WorkloadDeployment  = model.WorkloadDeployment
	WorkloadStatefulSet = model.WorkloadStatefulSet
	WorkloadDaemonSet   = model.WorkloadDaemonSet
	WorkloadReplicaSet  = model.WorkloadReplicaSet
	WorkloadJob         = model.WorkloadJob
	WorkloadCronJob     = model.WorkloadCronJob
)

// Resource holds the ids of everything a lookup found: the resource itself
// and what it belongs to. 0 means none or unknown. Id widths are those of
// the ClickHouse columns that store them.
type Resource struct {
	VPC          uint32
	Cluster      uint16
	Namespace    uint16
	Node         uint32
	Workload     uint32
	WorkloadKind WorkloadKind
	Pod          uint32
	Service      uint32
	// Host is a host from the static resources file (outside Kubernetes).
	Host uint32
}

// AutoInstance is the most specific resource known, as (type, id) in the
// vocabulary of internal/vocab: the pod, else the node, else a static host,
// else the IP itself (id 0).
func (r Resource) AutoInstance() (typ uint8, id uint32) {
	switch {
	case r.Pod != 0:
		return vocab.AutoTypePod, r.Pod
	case r.Node != 0:
		return vocab.AutoTypeNode, r.Node
	case r.Host != 0:
		return vocab.AutoTypeHost, r.Host
	}
	return vocab.AutoTypeIP, 0
}

// AutoService is the service-level grouping known: the Kubernetes service,
// else the workload (by kind), else the node or static host, else the
// cluster.
func (r Resource) AutoService() (typ uint8, id uint32) {
	switch {
	case r.Service != 0:
		return vocab.AutoTypeService, r.Service
	case r.Workload != 0 && r.WorkloadKind != 0:
		return uint8(vocab.AutoTypeWorkloadMin + int(r.WorkloadKind) - 1), r.Workload
	case r.Node != 0:
		return vocab.AutoTypeNode, r.Node
	case r.Host != 0:
		return vocab.AutoTypeHost, r.Host
	case r.Cluster != 0:
		return vocab.AutoTypeCluster, uint32(r.Cluster)
	}
	return vocab.AutoTypeIP, 0
}

// IDs are r's ids, then its AutoInstance and AutoService (type, id), in the
// order of vocab.ResourceIDs.
func (r Resource) IDs() [len(vocab.ResourceIDs)]uint32 {
	it, iid := r.AutoInstance()
	st, sid := r.AutoService()
	return [...]uint32{r.VPC, uint32(r.Cluster), r.Node, uint32(r.Namespace), r.Workload, uint32(r.WorkloadKind),
		r.Pod, r.Service, r.Host, uint32(it), iid, uint32(st), sid}
}

// Index keys hold addresses in their 16-byte form: a key without pointers
// hashes fastest, and an IPv4 address and its IPv4-mapped IPv6 form are the
// same key.
type ipKey struct {
	vpc uint32
	ip  [16]byte
}

type serviceKey struct {
	vpc  uint32
	port uint16
	ip   [16]byte
}

func keyIP(vpc uint32, ip netip.Addr) ipKey { return ipKey{vpc: vpc, ip: ip.As16()} }

func keyService(vpc uint32, ip netip.Addr, port uint16) serviceKey {
	return serviceKey{vpc: vpc, port: port, ip: ip.As16()}
}

// snapshot is one immutable generation of the lookup indexes.
type snapshot struct {
	version     int64
	byIP        map[ipKey]Resource
	byPodUID    map[string]Resource
	byContainer map[string]Resource
	byService   map[serviceKey]Resource
}

// lookups is the Lookup implementation: the current snapshot and counters.
type lookups struct {
	snap         atomic.Pointer[snapshot]
	hits, misses atomic.Uint64
}

func (l *lookups) count(ok bool) {
	if ok {
		l.hits.Add(1)
	} else {
		l.misses.Add(1)
	}
}

// noSnapshot is the snapshot before the first load: every lookup misses.
var noSnapshot snapshot

// current is the snapshot lookups read.
func (l *lookups) current() *snapshot {
	if s := l.snap.Load(); s != nil {
		return s
	}
	return &noSnapshot
}

func (l *lookups) ByIP(vpc uint32, ip netip.Addr) (Resource, bool) {
	r, ok := l.current().byIP[keyIP(vpc, ip)]
	l.count(ok)
	return r, ok
}

func (l *lookups) ByPodUID(uid string) (Resource, bool) {
	r, ok := l.current().byPodUID[uid]
	l.count(ok)
	return r, ok
}

func (l *lookups) ByContainerID(id string) (Resource, bool) {
	r, ok := l.current().byContainer[id]
	l.count(ok)
	return r, ok
}

func (l *lookups) ByService(vpc uint32, ip netip.Addr, port uint16) (Resource, bool) {
	r, ok := l.current().byService[keyService(vpc, ip, port)]
	l.count(ok)
	return r, ok
}

func (l *lookups) Ready() bool { return l.snap.Load() != nil }

// rows is the refresher's view of the database: every live row by kind
// and id, updated from the change feed.
type rows map[rowKey]model.Row

type rowKey struct {
	kind model.Kind
	id   uint32
}

// apply folds changed rows in; deleted rows leave the indexes (their IPs may
// already belong to a new pod).
func (rs rows) apply(changes []model.Row) {
	for _, r := range changes {
		k := rowKey{r.Kind, r.ID}
		if r.Deleted {
			delete(rs, k)
		} else {
			rs[k] = r
		}
	}
}

// build makes a snapshot of the rows. vpcOf gives each cluster's VPC.
func (rs rows) build(version int64, vpcOf func(clusterID uint32) uint32) *snapshot {
	s := &snapshot{
		version:     version,
		byIP:        map[ipKey]Resource{},
		byPodUID:    map[string]Resource{},
		byContainer: map[string]Resource{},
		byService:   map[serviceKey]Resource{},
	}
	// Static VPCs carry the VPC number lookups use in their uid.
	vpcNumber := map[uint32]uint32{}
	for _, r := range rs {
		if r.Kind == model.KindVPC {
			if n, ok := static.VPCNumber(r.UID); ok {
				vpcNumber[r.ID] = n
			}
		}
	}
	// Nodes, services and static hosts first: a pod IP that equals a node
	// IP (host network) must not shadow the node.
	for _, r := range rs {
		vpc := vpcOf(r.ClusterID)
		switch r.Kind {
		case model.KindNode:
			res := Resource{VPC: vpc, Cluster: uint16(r.ClusterID), Node: r.ID}
			for _, ip := range r.IPs {
				s.byIP[keyIP(vpc, ip)] = res
			}
		case model.KindHost:
			hostVPC := uint32(0)
			if r.ParentKind == model.KindVPC {
				hostVPC = vpcNumber[r.ParentID]
			}
			res := Resource{VPC: hostVPC, Host: r.ID}
			for _, ip := range r.IPs {
				s.byIP[keyIP(hostVPC, ip)] = res
			}
		case model.KindService:
			res := Resource{VPC: vpc, Cluster: uint16(r.ClusterID), Namespace: uint16(r.NamespaceID), Service: r.ID}
			for _, ip := range r.IPs {
				s.byIP[keyIP(vpc, ip)] = res
				for _, p := range r.Ports {
					s.byService[keyService(vpc, ip, p.Port)] = res
				}
			}
		}
	}
	for _, r := range rs {
		if r.Kind != model.KindPod {
			continue
		}
		vpc := vpcOf(r.ClusterID)
		res := Resource{
			VPC: vpc, Cluster: uint16(r.ClusterID), Namespace: uint16(r.NamespaceID), Node: r.NodeID,
			Workload: r.WorkloadID, WorkloadKind: r.WorkloadKind, Pod: r.ID, Service: r.ServiceID,
		}
		s.byPodUID[r.UID] = res
		for _, c := range r.ContainerIDs {
			s.byContainer[c] = res
		}
		if r.HostNetwork {
			continue
		}
		for _, ip := range r.IPs {
			if _, taken := s.byIP[keyIP(vpc, ip)]; !taken {
				s.byIP[keyIP(vpc, ip)] = res
			}
		}
	}
	return s
}
