package node

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/vishvananda/netlink"
)

// serverTunnelBase is the first tunnel id of an OpenVPN server's clients,
// above every id of the tunnel manager's (which counts from 1).
const serverTunnelBase = 1 << 31

// tapTunnels put the routes through the OpenVPN TAP devices into the data
// plane: each Babel neighbour heard on a TAP device is a layer-2 device
// tunnel (bpf/include/device.h), its next hop the neighbour's link-local
// address, made when the fib writes the first route through it. A client's
// device has one neighbour, its tunnel the manager's id; a server's device
// has one per client, with ids from serverTunnelBase, removed once Babel
// no longer hears the client. Where the data plane cannot take a device
// (attaching its program fails), its routes go into the kernel, as a LAN's
// (fib.Split).
type tapTunnels struct {
	n *Node

	mu      sync.Mutex
	devices map[string]*tapDevice
	nextID  uint32 // of a server's client
}

// tapDevice is one TAP device whose routes the data plane carries.
type tapDevice struct {
	att     *loader.IngressAttachment
	ifindex uint32
	mtu     uint16
	client  uint32 // the manager's tunnel id on a client's device; 0 on a server's
	encap   string // the OpenVPN type
	// neighbours are the tunnels by the neighbour's address, and when
	// each was made.
	neighbours map[netip.Addr]uint32
	since      map[uint32]time.Time
}

func newTAPTunnels(n *Node) *tapTunnels {
	return &tapTunnels{n: n, devices: map[string]*tapDevice{}, nextID: serverTunnelBase}
}

