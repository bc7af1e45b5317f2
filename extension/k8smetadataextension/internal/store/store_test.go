package store

import (
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
)

func TestEveryKindHasTables(t *testing.T) {
	for _, k := range model.Kinds {
		assert.True(t, knownKind(k), "kind %s has no ch_ columns in schema.go", k)
		assert.Contains(t, v1Kinds, k, "kind %s has no tables: add a migration creating ch_%s", k, k)
	}
}

func TestOpenRejects(t *testing.T) {
	ctx := testCtx(t)
	_, err := Open(ctx, "sqlite", "x", "c", nil)
	require.ErrorContains(t, err, `"postgres" or "mysql"`)
	_, err = Open(ctx, DriverPostgres, "postgres://127.0.0.1:5432/x", "", nil)
	require.ErrorContains(t, err, "cluster name is empty")
	_, err = Open(ctx, DriverMySQL, "not a dsn", "c", nil)
	require.ErrorContains(t, err, "not a MySQL DSN")
}

func TestMigrate(t *testing.T) {
	forEachDB(t, func(t *testing.T, db testDB) {
		// Four collectors starting at once.
		stores := make([]*Store, 4)
		for i := range stores {
			stores[i] = db.openNoMigrate(t, "c1")
		}
		_, err := stores[0].Watermark(testCtx(t))
		require.ErrorContains(t, err, "Migrate", "before Migrate the error says what to do")

		errs := make([]error, len(stores))
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Migrate(testCtx(t))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			require.NoError(t, err, "store %d", i)
		}
		// Idempotent.
		require.NoError(t, stores[1].Migrate(testCtx(t)))

		s := stores[2]
		assert.Equal(t, int64(len(migrations)), queryInt(t, s, "SELECT COUNT(*) FROM "+migrationsTable))
		assert.Equal(t, int64(1), queryInt(t, s, "SELECT COUNT(*) FROM "+watermarkTable))
		assert.Equal(t, int64(len(model.Kinds)), queryInt(t, s, "SELECT COUNT(*) FROM "+counterTable))
		for _, k := range model.Kinds {
			assert.Zero(t, queryInt(t, s, "SELECT COUNT(*) FROM "+chTable(k)))
			for kv := kvTable(0); kv < numKV; kv++ {
				if hasKV(k, kv) {
					assert.Zero(t, queryInt(t, s, "SELECT COUNT(*) FROM "+kvTableName(k, kv)))
				}
			}
		}
		w, err := s.Watermark(testCtx(t))
		require.NoError(t, err)
		assert.Zero(t, w)
	})
}

func TestIDsStableAcrossReapplyAndRestart(t *testing.T) {
	forEachDB(t, func(t *testing.T, db testDB) {
		s := db.open(t, "prod")
		cid, err := s.ClusterID(testCtx(t))
		require.NoError(t, err)
		assert.Equal(t, uint32(1), cid)

		recs := []model.Record{pod("p1", "web-1"), pod("p2", "web-2"), pod("p3", "web-3")}
		v1 := apply(t, s, recs)
		before := rowsByRef(t, s)
		assert.Equal(t, uint32(1), before[ref(model.KindPod, "p1")].ID, "ids are handed out from 1 in record order")
		assert.Equal(t, uint32(3), before[ref(model.KindPod, "p3")].ID)

		// Re-applying the same records is a no-op: no write, no new version.
		v2 := apply(t, s, recs)
		assert.Equal(t, v1, v2)
		assert.Equal(t, before, rowsByRef(t, s))

		// A restart (new Store on the same database) keeps every id.
		require.NoError(t, s.Close())
		s = db.open(t, "prod")
		cid2, err := s.ClusterID(testCtx(t))
		require.NoError(t, err)
		assert.Equal(t, cid, cid2)
		changed := pod("p2", "web-2-renamed")
		v3 := apply(t, s, append(recs[:1:1], changed, pod("p4", "web-4")))
		assert.Greater(t, v3, v2)
		after := rowsByRef(t, s)
		for r, row := range before {
			assert.Equal(t, row.ID, after[r].ID, "%v", r)
		}
		assert.Equal(t, "web-2-renamed", after[ref(model.KindPod, "p2")].Name)
		assert.Equal(t, v3, after[ref(model.KindPod, "p2")].Version)
		assert.Equal(t, v1, after[ref(model.KindPod, "p1")].Version, "an unchanged record keeps its version")
		assert.Equal(t, uint32(4), after[ref(model.KindPod, "p4")].ID)
	})
}

