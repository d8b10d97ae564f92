package bgp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	"github.com/osrg/gobgp/v3/pkg/config"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"
	"github.com/rs/zerolog"
)

// Config is a speaker's configuration.
type Config struct {
	ASN      uint32
	RouterID netip.Addr // IPv4; required
	// ListenPort is the port to accept sessions on; 0: outgoing sessions
	// only.
	ListenPort uint16
	Peers      []Peer
	// ConfigFile is a GoBGP configuration file (TOML, YAML or JSON by its
	// extension) applied before Peers: its global section, when it has an
	// AS, replaces ASN, RouterID and ListenPort.
	ConfigFile string
	// Network is the re6st network: the import policy rejects every route
	// inside it.
	Network netip.Prefix
	// ConnectRetry is the wait between attempts to open a session; 0: 5 s.
	ConnectRetry time.Duration
	// Changed, if set, is called (from the speaker's goroutine) after the
	// learned routes or a session's state changed.
	Changed func()
	Logger  zerolog.Logger
}

// Route is the best route a peer gave for a prefix.
type Route struct {
	Prefix  netip.Prefix
	NextHop netip.Addr
	Peer    netip.Addr
}

// Speaker is an embedded GoBGP server.
type Speaker struct {
	cfg    Config
	log    zerolog.Logger
	srv    *server.BgpServer
	stopCh chan struct{} // closed by Stop: ends watch
	once   sync.Once
	wg     sync.WaitGroup
	cancel context.CancelFunc // ends GoBGP's watch goroutines

	events chan func() // from GoBGP's callbacks to watch

	mu        sync.Mutex
	learned   map[netip.Prefix]Route
	announced map[netip.Prefix]LargeCommunity
	rejected  map[netip.Addr]map[netip.Prefix]bool // by peer, the routes it gives that the import policy rejects
	up        map[netip.Addr]bool                  // sessions established
}

const importPolicy = "re6st-import"

// Start starts the GoBGP server, applies the configuration file, opens the
// sessions and installs the import policy.
func Start(cfg Config) (*Speaker, error) {
	if cfg.ConnectRetry == 0 {
		cfg.ConnectRetry = 5 * time.Second
	}
	s := &Speaker{cfg: cfg, log: cfg.Logger.With().Str("part", "bgp").Logger(),
		stopCh: make(chan struct{}), events: make(chan func(), 64),
		learned: map[netip.Prefix]Route{}, announced: map[netip.Prefix]LargeCommunity{}, rejected: map[netip.Addr]map[netip.Prefix]bool{}, up: map[netip.Addr]bool{}}
	s.srv = server.NewBgpServer(server.LoggerOption(&zlog{log: s.log}))
	// GoBGP v3's Serve loop has no exit: StopBgp closes the sessions and
	// listeners, and the loop stays parked on its channels (Cilium embeds it
	// the same way). It is the library's goroutine, not one we can wait for.
	go s.srv.Serve()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := s.configure(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	s.wg.Add(1)
	go s.watch()
	return s, nil
}

func (s *Speaker) configure(ctx context.Context) error {
	cfg := &s.cfg
	if cfg.ConfigFile != "" {
		if err := s.applyConfigFile(ctx); err != nil {
			return err
		}
	} else {
		if err := s.startGlobal(ctx); err != nil {
			return err
		}
	}
	if err := s.installImportPolicy(ctx); err != nil {
		return fmt.Errorf("bgp import policy: %w", err)
	}
	// Sessions and best paths. The routes the import policy rejects are
	// read from each peer's Adj-RIB-In once its count settles
	// (scanRejected): a watch of every pre-policy update would cost a
	// conversion of every route of a full table.
	if err := s.srv.WatchEvent(ctx, &api.WatchEventRequest{
		Peer: &api.WatchEventRequest_Peer{},
		Table: &api.WatchEventRequest_Table{Filters: []*api.WatchEventRequest_Table_Filter{
			{Type: api.WatchEventRequest_Table_Filter_BEST, Init: true},
		}},
	}, s.onEvent); err != nil {
		return fmt.Errorf("bgp watch: %w", err)
	}
	for _, p := range cfg.Peers {
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: s.apiPeer(p)}); err != nil {
			return fmt.Errorf("bgp peer %s: %w", p.Address, err)
		}
	}
	return nil
}

