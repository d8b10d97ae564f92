package internet

import (
	"fmt"
	"net/netip"
)

// Spec describes an internet.
type Spec struct {
	ISPs  []ISP
	Sites []Site
	Hosts []HostSpec
	// Upstream, if set, names the hosts linked to an IPv6 upstream router
	// (see Upstream), as re6st gateways need.
	Upstream []string
	// Exterior, if set, names a host with native IPv6 behind the upstream,
	// outside the IPv4 internet (needs Upstream).
	Exterior string
}

// ISP is a router namespace with an IPv4 /16 (Range), linked to the core.
type ISP struct {
	Name  string
	Range netip.Prefix
}

// Site is a router namespace attached to an ISP, with a LAN bridge behind
// it. A routed site's LAN must lie in its ISP's range; a NAT site's LAN is
// private and its router masquerades outgoing traffic and lets nothing in.
type Site struct {
	Name string
	ISP  string
	LAN  netip.Prefix
	NAT  bool
}

// HostSpec is a host attached to an ISP or to a site (On names either).
type HostSpec struct {
	Name string
	On   string
}

// Default is the embedded topology: two ISPs, nine hosts among which the
// registry host, one host behind NAT and two hosts sharing a routed LAN.
//
//	         core
//	       /      \
//	   isp1        isp2
//	registry n1 n2   n3 n4 n5
//	lan: n7 n8       nat: n6
func Default() Spec {
	return Spec{
		ISPs: []ISP{
			{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")},
			{Name: "isp2", Range: netip.MustParsePrefix("198.19.0.0/16")},
		},
		Sites: []Site{
			{Name: "lan", ISP: "isp1", LAN: netip.MustParsePrefix("198.18.100.0/24")},
			{Name: "nat", ISP: "isp2", LAN: netip.MustParsePrefix("10.99.0.0/24"), NAT: true},
		},
		Hosts: []HostSpec{
			{Name: "registry", On: "isp1"},
			{Name: "n1", On: "isp1"},
			{Name: "n2", On: "isp1"},
			{Name: "n3", On: "isp2"},
			{Name: "n4", On: "isp2"},
			{Name: "n5", On: "isp2"},
			{Name: "n6", On: "nat"},
			{Name: "n7", On: "lan"},
			{Name: "n8", On: "lan"},
		},
	}
}

// TwoGateways is the topology of two re6st communities with a BGP gateway
// each: gwa and a1 (with the registry) for one, gwb and b1 for the other,
// on one ISP; gwa and gwb linked to the upstream router, and an exterior
// host, ext, with native IPv6 behind it.
func TwoGateways() Spec {
	return Spec{
		ISPs: []ISP{{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")}},
		Hosts: []HostSpec{{Name: "registry", On: "isp1"}, {Name: "gwa", On: "isp1"}, {Name: "a1", On: "isp1"},
			{Name: "gwb", On: "isp1"}, {Name: "b1", On: "isp1"}},
		Upstream: []string{"gwa", "gwb"},
		Exterior: "ext",
	}
}

// TwoISPs is two ISPs joined by the core, isp1 (198.18.0.0/16) with the
// hosts named in onISP1, isp2 (198.19.0.0/16) with those in onISP2: the
// smallest internet where a path between ISPs can block what a path within
// one lets through (Firewall on Core).
func TwoISPs(onISP1, onISP2 []string) Spec {
	s := Spec{ISPs: []ISP{
		{Name: "isp1", Range: netip.MustParsePrefix("198.18.0.0/16")},
		{Name: "isp2", Range: netip.MustParsePrefix("198.19.0.0/16")},
	}}
	for i, names := range [][]string{onISP1, onISP2} {
		for _, n := range names {
			s.Hosts = append(s.Hosts, HostSpec{Name: n, On: s.ISPs[i].Name})
		}
	}
	return s
}

// Core is the name of the core router joining the ISPs.
const Core = "core"

// maxName keeps "to-<name>" within the 15 bytes of an interface name.
const maxName = 12

func (s Spec) validate() error {
	seen := map[string]string{Core: "router"}
	name := func(kind, n string) error {
		if n == "" || len(n) > maxName {
			return fmt.Errorf("internet: %s name %q: want 1 to %d bytes", kind, n, maxName)
		}
		if other, dup := seen[n]; dup {
			return fmt.Errorf("internet: %s name %q already names a %s", kind, n, other)
		}
		seen[n] = kind
		return nil
	}
	isps := map[string]ISP{}
	for _, isp := range s.ISPs {
		if err := name("ISP", isp.Name); err != nil {
			return err
		}
		if !isp.Range.Addr().Is4() || isp.Range.Bits() != 16 || isp.Range.Masked() != isp.Range {
			return fmt.Errorf("internet: ISP %s: range %s is not an IPv4 /16", isp.Name, isp.Range)
		}
		isps[isp.Name] = isp
	}
	attached := map[string]int{} // ISP → attachments (hosts and sites)
	for _, site := range s.Sites {
		attached[site.ISP]++
	}
	for _, h := range s.Hosts {
		attached[h.On]++
	}
	sites := map[string]bool{}
	for _, site := range s.Sites {
		if err := name("site", site.Name); err != nil {
			return err
		}
		isp, ok := isps[site.ISP]
		if !ok {
			return fmt.Errorf("internet: site %s: no ISP %q", site.Name, site.ISP)
		}
		if !site.LAN.Addr().Is4() || site.LAN.Bits() > 29 || site.LAN.Masked() != site.LAN {
			return fmt.Errorf("internet: site %s: LAN %s is not an IPv4 network of /29 or shorter", site.Name, site.LAN)
		}
		if !site.NAT && !(isp.Range.Contains(site.LAN.Addr()) && site.LAN.Bits() >= 24 && int(site.LAN.Addr().As4()[2]) > attached[isp.Name]) {
			return fmt.Errorf("internet: routed site %s: LAN %s must be a /24 or longer inside %s's range %s, above its %d attachment links", site.Name, site.LAN, isp.Name, isp.Range, attached[isp.Name])
		}
		sites[site.Name] = true
	}
	hosts := map[string]bool{}
	for _, h := range s.Hosts {
		if err := name("host", h.Name); err != nil {
			return err
		}
		if _, ok := isps[h.On]; !ok && !sites[h.On] {
			return fmt.Errorf("internet: host %s: no ISP or site %q", h.Name, h.On)
		}
		hosts[h.Name] = true
	}
	linked := map[string]bool{}
	for _, h := range s.Upstream {
		if !hosts[h] || linked[h] {
			return fmt.Errorf("internet: upstream: no host %q, or named twice", h)
		}
		linked[h] = true
	}
	if len(s.Upstream) > 0 {
		if err := name("router", UpstreamName); err != nil {
			return err
		}
	}
	if s.Exterior != "" {
		if len(s.Upstream) == 0 {
			return fmt.Errorf("internet: exterior host %s needs an upstream", s.Exterior)
		}
		if err := name("exterior host", s.Exterior); err != nil {
			return err
		}
	}
	return nil
}
