package manager

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// Accept answers a peer's tunnel request (the node protocol's
// TunnelSetup): accepted while we have room and no tunnel with it. The
// tunnel's remote is where the request came from: behind a NAT that is
// the NAT's address and port, and our FOU packets must then leave from
// our FOU port for the NAT to map them back.
func (m *Manager) Accept(peer nodeproto.Peer, req nodeproto.TunnelRequest) nodeproto.TunnelReply {
	refuse := func(format string, a ...any) nodeproto.TunnelReply {
		m.log.Debug().Stringer("peer", peer.Prefix).Msgf("tunnel refused: "+format, a...)
		return nodeproto.TunnelReply{Reason: fmt.Sprintf(format, a...), Observed: peer.Via}
	}
	var ours []byte // our credential for the tunnel type, if it takes one
	accept := func(t Tunnel) nodeproto.TunnelReply {
		port, err := m.replyPort(t)
		if err != nil {
			return refuse("%v", err)
		}
		ep := t.Endpoint
		return nodeproto.TunnelReply{Accepted: true, Endpoint: netip.AddrPortFrom(ep.Local, port), Key: ep.Key, Observed: peer.Via, Binding: ours}
	}
	if !peer.Via.IsValid() {
		return refuse("tunnel requests must come from the endpoint")
	}
	if !m.cfg.Backend.Carries(req.Encap) || m.unannounced(req.Encap) {
		return refuse("encapsulation %q", req.Encap) // an unannounced type is never requested
	}
	nat, keyed := peer.Via != req.Endpoint, m.cfg.Backend.Keyed(req.Encap)
	if keyed && nat {
		return refuse("%s does not cross the NAT in front of %s", strings.ToUpper(req.Encap), req.Endpoint)
	}
	if keyed && req.Key == 0 {
		return refuse("%s tunnels need a key", strings.ToUpper(req.Encap))
	}
	if err := m.checkCredential(req.Encap, peer.Prefix, peer.Cert, req.Binding); err != nil {
		return refuse("%v", err)
	}
	var err error
	if ours, err = m.credential(req.Encap); err != nil {
		return refuse("%v", err)
	}
	var reply nodeproto.TunnelReply
	ran := m.do(func() {
		if e := m.tunnelTo(peer.Bits); e != nil && m.fallingBack(e, req.Encap) {
			m.close(e, "the peer falls back to "+req.Encap)
		}
		if e := m.tunnelTo(peer.Bits); e != nil && newCredential(e, req) {
			if !m.settled(e) {
				// Set-ups that crossed, or a key rotation between the
				// peer's request and its reply to ours: replacing would
				// leave each side with a tunnel the other dropped.
				reply = refuse("a tunnel with %s exists, made %s ago with another %s key", peer.Prefix,
					m.clock.Now().Sub(e.Created).Round(time.Millisecond), req.Encap)
				return
			}
			m.close(e, "the peer has a new "+req.Encap+" key")
		}
		if e := m.tunnelTo(peer.Bits); e != nil {
			if !e.Outgoing && e.Endpoint.Remote.Addr() == peer.Via.Addr() && e.Endpoint.Encap == req.Encap {
				reply = accept(e.Tunnel)
			} else {
				reply = refuse("a tunnel with %s exists", peer.Prefix)
			}
			return
		}
		if _, maxClients := m.cfg.Params.Counts(); m.incoming() >= maxClients {
			reply = refuse("no room: %d incoming tunnels", maxClients)
			return
		}
		local, err := m.cfg.Backend.LocalFor(peer.Via.Addr())
		if err != nil {
			reply = refuse("%v", err)
			return
		}
		t := Tunnel{Peer: peer.Prefix, Bits: peer.Bits, Endpoint: Endpoint{Encap: req.Encap, Local: local,
			Remote: peer.Via, NAT: nat, PeerCredential: string(req.Binding)}}
		if keyed {
			t.Endpoint.Key = req.Key
		}
		if peer.Cert != nil {
			t.Serial, _ = ca.SerialUint64(peer.Cert)
		}
		if t, err = m.open(t); err != nil {
			reply = refuse("%v", err)
			return
		}
		m.spawn(func() { m.cfg.Protocol.Gossip(peer.Prefix) })
		reply = accept(t)
	})
	if !ran {
		return refuse("%v", errStopped)
	}
	return reply
}

// incoming counts the incoming tunnels, the table's and the others.
func (m *Manager) incoming() int {
	c := m.otherIncoming()
	for _, e := range m.tunnels {
		if !e.Outgoing {
			c++
		}
	}
	return c
}

func (m *Manager) otherIncoming() int {
	if m.cfg.OtherIncoming == nil {
		return 0
	}
	return m.cfg.OtherIncoming()
}

// Kill is the peer draining the tunnel between us (the node protocol's
// TunnelKill): drain our side too, and say ready once no route of ours
// uses it; it goes a second later.
func (m *Manager) Kill(peer nodeproto.Peer) (ready bool) {
	m.do(func() {
		e := m.tunnelTo(peer.Bits)
		if e == nil {
			ready = true
			return
		}
		m.raiseCost(e)
		if m.routesVia(e.Interface()) > 0 {
			return
		}
		if e.closeAt.IsZero() {
			e.closeAt = m.clock.Now().Add(peerKillDelay)
		}
		ready = true
	})
	return ready
}

func (m *Manager) raiseCost(e *entry) {
	if !e.draining {
		e.draining = true
		m.cfg.Babel.SetDraining(e.Interface(), true)
	}
}

// startDrain begins removing a tunnel: raise its cost so that Babel moves
// every route it can elsewhere, wait until none uses it, have the peer do
// the same, then remove it. It gives up after 2 × timeout.
func (m *Manager) startDrain(e *entry, why string, now time.Time) {
	if e.draining {
		return
	}
	m.raiseCost(e)
	e.drain = &drain{why: why, deadline: now.Add(2 * m.timeout())}
}

// progress moves the drains on, each step.
func (m *Manager) progress(now time.Time) {
	for _, e := range m.tunnels {
		if !e.closeAt.IsZero() && !now.Before(e.closeAt) {
			m.close(e, "peer removed it")
			continue
		}
		d := e.drain
		if d == nil || d.asking {
			continue
		}
		if !d.routesGone {
			switch {
			case m.routesVia(e.Interface()) == 0:
				d.routesGone = true
			case now.After(d.deadline):
				m.log.Info().Uint32("tunnel", e.ID).Msg("drain aborted: routes still use the tunnel")
				m.cfg.Babel.SetDraining(e.Interface(), false)
				e.draining, e.drain = false, nil
				continue
			default:
				continue
			}
		}
		d.asking = true
		m.spawn(func() { m.askPeer(e, d) })
	}
}

// askPeer has the peer drain its side; the tunnel goes once it agrees,
// or at the deadline.
func (m *Manager) askPeer(e *entry, d *drain) {
	ctx, cancel := context.WithTimeout(m.ctx, setupTimeout)
	err := m.cfg.Protocol.KillTunnel(ctx, e.Peer)
	cancel()
	m.do(func() {
		d.asking = false
		if err == nil || !m.clock.Now().Before(d.deadline) {
			m.close(e, d.why)
		}
	})
}
