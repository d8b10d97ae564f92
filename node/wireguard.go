package node

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/re6st-bpf/re6st-bpf/tunnels/manager"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/re6st-bpf/re6st-bpf/tunnels/openvpn"
	"github.com/re6st-bpf/re6st-bpf/tunnels/wireguard"
)

// DefaultWireGuardPort is the first of a node's WireGuard ports
// (--wireguard-port): the port of its `ip,port,wireguard` items; tunnel id
// listens on that port + id.
const DefaultWireGuardPort = 51820

// offersWireGuard: the node's tunnel types include WireGuard.
func (c *Config) offersWireGuard() bool {
	return slices.Contains(c.TunnelTypes, nodeproto.ProtoWireGuard)
}

// tunnelBackend is the node's manager.Backend: FOU and GRE in the BPF data
// plane (bpfBackend), WireGuard devices (wgBackend, nil unless offered),
// OpenVPN clients and servers (ovpnBackend). When the network parameters
// say `encrypt`, it carries the encrypting types only.
type tunnelBackend struct {
	n    *Node
	bpf  *bpfBackend
	wg   *wgBackend
	ovpn *ovpnBackend
}

func (n *Node) newTunnelBackend() (*tunnelBackend, error) {
	if err := n.removeStaleWireGuardDevices(); err != nil {
		return nil, err
	}
	b := &tunnelBackend{n: n, bpf: (*bpfBackend)(n),
		ovpn: &ovpnBackend{n: n, servers: map[string]*openvpn.Process{}, clients: map[uint32]*openvpn.Process{}}}
	if err := b.ovpn.startServers(); err != nil {
		b.ovpn.closeAll()
		return nil, err
	}
	if !n.cfg.offersWireGuard() {
		return b, nil
	}
	id, err := wireguard.NewIdentity(n.id.Key, n.id.prefix)
	if err != nil {
		return nil, fmt.Errorf("wireguard key: %w", err)
	}
	b.wg = &wgBackend{n: n, identity: id, devices: map[uint32]*wgTunnel{}}
	b.wg.ctx, b.wg.cancel = context.WithCancel(context.Background())
	return b, nil
}

// Carries implements manager.Backend.
func (b *tunnelBackend) Carries(encap string) bool {
	if b.n.params.get().Encrypt && !slices.Contains(encryptingTypes, encap) {
		return false
	}
	if encap == nodeproto.ProtoWireGuard {
		return b.wg != nil
	}
	if _, ok := openvpnTypes[encap]; ok {
		return b.n.cfg.offersOpenVPN(encap)
	}
	return b.bpf.Carries(encap)
}

// Keyed implements manager.Backend.
func (b *tunnelBackend) Keyed(encap string) bool { return b.bpf.Keyed(encap) }

// LocalFor implements manager.Backend: the IPv6 underlay is OpenVPN's
// (the manager takes IPv6 items of unannounced types only).
func (b *tunnelBackend) LocalFor(remote netip.Addr) (netip.Addr, error) {
	if remote.Is6() {
		return b.n.ipv6Source(remote)
	}
	return b.bpf.LocalFor(remote)
}

// Add implements manager.Backend.
func (b *tunnelBackend) Add(id uint32, ep manager.Endpoint) error {
	if ep.Encap == nodeproto.ProtoWireGuard {
		if b.wg == nil {
			return errNoWireGuard
		}
		return b.wg.add(id, ep)
	}
	if b.Unannounced(ep.Encap) {
		return b.ovpn.add(id, ep)
	}
	return b.bpf.Add(id, ep)
}

// Remove implements manager.Backend.
func (b *tunnelBackend) Remove(id uint32) error {
	if b.wg != nil && b.wg.has(id) {
		return b.wg.remove(id)
	}
	if b.ovpn.has(id) {
		return b.ovpn.remove(id)
	}
	return b.bpf.Remove(id)
}

// Unannounced implements manager.Unannounced: a node's OpenVPN servers
// accept any client the CA certified, with no set-up exchange (re6st's
// way), and the client checks the server's certificate names the peer.
func (b *tunnelBackend) Unannounced(encap string) bool { return b.n.cfg.offersOpenVPN(encap) }

// List implements manager.Backend: the data plane's tunnels. A WireGuard
// device dies with the process that made it; the data-plane tunnel a
// previous run left for it (if it did not stop cleanly) is listed with the
// encap "device", which no saved tunnel has, so the manager removes it
// instead of taking it over. So are an OpenVPN server's clients' tunnels
// a previous run left, but not this run's, which are not the manager's.
func (b *tunnelBackend) List() (map[uint32]manager.Endpoint, error) {
	list, err := b.bpf.List()
	for _, id := range b.n.taps.serverTunnels() {
		delete(list, id)
	}
	return list, err
}

