package babel

import (
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// LinkType selects how a link's cost is computed, as babeld's interface type.
type LinkType int

// Link types.
const (
	// LinkWired uses 2-out-of-3 and no RTT metric by default.
	LinkWired LinkType = iota
	// LinkTunnel uses 2-out-of-3 with timestamps and the RTT metric.
	LinkTunnel
	// LinkWireless uses ETX.
	LinkWireless
)

func (t LinkType) String() string {
	switch t {
	case LinkWired:
		return "wired"
	case LinkTunnel:
		return "tunnel"
	case LinkWireless:
		return "wireless"
	}
	return fmt.Sprintf("linktype-%d", int(t))
}

// ParseLinkType parses "wired", "tunnel" or "wireless".
func ParseLinkType(s string) (LinkType, error) {
	for _, t := range []LinkType{LinkWired, LinkTunnel, LinkWireless} {
		if t.String() == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown link type %q (want wired, tunnel or wireless)", s)
}

// InterfaceConfig is the per-interface configuration.
type InterfaceConfig struct {
	Type LinkType
	// HelloInterval is the multicast Hello interval (default 4 s).
	HelloInterval time.Duration
	// UpdateInterval is the full-dump interval (default 4 × HelloInterval).
	UpdateInterval time.Duration
	// Rxcost is the nominal link cost (default 96; 256 on wireless links).
	Rxcost uint16
	// Timestamps adds RFC 9616 timestamps to Hellos and IHUs.
	Timestamps bool
	// RTT is the delay-based cost; it needs Timestamps.
	RTT RTTConfig
	// UnicastHello also sends every neighbour a unicast Hello with each
	// multicast Hello (RFC 8966 §3.4.1), numbered in a sequence of its own
	// per neighbour, so that the neighbour keeps a unicast history too and
	// the link stays up while either kind of Hello gets through. It doubles
	// the Hello traffic; babeld sends none, so it is off by default.
	UnicastHello bool
	// SplitHorizon suppresses routes on the interface they were learned
	// from. re6st runs without it (babeld -s).
	SplitHorizon bool
	// MTU bounds the size of packets (default 1280).
	MTU int
	// Auth enables MAC authentication when not nil.
	Auth *Auth
	// Classes names the restricted classes (Class.Restricted) whose own
	// link this interface is.
	Classes []string
}

// DefaultInterfaceConfig returns babeld's defaults for the link type:
// tunnels get timestamps and the RTT metric.
func DefaultInterfaceConfig(t LinkType) InterfaceConfig {
	c := InterfaceConfig{Type: t, HelloInterval: 4 * time.Second, Rxcost: 96, MTU: 1280}
	switch t {
	case LinkTunnel:
		c.Timestamps, c.RTT = true, DefaultTunnelRTT
	case LinkWireless:
		c.Rxcost = 256
	}
	return c
}

func (c *InterfaceConfig) normalise() error {
	if c.HelloInterval <= 0 {
		c.HelloInterval = 4 * time.Second
	}
	if c.HelloInterval < 20*time.Millisecond || c.HelloInterval > 600*time.Second {
		return fmt.Errorf("hello interval %s out of range (20ms..600s)", c.HelloInterval)
	}
	if c.UpdateInterval <= 0 {
		c.UpdateInterval = 4 * c.HelloInterval
	}
	if c.UpdateInterval > 600*time.Second {
		c.UpdateInterval = 600 * time.Second
	}
	if c.Rxcost == 0 {
		c.Rxcost = 96
		if c.Type == LinkWireless {
			c.Rxcost = 256
		}
	}
	if c.Rxcost == Infinity {
		return errors.New("rxcost must be finite")
	}
	if c.MTU == 0 {
		c.MTU = 1280
	}
	if c.MTU < 512 {
		return fmt.Errorf("MTU %d too small", c.MTU)
	}
	if c.RTT.MaxPenalty > 0 {
		if c.RTT.Max <= c.RTT.Min {
			return fmt.Errorf("rtt-max %s must exceed rtt-min %s", c.RTT.Max, c.RTT.Min)
		}
		if c.RTT.Decay < 1 || c.RTT.Decay > 256 {
			return fmt.Errorf("rtt-decay %d out of range 1..256", c.RTT.Decay)
		}
	}
	if c.Auth != nil {
		return c.Auth.validate()
	}
	return nil
}

// Config configures a Router.
type Config struct {
	// RouterID must be valid (neither all-zeros nor all-ones).
	RouterID RouterID
	// Clock defaults to the real clock.
	Clock Clock
	// Rand provides jitter and nonces; default seeded from crypto/rand.
	// Simulations pass a seeded source for reproducibility.
	Rand *rand.Rand
	// Logger defaults to no logging.
	Logger *zerolog.Logger
	// Interner numbers prefixes and next hops; routers of one process may
	// share one to save memory (default: a private one).
	Interner *Interner
	// SmoothingHalfLife is the half-life of the smoothed metric used for
	// route-selection hysteresis (default 4 s, as babeld; negative disables).
	SmoothingHalfLife time.Duration
	// Handover, if set, is what the router this one replaces handed over
	// (Snapshot): its feasibility distances, and the state of each
	// interface, taken over when an interface of that name is added, until
	// EndHandover.
	Handover *Handover
}

// RandomRouterID returns a random valid router-id.
func RandomRouterID() RouterID {
	for {
		var id RouterID
		_, _ = crand.Read(id[:])
		if id.Valid() {
			return id
		}
	}
}

// RouteKey identifies a route: destination prefix and, for source-specific
// routes (RFC 9079), source prefix. Source is the zero Prefix when the
// route is not source-specific.
type RouteKey struct {
	Prefix netip.Prefix
	Source netip.Prefix
}

// KeyOf builds a canonical RouteKey: prefixes are masked and a source of
// length 0 means "not source-specific".
func KeyOf(prefix, source netip.Prefix) RouteKey {
	k := RouteKey{Prefix: prefix.Masked()}
	if source.IsValid() && source.Bits() > 0 {
		k.Source = source.Masked()
	}
	return k
}

func (k RouteKey) String() string {
	if k.Source.IsValid() {
		return k.Prefix.String() + " from " + k.Source.String()
	}
	return k.Prefix.String()
}

// Router is a Babel speaker. It is safe for concurrent use.
type Router struct {
	mu       sync.Mutex
	id       RouterID
	clock    Clock
	rand     *rand.Rand
	log      zerolog.Logger
	halfLife time.Duration

	seqno    uint16
	ifaces   map[string]*iface
	neighs   []*neighbour // by slot; nil when free
	free     []uint32     // free slots in neighs
	intern   *Interner
	exported map[uint32]uint16          // by key id
	classes  []Class                    // SetClasses
	dests    []*destination             // by key id
	requests map[uint32]*pendingRequest // by key id
	resends  map[uint32]*pendingResend  // by key id
	subs     map[int]func(RouteChange)
	nextSub  int

	housekeeping   Timer
	nextRouteCheck time.Duration
	enc            *Encoder
	closed         bool

	// handover holds the interface states a previous router handed over,
	// handoverElapsed the time since it did (Config.Handover).
	handover        map[string]InterfaceState
	handoverElapsed time.Duration
}

// NewRouter returns a router with no interface.
func NewRouter(cfg Config) (*Router, error) {
	if !cfg.RouterID.Valid() {
		return nil, errors.New("babel: invalid router-id")
	}
	if cfg.Clock == nil {
		cfg.Clock = NewRealClock()
	}
	if cfg.Rand == nil {
		var seed [32]byte
		_, _ = crand.Read(seed[:])
		cfg.Rand = rand.New(rand.NewChaCha8(seed))
	}
	log := zerolog.Nop()
	if cfg.Logger != nil {
		log = *cfg.Logger
	}
	if cfg.Interner == nil {
		cfg.Interner = NewInterner()
	}
	if cfg.SmoothingHalfLife == 0 {
		cfg.SmoothingHalfLife = 4 * time.Second
	}
	r := &Router{
		id:       cfg.RouterID,
		clock:    cfg.Clock,
		rand:     cfg.Rand,
		log:      log,
		halfLife: cfg.SmoothingHalfLife,
		seqno:    uint16(cfg.Rand.Uint32()),
		ifaces:   make(map[string]*iface),
		intern:   cfg.Interner,
		exported: make(map[uint32]uint16),
		requests: make(map[uint32]*pendingRequest),
		resends:  make(map[uint32]*pendingResend),
		subs:     make(map[int]func(RouteChange)),
		enc:      NewEncoder(0),
	}
	if cfg.Handover != nil {
		r.takeOver(cfg.Handover)
	}
	return r, nil
}

// ID returns the router-id.
func (r *Router) ID() RouterID { return r.id }

// Close stops every interface and timer.
func (r *Router) Close() error {
	r.mu.Lock()
	var stopped []Transport
	for name := range r.ifaces {
		stopped = append(stopped, r.removeInterface(name))
	}
	if r.housekeeping != nil {
		r.housekeeping.Stop()
	}
	r.closed = true
	r.mu.Unlock()
	return closeAll(stopped...)
}

// jitter returns d scaled by a random factor in [1-f, 1+f).
func (r *Router) jitter(d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * (1 - f + 2*f*r.rand.Float64()))
}

// AddInterface starts Babel on an interface with the given transport.
func (r *Router) AddInterface(name string, cfg InterfaceConfig, t Transport) error {
	if err := cfg.normalise(); err != nil {
		return fmt.Errorf("babel: interface %s: %w", name, err)
	}
	if !t.LocalAddr().IsValid() {
		return fmt.Errorf("babel: interface %s: transport has no local address", name)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("babel: router closed")
	}
	if _, ok := r.ifaces[name]; ok {
		return fmt.Errorf("babel: interface %s already exists", name)
	}
	i := &iface{
		name:              name,
		cfg:               cfg,
		t:                 t,
		local:             t.LocalAddr(),
		neighbours:        make(map[netip.Addr]*neighbour),
		helloSeqno:        uint16(r.rand.Uint32()),
		mcast:             newOutBuffer(MulticastGroup),
		ucast:             make(map[netip.Addr]*outBuffer),
		multipliers:       make(map[netip.Addr]uint16),
		defaultMultiplier: unitMultiplier,
	}
	if cfg.Auth != nil {
		i.auth = newAuthState(*cfg.Auth, r.randomBytes(pcIndexLen))
	}
	resumed := r.resume(i)
	r.ifaces[name] = i
	if err := t.Start(func(src, dst netip.Addr, pkt []byte) { r.receive(i, src, dst, pkt) }); err != nil {
		for _, n := range i.neighbours {
			r.flushNeighbour(n)
		}
		delete(r.ifaces, name)
		return fmt.Errorf("babel: interface %s: %w", name, err)
	}
	// Ask for full dumps and say hello soon, then settle into the periods.
	i.mcast.msgs = append(i.mcast.msgs, RouteRequest{})
	r.scheduleHello(i, r.jitter(100*time.Millisecond, 0.5))
	r.scheduleUpdate(i, r.jitter(i.cfg.UpdateInterval, 0.25))
	r.scheduleHousekeeping()
	r.log.Info().Str("interface", name).Stringer("local", i.local).Stringer("type", cfg.Type).
		Dur("hello", cfg.HelloInterval).Bool("resumed", resumed).Int("neighbours", len(i.neighbours)).Msg("babel: interface up")
	return nil
}

// RemoveInterface stops Babel on an interface, dropping its neighbours and
// the routes through them.
func (r *Router) RemoveInterface(name string) error {
	r.mu.Lock()
	if _, ok := r.ifaces[name]; !ok {
		r.mu.Unlock()
		return fmt.Errorf("babel: no interface %s", name)
	}
	t := r.removeInterface(name)
	r.mu.Unlock()
	return closeAll(t)
}

// closeAll closes transports of removed interfaces. It runs without r.mu:
// a transport's Close may wait for a packet being delivered, and the
// delivery takes r.mu (then sees the interface removed).
func closeAll(ts ...Transport) error {
	var errs []error
	for _, t := range ts {
		errs = append(errs, t.Close())
	}
	return errors.Join(errs...)
}

// removeInterface removes an existing interface and returns its transport,
// to be closed once r.mu is released.
func (r *Router) removeInterface(name string) Transport {
	i := r.ifaces[name]
	for _, n := range i.neighbours {
		r.flushNeighbour(n)
	}
	for _, t := range []Timer{i.helloTimer, i.updateTimer, i.flushTimer} {
		if t != nil {
			t.Stop()
		}
	}
	i.removed = true
	delete(r.ifaces, name)
	r.log.Info().Str("interface", name).Msg("babel: interface down")
	return i.t
}

func (r *Router) randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.rand.Uint32())
	}
	return b
}

