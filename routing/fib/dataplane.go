package fib

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/re6st-bpf/re6st-bpf/loader"
)

// RouteMap is the data plane's route map; *loader.Datapath implements it.
// A source prefix is only allowed on the default route ::/0, which is all
// re6st needs (::/0 from the network, announced by gateways).
type RouteMap interface {
	SetRoute(dst, src netip.Prefix, nh loader.Nexthop) error
	DeleteRoute(dst, src netip.Prefix) error
}

// TunnelLookup maps a Babel next hop (the interface a neighbour was heard
// on and its link-local address) to the data plane's tunnel id.
type TunnelLookup func(ifname string, neighbour netip.Addr) (tunnel uint32, ok bool)

// Dataplane is the Backend of re6st nodes: routes go into the BPF route
// map, each pointing at the tunnel that reaches the Babel next hop.
type Dataplane struct {
	Map    RouteMap
	Tunnel TunnelLookup
}

// Replace implements Backend.
func (d *Dataplane) Replace(r Route) error {
	id, ok := d.Tunnel(r.Interface, r.NextHop)
	if !ok {
		return fmt.Errorf("fib: %s: no tunnel for next hop %s on %s", describe(r.Dst, r.Src), r.NextHop, r.Interface)
	}
	return d.Map.SetRoute(r.Dst, r.Src, loader.Nexthop{Tunnel: id})
}

// Delete implements Backend.
func (d *Dataplane) Delete(dst, src netip.Prefix) error {
	if err := d.Map.DeleteRoute(dst, src); err != nil && !errors.Is(err, loader.ErrNotFound) {
		return err
	}
	return nil
}
