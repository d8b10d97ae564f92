package wireguard_test

import (
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/tunnels/wireguard"
)

// The kernel's WireGuard is detected by making a link of kind wireguard:
// KernelSupported agrees with ip(8), leaves no link behind, and New runs
// the kernel's where it exists, wireguard-go otherwise (this kernel has
// no module: the fallback), or wireguard-go when asked.
func TestKernelDetection(t *testing.T) {
	ns := netns.ForTest(t, "wgkernel")
	supported, err := wireguard.KernelSupported(ns.Do)
	require.NoError(t, err)
	_, ipErr := ns.Run("ip", "link", "add", "wgip", "type", "wireguard")
	require.Equal(t, ipErr == nil, supported, "ip link add … type wireguard: %v", ipErr)
	out, err := ns.Run("ip", "-o", "link", "show", "type", "wireguard")
	require.NoError(t, err)
	require.NotContains(t, out, "re6stwgprobe", "the probe's link stayed")
	t.Logf("kernel WireGuard: %v", supported)

	want := wireguard.KindUserspace
	if supported {
		want = wireguard.KindKernel
	}
	for i, userspace := range []bool{false, true} {
		priv, err := wireguard.GenerateKey()
		require.NoError(t, err)
		name := []string{"wgauto", "wguser"}[i]
		d, err := wireguard.New(wireguard.Config{Name: name, PrivateKey: priv, MTU: 1420, Enter: ns.Do, Userspace: userspace, Logger: zerolog.Nop()})
		require.NoError(t, err)
		if userspace {
			require.Equal(t, wireguard.KindUserspace, d.Kind())
		} else {
			require.Equal(t, want, d.Kind())
		}
		st, err := d.Status()
		require.NoError(t, err)
		require.NotZero(t, st.ListenPort)
		_, err = ns.Ifindex(name)
		require.NoError(t, err, "the device exists")
		require.NoError(t, d.Close())
		require.Eventually(t, func() bool { _, err := ns.Ifindex(name); return err != nil }, 5e9, 1e8, "the device went")
	}
}