// Credential implements manager.Credentials: our WireGuard key binding.
func (b *tunnelBackend) Credential(encap string) ([]byte, error) {
	if encap != nodeproto.ProtoWireGuard {
		return nil, nil
	}
	if b.wg == nil {
		return nil, errNoWireGuard
	}
	return b.wg.identity.Binding(), nil
}

// CheckCredential implements manager.Credentials: a WireGuard peer's key
// binding must be signed by the key of its certificate (which the node
// protocol checked against the network's CA) and name its prefix; other
// types take none.
func (b *tunnelBackend) CheckCredential(encap string, peer netip.Prefix, cert *x509.Certificate, credential []byte) error {
	if encap != nodeproto.ProtoWireGuard {
		if len(credential) > 0 {
			return fmt.Errorf("a credential for a %s tunnel", encap)
		}
		return nil
	}
	_, err := wireguard.PeerKey(credential, cert, peer)
	return err
}

// HasOwnPort implements manager.DevicePorts: each WireGuard tunnel is a
// device with its own port.
func (b *tunnelBackend) HasOwnPort(encap string) bool { return encap == nodeproto.ProtoWireGuard }

// Port implements manager.DevicePorts.
func (b *tunnelBackend) Port(id uint32) (uint16, error) {
	if b.wg == nil {
		return 0, fmt.Errorf("tunnel %d: no wireguard device", id)
	}
	return b.wg.port(id)
}

// close removes the WireGuard tunnels (their devices end with the
// process) and stops the OpenVPN clients and servers.
func (b *tunnelBackend) close() {
	if b == nil {
		return
	}
	if b.wg != nil {
		b.wg.closeAll()
	}
	b.ovpn.closeAll()
}

// wgBackend makes one WireGuard device per tunnel (wireguard-go over TUN,
// in the node's process), with exactly one peer: the tunnel's, whose key
// its binding gave. The device is a DEVICE tunnel of the data plane, with
// device_ingress attached, and Babel runs on it natively.
type wgBackend struct {
	n        *Node
	identity *wireguard.Identity
	// rotations counts the key rotations made while running; rotating
	// orders them (the timer's and the control socket's): each sets its key
	// on every device before the next makes another.
	rotations atomic.Int64
	rotating  sync.Mutex
	// ctx ends, and pending waits for, the bindings sent in the background
	// (confirmBinding); closeAll does both.
	ctx     context.Context
	cancel  context.CancelFunc
	pending sync.WaitGroup

	mu      sync.Mutex
	devices map[uint32]*wgTunnel
}

type wgTunnel struct {
	dev *wireguard.Device
	att *loader.IngressAttachment
	// peer is the peer's prefix, generation its binding's (a newer one
	// replaces the key), via its underlay endpoint for the node protocol's
	// direct messages.
	peer       netip.Prefix
	generation uint64
	via        netip.AddrPort
}

// wgDevicePrefix starts the name of every WireGuard device of the node.
const wgDevicePrefix = "re6stwg"

// wgDeviceName is tunnel id's device.
func wgDeviceName(id uint32) string { return fmt.Sprintf("%s%d", wgDevicePrefix, id) }

// removeStaleWireGuardDevices deletes the WireGuard devices a killed run
// left: a kernel WireGuard link outlives its node (wireguard-go's TUN dies
// with it), and no WireGuard tunnel is taken over at start, since each
// start makes a new key.
func (n *Node) removeStaleWireGuardDevices() error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		name := l.Attrs().Name
		if !strings.HasPrefix(name, wgDevicePrefix) {
			continue
		}
		if err := netlink.LinkDel(l); err != nil {
			return fmt.Errorf("remove %s, a WireGuard device a previous run left: %w", name, err)
		}
		n.log.Info().Str("device", name).Str("kind", l.Type()).Msg("removed a WireGuard device a previous run left")
	}
	return nil
}

func (w *wgBackend) has(id uint32) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.devices[id]
	return ok
}

func (w *wgBackend) port(id uint32) (uint16, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.devices[id]
	if !ok {
		return 0, fmt.Errorf("tunnel %d: no wireguard device", id)
	}
	return t.dev.Port(), nil
}

