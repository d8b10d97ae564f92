package node

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/routing/bgp"
	"github.com/re6st-bpf/re6st-bpf/routing/fib"
)

// BGPConfig is a border gateway's BGP configuration (--bgp-*). BGP runs on
// a --gateway when ASN or ConfigFile is set.
type BGPConfig struct {
	ASN        uint32
	RouterID   netip.Addr // IPv4
	ListenPort uint16     // 0: outgoing sessions only
	Peers      []bgp.Peer
	ConfigFile string // GoBGP's own format, for operators' policies
	// Announce replaces the community prefix derived from CommunityBits
	// (the network aggregate is always announced).
	Announce []netip.Prefix
	// CommunityBits overrides the communities the registry publishes in
	// the network parameters: the gateway's community prefix is the first
	// network length + CommunityBits bits of its own prefix. 0: the
	// published community its prefix falls in (none if none is published).
	CommunityBits int
}

func (b *BGPConfig) enabled() bool { return b.ASN != 0 || b.ConfigFile != "" }

func (b *BGPConfig) check(gateway bool) error {
	if !b.enabled() {
		if len(b.Peers) > 0 || len(b.Announce) > 0 {
			return errors.New("--bgp-peer and --bgp-announce need --bgp-asn (or --bgp-config)")
		}
		return nil
	}
	if !gateway {
		return errors.New("--bgp-asn needs --gateway: only a gateway speaks BGP")
	}
	if b.RouterID.IsValid() && !b.RouterID.Is4() {
		return fmt.Errorf("--bgp-router-id %s: want an IPv4 address (A.B.C.D)", b.RouterID)
	}
	if b.CommunityBits < 0 || b.CommunityBits > 31 {
		return fmt.Errorf("--bgp-community-bits %d: want 0 to 31", b.CommunityBits)
	}
	return nil
}

// borderGateway is the node's BGP side: the speaker, the announcements it
// makes while the node is healthy, and the Babel default route it exports
// while a session gives a route.
type borderGateway struct {
	n        *Node
	speaker  *bgp.Speaker
	wake     chan struct{} // the speaker saw a change
	announce []netip.Prefix
	native   *fib.Native // the learned routes in the kernel and the data plane
	synced   time.Time   // last native.Sync (run's goroutine only)

	// upstreams: native_ingress on each interface the learned routes go
	// out of, so that the internet's traffic to the overlay is
	// encapsulated in BPF.
	upMu      sync.Mutex
	upstreams map[string]*loader.IngressAttachment

	mu        sync.Mutex
	announced map[netip.Prefix]bool
	exporting bool // ::/0 from <network> into Babel
	retracted bool // stopping: announce nothing more
}

// announcements are the community prefixes and the network aggregate, the
// community ones first: --bgp-announce, else the community of
// --bgp-community-bits, else the one of the network parameters the
// gateway's prefix falls in.
func announcements(b *BGPConfig, p *netparams.Params, network, prefix netip.Prefix) []netip.Prefix {
	out := slices.Clone(b.Announce)
	switch {
	case len(out) > 0:
	case b.CommunityBits > 0:
		if bits := network.Bits() + b.CommunityBits; bits <= prefix.Bits() {
			out = append(out, netip.PrefixFrom(prefix.Addr(), bits).Masked())
		}
	default:
		if community, ok := p.CommunityPrefix(network, prefix); ok {
			out = append(out, community)
		}
	}
	return append(out, network)
}

// startBGP starts the speaker and the loop that keeps the announcements
// and the Babel default route in line with the node's health and the
// sessions, in n.run until ctx ends.
func (n *Node) startBGP(ctx context.Context) error {
	b := &n.cfg.BGP
	if !b.enabled() {
		return nil
	}
	g := &borderGateway{n: n, wake: make(chan struct{}, 1), announce: announcements(b, n.params.get(), n.id.network, n.id.prefix), announced: map[netip.Prefix]bool{},
		native:    fib.NewNative(&fib.Kernel{Protocol: fib.ProtoBGP, Priority: nativePriority}, n.dp, n.log),
		upstreams: map[string]*loader.IngressAttachment{}}
	routerID := b.RouterID
	if !routerID.IsValid() && len(n.cfg.IPs) > 0 {
		routerID = n.cfg.IPs[0]
	}
	if !routerID.IsValid() && b.ConfigFile == "" {
		return errors.New("--bgp-router-id is required (or --ip, whose first address is the default)")
	}
	if pruned, err := g.native.Prune(); err != nil {
		return err
	} else if pruned > 0 {
		n.log.Info().Int("routes", pruned).Msg("removed the learned routes a previous run left in the kernel")
	}
	var err error
	g.speaker, err = bgp.Start(bgp.Config{ASN: b.ASN, RouterID: routerID, ListenPort: b.ListenPort, Peers: b.Peers,
		ConfigFile: b.ConfigFile, Network: n.id.network, Logger: n.log,
		Changed: func() {
			select {
			case g.wake <- struct{}{}:
			default:
			}
		}})
	if err != nil {
		return err
	}
	n.gw = g
	n.run.Go(func() error { g.run(ctx); return nil })
	return nil
}

