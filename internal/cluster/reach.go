package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/internet"
)

// Ping pings node to's overlay address from node from's namespace.
func (c *Cluster) Ping(from, to string) error {
	f, err := c.node(from)
	if err != nil {
		return err
	}
	t, err := c.node(to)
	if err != nil {
		return err
	}
	return f.Host.Ping(t.Addr)
}

// Matrix is the result of pinging every node's overlay address from every
// node.
type Matrix struct {
	Nodes []string
	// Errs[i][j] is the failure of the ping from Nodes[i] to Nodes[j], nil
	// when it was answered. The diagonal does not count.
	Errs [][]error
}

// Pairs is the number of ordered pairs of distinct nodes.
func (m Matrix) Pairs() int { return len(m.Nodes) * (len(m.Nodes) - 1) }

// OK is the number of pairs whose ping was answered.
func (m Matrix) OK() int {
	ok := 0
	for i := range m.Nodes {
		for j := range m.Nodes {
			if i != j && m.Errs[i][j] == nil {
				ok++
			}
		}
	}
	return ok
}

// Reachable is the number of nodes that reach every other node and are
// reached by every other node.
func (m Matrix) Reachable() int {
	n := 0
	for i := range m.Nodes {
		all := true
		for j := range m.Nodes {
			all = all && (i == j || m.Errs[i][j] == nil && m.Errs[j][i] == nil)
		}
		if all {
			n++
		}
	}
	return n
}

// String draws the matrix: a row per source, "ok" or "--" per destination.
func (m Matrix) String() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprint(w, "from\\to\t")
	for _, name := range m.Nodes {
		fmt.Fprintf(w, "%s\t", name)
	}
	fmt.Fprintln(w)
	for i, from := range m.Nodes {
		fmt.Fprintf(w, "%s\t", from)
		for j := range m.Nodes {
			cell := "ok"
			switch {
			case i == j:
				cell = "."
			case m.Errs[i][j] != nil:
				cell = "--"
			}
			fmt.Fprintf(w, "%s\t", cell)
		}
		fmt.Fprintln(w)
	}
	w.Flush()
	return b.String()
}

// Reachability pings every node's overlay address from every node, in
// parallel, and returns the matrix and the number of pairs answered.
func (c *Cluster) Reachability() (Matrix, int) {
	m := Matrix{Nodes: c.opts.Nodes}
	hosts := make([]*internet.Host, len(m.Nodes))
	addrs := make([]netip.Addr, len(m.Nodes))
	for i, name := range m.Nodes {
		hosts[i], addrs[i] = c.nodes[name].Host, c.nodes[name].Addr
	}
	m.Errs = internet.PingAll(hosts, addrs)
	return m, m.OK()
}

// progressEvery is how often WaitReachable reports when nothing changes.
const progressEvery = 10 * time.Second

// WaitReachable measures reachability until every node reaches every
// other, reporting progress through Options.Logf when it changes (or every
// 10 s), and returns the last matrix; it fails after timeout or when ctx
// ends.
func (c *Cluster) WaitReachable(ctx context.Context, timeout time.Duration) (Matrix, error) {
	start := time.Now()
	var reported time.Time
	lastOK := -1
	for {
		m, ok := c.Reachability()
		if ok != lastOK || time.Since(reported) >= progressEvery || ok == m.Pairs() {
			c.opts.Logf("reachability after %s: %d/%d pairs, %d/%d nodes reach and are reached by all",
				time.Since(start).Round(time.Second), ok, m.Pairs(), m.Reachable(), len(m.Nodes))
			reported, lastOK = time.Now(), ok
		}
		if ok == m.Pairs() {
			return m, nil
		}
		if time.Since(start) > timeout {
			return m, fmt.Errorf("cluster: %d/%d pairs reachable after %s", ok, m.Pairs(), timeout)
		}
		select {
		case <-ctx.Done():
			return m, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Versions asks the registry for every known node's version (its
// /versions call, which its own node relays to each node over the overlay
// with the node protocol): {prefix bits: "version, platform", or nil for a
// node that did not answer}.
func (c *Cluster) Versions() (map[string]*string, error) {
	var versions map[string]*string
	return versions, c.registryCall("versions", &versions)
}

// Topology asks the registry for the tunnel graph (its /topology call,
// relayed like Versions): {CN: [CNs of its client peers], "": [CNs that
// answered]}.
func (c *Cluster) Topology() (map[string][]string, error) {
	var graph map[string][]string
	return graph, c.registryCall("topology", &graph)
}

// registryCall makes a private registry call from the registry's host and
// decodes its JSON answer into v.
func (c *Cluster) registryCall(method string, v any) error {
	out, err := c.host.NS.Run("curl", "-sSf", "--max-time", "60", fmt.Sprintf("http://127.0.0.1:%d/%s", RegistryPort, method))
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(out), v)
}
