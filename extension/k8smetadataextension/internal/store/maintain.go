package store

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
)

// Reconcile is for after a full re-list: it soft-deletes this cluster's
// live rows of the given kinds whose uid is not in present (deletes missed
// while not watching, and placeholders nothing filled). It returns how many
// it deleted and the watermark after.
func (s *Store) Reconcile(ctx context.Context, kinds []model.Kind, present map[model.Ref]struct{}) (int, int64, error) {
	for _, k := range kinds {
		if !knownKind(k) {
			return 0, 0, fmt.Errorf("k8s_metadata store: reconcile: unknown kind %d", k)
		}
		if k == model.KindCluster {
			return 0, 0, fmt.Errorf("k8s_metadata store: reconcile: cluster rows belong to every collector of the database; reconcile only the kinds inside a cluster")
		}
	}
	clusterID, err := s.cluster(ctx)
	if err != nil {
		return 0, 0, err
	}
	var deleted int
	version, err := s.withLock(ctx, func(w *txn) (bool, bool, error) {
		deleted = 0
		d := s.d
		for _, k := range kinds {
			var gone []uint32
			rows, err := w.tx.QueryContext(ctx, "SELECT id, uid FROM "+resourceTable+" WHERE kind = "+d.ph(1)+
				" AND cluster_id = "+d.ph(2)+" AND deleted_at IS NULL", int64(k), int64(clusterID))
			if err != nil {
				return false, false, fmt.Errorf("k8s_metadata store: reconcile: read live %ss: %w", k, err)
			}
			for rows.Next() {
				var (
					id  int64
					uid string
				)
				if err := rows.Scan(&id, &uid); err != nil {
					rows.Close()
					return false, false, fmt.Errorf("k8s_metadata store: reconcile: read live %ss: %w", k, err)
				}
				if _, ok := present[model.Ref{Kind: k, UID: uid}]; !ok {
					gone = append(gone, uint32(id))
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return false, false, fmt.Errorf("k8s_metadata store: reconcile: read live %ss: %w", k, err)
			}
			if err := w.softDelete(ctx, k, gone); err != nil {
				return false, false, err
			}
			deleted += len(gone)
		}
		return deleted > 0, deleted > 0, nil
	})
	if err != nil {
		return 0, 0, err
	}
	if deleted > 0 {
		s.logger.Info("Reconciled resources after a re-list", zap.Int("deleted", deleted), zap.Int64("version", version))
	}
	return deleted, version, nil
}

// Purge removes this cluster's rows soft-deleted before deletedBefore,
// with their ch_ and key/value rows: their ids become free for new
// resources. Telemetry older than that no longer decodes (or decodes as
// whatever gets the id next), so deletedBefore is now minus the retention.
// The watermark does not move: readers already saw these rows deleted.
func (s *Store) Purge(ctx context.Context, deletedBefore time.Time) (int, error) {
	clusterID, err := s.cluster(ctx)
	if err != nil {
		return 0, err
	}
	var purged int
	// Under the watermark lock like every write, so that an id freed here
	// cannot be handed out by a transaction that still sees the row.
	_, err = s.withLock(ctx, func(w *txn) (bool, bool, error) {
		purged = 0
		d := s.d
		for _, k := range model.Kinds {
			var ids []uint32
			rows, err := w.tx.QueryContext(ctx, "SELECT id FROM "+resourceTable+" WHERE kind = "+d.ph(1)+" AND cluster_id = "+d.ph(2)+
				" AND deleted_at IS NOT NULL AND deleted_at < "+d.ph(3), int64(k), int64(clusterID), deletedBefore.UTC())
			if err != nil {
				return false, false, fmt.Errorf("k8s_metadata store: purge: read deleted %ss: %w", k, err)
			}
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return false, false, fmt.Errorf("k8s_metadata store: purge: read deleted %ss: %w", k, err)
				}
				ids = append(ids, uint32(id))
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return false, false, fmt.Errorf("k8s_metadata store: purge: read deleted %ss: %w", k, err)
			}
			if len(ids) == 0 {
				continue
			}
			for t := kvTable(0); t < numKV; t++ {
				if hasKV(k, t) {
					if _, err := w.execIn(ctx, "DELETE FROM "+kvTableName(k, t)+" WHERE id", nil, ids); err != nil {
						return false, false, fmt.Errorf("k8s_metadata store: purge %s: %w", kvTableName(k, t), err)
					}
				}
			}
			if _, err := w.execIn(ctx, "DELETE FROM "+chTable(k)+" WHERE id", nil, ids); err != nil {
				return false, false, fmt.Errorf("k8s_metadata store: purge %s: %w", chTable(k), err)
			}
			if _, err := w.execIn(ctx, "DELETE FROM "+resourceTable+" WHERE kind = "+d.ph(1)+" AND id", []any{int64(k)}, ids); err != nil {
				return false, false, fmt.Errorf("k8s_metadata store: purge %ss: %w", k, err)
			}
			purged += len(ids)
		}
		return purged > 0, false, nil
	})
	if err != nil {
		return 0, err
	}
	if purged > 0 {
		s.logger.Info("Purged deleted resources", zap.Int("rows", purged), zap.Time("deleted_before", deletedBefore))
	}
	return purged, nil
}

