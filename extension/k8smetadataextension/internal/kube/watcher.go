// Package kube watches the Kubernetes API and turns what it sees into
// model.Records: one per namespace, node, workload, pod, service and
// ingress. Informers keep a trimmed copy of each object (only the fields Weft
// records), and a dirty set says which resources changed since the writer
// last took them.
package kube

import (
	"context"
	"fmt"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
)

// Watcher keeps informers on the resources Weft records.
type Watcher struct {
	factory informers.SharedInformerFactory
	meta    metadatainformer.SharedInformerFactory

	namespaces, nodes, pods, services, ingresses      cache.SharedIndexInformer
	deployments, statefulsets, daemonsets, jobs, cron cache.SharedIndexInformer
	replicasets                                       cache.SharedIndexInformer

	mu      sync.Mutex
	dirty   map[model.Ref]object // changed since the last Take
	changed chan struct{}
}

// object is what a dirty entry needs to build its record or its deletion.
type object struct {
	deleted bool
	key     string // namespace/name in its informer
	source  cache.SharedIndexInformer
}

// ownerIndex indexes pods, ReplicaSets and Jobs by their controller's uid,
// so that a change of a controller can find what it owns.
const ownerIndex = "owner"

// New creates the informers; nothing runs before Start.
func New(client kubernetes.Interface, meta metadata.Interface) *Watcher {
	f := informers.NewSharedInformerFactory(client, 0)
	mf := metadatainformer.NewSharedInformerFactory(meta, 0)
	w := &Watcher{
		factory:      f,
		meta:         mf,
		namespaces:   f.Core().V1().Namespaces().Informer(),
		nodes:        f.Core().V1().Nodes().Informer(),
		pods:         f.Core().V1().Pods().Informer(),
		services:     f.Core().V1().Services().Informer(),
		ingresses:    f.Networking().V1().Ingresses().Informer(),
		deployments:  f.Apps().V1().Deployments().Informer(),
		statefulsets: f.Apps().V1().StatefulSets().Informer(),
		daemonsets:   f.Apps().V1().DaemonSets().Informer(),
		jobs:         f.Batch().V1().Jobs().Informer(),
		cron:         f.Batch().V1().CronJobs().Informer(),
		replicasets:  mf.ForResource(appsv1.SchemeGroupVersion.WithResource("replicasets")).Informer(),
		dirty:        map[model.Ref]object{},
		changed:      make(chan struct{}, 1),
	}
	for _, inf := range w.all() {
		_ = inf.SetTransform(trim)
	}
	_ = w.pods.AddIndexers(cache.Indexers{ownerIndex: byController})
	_ = w.replicasets.AddIndexers(cache.Indexers{ownerIndex: byController})
	_ = w.jobs.AddIndexers(cache.Indexers{ownerIndex: byController})
	_ = w.pods.AddIndexers(cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	_ = w.services.AddIndexers(cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})

	w.watch(w.namespaces, model.KindNamespace, nil)
	w.watch(w.nodes, model.KindNode, nil)
	w.watch(w.pods, model.KindPod, nil)
	w.watch(w.ingresses, model.KindIngress, nil)
	// A service's selector decides which pods belong to it.
	w.watch(w.services, model.KindService, w.podsOfNamespace)
	// Workloads: the pods they own record them as their workload.
	w.watch(w.deployments, model.KindWorkload, w.ownedPods)
	w.watch(w.statefulsets, model.KindWorkload, w.ownedPods)
	w.watch(w.daemonsets, model.KindWorkload, w.ownedPods)
	w.watch(w.cron, model.KindWorkload, w.ownedPods)
	w.watch(w.jobs, model.KindWorkload, w.ownedPods)
	w.watch(w.replicasets, model.KindWorkload, w.ownedPods)
	return w
}

func (w *Watcher) all() []cache.SharedIndexInformer {
	return []cache.SharedIndexInformer{w.namespaces, w.nodes, w.pods, w.services, w.ingresses,
		w.deployments, w.statefulsets, w.daemonsets, w.jobs, w.cron, w.replicasets}
}

// Start runs the informers until ctx ends.
func (w *Watcher) Start(ctx context.Context) {
	w.factory.Start(ctx.Done())
	w.meta.Start(ctx.Done())
}

// WaitForSync waits until every informer has listed once.
func (w *Watcher) WaitForSync(ctx context.Context) bool {
	var synced []cache.InformerSynced
	for _, inf := range w.all() {
		synced = append(synced, inf.HasSynced)
	}
	return cache.WaitForCacheSync(ctx.Done(), synced...)
}

// Changed is signalled (without blocking) when something became dirty.
func (w *Watcher) Changed() <-chan struct{} { return w.changed }

// watch marks the resource of every event dirty, and with also the
// resources it affects (pods of a service or a workload).
func (w *Watcher) watch(inf cache.SharedIndexInformer, kind model.Kind, also func(metav1.Object)) {
	mark := func(obj any, deleted bool) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj, deleted = d.Obj, true
		}
		m, err := meta(obj)
		if err != nil {
			return
		}
		key, _ := cache.MetaNamespaceKeyFunc(m)
		w.mu.Lock()
		w.dirty[model.Ref{Kind: kind, UID: string(m.GetUID())}] = object{deleted: deleted, key: key, source: inf}
		w.mu.Unlock()
		if also != nil {
			also(m)
		}
		select {
		case w.changed <- struct{}{}:
		default:
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { mark(obj, false) },
		UpdateFunc: func(_, obj any) { mark(obj, false) },
		DeleteFunc: func(obj any) { mark(obj, true) },
	})
}

