package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/rs/zerolog"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// Link is Babel's end of a tunnel (*babel.PointToPoint).
type Link interface {
	Deliver(src, dst netip.Addr, pkt []byte)
}

// Links finds the Babel link of the tunnel a packet came in on, as the
// data plane's endpoint map does: by remote address, encapsulation and
// GRE key.
type Links interface {
	ByEndpoint(remote netip.Addr, gre bool, key uint32) (Link, bool)
}

// NodeProtocol receives the node protocol (*nodeproto.Node).
type NodeProtocol interface {
	Receive(src netip.Addr, via netip.AddrPort, payload []byte)
	ServeRelay(conn net.PacketConn) error
}

// Tunnel is where Babel packets for a tunnel go.
type Tunnel struct {
	Remote netip.AddrPort // the peer's address and FOU port
	GRE    bool
	Key    uint32 // GRE key
}

// Drops count control packets the daemon discards.
type Drops struct {
	NotDatagram   uint64 `json:"dropped_not_datagram"`
	UnknownTunnel uint64 `json:"dropped_unknown_tunnel"`
	UnknownPort   uint64 `json:"dropped_unknown_port"`
}

// Conn holds the control-traffic endpoints:
//   - fou: UDP on the FOU port of the underlay. The data plane passes up,
//     still encapsulated, Babel from tunnel peers and anything from
//     addresses that are not endpoints yet (tunnel set-up); the daemon's
//     own control packets leave from it too, so that a NAT maps them with
//     the tunnel traffic.
//   - gre: a raw GRE socket, for Babel over GRE tunnels.
//   - overlay: the node protocol on the node address, over the overlay.
//   - relay: the registry's relay on [::1]:326.
type Conn struct {
	nodeAddr netip.Addr
	log      zerolog.Logger
	fou      *net.UDPConn
	gre      *net.IPConn
	overlay  *net.UDPConn
	relay    *net.UDPConn
	close    sync.Once

	notDatagram, unknownTunnel, unknownPort atomic.Uint64
}

// Open binds the sockets: fouPort on the underlay, the node protocol on
// nodeAddr (which need not be configured yet).
func Open(fouPort uint16, nodeAddr netip.Addr, log zerolog.Logger) (*Conn, error) {
	c := &Conn{nodeAddr: nodeAddr, log: log}
	var err error
	if c.fou, err = net.ListenUDP("udp4", &net.UDPAddr{Port: int(fouPort)}); err != nil {
		return nil, fmt.Errorf("FOU port %d: %w", fouPort, err)
	}
	if c.gre, err = net.ListenIP("ip4:gre", nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("GRE socket: %w", err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
		})
		return errors.Join(err, serr)
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp6", netip.AddrPortFrom(nodeAddr, nodeproto.Port).String())
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("node protocol on %s: %w", nodeAddr, err)
	}
	c.overlay = pc.(*net.UDPConn)
	if c.relay, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback, Port: nodeproto.Port}); err != nil {
		log.Warn().Err(err).Msg("registry relay disabled")
	}
	return c, nil
}

// Close closes the sockets, which ends Serve's readers.
func (c *Conn) Close() {
	c.close.Do(func() {
		if c.fou != nil {
			c.fou.Close()
		}
		if c.gre != nil {
			c.gre.Close()
		}
		if c.overlay != nil {
			c.overlay.Close()
		}
		if c.relay != nil {
			c.relay.Close()
		}
	})
}

// Serve reads the sockets until ctx ends, then closes them and returns
// once every reader has.
func (c *Conn) Serve(ctx context.Context, links Links, proto NodeProtocol) error {
	g := new(errgroup.Group)
	g.Go(func() error {
		c.readFOU(links, proto)
		return nil
	})
	g.Go(func() error {
		c.readGRE(links)
		return nil
	})
	g.Go(func() error {
		c.readOverlay(proto)
		return nil
	})
	if c.relay != nil {
		g.Go(func() error {
			if err := proto.ServeRelay(c.relay); err != nil && ctx.Err() == nil {
				c.log.Warn().Err(err).Msg("registry relay stopped")
			}
			return nil
		})
	}
	<-ctx.Done()
	c.Close()
	return g.Wait()
}

