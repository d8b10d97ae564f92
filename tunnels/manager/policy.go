package manager

import (
	"math/rand/v2"
	"sort"
)

// Load is what the policy knows of one tunnel.
type Load struct {
	ID        uint32
	Routes    int  // prefixes Babel routes through it, the default route excluded
	Neighbour bool // the peer was named with --neighbour
	Outgoing  bool // we set it up (a client tunnel)
	Draining  bool // being removed already
	// OnLAN: the peer is also a Babel neighbour on one of our LANs, which
	// carries its traffic natively: the tunnel is redundant.
	OnLAN bool
}

// ClientLimit is the number of outgoing tunnels to keep: clientCount, or
// at most 2 while nobody has set up a tunnel to us (we may be behind a
// NAT, and must not take a place on many public nodes).
func ClientLimit(clientCount, incoming int) int {
	if incoming == 0 {
		return min(2, clientCount)
	}
	return clientCount
}

// LiveOutgoing counts the outgoing tunnels not being removed.
func LiveOutgoing(ts []Load) int {
	n := 0
	for _, t := range ts {
		if t.Outgoing && !t.Draining {
			n++
		}
	}
	return n
}

// Victim picks the outgoing tunnel to replace: first one to a peer on our
// LAN (redundant, whatever the count: it was made before the LAN
// neighbour was heard), else, once the node has limit of them, one that
// routes nothing, else one not to a --neighbour peer, else the one that
// routes the fewest prefixes. ok is false when none is due.
func Victim(ts []Load, limit int) (id uint32, ok bool) {
	for _, t := range ts {
		if t.Outgoing && !t.Draining && t.OnLAN {
			return t.ID, true
		}
	}
	if limit <= 0 || LiveOutgoing(ts) < limit {
		return 0, false
	}
	score := func(t Load) [3]int {
		if t.Routes == 0 {
			return [3]int{0, 0, 0}
		}
		n := 0
		if t.Neighbour {
			n = 1
		}
		return [3]int{1, n, t.Routes}
	}
	var best *Load
	for i := range ts {
		t := &ts[i]
		if !t.Outgoing || t.Draining {
			continue
		}
		if best == nil || less(score(*t), score(*best)) {
			best = t
		}
	}
	return best.ID, true
}

func less(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// Order shuffles peers, --neighbour ones first, in the order the node
// tries them.
func Order(peers []string, neighbour func(string) bool, rnd *rand.Rand) []string {
	out := append([]string(nil), peers...)
	keys := make(map[string]float64, len(out))
	for _, p := range out {
		k := rnd.Float64()
		if neighbour(p) {
			k++
		}
		keys[p] = k
	}
	sort.Slice(out, func(i, j int) bool { return keys[out[i]] > keys[out[j]] })
	return out
}
