package node

import (
	"fmt"
	"net/netip"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
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

// setupClasses applies the network's traffic classes: each class in the
// data plane, this node's address in each range on the overlay device (the
// range's length, so the kernel routes the whole range to the overlay as it
// does the network), its prefix there delivered locally and announced by
// Babel.
func (n *Node) setupClasses() error {
	for _, c := range n.classes {
		if err := n.dp.SetClass(loader.Class{ID: c.ID, DSCP: uint8(c.DSCP), Priority: uint32(c.Priority), Rate: c.Rate}); err != nil {
			return fmt.Errorf("traffic class %s: %w", c.Name, err)
		}
		if err := n.dp.AddOverlayAddress(netip.PrefixFrom(c.Address, c.Range.Bits())); err != nil {
			return fmt.Errorf("traffic class %s: %w", c.Name, err)
		}
		if err := n.routes.SetLocal(c.Prefix); err != nil {
			return fmt.Errorf("traffic class %s: %w", c.Name, err)
		}
		if err := n.router.Export(c.Prefix, netip.Prefix{}, 0); err != nil {
			return fmt.Errorf("traffic class %s: %w", c.Name, err)
		}
		n.log.Info().Str("class", c.Name).Stringer("prefix", c.Prefix).Msg("traffic class")
	}
	return nil
}

// ClassStatus is a traffic class as `re6stnet status` shows it: this
// node's prefix and address in it, the data plane's counters of its
// packets, and the routes Babel selected into its range.
type ClassStatus struct {
	ID uint8 `json:"id"`
	netparams.TrafficClass
	Prefix  netip.Prefix      `json:"prefix"`
	Address netip.Addr        `json:"address"`
	Traffic loader.ClassStats `json:"traffic"`
	Routes  []RouteStatus     `json:"routes"`
}

// classStatuses lists the classes, with the selected routes among routes
// that fall in each range.
func (n *Node) classStatuses(routes []RouteStatus) []ClassStatus {
	out := make([]ClassStatus, 0, len(n.classes))
	for _, c := range n.classes {
		cs := ClassStatus{ID: c.ID, TrafficClass: c.TrafficClass, Prefix: c.Prefix, Address: c.Address, Routes: []RouteStatus{}}
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
