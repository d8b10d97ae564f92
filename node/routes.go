package node

import (
	"net/netip"
	"sync"
	"time"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/re6st-bpf/re6st-bpf/routing/fib"
)

// splitBackend writes Babel's routes where they can be forwarded: routes
// through a tunnel into the data plane's route map, routes through a LAN
// neighbour (-i) into the kernel, which the data plane's slow path and the
// overlay device reach. A route moving between the two is removed from the
// other.
type splitBackend struct {
	n      *Node
	dp     *fib.Dataplane
	kernel *fib.Kernel

	mu       sync.Mutex
	lans     map[string]bool
	inKernel map[babel.RouteKey]bool // Babel's routes in the kernel
	// kernelBase are the node's own kernel routes (the overlay default
	// route): a Babel route with the same key through a LAN replaces one,
	// which comes back when that route leaves the kernel.
	kernelBase map[babel.RouteKey]fib.Route
}

func newSplitBackend(n *Node) *splitBackend {
	return &splitBackend{
		n: n, dp: &fib.Dataplane{Map: n.dp, Tunnel: n.tunnelOf}, kernel: &fib.Kernel{},
		lans: map[string]bool{}, inKernel: map[babel.RouteKey]bool{}, kernelBase: map[babel.RouteKey]fib.Route{},
	}
}

// setKernelBase installs r in the kernel, unless Babel's route for the same
// key is there, and keeps it to put back when Babel's route leaves.
func (s *splitBackend) setKernelBase(r fib.Route) error {
	key := babel.KeyOf(r.Dst, r.Src)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.kernelBase[key] = r
	if s.inKernel[key] {
		return nil
	}
	return s.kernel.Replace(r)
}

func (s *splitBackend) addLAN(ifname string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lans[ifname] = true
}

// Replace implements fib.Backend.
func (s *splitBackend) Replace(r fib.Route) error {
	key := babel.KeyOf(r.Dst, r.Src)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lans[r.Interface] {
		if err := s.kernel.Replace(r); err != nil {
			return err
		}
		s.inKernel[key] = true
		return s.dp.Delete(r.Dst, r.Src)
	}
	if err := s.dp.Replace(r); err != nil {
		return err
	}
	return s.deleteKernelLocked(key)
}

// Delete implements fib.Backend.
func (s *splitBackend) Delete(dst, src netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.deleteKernelLocked(babel.KeyOf(dst, src)); err != nil {
		return err
	}
	return s.dp.Delete(dst, src)
}

func (s *splitBackend) deleteKernelLocked(key babel.RouteKey) error {
	if !s.inKernel[key] {
		return nil
	}
	delete(s.inKernel, key)
	if base, ok := s.kernelBase[key]; ok {
		s.n.log.Debug().Stringer("route", key).Str("interface", base.Interface).Msg("kernel route put back")
		return s.kernel.Replace(base)
	}
	return s.kernel.Delete(key.Prefix, key.Source)
}

// forgetTunnel removes the data-plane routes still pointing at a tunnel
// about to go (Babel reselects asynchronously).
func (s *splitBackend) forgetTunnel(id uint32) {
	routes, err := s.n.dp.Routes()
	if err != nil {
		return
	}
	for _, r := range routes {
		if !r.Nexthop.Local && r.Nexthop.Tunnel == id {
			s.n.dp.DeleteRoute(r.Dst, r.Src)
		}
	}
}

// pruneLater removes, once Babel had time to reconverge after a restart,
// the data-plane routes a previous run left that Babel did not select
// again.
func (s *splitBackend) pruneLater(after time.Duration) {
	time.AfterFunc(after, func() {
		routes, err := s.n.dp.Routes()
		if err != nil {
			return
		}
		for _, r := range routes {
			if r.Nexthop.Local {
				continue
			}
			if _, ok := s.n.router.Selected(babel.KeyOf(r.Dst, r.Src)); !ok {
				s.n.dp.DeleteRoute(r.Dst, r.Src)
				s.n.log.Debug().Stringer("route", r.Dst).Msg("stale route removed")
			}
		}
	})
}
