package cluster

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/re6st-bpf/re6st-bpf/internal/bird"
	"github.com/re6st-bpf/re6st-bpf/internal/internet"
)

// Two communities with a BGP gateway each, on internet.TwoGateways: the
// registry's community file puts every node in community 0 but those
// located in Japan (gwb and b1), in community 1. The gateways (AS
// GatewayAS) peer with the upstream's router (AS UpstreamAS, hold time
// HoldTime).
const (
	TwoCommunitiesFile = "0 *\n1 JP\n"
	GatewayAS          = 65000
	UpstreamAS         = 65001
	HoldTime           = 6 // seconds
)

// TwoCommunities are the community prefixes of TwoCommunitiesFile in the
// default network 2001:db8:42::/48.
var TwoCommunities = map[string]netip.Prefix{
	"gwa": netip.MustParsePrefix("2001:db8:42::/49"),
	"gwb": netip.MustParsePrefix("2001:db8:42:8000::/49"),
}

// TwoGatewaysOptions are the options of a cluster on internet.TwoGateways
// (in): the community file, written into dir, the locations, and gwa and
// gwb run as BGP gateways peering with the upstream.
func TwoGatewaysOptions(in *internet.Internet, dir string) (Options, error) {
	communities := filepath.Join(dir, "community")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Options{}, err
	}
	if err := os.WriteFile(communities, []byte(TwoCommunitiesFile), 0o644); err != nil {
		return Options{}, err
	}
	up := in.Upstream()
	routerIDs := map[string]string{"gwa": "10.255.0.2", "gwb": "10.255.0.3"}
	return Options{Internet: in, Gateways: []string{"gwa", "gwb"},
		RegistryArgs: []string{"--community", communities},
		Locations:    map[string]string{"gwb": "JP,AS", "b1": "JP,AS"},
		NodeArgs: func(n *Node) []string {
			if l := up.Link(n.Name); l != nil {
				return []string{"--bgp-asn", fmt.Sprint(GatewayAS), "--bgp-router-id", routerIDs[n.Name],
					"--bgp-peer", fmt.Sprintf("%s,%d", l.Addr, UpstreamAS)}
			}
			return nil
		}}, nil
}

// StartUpstreamRouter runs bird2 on the upstream of internet.TwoGateways,
// with a session to each gateway (protocols gwa and gwb), its files in dir.
func StartUpstreamRouter(in *internet.Internet, dir string) (*bird.Daemon, error) {
	up := in.Upstream()
	var gateways []bird.Gateway
	for _, l := range up.Links {
		gateways = append(gateways, bird.Gateway{Name: l.Host.Name, Local: l.Addr, Neighbor: l.HostAddr, AS: GatewayAS})
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return bird.Start(up.NS, dir, bird.GatewaysConfig(UpstreamAS, HoldTime, gateways))
}
