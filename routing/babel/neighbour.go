package babel

import (
	"net/netip"
	"time"
)

// iface is the state of one Babel interface.
type iface struct {
	name    string
	cfg     InterfaceConfig
	t       Transport
	local   netip.Addr
	removed bool

	neighbours        map[netip.Addr]*neighbour
	multipliers       map[netip.Addr]uint16
	defaultMultiplier uint16

	helloSeqno     uint16
	hellosSent     int
	helloTimer     Timer
	updateTimer    Timer
	flushTimer     Timer
	flushAt        time.Duration
	lastFullDump   time.Duration
	triggeredHello bool

	mcast *outBuffer
	ucast map[netip.Addr]*outBuffer
	auth  *authState
	stats IfaceStats
}

// IfaceStats counts the traffic of an interface.
type IfaceStats struct {
	PacketsSent     uint64 `json:"packets_sent"`
	BytesSent       uint64 `json:"bytes_sent"`
	PacketsReceived uint64 `json:"packets_received"`
	BytesReceived   uint64 `json:"bytes_received"`
	// Dropped counts packets rejected: malformed, bad MAC, replayed.
	Dropped uint64 `json:"dropped"`
}

// neighbour is a router heard on an interface.
type neighbour struct {
	iface *iface
	addr  netip.Addr
	slot  uint32 // in Router.neighs, which routes refer to

	hello     helloHistory // multicast Hellos
	uhello    helloHistory // unicast Hellos
	lastHeard time.Duration

	uhelloSeqno uint16 // of the unicast Hellos we send it

	txcost      uint16
	ihuTime     time.Duration
	ihuInterval Centis
	haveIHU     bool

	// RFC 9616: the timestamp of the neighbour's last Hello and when we
	// received it, echoed in our IHUs.
	helloSendUs uint32
	helloRecvUs uint32
	haveHelloTS bool
	rtt         uint32 // smoothed, µs
	rttTime     time.Duration
	haveRTT     bool

	cost uint16 // cached computeCost
	// classCosts are the cost for each class's destinations
	// (Router.SetClasses), cached like cost.
	classCosts []uint16
}

// rttValidity is how long an RTT estimate stays in use (babeld: 180 s).
const rttValidity = 180 * time.Second

func (n *neighbour) validRTT(now time.Duration) bool {
	return n.haveRTT && now-n.rttTime < rttValidity
}

// rxcost is babeld's neighbour_rxcost.
func (n *neighbour) rxcost(now time.Duration) uint16 {
	stale := func(h *helloHistory) bool {
		return h.reach&0xFFF0 == 0 || now-h.time >= 180*time.Second
	}
	if stale(&n.hello) && stale(&n.uhello) {
		return Infinity
	}
	if n.iface.cfg.Type == LinkWireless {
		h := &n.hello
		if stale(h) {
			h = &n.uhello
		}
		return rxcostETX(h.reach, n.iface.cfg.Rxcost, now-h.time)
	}
	return rxcostWired(n.hello.reach, n.uhello.reach, n.iface.cfg.Rxcost)
}

// txcostNow is the cost the neighbour reported in its last IHU, or
// infinity once that IHU is too old: after 3 IHU intervals if Hellos are
// also being lost, 10 otherwise, and never more than 180 s.
func (n *neighbour) txcostNow(now time.Duration) uint16 {
	if !n.haveIHU {
		return Infinity
	}
	delay := now - n.ihuTime
	if delay >= 180*time.Second {
		return Infinity
	}
	iv := n.ihuInterval.Duration()
	if iv == 0 || delay < 3*iv {
		return n.txcost
	}
	good := n.hello.reach&0xFFF0 == 0xFFF0 || n.uhello.reach&0xFFF0 == 0xFFF0
	if good && delay < 10*iv {
		return n.txcost
	}
	return Infinity
}

// linkCost is babeld's neighbour_cost without the RTT penalty: the
// 2-out-of-3 or ETX cost of the link.
func (n *neighbour) linkCost(now time.Duration) uint16 {
	tx := n.txcostNow(now)
	if tx >= Infinity {
		return Infinity
	}
	rx := n.rxcost(now)
	if rx >= Infinity {
		return Infinity
	}
	if n.iface.cfg.Type == LinkWireless {
		return combineETX(tx, rx)
	}
	return tx
}

// rttPenalty is the penalty c gives the neighbour's smoothed RTT, 0 without
// a valid one.
func (n *neighbour) rttPenalty(c RTTConfig, now time.Duration) uint16 {
	if !n.validRTT(now) {
		return 0
	}
	return c.Penalty(n.rtt)
}

// multiplier returns the cost multiplier in effect for n.
func (n *neighbour) multiplier() uint16 {
	if m, ok := n.iface.multipliers[n.addr]; ok {
		return m
	}
	return n.iface.defaultMultiplier
}

// scaled adds penalty to a finite link cost and applies the multiplier. A
// finite cost is at least 1 so that a route's metric always exceeds what
// its neighbour advertised (the feasibility condition relies on it).
func (n *neighbour) scaled(link, penalty uint16) uint16 {
	if link >= Infinity {
		return Infinity
	}
	c := min(int(link)+int(penalty), Infinity)
	m := n.multiplier()
	if c >= Infinity || m == 0 {
		return Infinity
	}
	scaled := (c*int(m) + unitMultiplier/2) / unitMultiplier
	return uint16(min(max(scaled, 1), Infinity))
}

