package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/stretchr/testify/require"
)

const (
	interopKey   = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	wrongKey     = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
	interopHello = time.Second
)

// buildBinary compiles re6stnet into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "re6stnet")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

// startBabeld runs babeld in ns on ifname, a tunnel-type interface with
// the given MAC key (none if empty) and extra interface options, announcing
// the 2001:db8::/32 and 10.99.0.0/16 addresses of its loopback; it returns
// the path of its control socket.
func startBabeld(t *testing.T, ns *netns.NS, dir, ifname, key, ifaceOpts string) string {
	t.Helper()
	if _, err := exec.LookPath("babeld"); err != nil {
		t.Skip("skipped: babeld is not installed (apt-get install babeld)")
	}
	sock := filepath.Join(dir, ns.Name+".sock")
	ctx, cancel := context.WithCancel(context.Background())
	args := []string{"babeld", "-d", "0",
		"-I", filepath.Join(dir, ns.Name+".pid"), "-S", filepath.Join(dir, ns.Name+".state"),
		"-C", "local-path " + sock}
	iface := fmt.Sprintf("interface %s type tunnel hello-interval %d %s", ifname, int(interopHello/time.Second), ifaceOpts)
	if key != "" {
		args = append(args, "-C", "key id k1 type blake2s128 value "+key)
		iface += " key k1"
	}
	args = append(args, "-C", iface,
		"-C", "redistribute local ip 2001:db8::/32 allow",
		"-C", "redistribute local ip 10.99.0.0/16 allow",
		"-C", "redistribute local deny",
		ifname)
	cmd := ns.Command(ctx, args...)
	log, err := os.Create(filepath.Join(dir, ns.Name+".log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = log, log
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("babeld %s log:\n%s", ns.Name, b)
		}
	})
	return sock
}

// babeldDump reads babeld's "dump" over its local socket.
func babeldDump(sock string) ([]string, error) {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(c)
	// Banner, up to its "ok".
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line == "ok\n" {
			break
		}
	}
	if _, err := c.Write([]byte("dump\n")); err != nil {
		return nil, err
	}
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line == "ok\n" {
			return lines, nil
		}
		lines = append(lines, strings.TrimSpace(line))
	}
}

// babeldNeighbour is a neighbour line of babeld's dump.
type babeldNeighbour struct {
	rxcost, txcost, rttcost, cost int
	rttUs                         uint32
	hasRTT                        bool
}

var babeldNeighRE = regexp.MustCompile(`neighbour \S+ address (\S+) if (\S+) .*rxcost (\d+) txcost (\d+)(?: rtt ([\d.]+) rttcost (\d+))? cost (\d+)`)

func parseBabeldNeighbour(lines []string, addr netip.Addr) (babeldNeighbour, bool) {
	for _, l := range lines {
		m := babeldNeighRE.FindStringSubmatch(l)
		if m == nil || m[1] != addr.String() {
			continue
		}
		var n babeldNeighbour
		n.rxcost, _ = strconv.Atoi(m[3])
		n.txcost, _ = strconv.Atoi(m[4])
		n.cost, _ = strconv.Atoi(m[7])
		if m[5] != "" {
			ms, _ := strconv.ParseFloat(m[5], 64)
			n.rttUs, n.hasRTT = uint32(ms*1000+0.5), true
			n.rttcost, _ = strconv.Atoi(m[6])
		}
		return n, true
	}
	return babeldNeighbour{}, false
}

var babeldRouteRE = regexp.MustCompile(`route \S+ prefix (\S+) from (\S+) installed (yes|no) id \S+ metric (\d+) refmetric (\d+)`)

// babeldRouteMetric returns the metric of babeld's installed route to prefix.
func babeldRouteMetric(lines []string, prefix string) (int, bool) {
	for _, l := range lines {
		if m := babeldRouteRE.FindStringSubmatch(l); m != nil && m[1] == prefix && m[3] == "yes" {
			metric, _ := strconv.Atoi(m[4])
			return metric, true
		}
	}
	return 0, false
}

