// Package store keeps the k8s_metadata extension's resources and their
// stable integer ids in PostgreSQL or MySQL/MariaDB, and maintains the ch_
// tables ClickHouse dictionaries read. See SCHEMA.md for the tables.
//
// Every write goes through one transaction that first locks the one-row
// watermark table. That serializes writers (from any cluster) so that the
// change counter and the updated_at stamps only ever grow in commit order:
// a reader that has seen version v has seen every row with a version <= v.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"go.uber.org/zap"

	"github.com/weftobs/weft/extension/k8smetadataextension/internal/model"
)

// ErrKindFull is returned (wrapped) by Apply when a kind has no free id
// left: every id up to the kind's maximum belongs to a row, live or
// soft-deleted.
var ErrKindFull = errors.New("no free id left for this kind")

// Store is the database of one collector, writing for one cluster and
// reading every cluster's rows. It is safe for concurrent use.
type Store struct {
	db          *sql.DB
	d           *dialect
	logger      *zap.Logger
	clusterName string

	// maxStmtBytes bounds the parameter bytes of one multi-row statement
	// (MySQL's max_allowed_packet limits the whole statement).
	maxStmtBytes int
	// maxID is the largest id of a kind; tests lower it to reach the end of
	// a kind's range.
	maxID func(model.Kind) uint32

	mu        sync.Mutex
	clusterID uint32 // 0 until ClusterID has run
}

// Open connects to the database and checks that it answers. It does not
// create tables: call Migrate.
//
// driver is "postgres" (dsn: a PostgreSQL URL or key=value string) or
// "mysql" (dsn: user:pass@tcp(host:port)/db, for MySQL and MariaDB).
func Open(ctx context.Context, driverName, dsn, clusterName string, logger *zap.Logger) (*Store, error) {
	if clusterName == "" {
		return nil, errors.New("k8s_metadata store: the cluster name is empty: set cluster_name")
	}
	if len(clusterName) > maxUIDBytes {
		return nil, fmt.Errorf("k8s_metadata store: cluster name is %d bytes, at most %d fit: choose a shorter cluster_name", len(clusterName), maxUIDBytes)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	s := &Store{logger: logger, clusterName: clusterName, maxStmtBytes: 8 << 20, maxID: model.Kind.MaxID}
	switch driverName {
	case DriverPostgres:
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("k8s_metadata store: database.dsn is not a PostgreSQL connection string: %w", err)
		}
		if !strings.Contains(dsn, "default_query_exec_mode") {
			// Unnamed statements with cached descriptions: one round trip
			// and the right parameter types, without pgx's default of a
			// named prepared statement per distinct SQL text. Multi-row
			// INSERTs come in many row counts; as named statements each
			// would hold a plan in the server for the connection's life,
			// and PostgreSQL would switch them to generic plans.
			cfg.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
		}
		s.db, s.d = stdlib.OpenDB(*cfg), pgDialect
	case DriverMySQL:
		cfg, err := mysqldrv.ParseDSN(dsn)
		if err != nil {
			return nil, fmt.Errorf("k8s_metadata store: database.dsn is not a MySQL DSN (user:pass@tcp(host:port)/db): %w", err)
		}
		// DATETIME columns hold UTC wall-clock times: read and write them
		// as UTC whatever the DSN says.
		cfg.ParseTime = true
		cfg.Loc = time.UTC
		// Parameters interpolated client-side: one round trip a statement
		// instead of prepare + execute + close for every multi-row INSERT.
		// The driver escapes for the connection's character set and
		// refuses to interpolate for the few unsafe ones.
		cfg.InterpolateParams = true
		conn, err := mysqldrv.NewConnector(cfg)
		if err != nil {
			return nil, fmt.Errorf("k8s_metadata store: database.dsn: %w", err)
		}
		s.db, s.d = sql.OpenDB(conn), myDialect
	default:
		return nil, fmt.Errorf("k8s_metadata store: database driver must be %q or %q, got %q", DriverPostgres, DriverMySQL, driverName)
	}
	// One connection does the writing (writers serialize on the watermark
	// row anyway); a few more serve Watermark and Changes alongside.
	s.db.SetMaxOpenConns(4)
	s.db.SetMaxIdleConns(4)
	s.db.SetConnMaxIdleTime(5 * time.Minute)
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("k8s_metadata store: cannot reach the %s database: %w", driverName, err)
	}
	if s.d == myDialect {
		var packet int64
		if err := s.db.QueryRowContext(ctx, "SELECT @@max_allowed_packet").Scan(&packet); err != nil {
			s.db.Close()
			return nil, fmt.Errorf("k8s_metadata store: read max_allowed_packet: %w", err)
		}
		// Half the packet leaves room for escaping and SQL text.
		if half := int(packet / 2); half < s.maxStmtBytes {
			s.maxStmtBytes = half
		}
	}
	return s, nil
}

