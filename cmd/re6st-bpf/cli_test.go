package main

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// Bad input gets a one-line error and a non-zero exit, and changes nothing.
func TestBadInputChangesNothing(t *testing.T) {
	ns := underlayNS(t, "cli", "10.42.0.1/24")

	bin := buildCLI(t)
	run := func(args ...string) (string, string, error) {
		return runCLI(exec.Command(bin, append([]string{"-n", ns.Name}, args...)...))
	}
	fails := func(want string, args ...string) {
		t.Helper()
		_, stderr, err := run(args...)
		requireOneLineError(t, stderr, err, want)
	}
	ok := func(args ...string) string {
		t.Helper()
		stdout, stderr, err := run(args...)
		require.NoError(t, err, stderr)
		return stdout
	}

	fails("is not up", "status")
	fails(`unknown underlay interface "nosuch0"`, "up", "--underlay", "nosuch0", "--address", "2001:db8:1::1/32")
	_, err := ns.Run("ip", "link", "show", "re6st0")
	require.Error(t, err, "a failed up left re6st0 behind")
	_, err = os.Stat("/run/re6st-bpf/" + ns.Name + ".json")
	require.True(t, os.IsNotExist(err), "a failed up left state behind")
	fails("--address", "up", "--underlay", "u0", "--address", "10.0.0.1/8")

	fails("--ipv4", "up", "--underlay", "u0", "--address", "2001:db8:1::1/32", "--ipv4", "2001:db8::1/64")
	ok("up", "--underlay", "u0", "--address", "2001:db8:1::1/32")
	t.Cleanup(func() { run("down") })
	fails("already up", "up", "--underlay", "u0", "--address", "2001:db8:1::1/32")
	ok("tunnel", "add", "1", "--type", "fou", "--local", "10.42.0.1", "--remote", "10.42.0.2")
	fails("already exists", "tunnel", "add", "1", "--type", "fou", "--local", "10.42.0.1", "--remote", "10.42.0.3")
	fails("already exists", "tunnel", "add", "2", "--type", "fou", "--local", "10.42.0.1", "--remote", "10.42.0.2")
	fails("no IPv4 route", "tunnel", "add", "3", "--type", "gre", "--local", "10.42.0.1", "--remote", "192.0.2.1")
	fails("not an address of this host", "tunnel", "add", "3", "--type", "gre", "--local", "10.9.9.9", "--remote", "10.42.0.9")
	fails("unknown tunnel type", "tunnel", "add", "3", "--type", "vxlan", "--local", "10.42.0.1", "--remote", "10.42.0.9")
	fails("made by the process that owns the device", "tunnel", "add", "3", "--type", "device", "--local", "10.42.0.1", "--remote", "10.42.0.9")
	ok("route", "add", "2001:db8:2::/48", "--tunnel", "1")
	fails("already exists", "route", "add", "2001:db8:2::/48", "--tunnel", "1")
	fails("host bits", "route", "add", "2001:db8:3::1/48", "--tunnel", "1")
	fails("IPv4 routes have no source prefix", "route", "add", "10.0.0.0/8", "--tunnel", "1", "--from", "10.1.0.0/16")
	fails("host bits", "route", "add", "10.0.0.1/8", "--tunnel", "1")
	fails("want an IPv6 or IPv4 prefix", "route", "add", "nonsense", "--tunnel", "1")
	fails("tunnel 9", "route", "add", "2001:db8:4::/48", "--tunnel", "9")
	fails("still carries 1 route", "tunnel", "del", "1")
	ok("route", "add", "10.43.0.0/16", "--tunnel", "1")
	fails("already exists", "route", "add", "10.43.0.0/16", "--local")
	fails("still carries 2 route", "tunnel", "del", "1")
	require.Contains(t, ok("route", "list"), "10.43.0.0/16")
	ok("route", "del", "10.43.0.0/16")

	require.Equal(t, 1, strings.Count(ok("route", "list"), "tunnel 1"), "routes changed")
	require.Equal(t, 2, len(strings.Split(strings.TrimSpace(ok("tunnel", "list")), "\n")), "tunnels changed")
	require.Contains(t, ok("status", "--json"), `"routes": [`)

	ok("route", "del", "2001:db8:2::/48")
	ok("tunnel", "del", "1")
	ok("down")
	_, err = ns.Run("ip", "link", "show", "re6st0")
	require.Error(t, err, "down left re6st0 behind")
}

// buildCLI builds re6st-bpf into a temporary directory.
func buildCLI(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "re6st-bpf")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

// runCLI runs cmd and returns its standard output and error.
func runCLI(cmd *exec.Cmd) (string, string, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// requireOneLineError checks a failed run: non-zero exit and a one-line
// error that contains want.
func requireOneLineError(t *testing.T, stderr string, err error, want string) {
	t.Helper()
	require.Error(t, err, "should fail")
	require.Equal(t, 1, strings.Count(strings.TrimSpace(stderr), "\n")+1, "one-line error, got %q", stderr)
	require.Contains(t, stderr, want)
}

// underlayNS makes a namespace named after prefix with an underlay u0
// (veth, address addr) and returns it.
func underlayNS(t *testing.T, prefix, addr string) *netns.NS {
	ns := netns.ForTest(t, prefix)
	peer := netns.ForTest(t, prefix+"p")
	require.NoError(t, netns.Veth(ns, "u0", peer, "p0"))
	require.NoError(t, ns.AddrAdd("u0", netip.MustParsePrefix(addr)))
	return ns
}

// status lists a gateway's native routes (written by re6stnet's BGP side;
// here through the loader) and the traffic of each upstream interface.
func TestStatusShowsNativeRoutes(t *testing.T) {
	ns := underlayNS(t, "clin", "10.42.0.1/24")
	bin := buildCLI(t)
	run := func(args ...string) string {
		t.Helper()
		stdout, stderr, err := runCLI(exec.Command(bin, append([]string{"-n", ns.Name}, args...)...))
		require.NoError(t, err, stderr)
		return stdout
	}
	run("up", "--underlay", "u0", "--address", "2001:db8:1::1/32")
	t.Cleanup(func() { runCLI(exec.Command(bin, "-n", ns.Name, "down")) })
	u0, err := ns.Ifindex("u0")
	require.NoError(t, err)
	d, err := loader.Open(ns.Name)
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, d.SetNativeRoute(loader.NativeRoute{Dst: netip.MustParsePrefix("2a00:1::/32"),
		NextHop: netip.MustParseAddr("fd42::2"), Ifindex: uint32(u0), MTU: 1500}))

	require.Regexp(t, `2a00:1::/32\s+fd42::2\s+`+strconv.Itoa(u0)+`\s+1500`, run("status"))
	require.Contains(t, run("status", "--json"), `"native_routes": [`)
}