func (s *Speaker) startGlobal(ctx context.Context) error {
	cfg := &s.cfg
	if cfg.ASN == 0 {
		return errors.New("bgp: an AS number is required")
	}
	if !cfg.RouterID.Is4() {
		return fmt.Errorf("bgp: router id %q: want an IPv4 address (A.B.C.D)", cfg.RouterID)
	}
	port := int32(cfg.ListenPort)
	if port == 0 {
		port = -1 // GoBGP: no listener
	}
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn: cfg.ASN, RouterId: cfg.RouterID.String(), ListenPort: port,
	}}); err != nil {
		return fmt.Errorf("bgp: %w", err)
	}
	return nil
}

// applyConfigFile reads the operator's GoBGP configuration; flags fill its
// global section when it has none.
func (s *Speaker) applyConfigFile(ctx context.Context) error {
	cfg := &s.cfg
	kind := strings.TrimPrefix(filepath.Ext(cfg.ConfigFile), ".")
	if kind == "yml" {
		kind = "yaml"
	}
	set, err := config.ReadConfigFile(cfg.ConfigFile, kind)
	if err != nil {
		return fmt.Errorf("--bgp-config %s: %w", cfg.ConfigFile, err)
	}
	g := &set.Global.Config
	if g.As == 0 {
		if cfg.ASN == 0 || !cfg.RouterID.Is4() {
			return fmt.Errorf("--bgp-config %s: no global as/router-id, and no --bgp-asn/--bgp-router-id", cfg.ConfigFile)
		}
		g.As, g.RouterId = cfg.ASN, cfg.RouterID.String()
		g.Port = int32(cfg.ListenPort)
		if g.Port == 0 {
			g.Port = -1
		}
	}
	cfg.ASN = g.As
	if cfg.RouterID, err = netip.ParseAddr(g.RouterId); err != nil {
		return fmt.Errorf("--bgp-config %s: router-id: %w", cfg.ConfigFile, err)
	}
	if _, err := config.InitialConfig(ctx, s.srv, set, false); err != nil {
		return fmt.Errorf("--bgp-config %s: %w", cfg.ConfigFile, err)
	}
	return nil
}

// apiPeer is p as GoBGP's API has it: IPv6 unicast on IPv4 and IPv6
// sessions alike.
func (s *Speaker) apiPeer(p Peer) *api.Peer {
	peer := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.ASN, AuthPassword: p.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry: uint64(s.cfg.ConnectRetry / time.Second),
		}},
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{
			Family: ipv6Unicast, Enabled: true,
		}}},
	}
	if p.Multihop != 0 {
		peer.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: uint32(p.Multihop)}
	}
	if p.Port != 0 {
		peer.Transport = &api.Transport{RemotePort: uint32(p.Port)}
	}
	return peer
}

// installImportPolicy puts, ahead of any import policy of the
// configuration file, a policy that rejects every route inside the network.
func (s *Speaker) installImportPolicy(ctx context.Context) error {
	if !s.cfg.Network.IsValid() {
		return errors.New("the re6st network prefix is required")
	}
	const set = "re6st-network"
	n := s.cfg.Network.Masked()
	if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
		DefinedType: api.DefinedType_PREFIX, Name: set,
		Prefixes: []*api.Prefix{{IpPrefix: n.String(), MaskLengthMin: uint32(n.Bits()), MaskLengthMax: 128}},
	}}); err != nil {
		return err
	}
	if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: importPolicy,
		Statements: []*api.Statement{{
			// Our own announcements pass through the global import
			// policy too.
			Name:       "accept-local",
			Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
		}, {
			Name:       "reject-inside-network",
			Conditions: &api.Conditions{PrefixSet: &api.MatchSet{Name: set, Type: api.MatchSet_ANY}},
			Actions:    &api.Actions{RouteAction: api.RouteAction_REJECT},
		}},
	}}); err != nil {
		return err
	}
	policies := []*api.Policy{{Name: importPolicy}}
	def := api.RouteAction_ACCEPT
	if err := s.srv.ListPolicyAssignment(ctx, &api.ListPolicyAssignmentRequest{Name: "global", Direction: api.PolicyDirection_IMPORT},
		func(a *api.PolicyAssignment) {
			for _, p := range a.Policies {
				policies = append(policies, &api.Policy{Name: p.Name})
			}
			if a.DefaultAction != api.RouteAction_NONE {
				def = a.DefaultAction
			}
		}); err != nil {
		return err
	}
	return s.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_IMPORT, Policies: policies, DefaultAction: def,
	}})
}

