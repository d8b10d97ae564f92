package manager

// registryUnrouted reports whether Babel has no route to the registry's
// node although it knows other nodes: this part of the overlay is cut from
// the registry's (a partition), so, as re6st does, the node asks the
// registry for a bootstrap peer at each tick it wants a tunnel: once the
// underlay joins again, a peer of the registry's part merges the two
// overlays.
func (m *Manager) registryUnrouted(v view) bool {
	if m.cfg.RegistryBits == nil {
		return false
	}
	bits := m.cfg.RegistryBits()
	if bits == "" || bits == m.cfg.Self {
		return false
	}
	_, routed := v.known[bits]
	return !routed
}

// rejoin asks the registry for a peer outside our part of the overlay.
func (m *Manager) rejoin(v view) {
	m.log.Debug().Msg("no route to the registry's node: asking it for a bootstrap peer")
	m.askRegistry(func(bits string) bool { return bits == m.cfg.Self || v.direct[bits] || m.pending[bits] }, nil)
}
