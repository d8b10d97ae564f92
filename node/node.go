package node

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/re6st-bpf/re6st-bpf/internal/secfile"
	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/registry/client"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/re6st-bpf/re6st-bpf/routing/fib"
	"github.com/re6st-bpf/re6st-bpf/tunnels/control"
	"github.com/re6st-bpf/re6st-bpf/tunnels/manager"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/re6st-bpf/re6st-bpf/tunnels/peercache"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
)

// Node is a running re6stnet daemon: Run starts one, Stop ends it.
type Node struct {
	cfg     *Config
	log     zerolog.Logger
	started time.Time
	// stoppedAt is when the previous run stopped cleanly (its Babel
	// hand-over); zero after a crash or on a first start.
	stoppedAt time.Time

	id       *identity
	session  *client.Session
	cache    *peercache.Cache
	params   *netParams
	registry registryState
	payload  payload // traffic classes and IPv4 payload in force (livepayload.go)
	country  countryState
	cert     renewal // the certificate in force (renewed while running)

	dp      *loader.Datapath
	router  *babel.Router
	routes  *fib.Split
	fibw    *fib.Writer
	conn    *control.Conn
	links   *links
	taps    *tapTunnels // the OpenVPN TAP devices' tunnels
	backend *tunnelBackend
	proto   *nodeproto.Node
	tunnels *manager.Manager
	daemons *processes
	gw      *borderGateway // nil unless BGP runs

	stopRun context.CancelFunc // ends the goroutines of run
	run     *errgroup.Group
	stop    context.CancelFunc // asks for the shutdown
	done    chan struct{}      // closed once shut down
	err     error
}

// Run brings the node up and returns once it is, or failed to come up. It
// runs until ctx ends or Stop is called; then it retracts its routes and
// stops, leaving the data plane forwarding (pinned).
func Run(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	n := &Node{cfg: &cfg, log: cfg.Logger, started: time.Now(), done: make(chan struct{})}
	ctx, n.stop = context.WithCancel(ctx)
	if err := n.prepare(ctx); err != nil {
		n.stop()
		n.shutdown()
		return nil, err
	}
	// The goroutines get their own context: on shutdown the node first
	// retracts its routes, which needs them running.
	runCtx, stopRun := context.WithCancel(context.Background())
	n.stopRun = stopRun
	var gctx context.Context
	n.run, gctx = errgroup.WithContext(runCtx)
	if err := n.start(gctx); err != nil {
		n.stop()
		n.stopRun()
		_ = n.run.Wait()
		n.shutdown()
		return nil, err
	}
	n.log.Info().Stringer("address", n.id.addr).Int("client_count", n.params.clientCount()).
		Int("max_clients", n.params.maxClients()).Msg("node up")
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady)
	n.runHooks()
	go n.supervise(ctx, gctx)
	return n, nil
}

// Stop ends the node and waits until it has stopped.
func (n *Node) Stop() error {
	n.stop()
	return n.Wait()
}

// Wait waits until the node has stopped (its context ended, Stop was
// called, or one of its parts failed).
func (n *Node) Wait() error {
	<-n.done
	return n.err
}

// supervise waits for the end, then shuts the node down in order.
func (n *Node) supervise(ctx, gctx context.Context) {
	defer close(n.done)
	select {
	case <-ctx.Done():
	case <-gctx.Done():
	}
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	n.log.Info().Msg("stopping: retracting our routes")
	n.retract()
	n.stopRun()
	n.err = n.run.Wait()
	n.shutdown()
}

// privateFiles makes the state and run directories 0700 and the peer cache,
// the tunnels and the parameters files 0600, whatever the umask: they hold the network's parameters (with its
// Babel key) and the peers. Wider modes left by an older version are
// tightened, with a warning.
func (n *Node) privateFiles() error {
	for _, dir := range []string{n.cfg.StateDir, n.cfg.RunDir} {
		wide, err := secfile.Dir(dir)
		if err != nil {
			return err
		}
		if wide != 0 {
			n.log.Warn().Str("dir", dir).Stringer("mode", wide).Msg("directory readable by others: made 0700")
			if err := os.Chmod(dir, secfile.DirMode); err != nil {
				return err
			}
		}
	}
	for _, name := range []string{"cache.db", "cache.db-wal", "cache.db-shm", tunnelsFile, paramsFile, babelStateFile} {
		wide, err := secfile.Tighten(filepath.Join(n.cfg.StateDir, name))
		if err != nil {
			return err
		}
		if wide != 0 {
			n.log.Warn().Str("file", name).Stringer("mode", wide).Msg("file readable by others: made 0600")
		}
	}
	_, err := secfile.File(filepath.Join(n.cfg.StateDir, "cache.db"))
	return err
}

