package internet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

// Interface names in routers: the core's link to an ISP and an ISP's or a
// site's link to what is attached to it are "to-<name>"; an ISP's link to
// the core is "core"; a site's link to its ISP is "wan", its bridge "br0".
const (
	uplinkISP  = "core"
	uplinkSite = "wan"
	bridge     = "br0"
)

func to(name string) string { return "to-" + name }

// route is a static route (IPv4, or IPv6 for the upstream), kept to be put
// back when its link comes up.
type route struct {
	dst netip.Prefix
	via netip.Addr
	dev string
}

var defaultRoute = netip.MustParsePrefix("0.0.0.0/0")

// nth returns the n-th address of p.
func nth(p netip.Prefix, n int) netip.Addr {
	a := p.Masked().Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) + uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// slot is the /24 of an ISP's k-th link (0: the core).
func slot(isp netip.Prefix, k int) netip.Prefix {
	a := isp.Addr().As4()
	a[2] = byte(k)
	return netip.PrefixFrom(netip.AddrFrom4(a), 24)
}

// build creates the core, the ISPs, the hosts directly on an ISP, then the
// sites and their hosts (an ISP numbers its attachments in that order), then
// the upstream.
func (in *Internet) build() error {
	if _, err := in.router(Core); err != nil {
		return err
	}
	isps := map[string]netip.Prefix{}
	attached := map[string]int{}
	for _, isp := range in.spec.ISPs {
		isps[isp.Name] = isp.Range
		if _, err := in.router(isp.Name); err != nil {
			return err
		}
		link := slot(isp.Range, 0)
		if err := in.connect(Core, to(isp.Name), nth(link, 1), isp.Name, uplinkISP, nth(link, 2), link.Bits()); err != nil {
			return err
		}
		if err := in.addRoute(Core, route{isp.Range, nth(link, 2), to(isp.Name)}); err != nil {
			return err
		}
		if err := in.addRoute(isp.Name, route{defaultRoute, nth(link, 1), uplinkISP}); err != nil {
			return err
		}
	}
	// attach links name (a host or site router, through its interface ifname)
	// to the ISP's next slot and routes it by default through the ISP.
	attach := func(name, ifname, isp string) (netip.Prefix, error) {
		attached[isp]++
		link := slot(isps[isp], attached[isp])
		if err := in.connect(isp, to(name), nth(link, 1), name, ifname, nth(link, 2), link.Bits()); err != nil {
			return link, err
		}
		return link, in.addRoute(name, route{defaultRoute, nth(link, 1), ifname})
	}
	for _, h := range in.spec.Hosts {
		if _, onISP := isps[h.On]; !onISP {
			continue
		}
		if _, err := in.host(h.Name); err != nil {
			return err
		}
		link, err := attach(h.Name, HostInterface, h.On)
		if err != nil {
			return err
		}
		host := in.hosts[h.Name]
		host.ISP, host.Addr, host.Subnet, host.Gateway = h.On, nth(link, 2), link, nth(link, 1)
	}
	for _, site := range in.spec.Sites {
		if err := in.site(site, attach); err != nil {
			return fmt.Errorf("site %s: %w", site.Name, err)
		}
	}
	if len(in.spec.Upstream) > 0 {
		return in.buildUpstream()
	}
	return nil
}

