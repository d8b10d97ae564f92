package chain

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// Options choose the topology and the data plane.
type Options struct {
	Nodes   int               // at least 2
	Overlay bool              // load the data plane (false: plain reference only)
	Encap   loader.TunnelType // FOU or GRE, on every link unless Shapes says
	GREKey  bool
	// Shapes, when set, gives each link (Nodes-1 of them, left to right)
	// its own tunnel shape, for chains that mix encapsulations.
	Shapes []Shape
	Hook   loader.Hook
	// Attach is how the tc programs attach (tcx, legacy or auto: "" is
	// auto).
	Attach loader.AttachMode
	// IPv4 carries IPv4 over the overlay too: node i gets Overlay4 in
	// Network4 and routes to every other node's OverlayPrefix4.
	IPv4 bool
	// Queues is the number of TX and RX queues of every underlay veth
	// (0: one).
	Queues int
}

// Shape is the encapsulation of one link's tunnel.
type Shape struct {
	Encap  loader.TunnelType
	GREKey bool
}

func (s Shape) String() string {
	if s.GREKey {
		return s.Encap.String() + "+key"
	}
	return s.Encap.String()
}

// shape is link i's tunnel shape.
func (o *Options) shape(i int) Shape {
	if o.Shapes != nil {
		return o.Shapes[i]
	}
	return Shape{Encap: o.Encap, GREKey: o.GREKey}
}

// Node is one namespace of the chain.
type Node struct {
	NS *netns.NS
	// Overlay is the node's re6st address, Plain its reference IPv6
	// address (on the left link, or the right one for the first node).
	Overlay, Plain netip.Addr
	// Overlay4 is the node's IPv4 address on the overlay (Options.IPv4).
	Overlay4 netip.Addr
	// Left and Right are the underlay interfaces ("" at the ends).
	Left, Right string
	Datapath    *loader.Datapath
}

// Chain is a built topology.
type Chain struct {
	Nodes []*Node
}

// First and Last are the ends of the chain.
func (c *Chain) First() *Node { return c.Nodes[0] }
func (c *Chain) Last() *Node  { return c.Nodes[len(c.Nodes)-1] }

// LinkV4 and LinkV6 are the underlay addresses of side 1 (left node) or 2
// (right node) of link i, the link between nodes i and i+1.
func LinkV4(i int, side int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 41, byte(i + 1), byte(side)})
}
func LinkV6(i int, side int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("fd41:%x::%d", i+1, side))
}

// linkSubnetV6 is link i's plain IPv6 subnet.
func linkSubnetV6(i int) netip.Prefix { return netip.PrefixFrom(LinkV6(i, 0), 64) }

// OverlayPrefix is node i's /48.
func OverlayPrefix(i int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/48", i+1))
}

// Network is the whole overlay.
var Network = netip.MustParsePrefix("2001:db8::/32")

// OverlayPrefix4 is node i's IPv4 subnet, a /24 of Network4.
func OverlayPrefix4(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 42, byte(i + 1), 0}), 24)
}

// Network4 is the whole IPv4 overlay.
var Network4 = netip.MustParsePrefix("10.42.0.0/16")