func TestPlaceholderThenFill(t *testing.T) {
	forEachDB(t, func(t *testing.T, db testDB) {
		s := db.open(t, "prod")
		p := pod("p1", "web-1")
		p.ServiceUIDs = []string{"svc-b", "svc-a"}
		v1 := apply(t, s, []model.Record{p})

		rows := rowsByRef(t, s)
		node := rows[ref(model.KindNode, "node-1")]
		require.NotZero(t, node.ID, "the node the pod runs on got an id before its record came")
		assert.Empty(t, node.Name)
		assert.False(t, node.Deleted)
		assert.Equal(t, v1, node.Version)
		got := rows[ref(model.KindPod, "p1")]
		assert.Equal(t, node.ID, got.NodeID)
		assert.Equal(t, rows[ref(model.KindNamespace, "ns-default")].ID, got.NamespaceID)
		assert.Equal(t, rows[ref(model.KindWorkload, "deploy-web")].ID, got.WorkloadID)
		assert.Equal(t, rows[ref(model.KindService, "svc-b")].ID, got.ServiceID, "the first service in the record's order")
		assert.NotZero(t, rows[ref(model.KindService, "svc-a")].ID)
		assert.Equal(t, model.WorkloadDeployment, got.WorkloadKind)
		assert.Equal(t, []netip.Addr{netip.MustParseAddr("10.1.0.1"), netip.MustParseAddr("fd00::1")}, got.IPs)
		assert.Equal(t, []string{"c0ffeep1"}, got.ContainerIDs)
		assert.Equal(t, int64(0), queryInt(t, s, "SELECT COUNT(*) FROM ch_node WHERE id = ? AND name <> ''", int64(node.ID)))
		assert.Equal(t, int64(node.ID), queryInt(t, s, "SELECT node_id FROM ch_pod WHERE id = ?", int64(got.ID)))
		assert.Equal(t, int64(got.ServiceID), queryInt(t, s, "SELECT service_id FROM ch_pod WHERE id = ?", int64(got.ID)))

		// The node's record fills the placeholder under the same id.
		v2 := apply(t, s, []model.Record{{Kind: model.KindNode, UID: "node-1", Name: "worker-1",
			IPs: []netip.Addr{netip.MustParseAddr("192.168.0.10")}, Labels: map[string]string{"zone": "a"}}})
		filled := rowsByRef(t, s)[ref(model.KindNode, "node-1")]
		assert.Equal(t, node.ID, filled.ID)
		assert.Equal(t, "worker-1", filled.Name)
		assert.Equal(t, v2, filled.Version)
		assert.Equal(t, int64(1), queryInt(t, s, "SELECT COUNT(*) FROM ch_node WHERE id = ? AND name = 'worker-1' AND deleted = 0", int64(node.ID)))
		assert.Equal(t, map[string]string{"zone": "a"}, kvRows(t, s, "ch_node_label", node.ID))
	})
}

