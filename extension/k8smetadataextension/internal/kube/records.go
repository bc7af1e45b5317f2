package kube

import (
	"net/netip"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/cache"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
)

// trim keeps only what Weft records of an object, so that the informers'
// caches hold a fraction of each object (memory is what users hold against
// watching everything).
func trim(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Pod:
		p := &corev1.Pod{ObjectMeta: trimMeta(o.ObjectMeta)}
		p.Spec.NodeName = o.Spec.NodeName
		p.Spec.HostNetwork = o.Spec.HostNetwork
		for _, c := range o.Spec.Containers {
			tc := corev1.Container{Name: c.Name}
			for _, e := range c.Env {
				// Only plain values: a value from a secret or config map is
				// never read or stored.
				if e.ValueFrom == nil {
					tc.Env = append(tc.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
				}
			}
			p.Spec.Containers = append(p.Spec.Containers, tc)
		}
		p.Status.PodIP = o.Status.PodIP
		p.Status.PodIPs = o.Status.PodIPs
		p.Status.HostIP = o.Status.HostIP
		p.Status.Phase = o.Status.Phase
		for _, cs := range [][]corev1.ContainerStatus{o.Status.InitContainerStatuses, o.Status.ContainerStatuses} {
			for _, s := range cs {
				if s.ContainerID != "" {
					p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{ContainerID: s.ContainerID})
				}
			}
		}
		return p, nil
	case *corev1.Node:
		n := &corev1.Node{ObjectMeta: trimMeta(o.ObjectMeta)}
		n.Status.Addresses = o.Status.Addresses
		return n, nil
	case *corev1.Namespace:
		return &corev1.Namespace{ObjectMeta: trimMeta(o.ObjectMeta)}, nil
	case *corev1.Service:
		s := &corev1.Service{ObjectMeta: trimMeta(o.ObjectMeta)}
		s.Spec.ClusterIP = o.Spec.ClusterIP
		s.Spec.ClusterIPs = o.Spec.ClusterIPs
		s.Spec.Ports = o.Spec.Ports
		s.Spec.Selector = o.Spec.Selector
		s.Spec.Type = o.Spec.Type
		return s, nil
	case *networkingv1.Ingress:
		return &networkingv1.Ingress{ObjectMeta: trimMeta(o.ObjectMeta)}, nil
	case *appsv1.Deployment:
		return &appsv1.Deployment{ObjectMeta: trimMeta(o.ObjectMeta)}, nil
	case *appsv1.StatefulSet:
		return &appsv1.StatefulSet{ObjectMeta: trimMeta(o.ObjectMeta)}, nil
	case *appsv1.DaemonSet:
		return &appsv1.DaemonSet{ObjectMeta: trimMeta(o.ObjectMeta)}, nil
	case *batchv1.Job:
		return &batchv1.Job{ObjectMeta: trimMeta(o.ObjectMeta)}, nil
	case *batchv1.CronJob:
		return &batchv1.CronJob{ObjectMeta: trimMeta(o.ObjectMeta)}, nil
	case *metav1.PartialObjectMetadata:
		return &metav1.PartialObjectMetadata{TypeMeta: o.TypeMeta, ObjectMeta: trimMeta(o.ObjectMeta)}, nil
	}
	return obj, nil
}

// trimMeta drops managed fields (often most of an object) and the
// last-applied annotation kubectl writes.
func trimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	out := metav1.ObjectMeta{
		Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Labels: m.Labels, OwnerReferences: m.OwnerReferences, DeletionTimestamp: m.DeletionTimestamp,
	}
	if len(m.Annotations) > 0 {
		out.Annotations = make(map[string]string, len(m.Annotations))
		for k, v := range m.Annotations {
			if k != corev1.LastAppliedConfigAnnotation {
				out.Annotations[k] = v
			}
		}
	}
	return out
}

