package manager

import (
	"context"
	"crypto/x509"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/re6st-bpf/re6st-bpf/tunnels/peercache"
)

// Endpoint is where a tunnel goes, in the node protocol's terms.
type Endpoint struct {
	Encap  string         `json:"encap"` // a name the backend carries: nodeproto.ProtoFOU, nodeproto.ProtoGRE
	Local  netip.Addr     `json:"local"`
	Remote netip.AddrPort `json:"remote"`        // the peer's port: FOU's destination
	Key    uint32         `json:"key,omitempty"` // GRE key
	// NAT: a NAT stands between the ends, so FOU must leave from our FOU
	// port for the NAT to keep one mapping.
	NAT bool `json:"nat,omitempty"`
	// PeerCredential is the peer's key material for types that need it
	// (see Credentials), as it sent it.
	PeerCredential string `json:"peer_credential,omitempty"`
	// DevicePort is, on the requester's side of a tunnel whose type has a
	// UDP port of its own (see DevicePorts), the peer's port for it, from
	// its set-up reply; 0 on the server's side, where the requester's
	// device makes the first handshake.
	DevicePort uint16 `json:"device_port,omitempty"`
	// PeerBits is, for a tunnel of an unannounced type (see Unannounced),
	// the peer's prefix bits: its backend authenticates the peer itself
	// (the name of the certificate the peer's server presents).
	PeerBits string `json:"peer_bits,omitempty"`
}

// Tunnel is one tunnel of the table.
type Tunnel struct {
	ID       uint32       `json:"id"`
	Peer     netip.Prefix `json:"peer"`
	Bits     string       `json:"bits"`
	Serial   uint64       `json:"serial,omitempty"` // peer certificate, for the CRL
	Outgoing bool         `json:"outgoing"`
	Created  time.Time    `json:"created"`
	Endpoint Endpoint     `json:"endpoint"`
}

// Interface is the name of the tunnel's Babel interface.
func (t Tunnel) Interface() string { return "t" + strconv.FormatUint(uint64(t.ID), 10) }

// IDOf is the tunnel id of a Babel interface name, 0 if not a tunnel's.
func IDOf(ifname string) uint32 {
	id, err := strconv.ParseUint(strings.TrimPrefix(ifname, "t"), 10, 32)
	if !strings.HasPrefix(ifname, "t") || err != nil {
		return 0
	}
	return uint32(id)
}

// Info is a tunnel as status shows it.
type Info struct {
	Tunnel
	Draining bool
}

// Backend carries tunnels: the BPF encapsulation today; device tunnels
// (OpenVPN, WireGuard) would be others. The manager knows encapsulations
// only by name and by what the backend says of them.
type Backend interface {
	// Carries reports whether the backend makes tunnels of encap.
	Carries(encap string) bool
	// Keyed: tunnels of encap are told apart by a key the requester
	// proposes (GRE); the peer must not be behind a NAT.
	Keyed(encap string) bool
	// LocalFor is our underlay address towards remote.
	LocalFor(remote netip.Addr) (netip.Addr, error)
	// Add creates tunnel id.
	Add(id uint32, ep Endpoint) error
	// Remove deletes tunnel id and whatever still forwards into it.
	Remove(id uint32) error
	// List returns the tunnels the backend has, as a previous run left them.
	List() (map[uint32]Endpoint, error)
}

// Route is a route Babel selected.
type Route struct {
	Prefix, Source netip.Prefix
	Interface      string
	Refmetric      uint16
}

// Babel is the routing protocol's side of tunnels.
type Babel interface {
	// Attach runs Babel over the tunnel, on interface t.Interface().
	Attach(t Tunnel) error
	// Detach removes the tunnel's Babel interface.
	Detach(t Tunnel) error
	// SetDraining raises (or restores) the cost of an interface, so that
	// Babel moves routes elsewhere.
	SetDraining(ifname string, draining bool)
	// Routes returns the selected routes.
	Routes() []Route
	// LANPrefixes returns the prefixes that neighbours on a LAN (not a
	// tunnel) announce as their own, whether selected or not.
	LANPrefixes() []netip.Prefix
	// Usable returns the interfaces with a neighbour of finite cost.
	Usable() map[string]bool
}

// Protocol is the node protocol (*nodeproto.Node).
type Protocol interface {
	AskAddresses(ctx context.Context, peer netip.Prefix) ([]nodeproto.Address, error)
	SetupTunnel(ctx context.Context, peer netip.Prefix, via netip.AddrPort, req nodeproto.TunnelRequest) (nodeproto.TunnelReply, error)
	KillTunnel(ctx context.Context, peer netip.Prefix) error
	PeerCertificate(peer netip.Prefix) *x509.Certificate
	Gossip(peer netip.Prefix)
	Forget(peer netip.Prefix)
}

// PeerCache is the peer cache (*peercache.Cache).
type PeerCache interface {
	Get(bits string) (string, bool)
	Put(bits, addresses string) error
	Random(n int, untriedOnly bool, skip func(bits string) bool) ([]peercache.Entry, error)
	MarkTried(bits string)
	MarkWorked(bits string)
	Remove(bits string) error
}

// Registry gives a bootstrap peer.
type Registry interface {
	BootstrapPeer(ctx context.Context) (bits, addresses string, ok bool, err error)
}

// Params are the network parameters, read at each use.
type Params interface {
	Hello() time.Duration
	RefreshPeriod() time.Duration
	Revoked(serial uint64) bool
	// SelfRevoked: our own certificate is revoked.
	SelfRevoked() bool
	// Counts are the outgoing tunnels to keep and the incoming ones to accept.
	Counts() (clientCount, maxClients int)
}