// prepare loads the identity, the peer cache and the network parameters.
func (n *Node) prepare(ctx context.Context) error {
	var err error
	n.id, err = loadIdentity(n.cfg, time.Now())
	expired := errors.Is(err, errExpired)
	if err != nil && !expired {
		return err
	}
	n.log = n.log.With().Stringer("prefix", n.id.prefix).Logger()
	if err := n.privateFiles(); err != nil {
		return err
	}
	if err := n.checkRevocationRecord(); err != nil {
		return err
	}
	if n.cache, err = peercache.Open(filepath.Join(n.cfg.StateDir, "cache.db"), n.log); err != nil {
		return err
	}
	c, err := client.New(n.cfg.Registry, &http.Client{Timeout: 30 * time.Second})
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
	if err := checkEncryption(p, n.cfg.offeredTypes()); err != nil {
		return err
	}
	n.params = newNetParams(n.cfg, p, n.id)
	if n.payload.classes, err = deriveClasses(n.id.network, n.id.prefix, p.TrafficClasses); err != nil {
		return err
	}
	n.cert.cert = n.id.Cert
	if expired {
		return n.renewExpired(ctx)
	}
	if !time.Now().Before(renewAt(n.id.Cert)) {
		if _, err := n.renew(ctx); err != nil {
			n.log.Warn().Err(err).Msg("certificate renewal postponed")
		}
	}
	return nil
}

// start brings up everything after the parameters are known; its
// goroutines run in n.run until ctx ends.
func (n *Node) start(ctx context.Context) error {
	var err error
	if n.dp, err = n.openDatapath(); err != nil {
		return err
	}
	n.links = newLinks(n)
	n.taps = newTAPTunnels(n)
	n.routes = fib.NewSplit(&fib.Dataplane{Map: n.dp, Tunnel: n.links.tunnelOf,
		Class: n.payload.classOf}, n.log)
	if err := n.routes.SetLocal(n.id.prefix); err != nil {
		return err
	}
	handover := n.loadBabelState()
	if handover != nil {
		n.stoppedAt = handover.Taken
	}
	if n.router, err = babel.NewRouter(babel.Config{RouterID: babel.RandomRouterID(), Logger: &n.log, Handover: handover}); err != nil {
		return err
	}
	if n.conn, err = control.Open(n.cfg.FOUPort, n.id.addr, n.log); err != nil {
		return err
	}
	n.fibw = fib.Follow(n.router, n.routes, n.log)
	if n.proto, err = nodeproto.New(nodeproto.Config{
		Identity: nodeproto.Identity{CA: n.id.CA, Cert: n.cert.current(), Key: n.id.Key}, Software: client.UserAgent, Network: n.id.network, Protocol: netparams.Protocol,
		Revoked: n.params.Revoked, Send: n.conn.SendNodeProtocol, Handler: (*protoHandler)(n),
		Logger: n.log.With().Str("part", "nodeproto").Logger(),
	}); err != nil {
		return err
	}
	for _, lan := range n.cfg.LANs {
		if err := n.addLAN(lan); err != nil {
			return err
		}
	}
	n.learnCountry(ctx) // before the first tunnel, for the same_country rule
	if n.backend, err = n.newTunnelBackend(); err != nil {
		return err
	}
	n.tunnels = manager.New(n.managerConfig())
	n.router.EndHandover()
	n.fibw.PruneAfter(3 * n.params.Hello())
	n.run.Go(func() error { return n.tunnels.Run(ctx) })
	n.run.Go(func() error { return n.taps.run(ctx) })
	n.run.Go(func() error { return n.conn.Serve(ctx, n.links, n.proto) })
	if n.backend.wg != nil && n.cfg.WireGuardRotate > 0 {
		n.run.Go(func() error { return n.backend.wg.rotateEvery(ctx, n.cfg.WireGuardRotate) })
	}
	if err := n.router.Export(n.id.prefix, netip.Prefix{}, 0); err != nil {
		return err
	}
	if err := n.setupIPv4(); err != nil {
		return err
	}
	if err := n.setupClasses(); err != nil {
		return err
	}
	if err := n.setupDefaultRoute(); err != nil {
		return err
	}
	if err := n.startBGP(ctx); err != nil {
		return err
	}
	if err := n.serveControl(ctx); err != nil {
		return err
	}
	if n.cfg.Metrics != "" {
		if err := n.serveMetrics(ctx); err != nil {
			return err
		}
	}
	n.run.Go(func() error { return n.followParams(ctx) })
	n.run.Go(func() error { return n.followRenewal(ctx) })
	return nil
}

