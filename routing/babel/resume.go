package babel

import (
	"net/netip"
	"time"
)

// A restarted router that starts from nothing looks, to its neighbours,
// like a new router: its Hello seqno jumps, so they reset its Hello history
// and give the link an infinite cost until two Hellos got through, and it
// reports an infinite cost for them in its first IHUs for the same reason.
// Worse, it has no feasibility distances, so it takes the first route it
// hears, even one that leads back through itself, and loops traffic until
// the better route arrives. Routes through it are lost for a while although
// its data plane never stopped forwarding.
//
// Handover is what a router hands over, on a clean stop, to the one that
// takes its place (a graceful restart): its feasibility distances, and for
// each interface its Hello sequence and what it knew of each neighbour's
// Hellos, IHUs and RTT. Routes are not handed over: the new router asks for
// full dumps when an interface comes up, as always, and judges them with
// the feasibility distances it inherited. A hand-over must be used once: a
// crashed router hands nothing over, and its successor starts afresh.
type Handover struct {
	// Taken is the wall-clock time of the snapshot; every age is
	// relative to it.
	Taken      time.Time                 `json:"taken"`
	Sources    []SourceState             `json:"sources,omitempty"`
	Interfaces map[string]InterfaceState `json:"interfaces,omitempty"`
}

// SourceState is one feasibility distance.
type SourceState struct {
	Prefix   netip.Prefix  `json:"prefix"`
	From     netip.Prefix  `json:"from"`
	RouterID string        `json:"router_id"`
	Seqno    uint16        `json:"seqno"`
	Metric   uint16        `json:"metric"`
	Age      time.Duration `json:"age"`
}

// InterfaceState is the hand-over of one interface.
type InterfaceState struct {
	HelloSeqno    uint16           `json:"hello_seqno"`
	HelloInterval time.Duration    `json:"hello_interval"`
	Neighbours    []NeighbourState `json:"neighbours,omitempty"`
}

// NeighbourState is what the router knew of one neighbour.
type NeighbourState struct {
	Address           netip.Addr    `json:"address"`
	Hello             HistoryState  `json:"hello"`
	UnicastHello      HistoryState  `json:"unicast_hello"`
	UnicastHelloSeqno uint16        `json:"unicast_hello_seqno"`
	HaveIHU           bool          `json:"have_ihu,omitempty"`
	Txcost            uint16        `json:"txcost,omitempty"`
	IHUInterval       Centis        `json:"ihu_interval,omitempty"`
	IHUAge            time.Duration `json:"ihu_age,omitempty"`
	HaveRTT           bool          `json:"have_rtt,omitempty"`
	RTT               uint32        `json:"rtt_us,omitempty"`
	RTTAge            time.Duration `json:"rtt_age,omitempty"`
}

// HistoryState is one Hello history of a neighbour.
type HistoryState struct {
	Reach    uint16        `json:"reach"`
	Seqno    uint16        `json:"seqno"`
	Interval Centis        `json:"interval"`
	Age      time.Duration `json:"age"`
}

// resumeHorizon bounds the age of a usable interface state in Hello
// intervals: past it, every Hello of the history would count as missed.
const resumeHorizon = 16

// Snapshot returns the hand-over for the next router (Config.Handover).
// Take it when the router is about to stop: what it sends afterwards is not
// in it.
func (r *Router) Snapshot() Handover {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	h := Handover{Taken: time.Now(), Interfaces: make(map[string]InterfaceState, len(r.ifaces))}
	for _, d := range r.dests {
		if d == nil {
			continue
		}
		k := r.intern.key(d.id)
		for _, src := range d.sources {
			if now-src.time <= sourceGCTime {
				h.Sources = append(h.Sources, SourceState{Prefix: k.Prefix, From: k.Source, RouterID: src.routerID.String(),
					Seqno: src.seqno, Metric: src.metric, Age: now - src.time})
			}
		}
	}
	for name, i := range r.ifaces {
		st := InterfaceState{HelloSeqno: i.helloSeqno, HelloInterval: i.cfg.HelloInterval}
		for _, n := range i.neighbours {
			st.Neighbours = append(st.Neighbours, NeighbourState{
				Address: n.addr, Hello: n.hello.state(now), UnicastHello: n.uhello.state(now),
				UnicastHelloSeqno: n.uhelloSeqno,
				HaveIHU:           n.haveIHU, Txcost: n.txcost, IHUInterval: n.ihuInterval, IHUAge: now - n.ihuTime,
				HaveRTT: n.haveRTT, RTT: n.rtt, RTTAge: now - n.rttTime,
			})
		}
		h.Interfaces[name] = st
	}
	return h
}

