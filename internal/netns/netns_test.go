package netns

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestVethPing(t *testing.T) {
	a := ForTest(t, "nsa")
	b := ForTest(t, "nsb")
	require.NoError(t, Veth(a, "va", b, "vb"))
	require.NoError(t, a.AddrAdd("va", netip.MustParsePrefix("10.99.0.1/24")))
	require.NoError(t, b.AddrAdd("vb", netip.MustParsePrefix("10.99.0.2/24")))
	out, err := a.Run("ping", "-c1", "-W2", "10.99.0.2")
	require.NoError(t, err, out)
	require.Contains(t, out, "1 received")

	// Interfaces exist only in their own namespace.
	_, err = a.Ifindex("vb")
	require.Error(t, err)
	links, err := b.Run("ip", "-o", "link")
	require.NoError(t, err)
	require.True(t, strings.Contains(links, "vb@"), links)
}
