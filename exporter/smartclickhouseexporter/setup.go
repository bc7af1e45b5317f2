package smartclickhouseexporter

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
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
	"golang.org/x/crypto/scrypt"

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
	// keys derives and caches the keys recorded for secrets; nil means the
	// process-wide processKeys. Tests give runners their own to act as
	// separate processes.
	keys *secretKeys
}

// secretKeys derives the key that schema_objects records of an object's
// secret (see secretRecord), and remembers, in memory only, each key it
// derived: the key of a salt and secret costs one slow derivation per
// process, not one per object and minute.
type secretKeys struct {
	mu sync.Mutex
	m  map[secretKeyID][]byte
	// derive replaces scryptKey in tests, to count derivations.
	derive func(secret string, salt []byte) ([]byte, error)
}

type secretKeyID struct{ salt, secret string }

var processKeys = &secretKeys{}

// maxSecretKeys bounds the cache: distinct salts come only from
// re-creations (one salt per sync), a handful per process.
const maxSecretKeys = 64

func (k *secretKeys) key(secret string, salt []byte) ([]byte, error) {
	id := secretKeyID{string(salt), secret}
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.m[id]; ok {
		return key, nil
	}
	derive := k.derive
	if derive == nil {
		derive = scryptKey
	}
	key, err := derive(secret, salt)
	if err != nil {
		return nil, err
	}
	if k.m == nil || len(k.m) >= maxSecretKeys {
		k.m = map[secretKeyID][]byte{}
	}
	k.m[id] = key
	return key, nil
}

// scryptKey is deliberately slow (about 0.1 s and 32 MiB): whoever reads
// schema_objects pays that for every password they try.
func scryptKey(secret string, salt []byte) ([]byte, error) {
	return scrypt.Key([]byte(secret), salt, 1<<15, 8, 1, 32)
}

func (r *schemaRunner) secretKeys() *secretKeys {
	if r.keys != nil {
		return r.keys
	}
	return processKeys
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

// What schema_objects records of an object with a secret (a dictionary
// source's password):
//
//	<fingerprint>:scrypt1:<salt>:<key>
//
// fingerprint is the hash of the DDL with the secret replaced by a
// placeholder, the same whatever the secret; salt is 16 random bytes and key
// scrypt(secret, salt, N=2^15, r=8, p=1) of 32 bytes, all hex. A plain hash
// over DDL with the password in it could be tested against passwords at
// billions a second; this one at about ten a second per core. The version
// tag lets the format change: a record in any other form (a plain hash, as
// collectors before wrote) does not match, and the object is re-created and
// recorded anew.
const secretRecordTag = "scrypt1"

const secretSaltLen = 16

func secretRecord(fingerprint string, salt, key []byte) string {
	return fingerprint + ":" + secretRecordTag + ":" + hex.EncodeToString(salt) + ":" + hex.EncodeToString(key)
}

func parseSecretRecord(s string) (fingerprint string, salt, key []byte, ok bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 4 || parts[1] != secretRecordTag {
		return "", nil, nil, false
	}
	salt, err1 := hex.DecodeString(parts[2])
	key, err2 := hex.DecodeString(parts[3])
	if err1 != nil || err2 != nil || len(salt) != secretSaltLen || len(key) == 0 {
		return "", nil, nil, false
	}
	return parts[0], salt, key, true
}

// syncState is what one sync shares between its objects.
type syncState struct {
	// salt is the salt of the secrets recorded in this sync, drawn at the
	// first one: re-creating the 14 dictionaries costs one derivation.
	salt []byte
}

// upToDate tells whether rec, the recorded value, is that of obj.
func (r *schemaRunner) upToDate(obj schema.Object, rec string) bool {
	if obj.Secret == "" {
		return rec == hash(obj.Create)
	}
	fp, salt, key, ok := parseSecretRecord(rec)
	if !ok || fp != hash(obj.Fingerprint) {
		return false
	}
	want, err := r.secretKeys().key(obj.Secret, salt)
	if err != nil {
		r.logger.Debug("Deriving the secret's key failed", zap.Error(r.red.Error(err)))
		return false
	}
	return subtle.ConstantTimeCompare(want, key) == 1
}

// recordOf is the value to record for obj.
func (r *schemaRunner) recordOf(obj schema.Object, st *syncState) (string, error) {
	if obj.Secret == "" {
		return hash(obj.Create), nil
	}
	if st.salt == nil {
		salt := make([]byte, secretSaltLen)
		if _, err := rand.Read(salt); err != nil {
			return "", err
		}
		st.salt = salt
	}
	key, err := r.secretKeys().key(obj.Secret, st.salt)
	if err != nil {
		return "", r.red.Error(err)
	}
	return secretRecord(hash(obj.Fingerprint), st.salt, key), nil
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
	st := &syncState{}
	rewritten := false
	for _, obj := range objs {
		wanted[obj.Name] = true
		recorded, err := r.syncObject(ctx, obj, rec, st)
		errs = append(errs, err)
		rewritten = rewritten || (recorded && rec[obj.Name] != "")
	}
	if rewritten {
		// A replaced record of a dictionary may be derived from a password:
		// the previous salted key, or the plain hash over the DDL that
		// collectors before recorded. Merge the table now so that
		// superseded records are gone, not left in old parts.
		if err := r.db.Exec(ctx, "OPTIMIZE TABLE "+r.o.Database+".schema_objects FINAL"); err != nil {
			r.logger.Debug("Merging schema_objects failed", zap.Error(r.red.Error(err)))
		}
	}
	if err := r.syncXML(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, obj := range schema.ViewObjects(r.f, r.o) {
		wanted[obj.Name] = true
		_, err := r.syncObject(ctx, obj, rec, st)
		errs = append(errs, err)
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

// syncObject creates obj when it is missing, or re-creates it when rec
// does not record its definition (and secret), and reports whether it
// recorded obj anew.
func (r *schemaRunner) syncObject(ctx context.Context, obj schema.Object, rec map[string]string, st *syncState) (bool, error) {
	exists := true
	if obj.Exists != "" {
		rows, err := r.db.QueryStrings(ctx, obj.Exists, obj.ExistsArgs...)
		if err != nil {
			return false, r.red.Error(err)
		}
		exists = len(rows) > 0
	}
	if exists && r.upToDate(obj, rec[obj.Name]) {
		return false, nil
	}
	// Before dropping anything: a failure here leaves the object as it is.
	value, err := r.recordOf(obj, st)
	if err != nil {
		return false, fmt.Errorf("%s: %w", obj.Name, err)
	}
	if exists {
		for _, s := range obj.Drop {
			if err := r.exec(ctx, s); err != nil {
				return false, err
			}
		}
	}
	for _, s := range obj.Create {
		if err := r.exec(ctx, s); err != nil {
			return false, err
		}
	}
	r.logger.Info("Created ClickHouse object", zap.String("object", obj.Name))
	if err := r.record(ctx, obj.Name, value); err != nil {
		return false, err
	}
	return true, nil
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
