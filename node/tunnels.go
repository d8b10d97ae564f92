package node

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/re6st-bpf/re6st-bpf/internal/secfile"
	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/re6st-bpf/re6st-bpf/tunnels/control"
	"github.com/re6st-bpf/re6st-bpf/tunnels/manager"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/vishvananda/netlink"
)

// managerConfig wires the tunnel manager to the node's parts.
func (n *Node) managerConfig() manager.Config {
	return manager.Config{
		Self: n.id.bits, Network: n.id.network, Encap: n.cfg.Encap.String(), Types: n.cfg.TunnelTypes,
		FOUPort: n.cfg.FOUPort, PeerPort: loader.DefaultFOUPort, Neighbours: n.cfg.Neighbours,
		Tick: n.cfg.TickInterval, Saved: n.loadTunnels(), SavedAt: n.stoppedAt, Save: n.saveTunnels,
		Backend: n.backend, Babel: n.links, Protocol: n.proto, Cache: n.cache,
		Registry: (*bootstrapRegistry)(n), Params: n.params, Countries: (*countries)(n),
		RegistryBits:  func() string { return n.params.get().RegistryPrefix },
		OtherIncoming: n.serverClientCount,
		Logger:        n.log.With().Str("part", "tunnels").Logger(),
	}
}

// Files of the state directory besides the peer cache: the tunnels to take
// over after a restart, and the signed network parameters.
const (
	tunnelsFile = "tunnels.json"
	paramsFile  = "network-parameters"
)

func (n *Node) statePath() string { return filepath.Join(n.cfg.StateDir, tunnelsFile) }

// loadTunnels reads the table a previous run saved.
func (n *Node) loadTunnels() []manager.Tunnel {
	var saved []manager.Tunnel
	if data, err := os.ReadFile(n.statePath()); err == nil {
		if err := json.Unmarshal(data, &saved); err != nil {
			n.log.Warn().Err(err).Msg("tunnel state unreadable")
		}
	}
	return saved
}

// saveTunnels records the table, so that a restarted daemon takes over
// the data plane's tunnels instead of tearing them down.
func (n *Node) saveTunnels(list []manager.Tunnel) error {
	data, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(n.statePath(), data, secfile.FileMode)
}

// bpfBackend is the tunnel backend of the BPF data plane: FOU and GRE
// encapsulation by the data plane's programs.
type bpfBackend Node

// Carries implements manager.Backend: FOU and GRE.
func (b *bpfBackend) Carries(encap string) bool {
	typ, err := loader.ParseTunnelType(encap)
	return err == nil && typ != loader.DEVICE
}

// Keyed implements manager.Backend: GRE tunnels carry the key the
// requester proposed.
func (b *bpfBackend) Keyed(encap string) bool { return encap == nodeproto.ProtoGRE }

// LocalFor implements manager.Backend: the source the kernel picks.
func (b *bpfBackend) LocalFor(remote netip.Addr) (netip.Addr, error) {
	routes, err := netlink.RouteGet(net.IP(remote.AsSlice()))
	if err != nil || len(routes) == 0 {
		return netip.Addr{}, fmt.Errorf("no IPv4 route to %s", remote)
	}
	a, ok := netip.AddrFromSlice(routes[0].Src.To4())
	if !ok {
		return netip.Addr{}, fmt.Errorf("no source address towards %s", remote)
	}
	return a, nil
}

// Add implements manager.Backend.
func (b *bpfBackend) Add(id uint32, ep manager.Endpoint) error {
	typ, err := loader.ParseTunnelType(ep.Encap)
	if err != nil {
		return err
	}
	lt := loader.Tunnel{ID: id, Type: typ, Local: ep.Local, Remote: ep.Remote.Addr(), Port: ep.Remote.Port(),
		FixedSourcePort: ep.NAT, MTU: uint16(b.dp.State.MTU)}
	if typ == loader.GRE {
		lt.HasKey, lt.Key = true, ep.Key
	}
	if err := loader.ResolveUnderlay(&lt); err != nil {
		return err
	}
	return b.dp.AddTunnel(lt)
}

// Remove implements manager.Backend: the routes into the tunnel go first.
func (b *bpfBackend) Remove(id uint32) error {
	b.fibw.Forget(id)
	return b.dp.DeleteTunnel(id)
}

// List implements manager.Backend.
func (b *bpfBackend) List() (map[uint32]manager.Endpoint, error) {
	list, err := b.dp.Tunnels()
	if err != nil {
		return nil, err
	}
	out := make(map[uint32]manager.Endpoint, len(list))
	for _, lt := range list {
		out[lt.ID] = manager.Endpoint{Encap: lt.Type.String(), Local: lt.Local,
			Remote: netip.AddrPortFrom(lt.Remote, lt.Port), Key: lt.Key, NAT: lt.FixedSourcePort}
	}
	return out, nil
}

