package manager

import (
	"cmp"
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"

	"github.com/re6st-bpf/re6st-bpf/registry/wire"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

const (
	// setupTimeout bounds one node-protocol exchange.
	setupTimeout = 10 * time.Second
	// stepInterval is how often drains progress (re6st polls each second).
	stepInterval = time.Second
	// peerKillDelay: a tunnel the peer drained goes this long after we
	// said ready, so that our answer leaves through it.
	peerKillDelay = time.Second
)

// Config is what the manager needs of the node.
type Config struct {
	Self    string       // our prefix, as re6st's bit string
	Network netip.Prefix // the overlay network
	Encap   string       // the encapsulation we prefer for our tunnels
	// Types is the preference list of tunnel types (--tunnel-types),
	// fastest first; empty: Encap first, then any other the backend
	// carries. See choice.go.
	Types      []string
	FOUPort    uint16   // our FOU port, where peers reach us
	PeerPort   uint16   // a peer's FOU port when it does not say
	Neighbours []string // --neighbour peers (bits or CN): preferred, removed last
	Tick       time.Duration

	// Saved is the table a previous run saved: its tunnels still in the
	// backend are taken over, unless SavedAt (when that run stopped; zero
	// if unknown, after a crash) is so long ago that every peer has
	// dropped its side (stale, below). Save records the table after each
	// change.
	Saved   []Tunnel
	SavedAt time.Time
	Save    func([]Tunnel) error

	Backend  Backend
	Babel    Babel
	Protocol Protocol
	Cache    PeerCache
	Registry Registry
	// RegistryBits is the registry node's prefix (re6st's bit string,
	// "" while unknown): a node without a route to it asks the registry for
	// a bootstrap peer (partition recovery). Nil: only when Babel knows
	// nobody.
	RegistryBits func() string
	// OtherIncoming counts the incoming tunnels outside the table (an
	// OpenVPN server's clients), which max_clients bounds with the
	// table's; nil: none.
	OtherIncoming func() int
	// Countries applies the network's same_country rule; nil: none.
	Countries Countries
	Params    Params
	Clock     Clock      // default RealClock
	Rand      *rand.Rand // default seeded at random
	Logger    zerolog.Logger
}

// Manager owns the tunnel table. Create it with New, run it with Run.
type Manager struct {
	cfg     Config
	log     zerolog.Logger
	clock   Clock
	started time.Time
	ops     chan func()
	done    chan struct{} // closed when Run stops taking operations

	// Owned by Run's goroutine.
	tunnels       map[uint32]*entry
	pending       map[string]bool    // peers a set-up is under way with
	choices       map[string]*choice // per peer: tunnel types that worked or failed
	lastRefresh   time.Time
	nextTick      time.Time
	bootstrapping bool
	g             *errgroup.Group
	ctx           context.Context
}

type entry struct {
	Tunnel
	usable   time.Time // when Babel last had a finite cost to the peer
	draining bool      // its cost is raised
	drain    *drain    // we are removing it
	closeAt  time.Time // the peer drained it: remove it then
}

// drain is the removal of a tunnel without black-holing traffic: wait
// until no route uses it, then until the peer agrees, within deadline.
type drain struct {
	why        string
	deadline   time.Time
	routesGone bool
	asking     bool // a KillTunnel is under way
}

var (
	errDuplicate = errors.New("a tunnel with that peer exists")
	errStopped   = errors.New("tunnel manager stopped")
)

// New returns a manager that has taken over the tunnels of cfg.Saved
// still in the backend; the backend's other tunnels are removed.
func New(cfg Config) *Manager {
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	m := &Manager{
		cfg: cfg, log: cfg.Logger, clock: cfg.Clock, started: cfg.Clock.Now(),
		ops: make(chan func()), done: make(chan struct{}),
		tunnels: map[uint32]*entry{}, pending: map[string]bool{}, choices: map[string]*choice{},
	}
	m.restore()
	return m
}

func (m *Manager) restore() {
	known := map[uint32]Tunnel{}
	if m.stale() {
		m.log.Info().Time("stopped", m.cfg.SavedAt).Msg("down longer than peers keep a silent tunnel: tunnels not taken over")
	} else {
		for _, t := range m.cfg.Saved {
			known[t.ID] = t
		}
	}
	existing, err := m.cfg.Backend.List()
	if err != nil {
		m.log.Warn().Err(err).Msg("cannot list the backend's tunnels")
		return
	}
	for id, ep := range existing {
		t, ok := known[id]
		if !ok || t.Endpoint != ep {
			if err := m.cfg.Backend.Remove(id); err != nil {
				m.log.Warn().Err(err).Uint32("tunnel", id).Msg("cannot remove a stale tunnel")
			}
			continue
		}
		if err := m.cfg.Babel.Attach(t); err != nil {
			m.log.Warn().Err(err).Uint32("tunnel", id).Msg("cannot restore tunnel")
			continue
		}
		m.tunnels[id] = &entry{Tunnel: t}
		m.log.Info().Uint32("tunnel", id).Stringer("peer", t.Peer).Msg("tunnel taken over")
	}
}

// staleHellos bounds, in Hello intervals, how long a peer keeps a tunnel
// to a node that stopped: its Babel forgets a neighbour's Hellos within
// 16 intervals (the history's depth), and the manager reaps a tunnel 4
// intervals after its link stopped being usable (reapSilent).
const staleHellos = 16 + 4

// stale: the saved tunnels are older than every peer's patience, so their
// other sides are gone; taking them over would only delay new ones by
// the reap timeout.
func (m *Manager) stale() bool {
	if m.cfg.SavedAt.IsZero() {
		return false
	}
	return m.clock.Now().Sub(m.cfg.SavedAt) > staleHellos*m.cfg.Params.Hello()+m.cfg.Tick
}

// Run runs the manager until ctx ends, then waits for the set-ups and
// removals it started and saves the table. The tunnels stay: a restarted
// node takes them over.
func (m *Manager) Run(ctx context.Context) error {
	m.g, m.ctx = errgroup.WithContext(ctx)
	now := m.clock.Now()
	m.lastRefresh, m.nextTick = now, now
	timer := m.clock.NewTimer(0)
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			close(m.done)
			err := m.g.Wait()
			m.save()
			return err
		case f := <-m.ops:
			f()
		case <-timer.C():
			m.step()
			timer = m.clock.NewTimer(min(stepInterval, m.cfg.Tick))
		}
	}
}

