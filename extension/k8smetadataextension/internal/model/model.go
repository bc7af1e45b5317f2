// Package model is the k8s_metadata extension's vocabulary: the kinds of
// resources it keeps, the record the Kubernetes watcher writes, and the row
// the database gives back with ids resolved. The watcher (internal/kube), the
// database (internal/store) and the lookup snapshot speak only in these
// types.
package model

import (
	"math"
	"net/netip"
	"time"
)

// Kind is a kind of resource. The numbers are stored in the database: never
// renumber.
type Kind uint8

const (
	KindCluster   Kind = 1
	KindNode      Kind = 2
	KindNamespace Kind = 3
	KindWorkload  Kind = 4
	KindPod       Kind = 5
	KindService   Kind = 6
	KindIngress   Kind = 7
	// Resources outside Kubernetes, from the static resources file.
	KindRegion Kind = 8
	KindZone   Kind = 9
	KindVPC    Kind = 10
	KindSubnet Kind = 11
	KindHost   Kind = 12
)

// Kinds lists every kind, in the order the database tables are created.
var Kinds = []Kind{KindCluster, KindNode, KindNamespace, KindWorkload, KindPod, KindService, KindIngress,
	KindRegion, KindZone, KindVPC, KindSubnet, KindHost}

var kindNames = [...]string{
	KindCluster: "cluster", KindNode: "node", KindNamespace: "namespace", KindWorkload: "workload",
	KindPod: "pod", KindService: "service", KindIngress: "ingress", KindRegion: "region", KindZone: "zone",
	KindVPC: "vpc", KindSubnet: "subnet", KindHost: "host",
}

// String is the kind's name, as in table names (ch_pod) and metrics.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// MaxID is the largest id of the kind: what fits the ClickHouse column that
// stores it (UInt16 for low-cardinality kinds, UInt32 for the rest).
func (k Kind) MaxID() uint32 {
	switch k {
	case KindNode, KindWorkload, KindPod, KindService, KindHost:
		return math.MaxUint32
	}
	return math.MaxUint16
}

// WorkloadKind is the controller kind of a workload. The numbers are stored.
type WorkloadKind uint8

const (
	WorkloadNone        WorkloadKind = 0 // a pod without a controller
	WorkloadDeployment  WorkloadKind = 1
	WorkloadStatefulSet WorkloadKind = 2
	WorkloadDaemonSet   WorkloadKind = 3
	WorkloadReplicaSet  WorkloadKind = 4 // a ReplicaSet no Deployment owns
	WorkloadJob         WorkloadKind = 5 // a Job no CronJob owns
	WorkloadCronJob     WorkloadKind = 6
)

var workloadNames = [...]string{"", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}

// String is the Kubernetes kind name ("" for none).
func (w WorkloadKind) String() string {
	if int(w) < len(workloadNames) {
		return workloadNames[w]
	}
	return ""
}

// Ref names a resource by kind and uid.
type Ref struct {
	Kind Kind
	UID  string
}

// ServicePort is one port of a Service.
type ServicePort struct {
	Name       string
	Protocol   string // TCP, UDP, SCTP
	Port       uint16
	TargetPort string // a number or a named container port
	NodePort   uint16
}

// Record is one resource as the watcher sees it. Relations are by uid: the
// store gives every uid an id when it first sees it, whichever of the two
// resources is written first.
type Record struct {
	Kind Kind
	// UID is the Kubernetes uid; for the cluster its name; for static
	// resources "static:<kind>:<name>".
	UID       string
	Name      string
	Namespace string // namespace name, for namespaced kinds

	NamespaceUID string // pods, workloads, services, ingresses
	NodeUID      string // pods
	WorkloadUID  string // pods: the top controller (Deployment, not ReplicaSet)
	WorkloadKind WorkloadKind
	ServiceUIDs  []string // pods: the services whose selector matches

	Labels      map[string]string
	Annotations map[string]string
	Env         map[string]string // pods: plain env values of all containers

	// IPs: pod IPs (both families), node addresses, service cluster IPs,
	// host IPs of static hosts.
	IPs          []netip.Addr
	HostIP       netip.Addr // pods
	HostNetwork  bool       // pods sharing the node's IP
	ContainerIDs []string   // pods: runtime-prefix-free container ids
	Ports        []ServicePort
	Selector     map[string]string // services
	ServiceType  string            // services: ClusterIP, NodePort, LoadBalancer, ExternalName

	// Parent is the containing static resource: zone for a subnet, region
	// for a zone, VPC for a subnet or host.
	Parent Ref
}

// Row is a resource as the database keeps it, with its id and the ids of
// its relations: what lookups are built from.
type Row struct {
	Kind      Kind
	ID        uint32
	UID       string
	Name      string
	Namespace string

	ClusterID    uint32
	NamespaceID  uint32
	NodeID       uint32
	WorkloadID   uint32
	WorkloadKind WorkloadKind
	ServiceID    uint32 // pods: the first matching service
	// ParentKind and ParentID: Record.Parent resolved (static resources:
	// a subnet's zone or VPC, a host's VPC).
	ParentKind Kind
	ParentID   uint32

	IPs          []netip.Addr
	HostNetwork  bool
	ContainerIDs []string
	Ports        []ServicePort

	Deleted bool
	// Version is the change counter value of the row's last write; rows
	// are read back in version order.
	Version   int64
	UpdatedAt time.Time
}