func TestSoftDeleteKeepsIDAndRecreateReusesIt(t *testing.T) {
	forEachDB(t, func(t *testing.T, db testDB) {
		s := db.open(t, "prod")
		apply(t, s, []model.Record{pod("p1", "web-1"), pod("p2", "web-2")})
		id := rowsByRef(t, s)[ref(model.KindPod, "p1")].ID
		t0 := queryTime(t, s, "SELECT updated_at FROM ch_pod WHERE id = ?", int64(id))

		v := apply(t, s, nil, ref(model.KindPod, "p1"))
		rows, err := s.Changes(testCtx(t), v-1, 0)
		require.NoError(t, err)
		require.Len(t, rows, 1)
		assert.Equal(t, model.KindPod, rows[0].Kind)
		assert.Equal(t, id, rows[0].ID)
		assert.True(t, rows[0].Deleted)
		assert.Equal(t, "web-1", rows[0].Name, "a deleted row keeps its content so old telemetry still decodes")
		assert.Equal(t, int64(1), queryInt(t, s, "SELECT deleted FROM ch_pod WHERE id = ?", int64(id)))
		assert.True(t, queryTime(t, s, "SELECT updated_at FROM ch_pod WHERE id = ?", int64(id)).After(t0))
		assert.Equal(t, map[string]string{"app": "web", "pod-template-hash": "7d9f8c6b5"}, kvRows(t, s, "ch_pod_label", id),
			"labels stay while the row is kept")

		// Deleting again, or deleting an unknown uid, changes nothing.
		assert.Equal(t, v, apply(t, s, nil, ref(model.KindPod, "p1"), ref(model.KindPod, "never-seen")))
		assert.NotContains(t, rowsByRef(t, s), ref(model.KindPod, "never-seen"))

		// The same uid again: same id, live.
		v2 := apply(t, s, []model.Record{pod("p1", "web-1")})
		assert.Greater(t, v2, v)
		back := rowsByRef(t, s)[ref(model.KindPod, "p1")]
		assert.Equal(t, id, back.ID)
		assert.False(t, back.Deleted)
		assert.Equal(t, int64(0), queryInt(t, s, "SELECT deleted FROM ch_pod WHERE id = ?", int64(id)))

		// Written and deleted in one Apply: deleted wins.
		apply(t, s, []model.Record{pod("p3", "web-3")}, ref(model.KindPod, "p3"))
		assert.True(t, rowsByRef(t, s)[ref(model.KindPod, "p3")].Deleted)
	})
}

func TestPurgeFreesIDsForReuseAfterExhaustion(t *testing.T) {
	forEachDB(t, func(t *testing.T, db testDB) {
		s := db.open(t, "prod")
		s.maxID = func(k model.Kind) uint32 {
			if k == model.KindPod {
				return 3
			}
			return k.MaxID()
		}
		apply(t, s, []model.Record{pod("p1", "a"), pod("p2", "b"), pod("p3", "c")})
		w := apply(t, s, nil)

		_, err := s.Apply(testCtx(t), []model.Record{pod("p4", "d")}, nil)
		require.ErrorIs(t, err, ErrKindFull)
		assert.Contains(t, err.Error(), "pod")
		assert.Equal(t, w, apply(t, s, nil), "a failed Apply does not move the watermark")

		// Soft-deleted rows keep their ids: still full.
		apply(t, s, nil, ref(model.KindPod, "p2"))
		_, err = s.Apply(testCtx(t), []model.Record{pod("p4", "d")}, nil)
		require.ErrorIs(t, err, ErrKindFull)

		// Purging rows deleted before an earlier time removes nothing.
		n, err := s.Purge(testCtx(t), time.Now().Add(-time.Hour))
		require.NoError(t, err)
		assert.Zero(t, n)

		n, err = s.Purge(testCtx(t), time.Now().Add(time.Hour))
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.Zero(t, queryInt(t, s, "SELECT COUNT(*) FROM ch_pod WHERE id = 2"))
		assert.Empty(t, kvRows(t, s, "ch_pod_label", 2))
		assert.Empty(t, kvRows(t, s, "ch_pod_env", 2))
		assert.NotContains(t, rowsByRef(t, s), ref(model.KindPod, "p2"))

		// The next new uid gets the freed id, with only its own labels.
		p4 := pod("p4", "d")
		p4.Labels = map[string]string{"only": "mine"}
		apply(t, s, []model.Record{p4})
		assert.Equal(t, uint32(2), rowsByRef(t, s)[ref(model.KindPod, "p4")].ID)
		assert.Equal(t, map[string]string{"only": "mine"}, kvRows(t, s, "ch_pod_label", 2))

		_, err = s.Apply(testCtx(t), []model.Record{pod("p5", "e")}, nil)
		require.ErrorIs(t, err, ErrKindFull)

		// Gaps are found wherever they are, smallest first.
		apply(t, s, nil, ref(model.KindPod, "p1"), ref(model.KindPod, "p3"))
		_, err = s.Purge(testCtx(t), time.Now().Add(time.Hour))
		require.NoError(t, err)
		apply(t, s, []model.Record{pod("p6", "f"), pod("p7", "g")})
		rows := rowsByRef(t, s)
		assert.Equal(t, uint32(1), rows[ref(model.KindPod, "p6")].ID)
		assert.Equal(t, uint32(3), rows[ref(model.KindPod, "p7")].ID)
	})
}

