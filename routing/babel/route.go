package babel

import (
	"math"
	"net/netip"
	"slices"
	"time"
)

// route is what one neighbour told us about one destination. Routes are
// stored by value in their destination, so this is kept small (48 octets)
// and free of pointers, which the garbage collector then need not scan: a
// table of 10,000 prefixes learned from 10 neighbours holds 100,000 of them.
type route struct {
	routerID   RouterID
	updated    time.Duration // last update received, or when it expired
	smoothedAt time.Duration
	smoothed   float64
	nexthop    uint32 // 0: the neighbour's address; else 1 + its Interner id
	nb         uint32 // the neighbour's slot in Router.neighs
	seqno      uint16
	refmetric  uint16
	interval   Centis // advertised update interval, which sets the hold time
	// refreshAsked is set once a refresh was requested for this update.
	refreshAsked bool
	haveSmoothed bool
}

// hold is how long the route lives without a refresh.
func (rt *route) hold() time.Duration { return holdTime(rt.interval) }

// expires is when the route is retracted (or, retracted, dropped).
func (rt *route) expires() time.Duration { return rt.updated + rt.hold() }

// destination holds every route to one RouteKey and the selected one.
type destination struct {
	id       uint32 // the key's Interner id
	routes   []route
	selNeigh *neighbour    // the selected route is the one from selNeigh
	last     selectedState // what selected looked like when last examined
	sources  []source      // feasibility distances, one per router-id
	class    uint8         // Router.classOf its key: whose link cost it uses
}

// route returns the route from n, if any. The pointer is valid until a
// route of d is added or removed.
func (d *destination) route(n *neighbour) *route {
	for j := range d.routes {
		if d.routes[j].nb == n.slot {
			return &d.routes[j]
		}
	}
	return nil
}

// selected returns the selected route, if any.
func (d *destination) selected() *route {
	if d.selNeigh == nil {
		return nil
	}
	return d.route(d.selNeigh)
}

// addRoute creates the route from n to d. The slice grows one entry at a
// time: a destination has few routes and spare capacity would cost more
// than the copies.
func (d *destination) addRoute(n *neighbour) *route {
	routes := make([]route, len(d.routes)+1)
	copy(routes, d.routes)
	routes[len(d.routes)].nb = n.slot
	d.routes = routes
	return &d.routes[len(d.routes)-1]
}

// removeRoute forgets the route from n.
func (d *destination) removeRoute(n *neighbour) {
	d.routes = slices.DeleteFunc(d.routes, func(rt route) bool { return rt.nb == n.slot })
}

// source is a feasibility distance: the best (seqno, metric) we advertised
// for a destination from one router-id.
type source struct {
	routerID RouterID
	seqno    uint16
	metric   uint16
	time     time.Duration
}

// source returns the live feasibility distance for id, if any.
func (d *destination) source(id RouterID, now time.Duration) *source {
	for j := range d.sources {
		if s := &d.sources[j]; s.routerID == id && now-s.time <= sourceGCTime {
			return s
		}
	}
	return nil
}

// sourceGCTime is how long an unused feasibility distance is kept (babeld's
// SOURCE_GC_TIME).
const sourceGCTime = 200 * time.Second

// metric is the route's metric through its neighbour, with the link cost
// of d's class.
func (r *Router) metric(d *destination, rt *route) uint16 {
	cost := r.neighs[rt.nb].costFor(d.class)
	if rt.refmetric >= Infinity || cost >= Infinity {
		return Infinity
	}
	return uint16(min(int(rt.refmetric)+int(cost), Infinity))
}

// feasible is the feasibility condition (RFC 8966 §3.5.1).
func (r *Router) feasible(d *destination, id RouterID, seqno, metric uint16) bool {
	if metric >= Infinity {
		return true
	}
	s := d.source(id, r.clock.Now())
	if s == nil {
		return true
	}
	return SeqnoLess(s.seqno, seqno) || (seqno == s.seqno && metric < s.metric)
}

func (r *Router) routeFeasible(d *destination, rt *route) bool {
	return r.feasible(d, rt.routerID, rt.seqno, rt.refmetric)
}

// noteAdvertised updates the feasibility distance after we announce
// (seqno, metric) for d from id (RFC 8966 §3.7.3).
func (r *Router) noteAdvertised(d *destination, id RouterID, seqno, metric uint16, now time.Duration) {
	if metric >= Infinity {
		return
	}
	var s *source
	for j := range d.sources {
		if d.sources[j].routerID == id {
			s = &d.sources[j]
		}
	}
	switch {
	case s == nil:
		d.sources = append(d.sources, source{routerID: id, seqno: seqno, metric: metric, time: now})
	case SeqnoLess(s.seqno, seqno) || now-s.time > sourceGCTime:
		s.seqno, s.metric, s.time = seqno, metric, now
	case seqno == s.seqno:
		s.metric = min(s.metric, metric)
		s.time = now
	}
}

