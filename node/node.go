package node

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/registry/client"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/re6st-bpf/re6st-bpf/routing/fib"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/re6st-bpf/re6st-bpf/tunnels/peercache"
	"github.com/rs/zerolog"
)

// Node is a running re6stnet daemon.
type Node struct {
	cfg     *Config
	log     zerolog.Logger
	ctx     context.Context
	started time.Time
	rnd     *rand.Rand

	id      *identity
	session *client.Session
	cache   *peercache.Cache
	paramsV atomic.Pointer[netparams.Params]

	refetching    atomic.Bool
	selfRevoked   atomic.Bool
	paramsChecked time.Time

	dp     *loader.Datapath
	router *babel.Router
	fibw   *fib.Writer
	routes *splitBackend
	proto  *nodeproto.Node
	socks  *sockets

	clientCount, maxClients int

	mu          sync.Mutex
	tunnels     map[uint32]*tunnel
	pending     map[string]bool // peers a tunnel is being set up with
	lastRefresh time.Time

	registry registryState
	drops    dropCounters
	daemons  *processes
}

type registryState struct {
	mu       sync.Mutex
	ok       bool
	lastOK   time.Time
	lastErr  string
	reported time.Time
}

func (n *Node) noteRegistry(err error) {
	r := &n.registry
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ok = err == nil
	if err == nil {
		r.lastOK, r.lastErr = time.Now(), ""
	} else {
		r.lastErr = err.Error()
	}
}

func (n *Node) params() *netparams.Params { return n.paramsV.Load() }

// hello is the Babel hello interval of the network.
func (n *Node) hello() time.Duration {
	if h := n.params().Hello; h > 0 {
		return time.Duration(h) * time.Second
	}
	return 15 * time.Second
}