// Stop closes every session and stops the server.
func (s *Speaker) Stop() { s.once.Do(s.stop) }

func (s *Speaker) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.closeSessions(ctx)
	if err := s.srv.StopBgp(ctx, &api.StopBgpRequest{}); err != nil {
		s.log.Debug().Err(err).Msg("stop")
	}
	s.cancel()
	close(s.stopCh)
	s.srv.Stop()
	s.wg.Wait()
}

// closeSessions disables every peer (a Cease to each) and waits, until
// ctx ends, until no session is established. StopBgp must come after: it
// clears the global configuration that an established session's receiving
// goroutine reads for each UPDATE (a data race in GoBGP 3.37, fsm.go's
// recvMessageWithError against StopBgp, seen under -race), and that
// goroutine has ended once its session has left ESTABLISHED.
func (s *Speaker) closeSessions(ctx context.Context) {
	established := func() (addrs []string) {
		err := s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
			if p.State.GetSessionState() == api.PeerState_ESTABLISHED {
				addrs = append(addrs, p.Conf.GetNeighborAddress())
			}
		})
		if err != nil {
			s.log.Debug().Err(err).Msg("list peers")
			return nil
		}
		return addrs
	}
	up := established()
	for _, a := range up {
		if err := s.srv.DisablePeer(ctx, &api.DisablePeerRequest{Address: a, Communication: "re6stnet stopping"}); err != nil {
			s.log.Debug().Err(err).Str("peer", a).Msg("disable")
		}
	}
	for len(up) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Millisecond):
		}
		up = established()
	}
}

// onEvent runs on GoBGP's watch goroutine: it hands the event to ours.
func (s *Speaker) onEvent(r *api.WatchEventResponse) {
	var f func()
	switch e := r.Event.(type) {
	case *api.WatchEventResponse_Peer:
		f = func() { s.peerEvent(e.Peer) }
	case *api.WatchEventResponse_Table:
		f = func() { s.bestEvent(e.Table.Paths) }
	default:
		return
	}
	select {
	case s.events <- f:
	case <-s.stopCh:
	}
}

// watch applies the events in order, then tells Changed; every
// rejectedScan it looks for rejected routes.
func (s *Speaker) watch() {
	defer s.wg.Done()
	tick := time.NewTicker(rejectedScan)
	defer tick.Stop()
	scans := map[netip.Addr]*scanState{}
	for {
		select {
		case <-tick.C:
			s.scanRejected(scans)
		case f := <-s.events:
			f()
			// Apply what is queued before telling, so that a full table
			// gives a few notifications, not one per UPDATE.
			for len(s.events) > 0 {
				(<-s.events)()
			}
			if s.cfg.Changed != nil {
				s.cfg.Changed()
			}
		case <-s.stopCh:
			return
		}
	}
}

func (s *Speaker) peerEvent(e *api.WatchEventResponse_PeerEvent) {
	if e.Type != api.WatchEventResponse_PeerEvent_STATE {
		return
	}
	addr, err := netip.ParseAddr(e.Peer.State.NeighborAddress)
	if err != nil {
		return
	}
	addr = addr.Unmap()
	up := e.Peer.State.SessionState == api.PeerState_ESTABLISHED
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.up[addr] != up {
		s.log.Info().Stringer("peer", addr).Uint32("asn", e.Peer.State.PeerAsn).
			Str("state", strings.ToLower(e.Peer.State.SessionState.String())).Msg("session")
	}
	s.up[addr] = up
	if !up {
		delete(s.rejected, addr)
		for p, r := range s.learned {
			if r.Peer == addr {
				delete(s.learned, p)
			}
		}
	}
}

// scanState is what scanRejected knows of a peer's Adj-RIB-In.
type scanState struct {
	scanned, seen uint64 // its size at the last scan, at the last tick
	at            time.Time
}