// smoothedMetric is an exponential average of the route's metric with the
// configured half-life, used for hysteresis.
func (r *Router) smoothedMetric(d *destination, rt *route, now time.Duration) float64 {
	m := float64(r.metric(d, rt))
	if r.halfLife < 0 || m >= Infinity || !rt.haveSmoothed {
		rt.smoothed, rt.smoothedAt, rt.haveSmoothed = m, now, m < Infinity
		return m
	}
	f := math.Exp2(-float64(now-rt.smoothedAt) / float64(r.halfLife))
	rt.smoothed = m + (rt.smoothed-m)*f
	rt.smoothedAt = now
	return rt.smoothed
}

// holdTime is how long a route lives without refresh: babeld's
// max(6 × interval, 15 s).
func holdTime(iv Centis) time.Duration {
	return max(6*iv.Duration(), 15*time.Second)
}

// handleUpdate processes an Update from n. src is the packet's source.
func (r *Router) handleUpdate(n *neighbour, u Update, src netip.Addr, now time.Duration) {
	if u.IsWildcard() {
		r.forEachRouteVia(n, func(d *destination, rt *route) {
			if rt.refmetric < Infinity {
				rt.refmetric, rt.updated = Infinity, now
				r.reselect(d)
			}
		})
		return
	}
	if u.RouterID == r.id {
		return // our own announcement coming back
	}
	key := KeyOf(u.Prefix, u.Source)
	id, known := r.intern.findKey(key)
	if !known {
		if u.Metric >= Infinity {
			return // a retraction of a prefix never heard of
		}
		id = r.intern.keyID(key)
	}
	if _, ok := r.exported[id]; ok {
		return
	}
	d := r.dest(id)
	var rt *route
	if d != nil {
		rt = d.route(n)
	}
	r.satisfyRequests(id, u.RouterID, u.Seqno, u.Metric)
	if rt == nil && u.Metric >= Infinity {
		return
	}
	if d == nil {
		d = r.newDest(id)
	}
	feasible := r.feasible(d, u.RouterID, u.Seqno, u.Metric)
	if rt != nil && rt == d.selected() && !feasible && rt.routerID == u.RouterID {
		// An unfeasible update from our successor for the same source:
		// keep the route as it was (RFC 8966 §3.5.4) and ask the source
		// for a new seqno, which will make the update feasible.
		r.requestSeqno(d, u.RouterID, n)
		return
	}
	if rt == nil {
		rt = d.addRoute(n)
	}
	var nexthop uint32
	if u.NextHop.IsValid() && u.NextHop != src {
		nexthop = 1 + r.intern.addrID(u.NextHop)
	}
	unchanged := rt.routerID == u.RouterID && rt.seqno == u.Seqno && rt.refmetric == u.Metric && rt.nexthop == nexthop
	rt.routerID, rt.seqno, rt.refmetric, rt.nexthop = u.RouterID, u.Seqno, u.Metric, nexthop
	rt.interval, rt.updated, rt.refreshAsked = u.Interval, now, false
	if unchanged && feasible {
		return // a refresh: nothing to reconsider
	}
	if !feasible {
		// Starvation help: if the unfeasible route would be much better
		// than what we have, ask for a newer seqno.
		if sel := d.selected(); sel == nil || int(r.metric(d, rt))+512 <= int(r.metric(d, sel)) {
			r.requestSeqno(d, u.RouterID, n)
		}
	}
	r.reselect(d)
}

// nexthopOf is the address packets routed by rt are sent to.
func (r *Router) nexthopOf(rt *route) netip.Addr {
	if rt.nexthop == 0 {
		return r.neighs[rt.nb].addr
	}
	return r.intern.addr(rt.nexthop - 1)
}

// dest returns the destination with key id, if any.
func (r *Router) dest(id uint32) *destination {
	if int(id) < len(r.dests) {
		return r.dests[id]
	}
	return nil
}

// findDest returns the destination for key, if any.
func (r *Router) findDest(key RouteKey) *destination {
	if id, ok := r.intern.findKey(key); ok {
		return r.dest(id)
	}
	return nil
}

// newDest creates the destination with key id.
func (r *Router) newDest(id uint32) *destination {
	if n := int(id) + 1 - len(r.dests); n > 0 {
		r.dests = append(r.dests, make([]*destination, n)...)
	}
	d := &destination{id: id, class: r.classOf(r.intern.key(id))}
	r.dests[id] = d
	return d
}

// forEachRouteVia calls fn for every route learned from n. fn may change
// the route and reselect, but not add or remove routes.
func (r *Router) forEachRouteVia(n *neighbour, fn func(d *destination, rt *route)) {
	for _, d := range r.dests {
		if d == nil {
			continue
		}
		if rt := d.route(n); rt != nil {
			fn(d, rt)
		}
	}
}

// reselectVia reconsiders every destination with a route through n.
func (r *Router) reselectVia(n *neighbour) {
	r.forEachRouteVia(n, func(d *destination, _ *route) { r.reselect(d) })
}

