package stitch

import "iter"

// keyTable is the engine's index: key (from keyOf or traceKey) to a record
// or the head of a key chain. It is probed several times for every span
// added and taken out, and holds an entry per key of every held span, so
// it is mostly cache misses. A Go map reads a control word and then a slot
// (and hashes the key again); this table is open addressing with linear
// probing over keys that keyOf has already mixed, so a lookup usually
// reads one 12-byte slot. Deletion shifts the entries after the hole back
// (no tombstones), so probe sequences stay as short as the load allows.
type keyTable struct {
	slots []kslot // a power of two long
	n     int
}

// kslot is a key split in two halves, to pack a slot in 12 bytes, and its
// value. A zero key marks an empty slot; values are never zero.
type kslot struct {
	lo, hi uint32
	v      uint32
}

const minKeyTable = 1 << 10

func newKeyTable() keyTable { return keyTable{slots: make([]kslot, minKeyTable)} }

// tkey maps the one key that would read as empty to another one. Such a
// collision (one in 2^64) costs nothing worse than a chain compared in
// vain: every join checks the records' fields.
func tkey(k uint64) uint64 {
	if k == 0 {
		return 1
	}
	return k
}

// find returns the index of k's slot, or of the empty slot where it would
// go.
func (t *keyTable) find(k uint64) uint64 {
	lo, hi := uint32(k), uint32(k>>32)
	mask := uint64(len(t.slots) - 1)
	for i := k & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.lo == lo && s.hi == hi || s.lo|s.hi == 0 {
			return i
		}
	}
}

// get returns the value of k, 0 when it has none.
func (t *keyTable) get(k uint64) uint32 { return t.slots[t.find(tkey(k))].v }

// set sets the value of k (not 0).
func (t *keyTable) set(k uint64, v uint32) { t.swap(k, v) }

// swap sets the value of k (not 0) and returns the one it had, 0 for none:
// one probe where a get and a set would take two.
func (t *keyTable) swap(k uint64, v uint32) uint32 {
	k = tkey(k)
	s := &t.slots[t.find(k)]
	if old := s.v; old != 0 {
		s.v = v
		return old
	}
	s.lo, s.hi, s.v = uint32(k), uint32(k>>32), v
	t.n++
	if t.n*4 > len(t.slots)*3 {
		t.grow()
	}
	return 0
}

func (t *keyTable) grow() {
	old := t.slots
	t.slots = make([]kslot, 2*len(old))
	for _, s := range old {
		if s.v != 0 {
			t.slots[t.find(uint64(s.hi)<<32|uint64(s.lo))] = s
		}
	}
}

// del removes k.
func (t *keyTable) del(k uint64) {
	hole := t.find(tkey(k))
	if t.slots[hole].v == 0 {
		return
	}
	t.n--
	// The entries after the hole, up to the next empty slot, move back
	// into it unless their home slot lies between the hole and them.
	mask := uint64(len(t.slots) - 1)
	for j := (hole + 1) & mask; ; j = (j + 1) & mask {
		e := t.slots[j]
		if e.v == 0 {
			break
		}
		home := (uint64(e.hi)<<32 | uint64(e.lo)) & mask
		if (j-home)&mask >= (j-hole)&mask {
			t.slots[hole] = e
			hole = j
		}
	}
	t.slots[hole] = kslot{}
}

// all yields the keys and values; for tests.
func (t *keyTable) all() iter.Seq2[uint64, uint32] {
	return func(yield func(uint64, uint32) bool) {
		for _, s := range t.slots {
			if s.v != 0 && !yield(uint64(s.hi)<<32|uint64(s.lo), s.v) {
				return
			}
		}
	}
}
