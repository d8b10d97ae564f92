package internet

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"strings"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

// hopLine is a traceroute6 -n line: its hop number and first address, or
// "*" for a lost probe.
var hopLine = regexp.MustCompile(`(?m)^\s*\d+\s+([0-9a-f:]+|\*)`)

// Traceroute runs traceroute6 from ns to dst (one probe per hop, 2 s
// each, 8 hops at most) and returns the address that answered each hop, in
// order ("" for a lost probe), with traceroute6's output.
func Traceroute(ns *netns.NS, dst netip.Addr) ([]string, string, error) {
	out, err := ns.Run("traceroute6", "-n", "-q1", "-w2", "-m8", dst.String())
	if err != nil {
		return nil, out, err
	}
	var hops []string
	for _, m := range hopLine.FindAllStringSubmatch(out, -1) {
		hops = append(hops, strings.TrimPrefix(m[1], "*"))
	}
	return hops, out, nil
}

// IPv6Addrs are the IPv6 addresses of a namespace's interfaces.
func IPv6Addrs(ns *netns.NS) (map[string]bool, error) {
	out, err := ns.Run("ip", "-6", "-j", "addr", "show")
	if err != nil {
		return nil, err
	}
	var links []struct {
		Addrs []struct {
			Local string `json:"local"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, err
	}
	addrs := map[string]bool{}
	for _, l := range links {
		for _, a := range l.Addrs {
			addrs[a.Local] = true
		}
	}
	return addrs, nil
}
