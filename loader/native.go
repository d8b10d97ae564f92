package loader

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/vishvananda/netlink"
)

// NativeRoute is a border gateway's route to a destination outside the
// overlay (learned from BGP): the data plane decapsulates the overlay's
// packets to it and sends them to NextHop on the upstream interface
// Ifindex (bpf/include/native.h).
type NativeRoute struct {
	Dst     netip.Prefix `json:"dst"`
	NextHop netip.Addr   `json:"next_hop"` // IPv6, on Ifindex
	Ifindex uint32       `json:"ifindex"`
	// MTU is the upstream interface's: larger packets take the slow path.
	MTU uint16 `json:"mtu"`
}

func (r *NativeRoute) value() (datapathNativeRoute, error) {
	if err := checkPrefix(r.Dst, "native route"); err != nil {
		return datapathNativeRoute{}, err
	}
	if !r.Dst.Addr().Is6() || !r.NextHop.Is6() || r.NextHop.Is4In6() {
		return datapathNativeRoute{}, fmt.Errorf("native route %s via %s: IPv6 only", r.Dst, r.NextHop)
	}
	if r.Ifindex == 0 || r.MTU < 1280 {
		return datapathNativeRoute{}, fmt.Errorf("native route %s: want an interface and an MTU of at least 1280", r.Dst)
	}
	return datapathNativeRoute{Nexthop: r.NextHop.As16(), Ifindex: r.Ifindex, Mtu: r.MTU}, nil
}

// SetNativeRoute adds or replaces a native route.
func (d *Datapath) SetNativeRoute(r NativeRoute) error {
	v, err := r.value()
	if err != nil {
		return err
	}
	k := routeKey(r.Dst)
	if err := d.maps.NativeRoutes.Update(&k, &v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("native route %s: %w", r.Dst, err)
	}
	return nil
}

// DeleteNativeRoute removes the native route to dst.
func (d *Datapath) DeleteNativeRoute(dst netip.Prefix) error {
	k := routeKey(dst)
	if err := d.maps.NativeRoutes.Delete(&k); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("native route %s: %w", dst, ErrNotFound)
		}
		return fmt.Errorf("native route %s: %w", dst, err)
	}
	return nil
}

// NativeRoutes lists the native routes.
func (d *Datapath) NativeRoutes() ([]NativeRoute, error) {
	var out []NativeRoute
	var k datapathRouteKey
	var v datapathNativeRoute
	it := d.maps.NativeRoutes.Iterate()
	for it.Next(&k, &v) {
		out = append(out, NativeRoute{Dst: prefixFromKey(&k), NextHop: netip.AddrFrom16(v.Nexthop), Ifindex: v.Ifindex, MTU: v.Mtu})
	}
	return out, it.Err()
}

// NativeCounters are the native traffic of one upstream interface: rx from
// the internet into the overlay, tx from the overlay to the internet.
type NativeCounters struct {
	Ifindex   uint32 `json:"ifindex"`
	Interface string `json:"interface,omitempty"` // its name, while it exists
	TunnelStats
}

// NativeCounters returns the counters of every upstream interface that
// carried native traffic, by ifindex.
func (d *Datapath) NativeCounters() ([]NativeCounters, error) {
	var out []NativeCounters
	var k uint32
	var per []datapathTunnelStats
	it := d.maps.NativeCounters.Iterate()
	for it.Next(&k, &per) {
		out = append(out, NativeCounters{Ifindex: k, TunnelStats: sumStats(per)})
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ifindex < out[j].Ifindex })
	err := InNetns(d.State.Netns, func() error {
		for i := range out {
			if l, err := netlink.LinkByIndex(int(out[i].Ifindex)); err == nil {
				out[i].Interface = l.Attrs().Name
			}
		}
		return nil
	})
	return out, err
}
