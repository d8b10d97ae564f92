package main

import (
	"fmt"
	"net/netip"

	"github.com/re6st-bpf/re6st-bpf/node"
	"github.com/re6st-bpf/re6st-bpf/routing/bgp"
	"github.com/spf13/pflag"
)

// bgpFlags are the border gateway's BGP options (docs/gateway.md).
type bgpFlags struct {
	asn        string
	routerID   string
	listenPort uint16
	peers      []string
	announce   []string
	configFile string
	community  int
}

func addBGPFlags(fl *pflag.FlagSet, f *bgpFlags) {
	fl.StringVar(&f.asn, "bgp-asn", "", "run the embedded BGP speaker (GoBGP) with this AS number; needs --gateway")
	fl.StringVar(&f.routerID, "bgp-router-id", "", "BGP router id, A.B.C.D (default: the first --ip)")
	fl.Uint16Var(&f.listenPort, "bgp-listen-port", 179, "port to accept BGP sessions on; 0: outgoing sessions only")
	fl.StringArrayVar(&f.peers, "bgp-peer", nil, "BGP peer ADDR,ASN[,password=S][,multihop=N][,port=P], IPv4 or IPv6 (repeatable)")
	fl.StringArrayVar(&f.announce, "bgp-announce", nil, "prefix to announce instead of the community prefix (repeatable; the network aggregate is always announced)")
	fl.StringVar(&f.configFile, "bgp-config", "", "GoBGP configuration file (TOML, YAML or JSON) for policies and peers beyond the flags")
	fl.IntVar(&f.community, "bgp-community-bits", 0, "override the communities the network parameters publish: announce the network length + N first bits of this gateway's prefix as its community")
}

func (f *bgpFlags) config() (node.BGPConfig, error) {
	c := node.BGPConfig{ListenPort: f.listenPort, ConfigFile: f.configFile, CommunityBits: f.community}
	var err error
	if f.asn != "" {
		if c.ASN, err = bgp.ParseASN(f.asn); err != nil {
			return c, fmt.Errorf("--bgp-asn: %w", err)
		}
	}
	if f.routerID != "" {
		if c.RouterID, err = netip.ParseAddr(f.routerID); err != nil {
			return c, fmt.Errorf("--bgp-router-id: %w", err)
		}
	}
	for _, s := range f.peers {
		p, err := bgp.ParsePeer(s)
		if err != nil {
			return c, fmt.Errorf("--bgp-peer: %w", err)
		}
		c.Peers = append(c.Peers, p)
	}
	for _, s := range f.announce {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is6() {
			return c, fmt.Errorf("--bgp-announce %q: want an IPv6 prefix", s)
		}
		c.Announce = append(c.Announce, p.Masked())
	}
	return c, nil
}