// unitMultiplier is a cost multiplier of 1 (multipliers are in 1/256).
const unitMultiplier = 256

// SetCostMultiplier scales the cost of a neighbour by m/256: 256 leaves it
// unchanged, 512 doubles it, 0 makes the neighbour unusable. The tunnel
// manager raises it to drain a tunnel before removing it. An invalid
// neighbour address applies m to every neighbour of the interface, present
// and future, that has no multiplier of its own.
func (r *Router) SetCostMultiplier(ifname string, neighbour netip.Addr, m uint16) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.ifaces[ifname]
	if !ok {
		return fmt.Errorf("babel: no interface %s", ifname)
	}
	if neighbour.IsValid() {
		i.multipliers[neighbour] = m
	} else {
		i.defaultMultiplier = m
	}
	for _, n := range i.neighbours {
		r.updateCost(n)
	}
	return nil
}

// Export announces a prefix (with an optional source prefix) originated by
// this router, at the given metric (usually 0).
func (r *Router) Export(prefix, source netip.Prefix, metric uint16) error {
	if !prefix.IsValid() || metric == Infinity {
		return fmt.Errorf("babel: cannot export %s with metric %d", prefix, metric)
	}
	if source.IsValid() && source.Addr().Is4() != prefix.Addr().Is4() {
		return fmt.Errorf("babel: source %s and prefix %s differ in family", source, prefix)
	}
	key := KeyOf(prefix, source)
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.intern.keyID(key)
	r.exported[id] = metric
	if d := r.dest(id); d != nil && d.selNeigh != nil {
		// Our own prefix takes over: the learned route is no longer used,
		// without the retraction and request a lost route would call for.
		d.selNeigh, d.last = nil, selectedState{}
		r.notify(RouteChange{Key: key})
	}
	r.queueUpdateAll(id, true)
	return nil
}

