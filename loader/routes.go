package loader

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
)

var (
	anySrc  = netip.MustParsePrefix("::/0")
	anySrc4 = netip.MustParsePrefix("0.0.0.0/0")
)

// ErrExists and ErrNotFound are returned by adds and deletes.
var (
	ErrExists   = errors.New("already exists")
	ErrNotFound = errors.New("not found")
)

func checkPrefix(p netip.Prefix, what string) error {
	if !p.IsValid() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
		return fmt.Errorf("%s %s is not an IPv6 or IPv4 prefix", what, p)
	}
	if p.Masked() != p {
		return fmt.Errorf("%s %s has host bits set (did you mean %s?)", what, p, p.Masked())
	}
	return nil
}

// routeSlot returns the map and key holding the route (dst, src). Routes
// with a source prefix are source-specific defaults, which the data plane
// keeps in a map keyed by source; so is the plain default route (::/0 from
// ::/0), so that a more specific source wins over it as RFC 9079 orders.
// IPv4 routes are destination routes only, in a map of their own; their
// source is 0.0.0.0/0 (or unset).
func (d *Datapath) routeSlot(dst, src netip.Prefix) (*ebpf.Map, any, error) {
	if err := checkPrefix(dst, "destination"); err != nil {
		return nil, nil, err
	}
	if dst.Addr().Is4() {
		if src.IsValid() && src != anySrc4 {
			return nil, nil, fmt.Errorf("route %s from %s: IPv4 routes have no source prefix", dst, src)
		}
		return d.maps.Routes4, route4Key(dst), nil
	}
	if !src.IsValid() {
		src = anySrc
	}
	if err := checkPrefix(src, "source"); err != nil {
		return nil, nil, err
	}
	if !src.Addr().Is6() {
		return nil, nil, fmt.Errorf("route %s from %s: the source of an IPv6 route is an IPv6 prefix", dst, src)
	}
	if dst.Bits() == 0 {
		k := routeKey(src)
		return d.maps.SourceRoutes, &k, nil
	}
	if src.Bits() != 0 {
		return nil, nil, fmt.Errorf("route %s from %s: the data plane supports source prefixes only on the default route ::/0", dst, src)
	}
	k := routeKey(dst)
	return d.maps.Routes, &k, nil
}

// SetRoute adds or replaces the route (dst from src). src may be the zero
// Prefix for ::/0 (0.0.0.0/0 for an IPv4 dst).
func (d *Datapath) SetRoute(dst, src netip.Prefix, nh Nexthop) error {
	return d.putRoute(dst, src, nh, ebpf.UpdateAny)
}

// AddRoute adds a route and fails with ErrExists if that prefix has one.
func (d *Datapath) AddRoute(dst, src netip.Prefix, nh Nexthop) error {
	return d.putRoute(dst, src, nh, ebpf.UpdateNoExist)
}

func (d *Datapath) putRoute(dst, src netip.Prefix, nh Nexthop, flags ebpf.MapUpdateFlags) error {
	m, key, err := d.routeSlot(dst, src)
	if err != nil {
		return err
	}
	if !nh.Local {
		var t datapathTunnel
		if err := d.maps.Tunnels.Lookup(nh.Tunnel, &t); err != nil {
			return fmt.Errorf("route %s: tunnel %d: %w", dst, nh.Tunnel, ErrNotFound)
		}
	}
	v := nh.value()
	if err := m.Update(key, &v, flags); err != nil {
		if errors.Is(err, ebpf.ErrKeyExist) {
			return fmt.Errorf("route %s: %w", dst, ErrExists)
		}
		return fmt.Errorf("route %s: %w", dst, err)
	}
	return nil
}

// DeleteRoute removes the route (dst from src).
func (d *Datapath) DeleteRoute(dst, src netip.Prefix) error {
	m, key, err := d.routeSlot(dst, src)
	if err != nil {
		return err
	}
	if err := m.Delete(key); err != nil {
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("route %s: %w", dst, ErrNotFound)
		}
		return err
	}
	return nil
}

// Routes lists every route: IPv6 destination routes, source-specific
// ones, then IPv4 routes.
func (d *Datapath) Routes() ([]Route, error) {
	var out []Route
	var k datapathRouteKey
	var v datapathRoute
	it := d.maps.Routes.Iterate()
	for it.Next(&k, &v) {
		out = append(out, Route{Dst: prefixFromKey(&k), Src: anySrc, Nexthop: nexthopFromValue(&v)})
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	it = d.maps.SourceRoutes.Iterate()
	for it.Next(&k, &v) {
		out = append(out, Route{Dst: anySrc, Src: prefixFromKey(&k), Nexthop: nexthopFromValue(&v)})
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	var k4 datapathRoute4Key
	it = d.maps.Routes4.Iterate()
	for it.Next(&k4, &v) {
		out = append(out, Route{Dst: netip.PrefixFrom(netip.AddrFrom4(k4.Addr), int(k4.Prefixlen)), Src: anySrc4, Nexthop: nexthopFromValue(&v)})
	}
	return out, it.Err()
}

func route4Key(p netip.Prefix) *datapathRoute4Key {
	return &datapathRoute4Key{Prefixlen: uint32(p.Bits()), Addr: p.Addr().As4()}
}
