package loader_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// A traffic class's address comes and goes on the overlay device, with
// the kernel's connected route of its range; adding or removing it twice
// is no error.
func TestOverlayAddressAddRemove(t *testing.T) {
	netns.RequireRoot(t)
	ns, opts := underlayNS(t, loader.AttachAuto)
	d, err := loader.Up(opts)
	require.NoError(t, err)
	defer d.Close()
	show := func(what ...string) string {
		out, err := ns.Run(append([]string{"ip", "-6"}, what...)...)
		require.NoError(t, err)
		return out
	}
	class := netip.MustParsePrefix("fd00:1:1::1/32")
	for range 2 {
		require.NoError(t, d.AddOverlayAddress(class))
	}
	require.Contains(t, show("addr", "show", "dev", loader.DefaultOverlay), "inet6 fd00:1:1::1/32")
	require.Contains(t, show("route", "show", "dev", loader.DefaultOverlay), "fd00:1::/32")
	for range 2 {
		require.NoError(t, d.RemoveOverlayAddress(class))
	}
	require.NotContains(t, show("addr", "show", "dev", loader.DefaultOverlay), "fd00:1:1::1")
	require.NotContains(t, show("route", "show", "dev", loader.DefaultOverlay), "fd00:1::/32")
}