// takeOver installs the hand-over's feasibility distances in a new router
// and keeps its interface states for AddInterface. Distances older than
// babeld's source lifetime are dropped, as they would have been.
func (r *Router) takeOver(h *Handover) {
	elapsed := time.Since(h.Taken)
	if elapsed < 0 {
		r.log.Warn().Time("taken", h.Taken).Msg("babel: hand-over from the future ignored")
		return
	}
	now := r.clock.Now()
	for _, s := range h.Sources {
		id, err := ParseRouterID(s.RouterID)
		if err != nil || s.Age+elapsed > sourceGCTime {
			continue
		}
		key := r.intern.keyID(RouteKey{Prefix: s.Prefix, Source: s.From})
		d := r.dest(key)
		if d == nil {
			d = r.newDest(key)
		}
		d.sources = append(d.sources, source{routerID: id, seqno: s.Seqno, metric: s.Metric, time: now - elapsed - s.Age})
	}
	r.handover, r.handoverElapsed = h.Interfaces, elapsed
}

// EndHandover drops the interface states not taken over yet: an interface
// added later may reuse a name for another link.
func (r *Router) EndHandover() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.handover = nil
}

func (h *helloHistory) state(now time.Duration) HistoryState {
	return HistoryState{Reach: h.reach, Seqno: h.seqno, Interval: h.interval, Age: now - h.time}
}

func (s HistoryState) history(now, elapsed time.Duration) helloHistory {
	return helloHistory{reach: s.Reach, seqno: s.Seqno, interval: s.Interval, time: now - elapsed - s.Age}
}

// resume takes the hand-over of interface i over, if there is one (r.mu
// held): the Hello sequence goes on as if the Hellos of the downtime had
// been sent and lost, and the neighbours come back with their histories
// aged by the downtime, so that the usual expiry counts what they missed.
// A state older than the horizon is ignored.
func (r *Router) resume(i *iface) bool {
	st, ok := r.handover[i.name]
	delete(r.handover, i.name)
	elapsed := r.handoverElapsed
	if !ok || st.HelloInterval <= 0 || elapsed > resumeHorizon*st.HelloInterval {
		return false
	}
	now := r.clock.Now()
	i.helloSeqno = st.HelloSeqno + uint16(elapsed/st.HelloInterval)
	for _, s := range st.Neighbours {
		if !s.Address.IsValid() || i.neighbours[s.Address] != nil {
			continue
		}
		n := &neighbour{
			iface: i, addr: s.Address, cost: Infinity, lastHeard: now - elapsed - min(s.Hello.Age, s.UnicastHello.Age),
			hello: s.Hello.history(now, elapsed), uhello: s.UnicastHello.history(now, elapsed),
			uhelloSeqno: s.UnicastHelloSeqno,
			haveIHU:     s.HaveIHU, txcost: s.Txcost, ihuInterval: s.IHUInterval, ihuTime: now - elapsed - s.IHUAge,
			haveRTT: s.HaveRTT, rtt: s.RTT, rttTime: now - elapsed - s.RTTAge,
		}
		r.addNeighbour(n)
		n.hello.expire(now)
		n.uhello.expire(now)
		r.updateCost(n)
	}
	return true
}
