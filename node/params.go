package node

import (
	"context"
	"crypto/rsa"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/secfile"
	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/registry/server"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// paramsConfigName is where versions before the parameters file of their
// own kept the parameters in the peer cache.
const paramsConfigName = "network-parameters"

// netParams are the network parameters in force, read at each use (they
// implement manager.Params), with the command line's overrides.
type netParams struct {
	cfg         *Config
	serial      atomic.Uint64 // our certificate's (renewal changes it)
	p           atomic.Pointer[netparams.Params]
	selfRevoked atomic.Bool
	newer       chan struct{} // a peer gossiped a newer version
}

func newNetParams(cfg *Config, p *netparams.Params, id *identity) *netParams {
	np := &netParams{cfg: cfg, newer: make(chan struct{}, 1)}
	serial, _ := ca.SerialUint64(id.Cert)
	np.serial.Store(serial)
	np.p.Store(p)
	return np
}

func (np *netParams) get() *netparams.Params { return np.p.Load() }

// Hello is the Babel hello interval of the network.
func (np *netParams) Hello() time.Duration {
	if h := np.get().Hello; h > 0 {
		return time.Duration(h) * time.Second
	}
	return 15 * time.Second
}

// RefreshPeriod is how often the least useful tunnel is replaced.
func (np *netParams) RefreshPeriod() time.Duration {
	if r := np.get().TunnelRefresh; r > 0 {
		return time.Duration(r) * time.Second
	}
	return 300 * time.Second
}

// Revoked: the serial is in the CRL.
func (np *netParams) Revoked(serial uint64) bool { return slices.Contains(np.get().CRL, serial) }

// SelfRevoked: our own certificate is in the CRL.
func (np *netParams) SelfRevoked() bool { return np.selfRevoked.Load() }

// Counts are the outgoing tunnels to keep and the incoming ones to accept:
// the command line's, else the network's current ones.
func (np *netParams) Counts() (clientCount, maxClients int) {
	p := np.get()
	clientCount, maxClients = p.ClientCount, p.MaxClients
	if np.cfg.ClientCount >= 0 {
		clientCount = np.cfg.ClientCount
	}
	if np.cfg.MaxClients >= 0 {
		maxClients = np.cfg.MaxClients
	}
	return clientCount, maxClients
}

func (np *netParams) clientCount() int { c, _ := np.Counts(); return c }
func (np *netParams) maxClients() int  { _, m := np.Counts(); return m }

// cachedParams are the signed parameter documents kept from earlier runs,
// best first: the file of their own, which a corrupt peer cache does not
// take away, then the peer cache, where older versions kept them.
func (n *Node) cachedParams() [][]byte {
	var docs [][]byte
	if doc, err := os.ReadFile(filepath.Join(n.cfg.StateDir, paramsFile)); err == nil {
		docs = append(docs, doc)
	}
	if doc, ok, err := n.cache.Config(paramsConfigName); err == nil && ok {
		docs = append(docs, doc)
	}
	return docs
}

// loadParams returns the network parameters: a kept document if it still
// verifies, else the registry's, retried with a back-off from 1 to
// 60 s until ctx ends (re6st's start-up loop).
func (n *Node) loadParams(ctx context.Context) (*netparams.Params, error) {
	for _, doc := range n.cachedParams() {
		p, err := netparams.Decode(doc, n.id.CA.PublicKey.(*rsa.PublicKey), n.id.Key)
		if err == nil && p.Protocol >= netparams.Protocol {
			n.log.Info().Uint64("version", p.Version).Msg("network parameters from the cache")
			return p, nil
		}
		n.log.Warn().Err(err).Msg("cached network parameters unusable")
	}
	for delay := time.Second; ; delay = min(2*delay, time.Minute) {
		p, err := n.fetchParams(ctx)
		if err == nil {
			return p, nil
		}
		n.log.Warn().Err(err).Dur("retry_in", delay).Msg("cannot get the network parameters")
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// fetchParams asks the registry and caches the document.
func (n *Node) fetchParams(ctx context.Context) (*netparams.Params, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	doc, p, err := n.session.NetworkConfigDocument(ctx)
	n.registry.note(err)
	if err != nil {
		return nil, err
	}
	if p.MinProtocol > netparams.Protocol {
		return nil, fmt.Errorf("the network requires protocol %d, this node speaks %d", p.MinProtocol, netparams.Protocol)
	}
	if err := writeFileAtomic(filepath.Join(n.cfg.StateDir, paramsFile), doc, secfile.FileMode); err != nil {
		n.log.Warn().Err(err).Msg("cannot keep the network parameters")
	}
	return p, nil
}

// followParams keeps the parameters current until ctx ends: it asks the
// registry every 5 hello intervals (at least 20 s), so that a revocation
// reaches every node within that time, and a second after a peer gossiped
// a newer version, as re6st does. It also reports our addresses.
func (n *Node) followParams(ctx context.Context) error {
	if n.checkSelf() {
		return n.revoked("our serial is in the network's CRL")
	}
	refusals := 0
	tick := time.NewTicker(n.cfg.TickInterval)
	defer tick.Stop()
	checked := time.Now()
	var refetch <-chan time.Time
	for {
		n.learnCountry(ctx)
		n.reportAddress(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if time.Since(checked) < max(5*n.params.Hello(), 20*time.Second) {
				continue
			}
		case <-n.params.newer:
			if refetch == nil {
				refetch = time.After(time.Second)
			}
			continue
		case <-refetch:
			refetch = nil
		}
		checked = time.Now()
		p, err := n.fetchParams(ctx)
		if err != nil {
			n.log.Debug().Err(err).Msg("registry unreachable")
			if refusals++; !registryRefuses(err) {
				refusals = 0
			} else if refusals >= refusalsToRevoke {
				return n.revoked("the registry no longer knows our certificate: " + err.Error())
			}
			continue
		}
		refusals = 0
		if p.Version > n.params.get().Version {
			n.adoptParams(p)
			if n.params.SelfRevoked() {
				return n.revoked("our serial is in the network's CRL")
			}
		}
	}
}

// newerVersion handles a version a peer gossiped (its CA signature is
// already checked): if it is newer than ours, followParams refetches.
func (np *netParams) newerVersion(signed []byte) {
	v, err := wire.VersionNumber(signed)
	if err != nil || v <= np.get().Version {
		return
	}
	select {
	case np.newer <- struct{}{}:
	default:
	}
}

// adoptParams switches to newer parameters: the CRL and the counts apply
// at once (the tunnel manager tears down revoked peers' tunnels; the
// OpenVPN servers refuse revoked clients and restart when their arguments
// change: ovpnBackend.newParams), the
// Babel hello interval and keys in place (applyLive), the traffic classes
// and the IPv4 payload by setting up and withdrawing what changed
// (applyPayload), without the restart re6st needs. The version is passed on.
func (n *Node) adoptParams(p *netparams.Params) {
	old := n.params.get()
	n.params.p.Store(p)
	n.log.Info().Uint64("from", old.Version).Uint64("to", p.Version).Msg("new network parameters")
	if err := checkEncryption(p, n.cfg.offeredTypes()); err != nil {
		n.log.Error().Err(err).Msg("the tunnels carry the network's traffic in clear: stop this node")
	}
	n.applyLive(old, p)
	n.dropClearTunnels(old, p)
	n.checkSelf()
	n.applyPayload(old, p)
	n.tunnels.CheckRevoked()
	n.backend.ovpn.newParams()
	for _, t := range n.tunnels.Tunnels() {
		n.proto.Gossip(t.Peer)
	}
}

// checkSelf notes that our own certificate is revoked: the tunnel manager
// then tears every tunnel down, and followParams stops the node.
func (n *Node) checkSelf() bool {
	if n.params.Revoked(n.params.serial.Load()) {
		n.params.selfRevoked.Store(true)
	}
	return n.params.SelfRevoked()
}

// registryState is what the last registry calls said.
type registryState struct {
	mu       sync.Mutex
	ok       bool
	lastOK   time.Time
	lastErr  string
	reported time.Time
	// reportedIn is the registry session's handshake count at the last
	// report: a new handshake means the registry restarted and lost it.
	reportedIn uint64
}

func (r *registryState) note(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ok = err == nil
	if err == nil {
		r.lastOK, r.lastErr = time.Now(), ""
	} else {
		r.lastErr = err.Error()
	}
}

// reportInterval is how often the node tells the registry its addresses.
const reportInterval = 10 * time.Minute

// reportAddress tells the registry our addresses (for bootstrap) every
// reportInterval, after the registry was unreachable, and after it
// restarted (it keeps reports in memory only; our session's new handshake
// tells).
func (n *Node) reportAddress(ctx context.Context) {
	r := &n.registry
	handshakes := n.session.Handshakes()
	r.mu.Lock()
	due := time.Since(r.reported) >= reportInterval || !r.ok || handshakes != r.reportedIn
	r.mu.Unlock()
	if !due || n.params.SelfRevoked() || len(n.cfg.IPs) == 0 && n.behindNAT() {
		return
	}
	addrs := reportable(n.advertised())
	if len(addrs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := n.session.ReportAddress(ctx, nodeproto.FormatAddresses(addrs))
	cancel()
	n.registry.note(err)
	if err == nil {
		r.mu.Lock()
		r.reported, r.reportedIn = time.Now(), n.session.Handshakes()
		r.mu.Unlock()
	}
}

// reportable is the head of addrs that the registry takes: at most
// server.MaxAddressesPerNode items in server.MaxAddressLength bytes (it
// refuses a longer list whole). The last items go first: OpenVPN's IPv6
// ones, after the IPv4 items. Peers asking us get the whole list.
func reportable(addrs []nodeproto.Address) []nodeproto.Address {
	addrs = addrs[:min(len(addrs), server.MaxAddressesPerNode)]
	for len(addrs) > 0 && len(nodeproto.FormatAddresses(addrs)) > server.MaxAddressLength {
		addrs = addrs[:len(addrs)-1]
	}
	return addrs
}

// behindNAT: a peer saw our tunnel traffic come from another address.
func (n *Node) behindNAT() bool {
	for _, t := range n.tunnels.Tunnels() {
		if t.Endpoint.NAT {
			return true
		}
	}
	return false
}

// bootstrapRegistry gives the tunnel manager a bootstrap peer.
type bootstrapRegistry Node

func (b *bootstrapRegistry) BootstrapPeer(ctx context.Context) (string, string, bool, error) {
	bits, addrs, ok, err := b.session.BootstrapPeer(ctx)
	b.registry.note(err)
	return bits, addrs, ok, err
}
