package babel

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestInternerShared numbers keys from several goroutines at once: every
// key gets one id, the same for all, and maps back to itself.
func TestInternerShared(t *testing.T) {
	in := NewInterner()
	keys := []RouteKey{
		KeyOf(pfx("2001:db8:1::/48"), pfx("::/0")),
		KeyOf(pfx("2001:db8:1::/48"), pfx("2001:db8::/32")),
		KeyOf(pfx("::/0"), pfx("2001:db8::/32")),
		KeyOf(pfx("10.0.0.0/8"), pfx("0.0.0.0/0")),
	}
	ids := make([][]uint32, 8)
	var wg sync.WaitGroup
	for g := range ids {
		wg.Go(func() {
			for _, k := range keys {
				ids[g] = append(ids[g], in.keyID(k))
			}
		})
	}
	wg.Wait()
	for g := range ids {
		require.Equal(t, ids[0], ids[g])
	}
	for j, k := range keys {
		require.Equal(t, k, in.key(ids[0][j]))
		id, ok := in.findKey(k)
		require.True(t, ok)
		require.Equal(t, ids[0][j], id)
	}
	_, ok := in.findKey(KeyOf(pfx("2001:db8:2::/48"), pfx("::/0")))
	require.False(t, ok)
	require.ElementsMatch(t, []uint32{0, 1, 2, 3}, ids[0])
}
