package babel

import "time"

// Seqno request timing: our own requests are resent with a doubling delay;
// forwarded requests are remembered for duplicate suppression only.
const (
	requestResendDelay = 2 * time.Second
	requestMaxResends  = 3
	requestDupWindow   = time.Second
	forwardedLifetime  = 2 * time.Second
	initialHopCount    = 127
)

// pendingRequest is a seqno request we sent or forwarded, waiting for an
// update that satisfies it.
type pendingRequest struct {
	routerID   RouterID
	seqno      uint16
	requester  *neighbour // who asked us; nil for our own requests
	target     *neighbour // where we sent it; nil for multicast
	sent       time.Duration
	resends    int
	nextResend time.Duration
}

// duplicate reports whether a request for (id, seqno) is already covered.
func (p *pendingRequest) duplicate(id RouterID, seqno uint16, now time.Duration) bool {
	return p != nil && p.routerID == id && !SeqnoLess(p.seqno, seqno) && now-p.sent < requestDupWindow
}

// requestSeqno asks neighbour n for a seqno that makes routes from id
// feasible again: one more than our feasibility distance.
func (r *Router) requestSeqno(d *destination, id RouterID, n *neighbour) {
	s := d.source(id, r.clock.Now())
	if s == nil {
		return
	}
	r.sendSeqnoRequest(d.id, id, s.seqno+1, n)
}

// sendSeqnoRequest originates a seqno request, unicast to target or
// multicast on every interface when target is nil.
func (r *Router) sendSeqnoRequest(key uint32, id RouterID, seqno uint16, target *neighbour) {
	now := r.clock.Now()
	if r.requests[key].duplicate(id, seqno, now) {
		return
	}
	r.requests[key] = &pendingRequest{routerID: id, seqno: seqno, target: target, sent: now, nextResend: now + requestResendDelay}
	r.transmitRequest(key, id, seqno, initialHopCount, target)
}

func (r *Router) transmitRequest(kid uint32, id RouterID, seqno uint16, hops uint8, target *neighbour) {
	key := r.intern.key(kid)
	m := SeqnoRequest{Prefix: key.Prefix, Source: key.Source, Seqno: seqno, HopCount: hops, RouterID: id}
	if target != nil {
		b := target.iface.unicastBuffer(target.addr)
		b.msgs = append(b.msgs, m)
		r.scheduleFlush(target.iface, r.jitter(urgentDelay, 0.5))
		return
	}
	for _, i := range r.ifaces {
		i.mcast.msgs = append(i.mcast.msgs, m)
		r.scheduleFlush(i, r.jitter(urgentDelay, 0.5))
	}
}

// satisfyRequests drops the pending request for key once an update with a
// different router-id or a seqno at least the requested one arrives, and
// passes the news on to whoever asked us.
func (r *Router) satisfyRequests(key uint32, id RouterID, seqno, metric uint16) {
	p := r.requests[key]
	if p == nil || metric >= Infinity || (id == p.routerID && SeqnoLess(seqno, p.seqno)) {
		return
	}
	delete(r.requests, key)
	if n := p.requester; n != nil && n.iface.neighbours[n.addr] == n {
		r.queueUrgentUpdate(n.iface, key)
	}
}

// handleSeqnoRequest answers or forwards a seqno request (RFC 8966 §3.8.1.2).
func (r *Router) handleSeqnoRequest(n *neighbour, m SeqnoRequest, now time.Duration) {
	key, ok := r.intern.findKey(KeyOf(m.Prefix, m.Source))
	if !ok {
		return // neither exported nor learned
	}
	if _, ok := r.exported[key]; ok {
		if m.RouterID == r.id && SeqnoLess(r.seqno, m.Seqno) {
			r.seqno++
			r.queueUrgentUpdate(nil, key)
		} else {
			r.queueUpdate(n.iface, key, true)
		}
		return
	}
	d := r.dest(key)
	if d == nil {
		return
	}
	if sel := d.selected(); sel != nil && (sel.routerID != m.RouterID || !SeqnoLess(sel.seqno, m.Seqno)) {
		r.queueUpdate(n.iface, key, true)
		return
	}
	if m.HopCount < 2 {
		return
	}
	target := r.forwardTarget(d, n)
	if target == nil || r.requests[key].duplicate(m.RouterID, m.Seqno, now) {
		return
	}
	r.requests[key] = &pendingRequest{routerID: m.RouterID, seqno: m.Seqno, requester: n, target: target, sent: now}
	r.transmitRequest(key, m.RouterID, m.Seqno, m.HopCount-1, target)
}

// forwardTarget picks the neighbour to forward a request to: the selected
// route's, or else the best other one, never the requester.
func (r *Router) forwardTarget(d *destination, requester *neighbour) *neighbour {
	if d.selNeigh != nil && d.selNeigh != requester {
		return d.selNeigh
	}
	var best *route
	for j := range d.routes {
		rt := &d.routes[j]
		if r.neighs[rt.nb] == requester || r.metric(d, rt) >= Infinity {
			continue
		}
		if best == nil || r.metric(d, rt) < r.metric(d, best) {
			best = rt
		}
	}
	if best == nil {
		return nil
	}
	return r.neighs[best.nb]
}

// checkRequests resends our own requests and forgets old ones.
func (r *Router) checkRequests(now time.Duration) {
	for key, p := range r.requests {
		if p.requester != nil {
			if now-p.sent > forwardedLifetime {
				delete(r.requests, key)
			}
			continue
		}
		if now < p.nextResend {
			continue
		}
		if p.resends >= requestMaxResends {
			delete(r.requests, key)
			continue
		}
		if p.target != nil && p.target.iface.neighbours[p.target.addr] != p.target {
			p.target = nil
		}
		p.resends++
		p.nextResend = now + requestResendDelay<<p.resends
		r.transmitRequest(key, p.routerID, p.seqno, initialHopCount, p.target)
	}
}
