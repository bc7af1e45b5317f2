package smartclickhouseexporter

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/weftobs/weft/exporter/smartclickhouseexporter/internal/schema"
)

// Tag-value candidates: the attribute names, and name/value pairs, seen per
// table, for query builders ("which values does http.route take?"). Every
// row repeats the same few, so they are written only when new to a bounded
// in-memory LRU, and again after candidateRefresh so that the stored time
// says when a pair was last seen. ReplacingMergeTree folds the repeats.
const (
	candidateCacheSize = 100_000
	candidateRefresh   = time.Hour
	// candidateMaxLen: longer names and values (URLs with ids, messages)
	// are no candidates anyone picks from a list.
	candidateMaxLen = 256
	// candidateMaxValues bounds the values written per name and refresh
	// period, so that a high-cardinality attribute (a request id) does not
	// turn tag_values into a copy of the data.
	candidateMaxValues = 1000
	// candidateMaxNames bounds the attribute names tracked per period.
	candidateMaxNames = 10_000
)

const (
	scopeResource  = "resource"
	scopeAttribute = "attribute"
)

type candidateRow struct {
	table, scope, name, value string
	key                       uint64
}

type candidates struct {
	mu     sync.Mutex
	seed   maphash.Seed
	seen   *simplelru.LRU[uint64, int64] // key hash -> unix time written
	counts map[uint64]int                // name hash -> values admitted this period
	period int64                         // unix time the counts started
}

func newCandidates() *candidates {
	seen, _ := simplelru.NewLRU[uint64, int64](candidateCacheSize, nil)
	return &candidates{seed: maphash.MakeSeed(), seen: seen, counts: map[uint64]int{}}
}

func (c *candidates) hash(table, scope, name, value string, withValue bool) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(table)
	h.WriteByte(0)
	h.WriteString(scope)
	h.WriteByte(0)
	h.WriteString(name)
	if withValue {
		h.WriteByte(1)
		h.WriteString(value)
	}
	return h.Sum64()
}

// candidateBatch gathers the candidates of one request: per name, the
// distinct values. Rows repeat the same names, so the work per attribute is
// two small map lookups; a name whose values are full is not looked into.
type candidateBatch struct {
	c            *candidates
	table        string
	now          int64
	names        map[nameKey]*nameEntry
	order        []nameKey // first-seen order, for stable output
	lastResource *string   // resource arrays are shared by rows: look once
}

type nameKey struct {
	scope, name string
}

type nameEntry struct {
	values map[string]struct{}
	order  []string
	full   bool
}

func (c *candidates) batch(table string, now time.Time) *candidateBatch {
	return &candidateBatch{c: c, table: table, now: now.Unix(), names: map[nameKey]*nameEntry{}}
}

// add looks at one row's name/value arrays.
func (b *candidateBatch) add(scope string, names, values []string) {
	if scope == scopeResource && len(names) > 0 {
		if b.lastResource == &names[0] {
			return
		}
		b.lastResource = &names[0]
	}
	for i, n := range names {
		k := nameKey{scope, n}
		e := b.names[k]
		if e == nil {
			if len(n) > candidateMaxLen {
				continue
			}
			e = &nameEntry{values: map[string]struct{}{}, full: b.c.full(b.c.hash(b.table, scope, n, "", false))}
			b.names[k] = e
			b.order = append(b.order, k)
		}
		if e.full || i >= len(values) || len(values[i]) > candidateMaxLen {
			continue
		}
		if _, ok := e.values[values[i]]; ok {
			continue
		}
		if len(e.values) >= candidateMaxValues {
			e.full = true
			continue
		}
		e.values[values[i]] = struct{}{}
		e.order = append(e.order, values[i])
	}
}

// full reports whether a name has had its share of values this period.
func (c *candidates) full(nameHash uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[nameHash] >= candidateMaxValues
}

// fresh keeps the rows that were not written within candidateRefresh (or
// ever), marks them written, and applies the per-name value bound.
func (b *candidateBatch) fresh() (names, values []candidateRow) {
	c := b.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.now-c.period >= int64(candidateRefresh/time.Second) {
		c.counts = map[uint64]int{}
		c.period = b.now
	}
	keep := func(key uint64) bool {
		if t, ok := c.seen.Get(key); ok && b.now-t < int64(candidateRefresh/time.Second) {
			return false
		}
		c.seen.Add(key, b.now)
		return true
	}
	for _, k := range b.order {
		nk := c.hash(b.table, k.scope, k.name, "", false)
		if _, known := c.counts[nk]; !known && len(c.counts) >= candidateMaxNames {
			// Attribute names that carry ids (a header name per request)
			// would grow this without end: past the bound, new names wait
			// for the next period.
			continue
		}
		if keep(nk) {
			names = append(names, candidateRow{table: b.table, scope: k.scope, name: k.name, key: nk})
		}
		if _, ok := c.counts[nk]; !ok {
			c.counts[nk] = 0
		}
		for _, v := range b.names[k].order {
			if c.counts[nk] >= candidateMaxValues {
				break
			}
			vk := c.hash(b.table, k.scope, k.name, v, true)
			if keep(vk) {
				c.counts[nk]++
				values = append(values, candidateRow{table: b.table, scope: k.scope, name: k.name, value: v, key: vk})
			}
		}
	}
	return names, values
}

// forget undoes fresh for rows that could not be written, so that a later
// request writes them.
func (c *candidates) forget(rows ...[]candidateRow) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range rows {
		for _, r := range rs {
			c.seen.Remove(r.key)
		}
	}
}

// writeCandidates inserts the new candidates of a request.
func writeCandidates(ctx context.Context, conn driver.Conn, database string, now time.Time, names, values []candidateRow) error {
	if len(names) > 0 {
		cols := map[string]any{"time": repeat(now.Unix(), len(names))}
		fill(cols, names, false)
		if err := insert(ctx, conn, database, schema.TagNames, cols); err != nil {
			return err
		}
	}
	if len(values) > 0 {
		cols := map[string]any{"time": repeat(now.Unix(), len(values))}
		fill(cols, values, true)
		if err := insert(ctx, conn, database, schema.TagValues, cols); err != nil {
			return err
		}
	}
	return nil
}

func repeat(v int64, n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

func fill(cols map[string]any, rows []candidateRow, withValue bool) {
	table, scope, name, value := make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows))
	for i, r := range rows {
		table[i], scope[i], name[i], value[i] = r.table, r.scope, r.name, r.value
	}
	cols["table_name"], cols["scope"], cols["name"] = table, scope, name
	if withValue {
		cols["value"] = value
	}
}