// attach makes the routes through dev (an OpenVPN TAP device of type
// encap; a client's of tunnel client, or a server's when client is 0) go
// into the data plane, or into the kernel when the data plane cannot take
// the device.
func (t *tapTunnels) attach(dev string, client uint32, encap string) {
	l, err := netlink.LinkByName(dev)
	var att *loader.IngressAttachment
	if err == nil {
		att, err = t.n.dp.AttachDevice(dev)
	}
	if err != nil {
		t.n.log.Warn().Err(err).Str("device", dev).Msg("openvpn device not in the data plane: its routes go into the kernel")
		t.n.routes.AddLAN(dev)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.devices[dev] = &tapDevice{att: att, ifindex: uint32(l.Attrs().Index), mtu: uint16(l.Attrs().MTU),
		client: client, encap: encap, neighbours: map[netip.Addr]uint32{}, since: map[uint32]time.Time{}}
}

// detach undoes attach: the routes into dev's tunnels go, then the
// tunnels and the program.
func (t *tapTunnels) detach(dev string) {
	t.mu.Lock()
	d := t.devices[dev]
	delete(t.devices, dev)
	t.mu.Unlock()
	t.n.routes.RemoveLAN(dev)
	if d == nil {
		return
	}
	var errs []error
	for _, id := range d.neighbours {
		errs = append(errs, t.remove(id))
	}
	errs = append(errs, d.att.Close())
	if err := errors.Join(errs...); err != nil {
		t.n.log.Warn().Err(err).Str("device", dev).Msg("remove openvpn device tunnels")
	}
}

// remove takes tunnel id out of the data plane, the routes into it first.
func (t *tapTunnels) remove(id uint32) error {
	t.n.fibw.Forget(id)
	return t.n.dp.DeleteTunnel(id)
}

// lookup is the fib's tunnel lookup on the TAP devices: the tunnel to
// neighbour on dev, made at the first route through it; ok false when dev
// is not a TAP device the data plane carries.
func (t *tapTunnels) lookup(dev string, neighbour netip.Addr) (id uint32, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.devices[dev]
	if d == nil || !neighbour.Is6() {
		return 0, false
	}
	neighbour = neighbour.WithZone("")
	if id, ok := d.neighbours[neighbour]; ok {
		return id, true
	}
	lt := loader.Tunnel{Type: loader.DEVICE, Ifindex: d.ifindex, MTU: d.mtu, NextHop: neighbour}
	if l, err := netlink.LinkByIndex(int(d.ifindex)); err == nil {
		lt.MTU = uint16(l.Attrs().MTU) // as openvpn left it
	}
	var err error
	switch {
	case d.client != 0 && len(d.neighbours) > 0:
		// The peer's openvpn came back with another address.
		lt.ID = d.client
		err = t.n.dp.UpdateTunnel(lt)
		clear(d.neighbours)
	case d.client != 0:
		lt.ID = d.client
		err = t.n.dp.AddTunnel(lt)
	default:
		for {
			lt.ID = t.nextID
			t.nextID = max(t.nextID+1, serverTunnelBase) // past the top: from the base again
			if err = t.n.dp.AddTunnel(lt); !errors.Is(err, loader.ErrExists) {
				break
			}
		}
	}
	if err != nil {
		t.n.log.Warn().Err(err).Str("device", dev).Stringer("neighbour", neighbour).Msg("openvpn device tunnel")
		return 0, false
	}
	d.neighbours[neighbour] = lt.ID
	d.since[lt.ID] = time.Now()
	return lt.ID, true
}

// serverTunnels are the ids of the tunnels of the servers' clients.
func (t *tapTunnels) serverTunnels() []uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	var ids []uint32
	for _, d := range t.devices {
		if d.client == 0 {
			for _, id := range d.neighbours {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

// sweep removes the tunnels of a server's clients Babel no longer hears.
func (t *tapTunnels) sweep() {
	heard := map[string]map[netip.Addr]bool{}
	for _, nb := range t.n.router.Dump().Neighbours {
		if heard[nb.Interface] == nil {
			heard[nb.Interface] = map[netip.Addr]bool{}
		}
		heard[nb.Interface][nb.Address.WithZone("")] = true
	}
	t.mu.Lock()
	var gone []uint32
	for dev, d := range t.devices {
		if d.client != 0 {
			continue // the manager's tunnel: it goes with it
		}
		for a, id := range d.neighbours {
			if !heard[dev][a] {
				delete(d.neighbours, a)
				delete(d.since, id)
				gone = append(gone, id)
			}
		}
	}
	t.mu.Unlock()
	for _, id := range gone {
		if err := t.remove(id); err != nil {
			t.n.log.Warn().Err(err).Uint32("tunnel", id).Msg("remove an openvpn client's tunnel")
		}
	}
}

// run sweeps every hello interval until ctx ends.
func (t *tapTunnels) run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(t.n.params.Hello()):
			t.sweep()
		}
	}
}

// serverClients are the clients of the node's OpenVPN servers as status
// shows them: incoming tunnels of the server's type, each a usable Babel
// neighbour on the server's device (one that stopped is no longer shown,
// though Babel keeps it a while), its peer the prefix it announces as its
// own.
func (t *tapTunnels) serverClients(dump babel.Dump, encrypted bool) []TunnelStatus {
	usable := map[string]map[netip.Addr]bool{}
	for _, nb := range dump.Neighbours {
		if nb.Cost < babel.Infinity {
			if usable[nb.Interface] == nil {
				usable[nb.Interface] = map[netip.Addr]bool{}
			}
			usable[nb.Interface][nb.Address.WithZone("")] = true
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []TunnelStatus
	for dev, d := range t.devices {
		if d.client != 0 {
			continue
		}
		for a, id := range d.neighbours {
			if !usable[dev][a] {
				continue
			}
			ts := TunnelStatus{ID: id, Encap: loader.DEVICE, Type: d.encap, Encrypted: encrypted,
				Age: Duration(time.Since(d.since[id]))}
			for _, r := range dump.Routes {
				if r.Interface != dev || r.Neighbour.WithZone("") != a {
					continue
				}
				if r.Refmetric == 0 && !r.Source.IsValid() {
					ts.Peer = r.Prefix
				}
				if r.Selected {
					ts.Routes++
				}
			}
			for _, nb := range dump.Neighbours {
				if nb.Interface == dev && nb.Address.WithZone("") == a {
					ts.RTTMicros, ts.Cost = nb.RTTMicros, nb.Cost
				}
			}
			ts.Traffic, _ = t.n.dp.TunnelCounters(id)
			out = append(out, ts)
		}
	}
	return out
}

// serverClientCount is the number of clients Babel hears on the node's
// OpenVPN servers' devices (usable neighbours): incoming tunnels outside
// the manager's table, counted against max_clients beside its own.
func (n *Node) serverClientCount() int {
	servers := map[string]bool{}
	for _, s := range n.cfg.ovpnServers() {
		servers[s.device()] = true
	}
	if len(servers) == 0 {
		return 0
	}
	c := 0
	for _, nb := range n.router.Dump().Neighbours {
		if servers[nb.Interface] && nb.Cost < babel.Infinity {
			c++
		}
	}
	return c
}