// do runs f on Run's goroutine and waits for it; false if Run stopped.
func (m *Manager) do(f func()) bool {
	ran := make(chan struct{})
	select {
	case m.ops <- func() { f(); close(ran) }:
		<-ran
		return true
	case <-m.done:
		return false
	}
}

// spawn runs f on a goroutine that Run waits for.
func (m *Manager) spawn(f func()) {
	m.g.Go(func() error {
		f()
		return nil
	})
}

// Tunnels returns the table, by id.
func (m *Manager) Tunnels() []Info {
	var out []Info
	m.do(func() {
		for _, e := range m.tunnels {
			out = append(out, Info{Tunnel: e.Tunnel, Draining: e.draining})
		}
	})
	slices.SortFunc(out, func(a, b Info) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// CheckRevoked tears down, at once, the tunnels to revoked certificates,
// and every tunnel once our own certificate is revoked. A revoked peer
// also leaves the peer cache: it is no bootstrap peer any more.
func (m *Manager) CheckRevoked() { m.do(m.checkRevoked) }

func (m *Manager) checkRevoked() {
	self := m.cfg.Params.SelfRevoked()
	for _, e := range m.tunnels {
		peerRevoked := e.Serial != 0 && m.cfg.Params.Revoked(e.Serial)
		if self || peerRevoked {
			m.cfg.Protocol.Forget(e.Peer)
			m.close(e, "certificate revoked")
		}
		if peerRevoked {
			if err := m.cfg.Cache.Remove(e.Bits); err != nil {
				m.log.Warn().Err(err).Msg("peer cache")
			}
		}
	}
}

// CloseIf tears down, at once, every tunnel for which drop is true (the
// network turned encryption on: the tunnels in clear go), and returns how
// many went. The peer's side goes the same way, or silent.
func (m *Manager) CloseIf(why string, drop func(Tunnel) bool) int {
	var n int
	m.do(func() {
		for _, e := range m.tunnels {
			if drop(e.Tunnel) {
				m.close(e, why)
				n++
			}
		}
	})
	return n
}

// step runs every stepInterval: the tick when due, and the drains.
func (m *Manager) step() {
	now := m.clock.Now()
	if !now.Before(m.nextTick) {
		m.nextTick = now.Add(m.cfg.Tick)
		m.tick(now)
	}
	m.progress(now)
}

// timeout is re6st's "4 × hello": how long a tunnel operation may take.
func (m *Manager) timeout() time.Duration { return 4 * m.cfg.Params.Hello() }

func (m *Manager) tick(now time.Time) {
	m.checkRevoked()
	if m.cfg.Params.SelfRevoked() {
		return
	}
	v := m.look()
	m.reapSilent(now)
	clients, _ := m.cfg.Params.Counts()
	if clients == 0 {
		return
	}
	limit := ClientLimit(clients, v.incoming)
	if now.Sub(m.lastRefresh) >= m.cfg.Params.RefreshPeriod() {
		m.lastRefresh = now
		if e := m.upgradable(now); e != nil {
			m.startDrain(e, "a faster tunnel type", now)
		} else if id, ok := Victim(v.loads, limit); ok {
			if e := m.tunnels[id]; e != nil {
				m.startDrain(e, "refresh", now)
			}
		}
	}
	need := limit - LiveOutgoing(v.loads) - len(m.pending)
	if need <= 0 {
		return
	}
	if len(v.known) > 0 {
		if m.registryUnrouted(v) {
			m.rejoin(v)
			need--
		}
		m.extendMesh(v, need)
		return
	}
	m.bootstrap(v, need)
}

// view is what one tick sees of Babel.
type view struct {
	loads    []Load
	known    map[string]netip.Prefix // re6st prefixes Babel routes to, by bits
	direct   map[string]bool         // peers that are direct Babel neighbours
	lan      map[string]bool         // direct neighbours heard on a LAN
	incoming int
}

func (m *Manager) look() view {
	v := view{known: map[string]netip.Prefix{}, direct: map[string]bool{}, lan: map[string]bool{}}
	network := m.cfg.Network
	routesVia := map[uint32]int{}
	for _, r := range m.cfg.Babel.Routes() {
		p := r.Prefix
		if r.Source.IsValid() || p.Bits() <= network.Bits() || !network.Overlaps(p) {
			continue
		}
		bits, err := nodeproto.BitsOf(network, p)
		if err != nil || bits == m.cfg.Self {
			continue
		}
		v.known[bits] = p
		if id := IDOf(r.Interface); id != 0 {
			routesVia[id]++
		} else if r.Refmetric == 0 {
			v.direct[bits] = true // a LAN neighbour announcing its own prefix
		}
	}
	for _, p := range m.cfg.Babel.LANPrefixes() {
		if bits, err := nodeproto.BitsOf(network, p); err == nil && bits != m.cfg.Self {
			v.direct[bits], v.lan[bits] = true, true
		}
	}
	for _, e := range m.tunnels {
		v.direct[e.Bits] = true
		v.loads = append(v.loads, Load{ID: e.ID, Routes: routesVia[e.ID],
			Neighbour: m.isNeighbour(e.Bits), Outgoing: e.Outgoing, Draining: e.draining, OnLAN: v.lan[e.Bits]})
		if !e.Outgoing {
			v.incoming++
		}
	}
	v.incoming += m.otherIncoming()
	return v
}

// isNeighbour: the peer was named with --neighbour (as its CN or bits).
func (m *Manager) isNeighbour(bits string) bool {
	return slices.Contains(m.cfg.Neighbours, bits) || slices.Contains(m.cfg.Neighbours, wire.CommonName(bits))
}

// reapSilent removes tunnels over which Babel has had no usable link (a
// finite cost: Hellos heard and our Hellos acknowledged) for a timeout,
// re6st's 4 × hello ping-exit: the peer died, or tore its side down. A
// tunnel made, or taken over after a restart, gets the timeout to come up.
func (m *Manager) reapSilent(now time.Time) {
	usable := m.cfg.Babel.Usable()
	for _, e := range m.tunnels {
		if usable[e.Interface()] {
			if e.usable.IsZero() {
				m.noteUsable(e)
			}
			e.usable = now
		}
		since := later(later(e.Created, m.started), e.usable)
		if now.Sub(since) > m.timeout() && !e.draining {
			m.close(e, "peer silent")
			if e.Outgoing && e.usable.IsZero() {
				m.fallBack(e, now)
			}
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// routesVia counts the routes Babel selected through an interface.
func (m *Manager) routesVia(ifname string) int {
	c := 0
	for _, r := range m.cfg.Babel.Routes() {
		if r.Interface == ifname {
			c++
		}
	}
	return c
}

func (m *Manager) tunnelTo(bits string) *entry {
	for _, e := range m.tunnels {
		if e.Bits == bits {
			return e
		}
	}
	return nil
}

func (m *Manager) claim(bits string) bool {
	if m.pending[bits] || m.tunnelTo(bits) != nil || bits == m.cfg.Self {
		return false
	}
	m.pending[bits] = true
	return true
}

func (m *Manager) release(bits string) { m.do(func() { delete(m.pending, bits) }) }

// open adds a tunnel to the backend, Babel and the table.
func (m *Manager) open(t Tunnel) (Tunnel, error) {
	if m.tunnelTo(t.Bits) != nil {
		return t, errDuplicate
	}
	t.ID = m.freeID()
	if err := m.cfg.Backend.Add(t.ID, t.Endpoint); err != nil {
		return t, err
	}
	if err := m.cfg.Babel.Attach(t); err != nil {
		if err := m.cfg.Backend.Remove(t.ID); err != nil {
			m.log.Warn().Err(err).Uint32("tunnel", t.ID).Msg("remove tunnel")
		}
		return t, err
	}
	t.Created = m.clock.Now()
	m.tunnels[t.ID] = &entry{Tunnel: t}
	m.save()
	m.log.Info().Uint32("tunnel", t.ID).Stringer("peer", t.Peer).Stringer("remote", t.Endpoint.Remote).
		Str("encap", t.Endpoint.Encap).Bool("outgoing", t.Outgoing).Msg("tunnel up")
	return t, nil
}

func (m *Manager) freeID() uint32 {
	for id := uint32(1); ; id++ {
		if _, used := m.tunnels[id]; !used {
			return id
		}
	}
}

// close removes the Babel interface, then the tunnel (and the routes
// into it) from the backend.
func (m *Manager) close(e *entry, why string) {
	if m.tunnels[e.ID] != e {
		return
	}
	delete(m.tunnels, e.ID)
	m.save()
	if err := m.cfg.Babel.Detach(e.Tunnel); err != nil {
		m.log.Warn().Err(err).Uint32("tunnel", e.ID).Msg("remove Babel interface")
	}
	if err := m.cfg.Backend.Remove(e.ID); err != nil {
		m.log.Warn().Err(err).Uint32("tunnel", e.ID).Msg("remove tunnel")
	}
	m.log.Info().Uint32("tunnel", e.ID).Stringer("peer", e.Peer).Str("why", why).Msg("tunnel down")
}

func (m *Manager) save() {
	if m.cfg.Save == nil {
		return
	}
	list := make([]Tunnel, 0, len(m.tunnels))
	for _, e := range m.tunnels {
		list = append(list, e.Tunnel)
	}
	slices.SortFunc(list, func(a, b Tunnel) int { return cmp.Compare(a.ID, b.ID) })
	if err := m.cfg.Save(list); err != nil {
		m.log.Warn().Err(err).Msg("cannot save the tunnel table")
	}
}
