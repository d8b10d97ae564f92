package babel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNoLinkLocal is returned by ListenUDP for an interface without an IPv6
// link-local address (yet: it appears once the link is up).
var ErrNoLinkLocal = errors.New("no IPv6 link-local address (is the link up, with IPv6 enabled?)")

// UDPTransport speaks Babel on a real interface: UDP port 6696, multicast
// group ff02::1:6, link-local addresses. Its socket is bound to the
// interface, so several transports coexist in one process.
type UDPTransport struct {
	ifname  string
	ifindex int
	local   netip.Addr
	conn    *net.UDPConn
	wg      sync.WaitGroup
}

// ListenUDP opens the Babel socket of interface ifname, which must have an
// IPv6 link-local address.
func ListenUDP(ifname string) (*UDPTransport, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("babel: interface %s: %w", ifname, err)
	}
	local, err := linkLocalOf(ifi)
	if err != nil {
		return nil, err
	}
	var sockErr error
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		err := c.Control(func(fd uintptr) {
			sockErr = errors.Join(
				unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1),
				unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname),
			)
		})
		return errors.Join(err, sockErr)
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp6", fmt.Sprintf("[::]:%d", Port))
	if err != nil {
		return nil, fmt.Errorf("babel: %s: %w", ifname, err)
	}
	conn := pc.(*net.UDPConn)
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	err = raw.Control(func(fd uintptr) {
		mreq := &unix.IPv6Mreq{Interface: uint32(ifi.Index)}
		copy(mreq.Multiaddr[:], MulticastGroup.AsSlice())
		sockErr = errors.Join(
			unix.SetsockoptIPv6Mreq(int(fd), unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq),
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index),
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 1),
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0),
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, 1),
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1),
			unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0xc0),
		)
	})
	if err = errors.Join(err, sockErr); err != nil {
		conn.Close()
		return nil, fmt.Errorf("babel: %s: socket options: %w", ifname, err)
	}
	return &UDPTransport{ifname: ifname, ifindex: ifi.Index, local: local, conn: conn}, nil
}

func linkLocalOf(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("babel: %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && ip.Is6() && ip.IsLinkLocalUnicast() {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("babel: %s: %w", ifi.Name, ErrNoLinkLocal)
}

// LocalAddr implements Transport.
func (u *UDPTransport) LocalAddr() netip.Addr { return u.local }

// Start implements Transport: a goroutine reads the socket until Close.
func (u *UDPTransport) Start(receive ReceiveFunc) error {
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		buf := make([]byte, 65536)
		oob := make([]byte, 256)
		for {
			n, oobn, _, from, err := u.conn.ReadMsgUDPAddrPort(buf, oob)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			dst, ok := pktinfoDst(oob[:oobn])
			if !ok {
				continue
			}
			receive(from.Addr().WithZone(""), dst, buf[:n])
		}
	}()
	return nil
}

// pktinfoDst extracts the destination address from IPV6_PKTINFO.
func pktinfoDst(oob []byte) (netip.Addr, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 16 {
			return netip.AddrFrom16([16]byte(m.Data[:16])), true
		}
	}
	return netip.Addr{}, false
}

// Send implements Transport.
func (u *UDPTransport) Send(dst netip.Addr, pkt []byte) error {
	_, err := u.conn.WriteToUDPAddrPort(pkt, netip.AddrPortFrom(dst.WithZone(u.ifname), Port))
	return err
}

// Close implements Transport.
func (u *UDPTransport) Close() error {
	err := u.conn.Close()
	u.wg.Wait()
	return err
}
