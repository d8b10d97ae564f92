package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/re6st-bpf/re6st-bpf/node"
)

// Summary describes every running node in a few lines: its tunnels (id,
// direction, peer, remote endpoint, Babel cost, routes through it) and its
// selected routes (prefix → interface). Each node's whole status stays in
// nodes/<name>/status.json of the work directory (NodeStatus). A failed
// test logs it, so that a failure seen only in CI's output can be
// diagnosed.
func (c *Cluster) Summary() string {
	var b strings.Builder
	for _, name := range c.Nodes() {
		s, err := c.NodeStatus(name)
		if err != nil {
			fmt.Fprintf(&b, "%s: no status: %v\n", name, err)
			continue
		}
		fmt.Fprintf(&b, "%s %s (client_count %d, max_clients %d)\n", name, s.Prefix, s.ClientCount, s.MaxClients)
		for _, t := range s.Tunnels {
			dir := "in"
			if t.Outgoing {
				dir = "out"
			}
			fmt.Fprintf(&b, "  t%d %s %s %s cost %d routes %d\n", t.ID, dir, t.Peer, t.Remote, t.Cost, t.Routes)
		}
		var routes []string
		for _, r := range s.Routes {
			routes = append(routes, fmt.Sprintf("%s→%s/%d", r.Prefix, r.Via, r.Metric))
		}
		fmt.Fprintf(&b, "  routes: %s\n", strings.Join(routes, " "))
	}
	return b.String()
}

// NodeStatus reads a node's `re6stnet status --json` and keeps the latest
// one in nodes/<name>/status.json.
func (c *Cluster) NodeStatus(name string) (node.Status, error) {
	var s node.Status
	out, err := c.Status(name)
	if err != nil {
		return s, err
	}
	if err := os.WriteFile(filepath.Join(c.opts.Dir, "nodes", name, "status.json"), out, 0o644); err != nil {
		return s, err
	}
	return s, json.Unmarshal(out, &s)
}
