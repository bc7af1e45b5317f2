package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
)

// entry is what one Apply knows about one resource.
type entry struct {
	id uint32
	// existed: the row is in the table (before this transaction, or
	// written by it).
	existed bool
	deleted bool
	// hashes as stored: row content, then one per key/value table.
	hashes [1 + numKV]int64
}

// resRow is one weft_resource row, relations resolved to ids.
type resRow struct {
	kind                            model.Kind
	id, clusterID                   uint32
	uid, name, namespace            string
	namespaceID, nodeID, workloadID uint32
	workloadKind                    model.WorkloadKind
	serviceID                       uint32
	serviceIDs                      string
	parentKind                      model.Kind
	parentID                        uint32
	ips, hostIP                     string
	hostNetwork                     bool
	containerIDs, ports, selector   string
	serviceType                     string
	hashes                          [1 + numKV]int64
}

// contentHash covers every column Apply writes except the bookkeeping ones,
// relation ids included: a relation re-created under a new id changes it.
func (r *resRow) contentHash() int64 {
	var h hasher
	h.num(uint64(r.kind))
	h.num(uint64(r.clusterID))
	h.str(r.name)
	h.str(r.namespace)
	h.num(uint64(r.namespaceID))
	h.num(uint64(r.nodeID))
	h.num(uint64(r.workloadID))
	h.num(uint64(r.workloadKind))
	h.str(r.serviceIDs)
	h.num(uint64(r.parentKind))
	h.num(uint64(r.parentID))
	h.str(r.ips)
	h.str(r.hostIP)
	h.num(uint64(b2i(r.hostNetwork)))
	h.str(r.containerIDs)
	h.str(r.ports)
	h.str(r.selector)
	h.str(r.serviceType)
	return h.sum()
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// resourceUpdateCols are the columns an upsert of a resource row
// overwrites.
var resourceUpdateCols = func() (update []string) {
	for _, c := range resourceCols {
		if !resourceInsertOnly[c.name] {
			update = append(update, c.name)
		}
	}
	return update
}()

// args are the row's values in resourceCols order: written live (deleted_at
// NULL) at version, now.
func (r *resRow) args(version int64, now time.Time) []any {
	return []any{
		int64(r.kind), int64(r.id), int64(r.clusterID), r.uid, r.name, r.namespace,
		int64(r.namespaceID), int64(r.nodeID), int64(r.workloadID), int64(r.workloadKind),
		int64(r.serviceID), r.serviceIDs, int64(r.parentKind), int64(r.parentID),
		r.ips, r.hostIP, b2i(r.hostNetwork), r.containerIDs, r.ports, r.selector, r.serviceType,
		r.hashes[0], r.hashes[1+kvLabel], r.hashes[1+kvAnnotation], r.hashes[1+kvEnv],
		version, now, now, nil,
	}
}

// field is the value of a ch_ column.
func (r *resRow) field(name string) any {
	switch name {
	case "cluster_id":
		return int64(r.clusterID)
	case "namespace_id":
		return int64(r.namespaceID)
	case "node_id":
		return int64(r.nodeID)
	case "workload_id":
		return int64(r.workloadID)
	case "workload_kind":
		return int64(r.workloadKind)
	case "service_id":
		return int64(r.serviceID)
	case "service_type":
		return r.serviceType
	case "parent_kind":
		return int64(r.parentKind)
	case "parent_id":
		return int64(r.parentID)
	}
	panic("k8s_metadata store: no ch_ column " + name) // a schema.go / field mismatch, caught by every test
}

// chUpdateCols are the ch_<kind> columns an upsert overwrites: all but id.
func chUpdateCols(k model.Kind) []string {
	cols := chTableDef(k).cols[1:]
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	return names
}

// chArgs are the ch_<kind> row's values in chTableDef order: live.
func (r *resRow) chArgs(now time.Time) []any {
	args := []any{int64(r.id), r.name}
	for _, c := range chExtraCols[r.kind] {
		args = append(args, r.field(c.name))
	}
	return append(args, int64(0), now)
}

// Apply writes records and deletes in one transaction and returns the
// watermark after it.
//
// Every uid seen gets an id: the records' own and those they point at
// (namespace, node, workload, services, parent). A uid pointed at before
// its own record arrives gets a placeholder row (empty name) that its
// record later fills, keeping the id. A record of a soft-deleted uid
// un-deletes it under the same id. Records whose content is unchanged are
// not written at all; when nothing changes, the watermark does not move.
// Deletes are soft (the row and its id stay until Purge) and are applied
// after the records, so a uid both written and deleted ends up deleted.
// Deleting an unknown uid does nothing. A uid given twice: the last record
// wins.
//
// Ids are per kind across all clusters; every row keeps its cluster id.
// When the transaction fails nothing is written. When a kind has no free
// id left the error wraps ErrKindFull.
func (s *Store) Apply(ctx context.Context, upserts []model.Record, deletes []model.Ref) (int64, error) {
	if len(upserts) == 0 && len(deletes) == 0 {
		return s.Watermark(ctx)
	}
	clusterID, err := s.cluster(ctx)
	if err != nil {
		return 0, err
	}
	return s.apply(ctx, clusterID, upserts, deletes)
}

type applyStats struct {
	written, placeholders, kvRows, deleted int
}

func (s *Store) apply(ctx context.Context, clusterID uint32, upserts []model.Record, deletes []model.Ref) (int64, error) {
	start := time.Now()
	recs, skipped, err := prepare(upserts)
	if err != nil {
		return 0, fmt.Errorf("k8s_metadata store: apply: %w; nothing was written", err)
	}
	for i, d := range deletes {
		if err := validRef(d, "delete "+strconv.Itoa(i)); err != nil {
			return 0, fmt.Errorf("k8s_metadata store: apply: %w; nothing was written", err)
		}
	}
	if skipped > 0 {
		s.logger.Warn("Skipped label, annotation or env keys too long to store", zap.Int("keys", skipped), zap.Int("max_bytes", maxKeyBytes))
	}
	scope := func(k model.Kind) uint32 {
		if k == model.KindCluster {
			return 0 // cluster names are unique in the database
		}
		return clusterID
	}

	// Every ref, in first-seen order (the order ids are handed out in);
	// alloc marks those that get an id if they have none.
	var order []model.Ref
	alloc := map[model.Ref]bool{}
	add := func(r model.Ref, a bool) {
		if _, seen := alloc[r]; !seen {
			order = append(order, r)
		}
		alloc[r] = alloc[r] || a
	}
	for _, p := range recs {
		add(p.ref, true)
		for _, rel := range relations(p.rec) {
			add(rel, true)
		}
	}
	for _, d := range deletes {
		add(d, false)
	}

	var st applyStats
	version, err := s.withLock(ctx, func(w *txn) (bool, bool, error) {
		st = applyStats{}
		entries, err := w.lookup(ctx, scope, order)
		if err != nil {
			return false, false, err
		}
		missing := map[model.Kind][]model.Ref{}
		for _, ref := range order {
			if entries[ref] == nil && alloc[ref] {
				missing[ref.Kind] = append(missing[ref.Kind], ref)
			}
		}
		// Counters are locked in model.Kinds order, the same in every
		// transaction.
		for _, k := range model.Kinds {
			refs := missing[k]
			if len(refs) == 0 {
				continue
			}
			ids, err := w.allocate(ctx, k, len(refs))
			if err != nil {
				return false, false, err
			}
			for i, ref := range refs {
				entries[ref] = &entry{id: ids[i]}
			}
		}

		rows := w.newBatch(resourceTable, resourceCols, w.s.d.upsertTail([]string{"kind", "id"}, resourceUpdateCols))
		chRows := map[model.Kind]*batcher{}
		// writeRow upserts the resource row and, when what dictionaries
		// read changed (not just labels), its ch_ row.
		writeRow := func(r *resRow, ch bool) error {
			if err := rows.add(ctx, r.args(w.version, w.now)...); err != nil {
				return err
			}
			if !ch {
				return nil
			}
			b := chRows[r.kind]
			if b == nil {
				b = w.newBatch(chTable(r.kind), chTableDef(r.kind).cols, w.s.d.upsertTail([]string{"id"}, chUpdateCols(r.kind)))
				chRows[r.kind] = b
			}
			return b.add(ctx, r.chArgs(w.now)...)
		}
		// Key/value tables to rewrite: the records whose pairs changed.
		type kvWrite struct {
			ids  []uint32
			rows []*prepared
		}
		var kvWrites [numKV]map[model.Kind]*kvWrite

		for _, p := range recs {
			e := entries[p.ref]
			r := buildRow(p, e.id, scope(p.ref.Kind), entries)
			if e.existed && !e.deleted && r.hashes == e.hashes {
				continue // unchanged: no write, no new updated_at
			}
			if err := writeRow(r, !e.existed || e.deleted || r.hashes[0] != e.hashes[0]); err != nil {
				return false, false, err
			}
			st.written++
			for t := kvTable(0); t < numKV; t++ {
				if !hasKV(p.ref.Kind, t) || r.hashes[1+t] == e.hashes[1+t] {
					continue
				}
				if kvWrites[t] == nil {
					kvWrites[t] = map[model.Kind]*kvWrite{}
				}
				kw := kvWrites[t][p.ref.Kind]
				if kw == nil {
					kw = &kvWrite{}
					kvWrites[t][p.ref.Kind] = kw
				}
				kw.ids = append(kw.ids, e.id)
				kw.rows = append(kw.rows, p)
			}
			e.existed, e.deleted, e.hashes = true, false, r.hashes
		}
		// Uids only pointed at: placeholders, filled when their record
		// comes.
		for _, ref := range order {
			if e := entries[ref]; e != nil && !e.existed {
				if err := writeRow(&resRow{kind: ref.Kind, id: e.id, clusterID: scope(ref.Kind), uid: ref.UID,
					serviceIDs: "[]", ips: "[]", containerIDs: "[]", ports: "[]", selector: "{}"}, true); err != nil {
					return false, false, err
				}
				e.existed = true
				st.placeholders++
			}
		}
		if err := rows.flush(ctx); err != nil {
			return false, false, err
		}
		for _, k := range model.Kinds {
			if b := chRows[k]; b != nil {
				if err := b.flush(ctx); err != nil {
					return false, false, err
				}
			}
		}
		for t := kvTable(0); t < numKV; t++ {
			for _, k := range model.Kinds {
				kw := kvWrites[t][k]
				if kw == nil {
					continue
				}
				table := kvTableName(k, t)
				// Replace, not merge: a removed key must go. New ids are
				// cleared too (cheap): one may be a purged row's.
				if _, err := w.execIn(ctx, "DELETE FROM "+table+" WHERE id", nil, kw.ids); err != nil {
					return false, false, fmt.Errorf("k8s_metadata store: clear %s: %w", table, err)
				}
				b := w.newBatch(table, kvTableDef(k, t).cols, "")
				for i, p := range kw.rows {
					for _, kv := range p.kv[t] {
						if err := b.add(ctx, int64(kw.ids[i]), kv.key, kv.value, w.now); err != nil {
							return false, false, err
						}
						st.kvRows++
					}
				}
				if err := b.flush(ctx); err != nil {
					return false, false, err
				}
			}
		}

		del := map[model.Kind][]uint32{}
		for _, d := range deletes {
			if e := entries[d]; e != nil && e.existed && !e.deleted {
				del[d.Kind] = append(del[d.Kind], e.id)
				e.deleted = true
			}
		}
		for _, k := range model.Kinds {
			if err := w.softDelete(ctx, k, del[k]); err != nil {
				return false, false, err
			}
			st.deleted += len(del[k])
		}
		wrote := st.written+st.placeholders+st.deleted > 0
		return wrote, wrote, nil
	})
	if err != nil {
		return 0, err
	}
	s.logger.Debug("Applied resources", zap.Int("records", len(upserts)), zap.Int("written", st.written),
		zap.Int("placeholders", st.placeholders), zap.Int("kv_rows", st.kvRows), zap.Int("deleted", st.deleted),
		zap.Int64("version", version), zap.Duration("took", time.Since(start)))
	return version, nil
}

// buildRow is p's row with relations resolved through entries (which hold
// every relation: Apply gave each an id).
func buildRow(p *prepared, id, clusterID uint32, entries map[model.Ref]*entry) *resRow {
	r := p.rec
	idOf := func(k model.Kind, uid string) uint32 {
		if uid == "" {
			return 0
		}
		return entries[model.Ref{Kind: k, UID: uid}].id
	}
	row := &resRow{
		kind: p.ref.Kind, id: id, clusterID: clusterID, uid: p.ref.UID, name: p.name, namespace: p.namespace,
		namespaceID: idOf(model.KindNamespace, r.NamespaceUID), nodeID: idOf(model.KindNode, r.NodeUID),
		workloadID: idOf(model.KindWorkload, r.WorkloadUID), workloadKind: r.WorkloadKind,
		ips: p.ips, hostIP: p.hostIP, hostNetwork: r.HostNetwork, containerIDs: p.containerIDs,
		ports: p.ports, selector: p.selector, serviceType: p.serviceType,
	}
	svc := make([]byte, 0, 2+11*len(r.ServiceUIDs))
	svc = append(svc, '[')
	for i, uid := range r.ServiceUIDs {
		sid := idOf(model.KindService, uid)
		if i == 0 {
			row.serviceID = sid
		} else {
			svc = append(svc, ',')
		}
		svc = strconv.AppendUint(svc, uint64(sid), 10)
	}
	row.serviceIDs = string(append(svc, ']'))
	if r.Parent.UID != "" {
		row.parentKind, row.parentID = r.Parent.Kind, idOf(r.Parent.Kind, r.Parent.UID)
	}
	row.hashes[0] = row.contentHash()
	for t := kvTable(0); t < numKV; t++ {
		row.hashes[1+t] = p.kvHash[t]
	}
	return row
}

// lookup finds the rows of refs that exist.
func (w *txn) lookup(ctx context.Context, scope func(model.Kind) uint32, refs []model.Ref) (map[model.Ref]*entry, error) {
	entries := make(map[model.Ref]*entry, len(refs))
	byKind := map[model.Kind][]string{}
	for _, r := range refs {
		byKind[r.Kind] = append(byKind[r.Kind], r.UID)
	}
	d := w.s.d
	for _, k := range model.Kinds {
		uids := byKind[k]
		for start := 0; start < len(uids); start += inChunk {
			chunk := uids[start:min(start+inChunk, len(uids))]
			args := []any{int64(k), int64(scope(k))}
			const cols = "r.uid, r.id, CASE WHEN r.deleted_at IS NULL THEN 0 ELSE 1 END, r.row_hash, r.labels_hash, r.annotations_hash, r.env_hash"
			var q string
			if d.numbered {
				// PostgreSQL switches a statement run often to a generic
				// plan, where "uid IN ($3, ..., $1002)" is matched
				// linearly against every row of the kind (~0.3 s for 1000
				// uids among 10k pods). A join with the unnested array
				// stays an index lookup per uid.
				q = "SELECT " + cols + " FROM unnest(" + d.ph(3) + "::text[]) AS v(uid) JOIN " + resourceTable +
					" r ON r.kind = " + d.ph(1) + " AND r.cluster_id = " + d.ph(2) + " AND r.uid = v.uid"
				args = append(args, chunk)
			} else {
				// MySQL sorts an IN list and binary-searches it.
				q = "SELECT " + cols + " FROM " + resourceTable + " r WHERE r.kind = " + d.ph(1) + " AND r.cluster_id = " + d.ph(2) +
					" AND r.uid IN (" + d.phs(3, len(chunk)) + ")"
				for _, u := range chunk {
					args = append(args, u)
				}
			}
			rows, err := w.tx.QueryContext(ctx, q, args...)
			if err != nil {
				return nil, fmt.Errorf("k8s_metadata store: look up %s ids: %w", k, err)
			}
			for rows.Next() {
				var (
					uid     string
					id, del int64
					e       = &entry{existed: true}
				)
				if err := rows.Scan(&uid, &id, &del, &e.hashes[0], &e.hashes[1+kvLabel], &e.hashes[1+kvAnnotation], &e.hashes[1+kvEnv]); err != nil {
					rows.Close()
					return nil, fmt.Errorf("k8s_metadata store: look up %s ids: %w", k, err)
				}
				e.id, e.deleted = uint32(id), del != 0
				entries[model.Ref{Kind: k, UID: uid}] = e
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("k8s_metadata store: look up %s ids: %w", k, err)
			}
		}
	}
	return entries, nil
}

// allocate hands out n new ids of kind k: from the kind's counter while it
// is below the kind's maximum, then the smallest ids no row holds (those
// of purged rows). The counter row stays locked until the transaction
// ends, so concurrent writers never get the same id.
func (w *txn) allocate(ctx context.Context, k model.Kind, n int) ([]uint32, error) {
	d := w.s.d
	maxID := int64(w.s.maxID(k))
	var next int64
	err := w.tx.QueryRowContext(ctx, "SELECT next_id FROM "+counterTable+" WHERE kind = "+d.ph(1)+" FOR UPDATE", int64(k)).Scan(&next)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("k8s_metadata store: kind %s has no id counter: run Migrate with this collector version", k)
	}
	if err != nil {
		return nil, fmt.Errorf("k8s_metadata store: lock the %s id counter: %w", k, err)
	}
	ids := make([]uint32, 0, n)
	first := next
	for next <= maxID && len(ids) < n {
		ids = append(ids, uint32(next))
		next++
	}
	if len(ids) < n {
		// Every id below the counter was handed out once; the free ones
		// are those whose rows were purged since.
		free, err := w.freeIDs(ctx, k, min(maxID, first-1), n-len(ids))
		if err != nil {
			return nil, err
		}
		if len(free) < n-len(ids) {
			return nil, fmt.Errorf("k8s_metadata store: %w: %s (needed %d, max id %d); deleted %ss keep their ids until purged: lower deleted_retention or purge",
				ErrKindFull, k, n, maxID, k)
		}
		ids = append(ids, free...)
	}
	if next != first {
		if _, err := w.tx.ExecContext(ctx, "UPDATE "+counterTable+" SET next_id = "+d.ph(1)+" WHERE kind = "+d.ph(2), next, int64(k)); err != nil {
			return nil, fmt.Errorf("k8s_metadata store: advance the %s id counter: %w", k, err)
		}
	}
	return ids, nil
}