// add makes tunnel id's device, listening on the node's WireGuard port +
// id, with the peer's key; on the requester's side the peer's endpoint is
// its address and the port its reply gave, on the server's side the
// requester makes the first handshake and WireGuard learns its endpoint.
func (w *wgBackend) add(id uint32, ep manager.Endpoint) (err error) {
	b, err := wireguard.UnmarshalBinding([]byte(ep.PeerCredential))
	if err != nil {
		return err
	}
	name := wgDeviceName(id)
	// The overlay's MTU leaves room for FOU's 28 bytes on the underlay.
	mtu := wireguard.MTUOver(w.n.dp.State.MTU + loader.FOU.Overhead(false))
	port := int(w.n.cfg.WireGuardPort) + int(id)
	if port > 0xffff {
		return fmt.Errorf("tunnel %d: wireguard port %d out of range", id, port)
	}
	priv, ours := w.identity.Current()
	dev, err := wireguard.New(wireguard.Config{Name: name, ListenPort: uint16(port), PrivateKey: priv,
		MTU: mtu, Logger: w.n.log})
	if err != nil {
		return err
	}
	w.n.log.Debug().Str("device", name).Str("kind", string(dev.Kind())).Msg("wireguard device")
	t := &wgTunnel{dev: dev, peer: b.Prefix, generation: b.Generation, via: ep.Remote}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	var endpoint netip.AddrPort
	if ep.DevicePort != 0 {
		endpoint = netip.AddrPortFrom(ep.Remote.Addr(), ep.DevicePort)
	}
	if err := dev.SetPeer(b.PublicKey, endpoint); err != nil {
		return err
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	// Babel's address on the device, usable at once (no DAD on a link with
	// one peer).
	ll := w.n.linkLocal()
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: ll.AsSlice(), Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	if err := netlink.AddrAdd(l, addr); err != nil {
		return fmt.Errorf("%s: link-local address: %w", name, err)
	}
	if t.att, err = w.n.dp.AttachDevice(name); err != nil {
		return err
	}
	if err := w.n.dp.AddTunnel(loader.Tunnel{ID: id, Type: loader.DEVICE, Ifindex: uint32(l.Attrs().Index), MTU: uint16(mtu)}); err != nil {
		return err
	}
	w.mu.Lock()
	w.devices[id] = t
	w.mu.Unlock()
	if w.n.cfg.WireGuardRotate > 0 {
		w.confirmBinding(t, ours)
	}
	return nil
}

// confirmBinding sends the peer of a new tunnel the binding of the key its
// device got, in the background: a rotation between the set-up's exchange
// of bindings and the device's making gave the device a newer key than the
// peer has. Usually the peer has it already and nothing changes (or, on
// the server's side, the requester has no device yet and refuses it: it
// has this binding from the reply).
func (w *wgBackend) confirmBinding(t *wgTunnel, binding []byte) {
	w.pending.Add(1)
	go func() {
		defer w.pending.Done()
		ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
		defer cancel()
		if err := w.n.proto.SendKeyBinding(ctx, t.peer, t.via, binding); err != nil {
			w.n.log.Debug().Err(err).Str("peer", t.peer.String()).Msg("wireguard: binding of a new tunnel")
		}
	}()
}

// remove takes tunnel id out of the data plane (the routes into it first),
// then ends its device.
func (w *wgBackend) remove(id uint32) error {
	w.mu.Lock()
	t := w.devices[id]
	delete(w.devices, id)
	w.mu.Unlock()
	if t == nil {
		return fmt.Errorf("tunnel %d: no wireguard device", id)
	}
	w.n.fibw.Forget(id)
	return errors.Join(w.n.dp.DeleteTunnel(id), t.close())
}

func (w *wgBackend) closeAll() {
	w.cancel()
	w.pending.Wait()
	w.mu.Lock()
	ids := make([]uint32, 0, len(w.devices))
	for id := range w.devices {
		ids = append(ids, id)
	}
	w.mu.Unlock()
	for _, id := range ids {
		if err := w.remove(id); err != nil {
			w.n.log.Warn().Err(err).Uint32("tunnel", id).Msg("remove wireguard tunnel")
		}
	}
}

// rotate replaces the node's WireGuard key: a new key and binding (the
// next generation), set on every device first, then the binding sent to
// each tunnel's peer directly over the underlay (the tunnel has no session
// until the peer takes it), which sets it on its device and makes the new
// handshake at once (Device.SetPeer). A peer that does not take it in time
// keeps a silent tunnel, which the manager replaces.
func (w *wgBackend) rotate(ctx context.Context) (WireGuardRotation, error) {
	w.rotating.Lock()
	defer w.rotating.Unlock()
	if err := w.identity.Rotate(); err != nil {
		return WireGuardRotation{}, err
	}
	priv, binding := w.identity.Current()
	w.mu.Lock()
	tunnels := make(map[uint32]*wgTunnel, len(w.devices))
	for id, t := range w.devices {
		tunnels[id] = t
	}
	w.mu.Unlock()
	var errs []error
	for id, t := range tunnels {
		if err := t.dev.Rotate(priv); err != nil {
			errs = append(errs, fmt.Errorf("tunnel %d: %w", id, err))
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for id, t := range tunnels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := w.n.proto.SendKeyBinding(sctx, t.peer, t.via, binding); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("tunnel %d to %s: %w", id, t.peer, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	w.rotations.Add(1)
	return WireGuardRotation{Generation: w.identity.Generation(), Tunnels: len(tunnels)}, errors.Join(errs...)
}

// WireGuardRotation is what a key rotation did: the new key's generation,
// and the number of tunnels whose device took it and whose peer was sent
// its binding.
type WireGuardRotation struct {
	Generation uint64 `json:"generation"`
	Tunnels    int    `json:"tunnels"`
	// Error says what failed (a peer that did not acknowledge): the
	// devices have the new key all the same.
	Error string `json:"error,omitempty"`
}

// errNoWireGuard: WireGuard asked of a node that does not offer it.
var errNoWireGuard = errors.New("wireguard is not among this node's tunnel types")

// RotateWireGuardKey rotates the node's WireGuard key now (re6stnet
// wireguard rotate, over the control socket), as --wireguard-rotate does
// at each tick.
func (n *Node) RotateWireGuardKey(ctx context.Context) (WireGuardRotation, error) {
	if n.backend == nil || n.backend.wg == nil {
		return WireGuardRotation{}, errNoWireGuard
	}
	r, err := n.backend.wg.rotate(ctx)
	if err != nil {
		r.Error = err.Error()
	}
	n.log.Info().Uint64("generation", r.Generation).Int("tunnels", r.Tunnels).Str("error", r.Error).Msg("wireguard key rotated on request")
	return r, nil
}

// takeBinding applies a peer's newer binding (a key rotation) to the
// tunnels with it: checked against the certificate the node protocol
// checked, of a newer generation than the tunnel's (an older or the same
// one is taken without change: a retransmission), set as the device's
// peer at the endpoint WireGuard knows it by.
func (w *wgBackend) takeBinding(peer nodeproto.Peer, data []byte) error {
	b, err := wireguard.PeerKey(data, peer.Cert, peer.Prefix)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	found := false
	for id, t := range w.devices {
		if t.peer != peer.Prefix {
			continue
		}
		found = true
		if b.Generation <= t.generation {
			continue
		}
		st, err := t.dev.Status()
		if err != nil {
			return fmt.Errorf("tunnel %d: %w", id, err)
		}
		endpoint, _ := netip.ParseAddrPort(st.Endpoint) // none yet: the peer makes the handshake
		if err := t.dev.SetPeer(b.PublicKey, endpoint); err != nil {
			return fmt.Errorf("tunnel %d: %w", id, err)
		}
		t.generation = b.Generation
		w.n.log.Debug().Uint32("tunnel", id).Str("peer", peer.Bits).Uint64("generation", b.Generation).Msg("wireguard: the peer's new key")
	}
	if !found {
		return errors.New("no wireguard tunnel with this node")
	}
	return nil
}

// rotateEvery rotates the key every interval until ctx ends.
func (w *wgBackend) rotateEvery(ctx context.Context, interval time.Duration) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			switch _, err := w.rotate(ctx); {
			case ctx.Err() != nil:
			case err != nil:
				w.n.log.Warn().Err(err).Msg("wireguard key rotation")
			default:
				w.n.log.Info().Msg("wireguard key rotated")
			}
		}
	}
}

// close detaches the data plane's program and ends the device.
func (t *wgTunnel) close() error {
	var err error
	if t.att != nil {
		err = t.att.Close()
	}
	return errors.Join(err, t.dev.Close())
}

// attachDevice runs Babel on tunnel t's device, natively (multicast and
// link-local unicast on the device, as on a LAN): the device carries it
// encrypted like any other packet.
func (l *links) attachDevice(t manager.Tunnel, ifname string) error {
	tr, err := babel.ListenUDP(ifname)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.byID[t.ID] = link{} // no control endpoint: nothing reaches it over FOU
	l.mu.Unlock()
	if err := l.n.router.AddInterface(t.Interface(), l.n.tunnelInterface(t.Bits), tr); err != nil {
		l.forget(t.ID)
		tr.Close()
		return err
	}
	return nil
}
