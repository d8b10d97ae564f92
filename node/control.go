package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"golang.org/x/sys/unix"
)

// sockets are the daemon's control-traffic endpoints:
//   - fou: UDP on the FOU port of the underlay. The data plane passes up,
//     still encapsulated, Babel from tunnel peers and anything from
//     addresses that are not endpoints yet (tunnel setup); the daemon's own
//     control packets leave from it too, so that a NAT maps them with the
//     tunnel traffic.
//   - gre: a raw GRE socket, for Babel over GRE tunnels.
//   - overlay: the node protocol on the node address, over the overlay.
//   - relay: the registry's relay on [::1]:326.
type sockets struct {
	fou     *net.UDPConn
	gre     *net.IPConn
	overlay *net.UDPConn
	relay   *net.UDPConn
}

// dropCounters count control packets the daemon discards.
type dropCounters struct {
	notDatagram, unknownTunnel, unknownPort atomic.Uint64
}

func (n *Node) openSockets() (*sockets, error) {
	s := &sockets{}
	var err error
	if s.fou, err = net.ListenUDP("udp4", &net.UDPAddr{Port: int(n.cfg.FOUPort)}); err != nil {
		return nil, fmt.Errorf("FOU port %d: %w", n.cfg.FOUPort, err)
	}
	if s.gre, err = net.ListenIP("ip4:gre", nil); err != nil {
		s.close()
		return nil, fmt.Errorf("GRE socket: %w", err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp6", netip.AddrPortFrom(n.id.addr, nodeproto.Port).String())
	if err != nil {
		s.close()
		return nil, fmt.Errorf("node protocol on %s: %w", n.id.addr, err)
	}
	s.overlay = pc.(*net.UDPConn)
	if s.relay, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback, Port: nodeproto.Port}); err != nil {
		n.log.Warn().Err(err).Msg("registry relay disabled")
	}
	return s, nil
}

func (s *sockets) close() {
	if s.fou != nil {
		s.fou.Close()
	}
	if s.gre != nil {
		s.gre.Close()
	}
	if s.overlay != nil {
		s.overlay.Close()
	}
	if s.relay != nil {
		s.relay.Close()
	}
}

// serve starts one reader per socket.
func (s *sockets) serve(n *Node) {
	go n.readFOU()
	go n.readGRE()
	go n.readOverlay()
	if s.relay != nil {
		go func() {
			if err := n.proto.ServeRelay(s.relay); err != nil && n.ctx.Err() == nil {
				n.log.Warn().Err(err).Msg("registry relay stopped")
			}
		}()
	}
}

func (n *Node) readFOU() {
	buf := make([]byte, 1<<16)
	for {
		nb, from, err := n.socks.fou.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		via := netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		d, err := parseDatagram(buf[:nb])
		if err != nil {
			n.drops.notDatagram.Add(1)
			continue
		}
		n.dispatch(d, func() *tunnel { return n.tunnelByEndpoint(via.Addr(), false, 0) }, via)
	}
}

func (n *Node) readGRE() {
	buf := make([]byte, 1<<16)
	for {
		nb, from, err := n.socks.gre.ReadFromIP(buf)
		if err != nil {
			return
		}
		g, err := parseGRE(buf[:nb])
		if err != nil {
			n.drops.notDatagram.Add(1)
			continue
		}
		d, err := parseDatagram(g.Inner)
		if err != nil {
			n.drops.notDatagram.Add(1)
			continue
		}
		src, _ := netip.AddrFromSlice(from.IP.To4())
		n.dispatch(d, func() *tunnel { return n.tunnelByEndpoint(src, true, g.Key) }, netip.AddrPort{})
	}
}

// dispatch hands a control datagram that came through the underlay to
// Babel (on the tunnel it came from) or to the node protocol.
func (n *Node) dispatch(d datagram, tunnelOf func() *tunnel, via netip.AddrPort) {
	switch d.DstPort {
	case babel.Port:
		t := tunnelOf()
		if t == nil {
			n.drops.unknownTunnel.Add(1)
			return
		}
		t.link.Deliver(d.Src, d.Dst, append([]byte(nil), d.Payload...))
	case nodeproto.Port:
		if !via.IsValid() {
			n.drops.unknownPort.Add(1)
			return
		}
		n.proto.Receive(d.Src, via, append([]byte(nil), d.Payload...))
	default:
		n.drops.unknownPort.Add(1)
	}
}

func (n *Node) readOverlay() {
	buf := make([]byte, 1<<16)
	for {
		nb, from, err := n.socks.overlay.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		n.proto.Receive(from.Addr(), netip.AddrPort{}, append([]byte(nil), buf[:nb]...))
	}
}

// directDst is the inner destination of node-protocol messages sent
// straight to a peer's endpoint: link-local, so that the peer's data plane
// passes it up even when a tunnel with us exists.
var directDst = netip.MustParseAddr("fe80::1")

// sendControl is the node protocol's transport: straight to an underlay
// endpoint inside FOU (before a tunnel exists), or over the overlay.
func (n *Node) sendControl(dst netip.Addr, via netip.AddrPort, payload []byte) error {
	if !via.IsValid() {
		_, err := n.socks.overlay.WriteToUDPAddrPort(payload, netip.AddrPortFrom(dst, nodeproto.Port))
		return err
	}
	d := datagram{Src: n.id.addr, Dst: directDst, SrcPort: nodeproto.Port, DstPort: nodeproto.Port, Payload: payload}
	_, err := n.socks.fou.WriteToUDPAddrPort(d.marshal(), via)
	return err
}

// sendBabel sends one Babel packet over tunnel t, encapsulated as the
// data plane would.
func (n *Node) sendBabel(t *tunnel, dst netip.Addr, pkt []byte) error {
	d := datagram{Src: t.link.LocalAddr(), Dst: dst, SrcPort: babel.Port, DstPort: babel.Port, Payload: pkt}
	b := d.marshal()
	lt := t.lt
	if lt.Type == loader.GRE {
		_, err := n.socks.gre.WriteToIP(marshalGRE(lt.HasKey, lt.Key, b), &net.IPAddr{IP: lt.Remote.AsSlice()})
		return err
	}
	_, err := n.socks.fou.WriteToUDPAddrPort(b, netip.AddrPortFrom(lt.Remote, lt.Port))
	return err
}
