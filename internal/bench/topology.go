package bench

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
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
	// shapes, for a mixed chain, is the tunnel shape of each link (the
	// variant is measured only on chains with that many links).
	shapes []chain.Shape
	hook   loader.Hook
	proto  string // OpenVPN: udp or tcp
	// cipher is OpenVPN's data-channel cipher ("": none, as re6st runs
	// it in a network that does not encrypt).
	cipher string
	// wireguard: every link is a WireGuard device tunnel (the kernel's
	// where it has one, wireguard-go otherwise) in the data plane.
	wireguard bool
	// ipv4: the workloads run over the overlay's IPv4 payload.
	ipv4 bool
}

// Link shapes of the mixed chains.
var (
	fou    = chain.Shape{Encap: loader.FOU}
	gre    = chain.Shape{Encap: loader.GRE}
	greKey = chain.Shape{Encap: loader.GRE, GREKey: true}
)

// mixed is the re6st-bpf variant whose links have shapes, one each, named
// after them and the hook: "fou/gre+key/gre-tc".
func mixed(hook loader.Hook, shapes ...chain.Shape) Variant {
	names := make([]string, len(shapes))
	for i, sh := range shapes {
		names[i] = sh.String()
	}
	return Variant{Name: strings.Join(names, "/") + "-" + string(hook), kind: kindBPF, shapes: shapes, hook: hook}
}

// Variants are measured in this order; the first is the reference. The
// mixed chains change the tunnel shape at every transit node: FOU to keyed
// GRE to plain GRE (three shapes), and FOU to GRE and back.
var Variants = []Variant{
	{Name: Reference},
	{Name: "fou-tc", kind: kindBPF, encap: loader.FOU, hook: loader.HookTC},
	{Name: "fou-xdp", kind: kindBPF, encap: loader.FOU, hook: loader.HookXDP},
	{Name: "gre-tc", kind: kindBPF, encap: loader.GRE, hook: loader.HookTC},
	{Name: "gre-xdp", kind: kindBPF, encap: loader.GRE, hook: loader.HookXDP},
	mixed(loader.HookTC, fou, greKey, gre),
	mixed(loader.HookXDP, fou, greKey, gre),
	mixed(loader.HookTC, fou, gre, fou),
	mixed(loader.HookXDP, fou, gre, fou),
	{Name: "fou-tc-ipv4", kind: kindBPF, encap: loader.FOU, hook: loader.HookTC, ipv4: true},
	{Name: "fou-xdp-ipv4", kind: kindBPF, encap: loader.FOU, hook: loader.HookXDP, ipv4: true},
	{Name: "openvpn-udp", kind: kindOpenVPN, proto: "udp"},
	{Name: "openvpn-tcp", kind: kindOpenVPN, proto: "tcp"},
	// The encrypting ones: WireGuard in the data plane, OpenVPN with the
	// cipher re6st's OpenVPN 2.6 negotiates when the network encrypts.
	{Name: "wireguard-tc", kind: kindBPF, encap: loader.FOU, hook: loader.HookTC, wireguard: true},
	{Name: "openvpn-udp-aes", kind: kindOpenVPN, proto: "udp", cipher: aesCipher},
	{Name: "openvpn-tcp-aes", kind: kindOpenVPN, proto: "tcp", cipher: aesCipher},
}

// aesCipher is OpenVPN 2.6's first default data cipher.
const aesCipher = "AES-256-GCM"

// generates: the small-UDP generator can make the frame the first link
// carries (not WireGuard's, which is encrypted).
func generates(v Variant, _ int) bool { return !v.wireguard }