// nativePriority is the kernel metric of the learned routes: below the
// default 1024 of a static default route, which they override.
const nativePriority = 512

// nativeSyncInterval spaces the writes of learned routes into the kernel,
// so that a full table loading is written in a few passes, not one per
// UPDATE.
const nativeSyncInterval = time.Second

// run re-evaluates every quarter of a hello interval and on every change
// of the speaker, so that an unhealthy gateway withdraws within one hello
// interval; it writes the learned routes into the kernel at most every
// nativeSyncInterval.
func (g *borderGateway) run(ctx context.Context) {
	tick := time.NewTicker(max(g.n.params.Hello()/4, 250*time.Millisecond))
	defer tick.Stop()
	for {
		g.update()
		if time.Since(g.synced) >= nativeSyncInterval {
			g.syncNative()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-g.wake:
		}
	}
}

// update announces the prefixes the node serves and withdraws the others;
// exports ::/0 from <network> while a session gives a route.
func (g *borderGateway) update() {
	reached := g.reached()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.retracted {
		return
	}
	for _, p := range g.announce {
		want := reached(p)
		if want == g.announced[p] {
			continue
		}
		var err error
		if want {
			err = g.speaker.Announce(p, netip.IPv6Unspecified())
		} else {
			err = g.speaker.Withdraw(p)
		}
		if err != nil {
			g.n.log.Warn().Err(err).Msg("bgp")
			continue
		}
		g.announced[p] = want
	}
	routes := g.speaker.LearnedCount() > 0 && slices.ContainsFunc(g.speaker.Sessions(), bgp.Session.Established)
	if routes == g.exporting {
		return
	}
	def := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	if routes {
		if err := g.n.router.Export(def, g.n.id.network, 0); err != nil {
			g.n.log.Warn().Err(err).Msg("babel export of the default route")
			return
		}
		g.n.log.Info().Msg("a BGP session gives routes: exporting ::/0 from the network into Babel")
	} else {
		g.n.router.Withdraw(def, g.n.id.network)
		g.n.log.Info().Msg("no BGP session gives routes: ::/0 from the network retracted from Babel")
	}
	g.exporting = routes
}

// syncNative writes the learned routes into the kernel and the data plane,
// and attaches the upstream ingress program where they go out.
func (g *borderGateway) syncNative() {
	learned := g.speaker.Learned()
	routes := make(map[netip.Prefix]netip.Addr, len(learned))
	for _, r := range learned {
		if r.NextHop.IsValid() {
			routes[r.Prefix] = r.NextHop
		}
	}
	g.native.Sync(routes)
	g.synced = time.Now()
	g.attachUpstreams(g.native.Upstreams())
}

// attachUpstreams puts native_ingress on the interfaces in want and takes
// it off the others; a failure is logged and tried again at the next pass.
// After retract it does nothing.
func (g *borderGateway) attachUpstreams(want []string) {
	g.upMu.Lock()
	defer g.upMu.Unlock()
	if g.upstreams == nil {
		return
	}
	for _, name := range want {
		if g.upstreams[name] != nil {
			continue
		}
		a, err := g.n.dp.AttachNative(name)
		if err != nil {
			g.n.log.Warn().Err(err).Str("interface", name).Msg("upstream ingress program")
			continue
		}
		g.upstreams[name] = a
		g.n.log.Info().Str("interface", name).Str("hook", a.Hook).Msg("upstream: traffic to the overlay encapsulated in BPF")
	}
	for name, a := range g.upstreams {
		if !slices.Contains(want, name) {
			if err := a.Close(); err != nil {
				g.n.log.Warn().Err(err).Str("interface", name).Msg("upstream ingress program")
			}
			delete(g.upstreams, name)
		}
	}
}

// reached tells, for an announced prefix, whether Babel has a selected
// route to another node in it: the node is in the overlay and reaches
// the part of the network the prefix covers.
func (g *borderGateway) reached() func(netip.Prefix) bool {
	var nodes []netip.Prefix
	for _, r := range g.n.router.SelectedRoutes() {
		dst := r.Key.Prefix
		if r.Key.Source.IsValid() && r.Key.Source.Bits() > 0 || dst == g.n.id.prefix || !g.n.id.network.Contains(dst.Addr()) {
			continue
		}
		nodes = append(nodes, dst)
	}
	return func(p netip.Prefix) bool {
		return slices.ContainsFunc(nodes, func(n netip.Prefix) bool { return p.Contains(n.Addr()) && n.Bits() >= p.Bits() })
	}
}

// retract withdraws every announcement and the Babel default route, for
// good: the node is stopping (SIGTERM).
func (g *borderGateway) retract() {
	if g == nil {
		return
	}
	g.withdrawAll()
	// The sessions close with the node: their routes go from the kernel
	// and the data plane (outside g.mu: a full table takes seconds, and
	// status reads g.mu), then the upstream programs.
	g.native.Stop()
	g.attachUpstreams(nil)
	g.upMu.Lock()
	g.upstreams = nil
	g.upMu.Unlock()
}

