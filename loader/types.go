package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// BabelPort is the UDP port whose tunnel packets the data plane passes up to
// the daemon still encapsulated (enum control_port in bpf/include/types.h).
const BabelPort = uint16(datapathControlPortCONTROL_PORT_BABEL)

// TunnelType is the encapsulation of a tunnel.
type TunnelType uint8

const (
	FOU TunnelType = TunnelType(datapathTunnelTypeTUNNEL_FOU)
	GRE TunnelType = TunnelType(datapathTunnelTypeTUNNEL_GRE)
	// DEVICE is a network device: a layer-3 one (TUN, WireGuard), to
	// which the data plane redirects the inner packet, or a layer-2 one
	// (an OpenVPN TAP) with the neighbour's IPv6 next hop (Tunnel.NextHop),
	// to which it sends the packet with the kernel's neighbour resolution;
	// it routes what comes out of the device.
	DEVICE TunnelType = TunnelType(datapathTunnelTypeTUNNEL_DEVICE)
)

// ParseTunnelType accepts "fou", "gre" or "device".
func ParseTunnelType(s string) (TunnelType, error) {
	switch strings.ToLower(s) {
	case "fou":
		return FOU, nil
	case "gre":
		return GRE, nil
	case "device":
		return DEVICE, nil
	}
	return 0, fmt.Errorf("unknown tunnel type %q (want fou, gre or device)", s)
}

func (t TunnelType) String() string {
	switch t {
	case FOU:
		return "fou"
	case GRE:
		return "gre"
	case DEVICE:
		return "device"
	}
	return fmt.Sprintf("type%d", uint8(t))
}

