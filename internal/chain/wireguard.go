package chain

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/rs/zerolog"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/tunnels/wireguard"
)

// WireGuardTunnel is the data plane's id of the WireGuard tunnel of link i
// (a link's ends both use it), WireGuardName its device's name.
func WireGuardTunnel(i int) uint32 { return uint32(10 + i) }
func WireGuardName(i int) string   { return fmt.Sprintf("wg%d", i) }

// WireGuardLink is a WireGuard tunnel between nodes i and i+1: a device in
// each namespace, each the other's one peer, used by both data planes as
// a device tunnel in place of the link's encapsulated one.
type WireGuardLink struct {
	Left, Right *wireguard.Device
	closers     []func() error
}

// WireGuardLink replaces the tunnel between nodes i and i+1 by a WireGuard
// device tunnel (wireguard-go), of the MTU a node gives it: its WireGuard
// packets fill the underlay's MTU, which is the overlay's plus FOU's 28
// bytes. Close removes the devices and their programs.
func (c *Chain) WireGuardLink(i int) (_ *WireGuardLink, err error) {
	l := &WireGuardLink{}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	mtu := wireguard.MTUOver(c.Nodes[i].Datapath.State.MTU + loader.FOU.Overhead(false))
	devs := make([]*wireguard.Device, 2)
	for side := range devs {
		n := c.Nodes[i+side]
		priv, err := wireguard.GenerateKey()
		if err != nil {
			return nil, err
		}
		d, err := wireguard.New(wireguard.Config{Name: WireGuardName(i), PrivateKey: priv, MTU: mtu, Enter: n.NS.Do, Logger: zerolog.Nop()})
		if err != nil {
			return nil, err
		}
		l.closers = append(l.closers, d.Close)
		devs[side] = d
	}
	l.Left, l.Right = devs[0], devs[1]
	// One end makes the first handshake, as a node's tunnel set-up does:
	// the right end knows the left's key first and learns its endpoint
	// from the handshake. Two initiations that cross each replace their
	// sender's own handshake, so that neither response is taken, and both
	// ends retry 5 s later, where they can cross again (a link took 15 s
	// to come up so).
	if err := l.Right.SetPeer(l.Left.PublicKey(), netip.AddrPort{}); err != nil {
		return nil, err
	}
	if err := l.Left.SetPeer(l.Right.PublicKey(), netip.AddrPortFrom(LinkV4(i, 2), l.Right.Port())); err != nil {
		return nil, err
	}
	for _, ends := range [][2]int{{i, i + 1}, {i + 1, i}} {
		att, err := c.UseDevice(ends[0], ends[1], WireGuardTunnel(i), WireGuardName(i), mtu)
		if err != nil {
			return nil, err
		}
		l.closers = append(l.closers, att.Close)
	}
	return l, nil
}

// Close detaches the device programs and removes the devices.
func (l *WireGuardLink) Close() error {
	var errs []error
	for i := len(l.closers) - 1; i >= 0; i-- {
		errs = append(errs, l.closers[i]())
	}
	l.closers = nil
	return errors.Join(errs...)
}
