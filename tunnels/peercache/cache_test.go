package peercache_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/tunnels/peercache"
)

func open(t *testing.T, path string) *peercache.Cache {
	t.Helper()
	c, err := peercache.Open(path, zerolog.Nop())
	require.NoError(t, err)
	return c
}

func bits(i int) string { return fmt.Sprintf("%016b", i) }

func TestPutGetRemove(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "cache.db"))
	defer c.Close()
	require.NoError(t, c.Put(bits(1), "192.0.2.1,326,fou"))
	require.NoError(t, c.Put(bits(1), "192.0.2.2,326,fou"))
	require.NoError(t, c.Put("", "198.51.100.1,326,fou")) // ourselves
	got, ok := c.Get(bits(1))
	require.True(t, ok)
	require.Equal(t, "192.0.2.2,326,fou", got)
	require.Equal(t, 1, c.Len())
	require.NoError(t, c.Remove(bits(1)))
	_, ok = c.Get(bits(1))
	require.False(t, ok)
	_, ok = c.Get("")
	require.True(t, ok)
	require.Error(t, c.Put("012", "x"))
}

func TestLimitEvictsTriedFirst(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "cache.db"))
	defer c.Close()
	require.NoError(t, c.Put("", "self"))
	for i := range peercache.MaxPeers {
		require.NoError(t, c.Put(bits(i), "a"))
	}
	require.Equal(t, peercache.MaxPeers, c.Len())
	tried := map[string]bool{}
	for i := 0; i < 10; i++ {
		c.MarkTried(bits(i * 3))
		tried[bits(i*3)] = true
	}
	// Each new peer evicts one tried peer until none is left.
	for i := range 10 {
		require.NoError(t, c.Put(bits(1000+i), "b"))
		require.Equal(t, peercache.MaxPeers, c.Len())
	}
	for b := range tried {
		_, ok := c.Get(b)
		require.False(t, ok, "tried peer %s kept", b)
	}
	for i := range peercache.MaxPeers {
		if !tried[bits(i)] {
			_, ok := c.Get(bits(i))
			require.True(t, ok, "untried peer %s evicted", bits(i))
		}
	}
	// Then untried ones go; the node itself never does.
	require.NoError(t, c.Put(bits(2000), "c"))
	require.Equal(t, peercache.MaxPeers, c.Len())
	_, ok := c.Get("")
	require.True(t, ok)
	_, ok = c.Get(bits(2000))
	require.True(t, ok)
}

func TestEvictionOrderIsRandom(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "cache.db"))
	defer c.Close()
	evicted := map[string]bool{}
	for range 20 {
		require.NoError(t, c.Shrink(0))
		for i := range 10 {
			require.NoError(t, c.Put(bits(i), "a"))
			c.MarkTried(bits(i))
		}
		require.NoError(t, c.Shrink(9))
		for i := range 10 {
			if _, ok := c.Get(bits(i)); !ok {
				evicted[bits(i)] = true
			}
		}
	}
	require.Greater(t, len(evicted), 1, "always the same victim")
}

func TestTriedAndWorked(t *testing.T) {
	c := open(t, filepath.Join(t.TempDir(), "cache.db"))
	defer c.Close()
	for i := range 5 {
		require.NoError(t, c.Put(bits(i), fmt.Sprint(i)))
	}
	c.MarkTried(bits(0))
	c.MarkTried(bits(1))
	untried, err := c.Random(10, true, nil)
	require.NoError(t, err)
	require.Len(t, untried, 3)
	for _, e := range untried {
		require.NotContains(t, []string{bits(0), bits(1)}, e.Bits)
	}
	all, err := c.Random(10, false, func(b string) bool { return b == bits(4) })
	require.NoError(t, err)
	require.Len(t, all, 4)
	// Untried first, then tried.
	require.ElementsMatch(t, []string{bits(0), bits(1)}, []string{all[2].Bits, all[3].Bits})
	few, err := c.Random(2, false, nil)
	require.NoError(t, err)
	require.Len(t, few, 2)
	c.MarkWorked(bits(0))
	require.NoError(t, c.Put(bits(1), "again")) // fresh addresses clear the flag
	untried, err = c.Random(10, true, nil)
	require.NoError(t, err)
	require.Len(t, untried, 5)
}

func TestPersistenceAndShrink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cache.db")
	c := open(t, path)
	for i := range 30 {
		require.NoError(t, c.Put(bits(i), fmt.Sprint(i)))
	}
	require.NoError(t, c.Put("", "self"))
	c.MarkTried(bits(7))
	require.NoError(t, c.SetConfig("version", []byte{0, 1, 2}))
	require.NoError(t, c.Shrink(10))
	require.Equal(t, 10, c.Len())
	require.NoError(t, c.Close())

	c = open(t, path)
	defer c.Close()
	require.Equal(t, 10, c.Len())
	_, ok := c.Get(bits(7))
	require.False(t, ok, "the tried peer is evicted first")
	self, ok := c.Get("")
	require.True(t, ok)
	require.Equal(t, "self", self)
	value, ok, err := c.Config("version")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []byte{0, 1, 2}, value)
	_, ok, err = c.Config("missing")
	require.NoError(t, err)
	require.False(t, ok)
	// The tried flag is not persisted.
	untried, err := c.Random(100, true, nil)
	require.NoError(t, err)
	require.Len(t, untried, 10)
}

func TestCorruptFileIsMovedAside(t *testing.T) {
	for name, content := range map[string][]byte{
		"not sqlite": []byte("this is not an SQLite database, not even close......................................................"),
		"bad pages":  corruptDatabase(t),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cache.db")
			require.NoError(t, os.WriteFile(path, content, 0o600))
			c := open(t, path)
			defer c.Close()
			require.Equal(t, 0, c.Len())
			require.NoError(t, c.Put(bits(1), "a"))
			saved, err := os.ReadFile(path + ".bak")
			require.NoError(t, err)
			require.Equal(t, content, saved)
		})
	}
}

// corruptDatabase returns a real cache file whose table pages are
// overwritten with garbage.
func corruptDatabase(t *testing.T) []byte {
	path := filepath.Join(t.TempDir(), "cache.db")
	c := open(t, path)
	for i := range 100 {
		require.NoError(t, c.Put(bits(i), fmt.Sprintf("192.0.2.%d,326,fou", i)))
	}
	require.NoError(t, c.Close())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Greater(t, len(data), 4096)
	for i := 4096; i < len(data); i++ {
		data[i] = 0xa5
	}
	return data
}

func TestUnreadableFileIsNotMovedAside(t *testing.T) {
	dir := t.TempDir()
	_, err := peercache.Open(filepath.Join(dir, "missing", "cache.db"), zerolog.Nop())
	require.Error(t, err)
	_, err = os.Stat(filepath.Join(dir, "missing", "cache.db.bak"))
	require.True(t, os.IsNotExist(err))
}
