package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/node"
	"github.com/re6st-bpf/re6st-bpf/registry/atfile"
	"github.com/spf13/cobra"
	vnetns "github.com/vishvananda/netns"
)

// nodeFlags are re6st's node options (re6stnet.md §5.2) that apply, and
// the data plane's.
type nodeFlags struct {
	cfg     node.Config
	netns   string
	encap   string
	hook    string
	attach  string
	ips     []string
	ipv6    []string
	ignored []string
	// classPeers are the --class-peer NAME=PEER[,PEER…] options.
	classPeers []string
	test       string
	bgp        bgpFlags
}

// ignoredOptions are re6st's node options that have no meaning here
// (docs/node.md says why): an operator's re6stnet.conf keeps working.
var ignoredOptions = []atfile.Ignored{
	{Name: "pp", Values: 2, Why: "the OpenVPN servers listen on --openvpn-port, over IPv4 and IPv6, for the OpenVPN types of --tunnel-types"},
	{Name: "dh", Values: 1, Why: "the OpenVPN servers run with --dh none (ECDHE): no Diffie-Hellman parameters"},
	{Name: "openvpn-arg", Shorthand: "O", Values: 1, Why: "openvpn gets re6st's own arguments, made by the node"},
	{Name: "ovpnlog", Why: "openvpn's output goes to the node's log, at debug level"},
	{Name: "babel-arg", Shorthand: "B", Values: 1, Why: "Babel runs in process, not babeld"},
	{Name: "table", Values: 1, Why: "obsolete in re6st too; the default route is source-specific"},
	{Name: "default", Shorthand: "D", Why: "the overlay's default route is always source-specific (the data plane routes by source)"},
	{Name: "client", Values: 1, Why: "no light mode: use --client-count 1 --max-clients 0 --neighbour CN"},
	{Name: "remote-gateway", Values: 1, Why: "tunnels follow the host's IPv4 routing"},
	{Name: "disable-proto", Values: 1, Why: "--tunnel-types lists the tunnel types used (openvpn-tcp, openvpn-udp…); --ipv6 none: no OpenVPN over IPv6"},
	{Name: "log", Shorthand: "l", Values: 1, Why: "logs go to standard error (journald); see --log-format"},
	{Name: "multicast", Shorthand: "m", Why: "no PIM-DM"},
	{Name: "console", Values: 1, Why: "no Python console: use re6stnet status"},
}

func addNodeFlags(cmd *cobra.Command, f *nodeFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.cfg.Registry, "registry", "", "registry URL (required)")
	fl.StringVar(&f.cfg.CA, "ca", "", "network CA certificate (required)")
	fl.StringVar(&f.cfg.Cert, "cert", "", "node certificate, renewed in place (required)")
	fl.StringVar(&f.cfg.Key, "key", "", "node private key (required)")
	fl.StringVarP(&f.cfg.StateDir, "state", "s", node.DefaultStateDir, "state directory (peer cache, cached network parameters, tunnels)")
	fl.StringVarP(&f.cfg.RunDir, "run", "r", node.DefaultRunDir, "runtime directory (control socket)")
	fl.StringVar(&f.netns, "netns", "", "run in this named network namespace (keeps the mount namespace, unlike `ip netns exec`, so the BPF pins stay visible)")
	fl.StringVar(&f.cfg.Instance, "instance", "re6st", "data-plane instance name")
	fl.StringArrayVar(&f.cfg.Underlays, "underlay", nil, "underlay interface (repeatable; default: every interface with an IPv4 address but lo)")
	fl.StringArrayVar(&f.ips, "ip", nil, "IPv4 address to advertise to peers and the registry (repeatable; default: the underlays')")
	fl.StringArrayVar(&f.ipv6, "ipv6", nil, "IPv6 address to advertise for the OpenVPN servers, which also listen on IPv6 (re6st's tcp6 and udp6 items; repeatable; 'none': no OpenVPN over IPv6; default: the global IPv6 addresses of the underlays and of the default IPv6 route, found at each use)")
	fl.StringVar(&f.encap, "encap", "fou", "encapsulation of the tunnels this node sets up: fou or gre (GRE does not cross NATs)")
	fl.StringSliceVar(&f.cfg.TunnelTypes, "tunnel-types", nil, "tunnel types in order of preference, among fou, gre, wireguard, openvpn-tcp and openvpn-udp, e.g. fou,gre,openvpn-tcp: per peer, the first both offer; the next when no Babel hello comes through (default: --encap alone). OpenVPN also runs over IPv6 (see --ipv6): a peer's IPv4 item of a type is tried before its IPv6 one, which is tried next when the first gets no hello through")
	fl.Uint16Var(&f.cfg.OpenVPNPort, "openvpn-port", node.DefaultOpenVPNPort, "port of the OpenVPN servers (TCP and UDP, over IPv4 and IPv6, re6st's --pp): advertised in the address list when --tunnel-types has openvpn-tcp or openvpn-udp")
	fl.Uint16Var(&f.cfg.WireGuardPort, "wireguard-port", node.DefaultWireGuardPort, "first WireGuard port: advertised in the address list; tunnel N's device listens on this port + N")
	fl.DurationVar(&f.cfg.WireGuardRotate, "wireguard-rotate", 0, "replace the WireGuard key this often while running, sending each peer the new key's binding (0: a new key at each start only)")
	fl.Uint16Var(&f.cfg.FOUPort, "fou-port", loader.DefaultFOUPort, "UDP port of FOU tunnels and of tunnel setup")
	fl.StringVar(&f.hook, "hook", string(loader.HookAuto), "underlay hook: auto, tc or xdp")
	fl.StringVar(&f.attach, "attach", string(loader.AttachAuto), "how tc programs attach: tcx, legacy (clsact qdisc + cls_bpf, kernels before 6.6) or auto")
	fl.StringArrayVarP(&f.cfg.LANs, "interface", "i", nil, "LAN interface where Babel runs natively, so nodes on it find each other (repeatable)")
	fl.StringArrayVar(&f.cfg.Neighbours, "neighbour", nil, "CN (n/len) of a peer to prefer for tunnels and to remove last (repeatable)")
	fl.StringArrayVar(&f.classPeers, "class-peer", nil, "NAME=PEER[,PEER…]: the tunnels to these peers (CN n/len) are traffic class NAME's own; Babel routes the class over them, over other tunnels only when it has no path of its own (repeatable)")
	fl.IntVar(&f.cfg.ClientCount, "client-count", -1, "outgoing tunnels to keep (default: the registry's)")
	fl.IntVar(&f.cfg.MaxClients, "max-clients", -1, "incoming tunnels to accept (default: the registry's)")
	fl.BoolVar(&f.cfg.Gateway, "gateway", false, "announce ::/0 from the network: forward the overlay's traffic to the internet")
	fl.StringArrayVar(&f.cfg.Up, "up", nil, "shell command run once the node is up (repeatable; re6stnet_ip, re6stnet_iface, re6stnet_subnet, re6stnet_network in its environment)")
	fl.StringArrayVar(&f.cfg.Daemons, "daemon", nil, "shell command run once the node is up and killed at exit (repeatable)")
	fl.StringVar(&f.cfg.Metrics, "metrics", "", "serve Prometheus metrics on this address, e.g. 127.0.0.1:9326")
	fl.StringArrayVarP(&f.ignored, "main-interface", "I", nil, "ignored: the node address is always on the overlay device")
	fl.StringVar(&f.cfg.Country, "country", "", "country code (ISO 3166 alpha-2) advertised with our addresses, for the network's same_country rule (default: the registry's GeoIP answer)")
	fl.StringVar(&f.test, "test", "", "check the configuration and exit (re6st's Python expression is not evaluated)")
	atfile.AddIgnored(fl, ignoredOptions)
	addBGPFlags(fl, &f.bgp)
}