// record builds the record of a cached object. ReplicaSets a Deployment owns
// and Jobs a CronJob owns are not workloads of their own (false).
func (w *Watcher) record(obj any) (model.Record, bool) {
	m, err := meta(obj)
	if err != nil {
		return model.Record{}, false
	}
	r := model.Record{
		UID: string(m.GetUID()), Name: m.GetName(), Namespace: m.GetNamespace(),
		Labels: m.GetLabels(), Annotations: m.GetAnnotations(),
	}
	if r.Namespace != "" {
		r.NamespaceUID = lookupUID(w.namespaces, r.Namespace)
	}
	switch o := obj.(type) {
	case *corev1.Namespace:
		r.Kind = model.KindNamespace
	case *corev1.Node:
		r.Kind = model.KindNode
		for _, a := range o.Status.Addresses {
			if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
				r.IPs = appendIP(r.IPs, a.Address)
			}
		}
	case *corev1.Pod:
		r.Kind = model.KindPod
		w.podRecord(o, &r)
	case *corev1.Service:
		r.Kind = model.KindService
		r.Selector = o.Spec.Selector
		r.ServiceType = string(o.Spec.Type)
		ips := o.Spec.ClusterIPs
		if len(ips) == 0 && o.Spec.ClusterIP != "" {
			ips = []string{o.Spec.ClusterIP}
		}
		for _, ip := range ips {
			r.IPs = appendIP(r.IPs, ip)
		}
		for _, p := range o.Spec.Ports {
			r.Ports = append(r.Ports, model.ServicePort{Name: p.Name, Protocol: string(p.Protocol), Port: uint16(p.Port),
				TargetPort: p.TargetPort.String(), NodePort: uint16(p.NodePort)})
		}
	case *networkingv1.Ingress:
		r.Kind = model.KindIngress
	case *appsv1.Deployment:
		r.Kind, r.WorkloadKind = model.KindWorkload, model.WorkloadDeployment
	case *appsv1.StatefulSet:
		r.Kind, r.WorkloadKind = model.KindWorkload, model.WorkloadStatefulSet
	case *appsv1.DaemonSet:
		r.Kind, r.WorkloadKind = model.KindWorkload, model.WorkloadDaemonSet
	case *batchv1.CronJob:
		r.Kind, r.WorkloadKind = model.KindWorkload, model.WorkloadCronJob
	case *batchv1.Job:
		if c := metav1.GetControllerOfNoCopy(o); c != nil && c.Kind == "CronJob" {
			return model.Record{}, false
		}
		r.Kind, r.WorkloadKind = model.KindWorkload, model.WorkloadJob
	case *metav1.PartialObjectMetadata: // ReplicaSet
		if c := metav1.GetControllerOfNoCopy(o); c != nil && c.Kind == "Deployment" {
			return model.Record{}, false
		}
		r.Kind, r.WorkloadKind = model.KindWorkload, model.WorkloadReplicaSet
	default:
		return model.Record{}, false
	}
	return r, true
}

func (w *Watcher) podRecord(p *corev1.Pod, r *model.Record) {
	r.NodeUID = lookupUID(w.nodes, p.Spec.NodeName)
	r.HostNetwork = p.Spec.HostNetwork
	r.HostIP, _ = netip.ParseAddr(p.Status.HostIP)
	if len(p.Status.PodIPs) > 0 {
		for _, ip := range p.Status.PodIPs {
			r.IPs = appendIP(r.IPs, ip.IP)
		}
	} else {
		r.IPs = appendIP(r.IPs, p.Status.PodIP)
	}
	for _, cs := range p.Status.ContainerStatuses {
		// "containerd://<id>": the runtime prefix is not part of the id
		// eBPF and runtimes report.
		id := cs.ContainerID
		if i := strings.Index(id, "://"); i >= 0 {
			id = id[i+3:]
		}
		if id != "" {
			r.ContainerIDs = append(r.ContainerIDs, id)
		}
	}
	for _, c := range p.Spec.Containers {
		for _, e := range c.Env {
			if r.Env == nil {
				r.Env = map[string]string{}
			}
			if _, dup := r.Env[e.Name]; !dup {
				r.Env[e.Name] = e.Value
			}
		}
	}
	r.WorkloadUID, r.WorkloadKind = w.workloadOf(p)
	r.ServiceUIDs = w.servicesOf(p)
}

// workloadOf follows a pod's controller chain to its top workload:
// pod -> ReplicaSet -> Deployment, pod -> Job -> CronJob, or the controller
// itself.
func (w *Watcher) workloadOf(p *corev1.Pod) (string, model.WorkloadKind) {
	c := metav1.GetControllerOfNoCopy(p)
	if c == nil {
		return "", model.WorkloadNone
	}
	switch c.Kind {
	case "ReplicaSet":
		if rs, ok, _ := w.replicasets.GetIndexer().GetByKey(p.Namespace + "/" + c.Name); ok {
			if d := metav1.GetControllerOfNoCopy(rs.(metav1.Object)); d != nil && d.Kind == "Deployment" {
				return string(d.UID), model.WorkloadDeployment
			}
		}
		return string(c.UID), model.WorkloadReplicaSet
	case "Job":
		if j, ok, _ := w.jobs.GetIndexer().GetByKey(p.Namespace + "/" + c.Name); ok {
			if cj := metav1.GetControllerOfNoCopy(j.(metav1.Object)); cj != nil && cj.Kind == "CronJob" {
				return string(cj.UID), model.WorkloadCronJob
			}
		}
		return string(c.UID), model.WorkloadJob
	case "StatefulSet":
		return string(c.UID), model.WorkloadStatefulSet
	case "DaemonSet":
		return string(c.UID), model.WorkloadDaemonSet
	case "Deployment":
		return string(c.UID), model.WorkloadDeployment
	case "CronJob":
		return string(c.UID), model.WorkloadCronJob
	}
	return string(c.UID), model.WorkloadNone
}

// servicesOf lists the services of the pod's namespace whose selector
// matches its labels.
func (w *Watcher) servicesOf(p *corev1.Pod) []string {
	var uids []string
	set := labels.Set(p.Labels)
	services, _ := w.services.GetIndexer().ByIndex(cache.NamespaceIndex, p.Namespace)
	for _, obj := range services {
		s := obj.(*corev1.Service)
		if len(s.Spec.Selector) == 0 {
			continue
		}
		if labels.SelectorFromValidatedSet(s.Spec.Selector).Matches(set) {
			uids = append(uids, string(s.UID))
		}
	}
	return uids
}

func appendIP(ips []netip.Addr, s string) []netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil && a.IsValid() {
		return append(ips, a.Unmap())
	}
	return ips
}
