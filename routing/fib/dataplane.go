package fib

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
)

// RouteMap is the data plane's route map; *loader.Datapath implements it.
// A source prefix is only allowed on the default route ::/0, which is all
// re6st needs (::/0 from the network, announced by gateways).
type RouteMap interface {
	SetRoute(dst, src netip.Prefix, nh loader.Nexthop) error
	DeleteRoute(dst, src netip.Prefix) error
	Routes() ([]loader.Route, error)
}

// TunnelLookup maps a Babel next hop (the interface a neighbour was heard
// on and its link-local address) to the data plane's tunnel id.
type TunnelLookup func(ifname string, neighbour netip.Addr) (tunnel uint32, ok bool)

// Dataplane is the Backend of re6st nodes: routes go into the BPF route
// map, each pointing at the tunnel that reaches the Babel next hop.
type Dataplane struct {
	Map    RouteMap
	Tunnel TunnelLookup
	// Class, when set, gives each route the traffic class of its
	// destination (0: none).
	Class func(dst netip.Prefix) uint8
}

// Replace implements Backend.
func (d *Dataplane) Replace(r Route) error {
	id, ok := d.Tunnel(r.Interface, r.NextHop)
	if !ok {
		return fmt.Errorf("fib: %s: no tunnel for next hop %s on %s", describe(r.Dst, r.Src), r.NextHop, r.Interface)
	}
	nh := loader.Nexthop{Tunnel: id}
	if d.Class != nil {
		nh.Class = d.Class(r.Dst)
	}
	return d.Map.SetRoute(r.Dst, r.Src, nh)
}

// Delete implements Backend.
func (d *Dataplane) Delete(dst, src netip.Prefix) error {
	if err := d.Map.DeleteRoute(dst, src); err != nil && !errors.Is(err, loader.ErrNotFound) {
		return err
	}
	return nil
}

// DeleteVia implements Sweeper.
func (d *Dataplane) DeleteVia(tunnel uint32) ([]babel.RouteKey, error) {
	return d.deleteWhere(func(r loader.Route) bool { return r.Nexthop.Tunnel == tunnel })
}

// DeleteExcept implements Sweeper.
func (d *Dataplane) DeleteExcept(keep func(babel.RouteKey) bool) ([]babel.RouteKey, error) {
	return d.deleteWhere(func(r loader.Route) bool { return !keep(babel.KeyOf(r.Dst, r.Src)) })
}

// deleteWhere deletes the routes through tunnels that match.
func (d *Dataplane) deleteWhere(match func(loader.Route) bool) ([]babel.RouteKey, error) {
	routes, err := d.Map.Routes()
	if err != nil {
		return nil, err
	}
	var keys []babel.RouteKey
	var errs []error
	for _, r := range routes {
		if r.Nexthop.Local || !match(r) {
			continue
		}
		if err := d.Delete(r.Dst, r.Src); err != nil {
			errs = append(errs, err)
			continue
		}
		keys = append(keys, babel.KeyOf(r.Dst, r.Src))
	}
	return keys, errors.Join(errs...)
}
