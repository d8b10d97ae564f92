package bgp

import (
	"fmt"
	"hash/fnv"
	"net/netip"
)

// LargeCommunity is a BGP large community (RFC 8092):
// global administrator:local data 1:local data 2.
type LargeCommunity struct {
	Global, Data1, Data2 uint32
}

func (c LargeCommunity) String() string { return fmt.Sprintf("%d:%d:%d", c.Global, c.Data1, c.Data2) }

// NetworkID names a re6st network in 32 bits: FNV-1a of the network
// prefix's 16 address bytes and its length.
func NetworkID(network netip.Prefix) uint32 {
	h := fnv.New32a()
	a := network.Masked().Addr().As16()
	h.Write(a[:])
	h.Write([]byte{byte(network.Bits())})
	return h.Sum32()
}

// Tag is the large community a gateway of AS asn puts on what it announces
// for network: asn:NetworkID(network):community, where community is the
// announced prefix's community bits as a number (0 for the network
// aggregate itself).
func Tag(asn uint32, network, announced netip.Prefix) LargeCommunity {
	return LargeCommunity{Global: asn, Data1: NetworkID(network), Data2: CommunityNumber(network, announced)}
}

// CommunityNumber is the value of the bits of prefix that follow network's
// (at most 32 of them), with a leading 1 so that communities of different
// lengths differ ("0" is 0b10, "1" is 0b11, "01" is 0b101); 0 when prefix
// is the network itself or not inside it.
func CommunityNumber(network, prefix netip.Prefix) uint32 {
	n := prefix.Bits() - network.Bits()
	if n <= 0 || n > 31 || !network.Contains(prefix.Addr()) {
		return 0
	}
	a := prefix.Addr().As16()
	v := uint32(1)
	for i := network.Bits(); i < prefix.Bits(); i++ {
		v = v<<1 | uint32(a[i/8]>>(7-i%8)&1)
	}
	return v
}