// site builds a site router, its LAN and its hosts.
func (in *Internet) site(site Site, attach func(name, ifname, isp string) (netip.Prefix, error)) error {
	router, err := in.router(site.Name)
	if err != nil {
		return err
	}
	wan, err := attach(site.Name, uplinkSite, site.ISP)
	if err != nil {
		return err
	}
	if err := router.Do(func() error {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridge}}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("bridge %s: %w", bridge, err)
		}
		return netlink.LinkSetUp(br)
	}); err != nil {
		return err
	}
	if err := router.AddrAdd(bridge, netip.PrefixFrom(nth(site.LAN, 1), site.LAN.Bits())); err != nil {
		return err
	}
	if site.NAT {
		if err := masquerade(router); err != nil {
			return err
		}
	} else if err := in.addRoute(site.ISP, route{site.LAN, nth(wan, 2), to(site.Name)}); err != nil {
		return err
	}
	hosts := 0
	for _, h := range in.spec.Hosts {
		if h.On != site.Name {
			continue
		}
		hosts++
		addr := nth(site.LAN, 1+hosts)
		if !site.LAN.Contains(nth(site.LAN, 2+hosts)) {
			return fmt.Errorf("LAN %s has no room for host %s", site.LAN, h.Name)
		}
		host, err := in.host(h.Name)
		if err != nil {
			return err
		}
		if err := in.connect(site.Name, to(h.Name), netip.Addr{}, h.Name, HostInterface, addr, site.LAN.Bits()); err != nil {
			return err
		}
		if err := router.Do(func() error {
			port, err := netlink.LinkByName(to(h.Name))
			if err != nil {
				return err
			}
			br, err := netlink.LinkByName(bridge)
			if err != nil {
				return err
			}
			return netlink.LinkSetMaster(port, br)
		}); err != nil {
			return err
		}
		if err := in.addRoute(h.Name, route{defaultRoute, nth(site.LAN, 1), HostInterface}); err != nil {
			return err
		}
		host.Site, host.ISP, host.NAT, host.LAN = site.Name, site.ISP, site.NAT, HostInterface
		host.Addr, host.Subnet, host.Gateway = addr, site.LAN, nth(site.LAN, 1)
	}
	return nil
}

// natRules masquerade what leaves through the WAN interface and forward
// nothing inbound but replies.
var natRules = fmt.Sprintf(`table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat;
		oifname %[1]q masquerade
	}
}
table ip filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname %[2]q oifname %[1]q accept
	}
}
`, uplinkSite, bridge)

func masquerade(router *netns.NS) error {
	cmd := router.Command(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(natRules)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: nft: %w: %s", router.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// router creates a forwarding namespace.
func (in *Internet) router(name string) (*netns.NS, error) {
	ns, err := in.namespace(name)
	if err != nil {
		return nil, err
	}
	return ns, ns.Sysctl("net.ipv4.ip_forward", "1")
}

// host creates a host's namespace and records it.
func (in *Internet) host(name string) (*Host, error) {
	ns, err := in.namespace(name)
	if err != nil {
		return nil, err
	}
	h := &Host{Name: name, NS: ns, Interface: HostInterface}
	in.hosts[name] = h
	return h, nil
}

func (in *Internet) namespace(name string) (*netns.NS, error) {
	ns, err := netns.New(in.Prefix + name)
	if err != nil {
		return nil, err
	}
	in.ns[name] = ns
	in.order = append(in.order, name)
	return ns, nil
}

// connect links a and b with a veth and gives each end its address (none
// when invalid) with prefix length bits.
func (in *Internet) connect(a, aIf string, aAddr netip.Addr, b, bIf string, bAddr netip.Addr, bits int) error {
	if err := netns.Veth(in.ns[a], aIf, in.ns[b], bIf); err != nil {
		return err
	}
	in.links = append(in.links, link{a: a, aIf: aIf, b: b, bIf: bIf})
	for _, end := range []struct {
		name, ifname string
		addr         netip.Addr
	}{{a, aIf, aAddr}, {b, bIf, bAddr}} {
		if !end.addr.IsValid() {
			continue
		}
		if err := in.ns[end.name].AddrAdd(end.ifname, netip.PrefixFrom(end.addr, bits)); err != nil {
			return err
		}
	}
	return nil
}

// addRoute installs r in name's namespace and keeps it for restoreRoutes.
func (in *Internet) addRoute(name string, r route) error {
	in.routes[name] = append(in.routes[name], r)
	return in.replaceRoute(name, r)
}

// restoreRoutes puts back name's routes through ifname, which the kernel
// deleted when the interface went down.
func (in *Internet) restoreRoutes(name, ifname string) error {
	var errs []error
	for _, r := range in.routes[name] {
		if r.dev == ifname {
			errs = append(errs, in.replaceRoute(name, r))
		}
	}
	return errors.Join(errs...)
}

func (in *Internet) replaceRoute(name string, r route) error {
	return in.ns[name].Do(func() error {
		l, err := netlink.LinkByName(r.dev)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", name, r.dev, err)
		}
		dst := &net.IPNet{IP: r.dst.Addr().AsSlice(), Mask: net.CIDRMask(r.dst.Bits(), r.dst.Addr().BitLen())}
		err = netlink.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Gw: r.via.AsSlice()})
		if err != nil {
			return fmt.Errorf("%s: route %s via %s dev %s: %w", name, r.dst, r.via, r.dev, err)
		}
		return nil
	})
}
