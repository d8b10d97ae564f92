package bgp

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/bird"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

// inOwnNetns marks the test binary re-executed in a network namespace of
// its own: GoBGP listens and dials from any thread, so the whole process
// must live in the test's namespace, not only one thread.
const inOwnNetns = "RE6ST_BGP_TEST_NETNS"

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 && os.Getenv(inOwnNetns) == "" {
		cmd := exec.Command(os.Args[0], os.Args[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), inOwnNetns+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Run(); err != nil {
			if exit, ok := err.(*exec.ExitError); ok {
				os.Exit(exit.ExitCode())
			}
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(inOwnNetns) != "" {
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loopback:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// logBuffer collects a speaker's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var (
	network   = netip.MustParsePrefix("2001:db8:42::/48")
	community = netip.MustParsePrefix("2001:db8:42:4000::/50")
	localAddr = netip.MustParseAddr("fd00:b::2")
	birdAddr  = netip.MustParseAddr("fd00:b::1")
)

// upstream puts bird (AS 65001) in a namespace linked to the test's
// (upstreamLink). It sends a default route, a route
// outside the network and two inside it (which the import policy must
// reject), and imports everything.
func upstream(t *testing.T, password string) *bird.Daemon {
	t.Helper()
	return upstreamBird(t, upstreamLink(t), password)
}

// upstreamLink is a namespace linked to the test's: fd00:b::1 there,
// fd00:b::2 here.
func upstreamLink(t *testing.T) *netns.NS {
	t.Helper()
	ns := netns.ForTest(t, "bgpup")
	h, err := vnetns.GetFromName(ns.Name)
	require.NoError(t, err)
	defer h.Close()
	name := "bgp" + ns.Name[len(ns.Name)-4:]
	require.NoError(t, netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "up0", PeerNamespace: netlink.NsFd(int(h))}))
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(name); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	l, err := netlink.LinkByName(name)
	require.NoError(t, err)
	require.NoError(t, netlink.AddrAdd(l, &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(localAddr, 64)), Flags: syscall.IFA_F_NODAD}))
	require.NoError(t, netlink.LinkSetUp(l))
	require.NoError(t, ns.Do(func() error {
		l, err := netlink.LinkByName("up0")
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: ipnet(netip.PrefixFrom(birdAddr, 64)), Flags: syscall.IFA_F_NODAD}); err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	}))
	return ns
}