// reselect runs route selection for d (babeld's find_best_route and
// consider_route): the best feasible finite route replaces the selected one
// if the selected one became unusable, or if it is at least as good and
// better once smoothed (hysteresis).
func (r *Router) reselect(d *destination) {
	if _, ok := r.exported[d.id]; ok {
		return
	}
	now := r.clock.Now()
	var best *route
	bestMetric := uint16(Infinity)
	for j := range d.routes {
		rt := &d.routes[j]
		m := r.metric(d, rt)
		if m >= bestMetric || !r.routeFeasible(d, rt) {
			continue
		}
		best, bestMetric = rt, m
	}
	cur := d.selected()
	usable := cur != nil && r.metric(d, cur) < Infinity && r.routeFeasible(d, cur)
	switch {
	case !usable:
		r.setSelected(d, best)
	case best != nil && best != cur && bestMetric <= r.metric(d, cur) &&
		r.smoothedMetric(d, best, now) < r.smoothedMetric(d, cur, now):
		r.setSelected(d, best)
	default:
		r.setSelected(d, cur)
	}
}

// selectedState remembers what we last advertised about a destination, to
// decide whether a triggered update is needed. neigh is nil when there was
// no route.
type selectedState struct {
	neigh    *neighbour
	routerID RouterID
	nexthop  uint32
	seqno    uint16
	metric   uint16
}

func (s selectedState) valid() bool { return s.neigh != nil }

func (r *Router) stateOf(d *destination, rt *route) selectedState {
	if rt == nil {
		return selectedState{}
	}
	return selectedState{r.neighs[rt.nb], rt.routerID, rt.nexthop, rt.seqno, r.metric(d, rt)}
}

// metricChangeThreshold is the metric change that triggers an update
// without waiting for the periodic one; smaller changes (RTT jitter) wait.
const metricChangeThreshold = 96

// setSelected installs rt (possibly nil, or the current route with new
// attributes) as d's selected route, notifies subscribers and schedules
// the updates the change calls for.
func (r *Router) setSelected(d *destination, rt *route) {
	old := d.last
	d.selNeigh = nil
	if rt != nil {
		d.selNeigh = r.neighs[rt.nb]
	}
	cur := r.stateOf(d, rt)
	d.last = cur
	if old == cur {
		return
	}
	if old.neigh != cur.neigh || old.nexthop != cur.nexthop {
		change := RouteChange{Key: r.intern.key(d.id)}
		if rt != nil {
			sr := r.selectedRoute(d)
			change.Route = &sr
		}
		r.notify(change)
	}
	switch {
	case !cur.valid() && old.valid():
		r.routeLost(d, old)
	case !cur.valid():
	case old.valid() && old.routerID != cur.routerID:
		r.queueUrgentUpdate(nil, d.id)
	case !old.valid() || old.seqno != cur.seqno:
		r.queueUpdateAll(d.id, true)
	case absDiff(old.metric, cur.metric) >= metricChangeThreshold:
		r.queueUpdateAll(d.id, false)
	}
}

func absDiff(a, b uint16) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

// routeLost is called when d has no route left: retract it at once and, if
// the old route was usable, ask its source for a new seqno (starvation).
func (r *Router) routeLost(d *destination, old selectedState) {
	r.queueUrgentUpdate(nil, d.id)
	if old.metric > Infinity/2 {
		return
	}
	s := d.source(old.routerID, r.clock.Now())
	seqno := old.seqno + 1
	if s != nil {
		seqno = s.seqno + 1
	}
	r.sendSeqnoRequest(d.id, old.routerID, seqno, nil)
}

// gcDestination drops d once it has no route and no feasibility distance
// left.
func (r *Router) gcDestination(d *destination) {
	if len(d.routes) == 0 && d.selNeigh == nil && len(d.sources) == 0 {
		r.dests[d.id] = nil
	}
}

// checkRoutes expires routes that were not refreshed, asks for a refresh of
// selected routes about to expire and drops unused sources.
func (r *Router) checkRoutes(now time.Duration) {
	for _, d := range r.dests {
		if d == nil {
			continue
		}
		changed := false
		for j := 0; j < len(d.routes); j++ {
			rt := &d.routes[j]
			switch {
			case now >= rt.expires() && rt.refmetric >= Infinity:
				d.routes = slices.Delete(d.routes, j, j+1)
				j--
				changed = true
			case now >= rt.expires():
				rt.refmetric, rt.updated = Infinity, now
				changed = true
			case r.neighs[rt.nb] == d.selNeigh && !rt.refreshAsked && now-rt.updated > rt.hold()*7/8:
				rt.refreshAsked = true
				key := r.intern.key(d.id)
				n := d.selNeigh
				b := n.iface.unicastBuffer(n.addr)
				b.msgs = append(b.msgs, RouteRequest{Prefix: key.Prefix, Source: key.Source})
				r.scheduleFlush(n.iface, r.jitter(urgentDelay, 0.5))
			}
		}
		d.sources = slices.DeleteFunc(d.sources, func(s source) bool { return now-s.time > sourceGCTime })
		if changed {
			r.reselect(d)
		}
		r.gcDestination(d)
	}
}
