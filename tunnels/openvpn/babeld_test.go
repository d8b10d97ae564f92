package openvpn

import (
	"context"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
)

// re6stBabeld runs Debian's babeld in ns on dev as re6st's plib.router
// configures it (hello interval, the network's signing key, the network's
// babel_default, its prefix redistributed from its address), announcing
// prefix.
func re6stBabeld(t *testing.T, ns *netns.NS, dev string, prefix netip.Prefix, key []byte, hello time.Duration) {
	if _, err := exec.LookPath("babeld"); err != nil {
		t.Fatal("babeld not installed (.ci/install-deps installs it)")
	}
	// re6st's: the node's address with its subnet's length on the main
	// interface (lo), the network unreachable.
	_, err := ns.Run("ip", "-6", "addr", "add", netip.PrefixFrom(prefix.Addr().Next(), prefix.Bits()).String(), "dev", "lo")
	require.NoError(t, err)
	_, err = ns.Run("ip", "-6", "route", "add", "unreachable", netip.PrefixFrom(prefix.Addr(), 48).Masked().String())
	require.NoError(t, err)
	dir := t.TempDir()
	h := strconv.Itoa(int(hello / time.Second))
	args := []string{"babeld", "-h", h, "-H", h, "-L", filepath.Join(dir, "babeld.log"), "-S", filepath.Join(dir, "state"),
		"-I", filepath.Join(dir, "pid"), "-s",
		"-C", "redistribute local deny",
		"-C", "redistribute ip " + prefix.String() + " eq " + strconv.Itoa(prefix.Bits()),
		"-C", "key type blake2s128 id sign value " + hex.EncodeToString(key),
		"-C", "default " + netparams.BabelDefault + " key sign",
		"-C", "redistribute deny",
		"-C", "install pref-src " + prefix.Addr().Next().String(),
		dev}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := ns.Command(ctx, args...)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "babeld.log"))
			t.Logf("babeld log:\n%s", log)
		}
	})
}

// ourBabel runs our Babel on dev in ns, as a node runs it on an OpenVPN
// TAP device (node/openvpn.go: a tunnel's configuration, the network's
// key), exporting prefix.
func ourBabel(t *testing.T, ns *netns.NS, dev string, prefix netip.Prefix, key []byte, hello time.Duration) *babel.Router {
	log := zerolog.Nop()
	r, err := babel.NewRouter(babel.Config{RouterID: babel.RandomRouterID(), Logger: &log})
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	var tr *babel.UDPTransport
	require.NoError(t, ns.Do(func() (err error) { tr, err = babel.ListenUDP(dev); return err }))
	cfg := babel.DefaultInterfaceConfig(babel.LinkTunnel)
	cfg.HelloInterval, cfg.UpdateInterval, cfg.RTT = hello, 4*hello, babel.Re6stRTT
	cfg.Auth = &babel.Auth{Sign: []babel.Key{{Algorithm: babel.BLAKE2s128, Secret: key}}}
	require.NoError(t, r.AddInterface(dev, cfg, tr))
	require.NoError(t, r.Export(prefix, netip.Prefix{}, 0))
	return r
}

// TestBabeldOverOpenVPN: Debian's babeld, configured as re6st configures
// it, and our Babel exchange routes over the TAP link between re6st's
// OpenVPN and ours: re6st's server and our client over TCP, our server and
// re6st's client over UDP.
func TestBabeldOverOpenVPN(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	const hello = time.Second
	theirs, ours6 := netip.MustParsePrefix("2001:db8:42:1::/64"), netip.MustParsePrefix("2001:db8:42:2::/64")
	for _, tc := range []struct {
		proto       string
		re6stServer bool
	}{{TCP, true}, {UDP, false}} {
		t.Run(tc.proto, func(t *testing.T) {
			r := newRig(t)
			var theirDev, ourDev string
			var srv, cl *Process
			c := r.common
			if tc.re6stServer {
				theirDev, ourDev = "re6stnet-"+tc.proto, "ovc"+tc.proto
				srv = re6stServer(t, r.a, r.pki, theirCN, tc.proto, 1194)
				waitOutput(t, srv, ready)
				c.Dev = ourDev
				args, err := ClientArgs(ClientConfig{Common: c, Remote: netip.AddrPortFrom(r.addrA, 1194), Proto: tc.proto, PeerName: theirCN})
				require.NoError(t, err)
				cl = ours(t, r.b, ourDev, tc.proto, r.ourLL, args)
			} else {
				theirDev, ourDev = "re6stc"+tc.proto, "re6stnet-"+tc.proto
				c.Dev = ourDev
				args, err := ServerArgs(ServerConfig{Common: c, Port: 1194, Proto: tc.proto, MaxClients: 4})
				require.NoError(t, err)
				srv = ours(t, r.b, ourDev, tc.proto, r.ourLL, args)
				waitOutput(t, srv, ready)
				cl = re6stClient(t, r.a, r.pki, theirCN, theirDev, ourCN, tc.proto, netip.AddrPortFrom(r.addrB, 1194))
			}
			waitPing(t, r.a, theirDev, r.ourLL, srv, cl)
			re6stBabeld(t, r.a, theirDev, theirs, key, hello)
			router := ourBabel(t, r.b, ourDev, ours6, key, hello)

			require.Eventually(t, func() bool {
				out, _ := r.a.Run("ip", "-6", "route", "show", ours6.String())
				return strings.Contains(out, "via "+r.ourLL.String()+" dev "+theirDev)
			}, 30*time.Second, 200*time.Millisecond, "babeld installs our prefix through the TAP link")
			require.Eventually(t, func() bool {
				for _, rt := range router.Dump().Routes {
					if rt.Prefix == theirs && rt.Selected && rt.Interface == ourDev {
						return true
					}
				}
				return false
			}, 30*time.Second, 200*time.Millisecond, "we select babeld's prefix through the TAP link")
		})
	}
}