// Close closes the database connections.
func (s *Store) Close() error { return s.db.Close() }

// Watermark is the change counter: it moves (grows) with every write, and
// every row written carries the value it moved to. Reading it is one row.
func (s *Store) Watermark(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, "SELECT version FROM "+watermarkTable+" WHERE id = 1").Scan(&v)
	if err != nil {
		return 0, s.notMigrated("read the watermark", err)
	}
	return v, nil
}

// ClusterID makes sure the cluster has its row (kind cluster, uid = the
// cluster name; un-deleted if it was deleted) and returns its id.
func (s *Store) ClusterID(ctx context.Context) (uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, live, err := s.lookupCluster(ctx)
	if err != nil {
		return 0, err
	}
	if !live {
		rec := model.Record{Kind: model.KindCluster, UID: s.clusterName, Name: s.clusterName}
		if _, err := s.apply(ctx, 0, []model.Record{rec}, nil); err != nil {
			return 0, err
		}
		if id, live, err = s.lookupCluster(ctx); err != nil {
			return 0, err
		}
		if !live {
			return 0, fmt.Errorf("k8s_metadata store: cluster %q has no live row after writing it", s.clusterName)
		}
	}
	s.clusterID = id
	return id, nil
}

func (s *Store) lookupCluster(ctx context.Context) (id uint32, live bool, err error) {
	var (
		id64    int64
		deleted int64
		name    string
	)
	err = s.db.QueryRowContext(ctx, "SELECT id, CASE WHEN deleted_at IS NULL THEN 0 ELSE 1 END, name FROM "+resourceTable+
		" WHERE kind = "+s.d.ph(1)+" AND cluster_id = 0 AND uid = "+s.d.ph(2),
		int64(model.KindCluster), s.clusterName).Scan(&id64, &deleted, &name)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.notMigrated("look up the cluster row", err)
	}
	return uint32(id64), deleted == 0 && name == s.clusterName, nil
}

// cluster is the cluster id, ensuring the cluster row on first use.
func (s *Store) cluster(ctx context.Context) (uint32, error) {
	s.mu.Lock()
	id := s.clusterID
	s.mu.Unlock()
	if id != 0 {
		return id, nil
	}
	return s.ClusterID(ctx)
}

// notMigrated wraps err, hinting at Migrate when the tables are missing.
func (s *Store) notMigrated(what string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("k8s_metadata store: %s: the watermark row is missing: run Migrate first", what)
	}
	return fmt.Errorf("k8s_metadata store: %s (has Migrate run on this database?): %w", what, err)
}

// txn is one write transaction holding the watermark lock.
type txn struct {
	s  *Store
	tx *sql.Tx
	// version is what rows written in this transaction are stamped with:
	// the watermark plus one.
	version int64
	// now is the updated_at of every row written: the database clock,
	// UTC, microseconds, strictly later than any earlier stamp.
	now time.Time
}