func TestKindFullOnFirstAllocation(t *testing.T) {
	forEachDB(t, func(t *testing.T, db testDB) {
		s := db.open(t, "prod")
		s.maxID = func(k model.Kind) uint32 {
			if k == model.KindNamespace {
				return 1
			}
			return k.MaxID()
		}
		p := pod("p1", "a")
		p2 := pod("p2", "b")
		p2.NamespaceUID = "ns-other"
		_, err := s.Apply(testCtx(t), []model.Record{p, p2}, nil)
		require.ErrorIs(t, err, ErrKindFull)
		require.ErrorContains(t, err, "namespace")
		// Nothing of that Apply was written, not even the pods.
		assert.Zero(t, queryInt(t, s, "SELECT COUNT(*) FROM weft_resource WHERE kind = ?", int64(model.KindPod)))
		assert.Equal(t, int64(1), queryInt(t, s, "SELECT next_id FROM weft_id_counter WHERE kind = ?", int64(model.KindPod)))
	})
}

func TestReconcile(t *testing.T) {
	forEachDB(t, func(t *testing.T, db testDB) {
		s := db.open(t, "prod")
		other := db.open(t, "staging")
		apply(t, s, []model.Record{pod("p1", "a"), pod("p2", "b"), pod("p3", "c")})
		apply(t, other, []model.Record{pod("o1", "x")})

		present := map[model.Ref]struct{}{ref(model.KindPod, "p1"): {}, ref(model.KindPod, "p3"): {}, ref(model.KindNode, "node-1"): {}}
		n, v, err := s.Reconcile(testCtx(t), []model.Kind{model.KindPod, model.KindNode}, present)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		rows := rowsByRef(t, s)
		assert.True(t, rows[ref(model.KindPod, "p2")].Deleted)
		assert.Equal(t, v, rows[ref(model.KindPod, "p2")].Version)
		assert.False(t, rows[ref(model.KindPod, "p1")].Deleted)
		assert.False(t, rows[ref(model.KindPod, "o1")].Deleted, "another cluster's rows are not this re-list's business")

		// Nothing more to do: no write, watermark unchanged.
		n, v2, err := s.Reconcile(testCtx(t), []model.Kind{model.KindPod, model.KindNode}, present)
		require.NoError(t, err)
		assert.Zero(t, n)
		assert.Equal(t, v, v2)

		// A placeholder nothing filled goes too.
		n, _, err = s.Reconcile(testCtx(t), []model.Kind{model.KindWorkload}, nil)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.True(t, rowsByRef(t, s)[ref(model.KindWorkload, "deploy-web")].Deleted)

		_, _, err = s.Reconcile(testCtx(t), []model.Kind{model.KindCluster}, nil)
		require.ErrorContains(t, err, "cluster")
	})
}

