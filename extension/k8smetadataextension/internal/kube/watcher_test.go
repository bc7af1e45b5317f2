package kube

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
	"github.com/weftobs/weft/tests/harness"
)

// startCluster starts a real kube-apiserver and returns typed clients of it.
func startCluster(t *testing.T) (kubernetes.Interface, metadata.Interface) {
	t.Helper()
	k := harness.StartKube(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", k.KubeconfigPath)
	require.NoError(t, err)
	client, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	meta, err := metadata.NewForConfig(cfg)
	require.NoError(t, err)
	return client, meta
}

func ctrl(kind, name string, uid types.UID) []metav1.OwnerReference {
	yes := true
	return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: uid, Controller: &yes}}
}

// takeUntil collects records until cond holds for them.
func takeUntil(t *testing.T, w *Watcher, cond func(map[model.Ref]model.Record, map[model.Ref]bool) bool) (map[model.Ref]model.Record, map[model.Ref]bool) {
	t.Helper()
	recs, dels := map[model.Ref]model.Record{}, map[model.Ref]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ups, ds := w.Take()
		for _, r := range ups {
			recs[model.Ref{Kind: r.Kind, UID: r.UID}] = r
		}
		for _, d := range ds {
			dels[d] = true
		}
		if cond(recs, dels) {
			return recs, dels
		}
		select {
		case <-w.Changed():
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("records never satisfied the condition; got %d records, %d deletes", len(recs), len(dels))
	return nil, nil
}

func TestWatcherRecords(t *testing.T) {
	client, meta := startCluster(t)
	ctx := t.Context()
	ns, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"team": "cart"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	node, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.10.5"}, {Type: corev1.NodeHostName, Address: "node-a"}}
	_, err = client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	require.NoError(t, err)

	labels := map[string]string{"app": "cart"}
	dep, err := client.AppsV1().Deployments("shop").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "cart"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "cart:1"}}}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	rs, err := client.AppsV1().ReplicaSets("shop").Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9f", OwnerReferences: ctrl("Deployment", "cart", dep.UID)},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "cart:1"}}}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	svc, err := client.CoreV1().Services("shop").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "cart"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	w := New(client, meta)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w.Start(wctx)
	require.True(t, w.WaitForSync(wctx))

	pod, err := client.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "cart-7d9f-x2", Labels: labels, OwnerReferences: ctrl("ReplicaSet", rs.Name, rs.UID),
			Annotations: map[string]string{"note": "long annotation value"}},
		Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c", Image: "cart:1", Env: []corev1.EnvVar{
			{Name: "MODE", Value: "prod"},
			{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"}}},
		}}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.1.7", PodIPs: []corev1.PodIP{{IP: "10.244.1.7"}, {IP: "fd00::7"}},
		HostIP: "192.168.10.5", HostIPs: []corev1.HostIP{{IP: "192.168.10.5"}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "c", ContainerID: "containerd://abc123", Image: "cart:1", ImageID: "x"}}}
	_, err = client.CoreV1().Pods("shop").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	require.NoError(t, err)

	podRef := model.Ref{Kind: model.KindPod, UID: string(pod.UID)}
	recs, _ := takeUntil(t, w, func(recs map[model.Ref]model.Record, _ map[model.Ref]bool) bool {
		return len(recs[podRef].IPs) == 2
	})
	p := recs[podRef]
	assert.Equal(t, "cart-7d9f-x2", p.Name)
	assert.Equal(t, "shop", p.Namespace)
	assert.Equal(t, string(ns.UID), p.NamespaceUID)
	assert.Equal(t, string(node.UID), p.NodeUID)
	assert.Equal(t, string(dep.UID), p.WorkloadUID, "the workload is the Deployment, through the ReplicaSet")
	assert.Equal(t, model.WorkloadDeployment, p.WorkloadKind)
	assert.Equal(t, []string{string(svc.UID)}, p.ServiceUIDs)
	assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.244.1.7"), netip.MustParseAddr("fd00::7")}, p.IPs)
	assert.Equal(t, netip.MustParseAddr("192.168.10.5"), p.HostIP)
	assert.Equal(t, []string{"abc123"}, p.ContainerIDs)
	assert.Equal(t, map[string]string{"MODE": "prod"}, p.Env, "values from secrets are never read")
	assert.Equal(t, "long annotation value", p.Annotations["note"])

	all, present := w.All()
	kinds := map[model.Kind]int{}
	for _, r := range all {
		kinds[r.Kind]++
	}
	assert.Equal(t, 1, kinds[model.KindPod])
	assert.Equal(t, 1, kinds[model.KindWorkload], "the ReplicaSet a Deployment owns is not a workload of its own")
	assert.Contains(t, present, model.Ref{Kind: model.KindWorkload, UID: string(dep.UID)})
	assert.Contains(t, present, model.Ref{Kind: model.KindNode, UID: string(node.UID)})
	for _, r := range all {
		switch r.Kind {
		case model.KindNode:
			assert.Equal(t, []netip.Addr{netip.MustParseAddr("192.168.10.5")}, r.IPs)
		case model.KindService:
			if r.Name != "cart" {
				continue // the API server's own "kubernetes" service
			}
			require.Len(t, r.IPs, 1)
			assert.True(t, netip.MustParsePrefix("10.96.0.0/16").Contains(r.IPs[0]))
			assert.Equal(t, []model.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: "80"}}, r.Ports)
		}
	}

	// A service that stops selecting the pod changes the pod's record.
	svc.Spec.Selector = map[string]string{"app": "other"}
	_, err = client.CoreV1().Services("shop").Update(ctx, svc, metav1.UpdateOptions{})
	require.NoError(t, err)
	takeUntil(t, w, func(recs map[model.Ref]model.Record, _ map[model.Ref]bool) bool {
		r, ok := recs[podRef]
		return ok && len(r.ServiceUIDs) == 0
	})

	// Deleting the pod is a delete.
	require.NoError(t, client.CoreV1().Pods("shop").Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}))
	takeUntil(t, w, func(_ map[model.Ref]model.Record, dels map[model.Ref]bool) bool { return dels[podRef] })
}

func TestTrimKeepsOnlyWhatIsRecorded(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			Annotations: map[string]string{corev1.LastAppliedConfigAnnotation: "{...}", "keep": "me"}},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v"}}, Containers: []corev1.Container{{Name: "c", Image: "i", Args: []string{"--x"}}}},
	}
	out, err := trim(pod)
	require.NoError(t, err)
	p := out.(*corev1.Pod)
	assert.Empty(t, p.ManagedFields)
	assert.Equal(t, map[string]string{"keep": "me"}, p.Annotations)
	assert.Empty(t, p.Spec.Volumes)
	assert.Equal(t, []corev1.Container{{Name: "c"}}, p.Spec.Containers)
}