// freeIDs returns up to n of the smallest ids in [1, upper] that no row of
// kind k holds, from the gaps between the kind's ids.
func (w *txn) freeIDs(ctx context.Context, k model.Kind, upper int64, n int) ([]uint32, error) {
	if upper < 1 {
		return nil, nil
	}
	d := w.s.d
	q := "SELECT id + 1, next_id - 1 FROM (" +
		"SELECT id, COALESCE(LEAD(id) OVER (ORDER BY id), " + d.ph(1) + ") AS next_id FROM (" +
		"SELECT 0 AS id UNION ALL SELECT id FROM " + resourceTable + " WHERE kind = " + d.ph(2) + " AND id <= " + d.ph(3) +
		") used) gaps WHERE next_id > id + 1 ORDER BY id LIMIT " + d.ph(4)
	rows, err := w.tx.QueryContext(ctx, q, upper+1, int64(k), upper, int64(n))
	if err != nil {
		return nil, fmt.Errorf("k8s_metadata store: find free %s ids: %w", k, err)
	}
	defer rows.Close()
	var ids []uint32
	for rows.Next() && len(ids) < n {
		var from, to int64
		if err := rows.Scan(&from, &to); err != nil {
			return nil, fmt.Errorf("k8s_metadata store: find free %s ids: %w", k, err)
		}
		for id := from; id <= to && len(ids) < n; id++ {
			ids = append(ids, uint32(id))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("k8s_metadata store: find free %s ids: %w", k, err)
	}
	return ids, nil
}

// softDelete marks rows deleted, keeping them and their ids: the ch_ row
// gets deleted = 1 and a new updated_at so that dictionaries see it.
func (w *txn) softDelete(ctx context.Context, k model.Kind, ids []uint32) error {
	if len(ids) == 0 {
		return nil
	}
	d := w.s.d
	if _, err := w.execIn(ctx, "UPDATE "+resourceTable+" SET deleted_at = "+d.ph(1)+", updated_at = "+d.ph(2)+", version = "+d.ph(3)+
		" WHERE kind = "+d.ph(4)+" AND id", []any{w.now, w.now, w.version, int64(k)}, ids); err != nil {
		return fmt.Errorf("k8s_metadata store: mark %ss deleted: %w", k, err)
	}
	if _, err := w.execIn(ctx, "UPDATE "+chTable(k)+" SET deleted = 1, updated_at = "+d.ph(1)+" WHERE id", []any{w.now}, ids); err != nil {
		return fmt.Errorf("k8s_metadata store: mark %s deleted: %w", chTable(k), err)
	}
	return nil
}
