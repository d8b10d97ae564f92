package babel

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// Dump is a snapshot of a router's state, for status commands and tests.
type Dump struct {
	RouterID   string          `json:"router_id"`
	Seqno      uint16          `json:"seqno"`
	Interfaces []InterfaceInfo `json:"interfaces"`
	Neighbours []NeighbourInfo `json:"neighbours"`
	Exported   []ExportedInfo  `json:"exported"`
	Routes     []RouteInfo     `json:"routes"`
}

// InterfaceInfo describes one interface.
type InterfaceInfo struct {
	Name          string        `json:"name"`
	Type          string        `json:"type"`
	Local         netip.Addr    `json:"local"`
	HelloInterval time.Duration `json:"hello_interval_ns"`
	Authenticated bool          `json:"authenticated"`
	Stats         IfaceStats    `json:"stats"`
}

// NeighbourInfo describes one neighbour, with babeld's link-cost fields.
type NeighbourInfo struct {
	Interface  string     `json:"interface"`
	Address    netip.Addr `json:"address"`
	Reach      uint16     `json:"reach"`
	UReach     uint16     `json:"ureach"`
	Rxcost     uint16     `json:"rxcost"`
	Txcost     uint16     `json:"txcost"`
	RTTValid   bool       `json:"rtt_valid"`
	RTTMicros  uint32     `json:"rtt_us"`
	RTTCost    uint16     `json:"rttcost"`
	Multiplier uint16     `json:"cost_multiplier"`
	Cost       uint16     `json:"cost"`
}

// ExportedInfo is a prefix this router originates.
type ExportedInfo struct {
	Prefix netip.Prefix `json:"prefix"`
	Source netip.Prefix `json:"source,omitzero"`
	Metric uint16       `json:"metric"`
}

// RouteInfo is one route of the table; Selected marks the one Babel
// selected (whether it reached a forwarding table is the fib writer's to say).
type RouteInfo struct {
	Prefix    netip.Prefix `json:"prefix"`
	Source    netip.Prefix `json:"source,omitzero"`
	Metric    uint16       `json:"metric"`
	Refmetric uint16       `json:"refmetric"`
	Seqno     uint16       `json:"seqno"`
	RouterID  string       `json:"router_id"`
	Interface string       `json:"interface"`
	Neighbour netip.Addr   `json:"neighbour"`
	NextHop   netip.Addr   `json:"nexthop"`
	Feasible  bool         `json:"feasible"`
	Selected  bool         `json:"selected"`
}

// Dump returns a snapshot of the router's state, sorted for display.
func (r *Router) Dump() Dump {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	d := Dump{RouterID: r.id.String(), Seqno: r.seqno}
	for _, i := range r.ifaces {
		d.Interfaces = append(d.Interfaces, InterfaceInfo{
			Name: i.name, Type: i.cfg.Type.String(), Local: i.local,
			HelloInterval: i.cfg.HelloInterval, Authenticated: i.auth != nil, Stats: i.stats,
		})
		for _, n := range i.neighbours {
			d.Neighbours = append(d.Neighbours, NeighbourInfo{
				Interface: i.name, Address: n.addr, Reach: n.hello.reach, UReach: n.uhello.reach,
				Rxcost: n.rxcost(now), Txcost: n.txcostNow(now),
				RTTValid: n.validRTT(now), RTTMicros: n.rtt, RTTCost: n.rttPenalty(n.iface.cfg.RTT, now),
				Multiplier: n.multiplier(), Cost: n.cost,
			})
		}
	}
	for id, m := range r.exported {
		k := r.intern.key(id)
		d.Exported = append(d.Exported, ExportedInfo{Prefix: k.Prefix, Source: k.Source, Metric: m})
	}
	for _, dest := range r.dests {
		if dest == nil {
			continue
		}
		key := r.intern.key(dest.id)
		for j := range dest.routes {
			rt := &dest.routes[j]
			n := r.neighs[rt.nb]
			d.Routes = append(d.Routes, RouteInfo{
				Prefix: key.Prefix, Source: key.Source,
				Metric: r.metric(dest, rt), Refmetric: rt.refmetric, Seqno: rt.seqno, RouterID: rt.routerID.String(),
				Interface: n.iface.name, Neighbour: n.addr, NextHop: r.nexthopOf(rt),
				Feasible: r.routeFeasible(dest, rt), Selected: dest.selNeigh == n,
			})
		}
	}
	slices.SortFunc(d.Interfaces, func(a, b InterfaceInfo) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(d.Neighbours, func(a, b NeighbourInfo) int {
		return cmp.Or(cmp.Compare(a.Interface, b.Interface), a.Address.Compare(b.Address))
	})
	slices.SortFunc(d.Exported, func(a, b ExportedInfo) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	slices.SortFunc(d.Routes, func(a, b RouteInfo) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()),
			a.Source.Addr().Compare(b.Source.Addr()), cmp.Compare(a.Source.Bits(), b.Source.Bits()),
			cmp.Compare(a.Interface, b.Interface), a.Neighbour.Compare(b.Neighbour))
	})
	return d
}
