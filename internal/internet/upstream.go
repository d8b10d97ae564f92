package internet

import (
	"fmt"
	"net/netip"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

// UpstreamName names the upstream's namespace (after the internet's prefix);
// UpstreamInterface is the interface of each host it is linked to (and of
// the exterior host).
const (
	UpstreamName      = "upstream"
	UpstreamInterface = "upstream"
)

// upstreamLinks are the IPv6 networks of the links between the upstream
// (::1) and its hosts (::2), the i-th host's in 2001:db8:ffff:i::/64;
// exteriorLink the one to the exterior host. All outside any re6st network
// the cluster makes.
var (
	upstreamLinks = netip.MustParsePrefix("2001:db8:ffff::/48")
	exteriorLink  = netip.MustParsePrefix("2001:db8:fffe::/64")
)

// Upstream is an IPv6 internet router outside the simulated IPv4 internet,
// for re6st gateways: its namespace is linked by a veth to each host of
// Spec.Upstream, whose default IPv6 route goes through it, and, with
// Spec.Exterior, to an exterior host with native IPv6 behind it.
type Upstream struct {
	NS *netns.NS
	// *UpstreamLink is the link to the first host; Links are all of them,
	// in Spec.Upstream's order.
	*UpstreamLink
	Links []*UpstreamLink
	// Exterior is the exterior host (nil without Spec.Exterior), at
	// ExteriorAddr, its default route through the upstream.
	Exterior     *netns.NS
	ExteriorAddr netip.Addr
}

// UpstreamLink is the upstream's link to one host.
type UpstreamLink struct {
	// Host is the host it is linked to, through UpstreamInterface.
	Host *Host
	// Addr is the upstream's address on the link; HostAddr the host's,
	// its next hop for what Route gives it.
	Addr, HostAddr netip.Addr

	in *Internet
}

// Upstream returns the upstream, or nil when the Spec has none.
func (in *Internet) Upstream() *Upstream { return in.upstream }

// Link returns the link to host, nil if the upstream has none.
func (u *Upstream) Link(host string) *UpstreamLink {
	for _, l := range u.Links {
		if l.Host.Name == host {
			return l
		}
	}
	return nil
}

// Route has the upstream route p through the link's host (a static route;
// a router run in the upstream's namespace may override it).
func (l *UpstreamLink) Route(p netip.Prefix) error {
	return l.in.addRoute(UpstreamName, route{p, l.HostAddr, to(l.Host.Name)})
}

// buildUpstream creates the upstream, links it to its hosts, gives each
// its default IPv6 route, and adds the exterior host.
func (in *Internet) buildUpstream() error {
	ns, err := in.namespace(UpstreamName)
	if err != nil {
		return err
	}
	u := &Upstream{NS: ns}
	for i, name := range in.spec.Upstream {
		host := in.hosts[name]
		a := upstreamLinks.Addr().As16()
		a[6], a[7] = byte(i>>8), byte(i)
		l := &UpstreamLink{Host: host, Addr: netip.AddrFrom16(a).Next(), in: in}
		l.HostAddr = l.Addr.Next()
		if err := in.linkIPv6(UpstreamName, to(name), l.Addr, name, l.HostAddr); err != nil {
			return fmt.Errorf("upstream: %w", err)
		}
		u.Links = append(u.Links, l)
	}
	u.UpstreamLink = u.Links[0]
	if name := in.spec.Exterior; name != "" {
		if u.Exterior, err = in.namespace(name); err != nil {
			return err
		}
		up := exteriorLink.Addr().Next()
		u.ExteriorAddr = up.Next()
		if err := in.linkIPv6(UpstreamName, to(name), up, name, u.ExteriorAddr); err != nil {
			return fmt.Errorf("exterior: %w", err)
		}
	}
	in.upstream = u
	// It forwards between its hosts and the exterior host.
	return ns.Sysctl("net.ipv6.conf.all.forwarding", "1")
}

// linkIPv6 links the upstream (up, at upAddr) to a host (at hostAddr, its
// default route through the upstream) by a /64.
func (in *Internet) linkIPv6(up, upIf string, upAddr netip.Addr, host string, hostAddr netip.Addr) error {
	if err := in.connect(up, upIf, upAddr, host, UpstreamInterface, hostAddr, 64); err != nil {
		return err
	}
	// Unlike IPv4 ones, IPv6 addresses go with their link when it is set
	// down, unless told otherwise: keep them for RestoreLink.
	for _, end := range []struct{ ns, ifname string }{{up, upIf}, {host, UpstreamInterface}} {
		if err := in.ns[end.ns].Sysctl("net.ipv6.conf."+end.ifname+".keep_addr_on_down", "1"); err != nil {
			return err
		}
	}
	return in.addRoute(host, route{netip.PrefixFrom(netip.IPv6Unspecified(), 0), upAddr, UpstreamInterface})
}
