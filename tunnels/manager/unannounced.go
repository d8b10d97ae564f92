package manager

import (
	"context"
	"errors"
	"net/netip"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// Unannounced is implemented by a Backend whose tunnels of some types need
// no set-up exchange over the node protocol: the peer runs a server for
// them that accepts any client the network's CA certified (OpenVPN, as
// re6st runs it), and the requester connects straight to the address the
// peer advertises. Such a tunnel crosses a path that drops the node
// protocol's UDP; the server's side has no entry in its table (the server
// is one device for all its clients, outside the manager).
type Unannounced interface {
	// Unannounced: tunnels of encap are made without a set-up exchange.
	Unannounced(encap string) bool
}

func (m *Manager) unannounced(encap string) bool {
	u, ok := m.cfg.Backend.(Unannounced)
	return ok && u.Unannounced(encap)
}

// openUnannounced opens an outgoing tunnel of an unannounced type to the
// peer's advertised address a; the backend's client authenticates the
// peer (its certificate's name must be the peer's prefix).
func (m *Manager) openUnannounced(bits string, prefix netip.Prefix, local netip.Addr, a nodeproto.Address) error {
	t := Tunnel{Peer: prefix, Bits: bits, Outgoing: true,
		Endpoint: Endpoint{Encap: a.Proto, Local: local, Remote: netip.AddrPortFrom(a.IP, a.Port), PeerBits: bits}}
	err := errStopped
	m.do(func() {
		if _, err = m.open(t); err == nil {
			m.lastRefresh = m.clock.Now()
		}
	})
	return err
}

// noteSetupFailure remembers a path (pathOf) whose set-up got no answer
// from the peer (a firewall drops the node protocol's UDP on the path):
// the next set-ups try the others first, until the failure is a refresh
// period old.
func (m *Manager) noteSetupFailure(bits, path string, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		m.do(func() { m.choiceOf(bits).failed[path] = m.clock.Now() })
	}
}
