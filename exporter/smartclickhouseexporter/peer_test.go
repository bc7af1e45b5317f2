package smartclickhouseexporter

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
	"github.com/weftobs/weft/extension/k8smetadataextension"
	"github.com/weftobs/weft/internal/vocab"
)

// staticLookup answers ByIP from a map; the real extension is exercised by
// the end-to-end tests.
type staticLookup map[netip.Addr]k8smetadataextension.Resource

func (s staticLookup) ByIP(vpc uint32, a netip.Addr) (k8smetadataextension.Resource, bool) {
	r, ok := s[a]
	return r, ok && r.VPC == vpc
}
func (staticLookup) ByPodUID(string) (k8smetadataextension.Resource, bool) {
	return k8smetadataextension.Resource{}, false
}
func (staticLookup) ByContainerID(string) (k8smetadataextension.Resource, bool) {
	return k8smetadataextension.Resource{}, false
}
func (staticLookup) ByService(uint32, netip.Addr, uint16) (k8smetadataextension.Resource, bool) {
	return k8smetadataextension.Resource{}, false
}
func (staticLookup) Ready() bool { return true }

func idColumn(name string) int {
	for i, c := range schema.IDColumns {
		if c.Name == name {
			return i
		}
	}
	panic(name)
}

// With metadata set, the peer of a span without weft.peer.* ids is looked
// up from its peer IP while the row is built (smart_encoding's
// peer_attributes: false); ids a span carries win.
func TestPeerFromLookup(t *testing.T) {
	db := k8smetadataextension.Resource{VPC: 3, Cluster: 1, Namespace: 4, Workload: 8,
		WorkloadKind: k8smetadataextension.WorkloadStatefulSet, Pod: 200}
	lookup := staticLookup{netip.MustParseAddr("10.244.1.9"): db}

	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutInt(vocab.VPCID, 3)
	rs.Resource().Attributes().PutInt(vocab.PodID, 100)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	client := spans.AppendEmpty()
	client.SetKind(ptrace.SpanKindClient)
	client.Attributes().PutStr("server.address", "10.244.1.9")
	tagged := spans.AppendEmpty()
	tagged.SetKind(ptrace.SpanKindClient)
	tagged.Attributes().PutStr("server.address", "10.244.1.9")
	tagged.Attributes().PutInt(vocab.PeerPrefix+"pod_id", 555)
	unknown := spans.AppendEmpty()
	unknown.SetKind(ptrace.SpanKindClient)
	unknown.Attributes().PutStr("server.address", "10.99.0.1")

	rows := spanRows{lookup: lookup}
	rows.addTraces(td, skipped{})
	peer := rows.sides[1] // a client span's peer is the server, side 1
	pod := idColumn("pod_id")
	assert.Equal(t, []uint32{200, 555, 0}, peer.ids[pod])
	assert.Equal(t, []uint32{8, 0, 0}, peer.ids[idColumn("workload_id")])
	assert.Equal(t, []uint32{vocab.AutoTypePod, 0, 0}, peer.ids[idColumn("auto_instance_type")])
	assert.Equal(t, []uint32{vocab.AutoTypeWorkloadMin + 1, 0, 0}, peer.ids[idColumn("auto_service_type")])
	assert.Equal(t, []uint32{100, 100, 100}, rows.sides[0].ids[pod], "the local side from the resource")

	// Without metadata nothing is looked up.
	rows = spanRows{}
	rows.addTraces(td, skipped{})
	assert.Equal(t, []uint32{0, 555, 0}, rows.sides[1].ids[pod])
}
