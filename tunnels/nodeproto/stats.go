package nodeproto

import (
	"fmt"
	"sync/atomic"
)

// Reason is why a datagram was dropped.
type Reason uint8

// Drop reasons.
const (
	DropBadSource      Reason = iota // source outside the network, our own prefix, or relay datagram not from loopback
	DropShort                        // too short for its frame
	DropBadCert                      // certificate unparsable, expired or without a prefix
	DropWrongCA                      // certificate not signed by our CA
	DropRevoked                      // certificate revoked (its session is forgotten)
	DropPrefixMismatch               // source address outside the certificate's prefix
	DropOldProtocol                  // handshake from a protocol older than MinProtocol
	DropNoSession                    // message or hello from a peer we have no certificate or key for
	DropBadSignature                 // hello signature or encryption does not verify
	DropStaleSecret                  // hello secret not newer than the current one
	DropBadMAC                       // message MAC does not verify
	DropReplay                       // message seqno not greater than the last accepted
	DropUnknownCode                  // authenticated message with a code we do not handle
	DropBadPayload                   // authenticated message whose body does not parse
	DropRateLimited                  // handshake answer suppressed (at most one per peer per Retry/2)
	DropBusy                         // relay request refused: too many in flight
	numReasons
)

var reasonNames = [numReasons]string{
	"bad_source", "short", "bad_cert", "wrong_ca", "revoked", "prefix_mismatch", "old_protocol",
	"no_session", "bad_signature", "stale_secret", "bad_mac", "replay", "unknown_code",
	"bad_payload", "rate_limited", "busy",
}

func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// MarshalText makes Reason a JSON map key.
func (r Reason) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a reason name, so that status JSON reads back.
func (r *Reason) UnmarshalText(b []byte) error {
	for i, name := range reasonNames {
		if name == string(b) {
			*r = Reason(i)
			return nil
		}
	}
	return fmt.Errorf("unknown drop reason %q", b)
}

// Stats are the counters of a Node.
type Stats struct {
	Received   uint64            `json:"received"`    // datagrams given to Receive
	Accepted   uint64            `json:"accepted"`    // authenticated messages accepted
	Relayed    uint64            `json:"relayed"`     // datagrams read by ServeRelay
	Sent       uint64            `json:"sent"`        // datagrams given to Send
	SendErrors uint64            `json:"send_errors"` // of which Send failed
	Handshakes uint64            `json:"handshakes"`  // hellos accepted: one per handshake, on the side receiving it
	Dropped    map[Reason]uint64 `json:"dropped"`     // by reason, only non-zero ones
	Sessions   int               `json:"sessions"`    // peers with a session key
}

type counters struct {
	received, accepted, relayed, sent, sendErrors, handshakes atomic.Uint64
	dropped                                                   [numReasons]atomic.Uint64
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Received:   c.received.Load(),
		Accepted:   c.accepted.Load(),
		Relayed:    c.relayed.Load(),
		Sent:       c.sent.Load(),
		SendErrors: c.sendErrors.Load(),
		Handshakes: c.handshakes.Load(),
		Dropped:    map[Reason]uint64{},
	}
	for r := range numReasons {
		if v := c.dropped[r].Load(); v != 0 {
			s.Dropped[r] = v
		}
	}
	return s
}
