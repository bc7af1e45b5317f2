package smartencodingprocessor

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/weftobs/weft/extension/k8smetadataextension"
	"github.com/weftobs/weft/internal/vocab"
)

// encoder tags records with resource ids and strips what the ids determine.
// It keeps no state between calls but the lookup, so one encoder serves
// every pipeline goroutine without locks.
type encoder struct {
	cfg    *Config
	lookup k8smetadataextension.Lookup
	strip  matcher
	keep   matcher
}

func newEncoder(cfg *Config) *encoder {
	return &encoder{cfg: cfg, strip: newMatcher(cfg.Strip), keep: newMatcher(cfg.Keep)}
}

// start finds the k8s_metadata extension.
func (e *encoder) start(_ context.Context, host component.Host) error {
	ext, ok := host.GetExtensions()[e.cfg.Metadata]
	if !ok {
		return fmt.Errorf("smart_encoding needs the k8s_metadata extension %q: add it to the config's extensions and to service.extensions", e.cfg.Metadata)
	}
	lookup, ok := ext.(k8smetadataextension.Lookup)
	if !ok {
		return fmt.Errorf("extension %q is not a k8s_metadata extension", e.cfg.Metadata)
	}
	e.lookup = lookup
	return nil
}

func (e *encoder) processTraces(_ context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		vpc := e.encodeResource(rs.Resource())
		if !e.cfg.PeerAttributes {
			continue
		}
		var last peerCache
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				e.encodePeer(spans.At(k), vpc, &last)
			}
		}
	}
	return td, nil
}

func (e *encoder) processMetrics(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
	rms := md.ResourceMetrics()
	for i := 0; i < rms.Len(); i++ {
		e.encodeResource(rms.At(i).Resource())
	}
	return md, nil
}

func (e *encoder) processLogs(_ context.Context, ld plog.Logs) (plog.Logs, error) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		e.encodeResource(rls.At(i).Resource())
	}
	return ld, nil
}

// encodeResource tags a resource with the ids of what emitted it: by pod
// uid, container id, or the first local IP attribute that holds an IP. It
// returns the VPC the resource's addresses belong to.
func (e *encoder) encodeResource(res pcommon.Resource) uint32 {
	attrs := res.Attributes()
	vpc := e.cfg.VPCID
	if e.cfg.VPCIDAttribute != "" {
		if v, ok := attrs.Get(e.cfg.VPCIDAttribute); ok {
			if n, ok := intValue(v); ok && n >= 0 && n <= 1<<32-1 {
				vpc = uint32(n)
			}
		}
	}
	r, found := e.findLocal(attrs, vpc)
	attrs.PutInt(vocab.VPCID, int64(vpc))
	if !found {
		return vpc
	}
	if e.strip.any() {
		attrs.RemoveIf(func(k string, _ pcommon.Value) bool {
			return e.strip.match(k) && !e.keep.match(k) && derivable(k, r)
		})
	}
	putIDs(attrs, &localNames, r)
	return vpc
}

func (e *encoder) findLocal(attrs pcommon.Map, vpc uint32) (k8smetadataextension.Resource, bool) {
	if v, ok := attrs.Get("k8s.pod.uid"); ok && v.Type() == pcommon.ValueTypeStr {
		if r, ok := e.lookup.ByPodUID(v.Str()); ok {
			return r, true
		}
	}
	if v, ok := attrs.Get("container.id"); ok && v.Type() == pcommon.ValueTypeStr {
		if r, ok := e.lookup.ByContainerID(v.Str()); ok {
			return r, true
		}
	}
	for _, name := range e.cfg.LocalIPAttributes {
		if v, ok := attrs.Get(name); ok {
			if ip, ok := ipValue(v); ok {
				return e.lookup.ByIP(vpc, ip)
			}
		}
	}
	return k8smetadataextension.Resource{}, false
}

// peerCache remembers the last peer looked up: spans of one batch often
// call the same peer.
type peerCache struct {
	ip    netip.Addr
	res   k8smetadataextension.Resource
	found bool
}

