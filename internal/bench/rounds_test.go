package bench

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestReasonsMoved(t *testing.T) {
	before := []map[string]uint64{{"transit": 5, "decap": 1}, {"transit": 0, "drop-no-route": 2}, {"decap": 7}}
	after := []map[string]uint64{{"transit": 305, "decap": 1}, {"transit": 0, "drop-no-route": 300002}, {"decap": 7}}
	require.Equal(t, "node 0: transit +300; node 1: drop-no-route +300000", reasonsMoved(before, after))
	require.Equal(t, "none", reasonsMoved(before, before))
}

func TestPingSummary(t *testing.T) {
	out := "PING 2001:db8:4::1 56 data bytes\n\n--- 2001:db8:4::1 ping statistics ---\n3 packets transmitted, 0 received, 100% packet loss, time 116ms\n"
	require.Equal(t, "3 packets transmitted, 0 received, 100% packet loss, time 116ms", pingSummary(out, errors.New("exit status 1")))
	require.Equal(t, "no such file", pingSummary("", errors.New("no such file")))
}

func TestOneLine(t *testing.T) {
	require.Equal(t, "a b c", oneLine("a\n\n b \t c\n"))
}

func TestVariantsFor(t *testing.T) {
	names := func(vs []Variant) []string {
		var out []string
		for _, v := range vs {
			out = append(out, v.Name)
		}
		return out
	}
	require.Equal(t, []string{"plain", "fou-tc", "fou-xdp", "gre-tc", "gre-xdp", "fou-tc-ipv4", "fou-xdp-ipv4", "openvpn-udp", "openvpn-tcp",
		"wireguard-tc", "openvpn-udp-aes", "openvpn-tcp-aes"}, names(variantsFor(1)))
	three := names(variantsFor(3))
	require.Equal(t, Reference, three[0], "the reference first")
	require.Contains(t, three, "fou/gre+key/gre-tc")
	require.Contains(t, three, "fou/gre/fou-xdp")
	require.Contains(t, three, "fou-tc-ipv4")
	require.Len(t, three, 16)
	require.Equal(t, []string{"fou-xdp", "gre-xdp"}, mixed("xdp", fou, greKey, gre).comparedWith())
	wg := Variants[slices.IndexFunc(Variants, func(v Variant) bool { return v.Name == "wireguard-tc" })]
	require.False(t, generates(wg, 3), "no generator frame for an encrypted link")
	require.False(t, hasTransit(wg, 3))
	ipv4 := Variants[slices.IndexFunc(Variants, func(v Variant) bool { return v.Name == "fou-xdp-ipv4" })]
	require.Equal(t, []string{"fou-xdp"}, ipv4.comparedWith(), "an IPv4 variant is compared with its IPv6 one")
}

func TestWaitFor(t *testing.T) {
	calls := 0
	require.True(t, waitFor(time.Second, func() bool { calls++; return calls == 3 }))
	require.Equal(t, 3, calls)
	start := time.Now()
	require.False(t, waitFor(50*time.Millisecond, func() bool { return false }))
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
}

func TestRotation(t *testing.T) {
	require.Equal(t, []int{0, 1, 2}, rotation(3, 0))
	require.Equal(t, []int{1, 2, 0}, rotation(3, 1))
	require.Equal(t, []int{2, 0, 1}, rotation(3, 2))
	require.Equal(t, []int{0, 1, 2}, rotation(3, 3), "back to the start after n rounds")
	first := map[int]bool{}
	for r := range 5 {
		first[rotation(5, r)[0]] = true
	}
	require.Len(t, first, 5, "over n rounds every variant comes first once")
}

func TestLossPercent(t *testing.T) {
	require.InDelta(t, 25.0, lossPercent(400, 300), 1e-9)
	require.InDelta(t, 100.0, lossPercent(300000, 0), 1e-9)
	require.Equal(t, 0.0, lossPercent(300000, 300000))
	require.Equal(t, 0.0, lossPercent(300000, 300002), "frames the sink counted besides the generator's are no negative loss")
}
