package manager

import (
	"slices"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// Countries applies the network's same_country rule to peers' addresses.
type Countries interface {
	// Allows reports whether we may tunnel to an address in country
	// ("": unknown).
	Allows(country string) bool
}

// SameCountry is re6st's same_country rule: a node whose country is in
// the list only tunnels to peers of its own country; one whose country is
// not in it never tunnels to peers whose country is. An unknown country is
// one that is not in the list.
func SameCountry(list []string, ours, theirs string) bool {
	if len(list) == 0 {
		return true
	}
	if slices.Contains(list, ours) {
		return theirs == ours
	}
	return !slices.Contains(list, theirs)
}

// allowedAddresses keeps the addresses the same_country rule allows.
func (m *Manager) allowedAddresses(list []nodeproto.Address) []nodeproto.Address {
	if m.cfg.Countries == nil {
		return list
	}
	return slices.DeleteFunc(slices.Clone(list), func(a nodeproto.Address) bool { return !m.cfg.Countries.Allows(a.Country) })
}
