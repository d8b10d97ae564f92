package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/re6st-bpf/re6st-bpf/tunnels"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/re6st-bpf/re6st-bpf/tunnels/peercache"
)

// Drain multipliers (units of 1/256): a tunnel being removed first costs
// 16 times more, so that Babel moves every route it can elsewhere.
const (
	drainMultiplier  = 16 * 256
	normalMultiplier = 256
	setupTimeout     = 10 * time.Second
	reportInterval   = 10 * time.Minute
)

// timeout is re6st's "4 × hello": how long a tunnel operation may take.
func (n *Node) timeout() time.Duration { return 4 * n.hello() }

// manage runs the tunnel manager's tick (re6st: every 5 s).
func (n *Node) manage() {
	tick := time.NewTicker(n.cfg.TickInterval)
	defer tick.Stop()
	n.lastRefresh = time.Now()
	for {
		n.tick()
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// view is what one tick sees of Babel.
type view struct {
	loads    []tunnels.Load
	known    map[string]netip.Prefix // re6st prefixes Babel routes to, by bits
	direct   map[string]bool         // peers that are direct Babel neighbours
	incoming int
}

func (n *Node) look() view {
	v := view{known: map[string]netip.Prefix{}, direct: map[string]bool{}}
	routesVia := map[uint32]int{}
	for _, r := range n.router.Dump().Routes {
		p := r.Prefix
		if !r.Installed || r.Source.IsValid() || p.Bits() <= n.id.network.Bits() || !n.id.network.Overlaps(p) {
			continue
		}
		bits, err := nodeproto.BitsOf(n.id.network, p)
		if err != nil || bits == n.id.bits {
			continue
		}
		v.known[bits] = p
		if id := tunnelIfID(r.Interface); id != 0 {
			routesVia[id]++
		} else if r.Refmetric == 0 {
			v.direct[bits] = true // a LAN neighbour announcing its own prefix
		}
	}
	for _, t := range n.tunnelList() {
		v.direct[t.Bits] = true
		v.loads = append(v.loads, tunnels.Load{ID: t.ID, Routes: routesVia[t.ID],
			Neighbour: n.isNeighbour(t.Bits), Outgoing: t.Outgoing, Draining: t.draining})
		if !t.Outgoing {
			v.incoming++
		}
	}
	return v
}

// isNeighbour: the peer was named with --neighbour (as its CN or bits).
func (n *Node) isNeighbour(bits string) bool {
	return slices.Contains(n.cfg.Neighbours, bits) || slices.Contains(n.cfg.Neighbours, wire.CommonName(bits))
}

func (n *Node) tick() {
	n.refreshParams()
	n.checkRevoked()
	if n.selfRevoked.Load() {
		return
	}
	n.reportAddress()
	v := n.look()
	n.reapSilent()
	if n.clientCount == 0 {
		return
	}
	limit := tunnels.ClientLimit(n.clientCount, v.incoming)
	if time.Since(n.lastRefresh) >= n.refreshPeriod() {
		n.lastRefresh = time.Now()
		if id, ok := tunnels.Victim(v.loads, limit); ok {
			if t := n.tunnelByID(id); t != nil {
				go n.drain(t, "refresh")
			}
		}
	}
	n.mu.Lock()
	need := limit - tunnels.LiveOutgoing(v.loads) - len(n.pending)
	n.mu.Unlock()
	if need <= 0 {
		return
	}
	if len(v.known) > 0 {
		n.extendMesh(v, need)
		return
	}
	n.bootstrap(v, need)
}

func (n *Node) refreshPeriod() time.Duration {
	if r := n.params().TunnelRefresh; r > 0 {
		return time.Duration(r) * time.Second
	}
	return 300 * time.Second
}

func (n *Node) tunnelByID(id uint32) *tunnel {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.tunnels[id]
}

// extendMesh tunnels to distant peers Babel knows: with their cached
// addresses if untried, else after asking them over the overlay.
func (n *Node) extendMesh(v view, need int) {
	var distant []string
	for bits := range v.known {
		if !v.direct[bits] {
			distant = append(distant, bits)
		}
	}
	for _, bits := range tunnels.Order(distant, n.isNeighbour, n.rnd) {
		if need == 0 {
			return
		}
		if !n.claim(bits) {
			continue
		}
		need--
		prefix := v.known[bits]
		go func() {
			defer n.release(bits)
			addrs, ok := n.cache.Get(bits)
			if !ok || n.triedRecently(bits) {
				ctx, cancel := context.WithTimeout(n.ctx, setupTimeout)
				list, err := n.proto.AskAddresses(ctx, prefix)
				cancel()
				if err != nil {
					n.log.Debug().Err(err).Stringer("peer", prefix).Msg("no address from peer")
					return
				}
				addrs = nodeproto.FormatAddresses(list)
				n.cache.Put(bits, addrs)
			}
			n.makeTunnel(bits, addrs)
		}()
	}
}

// triedRecently: the cache's blacklist says we failed with these
// addresses; ask the peer for fresh ones.
func (n *Node) triedRecently(bits string) bool {
	untried, err := n.cache.Random(1, true, func(b string) bool { return b != bits })
	return err == nil && len(untried) == 0
}

// bootstrap: nobody known through Babel. Try cached peers, then one from
// the registry, then, as a last resort, cached peers that failed before.
func (n *Node) bootstrap(v view, need int) {
	skip := func(bits string) bool { return bits == n.id.bits || v.direct[bits] || n.pendingFor(bits) }
	entries, err := n.cache.Random(need, true, skip)
	if err != nil {
		n.log.Warn().Err(err).Msg("peer cache")
	}
	if len(entries) == 0 {
		ctx, cancel := context.WithTimeout(n.ctx, setupTimeout)
		bits, addrs, ok, err := n.session.BootstrapPeer(ctx)
		cancel()
		n.noteRegistry(err)
		switch {
		case err != nil:
			n.log.Debug().Err(err).Msg("no bootstrap peer from the registry")
		case ok && !skip(bits):
			n.cache.Put(bits, addrs)
			entries = append(entries, peercache.Entry{Bits: bits, Addresses: addrs})
		}
	}
	if len(entries) == 0 {
		entries, _ = n.cache.Random(need, false, skip)
	}
	for _, e := range entries {
		if n.claim(e.Bits) {
			go func() {
				defer n.release(e.Bits)
				n.makeTunnel(e.Bits, e.Addresses)
			}()
		}
	}
}

func (n *Node) claim(bits string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.pending[bits] || n.tunnelToLocked(bits) != nil || bits == n.id.bits {
		return false
	}
	n.pending[bits] = true
	return true
}

func (n *Node) release(bits string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.pending, bits)
}

func (n *Node) pendingFor(bits string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pending[bits]
}

// makeTunnel sets up an outgoing tunnel with a peer, trying its
// addresses in order (our encapsulation first).
func (n *Node) makeTunnel(bits, addresses string) {
	prefix, err := nodeproto.PrefixOf(n.id.network, bits)
	if err != nil {
		return
	}
	list, err := nodeproto.ParseAddresses(addresses)
	if err != nil {
		n.cache.Remove(bits)
		return
	}
	n.cache.MarkTried(bits)
	for _, a := range preferEncap(list, n.cfg.Encap) {
		err := n.setupWith(bits, prefix, a, list)
		if err == nil {
			n.cache.MarkWorked(bits)
			return
		}
		n.log.Debug().Err(err).Stringer("peer", prefix).Stringer("ip", a.IP).Str("proto", a.Proto).Msg("tunnel setup failed")
	}
}

// preferEncap orders addresses with our encapsulation first, keeping the
// peer's order otherwise.
func preferEncap(list []nodeproto.Address, encap loader.TunnelType) []nodeproto.Address {
	var first, rest []nodeproto.Address
	for _, a := range list {
		if !a.IP.Is4() || (a.Proto != "fou" && a.Proto != "gre") {
			continue
		}
		if a.Proto == encap.String() {
			first = append(first, a)
		} else {
			rest = append(rest, a)
		}
	}
	return append(first, rest...)
}

// fouPortOf is the peer's FOU port on ip (node-protocol messages always
// go there), the default if it does not say.
func fouPortOf(list []nodeproto.Address, ip netip.Addr) uint16 {
	for _, a := range list {
		if a.IP == ip && a.Proto == "fou" && a.Port != 0 {
			return a.Port
		}
	}
	return loader.DefaultFOUPort
}

func (n *Node) setupWith(bits string, prefix netip.Prefix, a nodeproto.Address, list []nodeproto.Address) error {
	local, err := localFor(a.IP)
	if err != nil {
		return err
	}
	via := netip.AddrPortFrom(a.IP, fouPortOf(list, a.IP))
	req := nodeproto.TunnelRequest{Encap: a.Proto, Endpoint: netip.AddrPortFrom(local, n.cfg.FOUPort)}
	if a.Proto == "gre" {
		req.Key = randomKey()
	}
	ctx, cancel := context.WithTimeout(n.ctx, setupTimeout)
	defer cancel()
	reply, err := n.proto.SetupTunnel(ctx, prefix, via, req)
	if err != nil {
		return err
	}
	if !reply.Accepted {
		return fmt.Errorf("refused: %s", reply.Reason)
	}
	nat := reply.Observed.IsValid() && reply.Observed != req.Endpoint
	t := &tunnel{Peer: prefix, Bits: bits, Outgoing: true, lt: loader.Tunnel{
		Local: local, Remote: a.IP, Port: via.Port(), FixedSourcePort: nat && a.Proto == "fou"}}
	t.lt.Type, _ = loader.ParseTunnelType(a.Proto)
	if a.Proto == "gre" {
		t.lt.HasKey, t.lt.Key = true, reply.Key
	}
	if cert := n.proto.PeerCertificate(prefix); cert != nil {
		t.Serial, _ = ca.SerialUint64(cert)
	}
	if err := n.openTunnel(t); err != nil {
		if !errors.Is(err, errDuplicate) {
			ctx, cancel := context.WithTimeout(n.ctx, setupTimeout)
			n.proto.KillTunnel(ctx, prefix)
			cancel()
		}
		return err
	}
	n.lastRefresh = time.Now()
	n.proto.Gossip(prefix)
	return nil
}

func randomKey() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:]) | 1
}

