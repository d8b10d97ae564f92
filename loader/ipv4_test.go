package loader_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// SetIPv4 puts the address on the overlay device with the sysctls of the
// slow path, replaces it, keeps it in the state (a reopened instance knows
// it), and the zero Prefix removes it.
func TestSetIPv4(t *testing.T) {
	netns.RequireRoot(t)
	ns, opts := underlayNS(t, loader.AttachAuto)
	d, err := loader.Up(opts)
	require.NoError(t, err)
	defer d.Close()
	addrs := func() string {
		out, err := ns.Run("ip", "-4", "-o", "addr", "show", "dev", loader.DefaultOverlay)
		require.NoError(t, err)
		return out
	}
	sysctl := func(key string) string {
		out, err := ns.Run("cat", "/proc/sys/net/ipv4/conf/"+key)
		require.NoError(t, err)
		return strings.TrimSpace(out)
	}

	require.Error(t, d.SetIPv4(netip.MustParsePrefix("2001:db8::1/64")))
	require.NoError(t, d.SetIPv4(netip.MustParsePrefix("10.42.1.1/16")))
	require.Contains(t, addrs(), "inet 10.42.1.1/16")
	for key, want := range map[string]string{"re6st0/forwarding": "1", "re6st0/accept_local": "1",
		"re6st0/send_redirects": "0", "all/send_redirects": "0", "re6st0/accept_redirects": "0", "u0/forwarding": "0"} {
		require.Equal(t, want, sysctl(key), key)
	}

	require.NoError(t, d.SetIPv4(netip.MustParsePrefix("10.42.2.1/16")))
	require.NotContains(t, addrs(), "10.42.1.1")
	require.Contains(t, addrs(), "inet 10.42.2.1/16")
	again, err := loader.Open(opts.Instance)
	require.NoError(t, err)
	require.Equal(t, netip.MustParsePrefix("10.42.2.1/16"), again.State.IPv4)
	again.Close()

	require.NoError(t, d.SetIPv4(netip.Prefix{}))
	require.NotContains(t, addrs(), "inet ")
	again, err = loader.Open(opts.Instance)
	require.NoError(t, err)
	require.False(t, again.State.IPv4.IsValid())
	again.Close()
}
