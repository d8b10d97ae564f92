package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// RegistryPort is the registry's HTTP port on its host.
const RegistryPort = 80

// Options configure a cluster. Zero values take the defaults given.
type Options struct {
	// Internet is where the cluster runs (required; ForTest builds the
	// default one when nil).
	Internet *internet.Internet
	// Bin is the directory of re6st-registry, re6st-conf and re6stnet
	// (required; ForTest builds them when empty).
	Bin string
	// Dir is the work directory: CA, registry database, one directory per
	// node, logs and pid files (required; ForTest makes a temporary one).
	Dir string
	// Registry is the host running the registry ("registry").
	Registry string
	// Nodes are the hosts running a node (every host of the internet, the
	// registry host first). The first one enrolled becomes the registry's
	// own node; it enrols with a token, the others anonymously.
	Nodes []string
	// Network is the overlay network (2001:db8:42::/48); NodePrefixBits is
	// the length of a node's prefix after it (16, a /64 per node).
	Network        netip.Prefix
	NodePrefixBits int
	// Registry parameters: Babel hello interval (4 s), seconds between
	// tunnel replacements (60), tunnels per node (3 out, 6 in).
	Hello, TunnelRefresh, ClientCount, MaxClients int
	// Gateways are the nodes run with --gateway (none by default). Their
	// hosts must be linked to the internet's upstream
	// (internet.Spec.Upstream), which is given Network to route back to
	// the first one (a router run there, such as the BGP gateways' peer,
	// may override that route).
	Gateways []string
	// Locations, if set, gives a node's --location for re6st-conf ("CC,CONT";
	// "" for none): it picks the node's community in the registry's
	// community file (RegistryArgs --community).
	Locations map[string]string
	// LogLevel is re6stnet's --log-level ("info").
	LogLevel string
	// NodeArgs, if set, returns extra re6stnet flags for a node.
	NodeArgs func(*Node) []string
	// RegistryArgs are extra re6st-registry flags (e.g. --ipv4).
	RegistryArgs []string
	// Detach leaves the processes running when the program exits (Down
	// stops them later); otherwise they die with it.
	Detach bool
	// Logf reports progress (nothing when nil).
	Logf func(format string, args ...any)
}

