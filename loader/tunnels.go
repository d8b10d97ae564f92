package loader

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
)

// ResolveUnderlay fills t.Ifindex and t.NextHop with the interface and the
// next hop (t.Remote itself or its gateway) the kernel routes t.Remote
// through, and checks that t.Local is an address of this host.
// It must run in the data plane's network namespace (see InNetns).
func ResolveUnderlay(t *Tunnel) error {
	routes, err := netlink.RouteGet(net.IP(t.Remote.AsSlice()))
	if err != nil || len(routes) == 0 {
		return fmt.Errorf("tunnel %d: no IPv4 route to %s", t.ID, t.Remote)
	}
	t.Ifindex = uint32(routes[0].LinkIndex)
	t.NextHop = t.Remote
	if gw, ok := netip.AddrFromSlice(routes[0].Gw); ok && gw.Unmap().Is4() {
		t.NextHop = gw.Unmap()
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if a.IP.Equal(net.IP(t.Local.AsSlice())) {
			return nil
		}
	}
	return fmt.Errorf("tunnel %d: %s is not an address of this host", t.ID, t.Local)
}

// AddTunnel creates a tunnel; ErrExists if the id or the endpoint (remote,
// type, key; a device tunnel's device) is taken. Ifindex and NextHop must be
// set (ResolveUnderlay), or for a device tunnel Ifindex.
func (d *Datapath) AddTunnel(t Tunnel) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if t.Type != DEVICE && (t.Ifindex == 0 || !t.NextHop.Is4()) {
		return fmt.Errorf("tunnel %d: underlay interface or next hop not resolved", t.ID)
	}
	id := t.ID
	if err := d.claimEndpoint(&t); err != nil {
		return err
	}
	v := t.value()
	if err := d.maps.Tunnels.Update(&id, &v, ebpf.UpdateNoExist); err != nil {
		d.releaseEndpoint(&t)
		if errors.Is(err, ebpf.ErrKeyExist) {
			return fmt.Errorf("tunnel %d %w", t.ID, ErrExists)
		}
		return err
	}
	zero := make([]datapathTunnelStats, ebpf.MustPossibleCPU())
	if err := d.maps.TunnelCounters.Update(&id, zero, ebpf.UpdateAny); err != nil {
		d.maps.Tunnels.Delete(&id)
		d.releaseEndpoint(&t)
		return err
	}
	return nil
}

// UpdateTunnel changes an existing tunnel's parameters in place (MTU, next
// hop, port...); its endpoint (remote, type, key; a device tunnel's
// device), by which received packets find it, must stay the same, except
// a layer-2 device tunnel's neighbour (NextHop).
func (d *Datapath) UpdateTunnel(t Tunnel) error {
	if err := t.Validate(); err != nil {
		return err
	}
	old, err := d.Tunnel(t.ID)
	if err != nil {
		return err
	}
	changed := old.Type != t.Type
	if !changed && t.Type == DEVICE {
		changed = old.Ifindex != t.Ifindex || old.NextHop.IsValid() != t.NextHop.IsValid()
	} else if !changed {
		changed = old.endpoint() != t.endpoint()
	}
	if changed {
		return fmt.Errorf("tunnel %d: the endpoint (remote, type, key; device) cannot change: delete and add the tunnel", t.ID)
	}
	if t.Type == DEVICE && old.NextHop != t.NextHop {
		// Another neighbour behind the same layer-2 device (its
		// OpenVPN restarted with another address).
		if err := d.releaseNeighbour(&old); err != nil {
			return err
		}
		if err := d.claimNeighbour(&t); err != nil {
			return errors.Join(err, d.claimNeighbour(&old))
		}
	}
	v, id := t.value(), t.ID
	return d.maps.Tunnels.Update(&id, &v, ebpf.UpdateExist)
}

// Tunnel returns one tunnel.
func (d *Datapath) Tunnel(id uint32) (Tunnel, error) {
	var v datapathTunnel
	if err := d.maps.Tunnels.Lookup(&id, &v); err != nil {
		return Tunnel{}, fmt.Errorf("tunnel %d: %w", id, ErrNotFound)
	}
	return d.tunnelFromValue(id, &v), nil
}

// DeleteTunnel removes a tunnel. It refuses while routes still use it.
func (d *Datapath) DeleteTunnel(id uint32) error {
	t, err := d.Tunnel(id)
	if err != nil {
		return err
	}
	routes, err := d.Routes()
	if err != nil {
		return err
	}
	n := 0
	for _, r := range routes {
		if !r.Local && r.Tunnel == id {
			n++
		}
	}
	if n > 0 {
		return fmt.Errorf("tunnel %d still carries %d route(s): delete them first", id, n)
	}
	err = d.maps.TunnelL2s.Delete(&id)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		err = nil // nothing was learnt
	}
	return errors.Join(d.releaseEndpoint(&t), d.maps.Tunnels.Delete(&id), d.maps.TunnelCounters.Delete(&id), err)
}

// Tunnels lists every tunnel.
func (d *Datapath) Tunnels() ([]Tunnel, error) {
	var out []Tunnel
	var id uint32
	var v datapathTunnel
	it := d.maps.Tunnels.Iterate()
	for it.Next(&id, &v) {
		out = append(out, d.tunnelFromValue(id, &v))
	}
	return out, it.Err()
}

// claimEndpoint records how received packets find tunnel t: its outer
// source, type and key, for a layer-3 device tunnel its device, for a
// layer-2 one its device and neighbour (and the neighbour's next hop).
func (d *Datapath) claimEndpoint(t *Tunnel) error {
	id := t.ID
	var err error
	if t.Type == DEVICE && t.NextHop.IsValid() {
		return d.claimNeighbour(t)
	}
	if t.Type == DEVICE {
		err = d.maps.DeviceTunnels.Update(&t.Ifindex, &id, ebpf.UpdateNoExist)
	} else {
		ek := t.endpoint()
		err = d.maps.Endpoints.Update(&ek, &id, ebpf.UpdateNoExist)
	}
	if errors.Is(err, ebpf.ErrKeyExist) {
		if t.Type == DEVICE {
			return fmt.Errorf("tunnel %d: a tunnel on device %d %w", t.ID, t.Ifindex, ErrExists)
		}
		return fmt.Errorf("tunnel %d: a tunnel with remote %s (%s) %w", t.ID, t.Remote, t.Type, ErrExists)
	}
	return err
}

// releaseEndpoint undoes claimEndpoint.
func (d *Datapath) releaseEndpoint(t *Tunnel) error {
	if t.Type == DEVICE && t.NextHop.IsValid() {
		return d.releaseNeighbour(t)
	}
	if t.Type == DEVICE {
		return d.maps.DeviceTunnels.Delete(&t.Ifindex)
	}
	ek := t.endpoint()
	return d.maps.Endpoints.Delete(&ek)
}
