package internet

import (
	"fmt"
	"net/netip"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

// UpstreamName names the upstream's namespace (after the internet's prefix);
// UpstreamInterface is the interface of the host it is linked to.
const (
	UpstreamName      = "upstream"
	UpstreamInterface = "upstream"
)

// upstreamLink is the IPv6 network of the link between the upstream (::1)
// and its host (::2): outside any re6st network the cluster makes.
var upstreamLink = netip.MustParsePrefix("2001:db8:ffff::/64")

// Upstream is an IPv6 internet host outside the simulated IPv4 internet,
// for re6st gateways: its namespace is linked by a veth to one host
// (Spec.Upstream), whose default IPv6 route goes through it. It routes back
// only the prefixes given to Route.
type Upstream struct {
	NS *netns.NS
	// Host is the host it is linked to, through UpstreamInterface.
	Host *Host
	// Addr is its address; HostAddr the host's on the link, its next hop
	// for what Route gives it.
	Addr, HostAddr netip.Addr

	in *Internet
}

// Upstream returns the upstream, or nil when the Spec has none.
func (in *Internet) Upstream() *Upstream { return in.upstream }

// Route routes p back through the upstream's host.
func (u *Upstream) Route(p netip.Prefix) error {
	return u.in.addRoute(UpstreamName, route{p, u.HostAddr, to(u.Host.Name)})
}

// buildUpstream creates the upstream, links it to its host and gives the
// host its default IPv6 route.
func (in *Internet) buildUpstream() error {
	host := in.hosts[in.spec.Upstream]
	ns, err := in.namespace(UpstreamName)
	if err != nil {
		return err
	}
	u := &Upstream{NS: ns, Host: host, Addr: upstreamLink.Addr().Next(), in: in}
	u.HostAddr = u.Addr.Next()
	if err := in.connect(UpstreamName, to(host.Name), u.Addr, host.Name, UpstreamInterface, u.HostAddr, upstreamLink.Bits()); err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	// Unlike IPv4 ones, IPv6 addresses go with their link when it is set
	// down, unless told otherwise: keep them for RestoreLink.
	for _, end := range []struct{ ns, ifname string }{{UpstreamName, to(host.Name)}, {host.Name, UpstreamInterface}} {
		if err := in.ns[end.ns].Sysctl("net.ipv6.conf."+end.ifname+".keep_addr_on_down", "1"); err != nil {
			return err
		}
	}
	if err := in.addRoute(host.Name, route{netip.PrefixFrom(netip.IPv6Unspecified(), 0), u.Addr, UpstreamInterface}); err != nil {
		return err
	}
	in.upstream = u
	return nil
}
