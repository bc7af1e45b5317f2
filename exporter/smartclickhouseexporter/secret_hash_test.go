package smartclickhouseexporter

import (
	"context"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	"golang.org/x/crypto/scrypt"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
)

// fakeDB is just enough of a server for schemaRunner.sync: it keeps
// schema_objects and the set of dictionaries.
type fakeDB struct {
	records map[string]string
	dicts   map[string]bool
	execs   []string
}

func newFakeDB() *fakeDB { return &fakeDB{records: map[string]string{}, dicts: map[string]bool{}} }

func (d *fakeDB) Exec(_ context.Context, query string, args ...any) error {
	d.execs = append(d.execs, query)
	switch {
	case strings.Contains(query, ".schema_objects (name, hash"):
		d.records[args[0].(string)] = args[1].(string)
	case strings.HasPrefix(query, "CREATE DICTIONARY IF NOT EXISTS weft."):
		name, _, _ := strings.Cut(strings.TrimPrefix(query, "CREATE DICTIONARY IF NOT EXISTS weft."), "\n")
		d.dicts[name] = true
	}
	return nil
}

func (d *fakeDB) QueryStrings(_ context.Context, query string, args ...any) ([][]string, error) {
	switch {
	case strings.Contains(query, "max(version)"):
		return [][]string{{"2"}}, nil
	case strings.Contains(query, "argMax(hash"):
		var out [][]string
		for n, h := range d.records {
			out = append(out, []string{n, h})
		}
		return out, nil
	case strings.Contains(query, "system.dictionaries"):
		if d.dicts[args[1].(string)] {
			return [][]string{{args[1].(string)}}, nil
		}
	}
	return nil, nil
}

func (d *fakeDB) creates() (n int, withPassword []string) {
	for _, q := range d.execs {
		if strings.HasPrefix(q, "CREATE DICTIONARY") {
			n++
			_, pw, _ := strings.Cut(q, "PASSWORD ")
			pw, _, _ = strings.Cut(pw, " DB")
			withPassword = append(withPassword, pw)
		}
	}
	d.execs = nil
	return n, withPassword
}

// countingKeys is one process's key cache, counting the slow derivations.
type countingKeys struct {
	secretKeys
	n atomic.Int32
}

func newCountingKeys() *countingKeys {
	k := &countingKeys{}
	k.derive = func(secret string, salt []byte) ([]byte, error) {
		k.n.Add(1)
		return scryptKey(secret, salt)
	}
	return k
}

// derivations returns and resets the count.
func (k *countingKeys) derivations() int { return int(k.n.Swap(0)) }

