package nodeproto

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// RelayTimeout bounds how long a relayed request waits for the peer.
const RelayTimeout = 10 * time.Second

// maxRelayed bounds the relayed requests in flight.
const maxRelayed = 256

// ServeRelay serves the registry relay on conn (the daemon binds it to
// [::1]:326): a datagram "<binary prefix>\0<code><data>" from a loopback
// address, code 1, 4 or 5, is answered locally if the prefix is ours, else
// sent to that peer with the relay flag; the answer goes back to the
// sender as "<binary prefix>\0<code|0x80><answer>", as registry/relay
// expects. It returns nil once conn is closed.
func (n *Node) ServeRelay(conn net.PacketConn) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slots := make(chan struct{}, maxRelayed)
	buf := make([]byte, 1<<16)
	for {
		size, from, err := conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		n.stats.relayed.Add(1)
		udp, _ := from.(*net.UDPAddr)
		if udp == nil || !udp.IP.IsLoopback() {
			n.log.Debug().Stringer("from", from).Msg("node protocol: relay datagram not from loopback")
			n.stats.dropped[DropBadSource].Add(1)
			continue
		}
		bits, rest, ok := bytes.Cut(buf[:size], []byte{0})
		if !ok || len(rest) == 0 || !wire.ValidBits(string(bits)) {
			n.stats.dropped[DropShort].Add(1)
			continue
		}
		code := rest[0] &^ RelayFlag
		if code != CodeAddresses && code != CodeSoftware && code != CodeTopology {
			n.stats.dropped[DropUnknownCode].Add(1)
			continue
		}
		prefix := string(bits)
		if prefix == n.bits {
			if answer := n.answer(code, nil); answer != nil {
				conn.WriteTo(relayAnswer(prefix, code, answer), from)
			}
			continue
		}
		peer, err := PrefixOf(n.cfg.Network, prefix)
		if err != nil {
			n.stats.dropped[DropBadSource].Add(1)
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			n.stats.dropped[DropBusy].Add(1)
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			ctx, cancel := context.WithTimeout(ctx, RelayTimeout)
			defer cancel()
			relayed := code | RelayFlag
			answer, err := n.request(ctx, peer, netip.AddrPort{}, []byte{relayed}, keyOf(relayed))
			if err == nil {
				conn.WriteTo(relayAnswer(prefix, code, answer), from)
			}
		})
	}
}

func relayAnswer(prefix string, code byte, answer []byte) []byte {
	b := append([]byte(prefix), 0, code|RelayFlag)
	return append(b, answer...)
}