func TestChangesAndWatermark(t *testing.T) {
	forEachDB(t, func(t *testing.T, db testDB) {
		s := db.open(t, "prod")
		w0, err := s.Watermark(testCtx(t))
		require.NoError(t, err)
		vA := apply(t, s, []model.Record{pod("a1", "a1"), pod("a2", "a2"), pod("a3", "a3")})
		assert.Greater(t, vA, w0)
		vB := apply(t, s, []model.Record{pod("b1", "b1"), {Kind: model.KindNode, UID: "node-1", Name: "n1"}})
		assert.Equal(t, vA+1, vB)
		w, err := s.Watermark(testCtx(t))
		require.NoError(t, err)
		assert.Equal(t, vB, w)

		all, err := s.Changes(testCtx(t), 0, 0)
		require.NoError(t, err)
		for i := 1; i < len(all); i++ {
			a, b := all[i-1], all[i]
			assert.True(t, a.Version < b.Version || a.Version == b.Version && (a.Kind < b.Kind || a.Kind == b.Kind && a.ID < b.ID),
				"rows out of order: %v before %v", a, b)
		}
		onlyB, err := s.Changes(testCtx(t), vA, 0)
		require.NoError(t, err)
		var names []string
		for _, r := range onlyB {
			assert.Equal(t, vB, r.Version)
			names = append(names, r.Name)
		}
		assert.ElementsMatch(t, []string{"n1", "b1"}, names)

		// Paging with a small limit never splits a version and, continued
		// from the last row's version, sees every row once.
		var paged []model.Row
		since := int64(0)
		for {
			page, err := s.Changes(testCtx(t), since, 2)
			require.NoError(t, err)
			if len(page) == 0 {
				break
			}
			last := page[len(page)-1].Version
			for _, r := range all {
				if r.Version == last {
					assert.Contains(t, page, r, "a page holds its last version whole")
				}
			}
			paged = append(paged, page...)
			since = last
		}
		assert.Equal(t, all, paged)

		// Nothing changed, nothing moves.
		assert.Equal(t, vB, apply(t, s, []model.Record{pod("b1", "b1")}))
		rows, err := s.Changes(testCtx(t), vB, 10)
		require.NoError(t, err)
		assert.Empty(t, rows)
	})
}

func TestUpdatedAtMovesOnEveryChange(t *testing.T) {
	forEachDB(t, func(t *testing.T, db testDB) {
		s := db.open(t, "prod")
		apply(t, s, []model.Record{pod("p1", "web-1")})
		id := rowsByRef(t, s)[ref(model.KindPod, "p1")].ID
		chAt := func() time.Time {
			return queryTime(t, s, "SELECT updated_at FROM ch_pod WHERE id = ?", int64(id))
		}
		labelAt := func() time.Time {
			return queryTime(t, s, "SELECT MAX(updated_at) FROM ch_pod_label WHERE id = ?", int64(id))
		}
		t1, l1 := chAt(), labelAt()
		assert.Equal(t, t1, l1, "one Apply stamps all its rows alike")
		assert.WithinDuration(t, time.Now(), t1, time.Minute, "updated_at is UTC wall-clock time")
		assert.Equal(t, t1, rowsByRef(t, s)[ref(model.KindPod, "p1")].UpdatedAt)

		p := pod("p1", "web-1-renamed")
		apply(t, s, []model.Record{p})
		t2 := chAt()
		assert.True(t, t2.After(t1))
		assert.Equal(t, l1, labelAt(), "labels did not change: their rows are not rewritten")

		p.Labels = map[string]string{"app": "web", "pod-template-hash": "other"}
		apply(t, s, []model.Record{p})
		t3, l3 := chAt(), labelAt()
		assert.Equal(t, t2, t3, "only labels changed: the ch_pod row is the same")
		assert.True(t, l3.After(t2))

		apply(t, s, nil, ref(model.KindPod, "p1"))
		t4 := chAt()
		assert.True(t, t4.After(l3))
		apply(t, s, []model.Record{p})
		assert.True(t, chAt().After(t4))

		// max(updated_at), ClickHouse's invalidate query, moved each time.
		assert.Equal(t, chAt(), queryTime(t, s, "SELECT MAX(updated_at) FROM ch_pod"))
	})
}