// schema_objects used to hold a SHA-256 over DDL with the password in it:
// anyone who can read the table could brute-force a short password. It
// now holds a hash of the DDL without the password and a salted scrypt key
// of the password, which still shows a changed password to a new process.
func TestRecordedHashRevealsNoPassword(t *testing.T) {
	f := schema.FeaturesOf(schema.Version{Major: 23, Minor: 8})
	opts := func(pw string) schema.Options {
		return schema.Options{Database: "weft", Lifetime: time.Minute,
			Source: schema.Source{Driver: "mysql", Host: "db", Port: 3306, User: "u", Password: pw, Database: "meta"}}
	}
	db := newFakeDB()
	// A runner is a collector process: its own lock and key cache.
	runner := func(pw string, keys *countingKeys) *schemaRunner {
		return &schemaRunner{db: db, f: f, o: opts(pw), logger: zaptest.NewLogger(t), red: newRedactor(pw),
			mu: &sync.Mutex{}, keys: &keys.secretKeys, migrations: schema.Migrations(f, opts(pw))}
	}
	ctx := context.Background()
	optimized := func() bool {
		return slices.Contains(db.execs, "OPTIMIZE TABLE weft.schema_objects FINAL")
	}
	// checkRecords checks that every dictionary's record is the password-free
	// fingerprint and scrypt(pw) under one salt, and returns that salt.
	checkRecords := func(pw string) string {
		t.Helper()
		objs, err := schema.DictionaryObjects(f, opts(pw))
		require.NoError(t, err)
		var salt0, key0 []byte
		for _, obj := range objs {
			fp, salt, key, ok := parseSecretRecord(db.records[obj.Name])
			require.True(t, ok, db.records[obj.Name])
			assert.Equal(t, hash(obj.Fingerprint), fp)
			if salt0 == nil {
				salt0, key0 = salt, key
			}
			assert.Equal(t, salt0, salt, "one salt per sync")
			assert.Equal(t, key0, key)
		}
		want, err := scrypt.Key([]byte(pw), salt0, 32768, 8, 1, 32)
		require.NoError(t, err)
		assert.Equal(t, want, key0, "the key is scrypt with N=32768, r=8, p=1")
		return string(salt0)
	}

	// What an older collector left: hashes over the password.
	objs, err := schema.DictionaryObjects(f, opts("a"))
	require.NoError(t, err)
	for _, obj := range objs {
		require.Equal(t, "a", obj.Secret)
		db.records[obj.Name] = hash(obj.Create)
		db.dicts[strings.TrimPrefix(obj.Name, "dictionary:")] = true
	}
	proc1 := newCountingKeys()
	require.NoError(t, runner("a", proc1).sync(ctx))
	assert.True(t, optimized(), "superseded records are merged away")
	n, pws := db.creates()
	assert.Equal(t, len(schema.Dictionaries), n, "old records are rewritten")
	assert.Equal(t, "'a'", pws[0])
	assert.Equal(t, 1, proc1.derivations(), "one salt for the sync, one derivation")
	saltA := checkRecords("a")
	for _, obj := range objs {
		assert.NotEqual(t, hash(obj.Create), db.records[obj.Name], "the hash covers the password")
		assert.NotContains(t, db.records[obj.Name], hash(obj.Create))
		for _, s := range obj.Fingerprint {
			assert.NotContains(t, s, "'a'")
		}
	}

	// The same process: nothing to do, and nothing to derive.
	require.NoError(t, runner("a", proc1).sync(ctx))
	assert.False(t, optimized())
	n, _ = db.creates()
	assert.Zero(t, n)
	assert.Zero(t, proc1.derivations())

	// Another process (or a restart) with the same password: nothing to
	// re-create, at the cost of one derivation for the shared salt.
	proc2 := newCountingKeys()
	require.NoError(t, runner("a", proc2).sync(ctx))
	n, _ = db.creates()
	assert.Zero(t, n, "a restart re-creates nothing")
	assert.Equal(t, 1, proc2.derivations())
	require.NoError(t, runner("a", proc2).sync(ctx))
	n, _ = db.creates()
	assert.Zero(t, n)
	assert.Zero(t, proc2.derivations())

	// A process with another password re-creates the dictionaries, under a
	// fresh salt; the fingerprints do not depend on the password.
	proc3 := newCountingKeys()
	require.NoError(t, runner("b", proc3).sync(ctx))
	assert.True(t, optimized(), "the superseded key is merged away")
	n, pws = db.creates()
	assert.Equal(t, len(schema.Dictionaries), n)
	assert.Equal(t, "'b'", pws[0])
	assert.Equal(t, 2, proc3.derivations(), "the recorded salt, then the fresh one")
	saltB := checkRecords("b")
	assert.NotEqual(t, saltA, saltB)
	require.NoError(t, runner("b", proc3).sync(ctx))
	n, _ = db.creates()
	assert.Zero(t, n)
	assert.Zero(t, proc3.derivations())

	// A password change within a process is applied too.
	require.NoError(t, runner("c", proc3).sync(ctx))
	n, pws = db.creates()
	assert.Equal(t, len(schema.Dictionaries), n)
	assert.Equal(t, "'c'", pws[0])
	checkRecords("c")
	// ... and the first process, still on "a", notices it.
	require.NoError(t, runner("a", proc1).sync(ctx))
	n, pws = db.creates()
	assert.Equal(t, len(schema.Dictionaries), n)
	assert.Equal(t, "'a'", pws[0])
	checkRecords("a")

	// Without a password there is nothing to derive: the hash covers it all.
	proc4 := newCountingKeys()
	require.NoError(t, runner("", proc4).sync(ctx))
	n, _ = db.creates()
	assert.Equal(t, len(schema.Dictionaries), n, "the DDL changed")
	require.NoError(t, runner("", newCountingKeys()).sync(ctx))
	n, _ = db.creates()
	assert.Zero(t, n)
	assert.Zero(t, proc4.derivations())
	objs, err = schema.DictionaryObjects(f, opts(""))
	require.NoError(t, err)
	for _, obj := range objs {
		assert.Empty(t, obj.Secret)
		assert.Equal(t, hash(obj.Create), db.records[obj.Name])
	}
}

