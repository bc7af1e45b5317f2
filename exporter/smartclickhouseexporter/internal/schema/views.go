package schema

import (
	"fmt"
	"strings"
)

// ViewName is the decoding view over a data table.
func ViewName(table string) string { return table + "_view" }

// WorkloadKinds are the k8s_metadata workload kind numbers' names.
var WorkloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}

// decoded are the name columns a view adds for one side (suffix _0, _1 or
// none): every id column decoded through its dictionary, the workload kind's
// name, the auto instance and auto service as names, and the IP as text.
func decoded(f Features, o Options, s string) []string {
	name := func(dict, idCol string) string {
		return fmt.Sprintf("dictGetString('%s', 'name', toUInt64(%s))", DictRef(f, o, dict), idCol+s)
	}
	var ip string
	if f.IPTypes {
		ip = fmt.Sprintf("multiIf(toUInt32(ip4%[1]s) != 0, toString(ip4%[1]s), toString(ip6%[1]s) != '::', toString(ip6%[1]s), '')", s)
	} else {
		ip = fmt.Sprintf("multiIf(ip4%[1]s != 0, IPv4NumToString(ip4%[1]s), IPv6NumToString(ip6%[1]s) != '::', IPv6NumToString(ip6%[1]s), '')", s)
	}
	kinds := make([]string, len(WorkloadKinds))
	nums := make([]string, len(WorkloadKinds))
	for i, k := range WorkloadKinds {
		kinds[i] = "'" + k + "'"
		nums[i] = fmt.Sprint(i + 1)
	}
	kindName := func(col string) string {
		return fmt.Sprintf("transform(%s, [%s], [%s], '')", col+s, strings.Join(nums, ", "), strings.Join(kinds, ", "))
	}
	// Auto types are DeepFlow's codes (vocab.AutoType*): 10 pod, 14 node,
	// 6 host, 11 service, 103 cluster, 130-135 workloads, 255 the IP itself.
	autoInstance := fmt.Sprintf("multiIf(auto_instance_type%[1]s = 10, %[2]s, auto_instance_type%[1]s = 14, %[3]s, auto_instance_type%[1]s = 6, %[4]s, auto_instance_type%[1]s = 255, %[5]s, '')",
		s, name("pod_map", "auto_instance_id"), name("node_map", "auto_instance_id"), name("host_map", "auto_instance_id"), ip)
	autoService := fmt.Sprintf("multiIf(auto_service_type%[1]s = 11, %[2]s, auto_service_type%[1]s >= 130 AND auto_service_type%[1]s <= 135, %[3]s, auto_service_type%[1]s = 14, %[4]s, auto_service_type%[1]s = 6, %[5]s, auto_service_type%[1]s = 103, %[6]s, '')",
		s, name("service_map", "auto_service_id"), name("workload_map", "auto_service_id"), name("node_map", "auto_service_id"),
		name("host_map", "auto_service_id"), name("cluster_map", "auto_service_id"))
	return []string{
		name("cluster_map", "cluster_id") + " AS cluster" + s,
		name("node_map", "node_id") + " AS node" + s,
		name("namespace_map", "namespace_id") + " AS namespace" + s,
		name("workload_map", "workload_id") + " AS workload" + s,
		kindName("workload_kind") + " AS workload_kind_name" + s,
		name("pod_map", "pod_id") + " AS pod" + s,
		name("service_map", "service_id") + " AS k8s_service" + s,
		name("host_map", "host_id") + " AS host" + s,
		autoInstance + " AS auto_instance" + s,
		autoService + " AS auto_service" + s,
		ip + " AS ip" + s,
	}
}

// DecodedColumns are the names a view adds to its table's columns, for
// documentation and tests.
func DecodedColumns(t Table) []string {
	var names []string
	for _, s := range sides(t) {
		for _, e := range decoded(Features{}, Options{}, s) {
			_, alias, _ := strings.Cut(e, " AS ")
			names = append(names, alias)
		}
	}
	return names
}

func sides(t Table) []string {
	if t.Name == Spans.Name {
		return []string{"_0", "_1"}
	}
	return []string{""}
}

// ViewObjects are the decoding views over spans, metrics and logs. They
// need the dictionaries: nil without a source.
func ViewObjects(f Features, o Options) []Object {
	if o.Source.Driver == "" {
		return nil
	}
	var objs []Object
	for _, t := range []Table{Spans, Metrics, Logs} {
		var exprs []string
		for _, c := range t.Columns {
			exprs = append(exprs, quoteIdent(c.Name))
		}
		for _, s := range sides(t) {
			exprs = append(exprs, decoded(f, o, s)...)
		}
		v := ViewName(t.Name)
		objs = append(objs, Object{
			Name:       "view:" + v,
			Exists:     "SELECT name FROM system.tables WHERE database = ? AND name = ?",
			ExistsArgs: []any{o.Database, v},
			Drop:       []string{DropStatement(o, "view:"+v)},
			Create: []string{fmt.Sprintf("CREATE VIEW IF NOT EXISTS %s%s AS\nSELECT\n    %s\nFROM %s",
				o.qualified(v), o.onCluster(), strings.Join(exprs, ",\n    "), o.qualified(t.Name))},
		})
	}
	return objs
}
