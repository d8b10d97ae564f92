package simnet

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
)

// Options configure a Sim.
type Options struct {
	// Seed makes jitter and topologies reproducible.
	Seed uint64
	// Interface is the configuration of every interface (default: a
	// tunnel with a 1 s Hello interval).
	Interface babel.InterfaceConfig
	// Delay is the one-way delay of links (default 1 ms).
	Delay time.Duration
	// CheckLoops checks after every event that no selected route forms a
	// forwarding loop.
	CheckLoops bool
	// Export chooses the nodes that export their prefix (nil: every node).
	// Babel's per-prefix state and work are independent across prefixes,
	// so a network where only a sample of the nodes export shows what
	// each prefix costs without paying for all of them.
	Export func(i int) bool
}

// Node is one simulated router, exporting one prefix if Exported.
type Node struct {
	Index    int
	Router   *babel.Router
	Prefix   netip.Prefix
	Exported bool
	Alive    bool
	links    []*Link
}

// Sim is a network of routers on a virtual clock.
type Sim struct {
	Clock *Clock
	Net   *Network
	Nodes []*Node
	opts  Options
	rand  *rand.Rand
	owner map[netip.Addr]*Node
	links map[netip.Addr]*Link
	keys  map[babel.RouteKey]*Node
	seen  []uint64
	walks uint64

	changed []nodeKey
	loops   []string
}

type nodeKey struct {
	node *Node
	key  babel.RouteKey
}

