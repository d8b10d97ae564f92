package server

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A client with many addresses cannot grow a keyed limiter without bound.
func TestKeyedLimiterIsBounded(t *testing.T) {
	k := newKeyedLimiter(Rate{Every: time.Hour, Burst: 2})
	now := time.Now()
	for i := range maxLimitedSources + 1000 {
		source := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		ok, _ := k.allow(source, now)
		require.True(t, ok)
		require.LessOrEqual(t, len(k.buckets), maxLimitedSources)
	}
	// A source is still limited when the limiter is full.
	last := netip.MustParseAddr("192.0.2.1")
	k.allow(last, now)
	k.allow(last, now)
	ok, wait := k.allow(last, now)
	require.False(t, ok)
	require.Equal(t, time.Hour, wait.Round(time.Minute))
	// IPv6 sources are /64s.
	k.allow(netip.MustParseAddr("2001:db8::1"), now)
	k.allow(netip.MustParseAddr("2001:db8::2"), now)
	ok, _ = k.allow(netip.MustParseAddr("2001:db8::ffff:3"), now)
	require.False(t, ok, "the same /64")
	ok, _ = k.allow(netip.MustParseAddr("2001:db8:0:1::1"), now)
	require.True(t, ok, "another /64")
}
