package node

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
)

// ipv4Payload is the node's part of the network's IPv4 payload: its
// address, with the whole IPv4 network's prefix length, and its subnet.
type ipv4Payload struct {
	addr   netip.Prefix // on the overlay device: the connected route covers the IPv4 network
	subnet netip.Prefix // announced in Babel, delivered locally
}

// errNoIPv4 means the network carries no IPv4 payload.
var errNoIPv4 = errors.New("the network has no IPv4 payload")

// ipv4Of computes the node's IPv4 payload as re6st does: the registry's
// --ipv4 "NET/N S" gives each certificate's subject serial number k
// (0 ≤ k < 2^S, S ≤ 16) the subnet k of length N+S in NET, and the node
// the subnet's first host address (the subnet itself when it is a /31 or
// /32).
func ipv4Of(p *netparams.Params, serial int) (ipv4Payload, error) {
	if p.IPv4 == "" {
		return ipv4Payload{}, errNoIPv4
	}
	network, err := netip.ParsePrefix(p.IPv4)
	if err != nil || !network.Addr().Is4() {
		return ipv4Payload{}, fmt.Errorf("network parameter ipv4 %q is not an IPv4 network", p.IPv4)
	}
	network = network.Masked()
	bits := network.Bits() + p.IPv4Sublen
	if p.IPv4Sublen < 0 || p.IPv4Sublen > 16 || bits > 32 {
		return ipv4Payload{}, fmt.Errorf("network parameters ipv4 %s and ipv4_sublen %d do not fit", network, p.IPv4Sublen)
	}
	if serial < 0 || serial >= 1<<p.IPv4Sublen {
		return ipv4Payload{}, fmt.Errorf("certificate subject serial %d has no subnet among the %d of ipv4_sublen %d", serial, 1<<p.IPv4Sublen, p.IPv4Sublen)
	}
	base := network.Addr().As4()
	x := binary.BigEndian.Uint32(base[:])
	if bits > 0 {
		x |= uint32(serial) << (32 - bits)
	}
	subnet := netip.PrefixFrom(addr4(x), bits)
	host := x
	if bits < 31 {
		host |= 1
	}
	return ipv4Payload{addr: netip.PrefixFrom(addr4(host), network.Bits()), subnet: subnet}, nil
}

func addr4(x uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], x)
	return netip.AddrFrom4(b)
}

// setupIPv4 gives the node its IPv4 payload from the network parameters
// in force, at start and when they change: its address on the overlay
// device (loader.Datapath.SetIPv4), its subnet delivered locally and
// announced in Babel; a previous subnet is withdrawn from Babel and no
// longer delivered. Without an IPv4 payload, or with parameters that give
// this certificate none, IPv4 is off (re6st logs the same warning) and the
// address is removed (also one a previous run set).
func (n *Node) setupIPv4() error {
	serial, ok := ca.SubjectSerial(n.id.Cert)
	if !ok {
		serial = -1
	}
	v4, err := ipv4Of(n.params.get(), serial)
	if err != nil {
		if !errors.Is(err, errNoIPv4) {
			n.log.Warn().Err(err).Msg("IPv4 payload disabled")
		}
		v4 = ipv4Payload{}
	}
	_, old := n.payload.get()
	if old.subnet.IsValid() && old.subnet != v4.subnet {
		n.router.Withdraw(old.subnet, netip.Prefix{})
		if err := n.routes.DeleteLocal(old.subnet); err != nil {
			return err
		}
		n.log.Info().Stringer("subnet", old.subnet).Msg("IPv4 subnet withdrawn")
	}
	if err := n.dp.SetIPv4(v4.addr); err != nil {
		return err
	}
	n.payload.setIPv4(v4)
	if !v4.subnet.IsValid() {
		return nil
	}
	if err := n.routes.SetLocal(v4.subnet); err != nil {
		return err
	}
	if err := n.router.Export(v4.subnet, netip.Prefix{}, 0); err != nil {
		return err
	}
	n.log.Info().Stringer("address", v4.addr).Stringer("subnet", v4.subnet).Msg("IPv4 payload")
	return nil
}