// podsOfNamespace marks every pod of the object's namespace dirty: which
// services select a pod is recomputed when it is written.
func (w *Watcher) podsOfNamespace(m metav1.Object) {
	pods, _ := w.pods.GetIndexer().ByIndex(cache.NamespaceIndex, m.GetNamespace())
	w.markPods(pods)
}

// ownedPods marks the pods a workload owns dirty, through ReplicaSets and
// Jobs in between.
func (w *Watcher) ownedPods(m metav1.Object) {
	uid := string(m.GetUID())
	pods, _ := w.pods.GetIndexer().ByIndex(ownerIndex, uid)
	w.markPods(pods)
	for _, mid := range []cache.SharedIndexInformer{w.replicasets, w.jobs} {
		owned, _ := mid.GetIndexer().ByIndex(ownerIndex, uid)
		for _, o := range owned {
			if om, err := meta(o); err == nil {
				pods, _ := w.pods.GetIndexer().ByIndex(ownerIndex, string(om.GetUID()))
				w.markPods(pods)
			}
		}
	}
}

func (w *Watcher) markPods(pods []any) {
	if len(pods) == 0 {
		return
	}
	w.mu.Lock()
	for _, p := range pods {
		pod := p.(*corev1.Pod)
		ref := model.Ref{Kind: model.KindPod, UID: string(pod.UID)}
		if _, ok := w.dirty[ref]; !ok {
			w.dirty[ref] = object{key: pod.Namespace + "/" + pod.Name, source: w.pods}
		}
	}
	w.mu.Unlock()
}

// Take returns the records of every resource changed since the last Take,
// and the deleted ones.
func (w *Watcher) Take() (upserts []model.Record, deletes []model.Ref) {
	w.mu.Lock()
	dirty := w.dirty
	w.dirty = map[model.Ref]object{}
	w.mu.Unlock()
	for ref, o := range dirty {
		if o.deleted {
			deletes = append(deletes, ref)
			continue
		}
		obj, exists, err := o.source.GetIndexer().GetByKey(o.key)
		if err != nil || !exists {
			// Gone since the event: its delete event follows or came.
			continue
		}
		if m, err := meta(obj); err != nil || string(m.GetUID()) != ref.UID {
			continue // replaced by a newer object of the same name
		}
		if rec, ok := w.record(obj); ok {
			upserts = append(upserts, rec)
		}
	}
	return upserts, deletes
}

// Requeue puts refs back after a failed write, unless newer changes came.
func (w *Watcher) Requeue(upserts []model.Record, deletes []model.Ref) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range upserts {
		ref := model.Ref{Kind: r.Kind, UID: r.UID}
		if _, ok := w.dirty[ref]; !ok {
			w.dirty[ref] = object{key: keyOf(r), source: w.informerFor(r)}
		}
	}
	for _, ref := range deletes {
		if _, ok := w.dirty[ref]; !ok {
			w.dirty[ref] = object{deleted: true}
		}
	}
}

// All returns the records of everything in the caches: what a full
// reconciliation writes, and the set it keeps.
func (w *Watcher) All() (records []model.Record, present map[model.Ref]struct{}) {
	present = map[model.Ref]struct{}{}
	for _, inf := range w.all() {
		for _, obj := range inf.GetStore().List() {
			if rec, ok := w.record(obj); ok {
				records = append(records, rec)
				present[model.Ref{Kind: rec.Kind, UID: rec.UID}] = struct{}{}
			}
		}
	}
	return records, present
}

// WatchedKinds are the kinds All covers completely.
var WatchedKinds = []model.Kind{model.KindNamespace, model.KindNode, model.KindWorkload, model.KindPod, model.KindService, model.KindIngress}

func keyOf(r model.Record) string {
	if r.Namespace == "" {
		return r.Name
	}
	return r.Namespace + "/" + r.Name
}

func (w *Watcher) informerFor(r model.Record) cache.SharedIndexInformer {
	switch r.Kind {
	case model.KindNamespace:
		return w.namespaces
	case model.KindNode:
		return w.nodes
	case model.KindPod:
		return w.pods
	case model.KindService:
		return w.services
	case model.KindIngress:
		return w.ingresses
	}
	switch r.WorkloadKind {
	case model.WorkloadDeployment:
		return w.deployments
	case model.WorkloadStatefulSet:
		return w.statefulsets
	case model.WorkloadDaemonSet:
		return w.daemonsets
	case model.WorkloadJob:
		return w.jobs
	case model.WorkloadCronJob:
		return w.cron
	}
	return w.replicasets
}

func meta(obj any) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("not a Kubernetes object: %T", obj)
	}
	return m, nil
}

func byController(obj any) ([]string, error) {
	m, err := meta(obj)
	if err != nil {
		return nil, nil
	}
	if c := metav1.GetControllerOfNoCopy(m); c != nil {
		return []string{string(c.UID)}, nil
	}
	return nil, nil
}

// lookupUID finds the uid of a cluster-scoped object by name.
func lookupUID(inf cache.SharedIndexInformer, name string) string {
	obj, ok, _ := inf.GetIndexer().GetByKey(name)
	if !ok {
		return ""
	}
	m, _ := meta(obj)
	return string(m.GetUID())
}