// Drops returns the counts of discarded packets.
func (c *Conn) Drops() Drops {
	return Drops{NotDatagram: c.notDatagram.Load(), UnknownTunnel: c.unknownTunnel.Load(), UnknownPort: c.unknownPort.Load()}
}

func (c *Conn) readFOU(links Links, proto NodeProtocol) {
	buf := make([]byte, 1<<16)
	for {
		nb, from, err := c.fou.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		via := netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		d, err := parseDatagram(buf[:nb])
		if err != nil {
			c.notDatagram.Add(1)
			continue
		}
		c.dispatch(d, func() (Link, bool) { return links.ByEndpoint(via.Addr(), false, 0) }, proto, via)
	}
}

func (c *Conn) readGRE(links Links) {
	buf := make([]byte, 1<<16)
	for {
		nb, from, err := c.gre.ReadFromIP(buf)
		if err != nil {
			return
		}
		g, err := parseGRE(buf[:nb])
		if err != nil {
			c.notDatagram.Add(1)
			continue
		}
		d, err := parseDatagram(g.Inner)
		if err != nil {
			c.notDatagram.Add(1)
			continue
		}
		src, _ := netip.AddrFromSlice(from.IP.To4())
		c.dispatch(d, func() (Link, bool) { return links.ByEndpoint(src, true, g.Key) }, nil, netip.AddrPort{})
	}
}

// dispatch hands a control datagram that came through the underlay to
// Babel (on the tunnel it came from) or to the node protocol (only from
// the FOU port: proto is nil for GRE).
func (c *Conn) dispatch(d datagram, linkOf func() (Link, bool), proto NodeProtocol, via netip.AddrPort) {
	switch d.DstPort {
	case babel.Port:
		l, ok := linkOf()
		if !ok {
			c.unknownTunnel.Add(1)
			return
		}
		l.Deliver(d.Src, d.Dst, append([]byte(nil), d.Payload...))
	case nodeproto.Port:
		if proto == nil {
			c.unknownPort.Add(1)
			return
		}
		proto.Receive(d.Src, via, append([]byte(nil), d.Payload...))
	default:
		c.unknownPort.Add(1)
	}
}

func (c *Conn) readOverlay(proto NodeProtocol) {
	buf := make([]byte, 1<<16)
	for {
		nb, from, err := c.overlay.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		proto.Receive(from.Addr(), netip.AddrPort{}, append([]byte(nil), buf[:nb]...))
	}
}

// directDst is the inner destination of node-protocol messages sent
// straight to a peer's endpoint: link-local, so that the peer's data plane
// passes it up even when a tunnel with us exists.
var directDst = netip.MustParseAddr("fe80::1")

// SendNodeProtocol is the node protocol's transport: straight to an
// underlay endpoint inside FOU (before a tunnel exists), or over the
// overlay.
func (c *Conn) SendNodeProtocol(dst netip.Addr, via netip.AddrPort, payload []byte) error {
	if !via.IsValid() {
		_, err := c.overlay.WriteToUDPAddrPort(payload, netip.AddrPortFrom(dst, nodeproto.Port))
		return err
	}
	d := datagram{Src: c.nodeAddr, Dst: directDst, SrcPort: nodeproto.Port, DstPort: nodeproto.Port, Payload: payload}
	_, err := c.fou.WriteToUDPAddrPort(d.marshal(), via)
	return err
}

// SendBabel sends one Babel packet from src to dst over tunnel t,
// encapsulated as the data plane would.
func (c *Conn) SendBabel(t Tunnel, src, dst netip.Addr, pkt []byte) error {
	d := datagram{Src: src, Dst: dst, SrcPort: babel.Port, DstPort: babel.Port, Payload: pkt}
	b := d.marshal()
	if t.GRE {
		_, err := c.gre.WriteToIP(marshalGRE(true, t.Key, b), &net.IPAddr{IP: t.Remote.Addr().AsSlice()})
		return err
	}
	_, err := c.fou.WriteToUDPAddrPort(b, t.Remote)
	return err
}