// Build creates the chain for a test or benchmark; it is torn down when the
// test ends. Not root: the test is skipped.
func Build(tb testing.TB, o Options) *Chain {
	tb.Helper()
	netns.RequireRoot(tb)
	c, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// New creates the chain outside a test (needs root); Close tears it down.
func New(o Options) (*Chain, error) {
	if o.Shapes != nil && len(o.Shapes) != o.Nodes-1 {
		return nil, fmt.Errorf("%d shapes for %d links", len(o.Shapes), o.Nodes-1)
	}
	c := &Chain{}
	for i := 0; i < o.Nodes; i++ {
		ns, err := netns.New(netns.UniqueName(fmt.Sprintf("ch%d", i)))
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Nodes = append(c.Nodes, &Node{NS: ns})
	}
	if err := c.build(o); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Close removes the data planes and the namespaces (with their links).
func (c *Chain) Close() error {
	var errs []error
	for _, n := range c.Nodes {
		if n.Datapath != nil {
			n.Datapath.Close()
			errs = append(errs, loader.Down(n.NS.Name))
		}
		errs = append(errs, n.NS.Close())
	}
	return errors.Join(errs...)
}

func (c *Chain) build(o Options) error {
	n := len(c.Nodes)
	for i := 0; i+1 < n; i++ {
		a, b := c.Nodes[i], c.Nodes[i+1]
		a.Right, b.Left = fmt.Sprintf("r%d", i), fmt.Sprintf("l%d", i+1)
		if err := netns.VethQueues(a.NS, a.Right, b.NS, b.Left, o.Queues); err != nil {
			return err
		}
		for _, x := range []struct {
			node *Node
			dev  string
			side int
		}{{a, a.Right, 1}, {b, b.Left, 2}} {
			if err := x.node.NS.AddrAdd(x.dev, netip.PrefixFrom(LinkV4(i, x.side), 24)); err != nil {
				return err
			}
			if err := x.node.NS.AddrAdd(x.dev, netip.PrefixFrom(LinkV6(i, x.side), 64)); err != nil {
				return err
			}
		}
	}
	for i, node := range c.Nodes {
		if err := node.NS.Sysctl("net.ipv6.conf.all.forwarding", "1"); err != nil {
			return err
		}
		node.Plain = LinkV6(i-1, 2)
		if i == 0 {
			node.Plain = LinkV6(0, 1)
		}
		node.Overlay = OverlayPrefix(i).Addr().Next()
		if o.IPv4 {
			node.Overlay4 = OverlayPrefix4(i).Addr().Next()
		}
	}
	if err := c.RouteLinks(linkSubnetV6, LinkV6); err != nil {
		return err
	}
	if !o.Overlay {
		return nil
	}
	for i := range c.Nodes {
		if err := c.overlay(o, i); err != nil {
			return fmt.Errorf("node %d: %w", i, err)
		}
	}
	return nil
}

// RouteLinks gives every node a route to each link subnet not adjacent to
// it, through its neighbour on that side: subnet(k) is link k's subnet and
// addr(k, side) the address of its side 1 (left) or 2 (right). The plain
// reference routing uses it, and so can other links laid along the chain
// (e.g. tunnels of another VPN).
func (c *Chain) RouteLinks(subnet func(k int) netip.Prefix, addr func(k, side int) netip.Addr) error {
	n := len(c.Nodes)
	for i, node := range c.Nodes {
		for k := 0; k+1 < n; k++ {
			var via netip.Addr
			switch {
			case k < i-1:
				via = addr(i-1, 1)
			case k > i:
				via = addr(i, 2)
			default:
				continue
			}
			if _, err := node.NS.Run("ip", "-6", "route", "add", subnet(k).String(), "via", via.String()); err != nil {
				return err
			}
		}
	}
	return nil
}

const (
	tunnelLeft  = 1
	tunnelRight = 2
)

func (c *Chain) overlay(o Options, i int) error {
	node := c.Nodes[i]
	var underlays []string
	for _, u := range []string{node.Left, node.Right} {
		if u != "" {
			underlays = append(underlays, u)
		}
	}
	d, err := loader.Up(loader.Options{
		Instance: node.NS.Name, Netns: node.NS.Name, Hook: o.Hook, Attach: o.Attach, Underlays: underlays,
		Address: netip.PrefixFrom(node.Overlay, Network.Bits()),
	})
	if err != nil {
		return err
	}
	node.Datapath = d
	add := func(id uint32, link int, local, remote netip.Addr) error {
		sh := o.shape(link)
		t := loader.Tunnel{ID: id, Type: sh.Encap, Local: local, Remote: remote, MTU: uint16(d.State.MTU)}
		if sh.Encap == loader.FOU {
			t.Port = loader.DefaultFOUPort
		} else if sh.GREKey {
			t.HasKey, t.Key = true, 1000+uint32(link) // both ends of a link agree
		}
		if err := loader.InNetns(node.NS.Name, func() error { return loader.ResolveUnderlay(&t) }); err != nil {
			return err
		}
		return d.AddTunnel(t)
	}
	var errs []error
	if node.Left != "" {
		errs = append(errs, add(tunnelLeft, i-1, LinkV4(i-1, 2), LinkV4(i-1, 1)))
	}
	if node.Right != "" {
		errs = append(errs, add(tunnelRight, i, LinkV4(i, 1), LinkV4(i, 2)))
	}
	prefixes := []func(int) netip.Prefix{OverlayPrefix}
	if o.IPv4 {
		prefixes = append(prefixes, OverlayPrefix4)
		errs = append(errs, d.SetIPv4(netip.PrefixFrom(node.Overlay4, Network4.Bits())))
	}
	for _, prefix := range prefixes {
		errs = append(errs, d.AddRoute(prefix(i), netip.Prefix{}, loader.Nexthop{Local: true}))
		for j := range c.Nodes {
			if j == i {
				continue
			}
			id := uint32(tunnelRight)
			if j < i {
				id = tunnelLeft
			}
			errs = append(errs, d.AddRoute(prefix(j), netip.Prefix{}, loader.Nexthop{Tunnel: id}))
		}
	}
	return errors.Join(errs...)
}
