package vocab

import "go.opentelemetry.io/collector/pdata/ptrace"

// Resource id attributes: what the smart_encoding processor writes instead of
// the string attributes the ids determine, and what the smart_clickhouse
// exporter stores as integer columns. Names, labels and annotations come back
// at query time from dictionaries over the k8s_metadata database.
//
// The ids of the resource that emitted a record (the local side) are
// resource attributes, named as below. The ids of the other side of a
// client or server span (the peer) are span attributes with the PeerPrefix.
// Which is which side of a call follows DeepFlow: side 0 is the client, side
// 1 the server. For SERVER and CONSUMER spans the emitting resource is side 1
// and the peer side 0; for CLIENT and PRODUCER spans the reverse; other spans
// have only the local side. An id that is not there is 0: unknown, never
// guessed.
//
// All values are Int attributes.
const (
	VPCID        = "weft.vpc_id"        // UInt32 in storage
	ClusterID    = "weft.cluster_id"    // UInt16
	NodeID       = "weft.node_id"       // UInt32
	NamespaceID  = "weft.namespace_id"  // UInt16
	WorkloadID   = "weft.workload_id"   // UInt32
	WorkloadKind = "weft.workload_kind" // UInt8: k8smetadataextension.WorkloadKind
	PodID        = "weft.pod_id"        // UInt32
	ServiceID    = "weft.service_id"    // UInt32
	HostID       = "weft.host_id"       // UInt32: a host outside Kubernetes

	// AutoInstanceType/ID name the most specific thing found: the pod,
	// else the node, else a static host, else the IP itself (id 0).
	AutoInstanceType = "weft.auto_instance_type" // UInt8
	AutoInstanceID   = "weft.auto_instance_id"   // UInt32
	// AutoServiceType/ID name the service-level grouping: the Kubernetes
	// service, else the workload, else the node or host, else the cluster.
	AutoServiceType = "weft.auto_service_type" // UInt8
	AutoServiceID   = "weft.auto_service_id"   // UInt32

	// PeerPrefix prefixes the peer side's ids on spans: weft.peer.pod_id.
	PeerPrefix = "weft.peer."
)

// Where addresses are read from, by default: smart_encoding's
// local_ip_attributes and peer_ip_attributes, and what smart_clickhouse
// stores as the IP columns and resolves a peer from.
var (
	// LocalIPAttributes are resource attributes holding the emitting
	// resource's IP, in order.
	LocalIPAttributes = []string{"k8s.pod.ip", "host.ip", "net.host.ip"}
	// PeerIPAttributes are span attributes holding the other side's IP of a
	// client or server span, in order; OwnAddress names the one to skip.
	PeerIPAttributes = []string{"client.address", "server.address", "network.peer.address", "net.peer.ip", "net.sock.peer.addr"}
)

// OwnAddress is the attribute among PeerIPAttributes that names a span's
// own side, not its peer: server.address on server and consumer spans,
// client.address on client and producer spans. Other spans have no peer
// (""), so no peer is looked up for them.
func OwnAddress(kind ptrace.SpanKind) string {
	switch kind {
	case ptrace.SpanKindServer, ptrace.SpanKindConsumer:
		return "server.address"
	case ptrace.SpanKindClient, ptrace.SpanKindProducer:
		return "client.address"
	}
	return ""
}

// Auto types, DeepFlow's codes where DeepFlow has one.
const (
	AutoTypeIP          = 255 // nothing known: the IP itself
	AutoTypePod         = 10
	AutoTypeNode        = 14
	AutoTypeHost        = 6 // a host from k8s_metadata's static resources
	AutoTypeService     = 11
	AutoTypeCluster     = 103
	AutoTypeWorkloadMin = 130 // 130 + WorkloadKind - 1: 130 Deployment ... 135 CronJob
)

// PeerIDs are the peer-side attribute names, in the order of ResourceIDs.
var PeerIDs = func() [len(ResourceIDs)]string {
	var p [len(ResourceIDs)]string
	for i, n := range ResourceIDs {
		p[i] = PeerPrefix + n[len("weft."):]
	}
	return p
}()

// ResourceIDs lists the id attributes in a fixed order.
var ResourceIDs = [...]string{VPCID, ClusterID, NodeID, NamespaceID, WorkloadID, WorkloadKind, PodID, ServiceID, HostID,
	AutoInstanceType, AutoInstanceID, AutoServiceType, AutoServiceID}
