package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
)

// prepared is a validated record with everything computed that does not
// depend on ids: cleaned strings, JSON columns and key/value pairs.
type prepared struct {
	ref          model.Ref
	rec          *model.Record
	name         string
	namespace    string
	ips          string
	hostIP       string
	containerIDs string
	ports        string
	selector     string
	serviceType  string
	kv           [numKV][]kvPair
	kvHash       [numKV]int64
}

type kvPair struct{ key, value string }

// clean makes s storable in both databases: valid UTF-8 (PostgreSQL and
// MySQL's utf8mb4 both reject invalid sequences) and no NUL (PostgreSQL
// text cannot hold it). Kubernetes strings nearly always pass unchanged.
func clean(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// knownKind: a kind the store has tables for.
func knownKind(k model.Kind) bool {
	_, ok := chExtraCols[k]
	return ok
}

// validRef checks what becomes a row's identity: it must be stored as is.
func validRef(r model.Ref, what string) error {
	if !knownKind(r.Kind) {
		return fmt.Errorf("%s has unknown kind %d", what, r.Kind)
	}
	if r.UID == "" {
		return fmt.Errorf("%s (%s) has an empty uid", what, r.Kind)
	}
	if len(r.UID) > maxUIDBytes {
		return fmt.Errorf("%s (%s) uid is %d bytes, at most %d fit", what, r.Kind, len(r.UID), maxUIDBytes)
	}
	if clean(r.UID) != r.UID {
		return fmt.Errorf("%s (%s) uid %q is not valid UTF-8 or holds a NUL byte", what, r.Kind, r.UID)
	}
	return nil
}

// relations are the resources a record points at, in a fixed order. An
// empty service uid or a parent with a kind but no uid is kept, so that
// validation rejects it.
func relations(r *model.Record) []model.Ref {
	var refs []model.Ref
	if r.NamespaceUID != "" {
		refs = append(refs, model.Ref{Kind: model.KindNamespace, UID: r.NamespaceUID})
	}
	if r.NodeUID != "" {
		refs = append(refs, model.Ref{Kind: model.KindNode, UID: r.NodeUID})
	}
	if r.WorkloadUID != "" {
		refs = append(refs, model.Ref{Kind: model.KindWorkload, UID: r.WorkloadUID})
	}
	for _, svc := range r.ServiceUIDs {
		refs = append(refs, model.Ref{Kind: model.KindService, UID: svc})
	}
	if r.Parent.UID != "" || r.Parent.Kind != 0 {
		refs = append(refs, r.Parent)
	}
	return refs
}

// prepare validates and precomputes the records; the last record of a uid
// wins. kvSkipped counts keys too long for the key column.
func prepare(recs []model.Record) (out []*prepared, kvSkipped int, err error) {
	index := make(map[model.Ref]int, len(recs))
	for i := range recs {
		r := &recs[i]
		ref := model.Ref{Kind: r.Kind, UID: r.UID}
		what := fmt.Sprintf("record %d", i)
		if err := validRef(ref, what); err != nil {
			return nil, 0, err
		}
		for _, rel := range relations(r) {
			if err := validRef(rel, what+" relation"); err != nil {
				return nil, 0, err
			}
		}
		if r.Parent.Kind == model.KindCluster {
			return nil, 0, fmt.Errorf("%s Parent: a cluster is not a parent; the cluster is implied", what)
		}
		p := &prepared{ref: ref, rec: r, name: clean(r.Name), namespace: clean(r.Namespace), serviceType: clean(r.ServiceType)}
		if len(p.name) > maxNameBytes || len(p.namespace) > maxNameBytes {
			return nil, 0, fmt.Errorf("%s (%s %s): name or namespace longer than %d bytes", what, r.Kind, r.UID, maxNameBytes)
		}
		if len(p.serviceType) > maxShortBytes {
			return nil, 0, fmt.Errorf("%s (%s %s): service type longer than %d bytes", what, r.Kind, r.UID, maxShortBytes)
		}
		p.ips = jsonAddrs(r.IPs)
		if r.HostIP.IsValid() {
			p.hostIP = r.HostIP.String()
		}
		p.containerIDs = jsonStrings(r.ContainerIDs)
		p.ports = jsonPorts(r.Ports)
		p.selector = jsonMap(r.Selector)
		for t := kvTable(0); t < numKV; t++ {
			if !hasKV(r.Kind, t) {
				continue // kinds without the table: nothing to keep
			}
			var src map[string]string
			switch t {
			case kvLabel:
				src = r.Labels
			case kvAnnotation:
				src = r.Annotations
			case kvEnv:
				src = r.Env
			}
			var skipped int
			p.kv[t], skipped = cleanPairs(src)
			kvSkipped += skipped
			p.kvHash[t] = hashPairs(p.kv[t])
		}
		if j, ok := index[ref]; ok {
			out[j] = p
			continue
		}
		index[ref] = len(out)
		out = append(out, p)
	}
	return out, kvSkipped, nil
}

// cleanPairs sorts the pairs by key, cleans them and drops keys longer
// than the key column. Kubernetes rejects such label and annotation keys;
// env names have no length limit, but one that long is no tag anyone
// queries by.
func cleanPairs(m map[string]string) (pairs []kvPair, skipped int) {
	if len(m) == 0 {
		return nil, 0
	}
	pairs = make([]kvPair, 0, len(m))
	for k, v := range m {
		k = clean(k)
		if len(k) > maxKeyBytes {
			skipped++
			continue
		}
		pairs = append(pairs, kvPair{k, clean(v)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].key != pairs[j].key {
			return pairs[i].key < pairs[j].key
		}
		return pairs[i].value < pairs[j].value
	})
	// Cleaning can map two invalid keys to one: keep the first, the
	// primary key (id, key) allows one.
	out := pairs[:0]
	for i, p := range pairs {
		if i > 0 && p.key == pairs[i-1].key {
			continue
		}
		out = append(out, p)
	}
	return out, skipped
}

func jsonAddrs(ips []netip.Addr) string {
	s := make([]string, 0, len(ips))
	for _, ip := range ips {
		if ip.IsValid() {
			s = append(s, ip.String())
		}
	}
	return jsonStrings(s)
}

func jsonStrings(s []string) string {
	if len(s) == 0 {
		return "[]"
	}
	c := make([]string, len(s))
	for i, v := range s {
		c[i] = clean(v)
	}
	b, _ := json.Marshal(c) // []string always marshals
	return string(b)
}

// portJSON is how a ServicePort is kept: explicit, stable field names.
type portJSON struct {
	Name       string `json:"name,omitempty"`
	Protocol   string `json:"protocol,omitempty"`
	Port       uint16 `json:"port"`
	TargetPort string `json:"target_port,omitempty"`
	NodePort   uint16 `json:"node_port,omitempty"`
}

func jsonPorts(ports []model.ServicePort) string {
	if len(ports) == 0 {
		return "[]"
	}
	p := make([]portJSON, len(ports))
	for i, sp := range ports {
		p[i] = portJSON{Name: clean(sp.Name), Protocol: clean(sp.Protocol), Port: sp.Port, TargetPort: clean(sp.TargetPort), NodePort: sp.NodePort}
	}
	b, _ := json.Marshal(p) // plain struct always marshals
	return string(b)
}

func jsonMap(m map[string]string) string {
	if len(m) == 0 {
		return "{}"
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[clean(k)] = clean(v)
	}
	b, _ := json.Marshal(c) // sorted keys: the same map gives the same text
	return string(b)
}

func parseAddrs(s string) ([]netip.Addr, error) {
	var strs []string
	if err := json.Unmarshal([]byte(s), &strs); err != nil {
		return nil, err
	}
	if len(strs) == 0 {
		return nil, nil
	}
	out := make([]netip.Addr, 0, len(strs))
	for _, v := range strs {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func parseStrings(s string) ([]string, error) {
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func parsePorts(s string) ([]model.ServicePort, error) {
	var p []portJSON
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, nil
	}
	out := make([]model.ServicePort, len(p))
	for i, v := range p {
		out[i] = model.ServicePort{Name: v.Name, Protocol: v.Protocol, Port: v.Port, TargetPort: v.TargetPort, NodePort: v.NodePort}
	}
	return out, nil
}

// hasher builds the content hashes that let unchanged records skip the
// write. SHA-256 rather than a fast non-cryptographic hash: label values
// come from cluster users, and a collision would silently drop an update.
type hasher struct{ buf []byte }

func (h *hasher) str(s string) {
	h.buf = binary.AppendUvarint(h.buf, uint64(len(s)))
	h.buf = append(h.buf, s...)
}

func (h *hasher) num(n uint64) { h.buf = binary.AppendUvarint(h.buf, n) }

// sum is the hash as a non-zero int64: 0 means "never written".
func (h *hasher) sum() int64 {
	d := sha256.Sum256(h.buf)
	v := int64(binary.BigEndian.Uint64(d[:8]))
	if v == 0 {
		v = 1
	}
	return v
}

func hashPairs(pairs []kvPair) int64 {
	if len(pairs) == 0 {
		return 0 // no rows: the same as never written
	}
	var h hasher
	for _, p := range pairs {
		h.str(p.key)
		h.str(p.value)
	}
	return h.sum()
}
