package babel

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPrefixBytes(t *testing.T) {
	packet := func(msgs ...Message) []byte {
		e := NewEncoder(0)
		for _, m := range msgs {
			require.NoError(t, e.Append(m))
		}
		return append([]byte(nil), e.Bytes()...)
	}
	hello := Hello{Seqno: 1, Interval: 400}
	ihu := IHU{Rxcost: 96, Interval: 1200}
	update := func(i int) Update {
		return Update{Prefix: netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, byte(i)}), 40), RouterID: RouterID{0, 0, 0, 0, 0, 0, 0, byte(i + 1)}, Interval: 1600, Metric: 96}
	}
	neighbourly := packet(hello, ihu)
	require.Zero(t, PrefixBytes(neighbourly))
	updates := packet(update(1), update(2))
	require.Equal(t, len(updates), PrefixBytes(updates), "header included")
	both := packet(hello, ihu, update(1), update(2))
	require.Equal(t, len(both)-len(neighbourly), PrefixBytes(both), "header counted with the Hello")
	require.Equal(t, len(updates)-4, PrefixBytes(both))
	wildcard := packet(RouteRequest{})
	require.Zero(t, PrefixBytes(wildcard))
	require.Equal(t, len(updates)+len(wildcard)-8, PrefixBytes(packet(RouteRequest{}, update(1), update(2))))
	require.Zero(t, PrefixBytes(updates[:len(updates)-1]), "truncated")
	require.Zero(t, PrefixBytes(updates[:3]))
}
