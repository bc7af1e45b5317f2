package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/weftobs/weft/tests/harness"
)

// TestSmartEncoding runs weftcol with the real k8s_metadata extension (a real
// kube-apiserver, a real PostgreSQL) and smart_encoding between OTLP in and a
// file: spans shaped the way OTel SDKs and k8sattributesprocessor shape them
// come out with integer ids instead of the k8s strings, on both sides of a
// call; spans from unknown IPs pass through unharmed.
func TestSmartEncoding(t *testing.T) {
	kube := harness.StartKube(t)
	db := harness.Postgres(t)
	restCfg, err := clientcmd.BuildConfigFromFlags("", kube.KubeconfigPath)
	require.NoError(t, err)
	client, err := kubernetes.NewForConfig(restCfg)
	require.NoError(t, err)
	ctx := t.Context()

	_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	pod := func(name, ip string) {
		p, err := client.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i"}}}}, metav1.CreateOptions{})
		require.NoError(t, err)
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
		_, err = client.CoreV1().Pods("shop").UpdateStatus(ctx, p, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	pod("cart", "10.244.0.8")
	pod("db", "10.244.1.9")

	config := fmt.Sprintf(`extensions:
  health_check:
    endpoint: ${env:WEFT_HEALTH_ENDPOINT}
  k8s_metadata:
    cluster_name: e2e
    vpc_id: 3
    kubeconfig: %s
    database:
      dsn: %s
    leader_election:
      enabled: false
    refresh_interval: 200ms
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: ${env:WEFT_OTLP_GRPC_ENDPOINT}
processors:
  smart_encoding:
    vpc_id: 3
exporters:
  file:
    path: ${env:WEFT_DATA_DIR}/traces.jsonl
service:
  extensions: [health_check, k8s_metadata]
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [smart_encoding]
      exporters: [file]
`, kube.KubeconfigPath, db.DSN)
	col := harness.StartCollector(t, config)
	conn, err := grpc.NewClient(col.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	otlp := ptraceotlp.NewGRPCClient(conn)

	send := func(name, localIP, peerIP string) {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		ra := rs.Resource().Attributes()
		ra.PutStr("service.name", "cart")
		ra.PutStr("k8s.pod.ip", localIP)
		ra.PutStr("k8s.pod.name", "cart")
		ra.PutStr("k8s.namespace.name", "shop")
		ra.PutStr("k8s.pod.labels.app", "cart")
		ra.PutStr("k8s.container.name", "c")
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetName(name)
		sp.SetKind(ptrace.SpanKindClient)
		sp.SetTraceID(pcommon.TraceID{1, 2, 3})
		sp.SetSpanID(pcommon.SpanID{byte(len(name))})
		sp.Attributes().PutStr("server.address", peerIP)
		sp.Attributes().PutStr("db.system", "postgresql")
		_, err := otlp.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
		require.NoError(t, err)
	}

	// Until the extension has its first snapshot, spans pass untagged:
	// keep sending until one comes out tagged.
	var tagged spanRec
	harness.WaitFor(t, 60*time.Second, "a tagged span", func() error {
		send("query", "10.244.0.8", "10.244.1.9")
		for _, s := range readAllSpans(t, filepath.Join(col.DataDir, "traces.jsonl")) {
			if _, ok := s.resource.Attributes().Get("weft.pod_id"); ok {
				tagged = s
				return nil
			}
		}
		return fmt.Errorf("no tagged span yet")
	})
	res := tagged.resource.Attributes()
	for _, k := range []string{"weft.pod_id", "weft.namespace_id", "weft.cluster_id", "weft.auto_instance_id"} {
		v, ok := res.Get(k)
		require.True(t, ok, k)
		assert.Positive(t, v.Int(), k)
	}
	assertAttr(t, res, "weft.vpc_id", int64(3))
	assertAttr(t, res, "weft.auto_instance_type", int64(10))
	for _, gone := range []string{"k8s.pod.ip", "k8s.pod.name", "k8s.namespace.name", "k8s.pod.labels.app"} {
		_, ok := res.Get(gone)
		assert.False(t, ok, "%s should be stripped: the pod id determines it", gone)
	}
	assertAttr(t, res, "k8s.container.name", "c")
	assertAttr(t, res, "service.name", "cart")
	peerPod, ok := tagged.span.Attributes().Get("weft.peer.pod_id")
	require.True(t, ok)
	localPod, _ := res.Get("weft.pod_id")
	assert.NotEqual(t, localPod.Int(), peerPod.Int(), "the peer is the db pod")
	assertAttr(t, tagged.span.Attributes(), "server.address", "10.244.1.9")

	// Unknown IPs: nothing guessed, nothing stripped.
	send("unknown", "10.99.0.1", "10.99.0.2")
	harness.WaitFor(t, 10*time.Second, "the unknown span", func() error {
		for _, s := range readAllSpans(t, filepath.Join(col.DataDir, "traces.jsonl")) {
			if s.span.Name() == "unknown" {
				tagged = s
				return nil
			}
		}
		return fmt.Errorf("not yet")
	})
	res = tagged.resource.Attributes()
	assertAttr(t, res, "k8s.pod.ip", "10.99.0.1")
	assertAttr(t, res, "k8s.pod.name", "cart")
	assertAttr(t, res, "weft.vpc_id", int64(3))
	_, ok = res.Get("weft.pod_id")
	assert.False(t, ok)
	_, ok = tagged.span.Attributes().Get("weft.peer.pod_id")
	assert.False(t, ok)
	assert.Equal(t, 9, res.Len()+tagged.span.Attributes().Len(), "the six resource and two span attributes, and weft.vpc_id")
}
