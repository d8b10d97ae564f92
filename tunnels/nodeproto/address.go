package nodeproto

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// Port is the UDP port of the node protocol.
const Port = 326

// Transport protocols of an advertised address.
const (
	ProtoFOU = "fou"
	ProtoGRE = "gre"
	// ProtoWireGuard: a WireGuard tunnel to the address's UDP port (the
	// items of other protocols are skipped by peers that predate it).
	ProtoWireGuard = "wireguard"
	// ProtoOpenVPNTCP, ProtoOpenVPNUDP: re6st's OpenVPN server at the
	// address's TCP or UDP port. They are the tunnel types' names; the
	// address list gives re6st's protocol names, "tcp" and "udp" over an
	// IPv4 address, "tcp6" and "udp6" over an IPv6 one (wireNames).
	ProtoOpenVPNTCP = "openvpn-tcp"
	ProtoOpenVPNUDP = "openvpn-udp"
)

// wireNames are the protocol names the address list gives types whose
// names differ (re6st's OpenVPN items) over IPv4; over IPv6, re6st's name
// ends in 6 (ipv6Suffix).
var wireNames = map[string]string{ProtoOpenVPNTCP: "tcp", ProtoOpenVPNUDP: "udp"}

const ipv6Suffix = "6"

// typeOf is the tunnel type of an address list's protocol name and
// whether the name is of an IPv6 item (re6st's tcp6 and udp6); "" for one
// this node does not know.
func typeOf(wire string) (typ string, ipv6 bool) {
	switch wire {
	case ProtoFOU, ProtoGRE, ProtoWireGuard:
		return wire, false
	}
	base, ipv6 := strings.CutSuffix(wire, ipv6Suffix)
	for t, w := range wireNames {
		if w == base {
			return t, ipv6
		}
	}
	return "", false
}

// Address is one underlay endpoint a node accepts tunnels on.
type Address struct {
	IP      netip.Addr
	Port    uint16 // 0 for GRE
	Proto   string // ProtoFOU, ProtoGRE, ProtoWireGuard, ProtoOpenVPNTCP or ProtoOpenVPNUDP
	Country string // optional ISO country code
}

// String returns the re6st form "ip,port,proto[,country]".
func (a Address) String() string {
	proto := a.Proto
	if w, ok := wireNames[proto]; ok {
		proto = w
		if a.IP.Is6() {
			proto += ipv6Suffix
		}
	}
	s := a.IP.String() + "," + strconv.Itoa(int(a.Port)) + "," + proto
	if a.Country != "" {
		s += "," + a.Country
	}
	return s
}

// ParseAddresses parses re6st's address list: items "ip,port,proto[,country]"
// separated by ';', in preference order. re6st's OpenVPN items (tcp, udp
// over IPv4; tcp6, udp6 over IPv6) are the types ProtoOpenVPNTCP and
// ProtoOpenVPNUDP, the address's family telling which. Items of other
// protocols (later additions), and OpenVPN items whose address is not of
// their name's family (which re6st cannot use either: it resolves the
// address in that family), are skipped, so that a list stays usable when
// it mixes protocols; a malformed item is an error.
// The empty string is the empty list.
func ParseAddresses(s string) ([]Address, error) {
	if s == "" {
		return nil, nil
	}
	var list []Address
	for item := range strings.SplitSeq(s, ";") {
		fields := strings.Split(item, ",")
		if len(fields) != 3 && len(fields) != 4 {
			return nil, fmt.Errorf("address %q: want ip,port,proto[,country]", item)
		}
		ip, err := netip.ParseAddr(fields[0])
		if err != nil || ip.Zone() != "" {
			return nil, fmt.Errorf("address %q: bad IP", item)
		}
		port, err := strconv.ParseUint(fields[1], 10, 16)
		if err != nil {
			return nil, fmt.Errorf("address %q: bad port", item)
		}
		typ, ipv6 := typeOf(fields[2])
		a := Address{IP: ip.Unmap(), Port: uint16(port), Proto: typ}
		if len(fields) == 4 {
			if fields[3] == "" {
				return nil, fmt.Errorf("address %q: empty country", item)
			}
			a.Country = fields[3]
		}
		_, ovpn := wireNames[a.Proto]
		switch {
		case a.Proto == "", ovpn && a.IP.Is6() != ipv6:
			continue
		case a.Proto != ProtoGRE && a.Port == 0:
			return nil, fmt.Errorf("address %q: %s needs a port", item, fields[2])
		case a.Proto == ProtoGRE && a.Port != 0:
			return nil, fmt.Errorf("address %q: gre has no port", item)
		}
		list = append(list, a)
	}
	return list, nil
}

// FormatAddresses is the inverse of ParseAddresses.
func FormatAddresses(a []Address) string {
	items := make([]string, len(a))
	for i, address := range a {
		items[i] = address.String()
	}
	return strings.Join(items, ";")
}

// PrefixOf returns the subnet of a node whose re6st prefix bits are bits, in
// network.
func PrefixOf(network netip.Prefix, bits string) (netip.Prefix, error) {
	networkBits, err := wire.NetworkFromSubnet(network.Masked())
	if err != nil {
		return netip.Prefix{}, err
	}
	return wire.Subnet(networkBits, bits)
}

// BitsOf returns the re6st prefix bits of the subnet p of network.
func BitsOf(network, p netip.Prefix) (string, error) {
	if !p.IsValid() || p.Bits() < network.Bits() || !network.Contains(p.Addr()) {
		return "", fmt.Errorf("%s is not a subnet of %s", p, network)
	}
	bits, err := wire.NetworkFromSubnet(p.Masked())
	if err != nil {
		return "", err
	}
	return bits[network.Bits():], nil
}

// NodeAddr returns <subnet>::1, the address a node sends from and
// receives the node protocol on over the overlay.
func NodeAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As16()
	a[15] |= 1
	return netip.AddrFrom16(a)
}

// errNotPeer is returned for a peer prefix outside the network or ours.
var errNotPeer = errors.New("not a peer prefix of the network")
