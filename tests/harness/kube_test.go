package harness

import (
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// pod is the part of a Pod that the test looks at.
type pod struct {
	Metadata struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		UID       string `json:"uid"`
	} `json:"metadata"`
	Status struct {
		Phase  string `json:"phase"`
		PodIP  string `json:"podIP"`
		HostIP string `json:"hostIP"`
	} `json:"status"`
}

func TestKube(t *testing.T) {
	k := StartKube(t)

	var version struct {
		GitVersion string `json:"gitVersion"`
	}
	k.DoJSON(t, "GET", "/version", nil, &version)
	if version.GitVersion != KubeVersion {
		t.Errorf("gitVersion = %q, want %q", version.GitVersion, KubeVersion)
	}

	// Authentication is on: only the token opens the API.
	req, _ := http.NewRequest("GET", k.Host+"/api/v1/namespaces", nil)
	req.Header.Set("Authorization", "Bearer not-"+k.Token)
	resp, err := k.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong token: status %d, want %d", resp.StatusCode, http.StatusUnauthorized)
	}

	if b, err := os.ReadFile(k.KubeconfigPath); err != nil || !strings.Contains(string(b), k.Host) {
		t.Errorf("kubeconfig %s does not name %s: %v\n%s", k.KubeconfigPath, k.Host, err, b)
	}

	const ns = "weft-test"
	k.DoJSON(t, "POST", "/api/v1/namespaces", `{"metadata":{"name":"`+ns+`"}}`, nil)

	// The namespace has no "default" ServiceAccount (no controller
	// manager creates one); the Pod is accepted because StartKube turns
	// the ServiceAccount admission plugin off.
	var created pod
	k.DoJSON(t, "POST", "/api/v1/namespaces/"+ns+"/pods", `{
		"metadata": {"name": "web-1", "labels": {"app": "web"}},
		"spec": {
			"nodeName": "node-1",
			"containers": [{"name": "web", "image": "example.invalid/web:1"}]
		}
	}`, &created)
	if created.Metadata.UID == "" {
		t.Fatalf("created pod has no uid: %+v", created)
	}

	// There is no kubelet: the test reports the Pod's addresses itself.
	const podIP, hostIP = "10.244.1.5", "10.0.0.7"
	k.DoJSON(t, "PATCH", "/api/v1/namespaces/"+ns+"/pods/web-1/status", `{"status": {
		"phase": "Running",
		"podIP": "`+podIP+`", "podIPs": [{"ip": "`+podIP+`"}],
		"hostIP": "`+hostIP+`", "hostIPs": [{"ip": "`+hostIP+`"}]
	}}`, nil)
	checkPod := func() {
		t.Helper()
		var got pod
		k.DoJSON(t, "GET", "/api/v1/namespaces/"+ns+"/pods/web-1", nil, &got)
		if got.Metadata.UID != created.Metadata.UID || got.Status.Phase != "Running" ||
			got.Status.PodIP != podIP || got.Status.HostIP != hostIP {
			t.Errorf("pod = %+v, want uid %s, Running, podIP %s, hostIP %s",
				got, created.Metadata.UID, podIP, hostIP)
		}
	}
	checkPod()

	var svc struct {
		Spec struct {
			ClusterIP string `json:"clusterIP"`
		} `json:"spec"`
	}
	k.DoJSON(t, "POST", "/api/v1/namespaces/"+ns+"/services", `{
		"metadata": {"name": "web"},
		"spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
	}`, &svc)
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !netip.MustParsePrefix("10.96.0.0/16").Contains(ip) {
		t.Errorf("service clusterIP = %q, want an address in 10.96.0.0/16", svc.Spec.ClusterIP)
	}

	// The objects live in etcd, so they outlive the API server.
	k.StopAPIServer()
	if err := dialable(strings.TrimPrefix(k.Host, "https://")); err == nil {
		t.Fatalf("kube-apiserver still accepts connections after StopAPIServer")
	}
	k.StartAPIServer(t)
	checkPod()
}
