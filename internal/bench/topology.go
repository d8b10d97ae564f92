package bench

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

type kind int

const (
	kindPlain kind = iota
	kindBPF
	kindOpenVPN
)

// Variant is one way of carrying the traffic along the chain.
type Variant struct {
	Name  string
	kind  kind
	encap loader.TunnelType
	hook  loader.Hook
	proto string // OpenVPN: udp or tcp
}

// Variants are measured in this order; the first is the reference.
var Variants = []Variant{
	{Name: Reference},
	{Name: "fou-tc", kind: kindBPF, encap: loader.FOU, hook: loader.HookTC},
	{Name: "fou-xdp", kind: kindBPF, encap: loader.FOU, hook: loader.HookXDP},
	{Name: "gre-tc", kind: kindBPF, encap: loader.GRE, hook: loader.HookTC},
	{Name: "gre-xdp", kind: kindBPF, encap: loader.GRE, hook: loader.HookXDP},
	{Name: "openvpn-udp", kind: kindOpenVPN, proto: "udp"},
	{Name: "openvpn-tcp", kind: kindOpenVPN, proto: "tcp"},
}

// topology is a variant built on a chain: the workloads run from its first
// node to dst on its last.
type topology struct {
	v     Variant
	chain *chain.Chain
	dst   netip.Addr
	// The generator sends genFrame, one small UDP datagram to dst as it
	// leaves the first node, on the first node's genDev.
	genDev   string
	genFrame []byte
	stopVPN  func()
}

// linkInfo returns an interface's index and MAC inside ns.
func linkInfo(ns *netns.NS, name string) (int, net.HardwareAddr, error) {
	var idx int
	var mac net.HardwareAddr
	err := ns.Do(func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", ns.Name, name, err)
		}
		idx, mac = l.Attrs().Index, l.Attrs().HardwareAddr
		return nil
	})
	return idx, mac, err
}

// build sets up variant v on a new chain of nodes.
func build(v Variant, nodes int, pki string) (_ *topology, err error) {
	c, err := chain.New(chain.Options{Nodes: nodes, Overlay: v.kind == kindBPF, Encap: v.encap, Hook: v.hook})
	if err != nil {
		return nil, err
	}
	t := &topology{v: v, chain: c}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	first, second := c.First(), c.Nodes[1]
	var src netip.Addr
	peerDev := second.Left
	switch v.kind {
	case kindPlain:
		src, t.dst, t.genDev = first.Plain, c.Last().Plain, first.Right
	case kindBPF:
		src, t.dst, t.genDev = first.Overlay, c.Last().Overlay, first.Right
	case kindOpenVPN:
		if t.stopVPN, err = startOpenVPN(c, v.proto, pki); err != nil {
			return nil, err
		}
		src, t.dst, t.genDev, peerDev = vpnAddr(0, 1), vpnAddr(nodes-2, 2), vpnDev(0), vpnDev(0)
	}
	pkt, err := udp6(src, t.dst, smallPayload)
	if err != nil {
		return nil, err
	}
	if v.kind == kindBPF {
		if pkt, err = encapsulate(v.encap, chain.LinkV4(0, 1), chain.LinkV4(0, 2), pkt); err != nil {
			return nil, err
		}
	}
	_, srcMAC, err := linkInfo(first.NS, t.genDev)
	if err != nil {
		return nil, err
	}
	_, dstMAC, err := linkInfo(second.NS, peerDev)
	if err != nil {
		return nil, err
	}
	t.genFrame, err = ethernet(srcMAC, dstMAC, pkt)
	return t, err
}

func (t *topology) close() {
	if t.stopVPN != nil {
		t.stopVPN()
	}
	t.chain.Close()
}

// reachable pings dst until it answers: tunnels are up, neighbours
// resolved, and the XDP data plane has learnt its tunnels' link layers.
func (t *topology) reachable(timeout time.Duration) error {
	return pingUntil(t.chain.First().NS, t.dst, timeout)
}

func pingUntil(ns *netns.NS, dst netip.Addr, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := ns.Run("ping", "-n", "-c", "3", "-i", "0.05", "-W", "1", dst.String())
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s unreachable after %s: %s", dst, timeout, out)
		}
	}
}