func TestKeyValueTablesReplaced(t *testing.T) {
	forEachDB(t, func(t *testing.T, db testDB) {
		s := db.open(t, "prod")
		longValue := strings.Repeat("x", 200<<10) // annotations reach 256 KiB
		longKey := strings.Repeat("k", maxKeyBytes+1)
		maxKey := "example.com/" + strings.Repeat("k", maxKeyBytes-len("example.com/"))
		p := pod("p1", "web-1")
		p.Labels = map[string]string{"app": "web", "App": "Web", "tier": "api", maxKey: "v"}
		p.Annotations = map[string]string{"big": longValue, "note": "ünïcödé ✓", "bad-utf8": "a\xffb\x00c"}
		p.Env = map[string]string{"A": "1", "A ": "2", longKey: "dropped"}
		apply(t, s, []model.Record{p})
		id := rowsByRef(t, s)[ref(model.KindPod, "p1")].ID

		assert.Equal(t, map[string]string{"app": "web", "App": "Web", "tier": "api", maxKey: "v"}, kvRows(t, s, "ch_pod_label", id),
			"keys differing in case or trailing space are distinct")
		ann := kvRows(t, s, "ch_pod_annotation", id)
		assert.Equal(t, longValue, ann["big"])
		assert.Equal(t, "ünïcödé ✓", ann["note"])
		assert.Equal(t, "a\uFFFDb\uFFFDc", ann["bad-utf8"], "invalid UTF-8 and NUL are replaced, not rejected")
		assert.Equal(t, map[string]string{"A": "1", "A ": "2"}, kvRows(t, s, "ch_pod_env", id), "a key too long to store is skipped")

		// A removed label is gone, a changed one changed, others untouched.
		p.Labels = map[string]string{"app": "web2", "new": "x"}
		p.Env = nil
		apply(t, s, []model.Record{p})
		assert.Equal(t, map[string]string{"app": "web2", "new": "x"}, kvRows(t, s, "ch_pod_label", id))
		assert.Empty(t, kvRows(t, s, "ch_pod_env", id))
		assert.Equal(t, longValue, kvRows(t, s, "ch_pod_annotation", id)["big"])

		// Kinds without label tables (the cluster) ignore labels.
		apply(t, s, []model.Record{{Kind: model.KindService, UID: "svc-web", Name: "web", ServiceType: "ClusterIP",
			Labels: map[string]string{"app": "web"}, Selector: map[string]string{"app": "web"},
			Ports: []model.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: "8080"}}}})
		svc := rowsByRef(t, s)[ref(model.KindService, "svc-web")]
		assert.Equal(t, []model.ServicePort{{Name: "http", Protocol: "TCP", Port: 80, TargetPort: "8080"}}, svc.Ports)
		assert.Equal(t, map[string]string{"app": "web"}, kvRows(t, s, "ch_service_label", svc.ID))
		var st string
		require.NoError(t, s.db.QueryRowContext(testCtx(t), q(s, "SELECT service_type FROM ch_service WHERE id = ?"), int64(svc.ID)).Scan(&st))
		assert.Equal(t, "ClusterIP", st)
	})
}

