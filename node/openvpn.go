package node

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"

	"github.com/re6st-bpf/re6st-bpf/registry/wire"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/re6st-bpf/re6st-bpf/tunnels/manager"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/re6st-bpf/re6st-bpf/tunnels/openvpn"
)

// DefaultOpenVPNPort is the port of a node's OpenVPN servers
// (--openvpn-port), re6st's default: one server per protocol, TCP and UDP.
const DefaultOpenVPNPort = 1194

// openvpnTypes are the OpenVPN tunnel types and re6st's protocol of each.
var openvpnTypes = map[string]string{nodeproto.ProtoOpenVPNTCP: openvpn.TCP, nodeproto.ProtoOpenVPNUDP: openvpn.UDP}

// offersOpenVPN: the node's tunnel types include encap, an OpenVPN type.
func (c *Config) offersOpenVPN(encap string) bool {
	_, ok := openvpnTypes[encap]
	return ok && slices.Contains(c.TunnelTypes, encap)
}

// ovpnBackend runs re6st's OpenVPN tunnels (tunnels/openvpn): for each
// OpenVPN type the node offers, a server per underlay family (one TAP
// device re6stnet-<proto> for all its clients, as re6st runs it, and
// re6stnet-<proto>6 over IPv6) started with the node; for each
// outgoing tunnel of such a type, a client whose TAP device is the
// tunnel's Babel interface, t<id>. Babel runs natively on the TAP devices;
// the routes through them go into the data plane, each neighbour on a TAP
// device a layer-2 device tunnel (tapTunnels).
type ovpnBackend struct {
	n *Node

	mu      sync.Mutex
	servers map[string]*openvpn.Process // by device
	clients map[uint32]*openvpn.Process

	// serversMu serializes the servers' start, restarts and stop; running
	// are the arguments each server runs with, closed is set by closeAll.
	serversMu sync.Mutex
	running   map[string][]string
	closed    bool
	// crl are the serials in the CRL directory.
	crl []uint64
}

// ovpnServer is one OpenVPN server: a type over an underlay family.
type ovpnServer struct {
	encap string
	ipv6  bool
}

// device is the server's TAP device, re6st's name: re6stnet-tcp,
// re6stnet-udp, re6stnet-tcp6, re6stnet-udp6.
func (s ovpnServer) device() string {
	dev := "re6stnet-" + openvpnTypes[s.encap]
	if s.ipv6 {
		dev += "6"
	}
	return dev
}

// ovpnServers are the servers the node runs: one per OpenVPN type it
// offers over IPv4, and one over IPv6 unless --ipv6 none.
func (c *Config) ovpnServers() []ovpnServer {
	var out []ovpnServer
	for _, encap := range []string{nodeproto.ProtoOpenVPNTCP, nodeproto.ProtoOpenVPNUDP} {
		if !c.offersOpenVPN(encap) {
			continue
		}
		out = append(out, ovpnServer{encap: encap})
		if !c.NoIPv6 {
			out = append(out, ovpnServer{encap: encap, ipv6: true})
		}
	}
	return out
}

// crlDir is where openvpn finds the network's CRL (openvpn.WriteCRLDir).
func (o *ovpnBackend) crlDir() string { return filepath.Join(o.n.cfg.RunDir, "openvpn-crl") }

// common are the arguments of both ends: the node's certificate, a cipher
// when the network encrypts, re6st's tunnel timeout for --ping-exit, the
// network's CRL.
func (o *ovpnBackend) common(dev string) openvpn.Common {
	return openvpn.Common{Dev: dev, CA: o.n.cfg.CA, Cert: o.n.cfg.Cert, Key: o.n.cfg.Key,
		Encrypt: o.n.params.get().Encrypt, Timeout: 4 * o.n.params.Hello(), CRLDir: o.crlDir()}
}

// tap makes an OpenVPN TAP device over proto with the node's link-local
// address.
func (o *ovpnBackend) tap(dev, proto string) error {
	_, err := openvpn.CreateTAP(dev, openvpn.TAPMTU(proto, o.n.dp.State.MTU), net.IP(o.n.linkLocal().AsSlice()))
	return err
}

// writeCRL puts the CRL in force's serials in the CRL directory; fresh:
// some serial was not there before.
func (o *ovpnBackend) writeCRL() (fresh bool, err error) {
	crl := slices.Clone(o.n.params.get().CRL)
	if err := openvpn.WriteCRLDir(o.crlDir(), crl); err != nil {
		return false, err
	}
	for _, s := range crl {
		if !slices.Contains(o.crl, s) {
			fresh = true
		}
	}
	o.crl = crl
	return fresh, nil
}

