package node

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// nodeClass is one traffic class of the network as this node applies it
// (docs/traffic-classes.md).
type nodeClass struct {
	ID uint8 `json:"id"`
	netparams.TrafficClass
	// Prefix is this node's prefix in the class range (its certificate's
	// subnet bits under the range), Address its address there.
	Prefix  netip.Prefix `json:"prefix"`
	Address netip.Addr   `json:"address"`
}

// deriveClasses gives the node (prefix in network) its prefix and address
// in each class range; class ids follow the registry's order from 1.
func deriveClasses(network, prefix netip.Prefix, classes []netparams.TrafficClass) ([]nodeClass, error) {
	if err := netparams.ValidateClasses(network, classes); err != nil {
		return nil, fmt.Errorf("network parameters: %w", err)
	}
	out := make([]nodeClass, len(classes))
	for i, c := range classes {
		p, err := netparams.ClassPrefix(network, prefix, c.Range)
		if err != nil {
			return nil, fmt.Errorf("traffic class %s: %w", c.Name, err)
		}
		out[i] = nodeClass{ID: uint8(i + 1), TrafficClass: c, Prefix: p, Address: nodeproto.NodeAddr(p)}
	}
	return out, nil
}

// classOf is the id of the class whose range holds dst, 0 for none: the
// class the data plane applies to packets routed to dst.
func classOf(classes []nodeClass, dst netip.Prefix) uint8 {
	for _, c := range classes {
		if c.holds(dst) {
			return c.ID
		}
	}
	return 0
}

// holds: dst lies in the class's range.
func (c *nodeClass) holds(dst netip.Prefix) bool {
	return c.Range.Bits() <= dst.Bits() && c.Range.Contains(dst.Addr())
}

// setupClasses applies the network's traffic classes at start: each class
// in the data plane, and this node's address and prefix in its range
// (addClassPrefix).
func (n *Node) setupClasses() error {
	classes, _ := n.payload.get()
	if err := n.routeClasses(classes); err != nil {
		return err
	}
	for _, c := range classes {
		if err := n.dp.SetClass(dataplaneClass(c)); err != nil {
			return fmt.Errorf("traffic class %s: %w", c.Name, err)
		}
		if err := n.addClassPrefix(c); err != nil {
			return err
		}
	}
	return nil
}

// routeClasses has Babel route each class's range with the class's cost:
// its metric, and its own tunnels first when --class-peer names them
// (docs/traffic-classes.md, "Routing per class").
func (n *Node) routeClasses(classes []nodeClass) error {
	out := make([]babel.Class, 0, len(classes))
	for _, c := range classes {
		_, restricted := n.cfg.ClassPeers[c.Name]
		out = append(out, babel.Class{Name: c.Name, Range: c.Range,
			Latency: c.Metric == netparams.MetricLatency, Restricted: restricted})
	}
	for name := range n.cfg.ClassPeers {
		if !slices.ContainsFunc(classes, func(c nodeClass) bool { return c.Name == name }) {
			n.log.Warn().Str("class", name).Msg("--class-peer names a class the network does not have")
		}
	}
	return n.router.SetClasses(out)
}

// ownClasses names the classes whose own tunnel a tunnel to the peer of
// subnet bits is (--class-peer names the peer by CN or bits).
func (n *Node) ownClasses(bits string) []string {
	var out []string
	for name, peers := range n.cfg.ClassPeers {
		if slices.Contains(peers, bits) || slices.Contains(peers, wire.CommonName(bits)) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// tunnelInterface is the Babel configuration of a tunnel to the peer of
// subnet bits: babelInterface's, and the classes whose own it is.
func (n *Node) tunnelInterface(bits string) babel.InterfaceConfig {
	cfg := n.babelInterface(babel.LinkTunnel)
	cfg.Classes = n.ownClasses(bits)
	return cfg
}

// ClassStatus is a traffic class as `re6stnet status` shows it: this
// node's prefix and address in it, the data plane's counters of its
// packets, and the routes Babel selected into its range.
type ClassStatus struct {
	ID uint8 `json:"id"`
	netparams.TrafficClass
	Prefix  netip.Prefix `json:"prefix"`
	Address netip.Addr   `json:"address"`
	// Peers are the peers whose tunnels are the class's own
	// (--class-peer); none: every tunnel is.
	Peers   []string          `json:"own_peers,omitempty"`
	Traffic loader.ClassStats `json:"traffic"`
	Routes  []RouteStatus     `json:"routes"`
}

// classStatuses lists the classes, with the selected routes among routes
// that fall in each range.
func (n *Node) classStatuses(routes []RouteStatus) []ClassStatus {
	classes, _ := n.payload.get()
	out := make([]ClassStatus, 0, len(classes))
	for _, c := range classes {
		cs := ClassStatus{ID: c.ID, TrafficClass: c.TrafficClass, Prefix: c.Prefix, Address: c.Address,
			Peers: n.cfg.ClassPeers[c.Name], Routes: []RouteStatus{}}
		cs.Traffic, _ = n.dp.ClassCounters(c.ID)
		for _, r := range routes {
			if p, err := netip.ParsePrefix(r.Prefix); err == nil && c.holds(p) {
				cs.Routes = append(cs.Routes, r)
			}
		}
		out = append(out, cs)
	}
	return out
}
