package netparams

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// TrafficClass is one traffic class of the network (docs/traffic-classes.md):
// an IPv6 range of its own, in which every node has the prefix its
// certificate gives it in the network, and how its packets are treated.
// Classes are numbered from 1 in the order the registry lists them.
type TrafficClass struct {
	Name     string       `json:"name"`
	Range    netip.Prefix `json:"range"`
	DSCP     int          `json:"dscp"`
	Priority int          `json:"priority"`       // 0-7, higher first
	Rate     uint64       `json:"rate,omitempty"` // bits per second, 0: none
	Metric   string       `json:"metric"`         // MetricLatency or MetricDefault
}

// Route metrics of a class.
const (
	MetricDefault = "default" // the main range's cost
	MetricLatency = "latency" // the cost weighs the round-trip time
)

// ParseTrafficClass reads the registry option
// "NAME,RANGE/LEN,dscp=N,priority=P[,rate=R][,metric=latency|default]".
func ParseTrafficClass(s string) (TrafficClass, error) {
	bad := func(format string, args ...any) (TrafficClass, error) {
		return TrafficClass{}, fmt.Errorf("--traffic-class %q: "+format, append([]any{s}, args...)...)
	}
	parts := strings.Split(s, ",")
	if len(parts) < 2 {
		return bad("want NAME,RANGE/LEN,dscp=N,priority=P[,rate=R][,metric=latency|default]")
	}
	c := TrafficClass{Name: parts[0], Metric: MetricDefault, DSCP: -1, Priority: -1}
	var err error
	if c.Range, err = netip.ParsePrefix(parts[1]); err != nil {
		return bad("range: %v", err)
	}
	for _, kv := range parts[2:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return bad("%q is not KEY=VALUE", kv)
		}
		switch k {
		case "dscp":
			c.DSCP, err = strconv.Atoi(v)
		case "priority":
			c.Priority, err = strconv.Atoi(v)
		case "rate":
			c.Rate, err = ParseRate(v)
		case "metric":
			c.Metric = v
		default:
			return bad("unknown key %q", k)
		}
		if err != nil {
			return bad("%s: %v", k, err)
		}
	}
	if c.DSCP < 0 || c.Priority < 0 {
		return bad("dscp= and priority= are required")
	}
	if err := c.Validate(); err != nil {
		return bad("%v", err)
	}
	return c, nil
}

// ParseRate reads bits per second with an optional k, M or G (powers of
// 1000) and an optional "bit": 64000, 100M, 1Gbit.
func ParseRate(s string) (uint64, error) {
	t := strings.TrimSuffix(s, "bit")
	mult := uint64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k', 'K':
			mult, t = 1e3, t[:n-1]
		case 'm', 'M':
			mult, t = 1e6, t[:n-1]
		case 'g', 'G':
			mult, t = 1e9, t[:n-1]
		}
	}
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: want bits per second such as 100M or 1G", s)
	}
	return v * mult, nil
}

// Validate checks one class on its own.
func (c *TrafficClass) Validate() error {
	if c.Name == "" || strings.ContainsAny(c.Name, ", \t") {
		return fmt.Errorf("class name %q: want a word", c.Name)
	}
	if !c.Range.IsValid() || !c.Range.Addr().Is6() || c.Range.Addr().Is4In6() || c.Range.Masked() != c.Range {
		return fmt.Errorf("class %s: range %s is not an IPv6 network (no host bits)", c.Name, c.Range)
	}
	if c.DSCP < 0 || c.DSCP > 63 {
		return fmt.Errorf("class %s: dscp %d is not in 0..63", c.Name, c.DSCP)
	}
	if c.Priority < 0 || c.Priority > 7 {
		return fmt.Errorf("class %s: priority %d is not in 0..7", c.Name, c.Priority)
	}
	if c.Metric != MetricDefault && c.Metric != MetricLatency {
		return fmt.Errorf("class %s: metric %q: want latency or default", c.Name, c.Metric)
	}
	return nil
}

// ValidateClasses checks the classes of a network: each valid, names
// unique, no two ranges overlapping each other or the network itself, and
// at most 255 of them (the data plane's class ids).
func ValidateClasses(network netip.Prefix, classes []TrafficClass) error {
	if len(classes) > 255 {
		return fmt.Errorf("%d traffic classes: at most 255", len(classes))
	}
	for i, c := range classes {
		if err := c.Validate(); err != nil {
			return err
		}
		if network.IsValid() && c.Range.Overlaps(network) {
			return fmt.Errorf("class %s: range %s overlaps the network %s", c.Name, c.Range, network)
		}
		for _, o := range classes[:i] {
			if o.Name == c.Name {
				return fmt.Errorf("class %s defined twice", c.Name)
			}
			if o.Range.Overlaps(c.Range) {
				return fmt.Errorf("classes %s and %s: ranges %s and %s overlap", o.Name, c.Name, o.Range, c.Range)
			}
		}
	}
	return nil
}

// ClassPrefix is a node's prefix in a class range: the range followed by
// the node's subnet bits, those of its prefix after the network's, so that
// one certificate covers every class. For network 2001:db8::/32, node
// prefix 2001:db8:1200::/40 (subnet bits 00010010) and class range
// fd00:7::/48 it is fd00:7:0:1200::/56.
func ClassPrefix(network, node netip.Prefix, classRange netip.Prefix) (netip.Prefix, error) {
	if !network.Contains(node.Addr()) || node.Bits() < network.Bits() {
		return netip.Prefix{}, fmt.Errorf("%s is not a subnet of %s", node, network)
	}
	sub := node.Bits() - network.Bits()
	length := classRange.Bits() + sub
	if length > 128 {
		return netip.Prefix{}, fmt.Errorf("class range %s has no room for the %d subnet bits of %s", classRange, sub, node)
	}
	src, dst := node.Masked().Addr().As16(), classRange.Masked().Addr().As16()
	for i := 0; i < sub; i++ {
		from, to := network.Bits()+i, classRange.Bits()+i
		if src[from/8]&(0x80>>(from%8)) != 0 {
			dst[to/8] |= 0x80 >> (to % 8)
		}
	}
	return netip.PrefixFrom(netip.AddrFrom16(dst), length), nil
}

// canonicalClasses is the classes as Python's json.dumps(sort_keys=True)
// writes them, for Canonical.
func canonicalClasses(classes []TrafficClass) string {
	items := make([]string, len(classes))
	for i, c := range classes {
		items[i] = fmt.Sprintf(`{"dscp": %d, "metric": %s, "name": %s, "priority": %d, "range": %s, "rate": %d}`,
			c.DSCP, quote(c.Metric), quote(c.Name), c.Priority, quote(c.Range.String()), c.Rate)
	}
	return "[" + strings.Join(items, ", ") + "]"
}
