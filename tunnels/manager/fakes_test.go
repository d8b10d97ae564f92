package manager

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/re6st-bpf/re6st-bpf/tunnels/peercache"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// fakeClock is a virtual clock: time moves only when the test fires the
// next timer.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clock *fakeClock
	at    time.Time
	c     chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, at: c.now.Add(d), c: make(chan time.Time)}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	i := slices.Index(t.clock.timers, t)
	if i < 0 {
		return false
	}
	t.clock.timers = slices.Delete(t.clock.timers, i, i+1)
	return true
}

// fire moves the clock to the earliest timer and delivers it, waiting
// until the loop takes it.
func (c *fakeClock) fire(t *testing.T) {
	c.mu.Lock()
	if len(c.timers) == 0 {
		c.mu.Unlock()
		t.Fatal("no timer pending")
	}
	i := 0
	for j, tm := range c.timers {
		if tm.at.Before(c.timers[i].at) {
			i = j
		}
	}
	tm := c.timers[i]
	c.timers = slices.Delete(c.timers, i, i+1)
	if tm.at.After(c.now) {
		c.now = tm.at
	}
	now := c.now
	c.mu.Unlock()
	tm.c <- now
}

// fakeBackend is an in-memory tunnel backend.
type fakeBackend struct {
	mu      sync.Mutex
	tunnels map[uint32]Endpoint
	removed []uint32
}

func (b *fakeBackend) Carries(encap string) bool { return encap == "fou" || encap == "gre" }
func (b *fakeBackend) Keyed(encap string) bool   { return encap == "gre" }

func (b *fakeBackend) LocalFor(netip.Addr) (netip.Addr, error) {
	return netip.MustParseAddr("192.0.2.1"), nil
}

func (b *fakeBackend) Add(id uint32, ep Endpoint) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tunnels[id] = ep
	return nil
}

func (b *fakeBackend) Remove(id uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.tunnels, id)
	b.removed = append(b.removed, id)
	return nil
}

func (b *fakeBackend) List() (map[uint32]Endpoint, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[uint32]Endpoint{}
	for id, ep := range b.tunnels {
		out[id] = ep
	}
	return out, nil
}

func (b *fakeBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.tunnels)
}

// fakeBabel is the routing protocol as the test sets it.
type fakeBabel struct {
	mu       sync.Mutex
	attached map[string]Tunnel
	draining map[string]bool
	routes   []Route
	lan      []netip.Prefix
	usable   map[string]bool // nil: every attached interface is usable
	blocked  map[string]bool // paths (pathOf: a type over a family) a firewall drops: never usable
}

func (f *fakeBabel) Attach(t Tunnel) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attached[t.Interface()] = t
	return nil
}

func (f *fakeBabel) Detach(t Tunnel) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.attached, t.Interface())
	f.routes = slices.DeleteFunc(f.routes, func(r Route) bool { return r.Interface == t.Interface() })
	return nil
}

func (f *fakeBabel) SetDraining(ifname string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.draining[ifname] = on
}

func (f *fakeBabel) Routes() []Route {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.routes)
}

func (f *fakeBabel) LANPrefixes() []netip.Prefix {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lan)
}

func (f *fakeBabel) Usable() map[string]bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]bool{}
	for name, t := range f.attached {
		out[name] = (f.usable == nil || f.usable[name]) && !f.blocked[pathOf(t.Endpoint.Encap, t.Endpoint.Remote.Addr())]
	}
	return out
}

func (f *fakeBabel) setRoutes(rs ...Route) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes = rs
}

func (f *fakeBabel) setLAN(ps ...netip.Prefix) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lan = ps
}

func (f *fakeBabel) setUsable(u map[string]bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.usable = u
}

func (f *fakeBabel) block(path string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blocked == nil {
		f.blocked = map[string]bool{}
	}
	f.blocked[path] = on
}

func (f *fakeBabel) isDraining(ifname string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.draining[ifname]
}