// Withdraw stops announcing an exported prefix; a retraction is sent.
func (r *Router) Withdraw(prefix, source netip.Prefix) {
	id, ok := r.intern.findKey(KeyOf(prefix, source))
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, exported := r.exported[id]; !ok || !exported {
		return
	}
	delete(r.exported, id)
	r.queueUrgentUpdate(nil, id)
	if d := r.dest(id); d != nil {
		r.reselect(d)
	}
}

// RouteChange reports that the selected route for Key changed. Route is
// nil when no route remains.
type RouteChange struct {
	Key   RouteKey
	Route *SelectedRoute
}

// SelectedRoute is a route in use for forwarding.
type SelectedRoute struct {
	Key       RouteKey
	Interface string
	Neighbour netip.Addr
	NextHop   netip.Addr
	RouterID  RouterID
	Seqno     uint16
	Metric    uint16
}

// Subscribe calls fn for every route already selected, then for every
// change of a selected route (a new route, a new next hop or a lost route;
// metric-only changes are not reported), with nothing missed in between.
// fn runs with the router locked: it must be quick and must not call the
// Router. The returned function cancels the subscription.
func (r *Router) Subscribe(fn func(RouteChange)) (cancel func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.dests {
		if d != nil && d.selNeigh != nil {
			sr := r.selectedRoute(d)
			fn(RouteChange{Key: sr.Key, Route: &sr})
		}
	}
	id := r.nextSub
	r.nextSub++
	r.subs[id] = fn
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.subs, id)
	}
}

func (r *Router) notify(c RouteChange) {
	for _, fn := range r.subs {
		fn(c)
	}
}

// Selected returns the selected route for key.
func (r *Router) Selected(key RouteKey) (SelectedRoute, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.findDest(key)
	if d == nil || d.selNeigh == nil {
		return SelectedRoute{}, false
	}
	return r.selectedRoute(d), true
}

// SelectedRoutes returns every selected route.
func (r *Router) SelectedRoutes() []SelectedRoute {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]SelectedRoute, 0, len(r.dests))
	for _, d := range r.dests {
		if d != nil && d.selNeigh != nil {
			out = append(out, r.selectedRoute(d))
		}
	}
	return out
}

func (r *Router) selectedRoute(d *destination) SelectedRoute {
	rt := d.selected()
	return SelectedRoute{
		Key:       r.intern.key(d.id),
		Interface: d.selNeigh.iface.name,
		Neighbour: d.selNeigh.addr,
		NextHop:   r.nexthopOf(rt),
		RouterID:  rt.routerID,
		Seqno:     rt.seqno,
		Metric:    r.metric(d, rt),
	}
}