func linkLocal(t *testing.T, ns *netns.NS, ifname string) netip.Addr {
	t.Helper()
	out, err := ns.Run("ip", "-6", "-o", "addr", "show", "dev", ifname, "scope", "link")
	require.NoError(t, err)
	m := regexp.MustCompile(`inet6 (fe80::[0-9a-f:]+)/64`).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	return netip.MustParseAddr(m[1])
}

func ourDump(t *testing.T, bin string, sock string) babel.Dump {
	t.Helper()
	out, err := exec.Command(bin, "babel", "dump", "--json", "--control", sock).Output()
	require.NoError(t, err)
	var d babel.Dump
	require.NoError(t, json.Unmarshal(out, &d))
	return d
}

// TestBabeldInterop runs babeld (a) — re6stnet babel (r) — babeld (b) in a
// line, with MAC BLAKE2s-128 and tunnel-type interfaces with timestamps,
// plus a babeld (c) with a wrong key hanging off r. Routes must pass both
// ways through r, a and b must ping each other through r, c must get
// nothing accepted, and both sides must compute the same link costs.
func TestBabeldInterop(t *testing.T) {
	a, r, b, c := netns.ForTest(t, "bia"), netns.ForTest(t, "bir"), netns.ForTest(t, "bib"), netns.ForTest(t, "bic")
	require.NoError(t, netns.Veth(a, "va", r, "ra"))
	require.NoError(t, netns.Veth(r, "rb", b, "vb"))
	require.NoError(t, netns.Veth(r, "rc", c, "vc"))
	require.NoError(t, r.Sysctl("net.ipv6.conf.all.forwarding", "1"))
	for _, x := range []struct {
		ns   *netns.NS
		addr string
	}{{a, "2001:db8:a::1/128"}, {b, "2001:db8:b::1/128"}, {c, "2001:db8:c::1/128"}, {r, "2001:db8:f::1/128"}} {
		require.NoError(t, x.ns.AddrAdd("lo", netip.MustParsePrefix(x.addr)))
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	sockA := startBabeld(t, a, dir, "va", interopKey, "")
	sockB := startBabeld(t, b, dir, "vb", interopKey, "")
	sockC := startBabeld(t, c, dir, "vc", wrongKey, "")

	ourSock := filepath.Join(dir, "r.sock")
	ctx, cancel := context.WithCancel(context.Background())
	cmd := r.Command(ctx, bin, "babel", "-i", "ra", "-i", "rb", "-i", "rc", "--type", "tunnel",
		"--hello-interval", interopHello.String(), "--mac-key", "blake2s128:"+interopKey,
		"--export", "2001:db8:f::/48", "--control", ourSock, "--log-level", "debug")
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

	// Routes pass both ways through our router and into babeld's kernel.
	require.Eventually(t, func() bool {
		outA, _ := a.Run("ip", "-6", "route", "show", "2001:db8:b::1")
		outB, _ := b.Run("ip", "-6", "route", "show", "2001:db8:a::1")
		ours, _ := a.Run("ip", "-6", "route", "show", "2001:db8:f::/48")
		return strings.Contains(outA, "via fe80::") && strings.Contains(outB, "via fe80::") && strings.Contains(ours, "via fe80::")
	}, 30*time.Second, 200*time.Millisecond, "babeld routes through re6stnet, and to our exported prefix")
	out, err := r.Run("ip", "-6", "route", "show", "proto", "babel")
	require.NoError(t, err)
	require.Contains(t, out, "2001:db8:a::1 via fe80::")
	require.Contains(t, out, "2001:db8:b::1 via fe80::")

	// The ends ping each other through us.
	out, err = a.Run("ping", "-6", "-c", "2", "-W", "2", "-I", "2001:db8:a::1", "2001:db8:b::1")
	require.NoError(t, err, out)
	out, err = b.Run("ping", "-6", "-c", "2", "-W", "2", "-I", "2001:db8:b::1", "2001:db8:a::1")
	require.NoError(t, err, out)

	// The babeld with the wrong key gets no route accepted, either way.
	d := ourDump(t, bin, ourSock)
	for _, rt := range d.Routes {
		require.NotEqual(t, "2001:db8:c::1/128", rt.Prefix.String(), "route from the wrong-key babeld accepted")
	}
	for _, n := range d.Neighbours {
		require.NotEqual(t, "rc", n.Interface, "neighbour with the wrong key accepted")
	}
	linesC, err := babeldDump(sockC)
	require.NoError(t, err)
	for _, l := range linesC {
		require.NotContains(t, l, "add route", "babeld with the wrong key accepted a route: %s", l)
	}
	require.NotZero(t, d.Interfaces[indexOf(d, "rc")].Stats.Dropped)

	// Link costs agree: for each babeld, what it computes for us and what
	// we compute for it, with babeld's formulas on both sides.
	for _, side := range []struct {
		name   string
		ns     *netns.NS
		sock   string
		theirs string
		ours   string
	}{{"a", a, sockA, "va", "ra"}, {"b", b, sockB, "vb", "rb"}} {
		ourAddr, theirAddr := linkLocal(t, r, side.ours), linkLocal(t, side.ns, side.theirs)
		var lines []string
		require.Eventually(t, func() bool {
			lines, err = babeldDump(side.sock)
			if err != nil {
				return false
			}
			n, ok := parseBabeldNeighbour(lines, ourAddr)
			return ok && n.hasRTT && n.txcost < babel.Infinity
		}, 20*time.Second, 200*time.Millisecond, "babeld %s has an RTT for us", side.name)
		theirView, _ := parseBabeldNeighbour(lines, ourAddr)
		var ourView babel.NeighbourInfo
		require.Eventually(t, func() bool {
			for _, n := range ourDump(t, bin, ourSock).Neighbours {
				if n.Address == theirAddr {
					ourView = n
					return n.RTTValid
				}
			}
			return false
		}, 20*time.Second, 200*time.Millisecond)
		t.Logf("babeld %s sees us: rxcost %d txcost %d rtt %dus rttcost %d cost %d; we see it: rxcost %d txcost %d rtt %dus rttcost %d cost %d",
			side.name, theirView.rxcost, theirView.txcost, theirView.rttUs, theirView.rttcost, theirView.cost,
			ourView.Rxcost, ourView.Txcost, ourView.RTTMicros, ourView.RTTCost, ourView.Cost)
		// Each side's rxcost is what the other uses as txcost.
		require.Equal(t, int(ourView.Rxcost), theirView.txcost)
		require.Equal(t, int(ourView.Txcost), theirView.rxcost)
		// babeld's RTT penalty is ours for the same RTT, and both compute the
		// cost as txcost + penalty.
		require.Equal(t, theirView.rttcost, int(babel.DefaultTunnelRTT.Penalty(theirView.rttUs)))
		require.Equal(t, theirView.cost, theirView.txcost+theirView.rttcost)
		require.Equal(t, ourView.Cost, ourView.Txcost+ourView.RTTCost)
		// Each side measures the RTT itself: under load the two can fall
		// on either side of the penalty's 10 ms floor (6 ms against 12 ms
		// was seen), and only equal penalties make equal costs.
		if theirView.rttcost == int(ourView.RTTCost) {
			require.Equal(t, theirView.cost, int(ourView.Cost))
		}
	}

	// Route metrics add up across implementations: babeld a's metric to b's
	// address is its cost to us plus the metric we announce.
	require.Eventually(t, func() bool {
		lines, err := babeldDump(sockA)
		if err != nil {
			return false
		}
		theirMetric, ok := babeldRouteMetric(lines, "2001:db8:b::1/128")
		n, okN := parseBabeldNeighbour(lines, linkLocal(t, r, "ra"))
		if !ok || !okN {
			return false
		}
		for _, rt := range ourDump(t, bin, ourSock).Routes {
			if rt.Prefix.String() == "2001:db8:b::1/128" && rt.Selected {
				return theirMetric == n.cost+int(rt.Metric)
			}
		}
		return false
	}, 20*time.Second, 500*time.Millisecond, "babeld's metric = its link cost + our metric")
}

func indexOf(d babel.Dump, ifname string) int {
	for i, x := range d.Interfaces {
		if x.Name == ifname {
			return i
		}
	}
	return -1
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