// NodePrefix is the prefix node i exports: 2001:db8:XXXX:XXXX::/64.
func NodePrefix(i int) netip.Prefix {
	var a [16]byte
	a[0], a[1], a[2], a[3] = 0x20, 0x01, 0x0d, 0xb8
	binary.BigEndian.PutUint32(a[4:8], uint32(i))
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

// RandomExporters returns an Options.Export that picks k distinct nodes
// out of n at random (reproducibly from seed, without drawing from the
// simulation's random source, so that topologies built from it are the
// same whatever the sample).
func RandomExporters(n, k int, seed uint64) func(i int) bool {
	chosen := make([]bool, n)
	for _, i := range rand.New(rand.NewPCG(seed, 0)).Perm(n)[:min(k, n)] {
		chosen[i] = true
	}
	return func(i int) bool { return chosen[i] }
}

// New builds n routers with no links; node i exports NodePrefix(i) if
// opts.Export says so.
func New(n int, opts Options) (*Sim, error) {
	if opts.Interface.HelloInterval == 0 {
		opts.Interface = babel.DefaultInterfaceConfig(babel.LinkTunnel)
		opts.Interface.HelloInterval = time.Second
	}
	if opts.Delay == 0 {
		opts.Delay = time.Millisecond
	}
	clock := NewClock(time.Second)
	s := &Sim{
		Clock: clock,
		Net:   NewNetwork(clock),
		opts:  opts,
		rand:  rand.New(rand.NewPCG(opts.Seed, 1)),
		owner: make(map[netip.Addr]*Node),
		links: make(map[netip.Addr]*Link),
		keys:  make(map[babel.RouteKey]*Node),
	}
	intern := babel.NewInterner() // every prefix stored once
	for i := range n {
		var id babel.RouterID
		binary.BigEndian.PutUint64(id[:], uint64(i)+1)
		r, err := babel.NewRouter(babel.Config{
			RouterID: id,
			Clock:    clock,
			Interner: intern,
			Rand:     rand.New(rand.NewPCG(opts.Seed, uint64(i)+2)),
		})
		if err != nil {
			return nil, err
		}
		node := &Node{Index: i, Router: r, Prefix: NodePrefix(i), Exported: opts.Export == nil || opts.Export(i), Alive: true}
		if node.Exported {
			if err := r.Export(node.Prefix, netip.Prefix{}, 0); err != nil {
				return nil, err
			}
			s.keys[babel.KeyOf(node.Prefix, netip.Prefix{})] = node
		}
		if opts.CheckLoops {
			r.Subscribe(func(c babel.RouteChange) { s.changed = append(s.changed, nodeKey{node, c.Key}) })
		}
		s.Nodes = append(s.Nodes, node)
	}
	s.seen = make([]uint64, n)
	return s, nil
}

// Rand is the simulation's random source (for topologies).
func (s *Sim) Rand() *rand.Rand { return s.rand }

// Connect links nodes a and b with a point-to-point link (a tunnel).
func (s *Sim) Connect(a, b int) (*Link, error) {
	l := s.Net.NewLink(s.opts.Delay)
	for _, x := range []int{a, b} {
		node := s.Nodes[x]
		ep := l.Attach()
		s.owner[ep.LocalAddr()] = node
		s.links[ep.LocalAddr()] = l
		name := fmt.Sprintf("t%d", len(node.links))
		if err := node.Router.AddInterface(name, s.opts.Interface, ep); err != nil {
			return nil, err
		}
		node.links = append(node.links, l)
	}
	return l, nil
}

// Kill stops a node: its router closes and its links go down.
func (s *Sim) Kill(i int) {
	node := s.Nodes[i]
	node.Alive = false
	for _, l := range node.links {
		l.SetUp(false)
	}
	_ = node.Router.Close()
}

// Run advances the simulation by d, checking loops after every event if
// asked to.
func (s *Sim) Run(d time.Duration) {
	var after func()
	if s.opts.CheckLoops {
		after = s.checkLoops
	}
	s.Clock.Advance(d, after)
}

// Loops returns the forwarding loops seen so far.
func (s *Sim) Loops() []string { return s.loops }

// checkLoops walks the forwarding path of every destination whose selected
// route changed during the last event. Any new loop must go through a
// changed route, so this finds every loop at the instant it forms.
func (s *Sim) checkLoops() {
	for _, c := range s.changed {
		if path, ok := s.walk(c.node, c.key); !ok {
			s.loops = append(s.loops, fmt.Sprintf("t=%s %s: %v", s.Clock.Now(), c.key, path))
		}
	}
	s.changed = s.changed[:0]
}

// walk follows next hops for key from start. It returns false when it
// runs into a loop.
func (s *Sim) walk(start *Node, key babel.RouteKey) ([]int, bool) {
	s.walks++
	var path []int
	for n := start; n != nil && n.Alive; {
		path = append(path, n.Index)
		if s.seen[n.Index] == s.walks {
			return path, false
		}
		s.seen[n.Index] = s.walks
		if s.keys[key] == n {
			return path, true
		}
		sel, ok := n.Router.Selected(key)
		if !ok {
			return path, true
		}
		n = s.owner[sel.Neighbour]
	}
	return path, true
}

// nextHop returns the node a's selected route for key forwards to, or nil
// when there is none or the link to it is down.
func (s *Sim) nextHop(a *Node, key babel.RouteKey) *Node {
	sel, ok := a.Router.Selected(key)
	if !ok {
		return nil
	}
	if l := s.links[sel.Neighbour]; l == nil || !l.Up() {
		return nil
	}
	return s.owner[sel.Neighbour]
}

// Unreachable counts the pairs of a live node and a live exporter other
// than itself whose forwarding path does not deliver (no route, a dead next
// hop, a link that is down or a loop); 0 means every live node reaches every
// live exported prefix.
func (s *Sim) Unreachable() int {
	const (
		unknown = iota
		visiting
		delivers
		fails
	)
	n := len(s.Nodes)
	next := make([]int, n)
	state := make([]uint8, n)
	bad := 0
	for _, b := range s.Nodes {
		if !b.Alive || !b.Exported {
			continue
		}
		key := babel.KeyOf(b.Prefix, netip.Prefix{})
		for _, a := range s.Nodes {
			state[a.Index], next[a.Index] = unknown, -1
			if a == b {
				state[a.Index] = delivers
			} else if !a.Alive {
				state[a.Index] = fails
			} else if hop := s.nextHop(a, key); hop != nil {
				next[a.Index] = hop.Index
			}
		}
		var resolve func(i int) uint8
		resolve = func(i int) uint8 {
			switch {
			case state[i] == visiting:
				return fails // a loop
			case state[i] != unknown:
				return state[i]
			case next[i] < 0:
				state[i] = fails
				return fails
			}
			state[i] = visiting
			state[i] = resolve(next[i])
			return state[i]
		}
		for _, a := range s.Nodes {
			if a.Alive && resolve(a.Index) != delivers {
				bad++
			}
		}
	}
	return bad
}

// Stray counts the routes that live nodes select towards a prefix that no
// live node exports (a dead node's, or one never exported).
func (s *Sim) Stray() int {
	stray := 0
	for _, a := range s.Nodes {
		if !a.Alive {
			continue
		}
		for _, sel := range a.Router.SelectedRoutes() {
			if owner := s.keys[sel.Key]; owner == nil || !owner.Alive {
				stray++
			}
		}
	}
	return stray
}

// Settled reports whether every live node reaches every live exported
// prefix and selects no route to any other.
func (s *Sim) Settled() bool { return s.Unreachable() == 0 && s.Stray() == 0 }

// Routes counts the routes (selected or not) that live nodes hold. It
// dumps every router, which is slow on large networks.
func (s *Sim) Routes() int {
	routes := 0
	for _, a := range s.Nodes {
		if a.Alive {
			routes += len(a.Router.Dump().Routes)
		}
	}
	return routes
}

// RunUntil advances in steps of check until done returns true, or until
// limit has elapsed. It returns the time taken and whether done returned
// true.
func (s *Sim) RunUntil(limit, check time.Duration, done func() bool) (time.Duration, bool) {
	start := s.Clock.Now()
	for s.Clock.Now()-start < limit {
		s.Run(check)
		if done() {
			return s.Clock.Now() - start, true
		}
	}
	return s.Clock.Now() - start, false
}

// RunUntilConverged advances in steps of check until every live node
// reaches every live exported prefix, or until limit has elapsed. It
// returns the time taken and whether the network converged.
func (s *Sim) RunUntilConverged(limit, check time.Duration) (time.Duration, bool) {
	return s.RunUntil(limit, check, func() bool { return s.Unreachable() == 0 })
}
