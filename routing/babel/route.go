package babel

import (
	"math"
	"net/netip"
	"time"
)

// route is what one neighbour told us about one destination.
type route struct {
	neigh        *neighbour
	routerID     RouterID
	seqno        uint16
	refmetric    uint16
	nexthop      netip.Addr
	hold         time.Duration
	updated      time.Duration // last update received
	expires      time.Duration
	refreshAsked bool

	smoothed     float64
	smoothedAt   time.Duration
	haveSmoothed bool
}

// destination holds every route to one RouteKey and the selected one.
type destination struct {
	key      RouteKey
	routes   []*route
	selected *route
	last     selectedState // what selected looked like when last examined
	sources  []*source     // feasibility distances, one per router-id
}

// addRoute creates the route from n to d.
func (d *destination) addRoute(n *neighbour) *route {
	rt := &route{neigh: n}
	d.routes = append(d.routes, rt)
	n.routes[d] = rt
	return rt
}

// removeRoute forgets rt.
func (d *destination) removeRoute(rt *route) {
	delete(rt.neigh.routes, d)
	for j, x := range d.routes {
		if x == rt {
			d.routes = append(d.routes[:j], d.routes[j+1:]...)
			return
		}
	}
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
	for _, s := range d.sources {
		if s.routerID == id && now-s.time <= sourceGCTime {
			return s
		}
	}
	return nil
}

// sourceGCTime is how long an unused feasibility distance is kept (babeld's
// SOURCE_GC_TIME).
const sourceGCTime = 200 * time.Second

// metric is the route's metric through its neighbour.
func (r *Router) metric(rt *route) uint16 {
	if rt.refmetric >= Infinity || rt.neigh.cost >= Infinity {
		return Infinity
	}
	return uint16(min(int(rt.refmetric)+int(rt.neigh.cost), Infinity))
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
	for _, x := range d.sources {
		if x.routerID == id {
			s = x
		}
	}
	switch {
	case s == nil:
		d.sources = append(d.sources, &source{routerID: id, seqno: seqno, metric: metric, time: now})
	case SeqnoLess(s.seqno, seqno) || now-s.time > sourceGCTime:
		s.seqno, s.metric, s.time = seqno, metric, now
	case seqno == s.seqno:
		s.metric = min(s.metric, metric)
		s.time = now
	}
}

// smoothedMetric is an exponential average of the route's metric with the
// configured half-life, used for hysteresis.
func (r *Router) smoothedMetric(rt *route, now time.Duration) float64 {
	m := float64(r.metric(rt))
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
		for d, rt := range n.routes {
			if rt.refmetric < Infinity {
				rt.refmetric = Infinity
				rt.expires = now + rt.hold
				r.reselect(d)
			}
		}
		return
	}
	if u.RouterID == r.id {
		return // our own announcement coming back
	}
	key := KeyOf(u.Prefix, u.Source)
	if _, ok := r.exported[key]; ok {
		return
	}
	d := r.dests[key]
	var rt *route
	if d != nil {
		rt = n.routes[d]
	}
	r.satisfyRequests(key, u.RouterID, u.Seqno, u.Metric)
	if rt == nil && u.Metric >= Infinity {
		return
	}
	if d == nil {
		d = &destination{key: key}
		r.dests[key] = d
	}
	feasible := r.feasible(d, u.RouterID, u.Seqno, u.Metric)
	if rt != nil && rt == d.selected && !feasible && rt.routerID == u.RouterID {
		// An unfeasible update from our successor for the same source:
		// keep the route as it was (RFC 8966 §3.5.4) and ask the source
		// for a new seqno, which will make the update feasible.
		r.requestSeqno(d, u.RouterID, n)
		return
	}
	if rt == nil {
		rt = d.addRoute(n)
	}
	nexthop := u.NextHop
	if !nexthop.IsValid() {
		nexthop = src
	}
	unchanged := rt.routerID == u.RouterID && rt.seqno == u.Seqno && rt.refmetric == u.Metric && rt.nexthop == nexthop
	rt.routerID, rt.seqno, rt.refmetric, rt.nexthop = u.RouterID, u.Seqno, u.Metric, nexthop
	rt.hold = holdTime(u.Interval)
	rt.updated, rt.expires, rt.refreshAsked = now, now+rt.hold, false
	if unchanged && feasible {
		return // a refresh: nothing to reconsider
	}
	if !feasible {
		// Starvation help: if the unfeasible route would be much better
		// than what we have, ask for a newer seqno.
		if d.selected == nil || int(r.metric(rt))+512 <= int(r.metric(d.selected)) {
			r.requestSeqno(d, u.RouterID, n)
		}
	}
	r.reselect(d)
}

