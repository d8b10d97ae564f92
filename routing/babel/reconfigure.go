package babel

import "fmt"

// Reconfigure applies a new configuration to a running interface, for
// network parameters that change while the node runs: the hello and
// update intervals from the next ones sent, and the MAC keys at once (a
// key rotation). The interface's packet counter and what it knows of its
// neighbours' counters are kept, so no neighbour has to pass a challenge
// again and none is lost while every key in use is accepted.
func (r *Router) Reconfigure(name string, cfg InterfaceConfig) error {
	if err := cfg.normalise(); err != nil {
		return fmt.Errorf("babel: interface %s: %w", name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.ifaces[name]
	if !ok {
		return fmt.Errorf("babel: no interface %s", name)
	}
	i.cfg = cfg
	for _, n := range i.neighbours {
		r.updateCost(n) // the RTT settings or the classes may have changed
	}
	switch {
	case cfg.Auth == nil:
		i.auth = nil
	case i.auth == nil:
		i.auth = newAuthState(*cfg.Auth, r.randomBytes(pcIndexLen))
	default:
		i.auth.cfg = *cfg.Auth
	}
	return nil
}