// serverArgs are server s's arguments under the parameters in force.
func (o *ovpnBackend) serverArgs(s ovpnServer) ([]string, error) {
	return openvpn.ServerArgs(openvpn.ServerConfig{Common: o.common(s.device()), Port: o.n.cfg.OpenVPNPort,
		Proto: openvpnTypes[s.encap], IPv6: s.ipv6, MaxClients: max(1, o.n.params.maxClients())})
}

// startServers starts the node's servers (ovpnServers) and runs Babel on
// their devices.
func (o *ovpnBackend) startServers() error {
	o.serversMu.Lock()
	defer o.serversMu.Unlock()
	o.running = map[string][]string{}
	if len(o.n.cfg.ovpnServers()) == 0 {
		return nil
	}
	if _, err := o.writeCRL(); err != nil {
		return err
	}
	for _, s := range o.n.cfg.ovpnServers() {
		dev := s.device()
		args, err := o.serverArgs(s)
		if err != nil {
			return err
		}
		if err := o.start(dev, openvpnTypes[s.encap], args, func(p *openvpn.Process) { o.servers[dev] = p }); err != nil {
			return err
		}
		o.running[dev] = args
		if err := o.n.links.attachTAP(dev, 0, s.encap); err != nil {
			return err
		}
	}
	return nil
}

// newParams is called with the parameters newly in force: the CRL
// directory takes their CRL (openvpn reads it at each handshake), and the
// servers restart when their arguments change (encrypt: the cipher; hello:
// --ping-exit; max_clients) or the CRL revokes a serial it did not (a
// client connected before its revocation is dropped, and refused when it
// comes again).
func (o *ovpnBackend) newParams() {
	o.serversMu.Lock()
	defer o.serversMu.Unlock()
	if o.closed || len(o.running) == 0 {
		return
	}
	fresh, err := o.writeCRL()
	if err != nil {
		o.n.log.Error().Err(err).Msg("openvpn: the CRL is not updated")
	}
	if o.n.params.SelfRevoked() {
		return // the node stops
	}
	o.restartServers(fresh, "new network parameters")
}

// certificateRenewed restarts the servers, so that they present the
// renewed certificate (openvpn reads --cert at start only); the clients
// take it at their next start.
func (o *ovpnBackend) certificateRenewed() {
	o.serversMu.Lock()
	defer o.serversMu.Unlock()
	if !o.closed {
		o.restartServers(true, "certificate renewed")
	}
}

// restartServers restarts the servers whose arguments changed, or all of
// them if all; each keeps its TAP device (persistent), so Babel's
// interface on it stays, and its clients connect again (a client's openvpn
// exits, at once over TCP, at its --ping-exit over UDP, and its node sets a
// tunnel up again). The caller holds serversMu.
func (o *ovpnBackend) restartServers(all bool, why string) {
	for _, s := range o.n.cfg.ovpnServers() {
		dev := s.device()
		args, err := o.serverArgs(s)
		if err != nil {
			o.n.log.Error().Err(err).Str("device", dev).Msg("openvpn server not restarted")
			continue
		}
		if !all && slices.Equal(args, o.running[dev]) {
			continue
		}
		o.mu.Lock()
		old := o.servers[dev]
		o.mu.Unlock()
		if old != nil {
			old.Stop()
		}
		p, err := openvpn.Start(openvpn.Command(args), o.n.log.With().Str("openvpn", dev).Logger())
		if err != nil {
			o.n.log.Error().Err(err).Str("device", dev).Msg("openvpn server not restarted")
			continue
		}
		o.mu.Lock()
		o.servers[dev] = p
		o.mu.Unlock()
		o.running[dev] = args
		o.n.log.Info().Str("device", dev).Str("why", why).Msg("openvpn server restarted")
	}
}

// start makes dev, over proto, and runs openvpn with args on it; keep
// records the process.
func (o *ovpnBackend) start(dev, proto string, args []string, keep func(*openvpn.Process)) error {
	_ = openvpn.DeleteTAP(dev) // left by a killed run
	if err := o.tap(dev, proto); err != nil {
		return err
	}
	p, err := openvpn.Start(openvpn.Command(args), o.n.log.With().Str("openvpn", dev).Logger())
	if err != nil {
		return errors.Join(err, openvpn.DeleteTAP(dev))
	}
	o.mu.Lock()
	keep(p)
	o.mu.Unlock()
	return nil
}

