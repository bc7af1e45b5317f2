package store

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
	"github.com/weftobs/weft/tests/harness"
)

// databases are the real databases every test runs against.
var databases = []struct {
	driver string
	create func(testing.TB) *harness.Database
}{
	{DriverPostgres, harness.Postgres},
	{DriverMySQL, harness.MariaDB},
}

// testDB is one fresh database of one driver.
type testDB struct {
	driver, dsn string
}

// forEachDB runs fn once per driver, each with a fresh database.
func forEachDB(t *testing.T, fn func(t *testing.T, db testDB)) {
	for _, d := range databases {
		t.Run(d.driver, func(t *testing.T) {
			fn(t, testDB{driver: d.driver, dsn: d.create(t).DSN})
		})
	}
}

// open opens and migrates a store for cluster, closed when the test ends.
func (db testDB) open(t testing.TB, cluster string) *Store {
	t.Helper()
	s := db.openNoMigrate(t, cluster)
	require.NoError(t, s.Migrate(testCtx(t)))
	return s
}

func (db testDB) openNoMigrate(t testing.TB, cluster string) *Store {
	t.Helper()
	s, err := Open(testCtx(t), db.driver, db.dsn, cluster, zaptest.NewLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// q rewrites ? placeholders for the store's dialect, for test queries.
func q(s *Store, query string) string {
	if !s.d.numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString(s.d.ph(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func queryInt(t testing.TB, s *Store, query string, args ...any) int64 {
	t.Helper()
	var v int64
	require.NoError(t, s.db.QueryRowContext(testCtx(t), q(s, query), args...).Scan(&v), query)
	return v
}

func queryTime(t testing.TB, s *Store, query string, args ...any) time.Time {
	t.Helper()
	var v time.Time
	require.NoError(t, s.db.QueryRowContext(testCtx(t), q(s, query), args...).Scan(&v), query)
	return v.UTC()
}

// kvRows is a key/value table's rows of one id.
func kvRows(t testing.TB, s *Store, table string, id uint32) map[string]string {
	t.Helper()
	rows, err := s.db.QueryContext(testCtx(t), q(s, "SELECT "+s.d.col("key")+", value FROM "+table+" WHERE id = ?"), int64(id))
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		require.NoError(t, rows.Scan(&k, &v))
		out[k] = v
	}
	require.NoError(t, rows.Err())
	return out
}

func apply(t testing.TB, s *Store, recs []model.Record, dels ...model.Ref) int64 {
	t.Helper()
	v, err := s.Apply(testCtx(t), recs, dels)
	require.NoError(t, err)
	return v
}

// rowsByRef is every row (all versions) keyed by kind and uid.
func rowsByRef(t testing.TB, s *Store) map[model.Ref]model.Row {
	t.Helper()
	rows, err := s.Changes(testCtx(t), 0, 0)
	require.NoError(t, err)
	out := map[model.Ref]model.Row{}
	for _, r := range rows {
		out[model.Ref{Kind: r.Kind, UID: r.UID}] = r
	}
	return out
}

func ref(k model.Kind, uid string) model.Ref { return model.Ref{Kind: k, UID: uid} }

func pod(uid, name string) model.Record {
	return model.Record{
		Kind: model.KindPod, UID: uid, Name: name, Namespace: "default",
		NamespaceUID: "ns-default", NodeUID: "node-1", WorkloadUID: "deploy-web", WorkloadKind: model.WorkloadDeployment,
		ServiceUIDs:  []string{"svc-web"},
		Labels:       map[string]string{"app": "web", "pod-template-hash": "7d9f8c6b5"},
		Annotations:  map[string]string{"prometheus.io/scrape": "true"},
		Env:          map[string]string{"LOG_LEVEL": "info"},
		IPs:          []netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd00::1")},
		HostIP:       netip.MustParseAddr("192.168.0.10"),
		ContainerIDs: []string{"c0ffee" + uid},
	}
}

// realisticPods are n pods of a mid-size cluster: 10 labels, 5 annotations
// (two longer than 100 bytes), 20 env values, 2 containers, relations to
// 20 namespaces, 50 nodes, 500 workloads and 300 services. seed makes the
// uids distinct between calls.
func realisticPods(seed, n int) []model.Record {
	pods := make([]model.Record, n)
	for i := range pods {
		wl := i % 500
		ns := wl % 20
		uid := fmt.Sprintf("%08x-%04x-4%03x-8%03x-%012x", seed, i>>16, i&0xfff, (i>>12)&0xf, i)
		app := fmt.Sprintf("app-%03d", wl)
		labels := map[string]string{
			"app": app, "app.kubernetes.io/name": app, "app.kubernetes.io/instance": app + "-prod",
			"app.kubernetes.io/version": "1.24.3", "app.kubernetes.io/component": "backend",
			"app.kubernetes.io/part-of": fmt.Sprintf("system-%d", ns), "app.kubernetes.io/managed-by": "helm",
			"pod-template-hash": fmt.Sprintf("%010x", wl*7919), "team": fmt.Sprintf("team-%d", ns%7), "tier": "api",
		}
		annotations := map[string]string{
			"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
			"kubectl.kubernetes.io/restartedAt": "2025-11-03T10:15:42Z",
			"checksum/config":                   fmt.Sprintf("%064x", i*2654435761),
			"sidecar.istio.io/status": `{"initContainers":["istio-init"],"containers":["istio-proxy"],"volumes":["istio-envoy","istio-data",` +
				`"istio-podinfo","istio-token","istiod-ca-cert"],"imagePullSecrets":null,"revision":"default"}`,
		}
		env := make(map[string]string, 20)
		for e := 0; e < 20; e++ {
			env[fmt.Sprintf("APP_SETTING_%02d", e)] = fmt.Sprintf("value-%d-for-%s-with-some-length-%d", e, app, i)
		}
		svc := []string{fmt.Sprintf("svc-%03d", wl%300)}
		if wl%3 == 0 {
			svc = append(svc, fmt.Sprintf("svc-headless-%03d", wl%300))
		}
		pods[i] = model.Record{
			Kind: model.KindPod, UID: uid, Name: fmt.Sprintf("%s-7d9f8c6b5-%05d", app, i), Namespace: fmt.Sprintf("ns-%02d", ns),
			NamespaceUID: fmt.Sprintf("uid-ns-%02d", ns), NodeUID: fmt.Sprintf("uid-node-%02d", i%50),
			WorkloadUID: fmt.Sprintf("uid-deploy-%03d", wl), WorkloadKind: model.WorkloadDeployment, ServiceUIDs: svc,
			Labels: labels, Annotations: annotations, Env: env,
			IPs:          []netip.Addr{netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})},
			HostIP:       netip.AddrFrom4([4]byte{192, 168, 1, byte(i % 50)}),
			ContainerIDs: []string{fmt.Sprintf("%064x", i*3+1), fmt.Sprintf("%064x", i*3+2)},
		}
	}
	return pods
}