// fakeProto is the node protocol: peers accept, answer and agree.
type fakeProto struct {
	mu        sync.Mutex
	network   netip.Prefix
	addresses map[netip.Prefix][]nodeproto.Address // what AskAddresses answers
	refuse    map[netip.Prefix]bool
	silent    map[netip.Prefix]bool // peers whose answers never come (a firewall drops them)
	observed  netip.AddrPort        // what peers see of us; zero: our endpoint
	killErr   error
	asked     []netip.Prefix
	setups    []netip.Prefix
	kills     []netip.Prefix
	gossiped  []netip.Prefix
	forgotten []netip.Prefix
	requests  []nodeproto.TunnelRequest // every tunnel request sent
	binding   []byte                    // the credential peers answer with
	endpoint  netip.AddrPort            // the endpoint peers answer with
}

func (p *fakeProto) AskAddresses(_ context.Context, peer netip.Prefix) ([]nodeproto.Address, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, peer)
	if a, ok := p.addresses[peer]; ok {
		return a, nil
	}
	return nil, errors.New("no answer")
}

func (p *fakeProto) SetupTunnel(_ context.Context, peer netip.Prefix, _ netip.AddrPort, req nodeproto.TunnelRequest) (nodeproto.TunnelReply, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setups = append(p.setups, peer)
	p.requests = append(p.requests, req)
	if p.refuse[peer] {
		return nodeproto.TunnelReply{Reason: "no room"}, nil
	}
	if p.silent[peer] {
		return nodeproto.TunnelReply{}, context.DeadlineExceeded
	}
	observed := req.Endpoint
	if p.observed.IsValid() {
		observed = p.observed
	}
	return nodeproto.TunnelReply{Accepted: true, Endpoint: p.endpoint, Key: req.Key, Observed: observed, Binding: p.binding}, nil
}

func (p *fakeProto) KillTunnel(_ context.Context, peer netip.Prefix) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.kills = append(p.kills, peer)
	return p.killErr
}

func (p *fakeProto) PeerCertificate(netip.Prefix) *x509.Certificate { return nil }

func (p *fakeProto) Gossip(peer netip.Prefix) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gossiped = append(p.gossiped, peer)
}

func (p *fakeProto) Forget(peer netip.Prefix) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forgotten = append(p.forgotten, peer)
}

func (p *fakeProto) calls(list *[]netip.Prefix) []netip.Prefix {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(*list)
}

// fakeCache is an in-memory peer cache, in insertion order.
type fakeCache struct {
	mu    sync.Mutex
	order []string
	addrs map[string]string
	tried map[string]bool
}

func (c *fakeCache) Get(bits string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.addrs[bits]
	return a, ok
}

func (c *fakeCache) Put(bits, addresses string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.addrs[bits]; !ok {
		c.order = append(c.order, bits)
	}
	c.addrs[bits] = addresses
	delete(c.tried, bits)
	return nil
}

func (c *fakeCache) Random(n int, untriedOnly bool, skip func(string) bool) ([]peercache.Entry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []peercache.Entry
	for _, bits := range c.order {
		if len(out) < n && !(untriedOnly && c.tried[bits]) && !skip(bits) {
			out = append(out, peercache.Entry{Bits: bits, Addresses: c.addrs[bits]})
		}
	}
	return out, nil
}

func (c *fakeCache) MarkTried(bits string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tried[bits] = true
}

func (c *fakeCache) MarkWorked(bits string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.tried, bits)
}

func (c *fakeCache) Remove(bits string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.addrs, bits)
	c.order = slices.DeleteFunc(c.order, func(b string) bool { return b == bits })
	return nil
}

// fakeRegistry hands out one bootstrap peer.
type fakeRegistry struct {
	mu    sync.Mutex
	bits  string
	addrs string
	asked int
}

func (r *fakeRegistry) BootstrapPeer(context.Context) (string, string, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked++
	return r.bits, r.addrs, r.bits != "", nil
}

// fakeParams are the network parameters as the test sets them.
type fakeParams struct {
	mu                      sync.Mutex
	clientCount, maxClients int
	revoked                 map[uint64]bool
	self                    bool
}

func (p *fakeParams) Hello() time.Duration         { return time.Second }
func (p *fakeParams) RefreshPeriod() time.Duration { return 20 * time.Second }

func (p *fakeParams) Revoked(serial uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.revoked[serial]
}

func (p *fakeParams) SelfRevoked() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.self
}

func (p *fakeParams) Counts() (int, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.clientCount, p.maxClients
}

func (p *fakeParams) set(f func(p *fakeParams)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

var network = netip.MustParsePrefix("2001:db8::/32")

// peer is node i of the network: its prefix and bits.
func peer(t *testing.T, i int) (netip.Prefix, string) {
	p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i >> 8), byte(i)}), 48)
	bits, err := nodeproto.BitsOf(network, p)
	require.NoError(t, err)
	return p, bits
}