// Run starts the node and blocks until ctx ends; then it retracts its
// routes and stops, leaving the data plane forwarding (pinned).
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.check(); err != nil {
		return err
	}
	n := &Node{
		cfg: &cfg, log: cfg.Logger, ctx: ctx, started: time.Now(),
		rnd:     rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		tunnels: map[uint32]*tunnel{}, pending: map[string]bool{},
	}
	var err error
	if n.id, err = loadIdentity(n.cfg, time.Now()); err != nil {
		return err
	}
	n.log = n.log.With().Stringer("prefix", n.id.prefix).Logger()
	for _, dir := range []string{cfg.StateDir, cfg.RunDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if n.cache, err = peercache.Open(filepath.Join(cfg.StateDir, "cache.db"), n.log); err != nil {
		return err
	}
	defer n.cache.Close()
	c, err := client.New(cfg.Registry, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	if n.session, err = c.Session(n.id.Identity); err != nil {
		return err
	}
	p, err := n.loadParams(ctx)
	if err != nil {
		return err
	}
	n.paramsV.Store(p)
	n.paramsChecked = time.Now()
	if err := n.renew(ctx); err != nil {
		n.log.Warn().Err(err).Msg("certificate renewal postponed")
	}
	n.clientCount, n.maxClients = p.ClientCount, p.MaxClients
	if cfg.ClientCount >= 0 {
		n.clientCount = cfg.ClientCount
	}
	if cfg.MaxClients >= 0 {
		n.maxClients = cfg.MaxClients
	}
	if err := n.start(); err != nil {
		n.stop()
		return err
	}
	n.log.Info().Stringer("address", n.id.addr).Int("client_count", n.clientCount).
		Int("max_clients", n.maxClients).Msg("node up")
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	n.runHooks()
	<-ctx.Done()
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	n.log.Info().Msg("stopping: retracting our routes")
	n.stop()
	return nil
}

// start brings up everything after the parameters are known.
func (n *Node) start() error {
	var err error
	if n.dp, err = n.openDatapath(); err != nil {
		return err
	}
	if err := n.dp.SetRoute(n.id.prefix, netip.Prefix{}, loader.Nexthop{Local: true}); err != nil {
		return err
	}
	if n.router, err = babel.NewRouter(babel.Config{RouterID: babel.RandomRouterID(), Logger: &n.log}); err != nil {
		return err
	}
	n.routes = newSplitBackend(n)
	n.fibw = fib.Follow(n.router, n.routes, n.log)
	if n.socks, err = n.openSockets(); err != nil {
		return err
	}
	if n.proto, err = nodeproto.New(nodeproto.Config{
		Identity: n.id.Identity, Network: n.id.network, Protocol: netparams.Protocol,
		Revoked: n.revoked, Send: n.sendControl, Handler: (*protoHandler)(n),
		Logger: n.log.With().Str("part", "nodeproto").Logger(),
	}); err != nil {
		return err
	}
	n.socks.serve(n)
	for _, lan := range n.cfg.LANs {
		if err := n.addLAN(lan); err != nil {
			return err
		}
	}
	n.restoreTunnels()
	if err := n.router.Export(n.id.prefix, netip.Prefix{}, 0); err != nil {
		return err
	}
	if err := n.setupDefaultRoute(); err != nil {
		return err
	}
	if err := n.serveControl(); err != nil {
		return err
	}
	if n.cfg.Metrics != "" {
		if err := n.serveMetrics(); err != nil {
			return err
		}
	}
	go n.manage()
	return nil
}

// openDatapath reopens the instance's pinned data plane (a restart: transit
// never stopped) or brings a new one up.
func (n *Node) openDatapath() (*loader.Datapath, error) {
	addr := netip.PrefixFrom(n.id.addr, n.id.network.Bits())
	if dp, err := loader.Open(n.cfg.Instance); err == nil {
		if dp.State.Address != addr {
			dp.Close()
			return nil, fmt.Errorf("data-plane instance %q has address %s, not ours (%s): run `re6st-bpf down --instance %s`",
				n.cfg.Instance, dp.State.Address, addr, n.cfg.Instance)
		}
		n.log.Info().Str("instance", n.cfg.Instance).Msg("data plane already up: resynchronising")
		return dp, nil
	}
	underlays := n.cfg.Underlays
	if len(underlays) == 0 {
		var err error
		if underlays, err = ipv4Interfaces(); err != nil {
			return nil, err
		}
	}
	return loader.Up(loader.Options{Instance: n.cfg.Instance, Netns: n.cfg.Netns, Address: addr, Underlays: underlays,
		Hook: n.cfg.Hook, FOUPort: n.cfg.FOUPort})
}

// setupDefaultRoute: a gateway announces ::/0 from the network; other
// nodes send what their re6st addresses source to the overlay (a
// source-specific kernel route, so the host's own default is untouched),
// unless Babel routes it through a LAN neighbour.
func (n *Node) setupDefaultRoute() error {
	if n.cfg.Gateway {
		return n.router.Export(netip.PrefixFrom(netip.IPv6Unspecified(), 0), n.id.network, 0)
	}
	return n.routes.setKernelBase(fib.Route{Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0),
		Src: n.id.network, Interface: n.dp.State.Overlay})
}

// stop retracts our routes, then stops in reverse order. The data plane
// stays up (pinned) so that transit traffic goes on.
func (n *Node) stop() {
	if n.router != nil {
		n.router.Withdraw(n.id.prefix, netip.Prefix{})
		if n.cfg.Gateway {
			n.router.Withdraw(netip.PrefixFrom(netip.IPv6Unspecified(), 0), n.id.network)
		}
		time.Sleep(500 * time.Millisecond) // let the retractions go out
	}
	n.daemons.stop()
	n.saveTunnels()
	if n.socks != nil {
		n.socks.close()
	}
	if n.fibw != nil {
		n.fibw.Stop()
	}
	if n.router != nil {
		n.router.Close()
	}
	if n.cache != nil {
		if err := n.cache.Shrink(max(n.clientCount, 1) * 4); err != nil {
			n.log.Warn().Err(err).Msg("peer cache")
		}
	}
	if n.dp != nil {
		n.dp.Close()
	}
}

var errStopped = errors.New("node stopping")
