package smartclickhouseexporter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
)

// schemaRunner applies the schema to a server: migrations at start, then
// dictionaries, XML dictionary files, views and TTL kept in sync.
//
// Several collectors may start at once against one server. ClickHouse has
// no transactions or locks to serialize them; instead every statement is
// idempotent (IF NOT EXISTS, or checked against system.columns first), the
// server serializes DDL on one table, and a statement that loses a race is
// retried. Two collectors applying the same migration end in the same
// schema. A collector that finds a newer schema than it knows leaves the
// schema alone (the newer Weft owns it); migrations only add, so it can
// still write.
type schemaRunner struct {
	db     db
	f      schema.Features
	o      schema.Options
	xmlDir string
	logger *zap.Logger
	red    redactor
	// migrations replaces schema.Migrations in tests.
	migrations []schema.Migration
	// mu serializes schema work; nil means the process-wide syncMu. Tests
	// give runners their own to act as separate collectors.
	mu *sync.Mutex
	// applied remembers which secrets this process put into objects; nil
	// means the process-wide processApplied. Tests give runners their own.
	applied *appliedSecrets
}

// appliedSecrets remembers, in memory only, a digest of the full DDL
// (password included) of each object with a secret that this process
// created or re-created. schema_objects holds no trace of the password
// (see objectHash), so a process re-creates such an object once, the first
// time it syncs it: that is how a changed password reaches the server.
type appliedSecrets struct {
	mu sync.Mutex
	m  map[string][sha256.Size]byte
}

var processApplied = &appliedSecrets{}

func (a *appliedSecrets) key(o schema.Options, name string) string {
	return o.Database + "\x00" + name
}

func (a *appliedSecrets) has(key string, d [sha256.Size]byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	old, ok := a.m[key]
	return ok && old == d
}

func (a *appliedSecrets) set(key string, d [sha256.Size]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = map[string][sha256.Size]byte{}
	}
	a.m[key] = d
}

func (r *schemaRunner) secrets() *appliedSecrets {
	if r.applied != nil {
		return r.applied
	}
	return processApplied
}

func (r *schemaRunner) lock() func() {
	mu := r.mu
	if mu == nil {
		mu = &syncMu
	}
	mu.Lock()
	return mu.Unlock
}

func (r *schemaRunner) migrationList() []schema.Migration {
	if r.migrations != nil {
		return r.migrations
	}
	return schema.Migrations(r.f, r.o)
}

// errNewerSchema: the database was migrated by a newer Weft.
var errNewerSchema = errors.New("schema is newer than this collector")

// syncMu serializes schema work within the process: the traces, metrics
// and logs exporters of one collector share the schema.
var syncMu sync.Mutex

func (r *schemaRunner) exec(ctx context.Context, sql string, args ...any) error {
	if err := r.db.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("%s: %w", firstLine(r.red.String(sql)), r.red.Error(err))
	}
	return nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// version is the newest migration recorded in schema_version; 0 when the
// table is missing or empty.
func (r *schemaRunner) version(ctx context.Context) (int, error) {
	rows, err := r.db.QueryStrings(ctx, "SELECT toString(max(version)) FROM "+r.o.Database+".schema_version")
	if err != nil {
		return 0, r.red.Error(err)
	}
	if len(rows) == 0 || len(rows[0]) == 0 {
		return 0, nil
	}
	return strconv.Atoi(rows[0][0])
}

// migrate creates the database and applies the migrations it lacks.
func (r *schemaRunner) migrate(ctx context.Context) error {
	defer r.lock()()
	for _, s := range schema.Bootstrap(r.f, r.o) {
		if err := r.exec(ctx, s); err != nil {
			return err
		}
	}
	cur, err := r.version(ctx)
	if err != nil {
		return err
	}
	ms := r.migrationList()
	if cur > len(ms) {
		r.logger.Warn("The ClickHouse schema is newer than this collector: leaving it alone; upgrade the collector",
			zap.Int("schema_version", cur), zap.Int("known_version", len(ms)))
		return errNewerSchema
	}
	for _, m := range ms {
		if m.Version <= cur {
			continue
		}
		if err := r.apply(ctx, m); err != nil {
			return fmt.Errorf("schema migration %d (%s): %w", m.Version, m.Name, err)
		}
		r.logger.Info("Applied ClickHouse schema migration", zap.Int("version", m.Version), zap.String("name", m.Name))
	}
	return nil
}

// apply runs a migration's steps and records it, retrying a few times: a
// statement may lose a race with another collector's identical one.
func (r *schemaRunner) apply(ctx context.Context, m schema.Migration) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		if err = r.applyOnce(ctx, m); err == nil {
			return nil
		}
	}
	return err
}

