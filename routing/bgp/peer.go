package bgp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Peer is one BGP session, as --bgp-peer ADDR,ASN[,password=S][,multihop=N][,port=P] gives it.
type Peer struct {
	Address  netip.Addr // IPv4 or IPv6
	ASN      uint32
	Password string // TCP MD5 signature (RFC 2385); empty: none
	Multihop uint8  // eBGP multihop TTL; 0: directly connected
	Port     uint16 // remote port; 0: 179
}

// String is the --bgp-peer form.
func (p Peer) String() string {
	s := fmt.Sprintf("%s,%d", p.Address, p.ASN)
	if p.Password != "" {
		s += ",password=" + p.Password
	}
	if p.Multihop != 0 {
		s += fmt.Sprintf(",multihop=%d", p.Multihop)
	}
	if p.Port != 0 {
		s += fmt.Sprintf(",port=%d", p.Port)
	}
	return s
}

// ParsePeer reads ADDR,ASN[,password=S][,multihop=N][,port=P].
func ParsePeer(s string) (Peer, error) {
	fields := strings.Split(s, ",")
	if len(fields) < 2 {
		return Peer{}, fmt.Errorf("bgp peer %q: want ADDR,ASN[,password=S][,multihop=N][,port=P]", s)
	}
	var p Peer
	var err error
	if p.Address, err = netip.ParseAddr(fields[0]); err != nil {
		return Peer{}, fmt.Errorf("bgp peer %q: address: %w", s, err)
	}
	p.Address = p.Address.Unmap()
	if p.ASN, err = parseASN(fields[1]); err != nil {
		return Peer{}, fmt.Errorf("bgp peer %q: %w", s, err)
	}
	for _, opt := range fields[2:] {
		key, value, ok := strings.Cut(opt, "=")
		if !ok {
			return Peer{}, fmt.Errorf("bgp peer %q: option %q: want KEY=VALUE", s, opt)
		}
		switch key {
		case "password":
			p.Password = value
		case "multihop":
			n, err := strconv.ParseUint(value, 10, 8)
			if err != nil || n == 0 {
				return Peer{}, fmt.Errorf("bgp peer %q: multihop %q: want a TTL from 1 to 255", s, value)
			}
			p.Multihop = uint8(n)
		case "port":
			n, err := strconv.ParseUint(value, 10, 16)
			if err != nil || n == 0 {
				return Peer{}, fmt.Errorf("bgp peer %q: port %q: want 1 to 65535", s, value)
			}
			p.Port = uint16(n)
		default:
			return Peer{}, fmt.Errorf("bgp peer %q: unknown option %q (password, multihop, port)", s, key)
		}
	}
	return p, nil
}

// parseASN reads a 4-byte AS number, plain or asdot (RFC 5396).
func parseASN(s string) (uint32, error) {
	if hi, lo, ok := strings.Cut(s, "."); ok {
		h, err1 := strconv.ParseUint(hi, 10, 16)
		l, err2 := strconv.ParseUint(lo, 10, 16)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("AS number %q: want N or N.N", s)
		}
		return uint32(h)<<16 | uint32(l), nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("AS number %q: want 1 to 4294967295", s)
	}
	return uint32(n), nil
}

// ParseASN reads an AS number as --bgp-asn takes it (plain or asdot).
func ParseASN(s string) (uint32, error) { return parseASN(s) }
