package workload

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Apply creates the cluster in a Kubernetes API server: namespaces, nodes,
// Deployments with their current ReplicaSet and Service, and the pods
// (owned by the ReplicaSets, with their labels, annotations, env values,
// node and IP). No controllers run: the objects are written as they would
// be once scheduled. The pods' UIDs are the server's and replace the
// generated ones in c, so that telemetry carrying k8s.pod.uid matches.
func (c *Cluster) Apply(ctx context.Context, client kubernetes.Interface) error {
	for _, ns := range c.Namespaces {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	err := parallel(len(c.Nodes), func(i int) error {
		n := c.Nodes[i]
		labels := map[string]string{}
		for _, kv := range n.Labels {
			labels[kv.Key] = kv.Value
		}
		node, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: labels},
			Spec: corev1.NodeSpec{ProviderID: "aws:///" + n.Zone + "/" + n.InstanceID}}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP}, {Type: corev1.NodeHostName, Address: n.Name}}
		_, err = client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return err
	}
	replicaSets := make([]*appsv1.ReplicaSet, len(c.Workloads))
	err = parallel(len(c.Workloads), func(i int) error {
		w := c.Workloads[i]
		selector := &metav1.LabelSelector{MatchLabels: map[string]string{"app": w.Name}}
		template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": w.Name}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: w.Image + ":" + w.Version}}}}
		d, err := client.AppsV1().Deployments(w.Namespace).Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: w.Name},
			Spec: appsv1.DeploymentSpec{Replicas: ptr.To(int32(len(w.Pods))), Selector: selector, Template: template}}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("deployment %s/%s: %w", w.Namespace, w.Name, err)
		}
		rs, err := client.AppsV1().ReplicaSets(w.Namespace).Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: w.ReplicaSet,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: ptr.To(true)}}},
			Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To(int32(len(w.Pods))), Selector: selector, Template: template}}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("replicaset %s/%s: %w", w.Namespace, w.ReplicaSet, err)
		}
		replicaSets[i] = rs
		_, err = client.CoreV1().Services(w.Namespace).Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: w.Name},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": w.Name}, Ports: []corev1.ServicePort{{Name: "http", Port: 8080}}}}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("service %s/%s: %w", w.Namespace, w.Name, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return parallel(len(c.Pods), func(i int) error {
		p := &c.Pods[i]
		w := c.Workloads[p.Workload]
		rs := replicaSets[p.Workload]
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: w.Namespace, Labels: kvMap(p.Labels), Annotations: kvMap(p.Annotations),
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}},
			Spec: corev1.PodSpec{NodeName: c.Nodes[p.Node].Name, Containers: []corev1.Container{{Name: "app", Image: w.Image + ":" + w.Version}}},
		}
		for _, kv := range p.Env {
			pod.Spec.Containers[0].Env = append(pod.Spec.Containers[0].Env, corev1.EnvVar{Name: kv.Key, Value: kv.Value})
		}
		created, err := client.CoreV1().Pods(w.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("pod %s/%s: %w", w.Namespace, p.Name, err)
		}
		created.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: p.IP, PodIPs: []corev1.PodIP{{IP: p.IP}}, HostIP: c.Nodes[p.Node].IP,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, ContainerID: "containerd://" + p.ContainerID}}}
		if _, err := client.CoreV1().Pods(w.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("pod %s/%s status: %w", w.Namespace, p.Name, err)
		}
		p.UID = string(created.UID)
		return nil
	})
}

func kvMap(kvs []KV) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// parallel runs fn for 0..n-1 on a few goroutines: the API server takes
// concurrent writes far faster than one at a time.
func parallel(n int, fn func(i int) error) error {
	var g errgroup.Group
	g.SetLimit(16)
	for i := 0; i < n; i++ {
		g.Go(func() error { return fn(i) })
	}
	return g.Wait()
}
