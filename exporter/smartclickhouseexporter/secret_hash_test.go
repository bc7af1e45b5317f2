package smartclickhouseexporter

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

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

// schema_objects used to hold a SHA-256 over DDL with the password in it:
// anyone who can read the table could brute-force a short password.
func TestRecordedHashRevealsNoPassword(t *testing.T) {
	f := schema.FeaturesOf(schema.Version{Major: 23, Minor: 8})
	opts := func(pw string) schema.Options {
		return schema.Options{Database: "weft", Lifetime: time.Minute,
			Source: schema.Source{Driver: "mysql", Host: "db", Port: 3306, User: "u", Password: pw, Database: "meta"}}
	}
	db := newFakeDB()
	runner := func(pw string, applied *appliedSecrets) *schemaRunner {
		return &schemaRunner{db: db, f: f, o: opts(pw), logger: zaptest.NewLogger(t), red: newRedactor(pw),
			mu: &sync.Mutex{}, applied: applied, migrations: schema.Migrations(f, opts(pw))}
	}
	ctx := context.Background()
	// What an older collector left: hashes over the password.
	objs, err := schema.DictionaryObjects(f, opts("a"))
	require.NoError(t, err)
	for _, obj := range objs {
		db.records[obj.Name] = hash(obj.Create)
		db.dicts[strings.TrimPrefix(obj.Name, "dictionary:")] = true
	}
	proc1 := &appliedSecrets{}
	require.NoError(t, runner("a", proc1).sync(ctx))
	assert.Contains(t, db.execs, "OPTIMIZE TABLE weft.schema_objects FINAL", "superseded records are merged away")
	n, pws := db.creates()
	assert.Equal(t, len(schema.Dictionaries), n)
	assert.Equal(t, "'a'", pws[0])
	withA := map[string]string{}
	for k, v := range db.records {
		withA[k] = v
	}

	for _, obj := range objs {
		assert.NotEqual(t, hash(obj.Create), db.records[obj.Name], "the hash covers the password")
		for _, s := range obj.Fingerprint {
			assert.NotContains(t, s, "'a'")
		}
	}

	// The same process: nothing to do.
	require.NoError(t, runner("a", proc1).sync(ctx))
	n, _ = db.creates()
	assert.Zero(t, n)

	// Another process (or a restart) with another password re-creates the
	// dictionaries, and records the same hashes: they do not depend on it.
	proc2 := &appliedSecrets{}
	require.NoError(t, runner("b", proc2).sync(ctx))
	n, pws = db.creates()
	assert.Equal(t, len(schema.Dictionaries), n)
	assert.Equal(t, "'b'", pws[0])
	assert.Equal(t, withA, db.records)
	require.NoError(t, runner("b", proc2).sync(ctx))
	n, _ = db.creates()
	assert.Zero(t, n)

	// A password change within a process is applied too.
	require.NoError(t, runner("c", proc2).sync(ctx))
	n, pws = db.creates()
	assert.Equal(t, len(schema.Dictionaries), n)
	assert.Equal(t, "'c'", pws[0])

	// Without a password, nothing is remembered: the hash covers it all.
	require.NoError(t, runner("", &appliedSecrets{}).sync(ctx))
	n, _ = db.creates()
	assert.Equal(t, len(schema.Dictionaries), n, "the DDL changed")
	require.NoError(t, runner("", &appliedSecrets{}).sync(ctx))
	n, _ = db.creates()
	assert.Zero(t, n)
}