// drain removes a tunnel without black-holing traffic: raise its cost so
// that Babel moves routes elsewhere, wait until none uses it, have the
// peer do the same, then remove it. It gives up after 2 × timeout.
func (n *Node) drain(t *tunnel, why string) {
	n.mu.Lock()
	if t.draining {
		n.mu.Unlock()
		return
	}
	t.draining = true
	n.mu.Unlock()
	ifname := t.ifname()
	n.router.SetCostMultiplier(ifname, netip.Addr{}, drainMultiplier)
	deadline := time.Now().Add(2 * n.timeout())
	for n.routesVia(ifname) > 0 {
		if time.Now().After(deadline) || n.ctx.Err() != nil {
			n.log.Info().Uint32("tunnel", t.ID).Msg("drain aborted: routes still use the tunnel")
			n.router.SetCostMultiplier(ifname, netip.Addr{}, normalMultiplier)
			n.mu.Lock()
			t.draining = false
			n.mu.Unlock()
			return
		}
		time.Sleep(time.Second)
	}
	for time.Now().Before(deadline) && n.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(n.ctx, setupTimeout)
		err := n.proto.KillTunnel(ctx, t.Peer)
		cancel()
		if err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	n.closeTunnel(t, why)
}

// routesVia counts the prefixes Babel routes through a tunnel interface.
func (n *Node) routesVia(ifname string) int {
	c := 0
	for _, r := range n.router.SelectedRoutes() {
		if r.Interface == ifname {
			c++
		}
	}
	return c
}

