package babel

import (
	"net/netip"
	"time"
)

// receive handles one packet from the interface's transport.
func (r *Router) receive(i *iface, src, dst netip.Addr, pkt []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i.removed || r.closed {
		return
	}
	now := r.clock.Now()
	i.stats.PacketsReceived++
	i.stats.BytesReceived += uint64(len(pkt))
	src, dst = src.WithZone(""), dst.WithZone("")
	if !src.Is6() || !src.IsLinkLocalUnicast() {
		i.stats.Dropped++
		r.log.Debug().Str("interface", i.name).Stringer("src", src).Msg("babel: packet from a non-link-local address")
		return
	}
	p, err := ParsePacket(pkt)
	if err != nil {
		i.stats.Dropped++
		r.log.Debug().Err(err).Str("interface", i.name).Stringer("src", src).Msg("babel: malformed packet")
		return
	}
	if i.auth != nil && !r.authenticate(i, src, dst, pkt, p, now) {
		i.stats.Dropped++
		return
	}
	r.process(i, src, dst, p.Messages, now)
}

// authenticate checks the MAC and the packet counter (RFC 8967 §4.3) and
// answers challenges.
func (r *Router) authenticate(i *iface, src, dst netip.Addr, pkt []byte, p *Packet, now time.Duration) bool {
	packet, _, _ := SplitPacket(pkt)
	if !i.auth.verify(src, dst, packet, p.MACs) {
		if !i.auth.cfg.Permissive {
			r.log.Debug().Str("interface", i.name).Stringer("src", src).Msg("babel: bad or missing MAC")
		}
		return i.auth.cfg.Permissive
	}
	accept, act := i.auth.checkPC(src, dst.IsMulticast(), p.Messages, now, func() []byte { return r.randomBytes(nonceLen) })
	if act.request != nil || len(act.replies) > 0 {
		b := i.unicastBuffer(src)
		for _, nonce := range act.replies {
			b.msgs = append(b.msgs, ChallengeReply{Nonce: nonce})
		}
		if act.request != nil {
			b.msgs = append(b.msgs, ChallengeRequest{Nonce: act.request})
		}
		r.scheduleFlush(i, r.jitter(urgentDelay, 0.5))
	}
	if !accept {
		r.log.Debug().Str("interface", i.name).Stringer("src", src).Msg("babel: packet counter not accepted")
	}
	return accept
}

// process applies the messages of an accepted packet. Hellos go first so
// that the other TLVs of a packet from a new neighbour are not lost, and so
// that an IHU can be matched with the Hello of the same packet for RTT.
func (r *Router) process(i *iface, src, dst netip.Addr, msgs []Message, now time.Duration) {
	n := i.neighbours[src]
	var helloTS *uint32
	for _, m := range msgs {
		if h, ok := m.(Hello); ok {
			n = r.handleHello(i, src, h, now)
			if h.HasTimestamp {
				ts := h.Timestamp
				helloTS = &ts
			}
		}
	}
	if n == nil {
		return
	}
	for _, m := range msgs {
		if n.iface.neighbours[src] != n {
			return // flushed while processing
		}
		switch m := m.(type) {
		case IHU:
			r.handleIHU(n, m, helloTS, now)
		case Update:
			r.handleUpdate(n, m, src, now)
		case RouteRequest:
			r.handleRouteRequest(n, m, dst, now)
		case SeqnoRequest:
			r.handleSeqnoRequest(n, m, now)
		case AckRequest:
			b := i.unicastBuffer(src)
			b.msgs = append(b.msgs, Ack{Opaque: m.Opaque})
			r.scheduleFlush(i, min(r.jitter(urgentDelay, 0.5), m.Interval.Duration()))
		}
	}
}

// handleRouteRequest answers a route request on the interface it came
// from, multicast or unicast as it was sent. A multicast wildcard request
// is not answered if a full dump went out very recently (boot storms).
func (r *Router) handleRouteRequest(n *neighbour, m RouteRequest, dst netip.Addr, now time.Duration) {
	i := n.iface
	b := i.mcast
	if !dst.IsMulticast() {
		b = i.unicastBuffer(n.addr)
	}
	if !m.Prefix.IsValid() {
		if b == i.mcast {
			if i.lastFullDump != 0 && now-i.lastFullDump < i.cfg.HelloInterval/2 {
				return
			}
			i.lastFullDump = now
		}
		b.fullDump = true
		r.scheduleFlush(i, r.batchDelay(i, b != i.mcast))
		return
	}
	// A key never seen is not interned: we answer with a retraction.
	if id, ok := r.intern.findKey(KeyOf(m.Prefix, m.Source)); ok {
		b.addUpdate(id)
	} else {
		b.msgs = append(b.msgs, retraction(i, KeyOf(m.Prefix, m.Source)))
	}
	r.scheduleFlush(i, r.batchDelay(i, true))
}

// routeCheckPeriod is how often routes are scanned for expiry.
const routeCheckPeriod = 2 * time.Second

// scheduleHousekeeping arms the periodic check of neighbours, routes and
// requests: an eighth of the shortest Hello interval, so that lost Hellos
// are noticed promptly.
func (r *Router) scheduleHousekeeping() {
	if r.housekeeping != nil {
		r.housekeeping.Stop()
	}
	period := time.Second
	for _, i := range r.ifaces {
		period = min(period, i.cfg.HelloInterval/8)
	}
	r.housekeeping = r.clock.AfterFunc(period, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.closed {
			return
		}
		now := r.clock.Now()
		r.checkNeighbours(now)
		if now >= r.nextRouteCheck {
			r.checkRoutes(now)
			r.nextRouteCheck = now + routeCheckPeriod
		}
		r.checkRequests(now)
		r.checkResends(now)
		r.scheduleHousekeeping()
	})
}
