package relay

import (
	"bytes"
	"context"
	"net"
	"time"
)

// Codes of the node protocol that the registry relays.
const (
	CodeAddress  byte = 1
	CodeVersion  byte = 4
	CodeTopology byte = 5
)

// Relay sends queries to the local node.
type Relay struct {
	Address string        // UDP address of the local node, e.g. "[::1]:326"
	Timeout time.Duration // how long to wait for answers
}

// Query sends code to every prefix and returns the answers that arrived
// before the timeout, by prefix. Answers for prefixes not asked are
// ignored.
func (r *Relay) Query(ctx context.Context, prefixes []string, code byte) (map[string][]byte, error) {
	conn, err := net.Dial("udp", r.Address)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	pending := map[string]bool{}
	for _, prefix := range prefixes {
		pending[prefix] = true
		if _, err := conn.Write(append([]byte(prefix+"\x00"), code)); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(r.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetReadDeadline(deadline)
	answers := map[string][]byte{}
	buf := make([]byte, 65536)
	for len(pending) > 0 {
		n, err := conn.Read(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				break
			}
			// ICMP port unreachable: no node listens; nothing will come.
			break
		}
		prefix, rest, ok := bytes.Cut(buf[:n], []byte{0})
		if !ok || len(rest) == 0 || rest[0]&0x7f != code || !pending[string(prefix)] {
			continue
		}
		answers[string(prefix)] = append([]byte(nil), rest[1:]...)
		delete(pending, string(prefix))
	}
	return answers, nil
}
