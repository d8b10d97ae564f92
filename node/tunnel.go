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
	"strconv"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/vishvananda/netlink"
)

// tunnel is one tunnel of the mesh: a data-plane tunnel and the Babel
// interface that runs over it.
type tunnel struct {
	ID       uint32        `json:"id"`
	Peer     netip.Prefix  `json:"peer"`
	Bits     string        `json:"bits"`
	Serial   uint64        `json:"serial,omitempty"` // peer certificate, for the CRL
	Outgoing bool          `json:"outgoing"`
	Created  time.Time     `json:"created"`
	Tunnel   loader.Tunnel `json:"tunnel"`

	lt       loader.Tunnel
	link     *babel.PointToPoint
	draining bool
	usable   time.Time // when Babel last had a finite cost to the peer
}

func (t *tunnel) ifname() string { return "t" + strconv.FormatUint(uint64(t.ID), 10) }

// tunnelIfID is the tunnel id of a Babel interface name, 0 if not a tunnel.
func tunnelIfID(ifname string) uint32 {
	id, err := strconv.ParseUint(strings.TrimPrefix(ifname, "t"), 10, 32)
	if !strings.HasPrefix(ifname, "t") || err != nil {
		return 0
	}
	return uint32(id)
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

// tunnelInterface is the Babel configuration of tunnels: re6st's (RTT
// metric with the network's babel_default), the network's hello interval
// and MAC keys.
func (n *Node) babelInterface(t babel.LinkType) babel.InterfaceConfig {
	cfg := babel.DefaultInterfaceConfig(t)
	cfg.HelloInterval = n.hello()
	cfg.UpdateInterval = 4 * n.hello()
	if t == babel.LinkTunnel {
		cfg.RTT = babel.Re6stRTT
	}
	cfg.Auth = n.babelAuth()
	return cfg
}

func (n *Node) babelAuth() *babel.Auth {
	p := n.params()
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

// localFor is our underlay address towards remote: the source the kernel
// picks.
func localFor(remote netip.Addr) (netip.Addr, error) {
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

var errDuplicate = errors.New("a tunnel with that peer exists")

// openTunnel creates the data-plane tunnel and its Babel interface.
func (n *Node) openTunnel(t *tunnel) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.tunnelToLocked(t.Bits) != nil {
		return errDuplicate
	}
	if t.ID == 0 {
		t.ID = n.freeIDLocked()
	}
	t.lt.ID = t.ID
	if t.lt.MTU == 0 {
		t.lt.MTU = uint16(n.dp.State.MTU)
	}
	if err := loader.ResolveUnderlay(&t.lt); err != nil {
		return err
	}
	if err := n.dp.AddTunnel(t.lt); err != nil {
		return err
	}
	if err := n.attachBabel(t); err != nil {
		n.dp.DeleteTunnel(t.ID)
		return err
	}
	if t.Created.IsZero() {
		t.Created = time.Now()
	}
	n.tunnels[t.ID] = t
	n.saveTunnelsLocked()
	n.log.Info().Uint32("tunnel", t.ID).Stringer("peer", t.Peer).Stringer("remote", t.lt.Remote).
		Stringer("encap", t.lt.Type).Bool("outgoing", t.Outgoing).Msg("tunnel up")
	return nil
}

func (n *Node) attachBabel(t *tunnel) error {
	t.link = babel.NewPointToPoint(n.linkLocal(), func(dst netip.Addr, pkt []byte) error {
		return n.sendBabel(t, dst, pkt)
	})
	return n.router.AddInterface(t.ifname(), n.babelInterface(babel.LinkTunnel), t.link)
}

func (n *Node) freeIDLocked() uint32 {
	for id := uint32(1); ; id++ {
		if _, used := n.tunnels[id]; !used {
			if _, err := n.dp.Tunnel(id); err != nil {
				return id
			}
		}
	}
}

// closeTunnel removes the Babel interface, then every route through the
// tunnel, then the tunnel.
func (n *Node) closeTunnel(t *tunnel, why string) {
	n.mu.Lock()
	if n.tunnels[t.ID] != t {
		n.mu.Unlock()
		return
	}
	delete(n.tunnels, t.ID)
	n.saveTunnelsLocked()
	n.mu.Unlock()
	if err := n.router.RemoveInterface(t.ifname()); err != nil {
		n.log.Warn().Err(err).Uint32("tunnel", t.ID).Msg("remove Babel interface")
	}
	n.routes.forgetTunnel(t.ID)
	if err := n.dp.DeleteTunnel(t.ID); err != nil {
		n.log.Warn().Err(err).Uint32("tunnel", t.ID).Msg("delete tunnel")
	}
	n.log.Info().Uint32("tunnel", t.ID).Stringer("peer", t.Peer).Str("why", why).Msg("tunnel down")
}

func (n *Node) tunnelToLocked(bits string) *tunnel {
	for _, t := range n.tunnels {
		if t.Bits == bits {
			return t
		}
	}
	return nil
}

func (n *Node) tunnelTo(bits string) *tunnel {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.tunnelToLocked(bits)
}

// tunnelByEndpoint finds the tunnel control traffic came in on, as the
// data plane's endpoint map does.
func (n *Node) tunnelByEndpoint(remote netip.Addr, gre bool, key uint32) *tunnel {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, t := range n.tunnels {
		if t.lt.Remote != remote || (t.lt.Type == loader.GRE) != gre {
			continue
		}
		if !gre || (t.lt.HasKey && t.lt.Key == key) || (!t.lt.HasKey && key == 0) {
			return t
		}
	}
	return nil
}

// tunnelOf maps a Babel next hop to its data-plane tunnel (fib's
// TunnelLookup).
func (n *Node) tunnelOf(ifname string, _ netip.Addr) (uint32, bool) {
	id := tunnelIfID(ifname)
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.tunnels[id]
	return id, ok
}

func (n *Node) tunnelList() []*tunnel {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*tunnel, 0, len(n.tunnels))
	for _, t := range n.tunnels {
		out = append(out, t)
	}
	return out
}

func (n *Node) statePath() string { return filepath.Join(n.cfg.StateDir, "tunnels.json") }

// saveTunnelsLocked records the tunnels, so that a restarted daemon takes
// over the data plane's tunnels instead of tearing them down.
func (n *Node) saveTunnelsLocked() {
	list := make([]*tunnel, 0, len(n.tunnels))
	for _, t := range n.tunnels {
		t.Tunnel = t.lt
		list = append(list, t)
	}
	data, err := json.MarshalIndent(list, "", "  ")
	if err == nil {
		err = writeFileAtomic(n.statePath(), data, 0o644)
	}
	if err != nil {
		n.log.Warn().Err(err).Msg("cannot save the tunnel state")
	}
}

func (n *Node) saveTunnels() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.dp != nil {
		n.saveTunnelsLocked()
	}
}

