package node

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
)

// payload is what the node serves from the network parameters beside its
// own prefix: its traffic classes and its IPv4 payload. adoptParams changes
// them live (followParams' goroutine) while status, metrics and the fib
// writer's Class hook read them on theirs; the slices are replaced, never
// changed in place.
type payload struct {
	mu      sync.RWMutex
	classes []nodeClass // the network's traffic classes in force
	ipv4    ipv4Payload // zero without an IPv4 payload
}

// get returns the classes and the IPv4 payload in force.
func (p *payload) get() ([]nodeClass, ipv4Payload) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.classes, p.ipv4
}

// classOf is the class of the routes to dst (the fib's Class hook).
func (p *payload) classOf(dst netip.Prefix) uint8 {
	classes, _ := p.get()
	return classOf(classes, dst)
}

func (p *payload) setClasses(c []nodeClass) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.classes = c
}

func (p *payload) setIPv4(v4 ipv4Payload) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ipv4 = v4
}

// applyPayload applies changed traffic classes and IPv4 payload of new
// parameters to the running node; a failure is logged and the rest of the
// parameters stays in force.
func (n *Node) applyPayload(old, p *netparams.Params) {
	if old.IPv4 != p.IPv4 || old.IPv4Sublen != p.IPv4Sublen {
		if err := n.setupIPv4(); err != nil {
			n.log.Error().Err(err).Msg("new IPv4 payload not applied")
		}
	}
	if !slices.Equal(old.TrafficClasses, p.TrafficClasses) {
		if err := n.updateClasses(p.TrafficClasses); err != nil {
			n.log.Error().Err(err).Msg("new traffic classes not applied")
		}
	}
}

// updateClasses replaces the classes in force with tcs: each new or
// changed class of tcs (by id) is written in the data plane; the prefix of a class that is gone or
// moved is withdrawn from Babel, its local route and overlay address
// removed; a new prefix is set up as setupClasses does; the selected
// routes whose class changed are written again (fib.Writer.Rewrite), so
// that the data plane marks them with the new ids; the data-plane classes
// no class uses any more are deleted.
func (n *Node) updateClasses(tcs []netparams.TrafficClass) error {
	next, err := deriveClasses(n.id.network, n.id.prefix, tcs)
	if err != nil {
		return err
	}
	prev, _ := n.payload.get()
	for _, c := range next {
		if int(c.ID) <= len(prev) && prev[c.ID-1].TrafficClass == c.TrafficClass {
			continue // unchanged: queues and shaping set by re6st-bpf stay
		}
		if err := n.dp.SetClass(dataplaneClass(c)); err != nil {
			return fmt.Errorf("traffic class %s: %w", c.Name, err)
		}
	}
	for _, c := range prev {
		if !slices.ContainsFunc(next, c.samePrefix) {
			n.removeClassPrefix(c)
		}
	}
	n.payload.setClasses(next)
	if err := n.routeClasses(next); err != nil {
		return err
	}
	rewritten := n.fibw.Rewrite(func(k babel.RouteKey) bool { return classOf(prev, k.Prefix) != classOf(next, k.Prefix) })
	for _, c := range next {
		if !slices.ContainsFunc(prev, c.samePrefix) {
			if err := n.addClassPrefix(c); err != nil {
				return err
			}
		}
	}
	for _, c := range prev {
		if int(c.ID) > len(next) {
			if err := n.dp.DeleteClass(c.ID); err != nil {
				n.log.Warn().Err(err).Str("class", c.Name).Msg("traffic class not deleted from the data plane")
			}
		}
	}
	n.log.Info().Int("classes", len(next)).Int("routes_remarked", rewritten).Msg("traffic classes applied live")
	return nil
}

// samePrefix: c and o give the node the same prefix (and so address) in
// the same range.
func (c nodeClass) samePrefix(o nodeClass) bool { return c.Prefix == o.Prefix && c.Range == o.Range }

func dataplaneClass(c nodeClass) loader.Class {
	return loader.Class{ID: c.ID, DSCP: uint8(c.DSCP), Priority: uint32(c.Priority), Rate: c.Rate}
}

// addClassPrefix gives the node its address in c's range on the overlay
// device (the range's length, so the kernel routes the whole range to the
// overlay as it does the network), its prefix there delivered locally and
// announced by Babel.
func (n *Node) addClassPrefix(c nodeClass) error {
	if err := n.dp.AddOverlayAddress(netip.PrefixFrom(c.Address, c.Range.Bits())); err != nil {
		return fmt.Errorf("traffic class %s: %w", c.Name, err)
	}
	if err := n.routes.SetLocal(c.Prefix); err != nil {
		return fmt.Errorf("traffic class %s: %w", c.Name, err)
	}
	if err := n.router.Export(c.Prefix, netip.Prefix{}, 0); err != nil {
		return fmt.Errorf("traffic class %s: %w", c.Name, err)
	}
	n.log.Info().Str("class", c.Name).Stringer("prefix", c.Prefix).Msg("traffic class")
	return nil
}

// removeClassPrefix undoes addClassPrefix: Babel retracts the prefix, the
// data plane no longer delivers it, the address leaves the overlay device.
func (n *Node) removeClassPrefix(c nodeClass) {
	n.router.Withdraw(c.Prefix, netip.Prefix{})
	if err := n.routes.DeleteLocal(c.Prefix); err != nil {
		n.log.Warn().Err(err).Str("class", c.Name).Msg("local route of a removed class not deleted")
	}
	if err := n.dp.RemoveOverlayAddress(netip.PrefixFrom(c.Address, c.Range.Bits())); err != nil {
		n.log.Warn().Err(err).Str("class", c.Name).Msg("address of a removed class not removed")
	}
	n.log.Info().Str("class", c.Name).Stringer("prefix", c.Prefix).Msg("traffic class removed")
}