// rowCols are the weft_resource columns Changes reads, in scan order.
const rowCols = "kind, id, uid, name, namespace, cluster_id, namespace_id, node_id, workload_id, workload_kind, service_id, " +
	"parent_kind, parent_id, ips, host_network, container_ids, ports, CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END, version, updated_at"

// Changes returns the rows of every cluster written after version since,
// in version order (then kind, id), deleted ones with Deleted set, relations
// as ids. It returns at least limit rows when there are that many
// (limit <= 0: all), and never part of a version: the rows of the last
// version are all included even beyond limit, so the caller can continue
// with since = the last row's Version.
func (s *Store) Changes(ctx context.Context, since int64, limit int) ([]model.Row, error) {
	d := s.d
	q := "SELECT " + rowCols + " FROM " + resourceTable + " WHERE version > " + d.ph(1) + " ORDER BY version, kind, id"
	args := []any{since}
	if limit > 0 {
		q += " LIMIT " + d.ph(2)
		args = append(args, int64(limit))
	}
	out, err := s.readRows(ctx, nil, q, args...)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(out) == limit {
		last := out[len(out)-1]
		rest, err := s.readRows(ctx, out, "SELECT "+rowCols+" FROM "+resourceTable+" WHERE version = "+d.ph(1)+
			" AND (kind > "+d.ph(2)+" OR (kind = "+d.ph(3)+" AND id > "+d.ph(4)+")) ORDER BY kind, id",
			last.Version, int64(last.Kind), int64(last.Kind), int64(last.ID))
		if err != nil {
			return nil, err
		}
		out = rest
	}
	return out, nil
}

func (s *Store) readRows(ctx context.Context, out []model.Row, q string, args ...any) ([]model.Row, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.notMigrated("read changes", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r                                                      model.Row
			kind, id, clusterID, nsID, nodeID, wlID, wlKind, svcID int64
			parentKind, parentID, hostNet, deleted                 int64
			ips, containerIDs, ports                               string
		)
		if err := rows.Scan(&kind, &id, &r.UID, &r.Name, &r.Namespace, &clusterID, &nsID, &nodeID, &wlID, &wlKind, &svcID,
			&parentKind, &parentID, &ips, &hostNet, &containerIDs, &ports, &deleted, &r.Version, &r.UpdatedAt); err != nil {
			return nil, fmt.Errorf("k8s_metadata store: read changes: %w", err)
		}
		r.Kind, r.ID = model.Kind(kind), uint32(id)
		r.ClusterID, r.NamespaceID, r.NodeID, r.WorkloadID = uint32(clusterID), uint32(nsID), uint32(nodeID), uint32(wlID)
		r.WorkloadKind, r.ServiceID = model.WorkloadKind(wlKind), uint32(svcID)
		r.ParentKind, r.ParentID = model.Kind(parentKind), uint32(parentID)
		if r.Kind == model.KindCluster {
			r.ClusterID = r.ID // a cluster belongs to itself
		}
		r.HostNetwork, r.Deleted = hostNet != 0, deleted != 0
		r.UpdatedAt = r.UpdatedAt.UTC()
		if r.IPs, err = parseAddrs(ips); err == nil {
			if r.ContainerIDs, err = parseStrings(containerIDs); err == nil {
				r.Ports, err = parsePorts(ports)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("k8s_metadata store: read changes: %s %d has a malformed JSON column: %w", r.Kind, r.ID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("k8s_metadata store: read changes: %w", err)
	}
	return out, nil
}