// links are Babel's interfaces over the tunnels: they implement
// manager.Babel for the tunnel manager, control.Links for the control
// traffic, and the fib's tunnel lookup.
type links struct {
	n *Node

	mu   sync.Mutex
	byID map[uint32]link
}

type link struct {
	to  control.Tunnel
	p2p *babel.PointToPoint
}

func newLinks(n *Node) *links { return &links{n: n, byID: map[uint32]link{}} }

// Drain multipliers (units of 1/256): a tunnel being removed costs 16
// times more, so that Babel moves every route it can elsewhere.
const (
	drainMultiplier  = 16 * 256
	normalMultiplier = 256
)

// Attach implements manager.Babel.
func (l *links) Attach(t manager.Tunnel) error {
	if t.Endpoint.Encap == nodeproto.ProtoWireGuard {
		return l.attachDevice(t, wgDeviceName(t.ID))
	}
	if _, ok := openvpnTypes[t.Endpoint.Encap]; ok {
		return l.attachTAP(t.Interface(), t.ID, t.Endpoint.Encap)
	}
	to := control.Tunnel{Remote: t.Endpoint.Remote, GRE: t.Endpoint.Encap == nodeproto.ProtoGRE, Key: t.Endpoint.Key}
	local := l.n.linkLocal()
	p2p := babel.NewPointToPoint(local, func(dst netip.Addr, pkt []byte) error {
		return l.n.conn.SendBabel(to, local, dst, pkt)
	})
	l.mu.Lock()
	l.byID[t.ID] = link{to: to, p2p: p2p}
	l.mu.Unlock()
	if err := l.n.router.AddInterface(t.Interface(), l.n.tunnelInterface(t.Bits), p2p); err != nil {
		l.forget(t.ID)
		return err
	}
	return nil
}

// Detach implements manager.Babel.
func (l *links) Detach(t manager.Tunnel) error {
	l.forget(t.ID)
	return l.n.router.RemoveInterface(t.Interface())
}

func (l *links) forget(id uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byID, id)
}

// SetDraining implements manager.Babel.
func (l *links) SetDraining(ifname string, draining bool) {
	m := uint16(normalMultiplier)
	if draining {
		m = drainMultiplier
	}
	if err := l.n.router.SetCostMultiplier(ifname, netip.Addr{}, m); err != nil {
		l.n.log.Warn().Err(err).Str("interface", ifname).Msg("cost multiplier")
	}
}

// Routes implements manager.Babel.
func (l *links) Routes() []manager.Route {
	var out []manager.Route
	for _, r := range l.n.router.Dump().Routes {
		if r.Selected {
			out = append(out, manager.Route{Prefix: r.Prefix, Source: r.Source, Interface: r.Interface, Refmetric: r.Refmetric})
		}
	}
	return out
}

// LANPrefixes implements manager.Babel: the prefixes LAN neighbours
// announce as their own, with a finite metric.
func (l *links) LANPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, r := range l.n.router.Dump().Routes {
		if r.Refmetric == 0 && r.Metric < babel.Infinity && r.Interface != "" && manager.IDOf(r.Interface) == 0 && !r.Source.IsValid() {
			out = append(out, r.Prefix)
		}
	}
	return out
}

// Usable implements manager.Babel.
func (l *links) Usable() map[string]bool {
	usable := map[string]bool{}
	for _, nb := range l.n.router.Dump().Neighbours {
		if nb.Cost < babel.Infinity {
			usable[nb.Interface] = true
		}
	}
	return usable
}

// ByEndpoint implements control.Links, as the data plane's endpoint map
// matches: remote, encapsulation, GRE key.
func (l *links) ByEndpoint(remote netip.Addr, gre bool, key uint32) (control.Link, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range l.byID {
		if k.to.Remote.Addr() == remote && k.to.GRE == gre && (!gre || k.to.Key == key) {
			return k.p2p, true
		}
	}
	return nil, false
}

// tunnelOf maps a Babel next hop to its data-plane tunnel (fib's
// TunnelLookup): on an OpenVPN TAP device, the neighbour's (tapTunnels).
func (l *links) tunnelOf(ifname string, neighbour netip.Addr) (uint32, bool) {
	if id, ok := l.n.taps.lookup(ifname, neighbour); ok {
		return id, true
	}
	id := manager.IDOf(ifname)
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.byID[id]
	return id, ok
}

// linkLocal is this node's address on every tunnel (each tunnel has one
// peer, so one address per node is enough): fe80::/64 and 64 bits of a
// hash of our prefix.
func (n *Node) linkLocal() netip.Addr {
	h := sha256.Sum256([]byte(n.id.bits))
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	copy(a[8:], h[:8])
	return netip.AddrFrom16(a)
}

// babelInterface is the Babel configuration of tunnels and LANs: re6st's
// (RTT metric with the network's babel_default on tunnels), the network's
// hello interval and MAC keys.
func (n *Node) babelInterface(t babel.LinkType) babel.InterfaceConfig {
	cfg := babel.DefaultInterfaceConfig(t)
	cfg.HelloInterval = n.params.Hello()
	cfg.UpdateInterval = 4 * n.params.Hello()
	if t == babel.LinkTunnel {
		cfg.RTT = babel.Re6stRTT
	}
	cfg.Auth = n.babelAuth()
	return cfg
}