func TestTwoClustersOneDatabase(t *testing.T) {
	forEachDB(t, func(t *testing.T, db testDB) {
		east, west := db.open(t, "east"), db.open(t, "west")
		ce, err := east.ClusterID(testCtx(t))
		require.NoError(t, err)
		cw, err := west.ClusterID(testCtx(t))
		require.NoError(t, err)
		assert.NotEqual(t, ce, cw)

		// The same uid in two clusters (a restored etcd) is two resources.
		apply(t, east, []model.Record{pod("same-uid", "e")})
		apply(t, west, []model.Record{pod("same-uid", "w")})
		all, err := east.Changes(testCtx(t), 0, 0)
		require.NoError(t, err)
		byCluster := map[uint32]model.Row{}
		for _, r := range all {
			if r.Kind == model.KindPod {
				byCluster[r.ClusterID] = r
			}
			if r.Kind == model.KindCluster {
				assert.Equal(t, r.ID, r.ClusterID)
			}
		}
		require.Len(t, byCluster, 2)
		assert.NotEqual(t, byCluster[ce].ID, byCluster[cw].ID, "ids are per kind across clusters")
		assert.Equal(t, "e", byCluster[ce].Name)
		assert.Equal(t, "w", byCluster[cw].Name)
		assert.Equal(t, int64(2), queryInt(t, east, "SELECT COUNT(*) FROM ch_cluster WHERE deleted = 0"))

		// Both writing at once: serialized, no deadlock, no shared id.
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for c, s := range []*Store{east, west} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for b := 0; b < 10; b++ {
					recs := realisticPods(100+c*10+b, 50)
					if _, err := s.Apply(testCtx(t), recs, nil); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		ids := map[uint32]bool{}
		rows, err := east.Changes(testCtx(t), 0, 0)
		require.NoError(t, err)
		for _, r := range rows {
			if r.Kind == model.KindPod {
				assert.False(t, ids[r.ID], "pod id %d given twice", r.ID)
				ids[r.ID] = true
			}
		}
		assert.Len(t, ids, 2+2*10*50)
	})
}

func TestApplyFailsCleanly(t *testing.T) {
	forEachDB(t, func(t *testing.T, db testDB) {
		s := db.open(t, "prod")
		apply(t, s, []model.Record{pod("p1", "web-1")})
		w := apply(t, s, nil)
		counter := queryInt(t, s, "SELECT next_id FROM weft_id_counter WHERE kind = ?", int64(model.KindPod))
		resources := queryInt(t, s, "SELECT COUNT(*) FROM weft_resource")

		// Invalid input is refused before anything is sent.
		_, err := s.Apply(testCtx(t), []model.Record{pod("p2", "web-2"), {Kind: model.KindPod, Name: "no uid"}}, nil)
		require.ErrorContains(t, err, "empty uid")
		require.ErrorContains(t, err, "nothing was written")
		_, err = s.Apply(testCtx(t), []model.Record{{Kind: 99, UID: "x"}}, nil)
		require.ErrorContains(t, err, "unknown kind")

		// A database error late in the transaction (the env table is gone,
		// after resource, ch_ and label rows were sent) rolls it all back.
		_, err = s.db.ExecContext(testCtx(t), "DROP TABLE ch_pod_env")
		require.NoError(t, err)
		changed := pod("p1", "web-1-renamed")
		changed.Env = map[string]string{"NEW": "1"}
		_, err = s.Apply(testCtx(t), []model.Record{changed, pod("p2", "web-2")}, nil)
		require.ErrorContains(t, err, "ch_pod_env")

		got, err := s.Watermark(testCtx(t))
		require.NoError(t, err)
		assert.Equal(t, w, got)
		assert.Equal(t, counter, queryInt(t, s, "SELECT next_id FROM weft_id_counter WHERE kind = ?", int64(model.KindPod)))
		assert.Equal(t, resources, queryInt(t, s, "SELECT COUNT(*) FROM weft_resource"))
		rows := rowsByRef(t, s)
		assert.Equal(t, "web-1", rows[ref(model.KindPod, "p1")].Name)
		assert.NotContains(t, rows, ref(model.KindPod, "p2"))
		assert.Zero(t, queryInt(t, s, "SELECT COUNT(*) FROM ch_pod WHERE name <> 'web-1'"))
		assert.Equal(t, map[string]string{"app": "web", "pod-template-hash": "7d9f8c6b5"},
			kvRows(t, s, "ch_pod_label", rows[ref(model.KindPod, "p1")].ID))
	})
}

func TestStaticResourcesAndClusterRow(t *testing.T) {
	forEachDB(t, func(t *testing.T, db testDB) {
		s := db.open(t, "prod")
		recs := []model.Record{
			{Kind: model.KindSubnet, UID: "static:subnet:s1", Name: "s1", Parent: ref(model.KindVPC, "static:vpc:v1")},
			{Kind: model.KindRegion, UID: "static:region:eu", Name: "eu"},
			{Kind: model.KindZone, UID: "static:zone:eu-a", Name: "eu-a", Parent: ref(model.KindRegion, "static:region:eu")},
			{Kind: model.KindVPC, UID: "static:vpc:v1", Name: "v1"},
			{Kind: model.KindHost, UID: "static:host:h1", Name: "h1", Parent: ref(model.KindVPC, "static:vpc:v1"),
				IPs: []netip.Addr{netip.MustParseAddr("172.16.0.5")}},
		}
		apply(t, s, recs)
		rows := rowsByRef(t, s)
		vpc := rows[ref(model.KindVPC, "static:vpc:v1")]
		subnet := rows[ref(model.KindSubnet, "static:subnet:s1")]
		assert.Equal(t, model.KindVPC, subnet.ParentKind)
		assert.Equal(t, vpc.ID, subnet.ParentID)
		assert.Equal(t, rows[ref(model.KindRegion, "static:region:eu")].ID, rows[ref(model.KindZone, "static:zone:eu-a")].ParentID)
		assert.Equal(t, []netip.Addr{netip.MustParseAddr("172.16.0.5")}, rows[ref(model.KindHost, "static:host:h1")].IPs)
		assert.Equal(t, int64(vpc.ID), queryInt(t, s, "SELECT parent_id FROM ch_subnet WHERE id = ?", int64(subnet.ID)))
		assert.Equal(t, int64(model.KindVPC), queryInt(t, s, "SELECT parent_kind FROM ch_subnet WHERE id = ?", int64(subnet.ID)))

		cluster := rows[ref(model.KindCluster, "prod")]
		assert.Equal(t, "prod", cluster.Name)
		assert.Equal(t, cluster.ID, cluster.ClusterID)
		assert.Equal(t, cluster.ID, vpc.ClusterID)
		assert.Equal(t, int64(1), queryInt(t, s, "SELECT COUNT(*) FROM ch_cluster WHERE name = 'prod' AND deleted = 0"))
	})
}

func TestIDRangesFitClickHouseColumns(t *testing.T) {
	// The counters hand out what Kind.MaxID allows: UInt16 kinds stop at
	// 65535, UInt32 kinds at 2^32-1. Checked without writing 65535 rows:
	// the counter is moved next to the end.
	forEachDB(t, func(t *testing.T, db testDB) {
		s := db.open(t, "prod")
		_, err := s.db.ExecContext(testCtx(t), q(s, "UPDATE weft_id_counter SET next_id = ? WHERE kind = ?"),
			int64(math.MaxUint16), int64(model.KindNamespace))
		require.NoError(t, err)
		_, err = s.db.ExecContext(testCtx(t), q(s, "UPDATE weft_id_counter SET next_id = ? WHERE kind = ?"),
			int64(math.MaxUint32), int64(model.KindPod))
		require.NoError(t, err)
		p := pod("p1", "a")
		apply(t, s, []model.Record{p})
		rows := rowsByRef(t, s)
		assert.Equal(t, uint32(math.MaxUint16), rows[ref(model.KindNamespace, "ns-default")].ID)
		assert.Equal(t, uint32(math.MaxUint32), rows[ref(model.KindPod, "p1")].ID)

		// The next ones come from the gaps below.
		p2 := pod("p2", "b")
		p2.NamespaceUID = "ns-2"
		apply(t, s, []model.Record{p2})
		rows = rowsByRef(t, s)
		assert.Equal(t, uint32(1), rows[ref(model.KindNamespace, "ns-2")].ID)
		assert.Equal(t, uint32(1), rows[ref(model.KindPod, "p2")].ID)
	})
}

func TestClusterRowUndeleted(t *testing.T) {
	forEachDB(t, func(t *testing.T, db testDB) {
		s := db.open(t, "prod")
		id, err := s.ClusterID(testCtx(t))
		require.NoError(t, err)
		apply(t, s, nil, ref(model.KindCluster, "prod"))
		assert.True(t, rowsByRef(t, s)[ref(model.KindCluster, "prod")].Deleted)
		again, err := s.ClusterID(testCtx(t))
		require.NoError(t, err)
		assert.Equal(t, id, again)
		assert.False(t, rowsByRef(t, s)[ref(model.KindCluster, "prod")].Deleted)
	})
}