func (f *nodeFlags) config() (node.Config, error) {
	var err error
	if f.cfg.Encap, err = loader.ParseTunnelType(f.encap); err != nil {
		return f.cfg, fmt.Errorf("--encap: %w", err)
	}
	switch loader.Hook(f.hook) {
	case loader.HookAuto, loader.HookTC, loader.HookXDP:
		f.cfg.Hook = loader.Hook(f.hook)
	default:
		return f.cfg, fmt.Errorf("--hook %q: want auto, tc or xdp", f.hook)
	}
	switch a := loader.AttachMode(f.attach); a {
	case loader.AttachAuto, loader.AttachTCX, loader.AttachLegacy:
		f.cfg.Attach = a
	default:
		return f.cfg, fmt.Errorf("--attach %q: want auto, tcx or legacy", f.attach)
	}
	if f.cfg.BGP, err = f.bgp.config(); err != nil {
		return f.cfg, err
	}
	f.cfg.ClassPeers = map[string][]string{}
	for _, s := range f.classPeers {
		name, peers, ok := strings.Cut(s, "=")
		if !ok || name == "" || peers == "" {
			return f.cfg, fmt.Errorf("--class-peer %q: want NAME=PEER[,PEER…]", s)
		}
		f.cfg.ClassPeers[name] = append(f.cfg.ClassPeers[name], strings.Split(peers, ",")...)
	}
	for _, s := range f.ips {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return f.cfg, fmt.Errorf("--ip %q: %w", s, err)
		}
		f.cfg.IPs = append(f.cfg.IPs, ip)
	}
	for _, s := range f.ipv6 {
		if s == "none" {
			f.cfg.NoIPv6 = true
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return f.cfg, fmt.Errorf("--ipv6 %q: %w", s, err)
		}
		f.cfg.IPv6 = append(f.cfg.IPv6, ip)
	}
	return f.cfg, nil
}

func runNode(cmd *cobra.Command, f *nodeFlags) error {
	if f.netns != "" && os.Getenv(netnsEnv) != f.netns {
		return reexecInNetns(f.netns)
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	cfg.Logger = logger()
	cfg.Netns = f.netns
	if len(f.ignored) > 0 {
		cfg.Logger.Warn().Msg("-I/--main-interface is ignored: the node address is on the overlay device")
	}
	atfile.WarnIgnored(cmd.Flags(), ignoredOptions, cfg.Logger)
	cfg.Logger.Debug().Str("registry", cfg.Registry).Str("cert", cfg.Cert).Str("country", cfg.Country).
		Strs("underlays", cfg.Underlays).Msg("configuration read")
	if cmd.Flags().Changed("test") {
		if err := node.Check(cfg); err != nil {
			return err
		}
		cfg.Logger.Warn().Str("expression", f.test).Msg("--test: the configuration is valid; the expression is not evaluated")
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	n, err := node.Run(ctx, cfg)
	if err != nil {
		return err
	}
	return n.Wait()
}

const netnsEnv = "RE6STNET_NETNS"

// reexecInNetns enters the network namespace on this thread and executes
// the program again there, so that every thread of the daemon lives in it.
func reexecInNetns(name string) error {
	runtime.LockOSThread()
	h, err := vnetns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("network namespace %q: %w", name, err)
	}
	if err := vnetns.Set(h); err != nil {
		return fmt.Errorf("enter network namespace %q: %w", name, err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	return syscall.Exec(exe, os.Args, append(os.Environ(), netnsEnv+"="+name))
}
