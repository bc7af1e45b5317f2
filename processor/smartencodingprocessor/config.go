package smartencodingprocessor

import (
	"errors"
	"fmt"
	"slices"

	"go.opentelemetry.io/collector/component"

	"github.com/weftobs/weft/internal/vocab"
)

// Config defines the smart_encoding processor's configuration.
type Config struct {
	// Metadata is the id of the k8s_metadata extension that answers lookups.
	Metadata component.ID `mapstructure:"metadata"`

	// VPCID is the VPC id used for records that do not carry one in
	// VPCIDAttribute.
	VPCID uint32 `mapstructure:"vpc_id"`
	// VPCIDAttribute names a resource attribute holding the VPC id; when it is
	// present on a record it wins over VPCID. Empty means always VPCID.
	VPCIDAttribute string `mapstructure:"vpc_id_attribute"`

	// LocalIPAttributes are resource attributes read in order to find the IP
	// of the resource that emitted a record, when k8s.pod.uid and
	// container.id do not find it.
	LocalIPAttributes []string `mapstructure:"local_ip_attributes"`
	// PeerIPAttributes are span attributes read in order to find the IP of
	// the other side of a client or server span (server.address is skipped
	// on server spans, client.address on client spans: those are their own).
	PeerIPAttributes []string `mapstructure:"peer_ip_attributes"`

	// PeerAttributes writes the peer side's ids on each client and server
	// span (weft.peer.*). Turn it off when smart_clickhouse resolves the
	// peer itself while it builds rows (its `metadata` setting): every Int
	// attribute costs pdata an allocation per span, the exporter's columns
	// cost nothing.
	PeerAttributes bool `mapstructure:"peer_attributes"`

	// Strip lists attribute names, or prefixes ending in "*", to remove once
	// a record has been tagged. Only k8s.* attributes whose resource was found
	// are ever removed: an attribute no id determines stays, whatever this
	// says.
	Strip []string `mapstructure:"strip"`
	// Keep lists attribute names, or prefixes ending in "*", that are never
	// stripped even when Strip matches them.
	Keep []string `mapstructure:"keep"`

	// prevent unkeyed literal initialization
	_ struct{}
}

func createDefaultConfig() component.Config {
	return &Config{
		Metadata:          component.MustNewID("k8s_metadata"),
		PeerAttributes:    true,
		LocalIPAttributes: slices.Clone(vocab.LocalIPAttributes),
		PeerIPAttributes:  slices.Clone(vocab.PeerIPAttributes),
		// What k8sattributesprocessor and resource detectors add that the
		// ids determine. Each is removed only when the id it depends on was
		// found (see derivable); the container name and the ReplicaSet are
		// not determined by any id and stay.
		Strip: []string{
			"k8s.cluster.*", "k8s.namespace.*", "k8s.node.*", "k8s.pod.*", "k8s.service.*",
			"k8s.deployment.*", "k8s.statefulset.*", "k8s.daemonset.*", "k8s.job.*", "k8s.cronjob.*",
		},
	}
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if len(cfg.LocalIPAttributes) == 0 {
		errs = append(errs, errors.New("local_ip_attributes must name at least one attribute"))
	}
	for _, list := range []struct {
		key   string
		names []string
	}{{"local_ip_attributes", cfg.LocalIPAttributes}, {"peer_ip_attributes", cfg.PeerIPAttributes}, {"strip", cfg.Strip}, {"keep", cfg.Keep}} {
		for i, n := range list.names {
			if n == "" || n == "*" {
				errs = append(errs, fmt.Errorf("%s[%d]: %q is not an attribute name or prefix", list.key, i, n))
			}
		}
	}
	return errors.Join(errs...)
}
