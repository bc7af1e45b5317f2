package k8smetadataextension

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/extension/extensiontest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	imeta "github.com/weftobs/weft/extension/k8smetadataextension/internal/metadata"
	"github.com/weftobs/weft/tests/harness"
)

// env is a real API server and a real database reached through a proxy
// that can cut it.
type env struct {
	client kubernetes.Interface
	cfg    func() *Config
	sqlDB  *sql.DB
	proxy  *harness.Proxy
	driver string
	static string // path of the static resources file
}

func newEnv(t *testing.T, driver string) *env {
	kube := harness.StartKube(t)
	restCfg, err := clientcmd.BuildConfigFromFlags("", kube.KubeconfigPath)
	require.NoError(t, err)
	client, err := kubernetes.NewForConfig(restCfg)
	require.NoError(t, err)

	var db *harness.Database
	if driver == DriverPostgres {
		db = harness.Postgres(t)
	} else {
		db = harness.MariaDB(t)
	}
	proxy := harness.StartProxy(t, db.Host+":"+strconv.Itoa(db.Port))
	dsn := fmt.Sprintf("postgres://%s@%s/%s?sslmode=disable", db.User, proxy.Addr, db.Name)
	sqlDriver := "pgx"
	if driver == DriverMySQL {
		dsn = fmt.Sprintf("%s@tcp(%s)/%s?parseTime=true", db.User, proxy.Addr, db.Name)
		sqlDriver = "mysql"
	}
	direct, err := sql.Open(sqlDriver, db.DSN)
	require.NoError(t, err)
	t.Cleanup(func() { direct.Close() })

	// The API server creates the default namespace by itself, shortly
	// after it starts; the lease lives there.
	harness.WaitFor(t, 30*time.Second, "namespace default", func() error {
		_, err := client.CoreV1().Namespaces().Get(t.Context(), "default", metav1.GetOptions{})
		return err
	})
	staticPath := filepath.Join(t.TempDir(), "static.yaml")
	require.NoError(t, os.WriteFile(staticPath, []byte("vpcs: [{id: 7, name: prod}]\nhosts: [{name: pg-primary, vpc: 7, ips: [10.0.5.10]}]\n"), 0o644))
	return &env{client: client, sqlDB: direct, proxy: proxy, driver: driver, static: staticPath, cfg: func() *Config {
		cfg := createDefaultConfig().(*Config)
		cfg.ClusterName = "test-cluster"
		cfg.VPCID = 7
		cfg.Kubeconfig = kube.KubeconfigPath
		cfg.Database = DatabaseConfig{Driver: driver, DSN: configopaque.String(dsn)}
		cfg.LeaderElection.LeaseNamespace = "default"
		cfg.LeaderElection.LeaseDuration = 3 * time.Second
		cfg.LeaderElection.RenewDeadline = 2 * time.Second
		cfg.LeaderElection.RetryPeriod = 500 * time.Millisecond
		cfg.RefreshInterval = 100 * time.Millisecond
		cfg.WriteInterval = 50 * time.Millisecond
		return cfg
	}}
}

func (e *env) start(t *testing.T) *k8sMetadata {
	t.Helper()
	cfg := e.cfg()
	cfg.StaticResources = e.static
	ext, err := NewFactory().Create(t.Context(), extensiontest.NewNopSettings(imeta.Type), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(t.Context(), componenttest.NewNopHost()))
	k := ext.(*k8sMetadata)
	t.Cleanup(func() { _ = k.Shutdown(context.Background()) })
	return k
}

func (e *env) pod(t *testing.T, name, podIP string, owner *appsv1.ReplicaSet) *corev1.Pod {
	t.Helper()
	ctx := t.Context()
	yes := true
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "cart", "tier": "web"}},
		Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "c", Image: "cart:1"}}},
	}
	if owner != nil {
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: owner.Name, UID: owner.UID, Controller: &yes}}
	}
	p, err := e.client.CoreV1().Pods("shop").Create(ctx, p, metav1.CreateOptions{})
	require.NoError(t, err)
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: podIP, PodIPs: []corev1.PodIP{{IP: podIP}}, HostIP: "192.168.10.5",
		HostIPs: []corev1.HostIP{{IP: "192.168.10.5"}}}
	p, err = e.client.CoreV1().Pods("shop").UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	return p
}

