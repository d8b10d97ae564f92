package babel

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTwoOfThree(t *testing.T) {
	for reach, want := range map[uint16]bool{
		0xE000: true, 0xC000: true, 0xA000: true, 0x6000: true,
		0x8000: false, 0x4000: false, 0x2000: false, 0x0000: false, 0x1FFF: false,
	} {
		require.Equal(t, want, twoOfThree(reach), "%04x", reach)
	}
	require.Equal(t, uint16(96), rxcostWired(0x6000, 0, 96))
	require.Equal(t, uint16(96), rxcostWired(0x8000, 0xC000, 96))
	require.Equal(t, uint16(Infinity), rxcostWired(0x9000, 0x1000, 96))
}

func TestHelloHistory(t *testing.T) {
	var h helloHistory
	iv := Centis(100) // 1 s
	now := time.Second
	h.received(10, iv, now)
	require.Equal(t, uint16(0x8000), h.reach)
	now += time.Second
	h.received(11, iv, now)
	require.Equal(t, uint16(0xC000), h.reach)
	// Seqno gap: 12 and 13 were lost.
	now += 3 * time.Second
	h.received(14, iv, now)
	require.Equal(t, uint16(0x8000|0xC000>>3), h.reach)

	// No Hello missed until 1.7 intervals have passed.
	require.False(t, h.expire(now+1690*time.Millisecond))
	require.True(t, h.expire(now+1700*time.Millisecond))
	require.Equal(t, uint16((0x8000|0xC000>>3)>>1), h.reach)
	require.Equal(t, uint16(15), h.seqno)
	// The next one is missed one interval later.
	require.False(t, h.expire(now+2600*time.Millisecond))
	require.True(t, h.expire(now+2700*time.Millisecond))

	// A seqno far in the past means a reboot.
	require.True(t, h.received(3, iv, now+3*time.Second))
	require.Equal(t, uint16(0x8000), h.reach)
}

func TestETX(t *testing.T) {
	require.Equal(t, uint16(256), rxcostETX(0xFFFF, 256, 0))
	// One loss out of the two newest Hellos raises the cost.
	require.Greater(t, rxcostETX(0x7FFF, 256, 0), uint16(256))
	require.Equal(t, uint16(Infinity), rxcostETX(0, 256, 0))
	require.Equal(t, uint16(96), combineETX(96, 96))
	require.Equal(t, uint16(512), combineETX(512, 256))
	require.Equal(t, uint16((512*384+128)>>8), combineETX(512, 384))
}

func TestRTTPenalty(t *testing.T) {
	c := DefaultTunnelRTT
	require.Equal(t, uint16(0), c.Penalty(10000))
	require.Equal(t, uint16(96*(65000-10000)/110000), c.Penalty(65000))
	require.Equal(t, uint16(96), c.Penalty(120000))
	require.Equal(t, uint16(96), c.Penalty(5000000))
	require.Equal(t, uint16(0), RTTConfig{}.Penalty(5000000))
	re6st := Re6stRTT
	require.Equal(t, uint16(5000*(255000-10000)/490000), re6st.Penalty(255000))
}

func TestRTTSmoothing(t *testing.T) {
	c := RTTConfig{Decay: 42}
	r := c.smooth(0, false, 1000)
	require.Equal(t, uint32(2000), r)
	// Decreasing: rounds down.
	require.Equal(t, uint32((42*1000+214*2000)/256), c.smooth(r, true, 1000))
	// Increasing: rounds up.
	require.Equal(t, uint32((42*3001+214*2000+255)/256), c.smooth(r, true, 3001))
}

func TestRTTSample(t *testing.T) {
	// Our Hello left at t1=1000 µs, the peer got it at its 50000 and
	// answered at 50300; we got the answer at 1900: RTT 600 µs.
	rtt, ok := rttSample(1000, 50000, 50300, 1900)
	require.True(t, ok)
	require.Equal(t, uint32(600), rtt)
	// Wrapping clocks.
	rtt, ok = rttSample(0xFFFFFF00, 10, 20, 0x100)
	require.True(t, ok)
	require.Equal(t, uint32(0x200-10), rtt)
	_, ok = rttSample(2000, 0, 0, 1000)
	require.False(t, ok)
}