// The collector just before this format recorded the plain fingerprint: a
// restart re-creates the dictionaries once and records the new format.
func TestFingerprintRecordsAreRewrittenOnce(t *testing.T) {
	f := schema.FeaturesOf(schema.Version{Major: 23, Minor: 8})
	o := schema.Options{Database: "weft", Lifetime: time.Minute,
		Source: schema.Source{Driver: "postgres", Host: "db", Port: 5432, User: "u", Password: "pw", Database: "meta"}}
	db := newFakeDB()
	objs, err := schema.DictionaryObjects(f, o)
	require.NoError(t, err)
	for _, obj := range objs {
		db.records[obj.Name] = hash(obj.Fingerprint)
		db.dicts[strings.TrimPrefix(obj.Name, "dictionary:")] = true
	}
	for i, want := range []int{len(schema.Dictionaries), 0, 0} {
		keys := newCountingKeys() // a restart each time
		r := &schemaRunner{db: db, f: f, o: o, logger: zaptest.NewLogger(t), red: newRedactor("pw"),
			mu: &sync.Mutex{}, keys: &keys.secretKeys, migrations: schema.Migrations(f, o)}
		require.NoError(t, r.sync(context.Background()))
		n, _ := db.creates()
		assert.Equal(t, want, n, "start %d", i)
		assert.Equal(t, 1, keys.derivations(), "start %d", i)
	}
	for _, obj := range objs {
		_, _, _, ok := parseSecretRecord(db.records[obj.Name])
		assert.True(t, ok)
	}
}

func TestParseSecretRecord(t *testing.T) {
	salt := []byte("0123456789abcdef")
	rec := secretRecord("ff00", salt, []byte{1, 2, 3})
	fp, s, k, ok := parseSecretRecord(rec)
	require.True(t, ok)
	assert.Equal(t, "ff00", fp)
	assert.Equal(t, salt, s)
	assert.Equal(t, []byte{1, 2, 3}, k)
	for _, bad := range []string{
		"", "ff00", hash([]string{"x"}),
		"ff00:scrypt2:" + hex.EncodeToString(salt) + ":010203",
		"ff00:scrypt1:0011:010203",
		"ff00:scrypt1:" + hex.EncodeToString(salt) + ":",
		"ff00:scrypt1:" + hex.EncodeToString(salt) + ":zz",
		rec + ":00",
	} {
		_, _, _, ok := parseSecretRecord(bad)
		assert.False(t, ok, bad)
	}
}

// The key cache derives once per salt and secret.
func TestSecretKeysCache(t *testing.T) {
	k := newCountingKeys()
	k.derive = func(secret string, salt []byte) ([]byte, error) {
		k.n.Add(1)
		return []byte(secret + string(salt)), nil
	}
	for range 3 {
		key, err := k.key("a", []byte("s1"))
		require.NoError(t, err)
		assert.Equal(t, []byte("as1"), key)
	}
	_, _ = k.key("b", []byte("s1"))
	_, _ = k.key("a", []byte("s2"))
	assert.Equal(t, 3, k.derivations())
	for i := range 2 * maxSecretKeys {
		_, _ = k.key("a", []byte(strconv.Itoa(i)))
	}
	assert.LessOrEqual(t, len(k.m), maxSecretKeys, "the cache is bounded")
}