func (o *Options) defaults() {
	if o.Registry == "" {
		o.Registry = "registry"
	}
	if o.Nodes == nil && o.Internet != nil {
		o.Nodes = append(o.Nodes, o.Registry)
		for _, h := range o.Internet.Hosts() {
			if h.Name != o.Registry {
				o.Nodes = append(o.Nodes, h.Name)
			}
		}
	}
	if !o.Network.IsValid() {
		o.Network = netip.MustParsePrefix("2001:db8:42::/48")
	}
	for _, d := range []struct {
		v   *int
		def int
	}{{&o.NodePrefixBits, 16}, {&o.Hello, 4}, {&o.TunnelRefresh, 60}, {&o.ClientCount, 3}, {&o.MaxClients, 6}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// Node is one node of the cluster.
type Node struct {
	Name string
	Host *internet.Host
	// Dir holds what re6st-conf wrote (ca.crt cert.crt cert.key
	// re6stnet.conf), its output conf.log, and re6stnet's log, pid file,
	// state and run directories.
	Dir string
	// Subnet is the node's prefix, CN its certificate's common name and
	// Addr its overlay address, <prefix>::1.
	Subnet netip.Prefix
	CN     string
	Addr   netip.Addr

	proc *process // re6stnet, nil when not started by the cluster
}

// RunDir is re6stnet's -r directory (its control socket).
func (n *Node) RunDir() string { return filepath.Join(n.Dir, "run") }

// StateDir is re6stnet's -s directory.
func (n *Node) StateDir() string { return filepath.Join(n.Dir, "state") }

// Log is re6stnet's log file.
func (n *Node) Log() string { return filepath.Join(n.Dir, "re6stnet.log") }

// Instance is the node's data-plane instance name: its namespace's name,
// unique on the machine.
func (n *Node) Instance() string { return n.Host.NS.Name }

// Cluster is a running registry and its nodes.
type Cluster struct {
	opts Options
	// URL is the registry's URL, on its host's IPv4 address.
	URL         string
	fingerprint string
	host        *internet.Host // the registry's
	nodes       map[string]*Node

	mu       sync.Mutex // guards registry and every Node.proc
	registry *process
}

// Start makes the CA in o.Dir, starts the registry and enrols every node;
// StartNodes starts them. On error, what was started is stopped.
func Start(o Options) (*Cluster, error) {
	o.defaults()
	if o.Internet == nil || o.Bin == "" || o.Dir == "" {
		return nil, errors.New("cluster: Internet, Bin and Dir are required")
	}
	var err error
	if o.Bin, err = filepath.Abs(o.Bin); err != nil {
		return nil, err
	}
	c := &Cluster{opts: o, nodes: map[string]*Node{}, host: o.Internet.Host(o.Registry)}
	if c.host == nil {
		return nil, fmt.Errorf("cluster: no registry host %q", o.Registry)
	}
	c.URL = fmt.Sprintf("http://%s:%d/", c.host.Addr, RegistryPort)
	for _, name := range o.Nodes {
		h := o.Internet.Host(name)
		if h == nil {
			return nil, fmt.Errorf("cluster: no host %q", name)
		}
		c.nodes[name] = &Node{Name: name, Host: h, Dir: filepath.Join(o.Dir, "nodes", name)}
	}
	if err := c.routeUpstream(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	if c.fingerprint, err = makeCA(o.Dir, o.Network); err != nil {
		return nil, err
	}
	if err := c.StartRegistry(); err != nil {
		return nil, err
	}
	if err := c.enrolAll(); err != nil {
		return nil, errors.Join(err, c.Close())
	}
	return c, nil
}

// routeUpstream has the upstream route the network back to the gateway.
func (c *Cluster) routeUpstream() error {
	if len(c.opts.Gateways) == 0 {
		return nil
	}
	up := c.opts.Internet.Upstream()
	for _, name := range c.opts.Gateways {
		if _, err := c.node(name); err != nil {
			return err
		}
		if up == nil || up.Link(name) == nil {
			return fmt.Errorf("cluster: gateway %s has no upstream (internet.Spec.Upstream)", name)
		}
	}
	return up.Link(c.opts.Gateways[0]).Route(c.opts.Network)
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.opts.Bin, name) }

// Nodes returns the node names, the registry's own node first.
func (c *Cluster) Nodes() []string { return slices.Clone(c.opts.Nodes) }

// Node returns the named node, or nil.
func (c *Cluster) Node(name string) *Node { return c.nodes[name] }

// NodeAddr returns a node's overlay address (invalid for an unknown node).
func (c *Cluster) NodeAddr(name string) netip.Addr {
	if n := c.nodes[name]; n != nil {
		return n.Addr
	}
	return netip.Addr{}
}

func (c *Cluster) node(name string) (*Node, error) {
	if n := c.nodes[name]; n != nil {
		return n, nil
	}
	return nil, fmt.Errorf("cluster: no node %q", name)
}

// RegistryLog is the registry's log file.
func (c *Cluster) RegistryLog() string { return filepath.Join(c.opts.Dir, registryLog) }

// registryLog is the registry's log in the work directory; its pid file is
// registry.pid.
const registryLog = "registry.log"

// Logs returns every log file: the registry's, then each node's
// re6st-conf and re6stnet logs.
func (c *Cluster) Logs() []string { return logFiles(c.opts.Dir) }

func logFiles(dir string) []string {
	nodes, _ := filepath.Glob(filepath.Join(dir, "nodes", "*", "*.log"))
	return append([]string{filepath.Join(dir, registryLog)}, nodes...)
}

// StartRegistry starts re6st-registry on its host and waits until it
// accepts connections.
func (c *Cluster) StartRegistry() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.registry != nil && !c.registry.exited() {
		return errors.New("cluster: the registry is running")
	}
	o := c.opts
	args := append([]string{c.bin("re6st-registry"),
		"--ca", filepath.Join(o.Dir, "ca.crt"), "--key", filepath.Join(o.Dir, "ca.key"),
		"--db", filepath.Join(o.Dir, "registry.db"), "--port", strconv.Itoa(RegistryPort),
		"--prefix-length", strconv.Itoa(o.NodePrefixBits), "--anonymous-prefix-length", strconv.Itoa(o.NodePrefixBits),
		"--hello", strconv.Itoa(o.Hello), "--tunnel-refresh", strconv.Itoa(o.TunnelRefresh),
		"--client-count", strconv.Itoa(o.ClientCount), "--max-clients", strconv.Itoa(o.MaxClients),
		"-v", "2"}, o.RegistryArgs...)
	cmd := c.host.NS.Command(context.Background(), args...)
	p, err := startProcess(cmd, c.bin("re6st-registry"), c.RegistryLog(), o.Detach)
	if err != nil {
		return err
	}
	c.registry = p
	addr := netip.AddrPortFrom(c.host.Addr, RegistryPort).String()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := c.host.NS.Do(func() error {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn.Close()
			}
			return err
		})
		switch {
		case err == nil:
			return nil
		case p.exited():
			return fmt.Errorf("cluster: the registry exited: %s", tail(c.RegistryLog(), 10))
		case time.Now().After(deadline):
			return errors.Join(fmt.Errorf("cluster: the registry does not listen on %s: %w", addr, err), p.stop(syscall.SIGKILL))
		}
	}
}

