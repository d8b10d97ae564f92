package bird

import (
	"fmt"
	"net/netip"
	"strings"
)

// Gateway is a BGP gateway the upstream router peers with: a session named
// Name from Local (the upstream's address on their link) to Neighbor in AS.
type Gateway struct {
	Name            string
	Local, Neighbor netip.Addr
	AS              uint32
}

// GatewaysConfig is the configuration of an upstream router (router id
// 10.255.0.1, AS upstreamAS) for re6st gateways: a session with each, hold
// time holdSeconds, a default route given to every gateway, and what they
// announce taken and exported to the upstream's kernel, so that the
// traffic of the hosts behind it follows the announcements.
func GatewaysConfig(upstreamAS uint32, holdSeconds int, gateways []Gateway) string {
	var b strings.Builder
	fmt.Fprintf(&b, `router id 10.255.0.1;
protocol device {}
protocol kernel { ipv6 { export where source = RTS_BGP; }; }
protocol static upstream_routes {
	ipv6;
	route ::/0 blackhole;
}
template bgp re6st_gw {
	local as %d;
	hold time %d;
	connect retry time 1;
	ipv6 { import all; export where net = ::/0; };
}
`, upstreamAS, holdSeconds)
	for _, g := range gateways {
		fmt.Fprintf(&b, "protocol bgp %s from re6st_gw { local %s; neighbor %s as %d; }\n", g.Name, g.Local, g.Neighbor, g.AS)
	}
	return b.String()
}