// comparedWith names the variants v is compared with: for a mixed chain,
// the single-shape variants of the same hook, one per encapsulation it
// mixes; for an IPv4 variant, the IPv6 one of the same shape and hook.
func (v Variant) comparedWith() []string {
	if v.ipv4 {
		return []string{strings.TrimSuffix(v.Name, "-ipv4")}
	}
	var out []string
	for _, sh := range v.shapes {
		if name := sh.Encap.String() + "-" + string(v.hook); !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// variantsFor lists the variants measured on a chain of hops links.
func variantsFor(hops int) []Variant {
	var out []Variant
	for _, v := range Variants {
		if v.shapes == nil || len(v.shapes) == hops {
			out = append(out, v)
		}
	}
	return out
}

// topology is a variant built on a chain: the workloads run from its first
// node to dst on its last.
type topology struct {
	v     Variant
	chain *chain.Chain
	dst   netip.Addr
	cpus  pinning
	// The generator sends genFrame, one small UDP datagram to dst as it
	// leaves the first node, on the first node's genDev.
	genDev   string
	genFrame []byte
	// stopExtra stops what runs beside the chain: OpenVPN, a gateway's
	// upstream program.
	stopExtra func()
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

// tunnelTo is node's tunnel to remote.
func tunnelTo(node *chain.Node, remote netip.Addr) (loader.Tunnel, error) {
	tunnels, err := node.Datapath.Tunnels()
	if err != nil {
		return loader.Tunnel{}, err
	}
	for _, t := range tunnels {
		if t.Remote == remote {
			return t, nil
		}
	}
	return loader.Tunnel{}, fmt.Errorf("%s: no tunnel to %s", node.NS.Name, remote)
}

// build sets up variant v on a new chain of nodes, its tests pinned as
// cpus says.
func build(v Variant, nodes int, pki string, cpus pinning) (_ *topology, err error) {
	c, err := chain.New(chain.Options{Nodes: nodes, Overlay: v.kind == kindBPF, Encap: v.encap, Shapes: v.shapes, Hook: v.hook, IPv4: v.ipv4})
	if err != nil {
		return nil, err
	}
	t := &topology{v: v, chain: c, cpus: cpus}
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
		src, t.dst, t.genDev = t.overlayAddr(first), t.overlayAddr(c.Last()), first.Right
		if v.wireguard {
			t.stopExtra, err = wireguardLinks(c)
			return t, err
		}
	case kindOpenVPN:
		if t.stopExtra, err = startOpenVPN(c, v.proto, v.cipher, pki); err != nil {
			return nil, err
		}
		src, t.dst, t.genDev, peerDev = vpnAddr(0, 1), vpnAddr(nodes-2, 2), vpnDev(0), vpnDev(0)
	}
	pkt, err := udp(src, t.dst, smallPayload)
	if err != nil {
		return nil, err
	}
	if v.kind == kindBPF {
		tun, err := tunnelTo(first, chain.LinkV4(0, 2))
		if err != nil {
			return nil, err
		}
		if pkt, err = encapsulate(tun, pkt); err != nil {
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

// wireguardLinks makes every link of c a WireGuard device tunnel; stop
// removes them.
func wireguardLinks(c *chain.Chain) (stop func(), err error) {
	var links []*chain.WireGuardLink
	stop = func() {
		for _, l := range links {
			l.Close()
		}
	}
	for k := 0; k+1 < len(c.Nodes); k++ {
		l, err := c.WireGuardLink(k)
		if err != nil {
			stop()
			return nil, err
		}
		links = append(links, l)
	}
	return stop, nil
}

// overlayAddr is node's overlay address in the variant's family.
func (t *topology) overlayAddr(node *chain.Node) netip.Addr {
	if t.v.ipv4 {
		return node.Overlay4
	}
	return node.Overlay
}

func (t *topology) close() {
	if t.stopExtra != nil {
		t.stopExtra()
	}
	t.chain.Close()
}

// reachable pings dst until it answers: tunnels are up, neighbours
// resolved, and the XDP data plane has learnt its tunnels' link layers.
func (t *topology) reachable(timeout time.Duration) error {
	return pingUntil(t.chain.First().NS, t.dst, timeout)
}

// pingSummary is ping's statistics line ("3 packets transmitted, 0
// received, …"), or err when it printed none.
func pingSummary(out string, err error) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "packets transmitted") {
			return l
		}
	}
	return fmt.Sprint(err)
}

func pingUntil(ns *netns.NS, dst netip.Addr, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := ns.Run("ping", "-n", "-c", "3", "-i", "0.05", "-W", "1", dst.String())
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s unreachable after %s (%s)", dst, timeout, pingSummary(out, err))
		}
	}
}
