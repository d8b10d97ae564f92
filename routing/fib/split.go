package fib

import (
	"net/netip"
	"sync"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/rs/zerolog"
)

// Split is the Backend of re6st nodes: it writes Babel's routes where they
// can be forwarded. Routes through a tunnel go into the data plane's route
// map, routes through a LAN neighbour (-i) into the kernel, which the data
// plane's slow path and the overlay device reach. A route moving between
// the two is removed from the other.
type Split struct {
	dp     *Dataplane
	kernel *Kernel
	log    zerolog.Logger

	mu       sync.Mutex
	lans     map[string]bool
	inKernel map[babel.RouteKey]bool // Babel's routes in the kernel
	// base are the node's own kernel routes (the overlay default route): a
	// Babel route with the same key through a LAN replaces one, which comes
	// back when that route leaves the kernel.
	base map[babel.RouteKey]Route
}

// NewSplit returns a Split over the data plane dp and the kernel's main
// table.
func NewSplit(dp *Dataplane, log zerolog.Logger) *Split {
	return &Split{dp: dp, kernel: &Kernel{}, log: log,
		lans: map[string]bool{}, inKernel: map[babel.RouteKey]bool{}, base: map[babel.RouteKey]Route{}}
}

// SetKernelBase installs r in the kernel, unless Babel's route for the same
// key is there, and keeps it to put back when Babel's route leaves.
func (s *Split) SetKernelBase(r Route) error {
	key := babel.KeyOf(r.Dst, r.Src)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base[key] = r
	if s.inKernel[key] {
		return nil
	}
	return s.kernel.Replace(r)
}

// SetLocal routes dst to the node itself in the data plane: the node's
// own prefix, decapsulated into the overlay device.
func (s *Split) SetLocal(dst netip.Prefix) error {
	return s.dp.Map.SetRoute(dst, netip.Prefix{}, loader.Nexthop{Local: true})
}

// DeleteLocal removes what SetLocal set for dst: a prefix the node no
// longer has (a traffic class or IPv4 subnet gone from the network
// parameters). A missing route is not an error.
func (s *Split) DeleteLocal(dst netip.Prefix) error { return s.dp.Delete(dst, netip.Prefix{}) }

// AddLAN sends the routes through ifname to the kernel.
func (s *Split) AddLAN(ifname string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lans[ifname] = true
}

// RemoveLAN undoes AddLAN: the device goes (an OpenVPN tunnel's).
func (s *Split) RemoveLAN(ifname string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.lans, ifname)
}

// Replace implements Backend.
func (s *Split) Replace(r Route) error {
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

// Delete implements Backend.
func (s *Split) Delete(dst, src netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.deleteKernelLocked(babel.KeyOf(dst, src)); err != nil {
		return err
	}
	return s.dp.Delete(dst, src)
}

func (s *Split) deleteKernelLocked(key babel.RouteKey) error {
	if !s.inKernel[key] {
		return nil
	}
	delete(s.inKernel, key)
	if base, ok := s.base[key]; ok {
		s.log.Debug().Stringer("route", key).Str("interface", base.Interface).Msg("kernel route put back")
		return s.kernel.Replace(base)
	}
	return s.kernel.Delete(key.Prefix, key.Source)
}

// DeleteVia implements Sweeper: tunnels are the data plane's.
func (s *Split) DeleteVia(tunnel uint32) ([]babel.RouteKey, error) { return s.dp.DeleteVia(tunnel) }

// DeleteExcept implements Sweeper, on the data plane's routes.
func (s *Split) DeleteExcept(keep func(babel.RouteKey) bool) ([]babel.RouteKey, error) {
	return s.dp.DeleteExcept(keep)
}
