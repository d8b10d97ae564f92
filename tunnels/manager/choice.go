package manager

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// choice is what the manager remembers of one peer's tunnel types: the
// one that last worked, and those that failed (a tunnel of that type over
// which Babel never got a usable link: a firewall on the path drops it),
// with when, by path (a type over one underlay family: pathOf). A set-up
// tries the types in preference order, a path that failed within the
// refresh period last; so after a failure the next path is tried, and the
// faster one again once its failure is that old.
type choice struct {
	worked string
	failed map[string]time.Time
}

// choiceOf returns the peer's memory, made if missing. Run's goroutine.
func (m *Manager) choiceOf(bits string) *choice {
	c := m.choices[bits]
	if c == nil {
		c = &choice{failed: map[string]time.Time{}}
		m.choices[bits] = c
	}
	return c
}

// rank orders a type: its index in the preference list (Config.Types), or
// without a list, our Encap first and the others after it; -1 for a type
// the list leaves out.
func (m *Manager) rank(encap string) int {
	if len(m.cfg.Types) == 0 {
		if encap == m.cfg.Encap {
			return 0
		}
		return 1
	}
	return slices.Index(m.cfg.Types, encap)
}

// pathOf names a type over an underlay family, what a failure is
// remembered for: an unannounced type (OpenVPN) runs over IPv4 and IPv6,
// and a firewall may drop one family and not the other, so its IPv6 items
// fail apart from its IPv4 ones.
func pathOf(encap string, ip netip.Addr) string {
	if ip.Is6() {
		return encap + " over IPv6"
	}
	return encap
}

// order keeps the addresses of the types the backend carries and we
// prefer, in preference order (the peer's order among equals: a peer
// lists its IPv4 items before its IPv6 ones, as re6st does), the paths
// that failed with the peer recently last. The types the data plane
// carries (FOU, GRE) and WireGuard are IPv4 only; an unannounced type
// (OpenVPN) also takes IPv6 items (re6st's tcp6 and udp6). Run's goroutine.
func (m *Manager) order(bits string, list []nodeproto.Address, now time.Time) []nodeproto.Address {
	failed := func(a nodeproto.Address) bool { return m.failedRecently(bits, pathOf(a.Proto, a.IP), now) }
	var out []nodeproto.Address
	for _, a := range list {
		family := a.IP.Is4() || a.IP.Is6() && m.unannounced(a.Proto)
		if family && m.cfg.Backend.Carries(a.Proto) && m.rank(a.Proto) >= 0 {
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(a, b nodeproto.Address) int {
		fa, fb := failed(a), failed(b)
		if fa != fb {
			if fa {
				return 1
			}
			return -1
		}
		return m.rank(a.Proto) - m.rank(b.Proto)
	})
	return out
}

// failedRecently: path (pathOf) failed with the peer within the refresh
// period.
func (m *Manager) failedRecently(bits, path string, now time.Time) bool {
	c := m.choices[bits]
	if c == nil {
		return false
	}
	at, ok := c.failed[path]
	return ok && now.Sub(at) < m.cfg.Params.RefreshPeriod()
}

// noteUsable records that a tunnel's type works with its peer.
func (m *Manager) noteUsable(e *entry) {
	if e.Outgoing {
		c := m.choiceOf(e.Bits)
		c.worked = e.Endpoint.Encap
		delete(c.failed, pathOf(e.Endpoint.Encap, e.Endpoint.Remote.Addr()))
	}
}

// fallBack records that an outgoing tunnel's type never worked with its
// peer, and, when the peer offers another type that has not failed, sets a
// tunnel up again at once with it.
func (m *Manager) fallBack(e *entry, now time.Time) {
	m.choiceOf(e.Bits).failed[pathOf(e.Endpoint.Encap, e.Endpoint.Remote.Addr())] = now
	addrs, ok := m.cfg.Cache.Get(e.Bits)
	if !ok {
		return
	}
	list, err := nodeproto.ParseAddresses(addrs)
	if err != nil {
		return
	}
	next := m.order(e.Bits, list, now)
	if len(next) == 0 || m.failedRecently(e.Bits, pathOf(next[0].Proto, next[0].IP), now) || !m.claim(e.Bits) {
		return
	}
	m.log.Info().Stringer("peer", e.Peer).Str("encap", e.Endpoint.Encap).Str("next", next[0].Proto).
		Msg("no Babel hello through the tunnel: trying the next tunnel type")
	bits := e.Bits
	m.spawn(func() {
		defer m.release(bits)
		m.makeTunnel(bits, addrs)
	})
}

// TypeOf is the tunnel type that last worked with a peer ("" if none).
func (m *Manager) TypeOf(bits string) string {
	var t string
	m.do(func() {
		if c := m.choices[bits]; c != nil {
			t = c.worked
		}
	})
	return t
}

// fallingBack: a request for another type from the peer of incoming
// tunnel e, which never got a usable Babel link since long enough for the
// peer to have given up on it (it falls back after the timeout; half of it
// here, for the clocks' and ticks' skew).
func (m *Manager) fallingBack(e *entry, encap string) bool {
	return !e.Outgoing && e.usable.IsZero() && e.Endpoint.Encap != encap && m.settled(e)
}

// settled: tunnel e is at least half a timeout old, so that a request from
// its peer for another tunnel is not one that crossed ours or its reply:
// the peer can have given up on e, or restarted since.
func (m *Manager) settled(e *entry) bool {
	return m.clock.Now().Sub(e.Created) >= m.timeout()/2
}

// upgradable returns an outgoing tunnel that works but whose peer offers a
// faster type that has not failed with it within the refresh period (a
// firewall went away): the refresh replaces it, and the new set-up tries
// that type first. nil if none. Run's goroutine.
func (m *Manager) upgradable(now time.Time) *entry {
	ids := slices.Sorted(maps.Keys(m.tunnels))
	for _, id := range ids {
		e := m.tunnels[id]
		if !e.Outgoing || e.draining || e.usable.IsZero() {
			continue
		}
		addrs, ok := m.cfg.Cache.Get(e.Bits)
		if !ok {
			continue
		}
		list, err := nodeproto.ParseAddresses(addrs)
		if err != nil {
			continue
		}
		if best := m.order(e.Bits, list, now); len(best) > 0 && m.rank(best[0].Proto) < m.rank(e.Endpoint.Encap) {
			return e
		}
	}
	return nil
}
