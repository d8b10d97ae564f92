package simnet

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
)

// Network is a set of simulated links sharing one Clock.
type Network struct {
	Clock    *Clock
	nextAddr uint64
	// BytesSent and Packets count the Babel packets sent on every link.
	BytesSent uint64
	Packets   uint64
	// PrefixBytes is the part of BytesSent that is about prefixes (see
	// babel.PrefixBytes); the rest does not depend on how many prefixes the
	// network carries.
	PrefixBytes uint64
}

// NewNetwork returns an empty network on clock.
func NewNetwork(clock *Clock) *Network { return &Network{Clock: clock} }

// Link is a simulated link between endpoints, each a babel.Transport.
// Multicast reaches every other endpoint, unicast the one with that address.
type Link struct {
	net   *Network
	ends  []*Endpoint
	Delay time.Duration
	up    bool
}

// Endpoint is one interface's attachment to a Link.
type Endpoint struct {
	link    *Link
	addr    netip.Addr
	receive babel.ReceiveFunc
	closed  bool
}

// NewLink returns a link, up, with the given one-way delay.
func (n *Network) NewLink(delay time.Duration) *Link {
	return &Link{net: n, Delay: delay, up: true}
}

// Attach adds an endpoint with a fresh link-local address.
func (l *Link) Attach() *Endpoint {
	l.net.nextAddr++
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	for i := range 8 {
		a[15-i] = byte(l.net.nextAddr >> (8 * i))
	}
	e := &Endpoint{link: l, addr: netip.AddrFrom16(a)}
	l.ends = append(l.ends, e)
	return e
}

// SetUp brings the link up or down; packets in flight on a link that goes
// down are lost.
func (l *Link) SetUp(up bool) { l.up = up }

// Up reports whether the link is up.
func (l *Link) Up() bool { return l.up }

// Ends returns the endpoints of the link.
func (l *Link) Ends() []*Endpoint { return l.ends }

// LocalAddr implements babel.Transport.
func (e *Endpoint) LocalAddr() netip.Addr { return e.addr }

// Start implements babel.Transport.
func (e *Endpoint) Start(receive babel.ReceiveFunc) error {
	if e.closed {
		return errors.New("simnet: endpoint closed")
	}
	e.receive = receive
	return nil
}

// Close implements babel.Transport.
func (e *Endpoint) Close() error {
	e.closed = true
	return nil
}

// Send implements babel.Transport: the packet is delivered after the
// link's delay to every matching endpoint, if the link is still up then.
func (e *Endpoint) Send(dst netip.Addr, pkt []byte) error {
	if e.closed {
		return fmt.Errorf("simnet: endpoint %s closed", e.addr)
	}
	l := e.link
	if !l.up {
		return nil
	}
	l.net.BytesSent += uint64(len(pkt))
	l.net.PrefixBytes += uint64(babel.PrefixBytes(pkt))
	l.net.Packets++
	for _, to := range l.ends {
		if to == e || (!dst.IsMulticast() && dst != to.addr) {
			continue
		}
		data := append([]byte(nil), pkt...)
		src := e.addr
		l.net.Clock.AfterFunc(l.Delay, func() {
			if l.up && !to.closed && to.receive != nil {
				to.receive(src, dst, data)
			}
		})
	}
	return nil
}