func (g *borderGateway) withdrawAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.retracted = true
	if g.exporting {
		g.n.router.Withdraw(netip.PrefixFrom(netip.IPv6Unspecified(), 0), g.n.id.network)
		g.exporting = false
	}
	for p, on := range g.announced {
		if on {
			if err := g.speaker.Withdraw(p); err != nil {
				g.n.log.Warn().Err(err).Msg("bgp")
			}
			g.announced[p] = false
		}
	}
}

func (g *borderGateway) stop() {
	if g != nil {
		g.speaker.Stop()
	}
}

// BGPStatus is the gateway's BGP side in `re6stnet status`.
type BGPStatus struct {
	ASN       uint32          `json:"asn"`
	Sessions  []bgp.Session   `json:"sessions"`
	Announced []AnnouncedInfo `json:"announced"`
	Learned   int             `json:"learned_routes"`
	// Native counts the learned routes written into the kernel and the
	// data plane.
	Native   fib.NativeStats `json:"native_routes"`
	Rejected int             `json:"rejected_routes"`
	// Upstreams are the interfaces where the data plane encapsulates the
	// internet's traffic to the overlay (native_ingress).
	Upstreams []string `json:"upstreams"`
	// Default tells whether the gateway exports ::/0 from the network
	// into Babel (a session gives routes).
	Default bool `json:"babel_default"`
}

// AnnouncedInfo is a prefix the gateway announces, with its large
// community.
type AnnouncedInfo struct {
	Prefix    netip.Prefix `json:"prefix"`
	Community string       `json:"large_community"`
}

func (g *borderGateway) status() *BGPStatus {
	if g == nil {
		return nil
	}
	s := &BGPStatus{ASN: g.n.cfg.BGP.ASN, Sessions: g.speaker.Sessions(), Learned: g.speaker.LearnedCount(),
		Native: g.native.Stats(), Rejected: g.speaker.Rejected()}
	for p, c := range g.speaker.Announced() {
		s.Announced = append(s.Announced, AnnouncedInfo{Prefix: p, Community: c.String()})
	}
	sort.Slice(s.Announced, func(i, j int) bool { return s.Announced[i].Prefix.String() < s.Announced[j].Prefix.String() })
	g.mu.Lock()
	s.Default = g.exporting
	g.mu.Unlock()
	g.upMu.Lock()
	for name := range g.upstreams {
		s.Upstreams = append(s.Upstreams, name)
	}
	g.upMu.Unlock()
	slices.Sort(s.Upstreams)
	return s
}

var (
	descBGPSession   = prometheus.NewDesc("re6st_bgp_session_established", "1 if the BGP session with the peer is established.", []string{"peer", "asn"}, nil)
	descBGPUptime    = prometheus.NewDesc("re6st_bgp_session_uptime_seconds", "How long the BGP session has been established.", []string{"peer", "asn"}, nil)
	descBGPPrefixes  = prometheus.NewDesc("re6st_bgp_prefixes", "Prefixes of a BGP session by kind: received, accepted (after the import policy), advertised.", []string{"peer", "asn", "kind"}, nil)
	descBGPAnnounced = prometheus.NewDesc("re6st_bgp_announced", "A prefix the gateway announces, with its large community.", []string{"prefix", "community"}, nil)
	descBGPLearned   = prometheus.NewDesc("re6st_bgp_learned_routes", "Best routes learned from the BGP peers.", nil, nil)
	descBGPRejected  = prometheus.NewDesc("re6st_bgp_rejected_routes", "Routes the peers give inside the re6st network, rejected by the import policy.", nil, nil)
	descBGPNative    = prometheus.NewDesc("re6st_bgp_native_routes", "Learned routes written into the kernel and the data plane.", nil, nil)
	descBGPNativeErr = prometheus.NewDesc("re6st_bgp_native_errors_total", "Writes of learned routes the kernel or the data plane refused.", nil, nil)
	descBGPDefault   = prometheus.NewDesc("re6st_bgp_babel_default", "1 while the gateway exports ::/0 from the network into Babel.", nil, nil)
)

// collectBGP adds the BGP metrics of a gateway.
func collectBGP(s *BGPStatus, ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	bit := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for _, sess := range s.Sessions {
		peer, asn := sess.Peer.String(), fmt.Sprint(sess.ASN)
		gauge(descBGPSession, bit(sess.Established()), peer, asn)
		gauge(descBGPUptime, sess.Uptime.Seconds(), peer, asn)
		gauge(descBGPPrefixes, float64(sess.Received), peer, asn, "received")
		gauge(descBGPPrefixes, float64(sess.Accepted), peer, asn, "accepted")
		gauge(descBGPPrefixes, float64(sess.Advertised), peer, asn, "advertised")
	}
	for _, a := range s.Announced {
		gauge(descBGPAnnounced, 1, a.Prefix.String(), a.Community)
	}
	gauge(descBGPLearned, float64(s.Learned))
	gauge(descBGPRejected, float64(s.Rejected))
	gauge(descBGPNative, float64(s.Native.Installed))
	ch <- prometheus.MustNewConstMetric(descBGPNativeErr, prometheus.CounterValue, float64(s.Native.Errors))
	gauge(descBGPDefault, bit(s.Default))
}
