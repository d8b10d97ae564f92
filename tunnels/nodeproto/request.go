package nodeproto

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// sendRequest sends payload to peer under its session if it is alive and
// returns nil. Otherwise it starts (or repeats, at most once per Retry) a
// handshake and returns a channel closed when a session key is installed.
func (n *Node) sendRequest(peer netip.Prefix, bits string, via netip.AddrPort, payload []byte) <-chan struct{} {
	now := n.now()
	n.mu.Lock()
	s := n.sessionFor(peer, bits)
	if s.alive(now) {
		frame := s.seal(payload)
		if s.awaiting.IsZero() {
			s.awaiting = now
		}
		n.mu.Unlock()
		n.send(NodeAddr(peer), via, frame)
		return nil
	}
	up := s.up
	var frame []byte
	if tick := time.Now(); s.lastHello.IsZero() || tick.Sub(s.lastHello) >= n.retry {
		s.lastHello = tick
		if s.cert != nil {
			frame = n.hello1(s)
		} else {
			frame = n.hello0
		}
	}
	n.mu.Unlock()
	if frame != nil {
		n.send(NodeAddr(peer), via, frame)
	}
	return up
}

// request sends payload to peer, retransmitting every Retry, until the
// answer keyed by key arrives or ctx ends.
func (n *Node) request(ctx context.Context, peer netip.Prefix, via netip.AddrPort, payload []byte, key func(netip.Prefix) waitKey) ([]byte, error) {
	peer, bits, err := n.checkPeer(peer)
	if err != nil {
		return nil, err
	}
	k := key(peer)
	answer := make(chan []byte, 1)
	n.mu.Lock()
	n.waiters[k] = append(n.waiters[k], answer)
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.waiters[k] = slices.DeleteFunc(n.waiters[k], func(ch chan []byte) bool { return ch == answer })
		if len(n.waiters[k]) == 0 {
			delete(n.waiters, k)
		}
		n.mu.Unlock()
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		up := n.sendRequest(peer, bits, via, payload)
		timer.Reset(n.retry)
		select {
		case data := <-answer:
			return data, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-up: // nil when the request went out
		case <-timer.C:
		}
	}
}

func keyOf(c byte) func(netip.Prefix) waitKey {
	return func(p netip.Prefix) waitKey { return waitKey{p, c, 0} }
}

// AskAddresses asks a peer for its addresses (code 1) over the overlay. A
// peer without addresses only acknowledges, so the call then ends with ctx.
func (n *Node) AskAddresses(ctx context.Context, peer netip.Prefix) ([]Address, error) {
	data, err := n.request(ctx, peer, netip.AddrPort{}, []byte{CodeAddresses}, keyOf(CodeAddresses))
	if err != nil {
		return nil, err
	}
	return ParseAddresses(string(data))
}

// SetupTunnel asks a peer for a tunnel (code 8, answered by code 9). With a
// valid via the request, and the handshake if needed, go directly to that
// underlay endpoint; otherwise over the overlay.
func (n *Node) SetupTunnel(ctx context.Context, peer netip.Prefix, via netip.AddrPort, req TunnelRequest) (TunnelReply, error) {
	var buf [4]byte
	rand.Read(buf[:])
	id := binary.BigEndian.Uint32(buf[:])
	body, err := req.marshal(id)
	if err != nil {
		return TunnelReply{}, err
	}
	data, err := n.request(ctx, peer, via, append([]byte{CodeTunnelSetup}, body...),
		func(p netip.Prefix) waitKey { return waitKey{p, CodeTunnelReply, id} })
	if err != nil {
		return TunnelReply{}, err
	}
	_, reply, err := parseTunnelReply(data) // checked by dispatch
	return reply, err
}

// SendKeyBinding sends a peer our newer WireGuard key binding (code 10),
// repeating it every Retry, directly to the underlay endpoint via (an
// invalid via: over the overlay, which may run through the very tunnel
// whose key changed), and returns once the peer took it, or with the
// reason it gave for refusing it (code 11).
func (n *Node) SendKeyBinding(ctx context.Context, peer netip.Prefix, via netip.AddrPort, binding []byte) error {
	data, err := n.request(ctx, peer, via, append([]byte{CodeKeyBinding}, binding...), keyOf(CodeKeyBindingAck))
	if err != nil {
		return err
	}
	if len(data) > 0 {
		return fmt.Errorf("nodeproto: %s refused the key binding: %s", peer, data)
	}
	return nil
}

// KillTunnel asks a peer to tear down our tunnel (code 2), repeating the
// request every Retry, and returns when the peer is ready (code 3).
func (n *Node) KillTunnel(ctx context.Context, peer netip.Prefix) error {
	_, err := n.request(ctx, peer, netip.AddrPort{}, []byte{CodeKill}, keyOf(CodeKillReady))
	return err
}

// Gossip sends our network version to a peer (code 0), best effort. Without
// a session it starts a handshake, which ends with a version exchange.
func (n *Node) Gossip(peer netip.Prefix) {
	peer, bits, err := n.checkPeer(peer)
	if err != nil {
		return
	}
	n.sendRequest(peer, bits, netip.AddrPort{}, append([]byte{CodeVersion}, n.cfg.Handler.Version()...))
}
