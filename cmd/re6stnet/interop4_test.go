package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

// TestBabeldInteropIPv4 runs babeld (a) — re6stnet babel (r) — babeld (b)
// carrying IPv4 routes: a's interface has an IPv4 address, so babeld sends
// AE 1 with an IPv4 next hop; b's has none, so it sends v4-via-v6 (AE 4);
// we send AE 4 both ways. Each side installs the others' IPv4 routes (ours
// through RTA_VIA where the next hop is IPv6) and a pings b over IPv4
// through r.
func TestBabeldInteropIPv4(t *testing.T) {
	a, r, b := netns.ForTest(t, "b4a"), netns.ForTest(t, "b4r"), netns.ForTest(t, "b4b")
	require.NoError(t, netns.Veth(a, "va", r, "ra"))
	require.NoError(t, netns.Veth(r, "rb", b, "vb"))
	require.NoError(t, r.Sysctl("net.ipv4.conf.all.forwarding", "1"))
	require.NoError(t, r.Sysctl("net.ipv6.conf.all.forwarding", "1"))
	require.NoError(t, a.AddrAdd("va", netip.MustParsePrefix("10.98.1.2/24")))
	require.NoError(t, r.AddrAdd("ra", netip.MustParsePrefix("10.98.1.1/24")))
	require.NoError(t, a.AddrAdd("lo", netip.MustParsePrefix("10.99.1.1/32")))
	require.NoError(t, b.AddrAdd("lo", netip.MustParsePrefix("10.99.2.1/32")))

	dir := t.TempDir()
	bin := buildBinary(t, dir)
	sockA := startBabeld(t, a, dir, "va", interopKey, "v4-via-v6 true")
	sockB := startBabeld(t, b, dir, "vb", interopKey, "v4-via-v6 true")

	ctx, cancel := context.WithCancel(context.Background())
	cmd := r.Command(ctx, bin, "babel", "-i", "ra", "-i", "rb", "--type", "tunnel",
		"--hello-interval", interopHello.String(), "--mac-key", "blake2s128:"+interopKey,
		"--export", "10.99.15.0/24", "--control", filepath.Join(dir, "r.sock"), "--log-level", "debug")
	logFile, err := os.Create(filepath.Join(dir, "r.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(logFile.Name())
			t.Logf("re6stnet log (tail):\n%s", tail(string(out), 60))
		}
	})

	route := func(ns *netns.NS, dst string) string {
		out, _ := ns.Run("ip", "-4", "route", "show", dst)
		return out
	}
	require.Eventually(t, func() bool {
		return strings.Contains(route(r, "10.99.1.1"), "via 10.98.1.2 dev ra") &&
			strings.Contains(route(r, "10.99.2.1"), "via inet6 fe80::") &&
			strings.Contains(route(a, "10.99.2.1"), "via inet6 fe80::") &&
			strings.Contains(route(b, "10.99.1.1"), "via inet6 fe80::") &&
			strings.Contains(route(a, "10.99.15.0/24"), "via inet6 fe80::") &&
			strings.Contains(route(b, "10.99.15.0/24"), "via inet6 fe80::")
	}, 30*time.Second, 200*time.Millisecond, "IPv4 routes both ways through re6stnet, and to our exported prefix")

	out, err := a.Run("ping", "-4", "-c", "2", "-W", "2", "-I", "10.99.1.1", "10.99.2.1")
	require.NoError(t, err, out)

	for _, sock := range []string{sockA, sockB} {
		lines, err := babeldDump(sock)
		require.NoError(t, err)
		_, ok := babeldRouteMetric(lines, "10.99.15.0/24")
		require.True(t, ok, "babeld installed our IPv4 prefix: %v", lines)
	}
}