func (r *schemaRunner) applyOnce(ctx context.Context, m schema.Migration) error {
	for _, s := range m.Steps {
		if s.UnlessColumn != nil {
			rows, err := r.db.QueryStrings(ctx, "SELECT name FROM system.columns WHERE database = ? AND table = ? AND name = ?",
				r.o.Database, s.UnlessColumn[0], s.UnlessColumn[1])
			if err != nil {
				return r.red.Error(err)
			}
			if len(rows) > 0 {
				continue
			}
		}
		if err := r.exec(ctx, s.SQL); err != nil {
			return err
		}
	}
	return r.exec(ctx, "INSERT INTO "+r.o.Database+".schema_version (version, name, applied_at) SELECT ?, ?, now()",
		uint32(m.Version), m.Name)
}

// checkVersion is what a collector with create_schema: false does: make
// sure a DBA applied the schema it writes to.
func (r *schemaRunner) checkVersion(ctx context.Context) error {
	cur, err := r.version(ctx)
	if err != nil {
		return fmt.Errorf("create_schema is false, and %s.schema_version cannot be read (%w): apply the DDL that "+
			"`go run ./exporter/smartclickhouseexporter/cmd/weft-ch-ddl` prints, or set create_schema: true", r.o.Database, err)
	}
	if cur < schema.Latest() {
		return fmt.Errorf("create_schema is false, and %s.schema_version is %d while this collector needs %d: apply the DDL "+
			"that `go run ./exporter/smartclickhouseexporter/cmd/weft-ch-ddl` prints, or set create_schema: true", r.o.Database, cur, schema.Latest())
	}
	return nil
}

// recorded are the hashes in schema_objects, by object name.
func (r *schemaRunner) recorded(ctx context.Context) (map[string]string, error) {
	rows, err := r.db.QueryStrings(ctx, "SELECT name, argMax(hash, updated_ns) FROM "+r.o.Database+".schema_objects GROUP BY name")
	if err != nil {
		return nil, r.red.Error(err)
	}
	m := make(map[string]string, len(rows))
	for _, row := range rows {
		m[row[0]] = row[1]
	}
	return m, nil
}

func (r *schemaRunner) record(ctx context.Context, name, hash string) error {
	return r.exec(ctx, "INSERT INTO "+r.o.Database+".schema_objects (name, hash, updated_ns) SELECT ?, ?, ?",
		name, hash, uint64(time.Now().UnixNano()))
}

// hash identifies DDL statements.
func hash(stmts []string) string {
	h := digest(stmts)
	return hex.EncodeToString(h[:])
}

func digest(stmts []string) [sha256.Size]byte {
	return sha256.Sum256([]byte(strings.Join(stmts, "\n;\n")))
}

// objectHash is what schema_objects records of an object: the hash of its
// DDL with secrets replaced by a placeholder. Anyone who can read the table
// can try passwords against a hash that covers one, short ones in no time;
// this one reveals nothing about the password. A changed password is
// caught by appliedSecrets instead.
func objectHash(obj schema.Object) string {
	if obj.Fingerprint != nil {
		return hash(obj.Fingerprint)
	}
	return hash(obj.Create)
}