// scanRejected reads, in an established session's Adj-RIB-In, the routes
// inside the network (which the import policy rejects), logs the new ones
// and keeps them for the counts. GoBGP's lookup of the routes under a
// prefix rebuilds a tree of the whole table, so a peer's table is read
// only when its size changed and then held still for a tick (or changed
// for rejectedSettle): once after a full table loaded, not during it.
func (s *Speaker) scanRejected(scans map[netip.Addr]*scanState) {
	now := time.Now()
	for peer, received := range s.received() {
		st := scans[peer]
		if st == nil {
			st = &scanState{scanned: ^uint64(0), seen: ^uint64(0)}
			scans[peer] = st
		}
		due := received != st.scanned && (received == st.seen || now.Sub(st.at) >= rejectedSettle)
		st.seen = received
		if !due {
			continue
		}
		found := map[netip.Prefix]bool{}
		err := s.srv.ListPath(context.Background(), &api.ListPathRequest{
			TableType: api.TableType_ADJ_IN, Name: peer.String(), Family: ipv6Unicast,
			Prefixes: []*api.TableLookupPrefix{{Prefix: s.cfg.Network.Masked().String(), Type: api.TableLookupPrefix_LONGER}},
		}, func(d *api.Destination) {
			if p, err := netip.ParsePrefix(d.Prefix); err == nil && s.inside(p) {
				found[p] = true
			}
		})
		if err != nil {
			s.log.Debug().Err(err).Stringer("peer", peer).Msg("adj-rib-in")
			continue
		}
		st.scanned, st.at = received, now
		s.mu.Lock()
		for p := range found {
			if !s.rejected[peer][p] {
				s.log.Warn().Stringer("peer", peer).Stringer("prefix", p).Stringer("network", s.cfg.Network).
					Msg("route rejected: inside the re6st network (import policy)")
			}
		}
		if s.up[peer] {
			s.rejected[peer] = found
		}
		s.mu.Unlock()
	}
}

// received is the size of each established session's Adj-RIB-In.
func (s *Speaker) received() map[netip.Addr]uint64 {
	out := map[netip.Addr]uint64{}
	err := s.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.GetState().GetSessionState() != api.PeerState_ESTABLISHED {
			return
		}
		addr, err := netip.ParseAddr(p.GetConf().GetNeighborAddress())
		if err != nil {
			return
		}
		var n uint64
		for _, a := range p.GetAfiSafis() {
			n += a.GetState().GetReceived()
		}
		out[addr.Unmap()] = n
	})
	if err != nil {
		s.log.Debug().Err(err).Msg("list peers")
	}
	return out
}

// rejectedScan is the period of scanRejected; rejectedSettle bounds how
// long a table that keeps changing goes unread.
const (
	rejectedScan   = time.Second
	rejectedSettle = 30 * time.Second
)

var ipv6Unicast = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}

// bestEvent applies best-path changes to the learned routes.
func (s *Speaker) bestEvent(paths []*api.Path) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range paths {
		r, ok := s.route(p)
		if !ok || s.inside(r.Prefix) {
			continue
		}
		if p.IsWithdraw || !r.Peer.IsValid() {
			// Withdrawn, or our own announcement became the best.
			if old, ok := s.learned[r.Prefix]; ok && (old.Peer == r.Peer || !r.Peer.IsValid()) {
				delete(s.learned, r.Prefix)
			}
			continue
		}
		s.learned[r.Prefix] = r
	}
}

// inside tells whether prefix is the network or a more specific of it.
func (s *Speaker) inside(prefix netip.Prefix) bool {
	return prefix.Bits() >= s.cfg.Network.Bits() && s.cfg.Network.Contains(prefix.Addr())
}