// withLock runs fn in a READ COMMITTED transaction that holds the watermark
// row's lock. fn says whether to commit and whether the watermark moves
// (rows were stamped with w.version); withLock returns the watermark after
// the transaction. READ COMMITTED so that, once the lock is held, every
// statement sees what earlier writers committed (MySQL's default REPEATABLE
// READ would keep an older snapshot).
func (s *Store) withLock(ctx context.Context, fn func(w *txn) (commit, bump bool, err error)) (int64, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return 0, fmt.Errorf("k8s_metadata store: begin transaction: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	var (
		current int64
		last    time.Time
	)
	err = tx.QueryRowContext(ctx, "SELECT version, updated_at FROM "+watermarkTable+" WHERE id = 1 FOR UPDATE").Scan(&current, &last)
	if err != nil {
		return 0, s.notMigrated("lock the watermark", err)
	}
	var now time.Time
	if err := tx.QueryRowContext(ctx, "SELECT "+s.d.utcNow).Scan(&now); err != nil {
		return 0, fmt.Errorf("k8s_metadata store: read the database clock: %w", err)
	}
	now = now.UTC().Truncate(time.Microsecond)
	if last = last.UTC(); !now.After(last) {
		// The database clock stepped back (or two writes fell in one
		// microsecond): keep stamps growing so that ClickHouse's
		// max(updated_at) invalidation still sees the change.
		now = last.Add(time.Microsecond)
	}
	w := &txn{s: s, tx: tx, version: current + 1, now: now}
	commit, bump, err := fn(w)
	if err != nil {
		return 0, err
	}
	if !commit {
		return current, nil
	}
	if bump {
		if _, err := tx.ExecContext(ctx, "UPDATE "+watermarkTable+" SET version = "+s.d.ph(1)+", updated_at = "+s.d.ph(2)+" WHERE id = 1",
			w.version, w.now); err != nil {
			return 0, fmt.Errorf("k8s_metadata store: move the watermark: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("k8s_metadata store: commit: %w", err)
	}
	if bump {
		return w.version, nil
	}
	return current, nil
}

// Migrate creates or upgrades the tables: versioned migrations recorded in
// weft_schema_migrations, applied under a database lock so that collectors
// starting together apply each one once. Running it again does nothing.
func (s *Store) Migrate(ctx context.Context) error {
	if s.d == pgDialect {
		return s.migratePostgres(ctx)
	}
	return s.migrateMySQL(ctx)
}

// pgMigrateLock is the pg_advisory_xact_lock key of migrations ("weftmigr").
const pgMigrateLock int64 = 0x776566746d696772

// PostgreSQL DDL is transactional: the whole upgrade is one transaction and
// the transaction-scoped advisory lock ends with it, whatever happens.
func (s *Store) migratePostgres(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("k8s_metadata store: migrate: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", pgMigrateLock); err != nil {
		return fmt.Errorf("k8s_metadata store: migrate: take the migration lock: %w", err)
	}
	if err := s.applyMigrations(ctx, tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("k8s_metadata store: migrate: commit: %w", err)
	}
	return nil
}

// MySQL DDL commits implicitly, so the lock is a session lock (GET_LOCK)
// on one connection, and every migration statement is idempotent.
func (s *Store) migrateMySQL(ctx context.Context) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("k8s_metadata store: migrate: %w", err)
	}
	defer conn.Close()
	// Lock names are server-wide: name it after the database so that
	// databases on one server do not wait for each other. MD5 keeps it
	// within MySQL's 64 characters.
	const lockName = "CONCAT('weft_migrate_', MD5(DATABASE()))"
	for {
		var got sql.NullInt64
		// A bounded wait, repeated: the server does not notice a
		// cancelled context while waiting.
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK("+lockName+", 5)").Scan(&got); err != nil {
			return fmt.Errorf("k8s_metadata store: migrate: take the migration lock: %w", err)
		}
		if !got.Valid {
			return errors.New("k8s_metadata store: migrate: GET_LOCK failed: is a database selected in database.dsn (user:pass@tcp(host:port)/db)?")
		}
		if got.Int64 == 1 {
			break
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("k8s_metadata store: migrate: waiting for another collector's migration: %w", err)
		}
	}
	defer func() {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "SELECT RELEASE_LOCK("+lockName+")"); rerr != nil {
			// Never hand a connection that may still hold the lock back
			// to the pool: ErrBadConn makes database/sql close it.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return s.applyMigrations(ctx, conn)
}

// querier is what migrations run on: a transaction or a connection.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) applyMigrations(ctx context.Context, q querier) error {
	for _, stmt := range migrationsTableDef.createSQL(s.d) {
		if _, err := q.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("k8s_metadata store: migrate: create %s: %w", migrationsTable, err)
		}
	}
	applied := map[int64]bool{}
	rows, err := q.QueryContext(ctx, "SELECT version FROM "+migrationsTable)
	if err != nil {
		return fmt.Errorf("k8s_metadata store: migrate: read %s: %w", migrationsTable, err)
	}
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("k8s_metadata store: migrate: read %s: %w", migrationsTable, err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("k8s_metadata store: migrate: read %s: %w", migrationsTable, err)
	}
	known := map[int64]bool{}
	for _, m := range migrations {
		known[m.version] = true
		if applied[m.version] {
			continue
		}
		start := time.Now()
		for _, stmt := range m.stmts(s.d) {
			if _, err := q.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("k8s_metadata store: migrate: version %d (%s): %w\nstatement: %s", m.version, m.name, err, stmt)
			}
		}
		if _, err := q.ExecContext(ctx, "INSERT INTO "+migrationsTable+" (version, name, applied_at) VALUES ("+
			s.d.ph(1)+", "+s.d.ph(2)+", "+s.d.utcNow+")", m.version, m.name); err != nil {
			return fmt.Errorf("k8s_metadata store: migrate: record version %d: %w", m.version, err)
		}
		s.logger.Info("Applied database migration", zap.String("driver", s.d.name), zap.Int64("version", m.version),
			zap.String("name", m.name), zap.Duration("took", time.Since(start)))
	}
	for v := range applied {
		if !known[v] {
			// A newer collector migrated this database. Its migrations
			// only add, so this one keeps working; say so once.
			s.logger.Warn("Database schema is newer than this collector knows; continuing", zap.Int64("version", v))
		}
	}
	// Every kind this build knows gets an id counter.
	for _, k := range model.Kinds {
		if _, err := q.ExecContext(ctx, counterSeed(s.d, k)); err != nil {
			return fmt.Errorf("k8s_metadata store: migrate: id counter of %s: %w", k, err)
		}
	}
	return nil
}
