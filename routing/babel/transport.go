package babel

import (
	"errors"
	"net/netip"
	"sync"
)

// ReceiveFunc hands a packet received on an interface to the Router. src is
// the sender's link-local address, dst the address the packet was sent to
// (MulticastGroup or our own link-local address). pkt may be reused once the
// call returns.
type ReceiveFunc func(src, dst netip.Addr, pkt []byte)

// Transport carries Babel packets for one interface.
type Transport interface {
	// LocalAddr is our link-local address on the link.
	LocalAddr() netip.Addr
	// Start begins delivering received packets to receive.
	Start(receive ReceiveFunc) error
	// Send transmits pkt to dst (MulticastGroup or a neighbour's address).
	// It must not call back into the Router and must not keep pkt.
	Send(dst netip.Addr, pkt []byte) error
	// Close stops the transport; no packet is delivered after it returns.
	Close() error
}

// PointToPoint is a Transport for a link with exactly one peer, such as a
// tunnel, whose packets are moved by someone else: the tunnel manager calls
// Deliver for every Babel packet that arrives through the tunnel, and
// PointToPoint calls the send function for every packet to go out (multicast
// and unicast alike reach the single peer).
type PointToPoint struct {
	local netip.Addr
	send  func(dst netip.Addr, pkt []byte) error

	mu      sync.Mutex
	receive ReceiveFunc
	closed  bool
}

// NewPointToPoint returns a transport whose link-local address is local and
// which hands outgoing packets to send.
func NewPointToPoint(local netip.Addr, send func(dst netip.Addr, pkt []byte) error) *PointToPoint {
	return &PointToPoint{local: local, send: send}
}

// LocalAddr implements Transport.
func (p *PointToPoint) LocalAddr() netip.Addr { return p.local }

// Start implements Transport.
func (p *PointToPoint) Start(receive ReceiveFunc) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("babel: transport closed")
	}
	p.receive = receive
	return nil
}

// Send implements Transport.
func (p *PointToPoint) Send(dst netip.Addr, pkt []byte) error { return p.send(dst, pkt) }

// Deliver hands a packet received from the peer to the Router. It must not
// be called from within the send function.
func (p *PointToPoint) Deliver(src, dst netip.Addr, pkt []byte) {
	p.mu.Lock()
	receive := p.receive
	if p.closed {
		receive = nil
	}
	p.mu.Unlock()
	if receive != nil {
		receive(src, dst, pkt)
	}
}

// Close implements Transport.
func (p *PointToPoint) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}
