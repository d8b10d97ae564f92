package bgp

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const bgpd = "/usr/lib/frr/bgpd"

// frrConfig: FRR's bgpd as the upstream, AS 65001, the same routes as
// bird's in upstreamBird.
const frrConfig = `frr defaults traditional
hostname upstream
router bgp 65001
 bgp router-id 10.255.0.1
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor %[1]s remote-as 65000
 neighbor %[1]s timers 2 6
 neighbor %[1]s timers connect 1
 address-family ipv6 unicast
  network ::/0
  network 2001:db8:100::/40
  network 2001:db8:42:1::/64
  network 2001:db8:42::/48
  neighbor %[1]s activate
 exit-address-family
`

// TestSpeakerWithFRR: the same session as with bird, against FRR's bgpd
// (Debian's frr) without zebra: the same routes learned and rejected, the
// announcements in `show bgp ipv6 unicast` with their large community.
func TestSpeakerWithFRR(t *testing.T) {
	netns.RequireRoot(t)
	if _, err := os.Stat(bgpd); err != nil {
		t.Fatalf("%s: install Debian's frr", bgpd)
	}
	ns := upstreamLink(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "bgpd.conf")
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(frrConfig, localAddr)), 0o600))
	var output bytes.Buffer
	cmd := ns.Command(context.Background(), bgpd, "-Z", "-S", "-n", "-f", conf, "-i", filepath.Join(dir, "bgpd.pid"),
		"--vty_socket", dir, "-P", "0", "--log", "stdout")
	cmd.Stdout, cmd.Stderr = &output, &output
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("bgpd:\n%s", output.String())
		}
	})
	vtysh := func(command string) string {
		out, _ := exec.Command("vtysh", "--vty_socket", dir, "-d", "bgpd", "-c", command).CombinedOutput()
		return string(out)
	}

	logs := &logBuffer{}
	s := startSpeaker(t, "", logs, nil)
	want := fmt.Sprint(map[netip.Prefix]Route{
		netip.MustParsePrefix("::/0"):              {Prefix: netip.MustParsePrefix("::/0"), NextHop: birdAddr, Peer: birdAddr},
		netip.MustParsePrefix("2001:db8:100::/40"): {Prefix: netip.MustParsePrefix("2001:db8:100::/40"), NextHop: birdAddr, Peer: birdAddr},
	})
	require.Eventually(t, func() bool { return fmt.Sprint(learned(s)) == want }, 30*time.Second, 50*time.Millisecond,
		"learned %v; log:\n%s", learned(s), logs)
	require.Eventually(t, func() bool { return s.Rejected() == 2 }, 5*time.Second, 50*time.Millisecond)
	require.Contains(t, logs.String(), `"prefix":"2001:db8:42:1::/64"`)

	require.NoError(t, s.Announce(community, localAddr))
	tag := Tag(65000, network, community)
	var out string
	if !assert.Eventually(t, func() bool {
		out = vtysh("show bgp ipv6 unicast " + community.String())
		return strings.Contains(out, community.String()) && strings.Contains(out, "Large Community: "+tag.String())
	}, 10*time.Second, 100*time.Millisecond) {
		t.Fatalf("FRR never saw %s with %s:\n%s", community, tag, out)
	}
}