// encodePeer tags a client or server span with the ids of the other side.
// Which attributes can hold the peer depends on the kind: a server span's
// server.address is its own.
func (e *encoder) encodePeer(span ptrace.Span, vpc uint32, last *peerCache) {
	skip := vocab.OwnAddress(span.Kind())
	if skip == "" {
		return // no peer: an internal span
	}
	attrs := span.Attributes()
	for _, name := range e.cfg.PeerIPAttributes {
		if name == skip {
			continue
		}
		v, ok := attrs.Get(name)
		if !ok {
			continue
		}
		ip, ok := ipValue(v)
		if !ok {
			continue // a host name, not an address
		}
		if !last.ip.IsValid() || last.ip != ip {
			last.ip = ip
			last.res, last.found = e.lookup.ByIP(vpc, ip)
		}
		if last.found {
			putIDs(attrs, &peerNames, last.res)
		}
		return
	}
}

// idNames are the attribute names for one side, in vocab.ResourceIDs order.
type idNames [len(vocab.ResourceIDs)]string

var (
	localNames = idNames(vocab.ResourceIDs)
	peerNames  = idNames(vocab.PeerIDs)
)

// putIDs writes the non-zero ids of r and its auto instance and service.
// (Each Int attribute costs pdata one allocation; writing only what is known
// keeps that down.)
func putIDs(attrs pcommon.Map, names *idNames, r k8smetadataextension.Resource) {
	for i, v := range r.IDs() {
		if v != 0 {
			attrs.PutInt(names[i], int64(v))
		}
	}
}

// ipValue reads an IP from a string attribute, or the first element of a
// string slice (host.ip is an array).
func ipValue(v pcommon.Value) (netip.Addr, bool) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		ip, err := netip.ParseAddr(v.Str())
		return ip, err == nil
	case pcommon.ValueTypeSlice:
		if v.Slice().Len() > 0 && v.Slice().At(0).Type() == pcommon.ValueTypeStr {
			ip, err := netip.ParseAddr(v.Slice().At(0).Str())
			return ip, err == nil
		}
	}
	return netip.Addr{}, false
}

func intValue(v pcommon.Value) (int64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		return v.Int(), true
	case pcommon.ValueTypeStr:
		n, err := strconv.ParseInt(v.Str(), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// derivable says whether the ids found determine an attribute: k8s.pod.* by
// the pod (its name, uid, labels and annotations are in the pod's
// dictionaries), k8s.node.* by the node, and so on. Anything else is never
// derivable, whatever strip says.
func derivable(name string, r k8smetadataextension.Resource) bool {
	for _, d := range derivations {
		if strings.HasPrefix(name, d.prefix) {
			return d.known(r)
		}
	}
	return false
}

var derivations = []struct {
	prefix string
	known  func(k8smetadataextension.Resource) bool
}{
	{"k8s.pod.", func(r k8smetadataextension.Resource) bool { return r.Pod != 0 }},
	{"k8s.node.", func(r k8smetadataextension.Resource) bool { return r.Node != 0 }},
	{"k8s.namespace.", func(r k8smetadataextension.Resource) bool { return r.Namespace != 0 }},
	{"k8s.cluster.", func(r k8smetadataextension.Resource) bool { return r.Cluster != 0 }},
	{"k8s.service.", func(r k8smetadataextension.Resource) bool { return r.Service != 0 }},
	{"k8s.deployment.", workloadIs(k8smetadataextension.WorkloadDeployment)},
	{"k8s.statefulset.", workloadIs(k8smetadataextension.WorkloadStatefulSet)},
	{"k8s.daemonset.", workloadIs(k8smetadataextension.WorkloadDaemonSet)},
	{"k8s.cronjob.", workloadIs(k8smetadataextension.WorkloadCronJob)},
	{"k8s.job.", workloadIs(k8smetadataextension.WorkloadJob)},
}

func workloadIs(kind k8smetadataextension.WorkloadKind) func(k8smetadataextension.Resource) bool {
	return func(r k8smetadataextension.Resource) bool { return r.Workload != 0 && r.WorkloadKind == kind }
}

// matcher matches attribute names against exact names and "prefix*"
// patterns.
type matcher struct {
	exact    map[string]struct{}
	prefixes []string
}

func newMatcher(patterns []string) matcher {
	m := matcher{exact: map[string]struct{}{}}
	for _, p := range patterns {
		if strings.HasSuffix(p, "*") {
			m.prefixes = append(m.prefixes, strings.TrimSuffix(p, "*"))
		} else {
			m.exact[p] = struct{}{}
		}
	}
	return m
}

func (m matcher) any() bool { return len(m.exact) > 0 || len(m.prefixes) > 0 }

func (m matcher) match(name string) bool {
	if _, ok := m.exact[name]; ok {
		return true
	}
	for _, p := range m.prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
