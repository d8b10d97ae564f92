package main

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/node"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
)

// The text status lists the traffic classes, and only when there are some.
func TestPrintStatusClasses(t *testing.T) {
	var out strings.Builder
	printStatus(&out, &node.Status{})
	require.NotContains(t, out.String(), "CLASS")

	ka, err := netparams.ParseTrafficClass("keepalive,fd00:1::/32,dscp=46,priority=7,metric=latency")
	require.NoError(t, err)
	out.Reset()
	printStatus(&out, &node.Status{Classes: []node.ClassStatus{{ID: 1, TrafficClass: ka,
		Prefix: netip.MustParsePrefix("fd00:1:7::/48"), Address: netip.MustParseAddr("fd00:1:7::1"),
		Traffic: loader.ClassStats{Packets: 12, Bytes: 3 << 10, Drops: 1}, Routes: make([]node.RouteStatus, 2)},
		{ID: 2, TrafficClass: ka, Peers: []string{"2/16", "3/16"}}}})
	require.Regexp(t, regexp.MustCompile(`(?m)^1 keepalive\s+fd00:1::/32\s+fd00:1:7::1\s+46\s+7\s+latency\s+all\s+2\s+12\s+3\.0KiB\s+1$`), out.String())
	require.Regexp(t, regexp.MustCompile(`(?m)^2 keepalive\s.*latency\s+to 2/16,3/16\s+0\s`), out.String())
}

// The text status gives each tunnel's type and whether it encrypts.
func TestPrintStatusTunnelTypes(t *testing.T) {
	var out strings.Builder
	printStatus(&out, &node.Status{Tunnels: []node.TunnelStatus{
		{ID: 1, Peer: netip.MustParsePrefix("2001:db8:42:1::/64"), Outgoing: true, Encap: loader.DEVICE, Type: "wireguard", Encrypted: true,
			Remote: netip.MustParseAddrPort("198.18.1.2:5555")},
		{ID: 2, Peer: netip.MustParsePrefix("2001:db8:42:2::/64"), Encap: loader.FOU, Type: "fou",
			Remote: netip.MustParseAddrPort("198.18.2.2:5555")},
		// An OpenVPN server's client: no remote.
		{ID: 1 << 31, Peer: netip.MustParsePrefix("2001:db8:42:3::/64"), Encap: loader.DEVICE, Type: "openvpn-tcp"},
	}})
	require.Regexp(t, regexp.MustCompile(`(?m)^TUNNEL\s+PEER\s+DIR\s+TYPE\s+ENCRYPTED\s+REMOTE`), out.String())
	require.Regexp(t, regexp.MustCompile(`(?m)^1\s+2001:db8:42:1::/64\s+out\s+wireguard\s+yes\s+198\.18\.1\.2:5555\s`), out.String())
	require.Regexp(t, regexp.MustCompile(`(?m)^2\s+2001:db8:42:2::/64\s+in\s+fou\s+no\s+198\.18\.2\.2:5555\s`), out.String())
	require.Regexp(t, regexp.MustCompile(`(?m)^2147483648\s+2001:db8:42:3::/64\s+in\s+openvpn-tcp\s+no\s+-\s`), out.String())
}

// The text status gives the OpenVPN servers and their clients.
func TestPrintStatusOpenVPNServers(t *testing.T) {
	var out strings.Builder
	printStatus(&out, &node.Status{OpenVPNServers: []node.OpenVPNServerStatus{
		{Device: "re6stnet-tcp", Type: "openvpn-tcp", Port: 1194, Running: true, Clients: 2},
		{Device: "re6stnet-udp", Type: "openvpn-udp", Port: 1194},
		{Device: "re6stnet-tcp6", Type: "openvpn-tcp", IPv6: true, Port: 1194, Running: true, Clients: 1},
	}})
	require.Contains(t, out.String(), "openvpn server re6stnet-tcp (openvpn-tcp over IPv4, port 1194): running, 2 clients\n")
	require.Contains(t, out.String(), "openvpn server re6stnet-udp (openvpn-udp over IPv4, port 1194): NOT RUNNING, 0 clients\n")
	require.Contains(t, out.String(), "openvpn server re6stnet-tcp6 (openvpn-tcp over IPv6, port 1194): running, 1 clients\n")
}