func (n *Node) babelAuth() *babel.Auth {
	p := n.params.get()
	sign, accept := p.BabelHMACSign, p.BabelHMACAccept
	if !sign.Set && !accept.Set {
		return nil
	}
	auth := &babel.Auth{}
	for _, slot := range []struct {
		s    bool
		key  []byte
		sign bool
	}{{sign.Set, sign.Key, true}, {accept.Set, accept.Key, false}} {
		switch {
		case !slot.s:
		case len(slot.key) == 0:
			auth.Permissive = true
		case slot.sign:
			auth.Sign = append(auth.Sign, babel.Key{Algorithm: babel.BLAKE2s128, Secret: slot.key})
		default:
			auth.Accept = append(auth.Accept, babel.Key{Algorithm: babel.BLAKE2s128, Secret: slot.key})
		}
	}
	return auth
}

// addLAN runs Babel natively on a LAN interface (-i).
func (n *Node) addLAN(ifname string) error {
	tr, err := babel.ListenUDP(ifname)
	if err != nil {
		return fmt.Errorf("-i %s: %w", ifname, err)
	}
	n.routes.AddLAN(ifname)
	return n.router.AddInterface(ifname, n.babelInterface(babel.LinkWired), tr)
}

// ipv4Interfaces lists the up interfaces with an IPv4 address, lo excluded.
func ipv4Interfaces() ([]string, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range links {
		if l.Attrs().Flags&net.FlagLoopback != 0 || l.Attrs().Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err == nil && len(addrs) > 0 {
			out = append(out, l.Attrs().Name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no interface with an IPv4 address: give --underlay")
	}
	return out, nil
}

// advertised is our address list for peers and the registry.
func (n *Node) advertised() []nodeproto.Address {
	ips := n.cfg.IPs
	if len(ips) == 0 {
		for _, name := range n.dp.State.Underlays() {
			l, err := netlink.LinkByName(name)
			if err != nil {
				continue
			}
			addrs, _ := netlink.AddrList(l, netlink.FAMILY_V4)
			for _, a := range addrs {
				if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
					ips = append(ips, ip)
				}
			}
		}
	}
	var out []nodeproto.Address
	for _, ip := range ips {
		if !ip.IsGlobalUnicast() {
			continue // link-local and the like: no peer reaches us there, and the registry refuses them
		}
		if n.cfg.Encap == loader.GRE || slices.Contains(n.cfg.TunnelTypes, nodeproto.ProtoGRE) {
			out = append(out, nodeproto.Address{IP: ip, Proto: nodeproto.ProtoGRE})
		}
		out = append(out, nodeproto.Address{IP: ip, Port: n.cfg.FOUPort, Proto: nodeproto.ProtoFOU})
		if n.cfg.offersWireGuard() {
			out = append(out, nodeproto.Address{IP: ip, Port: n.cfg.WireGuardPort, Proto: nodeproto.ProtoWireGuard})
		}
		for _, t := range []string{nodeproto.ProtoOpenVPNTCP, nodeproto.ProtoOpenVPNUDP} {
			if n.cfg.offersOpenVPN(t) {
				out = append(out, nodeproto.Address{IP: ip, Port: n.cfg.OpenVPNPort, Proto: t})
			}
		}
	}
	return n.withCountry(append(out, n.ipv6Items()...))
}

// protoHandler answers the node protocol's requests.
type protoHandler Node

func (h *protoHandler) Version() []byte { return h.params.get().SignedVersion }

func (h *protoHandler) NewerVersion(_ nodeproto.Peer, signed []byte) { h.params.newerVersion(signed) }

func (h *protoHandler) Addresses() []nodeproto.Address { return (*Node)(h).advertised() }

func (h *protoHandler) Topology() string {
	var out, in []string
	for _, t := range h.tunnels.Tunnels() {
		if t.Outgoing {
			out = append(out, wire.CommonName(t.Bits))
		} else {
			in = append(in, wire.CommonName(t.Bits))
		}
	}
	return strings.Join(append([]string{fmt.Sprint(len(out))}, append(out, in...)...), " ")
}

func (h *protoHandler) TunnelSetup(peer nodeproto.Peer, req nodeproto.TunnelRequest) nodeproto.TunnelReply {
	return h.tunnels.Accept(peer, req)
}

func (h *protoHandler) TunnelKill(peer nodeproto.Peer) bool { return h.tunnels.Kill(peer) }

// KeyBinding implements nodeproto.BindingHandler: a peer rotated its
// WireGuard key.
func (h *protoHandler) KeyBinding(peer nodeproto.Peer, binding []byte) error {
	if h.backend == nil || h.backend.wg == nil {
		return errNoWireGuard
	}
	return h.backend.wg.takeBinding(peer, binding)
}
