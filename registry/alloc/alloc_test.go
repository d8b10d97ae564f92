package alloc_test

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/alloc"
	"github.com/re6st-bpf/re6st-bpf/registry/store"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(filepath.Join(t.TempDir(), "registry.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func allocate(t *testing.T, s *store.Store, hostBits, prefixLen int, community string) (string, error) {
	t.Helper()
	var prefix string
	err := s.Update(func(tx *store.Tx) error {
		var err error
		prefix, err = alloc.Allocate(tx, hostBits, prefixLen, community)
		if err != nil {
			return err
		}
		return tx.SetCertificate(prefix, "", "issued "+prefix)
	})
	return prefix, err
}

func release(t *testing.T, s *store.Store, prefix string) {
	t.Helper()
	require.NoError(t, s.Update(func(tx *store.Tx) error {
		if err := tx.FreeBlock(prefix); err != nil {
			return err
		}
		return alloc.Merge(tx)
	}))
}

// checkTiling asserts the invariants of the cert table: the blocks never
// overlap and together cover the whole host space exactly; reserved blocks
// are all-zero full-length host prefixes; no two free siblings remain.
func checkTiling(t *testing.T, s *store.Store, hostBits int, communities []string) []store.Block {
	t.Helper()
	var blocks []store.Block
	require.NoError(t, s.View(func(tx *store.Tx) error {
		var err error
		blocks, err = tx.Blocks()
		return err
	}))
	sort.Slice(blocks, func(i, j int) bool { return blocks[i].Prefix < blocks[j].Prefix })
	total := new(big.Int)
	free := map[string]bool{}
	for i, block := range blocks {
		require.LessOrEqual(t, len(block.Prefix), hostBits)
		if i > 0 {
			require.False(t, strings.HasPrefix(block.Prefix, blocks[i-1].Prefix), "block %q overlaps %q", block.Prefix, blocks[i-1].Prefix)
		}
		total.Add(total, new(big.Int).Lsh(big.NewInt(1), uint(hostBits-len(block.Prefix))))
		if block.Cert == store.Reserved {
			require.Len(t, block.Prefix, hostBits)
			community := communityOf(block.Prefix, communities)
			require.NotContains(t, block.Prefix[len(community):], "1", "reserved block %q has host bits set", block.Prefix)
		}
		if !block.Allocated {
			free[block.Prefix] = true
		}
	}
	require.Equal(t, new(big.Int).Lsh(big.NewInt(1), uint(hostBits)).String(), total.String(), "blocks do not cover the space exactly")
	for prefix := range free {
		if prefix == "" {
			continue
		}
		sibling := prefix[:len(prefix)-1] + string('0'+'1'-prefix[len(prefix)-1])
		require.False(t, free[sibling], "free siblings %q and %q were not merged", prefix, sibling)
	}
	return blocks
}

func communityOf(prefix string, communities []string) string {
	for _, c := range communities {
		if strings.HasPrefix(prefix, c) {
			return c
		}
	}
	return ""
}

func TestAllocateFreeRandomSequencesKeepTiling(t *testing.T) {
	communities := []string{"000", "01", "1"}
	const hostBits = 9
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 42))
		s := openStore(t)
		held := map[string]string{} // prefix → community
		for range 120 {
			if len(held) > 0 && rng.IntN(3) == 0 {
				victims := make([]string, 0, len(held))
				for p := range held {
					victims = append(victims, p)
				}
				sort.Strings(victims)
				victim := victims[rng.IntN(len(victims))]
				release(t, s, victim)
				delete(held, victim)
			} else {
				community := communities[rng.IntN(len(communities))]
				prefixLen := 1 + rng.IntN(hostBits-len(community))
				prefix, err := allocate(t, s, hostBits, prefixLen, community)
				if errors.Is(err, alloc.ErrExhausted) {
					continue
				}
				require.NoError(t, err)
				require.Len(t, prefix, prefixLen+len(community))
				require.True(t, strings.HasPrefix(prefix, community), "prefix %q outside community %q", prefix, community)
				for other := range held {
					require.False(t, strings.HasPrefix(prefix, other) || strings.HasPrefix(other, prefix), "prefix %q overlaps %q", prefix, other)
				}
				held[prefix] = community
			}
			checkTiling(t, s, hostBits, communities)
		}
		for prefix := range held {
			release(t, s, prefix)
		}
		for _, block := range checkTiling(t, s, hostBits, communities) {
			require.True(t, !block.Allocated || block.Cert == store.Reserved, "block %q still allocated", block.Prefix)
		}
	}
}

func TestFreeAndMergeRestoresWholeSpace(t *testing.T) {
	s := openStore(t)
	const hostBits = 16
	rng := rand.New(rand.NewPCG(7, 7))
	var held []string
	for range 60 {
		prefix, err := allocate(t, s, hostBits, 1+rng.IntN(hostBits-1), "")
		if errors.Is(err, alloc.ErrExhausted) {
			continue
		}
		require.NoError(t, err)
		held = append(held, prefix)
	}
	rng.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
	for _, prefix := range held {
		release(t, s, prefix)
	}
	blocks := checkTiling(t, s, hostBits, nil)
	require.Equal(t, []store.Block{{Prefix: ""}}, blocks)
}

func TestExhaustionReservesAllZeroHost(t *testing.T) {
	s := openStore(t)
	const hostBits = 5
	var held []string
	for {
		prefix, err := allocate(t, s, hostBits, hostBits, "")
		if errors.Is(err, alloc.ErrExhausted) {
			break
		}
		require.NoError(t, err)
		held = append(held, prefix)
	}
	require.Len(t, held, 31, "every /128 but the all-zero one is handed out")
	require.NotContains(t, held, "00000")
	blocks := checkTiling(t, s, hostBits, nil)
	require.Len(t, blocks, 32)
}

func TestBestFitPrefersSmallestFreeBlock(t *testing.T) {
	s := openStore(t)
	const hostBits = 8
	first, err := allocate(t, s, hostBits, 2, "")
	require.NoError(t, err)
	require.Equal(t, "00", first)
	// The table now holds free 01 and free 1; a /2 must come out of 01.
	second, err := allocate(t, s, hostBits, 2, "")
	require.NoError(t, err)
	require.Equal(t, "01", second)
	third, err := allocate(t, s, hostBits, 3, "")
	require.NoError(t, err)
	require.Equal(t, "100", third)
}

func TestCommunityMustFitTheNetwork(t *testing.T) {
	s := openStore(t)
	_, err := allocate(t, s, 8, 7, "01")
	require.ErrorContains(t, err, "host bits")
}
