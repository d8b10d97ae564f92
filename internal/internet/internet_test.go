package internet

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDefault(t *testing.T) {
	in := ForTest(t, Default())
	hosts := in.Hosts()
	require.Len(t, hosts, 9)
	registry := in.Host("registry")
	require.NotNil(t, registry)
	require.Equal(t, netip.MustParseAddr("198.18.1.2"), registry.Addr)
	var nat, lan []*Host
	for _, h := range hosts {
		switch {
		case h.NAT:
			nat = append(nat, h)
		case h.LAN != "":
			lan = append(lan, h)
		}
	}
	require.Len(t, nat, 1)
	require.Len(t, lan, 2)
	require.Equal(t, lan[0].Subnet, lan[1].Subnet, "LAN hosts share a segment")

	// Every host reaches every host that is not behind the NAT, the
	// registry among them; nobody reaches the host behind the NAT.
	addrs := make([]netip.Addr, len(hosts))
	for j, h := range hosts {
		addrs[j] = h.Addr
	}
	errs := PingAll(hosts, addrs)
	for i, from := range hosts {
		for j, to := range hosts {
			switch {
			case i == j:
			case to.NAT:
				require.Error(t, errs[i][j], "%s must not reach %s behind the NAT", from.Name, to.Name)
			default:
				require.NoError(t, errs[i][j], "%s → %s", from.Name, to.Name)
			}
		}
	}

	// Even a router next to the NAT that routes the private LAN through it
	// cannot open anything inside: the NAT forwards only replies inward.
	site := nat[0]
	isp := in.NS(site.ISP)
	out, err := isp.Run("ip", "route", "add", site.Subnet.String(), "dev", to(site.Site))
	require.NoError(t, err, out)
	_, err = isp.Run("ping", "-n", "-c1", "-W1", site.Addr.String())
	require.Error(t, err)

	// The LAN hosts are neighbours on one segment.
	_, err = lan[0].NS.Run("ping", "-n", "-c1", "-W2", "-I", lan[0].LAN, lan[1].Addr.String())
	require.NoError(t, err)
	out, err = lan[0].NS.Run("ip", "neigh", "show", lan[1].Addr.String())
	require.NoError(t, err)
	require.Contains(t, out, "lladdr")

	// A cut link stops traffic; restoring it brings it back, routes included.
	n1 := in.Host("n1")
	require.NoError(t, in.CutLink("n1", "isp1"))
	require.Error(t, n1.Ping(registry.Addr))
	require.NoError(t, in.RestoreLink("isp1", "n1"))
	require.NoError(t, n1.Ping(registry.Addr))
	require.NoError(t, in.CutLink(Core, "isp2"))
	require.Error(t, in.Host("n3").Ping(registry.Addr))
	require.NoError(t, in.RestoreLink(Core, "isp2"))
	require.NoError(t, in.Host("n3").Ping(registry.Addr))
	n7 := in.Host("n7")
	require.NoError(t, in.CutLink("lan", "n7"))
	require.Error(t, n7.Ping(registry.Addr))
	require.NoError(t, in.RestoreLink("lan", "n7"))
	require.NoError(t, n7.Ping(registry.Addr))
	require.Error(t, in.CutLink("n1", "n2"))
}