func upstreamBird(t *testing.T, ns *netns.NS, password string) *bird.Daemon {
	t.Helper()
	auth := ""
	if password != "" {
		auth = fmt.Sprintf("password %q;", password)
	}
	d, err := bird.Start(ns, t.TempDir(), fmt.Sprintf(`router id 10.255.0.1;
protocol device {}
protocol static upstream_routes {
	ipv6;
	route ::/0 blackhole;
	route 2001:db8:100::/40 blackhole;
	route 2001:db8:42:1::/64 blackhole;
	route 2001:db8:42::/48 blackhole;
}
protocol bgp re6st {
	local %s as 65001;
	neighbor %s as 65000;
	hold time 6;
	connect retry time 1;
	%s
	ipv6 { import all; export all; };
}
`, birdAddr, localAddr, auth))
	require.NoError(t, err)
	t.Cleanup(d.Stop)
	return d
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func startSpeaker(t *testing.T, password string, logs *logBuffer, changed func()) *Speaker {
	t.Helper()
	s, err := Start(Config{ASN: 65000, RouterID: netip.MustParseAddr("10.255.0.2"), ListenPort: 179, Network: network,
		Peers:   []Peer{{Address: birdAddr, ASN: 65001, Password: password}},
		Changed: changed, ConnectRetry: time.Second,
		Logger: zerolog.New(logs).Level(zerolog.InfoLevel)})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	return s
}

func learned(s *Speaker) map[netip.Prefix]Route {
	out := map[netip.Prefix]Route{}
	for _, r := range s.Learned() {
		out[r.Prefix] = r
	}
	return out
}

// TestSpeakerWithBird: a session with bird comes up; the default route and
// the route outside the network are learned with bird's next hop, the two
// inside the network are rejected and logged; what the speaker announces
// reaches bird with its large community and goes when withdrawn; the
// learned routes go when the session goes.
func TestSpeakerWithBird(t *testing.T) {
	netns.RequireRoot(t)
	up := upstream(t, "")
	logs := &logBuffer{}
	changes := make(chan struct{}, 1)
	s := startSpeaker(t, "", logs, func() {
		select {
		case changes <- struct{}{}:
		default:
		}
	})

	want := map[netip.Prefix]Route{
		netip.MustParsePrefix("::/0"):              {Prefix: netip.MustParsePrefix("::/0"), NextHop: birdAddr, Peer: birdAddr},
		netip.MustParsePrefix("2001:db8:100::/40"): {Prefix: netip.MustParsePrefix("2001:db8:100::/40"), NextHop: birdAddr, Peer: birdAddr},
	}
	require.Eventually(t, func() bool { return fmt.Sprint(learned(s)) == fmt.Sprint(want) }, 20*time.Second, 50*time.Millisecond,
		"learned %v; log:\n%s", learned(s), logs)
	select {
	case <-changes:
	default:
		t.Fatal("no change notification")
	}
	// The rejected routes are read once the peer's table settles.
	require.Eventually(t, func() bool { return s.Rejected() == 2 }, 5*time.Second, 50*time.Millisecond)
	sessions := s.Sessions()
	require.Len(t, sessions, 1)
	require.True(t, sessions[0].Established(), "%+v", sessions[0])
	require.Equal(t, birdAddr, sessions[0].Peer)
	require.EqualValues(t, 65001, sessions[0].ASN)
	require.EqualValues(t, 4, sessions[0].Received)
	require.EqualValues(t, 2, sessions[0].Accepted)
	for _, p := range []string{"2001:db8:42:1::/64", "2001:db8:42::/48"} {
		require.Contains(t, logs.String(), `"prefix":"`+p+`"`)
	}
	require.Contains(t, logs.String(), "route rejected: inside the re6st network")

	require.NoError(t, s.Announce(community, localAddr))
	require.NoError(t, s.Announce(network, localAddr))
	tag := func(p netip.Prefix) string {
		c := Tag(65000, network, p)
		return fmt.Sprintf("(%d, %d, %d)", c.Global, c.Data1, c.Data2)
	}
	var out string
	if !assert.Eventually(t, func() bool {
		out, _ = up.Show("show", "route", "protocol", "re6st", "all")
		return strings.Contains(out, community.String()) && strings.Contains(out, tag(community)) &&
			strings.Contains(out, tag(network))
	}, 10*time.Second, 50*time.Millisecond) {
		p, _ := up.Show("show", "protocols", "all", "re6st")
		t.Fatalf("bird never saw the announcements:\n%s\n%s\n%+v", out, p, s.Sessions())
	}
	require.Eventually(t, func() bool { return s.Sessions()[0].Advertised == 2 }, 5*time.Second, 50*time.Millisecond)

	require.NoError(t, s.Withdraw(community))
	require.Eventually(t, func() bool {
		out, err := up.Show("show", "route", "protocol", "re6st")
		return err == nil && !strings.Contains(out, community.String()) && strings.Contains(out, network.String())
	}, 10*time.Second, 50*time.Millisecond, "bird kept the withdrawn route")
	require.Equal(t, map[netip.Prefix]LargeCommunity{network: Tag(65000, network, network)}, s.Announced())

	_, err := up.Show("disable", "re6st")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return s.LearnedCount() == 0 }, 10*time.Second, 50*time.Millisecond,
		"routes kept after the session went: %v", learned(s))
	require.False(t, s.Sessions()[0].Established())
}

// TestSpeakerWrongPassword: bird requires a TCP MD5 password the speaker
// does not have: no session, nothing learned; with the right one, the
// session comes up. Stopped, the speaker closes it with an administrative
// shutdown.
func TestSpeakerWrongPassword(t *testing.T) {
	netns.RequireRoot(t)
	up := upstream(t, "right")
	wrong := startSpeaker(t, "wrong", &logBuffer{}, nil)
	never := time.After(3 * time.Second)
	for {
		require.False(t, wrong.Sessions()[0].Established(), "session up with the wrong password")
		require.Zero(t, wrong.LearnedCount())
		select {
		case <-never:
		case <-time.After(100 * time.Millisecond):
			continue
		}
		break
	}
	wrong.Stop()
	right := startSpeaker(t, "right", &logBuffer{}, nil)
	require.Eventually(t, func() bool { return right.LearnedCount() == 2 }, 20*time.Second, 50*time.Millisecond)

	// A stop closes the session first (an administrative shutdown, not
	// the deconfiguration StopBgp would send), before GoBGP stops.
	right.Stop()
	var out string
	require.Eventually(t, func() bool {
		out, _ = up.Show("show", "protocols", "all", "re6st")
		return strings.Contains(out, "Received: Administrative shutdown") && strings.Contains(out, "re6stnet stopping")
	}, 5*time.Second, 50*time.Millisecond, "%s", out)
}
