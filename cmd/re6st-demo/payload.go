package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/cluster"
	"github.com/re6st-bpf/re6st-bpf/node"
)

// payloadArgs are the registry options of what the overlay carries besides
// the nodes' IPv6 prefixes: re6st's IPv4 network (a /24 per node) and one
// traffic class, whose range gives every node a second address
// (docs/node.md, docs/traffic-classes.md).
var payloadArgs = []string{"--ipv4", "10.42.0.0/16", "8", "--traffic-class", "keepalive,fd00:1::/32,dscp=46,priority=7"}

// payloadAddrs are a node's addresses in the IPv4 network and in the
// traffic class, from its status.
type payloadAddrs struct {
	ipv4, class netip.Addr
}

// payload prints each node's IPv4 and keep-alive addresses and whether the
// first node reaches them over the overlay, trying for up to wait; it
// returns how many nodes answered on both.
func payload(c *cluster.Cluster, wait time.Duration) int {
	names := c.Nodes()
	addrs := make(map[string]payloadAddrs, len(names))
	for _, name := range names {
		raw, err := c.Status(name)
		var st node.Status
		if err == nil {
			err = json.Unmarshal(raw, &st)
		}
		if err != nil {
			fmt.Printf("  %-9s status: %v\n", name, err)
			continue
		}
		a := payloadAddrs{ipv4: st.IPv4.Addr()}
		if len(st.Classes) > 0 {
			a.class = st.Classes[0].Address
		}
		addrs[name] = a
	}
	from := names[0]
	src := addrs[from].class
	ping := func(dst, src netip.Addr) bool {
		if !dst.IsValid() {
			return false
		}
		args := []string{"ping", "-n", "-q", "-c1", "-W1", dst.String()}
		if src.IsValid() {
			args = append(args, "-I", src.String())
		}
		deadline := time.Now().Add(wait)
		for {
			if _, err := c.Node(from).Host.NS.Run(args...); err == nil {
				return true
			}
			if time.Now().After(deadline) {
				return false
			}
		}
	}
	mark := map[bool]string{true: "ok", false: "FAILED"}
	fmt.Printf("IPv4 payload and traffic class (ping from %s over the overlay):\n", from)
	fmt.Printf("  %-9s %-14s %-6s %-26s %s\n", "node", "IPv4", "", "keepalive class address", "")
	both := 0
	for _, name := range names {
		a, ok := addrs[name]
		if !ok {
			continue
		}
		v4, cl := ping(a.ipv4, netip.Addr{}), ping(a.class, src)
		if v4 && cl {
			both++
		}
		fmt.Printf("  %-9s %-14s %-6s %-26s %s\n", name, a.ipv4, mark[v4], a.class, mark[cl])
	}
	fmt.Println()
	return both
}
