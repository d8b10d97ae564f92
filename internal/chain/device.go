package chain

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// UseDevice makes the layer-3 device ifname node i's tunnel id (a device
// tunnel) and routes through it every other node on the side of neighbour
// j (j = i-1 or i+1), in place of the encapsulated tunnel of that side.
// The returned attachment is the device program's: closing it detaches it.
func (c *Chain) UseDevice(i, j int, id uint32, ifname string, mtu int) (*loader.IngressAttachment, error) {
	return c.UseDeviceVia(i, j, id, ifname, mtu, netip.Addr{})
}

// UseDeviceVia is UseDevice with the neighbour's IPv6 address on a layer-2
// device ifname (invalid for a layer-3 one).
func (c *Chain) UseDeviceVia(i, j int, id uint32, ifname string, mtu int, nexthop netip.Addr) (*loader.IngressAttachment, error) {
	n := c.Nodes[i]
	ifindex, err := n.NS.Ifindex(ifname)
	if err != nil {
		return nil, err
	}
	att, err := n.Datapath.AttachDevice(ifname)
	if err != nil {
		return nil, err
	}
	if err := n.Datapath.AddTunnel(loader.Tunnel{ID: id, Type: loader.DEVICE, Ifindex: uint32(ifindex), MTU: uint16(mtu), NextHop: nexthop}); err != nil {
		att.Close()
		return nil, err
	}
	for k := range c.Nodes {
		if (j > i && k > i) || (j < i && k < i) {
			if err := n.Datapath.SetRoute(OverlayPrefix(k), netip.Prefix{}, loader.Nexthop{Tunnel: id}); err != nil {
				att.Close()
				return nil, err
			}
		}
	}
	return att, nil
}

// TCPTransfer sends size random bytes from src to addr (in dst) over TCP
// and checks that they arrive whole, within a minute.
func TCPTransfer(src, dst *netns.NS, addr netip.Addr, size int) error {
	var ln net.Listener
	if err := dst.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	}); err != nil {
		return err
	}
	defer ln.Close()
	got := make(chan [32]byte, 1)
	go func() {
		var sum [32]byte
		defer func() { got <- sum }()
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Minute))
		h := sha256.New()
		io.Copy(h, conn)
		copy(sum[:], h.Sum(nil))
	}()
	data := make([]byte, size)
	rand.Read(data)
	var conn net.Conn
	if err := src.Do(func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err = d.Dial("tcp", ln.Addr().String())
		return err
	}); err != nil {
		ln.Close()
		<-got
		return err
	}
	conn.SetDeadline(time.Now().Add(time.Minute))
	_, err := io.Copy(conn, bytes.NewReader(data))
	conn.Close()
	if err != nil {
		ln.Close()
		<-got
		return err
	}
	if sum := <-got; sum != sha256.Sum256(data) {
		return fmt.Errorf("TCP transfer of %d bytes to %s corrupted or cut short", size, addr)
	}
	return nil
}
