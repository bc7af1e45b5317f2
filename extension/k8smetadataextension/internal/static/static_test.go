package static

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
)

func write(t *testing.T, text string) string {
	path := filepath.Join(t.TempDir(), "static.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

func TestLoad(t *testing.T) {
	recs, err := Load(write(t, `
regions: [{name: eu-west}]
zones: [{name: eu-west-1a, region: eu-west}]
vpcs: [{id: 3, name: prod}]
subnets: [{name: data, vpc: 3, zone: eu-west-1a, cidr: 10.0.5.0/24}]
hosts: [{name: pg-primary, vpc: 3, ips: [10.0.5.10, "::ffff:10.0.5.11"]}]
`))
	require.NoError(t, err)
	require.Len(t, recs, 5)
	host := recs[4]
	assert.Equal(t, model.Record{Kind: model.KindHost, UID: "static:host:pg-primary", Name: "pg-primary",
		Parent: model.Ref{Kind: model.KindVPC, UID: "static:vpc:3"},
		IPs:    []netip.Addr{netip.MustParseAddr("10.0.5.10"), netip.MustParseAddr("10.0.5.11")}}, host)
	assert.Equal(t, model.Ref{Kind: model.KindRegion, UID: "static:region:eu-west"}, recs[1].Parent)
	n, ok := VPCNumber(recs[2].UID)
	assert.True(t, ok)
	assert.Equal(t, uint32(3), n)
}

func TestLoadEmpty(t *testing.T) {
	recs, err := Load(write(t, ""))
	require.NoError(t, err)
	assert.Empty(t, recs)
}

func TestLoadRejects(t *testing.T) {
	_, err := Load(write(t, `
vpcs: [{id: 0, name: nope}]
zones: [{name: z, region: missing}]
subnets: [{name: s, vpc: 9, cidr: 10.0.0.0/33}]
hosts: [{name: h, ips: [not-an-ip]}, {ips: [10.0.0.1]}]
`))
	require.Error(t, err)
	for _, want := range []string{"vpcs[0] nope: id must be set", `zones[0] z: region "missing" is not in regions`,
		"subnets[0] s: vpc 9 is not in vpcs", "subnets[0] s: cidr", "hosts[0] h", "hosts[1]: name is empty"} {
		assert.ErrorContains(t, err, want)
	}
	_, err = Load(write(t, "hosts: [{name: h, address: 10.0.0.1}]"))
	assert.ErrorContains(t, err, "field address not found", "unknown keys are mistakes")
	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.ErrorContains(t, err, "no such file")
}