// computeCost is babeld's neighbour_cost (link cost plus the interface's
// RTT penalty) with the multiplier applied.
func (n *neighbour) computeCost(now time.Duration) uint16 {
	return n.scaled(n.linkCost(now), n.rttPenalty(n.iface.cfg.RTT, now))
}

// updateCost recomputes n's cost and reconsiders its routes if it changed.
func (r *Router) updateCost(n *neighbour) {
	now := r.clock.Now()
	c := n.computeCost(now)
	classChanged := r.updateClassCosts(n, now)
	if c == n.cost && !classChanged {
		return
	}
	old := n.cost
	n.cost = c
	r.log.Debug().Str("interface", n.iface.name).Stringer("neighbour", n.addr).
		Uint16("old", old).Uint16("cost", c).Msg("babel: neighbour cost")
	r.reselectVia(n)
}

// handleHello records a Hello from src and returns its neighbour.
func (r *Router) handleHello(i *iface, src netip.Addr, h Hello, now time.Duration) *neighbour {
	n := i.neighbours[src]
	isNew := n == nil
	if isNew {
		n = &neighbour{iface: i, addr: src, cost: Infinity, uhelloSeqno: uint16(r.rand.Uint32())}
		r.addNeighbour(n)
		r.log.Info().Str("interface", i.name).Stringer("neighbour", src).Msg("babel: new neighbour")
	}
	n.lastHeard = now
	hist := &n.hello
	if h.Unicast {
		hist = &n.uhello
	}
	hist.received(h.Seqno, h.Interval, now)
	if h.HasTimestamp && i.cfg.Timestamps {
		n.helloSendUs, n.helloRecvUs, n.haveHelloTS = h.Timestamp, micros(now), true
	}
	switch {
	case hist.reach&0xBF00 == 0x8000 && !i.triggeredHello:
		// A new (or returning) neighbour: let it hear from us at once.
		i.triggeredHello = true
		r.scheduleHello(i, r.jitter(urgentDelay, 0.5))
	case hist.reach&0xFC00 == 0xC000:
		// It has heard us twice: send our IHU and ask for its routes.
		b := i.unicastBuffer(n.addr)
		b.msgs = append(b.msgs, r.ihuFor(n, now), RouteRequest{})
		r.scheduleFlush(i, r.jitter(urgentDelay, 0.5))
	}
	r.updateCost(n)
	return n
}

// ihuFor builds the IHU we send to n.
func (r *Router) ihuFor(n *neighbour, now time.Duration) IHU {
	ihu := IHU{Address: n.addr, Rxcost: n.rxcost(now), Interval: CentisOf(3 * n.iface.cfg.HelloInterval)}
	if n.iface.cfg.Timestamps && n.haveHelloTS {
		ihu.HasTimestamps, ihu.Origin, ihu.Receive = true, n.helloSendUs, n.helloRecvUs
	}
	return ihu
}

// handleIHU records an IHU from n, and an RTT sample when the same packet
// carried a timestamped Hello (helloTS).
func (r *Router) handleIHU(n *neighbour, ihu IHU, helloTS *uint32, now time.Duration) {
	if ihu.Address.IsValid() && ihu.Address != n.iface.local {
		return
	}
	n.txcost, n.ihuTime, n.ihuInterval, n.haveIHU = ihu.Rxcost, now, ihu.Interval, true
	if ihu.HasTimestamps && helloTS != nil && ihu.Origin != 0 && n.iface.cfg.Timestamps {
		if sample, ok := rttSample(ihu.Origin, ihu.Receive, *helloTS, micros(now)); ok {
			n.rtt = n.iface.cfg.RTT.smooth(n.rtt, n.validRTT(now), sample)
			n.rttTime, n.haveRTT = now, true
		}
	}
	r.updateCost(n)
}

// neighbourSilence is how long a neighbour may stay silent before it is
// dropped (babeld: 300 s).
const neighbourSilence = 300 * time.Second

// checkNeighbours infers lost Hellos, expires neighbours and refreshes costs.
func (r *Router) checkNeighbours(now time.Duration) {
	for _, i := range r.ifaces {
		for _, n := range i.neighbours {
			n.hello.expire(now)
			n.uhello.expire(now)
			if (n.hello.reach == 0 && n.uhello.reach == 0) || now-n.lastHeard > neighbourSilence {
				r.log.Info().Str("interface", i.name).Stringer("neighbour", n.addr).Msg("babel: neighbour lost")
				r.flushNeighbour(n)
				continue
			}
			r.updateCost(n)
		}
	}
}

// addNeighbour registers n on its interface and gives it a slot.
func (r *Router) addNeighbour(n *neighbour) {
	n.iface.neighbours[n.addr] = n
	if k := len(r.free); k > 0 {
		n.slot, r.free = r.free[k-1], r.free[:k-1]
		r.neighs[n.slot] = n
		return
	}
	n.slot = uint32(len(r.neighs))
	r.neighs = append(r.neighs, n)
}

// flushNeighbour forgets n and every route learned from it, and frees its
// slot.
func (r *Router) flushNeighbour(n *neighbour) {
	delete(n.iface.neighbours, n.addr)
	delete(n.iface.ucast, n.addr)
	n.cost = Infinity
	for j := range n.classCosts {
		n.classCosts[j] = Infinity
	}
	for _, d := range r.dests {
		if d == nil || d.route(n) == nil {
			continue
		}
		d.removeRoute(n)
		if d.selNeigh == n {
			r.reselect(d)
		}
		r.gcDestination(d)
	}
	r.neighs[n.slot] = nil
	r.free = append(r.free, n.slot)
}