func TestSpecErrors(t *testing.T) {
	for _, spec := range []Spec{
		{ISPs: []ISP{{Name: "isp", Range: netip.MustParsePrefix("198.18.0.0/24")}}},
		{ISPs: []ISP{{Name: Core, Range: netip.MustParsePrefix("198.18.0.0/16")}}},
		{Hosts: []HostSpec{{Name: "h", On: "nowhere"}}},
		{ISPs: []ISP{{Name: "isp", Range: netip.MustParsePrefix("198.18.0.0/16")}},
			Sites: []Site{{Name: "lan", ISP: "isp", LAN: netip.MustParsePrefix("10.0.0.0/24")}}},
		{ISPs: []ISP{{Name: "isp", Range: netip.MustParsePrefix("198.18.0.0/16")}},
			Hosts: []HostSpec{{Name: "a-much-too-long-name", On: "isp"}}},
		{ISPs: []ISP{{Name: "isp", Range: netip.MustParsePrefix("198.18.0.0/16")}}, Upstream: []string{"nobody"}},
		{ISPs: []ISP{{Name: "isp", Range: netip.MustParsePrefix("198.18.0.0/16")}}, Exterior: "ext"},
		{ISPs: []ISP{{Name: "isp", Range: netip.MustParsePrefix("198.18.0.0/16")}},
			Hosts: []HostSpec{{Name: "gw", On: "isp"}}, Upstream: []string{"gw", "gw"}},
		{ISPs: []ISP{{Name: "isp", Range: netip.MustParsePrefix("198.18.0.0/16")}},
			Hosts: []HostSpec{{Name: "gw", On: "isp"}}, Upstream: []string{"gw"}, Exterior: "gw"},
		{ISPs: []ISP{{Name: "isp", Range: netip.MustParsePrefix("198.18.0.0/16")}},
			Hosts: []HostSpec{{Name: UpstreamName, On: "isp"}}, Upstream: []string{UpstreamName}},
	} {
		require.Error(t, spec.validate(), "%+v", spec)
	}
	require.NoError(t, Default().validate())
}

func TestUpstream(t *testing.T) {
	in := ForTest(t, Spec{
		ISPs:     []ISP{{Name: "isp", Range: netip.MustParsePrefix("198.18.0.0/16")}},
		Hosts:    []HostSpec{{Name: "gw", On: "isp"}, {Name: "h", On: "isp"}},
		Upstream: []string{"gw"},
	})
	up := in.Upstream()
	require.NotNil(t, up)
	require.Equal(t, "gw", up.Host.Name)
	require.Equal(t, netip.MustParseAddr("2001:db8:ffff::1"), up.Addr)
	gw := in.Host("gw")
	require.NoError(t, gw.Ping(up.Addr))
	out, err := gw.NS.Run("ip", "-6", "route", "show", "default")
	require.NoError(t, err)
	require.Contains(t, out, "default via 2001:db8:ffff::1 dev "+UpstreamInterface)

	// What it is given to route back goes to its host, and comes back
	// with a cut link.
	p := netip.MustParsePrefix("2001:db8:42::/48")
	require.NoError(t, up.Route(p))
	want := p.String() + " via " + up.HostAddr.String()
	out, err = up.NS.Run("ip", "-6", "route", "show", p.String())
	require.NoError(t, err)
	require.Contains(t, out, want)
	require.NoError(t, in.CutLink("gw", UpstreamName))
	require.Error(t, gw.Ping(up.Addr))
	require.NoError(t, in.RestoreLink(UpstreamName, "gw"))
	require.NoError(t, gw.Ping(up.Addr))
	out, err = up.NS.Run("ip", "-6", "route", "show", p.String())
	require.NoError(t, err)
	require.Contains(t, out, want)

	require.Nil(t, ForTest(t, Spec{}).Upstream())
}

// TestUpstreamLinks: an upstream linked to two hosts, each with its own
// link and default route, and an exterior host behind it that reaches
// both.
func TestUpstreamLinks(t *testing.T) {
	in := ForTest(t, Spec{
		ISPs:     []ISP{{Name: "isp", Range: netip.MustParsePrefix("198.18.0.0/16")}},
		Hosts:    []HostSpec{{Name: "gwa", On: "isp"}, {Name: "gwb", On: "isp"}},
		Upstream: []string{"gwa", "gwb"},
		Exterior: "ext",
	})
	up := in.Upstream()
	require.Len(t, up.Links, 2)
	require.Same(t, up.Links[0], up.UpstreamLink)
	require.Nil(t, up.Link("ext"))
	require.Equal(t, netip.MustParseAddr("2001:db8:ffff:1::2"), up.Link("gwb").HostAddr)
	require.Equal(t, netip.MustParseAddr("2001:db8:fffe::2"), up.ExteriorAddr)
	require.Nil(t, in.Host("ext"), "the exterior host is not a host of the IPv4 internet")
	for _, l := range up.Links {
		require.NoError(t, l.Host.Ping(l.Addr))
		out, err := up.Exterior.Run("ping", "-6", "-n", "-q", "-c", "1", "-W", "2", l.HostAddr.String())
		require.NoError(t, err, "exterior to %s: %s", l.Host.Name, out)
	}
}