func addressOf(i int) string {
	return fmt.Sprintf("198.51.100.%d,4326,fou", i)
}

// harness runs a Manager against fakes on a virtual clock.
type harness struct {
	t       *testing.T
	m       *Manager
	clock   *fakeClock
	backend *fakeBackend
	babel   *fakeBabel
	proto   *fakeProto
	cache   *fakeCache
	reg     *fakeRegistry
	params  *fakeParams
	saved   []Tunnel
	cfg     Config
}

// newHarness builds the fakes; node 1 is us. Call start after setting them.
func newHarness(t *testing.T, clientCount, maxClients int) *harness {
	_, selfBits := peer(t, 1)
	h := &harness{
		t:       t,
		clock:   &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		backend: &fakeBackend{tunnels: map[uint32]Endpoint{}},
		babel:   &fakeBabel{attached: map[string]Tunnel{}, draining: map[string]bool{}},
		proto:   &fakeProto{network: network, addresses: map[netip.Prefix][]nodeproto.Address{}, refuse: map[netip.Prefix]bool{}, silent: map[netip.Prefix]bool{}},
		cache:   &fakeCache{addrs: map[string]string{}, tried: map[string]bool{}},
		reg:     &fakeRegistry{},
		params:  &fakeParams{clientCount: clientCount, maxClients: maxClients, revoked: map[uint64]bool{}},
	}
	h.cfg = Config{
		Self: selfBits, Network: network, Encap: nodeproto.ProtoFOU, FOUPort: 4326, PeerPort: 4326,
		Tick: 5 * time.Second, Backend: h.backend, Babel: h.babel, Protocol: h.proto, Cache: h.cache,
		Registry: h.reg, Params: h.params, Clock: h.clock, Rand: rand.New(rand.NewPCG(1, 2)),
		Logger: zerolog.Nop(),
	}
	return h
}

// start creates the manager and runs it until the test ends.
func (h *harness) start() {
	h.cfg.Saved = h.saved
	h.m = New(h.cfg)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.m.Run(ctx) }()
	h.m.do(func() {}) // Run's loop is up, its first timer set
	h.t.Cleanup(func() {
		cancel()
		require.NoError(h.t, <-errc)
	})
}

// step runs n steps (a virtual second each) of the loop.
func (h *harness) step(n int) {
	for range n {
		h.clock.fire(h.t)
		h.m.do(func() {})
	}
}

// until waits for cond, which the manager's goroutines make true.
func (h *harness) until(cond func() bool, msg string) {
	h.t.Helper()
	require.Eventually(h.t, cond, 2*time.Second, time.Millisecond, msg)
}

// idle waits until no set-up is under way.
func (h *harness) idle() {
	h.t.Helper()
	h.until(func() bool {
		busy := true
		h.m.do(func() { busy = len(h.m.pending) > 0 || h.m.bootstrapping })
		return !busy
	}, "set-ups still under way")
}

// startWith starts the manager with peers in the cache and lets the
// first tick make its tunnels.
func (h *harness) startWith(peers ...int) {
	h.cachePeers(peers...)
	h.start()
	h.step(1)
	h.idle()
}

// firstTunnel starts the manager with peer 2 in the cache and returns
// the outgoing tunnel it makes at the first tick.
func (h *harness) firstTunnel() (netip.Prefix, Info) {
	h.startWith(2)
	p2, _ := peer(h.t, 2)
	info, ok := h.tunnelTo(p2)
	require.True(h.t, ok)
	return p2, info
}

func (h *harness) cachePeers(ids ...int) {
	for _, i := range ids {
		_, bits := peer(h.t, i)
		require.NoError(h.t, h.cache.Put(bits, addressOf(i)))
	}
}

func (h *harness) outgoing() []netip.Prefix {
	var out []netip.Prefix
	for _, i := range h.m.Tunnels() {
		if i.Outgoing {
			out = append(out, i.Peer)
		}
	}
	return out
}

func (h *harness) tunnelTo(p netip.Prefix) (Info, bool) {
	for _, i := range h.m.Tunnels() {
		if i.Peer == p {
			return i, true
		}
	}
	return Info{}, false
}
