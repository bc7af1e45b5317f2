package stitch

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestKeyTableMatchesMap drives the index table and a Go map with the same
// random sets and deletes (keys drawn from a small range, so that probe
// runs collide and wrap) and checks they always agree.
func TestKeyTableMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tab := newKeyTable()
	ref := map[uint64]uint32{}
	key := func() uint64 {
		if rng.IntN(50) == 0 {
			return 0 // stands for 1, as it cannot mark a key
		}
		// Keys share their low bits in clusters near the table's end: runs
		// that collide and wrap around.
		return uint64(rng.IntN(1500))<<40 | uint64(len(tab.slots)-rng.IntN(8)-1)
	}
	for i := 0; i < 20_000; i++ {
		k := key()
		switch rng.IntN(3) {
		case 0, 1:
			v := uint32(rng.IntN(1000) + 1)
			tab.set(k, v)
			ref[tkey(k)] = v
		case 2:
			tab.del(k)
			delete(ref, tkey(k))
		}
		if i%500 == 0 {
			require.Equal(t, len(ref), tab.n)
			for rk, rv := range ref {
				require.Equal(t, rv, tab.get(rk))
			}
			got := map[uint64]uint32{}
			for k, v := range tab.all() {
				got[k] = v
			}
			require.Equal(t, ref, got)
		}
		require.Equal(t, ref[tkey(k)], tab.get(k))
	}
}