// add starts tunnel id's client, to the peer's server at ep.Remote (over
// IPv4 or IPv6: re6st's tcp or tcp6 item…); the server's certificate must
// name the peer's prefix.
func (o *ovpnBackend) add(id uint32, ep manager.Endpoint) error {
	if ep.PeerBits == "" {
		return fmt.Errorf("tunnel %d: an OpenVPN client needs the peer's prefix", id)
	}
	dev := manager.Tunnel{ID: id}.Interface()
	args, err := openvpn.ClientArgs(openvpn.ClientConfig{Common: o.common(dev), Remote: ep.Remote,
		Proto: openvpnTypes[ep.Encap], PeerName: wire.CommonName(ep.PeerBits)})
	if err != nil {
		return err
	}
	return o.start(dev, openvpnTypes[ep.Encap], args, func(p *openvpn.Process) { o.clients[id] = p })
}

// cipher is the data cipher of tunnel id's client, as openvpn said it
// (openvpn.NoCipher for none); "" before it is connected, or for another
// tunnel.
func (o *ovpnBackend) cipher(id uint32) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if p := o.clients[id]; p != nil {
		return p.Cipher()
	}
	return ""
}

func (o *ovpnBackend) has(id uint32) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.clients[id]
	return ok
}

// remove stops tunnel id's client and removes its device (Babel's
// interface on it is gone already: the manager detaches first).
func (o *ovpnBackend) remove(id uint32) error {
	o.mu.Lock()
	p := o.clients[id]
	delete(o.clients, id)
	o.mu.Unlock()
	if p == nil {
		return fmt.Errorf("tunnel %d: no openvpn client", id)
	}
	dev := manager.Tunnel{ID: id}.Interface()
	o.n.taps.detach(dev)
	p.Stop()
	return openvpn.DeleteTAP(dev)
}

// closeAll stops every client and server and removes their devices.
func (o *ovpnBackend) closeAll() {
	o.serversMu.Lock()
	defer o.serversMu.Unlock()
	o.closed = true
	o.mu.Lock()
	all := map[string]*openvpn.Process{}
	for id, p := range o.clients {
		all[manager.Tunnel{ID: id}.Interface()] = p
	}
	for dev, p := range o.servers {
		all[dev] = p
	}
	o.clients, o.servers = map[uint32]*openvpn.Process{}, map[string]*openvpn.Process{}
	o.mu.Unlock()
	for dev, p := range all {
		o.n.taps.detach(dev)
		p.Stop()
		if err := openvpn.DeleteTAP(dev); err != nil {
			o.n.log.Warn().Err(err).Str("device", dev).Msg("remove openvpn device")
		}
	}
}

// serverStatuses are the servers as status shows them, their clients
// counted among Babel's neighbours.
func (o *ovpnBackend) serverStatuses(neighbours []babel.NeighbourInfo) []OpenVPNServerStatus {
	var out []OpenVPNServerStatus
	for _, srv := range o.n.cfg.ovpnServers() {
		dev := srv.device()
		o.mu.Lock()
		p := o.servers[dev]
		o.mu.Unlock()
		if p == nil {
			continue
		}
		s := OpenVPNServerStatus{Device: dev, Type: srv.encap, IPv6: srv.ipv6, Port: o.n.cfg.OpenVPNPort}
		select {
		case <-p.Done():
		default:
			s.Running = true
		}
		for _, nb := range neighbours {
			if nb.Interface == dev {
				s.Clients++
			}
		}
		out = append(out, s)
	}
	return out
}

// attachTAP runs Babel natively on an OpenVPN TAP device of type encap (a
// link with one peer, tunnel client's, or with a server's several clients
// when client is 0), and makes the routes through it go into the data
// plane as layer-2 device tunnels (tapTunnels).
func (l *links) attachTAP(dev string, client uint32, encap string) error {
	tr, err := babel.ListenUDP(dev)
	if err != nil {
		return err
	}
	l.n.taps.attach(dev, client, encap)
	if err := l.n.router.AddInterface(dev, l.n.babelInterface(babel.LinkTunnel), tr); err != nil {
		l.n.taps.detach(dev)
		tr.Close()
		return err
	}
	return nil
}