// reselectVia reconsiders every destination with a route through n.
func (r *Router) reselectVia(n *neighbour) {
	for d := range n.routes {
		r.reselect(d)
	}
}

// reselect runs route selection for d (babeld's find_best_route and
// consider_route): the best feasible finite route replaces the selected one
// if the selected one became unusable, or if it is at least as good and
// better once smoothed (hysteresis).
func (r *Router) reselect(d *destination) {
	if _, ok := r.exported[d.key]; ok {
		return
	}
	now := r.clock.Now()
	var best *route
	bestMetric := uint16(Infinity)
	for _, rt := range d.routes {
		m := r.metric(rt)
		if m >= bestMetric || !r.routeFeasible(d, rt) {
			continue
		}
		best, bestMetric = rt, m
	}
	cur := d.selected
	usable := cur != nil && r.metric(cur) < Infinity && r.routeFeasible(d, cur) && cur.neigh.routes[d] == cur
	switch {
	case !usable:
		r.setSelected(d, best)
	case best != nil && best != cur && bestMetric <= r.metric(cur) &&
		r.smoothedMetric(best, now) < r.smoothedMetric(cur, now):
		r.setSelected(d, best)
	default:
		r.setSelected(d, cur)
	}
}

// selectedState remembers what we last advertised about a destination, to
// decide whether a triggered update is needed.
type selectedState struct {
	valid    bool
	neigh    *neighbour
	nexthop  netip.Addr
	routerID RouterID
	seqno    uint16
	metric   uint16
}

func (r *Router) stateOf(rt *route) selectedState {
	if rt == nil {
		return selectedState{}
	}
	return selectedState{true, rt.neigh, rt.nexthop, rt.routerID, rt.seqno, r.metric(rt)}
}

// metricChangeThreshold is the metric change that triggers an update
// without waiting for the periodic one; smaller changes (RTT jitter) wait.
const metricChangeThreshold = 96

// setSelected installs rt (possibly nil, or the current route with new
// attributes) as d's selected route, notifies subscribers and schedules
// the updates the change calls for.
func (r *Router) setSelected(d *destination, rt *route) {
	old := d.last
	d.selected = rt
	cur := r.stateOf(rt)
	d.last = cur
	if old == cur {
		return
	}
	if old.neigh != cur.neigh || old.nexthop != cur.nexthop || old.valid != cur.valid {
		change := RouteChange{Key: d.key}
		if rt != nil {
			sr := r.selectedRoute(d)
			change.Route = &sr
		}
		r.notify(change)
	}
	switch {
	case !cur.valid && old.valid:
		r.routeLost(d, old)
	case !cur.valid:
	case old.valid && old.routerID != cur.routerID:
		r.queueUrgentUpdate(nil, d.key)
	case !old.valid || old.seqno != cur.seqno:
		r.queueUpdateAll(d.key, true)
	case absDiff(old.metric, cur.metric) >= metricChangeThreshold:
		r.queueUpdateAll(d.key, false)
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
	r.queueUrgentUpdate(nil, d.key)
	if old.metric > Infinity/2 {
		return
	}
	s := d.source(old.routerID, r.clock.Now())
	seqno := old.seqno + 1
	if s != nil {
		seqno = s.seqno + 1
	}
	r.sendSeqnoRequest(d.key, old.routerID, seqno, nil)
}

// gcDestination drops d once it has no route and no feasibility distance
// left.
func (r *Router) gcDestination(d *destination) {
	if len(d.routes) == 0 && d.selected == nil && len(d.sources) == 0 {
		delete(r.dests, d.key)
	}
}

// checkRoutes expires routes that were not refreshed, asks for a refresh of
// selected routes about to expire and drops unused sources.
func (r *Router) checkRoutes(now time.Duration) {
	for _, d := range r.dests {
		changed := false
		for _, rt := range append([]*route{}, d.routes...) {
			switch {
			case now >= rt.expires && rt.refmetric >= Infinity:
				d.removeRoute(rt)
				changed = true
			case now >= rt.expires:
				rt.refmetric, rt.expires = Infinity, now+rt.hold
				changed = true
			case rt == d.selected && !rt.refreshAsked && now-rt.updated > rt.hold*7/8:
				rt.refreshAsked = true
				b := rt.neigh.iface.unicastBuffer(rt.neigh.addr)
				b.msgs = append(b.msgs, RouteRequest{Prefix: d.key.Prefix, Source: d.key.Source})
				r.scheduleFlush(rt.neigh.iface, r.jitter(urgentDelay, 0.5))
			}
		}
		live := d.sources[:0]
		for _, s := range d.sources {
			if now-s.time <= sourceGCTime {
				live = append(live, s)
			}
		}
		d.sources = live
		if changed {
			r.reselect(d)
		}
		r.gcDestination(d)
	}
}