func waitIP(t *testing.T, what string, l Lookup, podIP string, want func(Resource) bool) Resource {
	t.Helper()
	var r Resource
	harness.WaitFor(t, 60*time.Second, what, func() error {
		var ok bool
		r, ok = l.ByIP(7, netip.MustParseAddr(podIP))
		if !ok || !want(r) {
			return fmt.Errorf("lookup of %s: %+v, %v", podIP, r, ok)
		}
		return nil
	})
	return r
}

func TestExtension(t *testing.T) {
	for _, driver := range []string{DriverPostgres, DriverMySQL} {
		t.Run(driver, func(t *testing.T) { testExtension(t, driver) })
	}
}

func testExtension(t *testing.T, driver string) {
	e := newEnv(t, driver)
	ctx := t.Context()
	c := e.client
	_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	node, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.10.5"}}
	_, err = c.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	require.NoError(t, err)
	labels := map[string]string{"app": "cart"}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "cart:1"}}}}
	dep, err := c.AppsV1().Deployments("shop").Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "cart"},
		Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl}}, metav1.CreateOptions{})
	require.NoError(t, err)
	yes := true
	rs, err := c.AppsV1().ReplicaSets("shop").Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "cart-1",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "cart", UID: dep.UID, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.CoreV1().Services("shop").Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "cart"},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80}}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	pod1 := e.pod(t, "cart-1-a", "10.244.1.1", rs)

	// Two collectors: one leads and writes, both serve lookups.
	a, b := e.start(t), e.start(t)
	complete := func(r Resource) bool {
		return r.Pod != 0 && r.Node != 0 && r.Workload != 0 && r.Service != 0 && r.Namespace != 0
	}
	ra := waitIP(t, "pod 1 on a", a, "10.244.1.1", complete)
	rb := waitIP(t, "pod 1 on b", b, "10.244.1.1", complete)
	assert.Equal(t, ra, rb)
	assert.Equal(t, WorkloadDeployment, ra.WorkloadKind)
	assert.Equal(t, uint32(7), ra.VPC)
	byUID, ok := a.ByPodUID(string(pod1.UID))
	assert.True(t, ok)
	assert.Equal(t, ra, byUID)
	node1, ok := a.ByIP(7, netip.MustParseAddr("192.168.10.5"))
	assert.True(t, ok)
	assert.Equal(t, ra.Node, node1.Node)
	// A host outside Kubernetes, from the static resources file, and the
	// file changing under a running collector.
	waitIP(t, "the static host", b, "10.0.5.10", func(r Resource) bool { return r.Host != 0 && r.VPC == 7 })
	require.NoError(t, os.WriteFile(e.static, []byte("vpcs: [{id: 7, name: prod}]\nhosts: [{name: pg-primary, vpc: 7, ips: [10.0.5.11]}]\n"), 0o644))
	waitIP(t, "the static host's new IP", b, "10.0.5.11", func(r Resource) bool { return r.Host != 0 })
	_, ok = b.ByIP(7, netip.MustParseAddr("10.0.5.10"))
	assert.False(t, ok, "the old IP is gone")

	harness.WaitFor(t, 10*time.Second, "one leader", func() error {
		if a.leading.Load() == b.leading.Load() {
			return fmt.Errorf("leading: a=%v b=%v", a.leading.Load(), b.leading.Load())
		}
		return nil
	})

	// The dictionary-source tables.
	var name string
	var deleted int
	require.NoError(t, e.sqlDB.QueryRow(e.q("SELECT name, deleted FROM ch_pod WHERE id = ?"), ra.Pod).Scan(&name, &deleted))
	assert.Equal(t, "cart-1-a", name)
	assert.Equal(t, 0, deleted)
	var label string
	require.NoError(t, e.sqlDB.QueryRow(e.q("SELECT value FROM ch_pod_label WHERE id = ? AND "+e.keyCol()+" = ?"), ra.Pod, "tier").Scan(&label))
	assert.Equal(t, "web", label)
	require.NoError(t, e.sqlDB.QueryRow(e.q("SELECT name FROM ch_workload WHERE id = ?"), ra.Workload).Scan(&name))
	assert.Equal(t, "cart", name)

	// A deleted pod is soft-deleted: its row stays, marked, and lookups
	// stop finding its IP.
	require.NoError(t, c.CoreV1().Pods("shop").Delete(ctx, pod1.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}))
	harness.WaitFor(t, 30*time.Second, "pod 1 gone from lookups", func() error {
		if _, ok := b.ByIP(7, netip.MustParseAddr("10.244.1.1")); ok {
			return fmt.Errorf("still found")
		}
		return nil
	})
	require.NoError(t, e.sqlDB.QueryRow(e.q("SELECT name, deleted FROM ch_pod WHERE id = ?"), ra.Pod).Scan(&name, &deleted))
	assert.Equal(t, 1, deleted)

	// The database goes away while pods change: the last snapshot keeps
	// serving, and nothing changed meanwhile is lost once it is back.
	pod2 := e.pod(t, "cart-1-b", "10.244.1.2", rs)
	r2 := waitIP(t, "pod 2", b, "10.244.1.2", complete)
	// Both snapshots must hold pod 2 before the database goes away.
	assert.Equal(t, r2, waitIP(t, "pod 2 on a", a, "10.244.1.2", complete))
	e.proxy.Down()
	pod3 := e.pod(t, "cart-1-c", "10.244.1.3", rs)
	require.NoError(t, c.CoreV1().Pods("shop").Delete(ctx, pod2.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}))
	time.Sleep(2 * time.Second) // the writer and the refreshers fail meanwhile
	r, ok := a.ByIP(7, netip.MustParseAddr("10.244.1.2"))
	assert.True(t, ok, "the last snapshot still serves")
	assert.Equal(t, r2, r)
	e.proxy.Up()
	waitIP(t, "pod 3 after the database came back", a, "10.244.1.3", complete)
	waitIP(t, "pod 3 on b", b, "10.244.1.3", complete)
	harness.WaitFor(t, 30*time.Second, "pod 2's delete after the database came back", func() error {
		if _, ok := b.ByIP(7, netip.MustParseAddr("10.244.1.2")); ok {
			return fmt.Errorf("pod 2 still found")
		}
		return nil
	})

	// Restart: the same ids.
	r3, _ := a.ByPodUID(string(pod3.UID))
	require.NoError(t, a.Shutdown(ctx))
	require.NoError(t, b.Shutdown(ctx))
	// The database is down when the collector starts: it starts anyway,
	// and answers once the database is back.
	e.proxy.Down()
	d := e.start(t)
	time.Sleep(time.Second)
	assert.False(t, d.Ready(), "no snapshot without a database")
	e.proxy.Up()
	again := waitIP(t, "pod 3 after a restart", d, "10.244.1.3", complete)
	assert.Equal(t, r3, again, "ids are stable across restarts")
}

// q writes a query with ? placeholders in the database's own style.
func (e *env) q(query string) string {
	if e.driver != DriverPostgres {
		return query
	}
	out, n := []byte{}, 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			out = append(out, '$')
			out = strconv.AppendInt(out, int64(n), 10)
			continue
		}
		out = append(out, query[i])
	}
	return string(out)
}

// keyCol quotes the key column, a reserved word in MySQL.
func (e *env) keyCol() string {
	if e.driver == DriverMySQL {
		return "`key`"
	}
	return `"key"`
}
