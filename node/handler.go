package node

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// protoHandler answers the node protocol's requests.
type protoHandler Node

func (h *protoHandler) node() *Node { return (*Node)(h) }

func (h *protoHandler) Version() []byte { return h.node().params().SignedVersion }

func (h *protoHandler) NewerVersion(_ nodeproto.Peer, signed []byte) { h.node().newerVersion(signed) }

func (h *protoHandler) Addresses() []nodeproto.Address { return h.node().advertised() }

func (h *protoHandler) Topology() string {
	n := h.node()
	var out, in []string
	for _, t := range n.tunnelList() {
		if t.Outgoing {
			out = append(out, wire.CommonName(t.Bits))
		} else {
			in = append(in, wire.CommonName(t.Bits))
		}
	}
	return strings.Join(append([]string{fmt.Sprint(len(out))}, append(out, in...)...), " ")
}

// TunnelSetup accepts a peer's tunnel while we have room and no tunnel
// with it. The tunnel's remote is where the request came from: behind a
// NAT that is the NAT's address and port, and our FOU packets must then
// leave from our FOU port for the NAT to map them back.
func (h *protoHandler) TunnelSetup(peer nodeproto.Peer, req nodeproto.TunnelRequest) nodeproto.TunnelReply {
	n := h.node()
	refuse := func(format string, a ...any) nodeproto.TunnelReply {
		n.log.Debug().Stringer("peer", peer.Prefix).Msgf("tunnel refused: "+format, a...)
		return nodeproto.TunnelReply{Reason: fmt.Sprintf(format, a...), Observed: peer.Via}
	}
	if !peer.Via.IsValid() {
		return refuse("tunnel requests must come from the endpoint")
	}
	typ, err := loader.ParseTunnelType(req.Encap)
	if err != nil {
		return refuse("encapsulation %q", req.Encap)
	}
	nat := peer.Via != req.Endpoint
	if typ == loader.GRE && nat {
		return refuse("GRE does not cross the NAT in front of %s", req.Endpoint)
	}
	if typ == loader.GRE && req.Key == 0 {
		return refuse("GRE tunnels need a key")
	}
	if t := n.tunnelTo(peer.Bits); t != nil {
		if !t.Outgoing && t.lt.Remote == peer.Via.Addr() && t.lt.Type == typ {
			return nodeproto.TunnelReply{Accepted: true, Endpoint: netip.AddrPortFrom(t.lt.Local, n.cfg.FOUPort), Key: t.lt.Key, Observed: peer.Via}
		}
		return refuse("a tunnel with %s exists", peer.Prefix)
	}
	if n.incoming() >= n.maxClients {
		return refuse("no room: %d incoming tunnels", n.maxClients)
	}
	local, err := localFor(peer.Via.Addr())
	if err != nil {
		return refuse("%v", err)
	}
	t := &tunnel{Peer: peer.Prefix, Bits: peer.Bits, lt: loader.Tunnel{Type: typ, Local: local,
		Remote: peer.Via.Addr(), FixedSourcePort: nat && typ == loader.FOU}}
	if typ == loader.FOU {
		t.lt.Port = peer.Via.Port()
	} else {
		t.lt.HasKey, t.lt.Key = true, req.Key
	}
	if peer.Cert != nil {
		t.Serial, _ = ca.SerialUint64(peer.Cert)
	}
	if err := n.openTunnel(t); err != nil {
		return refuse("%v", err)
	}
	go n.proto.Gossip(peer.Prefix)
	return nodeproto.TunnelReply{Accepted: true, Endpoint: netip.AddrPortFrom(local, n.cfg.FOUPort), Key: t.lt.Key, Observed: peer.Via}
}

// TunnelKill is the peer draining the tunnel between us: drain our side
// too, and say ready once no route of ours uses it (then remove it).
func (h *protoHandler) TunnelKill(peer nodeproto.Peer) bool {
	n := h.node()
	t := n.tunnelTo(peer.Bits)
	if t == nil {
		return true
	}
	n.mu.Lock()
	first := !t.draining
	t.draining = true
	n.mu.Unlock()
	if first {
		n.router.SetCostMultiplier(t.ifname(), netip.Addr{}, drainMultiplier)
	}
	if n.routesVia(t.ifname()) > 0 {
		return false
	}
	time.AfterFunc(time.Second, func() { n.closeTunnel(t, "peer removed it") })
	return true
}

func (n *Node) incoming() int {
	c := 0
	for _, t := range n.tunnelList() {
		if !t.Outgoing {
			c++
		}
	}
	return c
}
