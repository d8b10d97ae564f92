package babel

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// A Class is a set of destinations, a prefix range, that the router routes
// with a link cost of its own: a topology of its own in one Babel instance
// (docs/traffic-classes.md, "Routing per class"). RFC 8966 leaves the link
// cost to each router (§3.4.3); the feasibility condition is per
// destination, so routes stay loop-free whatever cost each class uses, as
// long as the routers agree which destinations a class holds.
type Class struct {
	// Name is how interfaces name the class in InterfaceConfig.Classes.
	Name string
	// Range holds the class's destinations: every prefix inside it.
	Range netip.Prefix
	// Latency weighs every microsecond of a link's RTT (LatencyRTT)
	// instead of the interface's RTT configuration.
	Latency bool
	// Restricted: only interfaces that name the class in their
	// InterfaceConfig.Classes are its own; any other link costs
	// FallbackPenalty more for the class. Unrestricted, every link is its
	// own.
	Restricted bool
}

// LatencyRTT is the RTT penalty of a latency class: re6st's slope for the
// main range (Re6stRTT, 5000 over 490 ms, about 10 per ms) counted from
// the first microsecond, without Re6stRTT's 10 ms without penalty, inside
// which every link of a site lies.
var LatencyRTT = RTTConfig{Min: 0, Max: 500 * time.Millisecond, MaxPenalty: 5000, Decay: Re6stRTT.Decay}

// FallbackPenalty is what a link that is not a restricted class's own adds
// to the class's link cost. A path of the class's own with a metric under
// 8192 (some 80 tunnels at the nominal cost 96, or one at the full RTT
// penalty) therefore always wins over a path through a link that is not
// its own; a path through 8 links that are not its own is unreachable for
// the class (the metric reaches infinity).
const FallbackPenalty = 8192

// SetClasses replaces the router's classes. The destinations in a class's
// range are routed with the class's cost from now on: every route is
// reconsidered, and what we advertise changes with it.
func (r *Router) SetClasses(classes []Class) error {
	for i, c := range classes {
		if !c.Range.IsValid() {
			return fmt.Errorf("babel: class %q: no range", c.Name)
		}
		for _, o := range classes[:i] {
			if o.Name == c.Name {
				return fmt.Errorf("babel: class %q given twice", c.Name)
			}
			if o.Range.Overlaps(c.Range) {
				return fmt.Errorf("babel: classes %q and %q overlap", o.Name, c.Name)
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.classes = slices.Clone(classes)
	for j := range r.classes {
		r.classes[j].Range = r.classes[j].Range.Masked()
	}
	for _, d := range r.dests {
		if d != nil {
			d.class = r.classOf(r.intern.key(d.id))
		}
	}
	for _, n := range r.neighs {
		if n != nil {
			n.classCosts = nil
			r.updateClassCosts(n, r.clock.Now())
		}
	}
	for _, d := range r.dests {
		if d != nil {
			r.reselect(d)
		}
	}
	return nil
}

// classOf is 1 + the index of the class holding key's destination, 0 for
// none.
func (r *Router) classOf(key RouteKey) uint8 {
	for j, c := range r.classes {
		if c.Range.Bits() <= key.Prefix.Bits() && c.Range.Contains(key.Prefix.Addr()) {
			return uint8(j + 1)
		}
	}
	return 0
}

// classCost is n's link cost for the destinations of c.
func (n *neighbour) classCost(c *Class, now time.Duration) uint16 {
	rtt := n.iface.cfg.RTT
	if c.Latency {
		rtt = LatencyRTT
	}
	cost := n.scaled(n.linkCost(now), n.rttPenalty(rtt, now))
	if c.Restricted && cost < Infinity && !slices.Contains(n.iface.cfg.Classes, c.Name) {
		cost = uint16(min(int(cost)+FallbackPenalty, Infinity-1))
	}
	return cost
}

// updateClassCosts recomputes n's cost for each class and tells whether
// one changed.
func (r *Router) updateClassCosts(n *neighbour, now time.Duration) (changed bool) {
	if len(n.classCosts) != len(r.classes) {
		n.classCosts, changed = make([]uint16, len(r.classes)), true
	}
	for j := range r.classes {
		if c := n.classCost(&r.classes[j], now); c != n.classCosts[j] {
			n.classCosts[j], changed = c, true
		}
	}
	return changed
}

// costFor is n's link cost for the destinations of class (classOf).
func (n *neighbour) costFor(class uint8) uint16 {
	if class == 0 || int(class) > len(n.classCosts) {
		return n.cost
	}
	return n.classCosts[class-1]
}

// Classes returns the classes in force (SetClasses).
func (r *Router) Classes() []Class {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.classes)
}
