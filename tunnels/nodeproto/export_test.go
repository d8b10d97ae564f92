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
	var s []any
	for p, session := range n.sessions {
		s = append(s, p, session.cert != nil, session.key, session.pending, session.recv, session.send,
			session.awaiting, session.lastHello, session.lastAnswer, session.tunnelID)
	}
	return fmt.Sprint(s, n.floors, len(n.waiters))
}