// sync creates the dictionaries, XML files, views and TTL that are missing,
// re-creates those whose definition changed, and drops those that are no
// longer wanted (a removed dictionaries.source). It returns the first error
// after trying everything: one broken view does not hold up the others.
func (r *schemaRunner) sync(ctx context.Context) error {
	defer r.lock()()
	cur, err := r.version(ctx)
	if err != nil {
		return err
	}
	if cur > len(r.migrationList()) {
		return nil
	}
	rec, err := r.recorded(ctx)
	if err != nil {
		return err
	}
	dicts, err := schema.DictionaryObjects(r.f, r.o)
	if err != nil {
		return err
	}
	var errs []error
	var objs []schema.Object
	if ttl := schema.TTLObject(r.f, r.o); ttl != nil {
		objs = append(objs, *ttl)
	}
	objs = append(objs, dicts...)
	wanted := map[string]bool{}
	rewritten := false
	for _, obj := range objs {
		wanted[obj.Name] = true
		err := r.syncObject(ctx, obj, rec)
		errs = append(errs, err)
		rewritten = rewritten || (err == nil && obj.Fingerprint != nil && rec[obj.Name] != objectHash(obj))
	}
	if rewritten {
		// Collectors before this one recorded a hash over the password:
		// merge the table now so that superseded records are gone, not
		// left in old parts.
		if err := r.db.Exec(ctx, "OPTIMIZE TABLE "+r.o.Database+".schema_objects FINAL"); err != nil {
			r.logger.Debug("Merging schema_objects failed", zap.Error(r.red.Error(err)))
		}
	}
	if err := r.syncXML(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, obj := range schema.ViewObjects(r.f, r.o) {
		wanted[obj.Name] = true
		errs = append(errs, r.syncObject(ctx, obj, rec))
	}
	names := make([]string, 0, len(rec))
	for name := range rec {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if wanted[name] || rec[name] == "" {
			continue
		}
		if drop := schema.DropStatement(r.o, name); drop != "" {
			if err := r.exec(ctx, drop); err != nil {
				errs = append(errs, err)
				continue
			}
		} else if name == "ttl" {
			r.logger.Warn("ttl was removed from the configuration, but the tables keep their TTL: remove it with ALTER TABLE ... REMOVE TTL")
		}
		errs = append(errs, r.record(ctx, name, ""))
	}
	return errors.Join(errs...)
}

func (r *schemaRunner) syncObject(ctx context.Context, obj schema.Object, rec map[string]string) error {
	h := objectHash(obj)
	// Whether this process put the configured secret in: the recorded hash
	// cannot tell.
	secretKey, secretOK := "", true
	var full [sha256.Size]byte
	if obj.Fingerprint != nil {
		secretKey, full = r.secrets().key(r.o, obj.Name), digest(obj.Create)
		secretOK = r.secrets().has(secretKey, full)
	}
	exists := true
	if obj.Exists != "" {
		rows, err := r.db.QueryStrings(ctx, obj.Exists, obj.ExistsArgs...)
		if err != nil {
			return r.red.Error(err)
		}
		exists = len(rows) > 0
	}
	if exists && rec[obj.Name] == h && secretOK {
		return nil
	}
	if exists {
		for _, s := range obj.Drop {
			if err := r.exec(ctx, s); err != nil {
				return err
			}
		}
	}
	for _, s := range obj.Create {
		if err := r.exec(ctx, s); err != nil {
			return err
		}
	}
	r.logger.Info("Created ClickHouse object", zap.String("object", obj.Name))
	if err := r.record(ctx, obj.Name, h); err != nil {
		return err
	}
	if secretKey != "" {
		r.secrets().set(secretKey, full)
	}
	return nil
}

// syncXML writes the XML dictionary files for servers without CREATE
// DICTIONARY, removes its own files that are no longer wanted, and waits
// until the server has read them: views need the dictionaries to exist.
func (r *schemaRunner) syncXML(ctx context.Context) error {
	files, err := schema.XMLFiles(r.f, r.o)
	if err != nil {
		return err
	}
	if r.f.CreateDictionary {
		return nil
	}
	if r.xmlDir == "" {
		if len(files) > 0 {
			return fmt.Errorf("ClickHouse %s has no CREATE DICTIONARY (it came in 19.17): set dictionaries.xml_dir to the "+
				"directory of the server's dictionaries_config (*_dictionary.xml), where the exporter writes the dictionaries", r.f.Version)
		}
		return nil
	}
	if err := os.MkdirAll(r.xmlDir, 0o750); err != nil {
		return fmt.Errorf("dictionaries.xml_dir: %w", err)
	}
	changed := false
	for name, content := range files {
		path := filepath.Join(r.xmlDir, name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, content) {
			continue
		}
		if err := writeFileAtomic(path, content); err != nil {
			return fmt.Errorf("dictionaries.xml_dir: %w", err)
		}
		changed = true
		r.logger.Info("Wrote ClickHouse dictionary definition", zap.String("file", path))
	}
	// Remove this exporter's files for this database that are no longer
	// wanted; files without the marker are someone else's.
	old, _ := filepath.Glob(filepath.Join(r.xmlDir, r.o.Database+"_*_dictionary.xml"))
	for _, path := range old {
		if _, ok := files[filepath.Base(path)]; ok {
			continue
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Contains(b, []byte(schema.XMLMarker)) {
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("dictionaries.xml_dir: %w", err)
			}
			changed = true
		}
	}
	if !changed || len(files) == 0 {
		return nil
	}
	return r.waitDictionaries(ctx)
}

// waitDictionaries waits until the server knows every XML dictionary: it
// reads new files within a few seconds.
func (r *schemaRunner) waitDictionaries(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		rows, err := r.db.QueryStrings(ctx, "SELECT name FROM system.dictionaries WHERE startsWith(name, ?)", r.o.Database+"_")
		if err != nil {
			return r.red.Error(err)
		}
		known := map[string]bool{}
		for _, row := range rows {
			known[row[0]] = true
		}
		missing := ""
		for _, d := range schema.Dictionaries {
			if ref := schema.DictRef(r.f, r.o, d.Name); !known[ref] {
				missing = ref
				break
			}
		}
		if missing == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ClickHouse has not loaded the dictionary %s from dictionaries.xml_dir %s within 30s: "+
				"check that the directory matches the server's dictionaries_config and that the server can read it", missing, r.xmlDir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// writeFileAtomic replaces path with content in one rename, so that the
// server never reads half a file. The file holds the metadata database's
// password: readable by owner and group only (the ClickHouse server's user
// must be in the group, or own the directory).
func writeFileAtomic(path string, content []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".weft-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o640); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
