package node

import (
	"errors"
	"fmt"
	"net"
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
// OpenVPN type the node offers, a server (one TAP device re6stnet-<proto>
// for all its clients, as re6st runs it) started with the node; for each
// outgoing tunnel of such a type, a client whose TAP device is the
// tunnel's Babel interface, t<id>. Babel runs natively on the TAP devices;
// the routes through them go into the data plane, each neighbour on a TAP
// device a layer-2 device tunnel (tapTunnels).
type ovpnBackend struct {
	n *Node

	mu      sync.Mutex
	servers map[string]*openvpn.Process // by device
	clients map[uint32]*openvpn.Process
}

// ovpnServerDevice is the TAP device of the server of an OpenVPN type
// (re6st's names).
func ovpnServerDevice(encap string) string { return "re6stnet-" + openvpnTypes[encap] }

// common are the arguments of both ends: the node's certificate, a cipher
// when the network encrypts, re6st's tunnel timeout for --ping-exit.
func (o *ovpnBackend) common(dev string) openvpn.Common {
	return openvpn.Common{Dev: dev, CA: o.n.cfg.CA, Cert: o.n.cfg.Cert, Key: o.n.cfg.Key,
		Encrypt: o.n.params.get().Encrypt, Timeout: 4 * o.n.params.Hello()}
}

// tap makes an OpenVPN TAP device over proto with the node's link-local
// address.
func (o *ovpnBackend) tap(dev, proto string) error {
	_, err := openvpn.CreateTAP(dev, openvpn.TAPMTU(proto, o.n.dp.State.MTU), net.IP(o.n.linkLocal().AsSlice()))
	return err
}

// startServers starts a server per OpenVPN type the node offers and runs
// Babel on its device.
func (o *ovpnBackend) startServers() error {
	for encap, proto := range openvpnTypes {
		if !o.n.cfg.offersOpenVPN(encap) {
			continue
		}
		dev := ovpnServerDevice(encap)
		args, err := openvpn.ServerArgs(openvpn.ServerConfig{Common: o.common(dev), Port: o.n.cfg.OpenVPNPort,
			Proto: proto, MaxClients: max(1, o.n.params.maxClients())})
		if err != nil {
			return err
		}
		if err := o.start(dev, proto, args, func(p *openvpn.Process) { o.servers[dev] = p }); err != nil {
			return err
		}
		if err := o.n.links.attachTAP(dev, 0, encap); err != nil {
			return err
		}
	}
	return nil
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

// add starts tunnel id's client, to the peer's server at ep.Remote; the
// server's certificate must name the peer's prefix.
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
	for _, encap := range []string{nodeproto.ProtoOpenVPNTCP, nodeproto.ProtoOpenVPNUDP} {
		dev := ovpnServerDevice(encap)
		o.mu.Lock()
		p := o.servers[dev]
		o.mu.Unlock()
		if p == nil {
			continue
		}
		s := OpenVPNServerStatus{Device: dev, Type: encap, Port: o.n.cfg.OpenVPNPort}
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
