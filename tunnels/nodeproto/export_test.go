package nodeproto

import (
	"fmt"
	"net/netip"
)

// SendPayload sends an arbitrary payload to peer under its session (or
// starts a handshake), for tests of codes the API does not send.
func (n *Node) SendPayload(peer netip.Prefix, payload []byte) {
	p, bits, err := n.checkPeer(peer)
	if err != nil {
		panic(err)
	}
	n.sendRequest(p, bits, netip.AddrPort{}, payload)
}

// State summarises what Receive may change: the sessions (with their
// certificate, keys, seqnos and timers), the secret floors and the waiters.
func (n *Node) State() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	sessions := map[string]string{}
	for p, s := range n.sessions {
		sessions[p.String()] = fmt.Sprint(s.cert != nil, s.key, s.pending, s.recv, s.send,
			s.awaiting, s.lastHello, s.lastAnswer, s.tunnelID)
	}
	return fmt.Sprint(sessions, n.floors, len(n.waiters))
}