// checkRevoked tears down, at once, tunnels to revoked certificates, and
// every tunnel when our own certificate is revoked.
func (n *Node) checkRevoked() {
	if serial, err := ca.SerialUint64(n.id.Cert); err == nil && n.revoked(serial) && !n.selfRevoked.Swap(true) {
		n.log.Error().Uint64("serial", serial).Msg("our certificate is revoked: tearing every tunnel down (renew it with re6st-conf)")
	}
	for _, t := range n.tunnelList() {
		if n.selfRevoked.Load() || t.Serial != 0 && n.revoked(t.Serial) {
			n.proto.Forget(t.Peer)
			n.closeTunnel(t, "certificate revoked")
		}
	}
}

// reapSilent removes tunnels over which Babel has had no usable link (a
// finite cost: Hellos heard and our Hellos acknowledged) for a timeout,
// re6st's 4 × hello ping-exit: the peer died, or tore its side down. A
// tunnel made, or taken over after a restart, gets the timeout to come up.
func (n *Node) reapSilent() {
	usable := map[string]bool{}
	for _, nb := range n.router.Dump().Neighbours {
		if nb.Cost < babel.Infinity {
			usable[nb.Interface] = true
		}
	}
	now := time.Now()
	for _, t := range n.tunnelList() {
		n.mu.Lock()
		if usable[t.ifname()] {
			t.usable = now
		}
		since := later(later(t.Created, n.started), t.usable)
		n.mu.Unlock()
		if now.Sub(since) > n.timeout() && !t.draining {
			n.closeTunnel(t, "peer silent")
		}
	}
}

// refreshParams asks the registry for the network parameters every 5
// hello intervals (at least 20 s); a newer version is adopted and gossiped,
// so that a revocation reaches every node within that time.
func (n *Node) refreshParams() {
	if time.Since(n.paramsChecked) < max(5*n.hello(), 20*time.Second) {
		return
	}
	n.paramsChecked = time.Now()
	p, err := n.fetchParams(n.ctx)
	if err != nil {
		n.log.Debug().Err(err).Msg("registry unreachable")
		return
	}
	if p.Version > n.params().Version {
		n.adoptParams(p)
	}
}

func (n *Node) revoked(serial uint64) bool {
	return slices.Contains(n.params().CRL, serial)
}

// reportAddress tells the registry our addresses (for bootstrap) every
// reportInterval.
func (n *Node) reportAddress() {
	r := &n.registry
	r.mu.Lock()
	due := time.Since(r.reported) >= reportInterval || !r.ok
	r.mu.Unlock()
	if !due || len(n.cfg.IPs) == 0 && n.behindNAT() {
		return
	}
	addrs := n.advertised()
	if len(addrs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, setupTimeout)
	err := n.session.ReportAddress(ctx, nodeproto.FormatAddresses(addrs))
	cancel()
	n.noteRegistry(err)
	if err == nil {
		r.mu.Lock()
		r.reported = time.Now()
		r.mu.Unlock()
	}
}

// behindNAT: a peer saw our tunnel traffic come from another address.
func (n *Node) behindNAT() bool {
	for _, t := range n.tunnelList() {
		if t.lt.FixedSourcePort {
			return true
		}
	}
	return false
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