// restoreTunnels takes over the tunnels a previous run left in the data
// plane; data-plane tunnels it has no record of are removed.
func (n *Node) restoreTunnels() {
	var saved []*tunnel
	if data, err := os.ReadFile(n.statePath()); err == nil {
		if err := json.Unmarshal(data, &saved); err != nil {
			n.log.Warn().Err(err).Msg("tunnel state unreadable")
		}
	}
	known := map[uint32]*tunnel{}
	for _, t := range saved {
		known[t.ID] = t
	}
	existing, err := n.dp.Tunnels()
	if err != nil {
		n.log.Warn().Err(err).Msg("cannot list data-plane tunnels")
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, lt := range existing {
		t := known[lt.ID]
		if t == nil || t.Tunnel != lt {
			n.routes.forgetTunnel(lt.ID)
			n.dp.DeleteTunnel(lt.ID)
			continue
		}
		t.lt = lt
		if err := n.attachBabel(t); err != nil {
			n.log.Warn().Err(err).Uint32("tunnel", t.ID).Msg("cannot restore tunnel")
			continue
		}
		n.tunnels[t.ID] = t
		n.log.Info().Uint32("tunnel", t.ID).Stringer("peer", t.Peer).Msg("tunnel taken over")
	}
	n.routes.pruneLater(3 * n.hello())
}

// addLAN runs Babel natively on a LAN interface (-i).
func (n *Node) addLAN(ifname string) error {
	tr, err := babel.ListenUDP(ifname)
	if err != nil {
		return fmt.Errorf("-i %s: %w", ifname, err)
	}
	n.routes.addLAN(ifname)
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
		if n.cfg.Encap == loader.GRE {
			out = append(out, nodeproto.Address{IP: ip, Proto: "gre"})
		}
		out = append(out, nodeproto.Address{IP: ip, Port: n.cfg.FOUPort, Proto: "fou"})
	}
	return out
}