// MarshalText makes tunnel types readable in JSON.
func (t TunnelType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// Overhead is the number of outer header bytes the encapsulation adds (a
// device's own overhead is in its MTU).
func (t TunnelType) Overhead(withKey bool) int {
	if t == DEVICE {
		return 0
	}
	if t == FOU || withKey {
		return 28
	}
	return 24
}

// Tunnel is one tunnel endpoint as the data plane sees it.
type Tunnel struct {
	ID     uint32     `json:"id"`
	Type   TunnelType `json:"type"`
	Local  netip.Addr `json:"local"`
	Remote netip.Addr `json:"remote"`
	Port   uint16     `json:"port,omitempty"` // FOU destination port
	Key    uint32     `json:"key,omitempty"`  // GRE key, when HasKey
	HasKey bool       `json:"has_key,omitempty"`
	// FixedSourcePort sends FOU from our FOU port instead of a per-flow
	// port, so that a NAT in front of either end keeps one mapping.
	FixedSourcePort bool   `json:"fixed_source_port,omitempty"`
	MTU             uint16 `json:"mtu"`
	// Ifindex is the underlay interface towards Remote; for a DEVICE
	// tunnel, the device itself.
	Ifindex uint32 `json:"ifindex"`
	// NextHop is the IPv4 neighbour on Ifindex the tunnel's packets go to:
	// Remote itself, or the gateway the kernel routes Remote through. For
	// a DEVICE tunnel on a layer-2 device, the neighbour's IPv6 address on
	// it (link-local: the next hop of Babel's routes through it); invalid
	// for a layer-3 device.
	NextHop netip.Addr `json:"next_hop"`
}

// Validate checks the fields that do not depend on the system.
func (t *Tunnel) Validate() error {
	if t.ID == 0 {
		return errors.New("tunnel id 0 is reserved")
	}
	if t.Type != FOU && t.Type != GRE && t.Type != DEVICE {
		return fmt.Errorf("tunnel %d: unknown type", t.ID)
	}
	if t.Type == DEVICE {
		return t.validateDevice()
	}
	if !t.Local.Is4() || !t.Remote.Is4() {
		return fmt.Errorf("tunnel %d: local and remote must be IPv4 addresses", t.ID)
	}
	if t.Type == FOU && t.Port == 0 {
		return fmt.Errorf("tunnel %d: a FOU tunnel needs a port", t.ID)
	}
	if t.Type == GRE && t.FixedSourcePort {
		return fmt.Errorf("tunnel %d: only FOU tunnels have a source port", t.ID)
	}
	if t.Type == FOU && t.HasKey {
		return fmt.Errorf("tunnel %d: only GRE tunnels have a key", t.ID)
	}
	if t.MTU < 1280 {
		return fmt.Errorf("tunnel %d: MTU %d is below the IPv6 minimum of 1280", t.ID, t.MTU)
	}
	return nil
}

func (t *Tunnel) value() datapathTunnel {
	if t.Type == DEVICE {
		v := datapathTunnel{Ifindex: t.Ifindex, Mtu: t.MTU, Type: uint8(DEVICE)}
		if t.NextHop.IsValid() {
			v.Flags = uint8(datapathTunnelFlagsTUNNEL_F_NEIGH)
		}
		return v
	}
	v := datapathTunnel{
		Local:   be32(t.Local),
		Remote:  be32(t.Remote),
		Ifindex: t.Ifindex,
		Nexthop: be32(t.NextHop),
		Port:    htons(t.Port),
		Mtu:     t.MTU,
		Type:    uint8(t.Type),
	}
	if t.HasKey {
		v.Flags = uint8(datapathTunnelFlagsTUNNEL_F_KEY)
		v.Key = htonl(t.Key)
	}
	if t.FixedSourcePort {
		v.Flags |= uint8(datapathTunnelFlagsTUNNEL_F_FIXED_SPORT)
	}
	return v
}

func tunnelFromValue(id uint32, v *datapathTunnel) Tunnel {
	if TunnelType(v.Type) == DEVICE {
		return Tunnel{ID: id, Type: DEVICE, MTU: v.Mtu, Ifindex: v.Ifindex}
	}
	t := Tunnel{
		ID:      id,
		Type:    TunnelType(v.Type),
		Local:   addrFromBE32(v.Local),
		Remote:  addrFromBE32(v.Remote),
		Port:    ntohs(v.Port),
		MTU:     v.Mtu,
		Ifindex: v.Ifindex,
		NextHop: addrFromBE32(v.Nexthop),
	}
	if v.Flags&uint8(datapathTunnelFlagsTUNNEL_F_KEY) != 0 {
		t.HasKey, t.Key = true, ntohl(v.Key)
	}
	t.FixedSourcePort = v.Flags&uint8(datapathTunnelFlagsTUNNEL_F_FIXED_SPORT) != 0
	return t
}

func (t *Tunnel) endpoint() datapathEndpointKey {
	k := datapathEndpointKey{Remote: be32(t.Remote), Type: uint8(t.Type)}
	if t.HasKey {
		k.Key = htonl(t.Key)
	}
	return k
}

// Nexthop is where a route sends packets.
type Nexthop struct {
	Tunnel uint32 `json:"tunnel,omitempty"`
	Local  bool   `json:"local,omitempty"` // deliver to this node's overlay device
	Class  uint8  `json:"class,omitempty"` // traffic class
}

// Route is one entry of the route maps. Src is ::/0 except for
// source-specific default routes (Dst ::/0), and 0.0.0.0/0 for IPv4 routes.
type Route struct {
	Dst netip.Prefix `json:"dst"`
	Src netip.Prefix `json:"src"`
	Nexthop
}

func routeKey(p netip.Prefix) datapathRouteKey {
	return datapathRouteKey{Prefixlen: uint32(p.Bits()), Addr: p.Addr().As16()}
}

func prefixFromKey(k *datapathRouteKey) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16(k.Addr), int(k.Prefixlen))
}

func (nh Nexthop) value() datapathRoute {
	v := datapathRoute{Tunnel: nh.Tunnel, Class: nh.Class}
	if nh.Local {
		v.Flags = uint8(datapathRouteFlagsROUTE_F_LOCAL)
		v.Tunnel = 0
	}
	return v
}

func nexthopFromValue(v *datapathRoute) Nexthop {
	if v.Flags&uint8(datapathRouteFlagsROUTE_F_LOCAL) != 0 {
		return Nexthop{Local: true, Class: v.Class}
	}
	return Nexthop{Tunnel: v.Tunnel, Class: v.Class}
}

// The BPF side keeps addresses, ports and keys in network byte order inside
// fields that Go reads as native (little-endian) integers.
func be32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.NativeEndian.Uint32(b[:])
}

func addrFromBE32(v uint32) netip.Addr {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

func ntohs(v uint16) uint16 { return htons(v) }

func htonl(v uint32) uint32 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return binary.NativeEndian.Uint32(b[:])
}

func ntohl(v uint32) uint32 { return htonl(v) }

// UnmarshalText reads what MarshalText writes.
func (t *TunnelType) UnmarshalText(b []byte) error {
	v, err := ParseTunnelType(string(b))
	*t = v
	return err
}