// KillRegistry kills the registry with SIGKILL.
func (c *Cluster) KillRegistry() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.registry == nil || c.registry.exited() {
		return errors.New("cluster: the registry is not running")
	}
	return c.registry.stop(syscall.SIGKILL)
}

// admin runs a re6st-registry admin subcommand on the registry host, an
// authorized origin, and returns its output.
func (c *Cluster) admin(args ...string) (string, error) {
	argv := append([]string{c.bin("re6st-registry")}, args...)
	argv = append(argv, "--registry", fmt.Sprintf("http://127.0.0.1:%d/", RegistryPort))
	return c.host.NS.Run(argv...)
}

// Revoke revokes a node's certificate by CN: its prefix is freed and the
// node is out of the network.
func (c *Cluster) Revoke(name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	_, err = c.admin("revoke", n.CN)
	return err
}

// enrolAll enrols the first node with a token, so that it becomes the
// registry's node, then the others anonymously, a few at a time.
func (c *Cluster) enrolAll() error {
	nodes := c.opts.Nodes
	if len(nodes) == 0 {
		return nil
	}
	token, err := c.admin("token", "add", "cluster@example.com")
	if err != nil {
		return err
	}
	if err := c.enrol(c.nodes[nodes[0]], "--token", strings.TrimSpace(token)); err != nil {
		return err
	}
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 3)
	for i, name := range nodes[1:] {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = c.enrol(c.nodes[name], "--anonymous")
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// enrol runs re6st-conf on the node's host and reads what it was given.
func (c *Cluster) enrol(n *Node, how ...string) error {
	for _, dir := range []string{n.Dir, n.RunDir(), n.StateDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	argv := append([]string{c.bin("re6st-conf"), "--registry", c.URL, "--dir", n.Dir, "--fingerprint", c.fingerprint}, how...)
	if location := c.opts.Locations[n.Name]; location != "" {
		argv = append(argv, "--location", location)
	}
	out, err := n.Host.NS.Command(context.Background(), argv...).CombinedOutput()
	if werr := os.WriteFile(filepath.Join(n.Dir, "conf.log"), out, 0o644); werr != nil {
		return werr
	}
	if err != nil {
		return fmt.Errorf("cluster: enrolling %s: %w: %s", n.Name, err, strings.TrimSpace(string(out)))
	}
	if n.Subnet, n.CN, err = nodeSubnet(n.Dir); err != nil {
		return fmt.Errorf("cluster: %s: %w", n.Name, err)
	}
	n.Addr = n.Subnet.Addr().Next()
	c.opts.Logf("cluster: %s enrolled: %s", n.Name, n.Subnet)
	return nil
}

// StartNodes starts re6stnet on every node.
func (c *Cluster) StartNodes() error {
	var errs []error
	for _, name := range c.opts.Nodes {
		errs = append(errs, c.StartNode(name))
	}
	return errors.Join(errs...)
}

// StartNode starts re6stnet on a node.
func (c *Cluster) StartNode(name string) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.proc != nil && !n.proc.exited() {
		return fmt.Errorf("cluster: %s is running", name)
	}
	// The file re6st-conf wrote (registry, ca, cert, key), as an
	// operator runs re6stnet.
	argv := []string{
		"@" + filepath.Join(n.Dir, "re6stnet.conf"),
		"-s", n.StateDir(), "-r", n.RunDir(),
		"--netns", n.Host.NS.Name, "--instance", n.Instance(), "--log-level", c.opts.LogLevel,
	}
	if n.Host.LAN != "" {
		argv = append(argv, "-i", n.Host.LAN)
	}
	if slices.Contains(c.opts.Gateways, name) {
		argv = append(argv, "--gateway")
	}
	if c.opts.NodeArgs != nil {
		argv = append(argv, c.opts.NodeArgs(n)...)
	}
	n.proc, err = startProcess(exec.Command(c.bin("re6stnet"), argv...), c.bin("re6stnet"), n.Log(), c.opts.Detach)
	return err
}

// StopNode stops a node's re6stnet with SIGTERM (SIGKILL if it is still
// there after 10 s) and waits for it.
func (c *Cluster) StopNode(name string) error { return c.signalNode(name, syscall.SIGTERM) }

// KillNode kills a node's re6stnet with SIGKILL.
func (c *Cluster) KillNode(name string) error { return c.signalNode(name, syscall.SIGKILL) }

// RestartNode stops a node (SIGTERM) and starts it again.
func (c *Cluster) RestartNode(name string) error {
	if err := c.StopNode(name); err != nil {
		return err
	}
	return c.StartNode(name)
}

func (c *Cluster) signalNode(name string, sig syscall.Signal) error {
	n, err := c.node(name)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.proc == nil || n.proc.exited() {
		return fmt.Errorf("cluster: %s is not running", name)
	}
	return n.proc.stop(sig)
}

// Status returns `re6stnet status --json` of a node.
func (c *Cluster) Status(name string) ([]byte, error) {
	return c.Control(name, "status", "--json")
}

// Control runs `re6stnet <args> -r <run dir>` against node name's control
// socket (re6stnet wireguard rotate, say) and returns its standard output.
func (c *Cluster) Control(name string, args ...string) ([]byte, error) {
	n, err := c.node(name)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(c.bin("re6stnet"), append(args, "-r", n.RunDir())...).Output()
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return out, err
}

// Close stops every node (SIGTERM, in parallel) then the registry, and
// removes the nodes' data planes. The work directory stays.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	errs := make([]error, len(c.opts.Nodes)+1)
	var wg sync.WaitGroup
	for i, name := range c.opts.Nodes {
		if p := c.nodes[name].proc; p != nil {
			wg.Go(func() { errs[i] = p.stop(syscall.SIGTERM) })
		}
	}
	wg.Wait()
	if c.registry != nil {
		errs[len(errs)-1] = c.registry.stop(syscall.SIGTERM)
	}
	// re6stnet leaves its data plane pinned and forwarding when it stops,
	// on purpose; the cluster's nodes are gone for good.
	var instances []string
	for _, name := range c.opts.Nodes {
		instances = append(instances, c.nodes[name].Instance())
	}
	errs = append(errs, downDataplanes(func(i string) bool { return slices.Contains(instances, i) }))
	return errors.Join(errs...)
}

// DownDataplanes removes the data planes of the instances whose names start
// with prefix (non-empty): what a detached cluster's nodes left pinned.
func DownDataplanes(prefix string) error {
	if prefix == "" {
		return errors.New("cluster: no instance prefix")
	}
	return downDataplanes(func(i string) bool { return strings.HasPrefix(i, prefix) })
}

func downDataplanes(match func(instance string) bool) error {
	names, err := loader.Instances()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		if match(name) {
			errs = append(errs, loader.Down(name))
		}
	}
	return errors.Join(errs...)
}

// Down stops what a cluster with work directory dir left running (Detach):
// the processes its pid files name, if they still run the same program.
func Down(dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "nodes", "*", "re6stnet.pid"))
	if err != nil {
		return err
	}
	files = append(files, filepath.Join(dir, "registry.pid"))
	errs := make([]error, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() {
			if err := killPidFile(f); !errors.Is(err, os.ErrNotExist) {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