// openDatapath reopens the instance's pinned data plane (a restart: transit
// never stopped), replacing its programs in place when this binary's differ
// (an upgrade), or brings a new one up. A restart keeps the underlays it was
// started with unless --underlay names them.
func (n *Node) openDatapath() (*loader.Datapath, error) {
	underlays := n.cfg.Underlays
	if len(underlays) == 0 {
		if dp, err := loader.Open(n.cfg.Instance); err == nil {
			underlays = dp.State.Underlays()
			dp.Close()
		} else if underlays, err = ipv4Interfaces(); err != nil {
			return nil, err
		}
	}
	dp, reused, err := loader.Ensure(loader.Options{Instance: n.cfg.Instance, Netns: n.cfg.Netns,
		Address: netip.PrefixFrom(n.id.addr, n.id.network.Bits()), Underlays: underlays,
		Hook: n.cfg.Hook, Attach: n.cfg.Attach, FOUPort: n.cfg.FOUPort})
	if err != nil {
		return nil, err
	}
	if reused {
		n.log.Info().Str("instance", n.cfg.Instance).Msg("data plane already up: resynchronising")
	}
	return dp, nil
}

// setupDefaultRoute: a gateway announces ::/0 from the network; other
// nodes send what their re6st addresses source to the overlay (a
// source-specific kernel route, so the host's own default is untouched),
// unless Babel routes it through a LAN neighbour.
func (n *Node) setupDefaultRoute() error {
	if n.cfg.Gateway && n.cfg.BGP.enabled() {
		return nil // exported while a BGP session gives routes (bgp.go)
	}
	if n.cfg.Gateway {
		return n.router.Export(netip.PrefixFrom(netip.IPv6Unspecified(), 0), n.id.network, 0)
	}
	return n.routes.SetKernelBase(fib.Route{Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0),
		Src: n.id.network, Interface: n.dp.State.Overlay})
}

// retractTimeout bounds the wait for our retractions to leave.
const retractTimeout = time.Second

// retract withdraws our routes and waits until every Babel interface has
// sent a packet since (the retraction goes out urgently), or a second.
func (n *Node) retract() {
	if n.router == nil {
		return
	}
	sent := func() map[string]uint64 {
		out := map[string]uint64{}
		for _, i := range n.router.Dump().Interfaces {
			out[i.Name] = i.Stats.PacketsSent
		}
		return out
	}
	before := sent()
	n.gw.retract()
	n.router.Withdraw(n.id.prefix, netip.Prefix{})
	classes, v4 := n.payload.get()
	if v4.subnet.IsValid() {
		n.router.Withdraw(v4.subnet, netip.Prefix{})
	}
	for _, c := range classes {
		n.router.Withdraw(c.Prefix, netip.Prefix{})
	}
	if n.cfg.Gateway {
		n.router.Withdraw(netip.PrefixFrom(netip.IPv6Unspecified(), 0), n.id.network)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(retractTimeout)
	for {
		after, pending := sent(), false
		for name, c := range before {
			if after[name] == c {
				pending = true
			}
		}
		if !pending {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			return
		}
	}
}

// shutdown releases, in reverse order, what start and prepare acquired;
// the goroutines of run have ended. The data plane stays up (pinned) so
// that transit traffic goes on.
func (n *Node) shutdown() {
	n.daemons.stop()
	n.gw.stop()
	if n.conn != nil {
		n.conn.Close()
	}
	n.backend.close() // before the fib stops: it removes the routes into them
	if n.fibw != nil {
		n.fibw.Stop()
	}
	if n.router != nil {
		n.saveBabelState()
		n.router.Close()
	}
	if n.cache != nil {
		keep := 1
		if n.params != nil {
			keep = max(n.params.clientCount(), 1)
		}
		if err := n.cache.Shrink(keep * 4); err != nil {
			n.log.Warn().Err(err).Msg("peer cache")
		}
		n.cache.Close()
	}
	if n.dp != nil {
		n.dp.Close()
	}
}
