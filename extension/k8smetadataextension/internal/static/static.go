// Package static reads the file of resources Kubernetes does not know about:
// regions, zones, VPCs, subnets and hosts (databases, VMs, appliances) that
// telemetry still talks to, so that their IPs get ids too.
//
// The file is YAML:
//
//	regions: [{name: eu-west}]
//	zones:   [{name: eu-west-1a, region: eu-west}]
//	vpcs:    [{id: 3, name: prod}]   # id: the VPC id configs and lookups use
//	subnets: [{name: data, vpc: 3, zone: eu-west-1a, cidr: 10.0.5.0/24}]
//	hosts:   [{name: pg-primary, vpc: 3, ips: [10.0.5.10]}]
package static

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
)

// File is the static resources file.
type File struct {
	Regions []struct {
		Name string `yaml:"name"`
	} `yaml:"regions"`
	Zones []struct {
		Name   string `yaml:"name"`
		Region string `yaml:"region"`
	} `yaml:"zones"`
	VPCs []struct {
		ID   uint32 `yaml:"id"`
		Name string `yaml:"name"`
	} `yaml:"vpcs"`
	Subnets []struct {
		Name string `yaml:"name"`
		VPC  uint32 `yaml:"vpc"`
		Zone string `yaml:"zone"`
		CIDR string `yaml:"cidr"`
	} `yaml:"subnets"`
	Hosts []struct {
		Name string   `yaml:"name"`
		VPC  uint32   `yaml:"vpc"`
		IPs  []string `yaml:"ips"`
	} `yaml:"hosts"`
}

// Kinds are the kinds the file describes; a reconciliation covers them.
var Kinds = []model.Kind{model.KindRegion, model.KindZone, model.KindVPC, model.KindSubnet, model.KindHost}

// UID names a static resource in the database.
func UID(kind model.Kind, name string) string { return "static:" + kind.String() + ":" + name }

// VPCNumber is the VPC id a static VPC's uid carries.
func VPCNumber(uid string) (uint32, bool) {
	s, ok := strings.CutPrefix(uid, "static:vpc:")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// Load reads the file at path and returns its resources as records. Every
// problem is reported, with where it is.
func Load(path string) ([]model.Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("static resources: %w", err)
	}
	var f File
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("static resources %s: %w", path, err)
	}
	return f.Records()
}

// Records turns the file into records, checking that every reference names
// something the file defines.
func (f *File) Records() ([]model.Record, error) {
	var recs []model.Record
	var errs []error
	regions, zones, vpcs := map[string]bool{}, map[string]bool{}, map[uint32]bool{}
	for i, r := range f.Regions {
		if r.Name == "" {
			errs = append(errs, fmt.Errorf("regions[%d]: name is empty", i))
			continue
		}
		regions[r.Name] = true
		recs = append(recs, model.Record{Kind: model.KindRegion, UID: UID(model.KindRegion, r.Name), Name: r.Name})
	}
	for i, z := range f.Zones {
		if z.Name == "" {
			errs = append(errs, fmt.Errorf("zones[%d]: name is empty", i))
			continue
		}
		rec := model.Record{Kind: model.KindZone, UID: UID(model.KindZone, z.Name), Name: z.Name}
		if z.Region != "" {
			if !regions[z.Region] {
				errs = append(errs, fmt.Errorf("zones[%d] %s: region %q is not in regions", i, z.Name, z.Region))
			}
			rec.Parent = model.Ref{Kind: model.KindRegion, UID: UID(model.KindRegion, z.Region)}
		}
		zones[z.Name] = true
		recs = append(recs, rec)
	}
	for i, v := range f.VPCs {
		if v.ID == 0 {
			errs = append(errs, fmt.Errorf("vpcs[%d] %s: id must be set and not 0", i, v.Name))
			continue
		}
		vpcs[v.ID] = true
		name := v.Name
		if name == "" {
			name = strconv.FormatUint(uint64(v.ID), 10)
		}
		recs = append(recs, model.Record{Kind: model.KindVPC, UID: UID(model.KindVPC, strconv.FormatUint(uint64(v.ID), 10)), Name: name})
	}
	vpcRef := func(where string, id uint32) model.Ref {
		if id == 0 {
			return model.Ref{}
		}
		if !vpcs[id] {
			errs = append(errs, fmt.Errorf("%s: vpc %d is not in vpcs", where, id))
		}
		return model.Ref{Kind: model.KindVPC, UID: UID(model.KindVPC, strconv.FormatUint(uint64(id), 10))}
	}
	for i, s := range f.Subnets {
		where := fmt.Sprintf("subnets[%d] %s", i, s.Name)
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("subnets[%d]: name is empty", i))
			continue
		}
		if _, err := netip.ParsePrefix(s.CIDR); s.CIDR != "" && err != nil {
			errs = append(errs, fmt.Errorf("%s: cidr: %w", where, err))
		}
		if s.Zone != "" && !zones[s.Zone] {
			errs = append(errs, fmt.Errorf("%s: zone %q is not in zones", where, s.Zone))
		}
		recs = append(recs, model.Record{Kind: model.KindSubnet, UID: UID(model.KindSubnet, s.Name), Name: s.Name,
			Parent: vpcRef(where, s.VPC)})
	}
	for i, h := range f.Hosts {
		where := fmt.Sprintf("hosts[%d] %s", i, h.Name)
		if h.Name == "" {
			errs = append(errs, fmt.Errorf("hosts[%d]: name is empty", i))
			continue
		}
		rec := model.Record{Kind: model.KindHost, UID: UID(model.KindHost, h.Name), Name: h.Name, Parent: vpcRef(where, h.VPC)}
		for _, s := range h.IPs {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
				continue
			}
			rec.IPs = append(rec.IPs, ip.Unmap())
		}
		recs = append(recs, rec)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("static resources: %w", errors.Join(errs...))
	}
	return recs, nil
}