// route reads an IPv6 unicast path; Peer is invalid for a local path.
// Only the NLRI and MP_REACH_NLRI are decoded (a full table passes here
// route by route).
func (s *Speaker) route(p *api.Path) (Route, bool) {
	if p.Family == nil || p.Family.Afi != api.Family_AFI_IP6 || p.Family.Safi != api.Family_SAFI_UNICAST || p.Nlri == nil {
		return Route{}, false
	}
	var nlri api.IPAddressPrefix
	if err := p.Nlri.UnmarshalTo(&nlri); err != nil {
		return Route{}, false
	}
	addr, err := netip.ParseAddr(nlri.Prefix)
	if err != nil || !addr.Is6() {
		return Route{}, false
	}
	r := Route{Prefix: netip.PrefixFrom(addr, int(nlri.PrefixLen)).Masked()}
	if peer, err := netip.ParseAddr(p.NeighborIp); err == nil {
		r.Peer = peer.Unmap()
	}
	if p.IsWithdraw {
		return r, true
	}
	for _, a := range p.Pattrs {
		var mp api.MpReachNLRIAttribute
		if !a.MessageIs(&mp) || a.UnmarshalTo(&mp) != nil {
			continue
		}
		// The global next hop, else the link-local one (RFC 2545).
		for _, h := range mp.NextHops {
			if nh, err := netip.ParseAddr(h); err == nil && !nh.IsUnspecified() {
				r.NextHop = nh.Unmap()
				break
			}
		}
	}
	return r, true
}

// Announce originates prefix with next hop nexthop, tagged with the
// network's large community for prefix. Announcing again replaces it.
func (s *Speaker) Announce(prefix netip.Prefix, nexthop netip.Addr) error {
	tag := Tag(s.cfg.ASN, s.cfg.Network, prefix)
	path, err := s.path(prefix, nexthop, tag, false)
	if err != nil {
		return err
	}
	if _, err := s.srv.AddPath(context.Background(), &api.AddPathRequest{Path: path}); err != nil {
		return fmt.Errorf("bgp announce %s: %w", prefix, err)
	}
	s.mu.Lock()
	_, had := s.announced[prefix]
	s.announced[prefix] = tag
	s.mu.Unlock()
	if !had {
		s.log.Info().Stringer("prefix", prefix).Stringer("community", tag).Msg("announced")
	}
	return nil
}

// Withdraw stops announcing prefix.
func (s *Speaker) Withdraw(prefix netip.Prefix) error {
	s.mu.Lock()
	tag, had := s.announced[prefix]
	delete(s.announced, prefix)
	s.mu.Unlock()
	if !had {
		return nil
	}
	path, err := s.path(prefix, netip.IPv6Unspecified(), tag, true)
	if err != nil {
		return err
	}
	if err := s.srv.DeletePath(context.Background(), &api.DeletePathRequest{Family: path.Family, Path: path}); err != nil {
		return fmt.Errorf("bgp withdraw %s: %w", prefix, err)
	}
	s.log.Info().Stringer("prefix", prefix).Msg("withdrawn")
	return nil
}

func (s *Speaker) path(prefix netip.Prefix, nexthop netip.Addr, tag LargeCommunity, withdraw bool) (*api.Path, error) {
	if !prefix.Addr().Is6() || prefix.Addr().Is4In6() {
		return nil, fmt.Errorf("bgp: %s: only IPv6 prefixes", prefix)
	}
	nlri := bgp.NewIPv6AddrPrefix(uint8(prefix.Bits()), prefix.Masked().Addr().String())
	attrs := []bgp.PathAttributeInterface{
		bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP),
		bgp.NewPathAttributeMpReachNLRI(nexthop.String(), []bgp.AddrPrefixInterface{nlri}),
		bgp.NewPathAttributeLargeCommunities([]*bgp.LargeCommunity{bgp.NewLargeCommunity(tag.Global, tag.Data1, tag.Data2)}),
	}
	return apiutil.NewPath(nlri, withdraw, attrs, time.Now())
}

// Announced is what the speaker announces, with each prefix's tag.
func (s *Speaker) Announced() map[netip.Prefix]LargeCommunity {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[netip.Prefix]LargeCommunity, len(s.announced))
	for p, t := range s.announced {
		out[p] = t
	}
	return out
}

// Learned is the best route of every prefix the peers give (the import
// policy applied).
func (s *Speaker) Learned() []Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Route, 0, len(s.learned))
	for _, r := range s.learned {
		out = append(out, r)
	}
	return out
}

// LearnedCount is len(Learned()) without the copy.
func (s *Speaker) LearnedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.learned)
}

// Rejected counts the routes the peers give that the import policy
// rejects.
func (s *Speaker) Rejected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.rejected {
		n += len(r)
	}
	return n
}

func (s *Speaker) rejectedBy(peer netip.Addr) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.rejected[peer]))
}
