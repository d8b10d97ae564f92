package babel

import "time"

// The link-cost functions below reproduce babeld 1.12's integer arithmetic
// (neighbour.c and message.c) so that mixed networks agree on metrics.

// helloHistory is the reachability of one neighbour for one kind of Hello
// (multicast or unicast): a 16-bit shift register, newest Hello in the top bit.
type helloHistory struct {
	reach    uint16
	seqno    uint16
	interval Centis        // last advertised non-zero interval
	time     time.Duration // when the history was last advanced
}

// received records a Hello. It returns true when the history was reset
// because the neighbour's seqno jumped backwards (a reboot).
func (h *helloHistory) received(seqno uint16, interval Centis, now time.Duration) (reset bool) {
	missed := 0
	if h.reach != 0 {
		missed = seqnoMinus(seqno, h.seqno) - 1
		switch {
		case missed < -8:
			h.reach, missed, reset = 0, 0, true
		case missed < 0:
			// A late Hello, delayed by buffering on the path.
			h.reach <<= uint(-missed)
			missed = 0
		}
	}
	if interval != 0 {
		h.time, h.interval = now, interval
	}
	if missed > 0 {
		h.reach >>= uint(min(missed, 16))
	}
	h.seqno = seqno
	h.reach = h.reach>>1 | 0x8000
	return reset
}

// expire infers Hellos that did not arrive: one is counted missing 1.7
// intervals after the last one, then one per interval.
func (h *helloHistory) expire(now time.Duration) (changed bool) {
	if h.reach == 0 {
		return false
	}
	var missed int
	if h.interval > 0 {
		iv := h.interval.Duration()
		missed = int((now - h.time - iv*7/10) / iv)
		if now-h.time < iv*7/10 {
			missed = 0
		}
	} else {
		missed = 16
	}
	if missed <= 0 {
		return false
	}
	if h.interval > 0 {
		h.time += time.Duration(missed) * h.interval.Duration()
	}
	h.reach >>= uint(min(missed, 16))
	h.seqno += uint16(missed)
	return true
}

// twoOfThree is babeld's two_three(): at least 2 of the 3 newest Hellos.
func twoOfThree(reach uint16) bool {
	return reach&0xC000 == 0xC000 || reach&0xA000 == 0xA000 || reach&0x6000 == 0x6000
}

// rxcostWired is the 2-out-of-3 receive cost (wired and tunnel links).
func rxcostWired(reach, ureach uint16, nominal uint16) uint16 {
	if twoOfThree(reach) || twoOfThree(ureach) {
		return nominal
	}
	return Infinity
}

// rxcostETX is the ETX-style receive cost of wireless links; delay is the
// time since the last Hello.
func rxcostETX(reach uint16, nominal uint16, delay time.Duration) uint16 {
	sreach := int(reach&0x8000)>>2 + int(reach&0x4000)>>1 + int(reach&0x3FFF)
	cost := 0x8000 * int(nominal) / (sreach + 1)
	if ms := int(delay / time.Millisecond); ms >= 40000 {
		cost = (cost*(ms-20000) + 10000) / 20000
	}
	return uint16(min(cost, Infinity))
}

// combineETX combines tx and rx costs of a wireless link into ETX × 256.
func combineETX(tx, rx uint16) uint16 {
	if tx < 256 && rx < 256 {
		return tx
	}
	a, b := max(int(tx), 256), max(int(rx), 256)
	return uint16(min((a*b+128)>>8, Infinity))
}

// RTTConfig is the delay-based part of the link cost (RFC 9616), with
// babeld's parameters.
type RTTConfig struct {
	// Min is the RTT below which no penalty applies (babeld rtt-min).
	Min time.Duration
	// Max is the RTT at and above which the full penalty applies (rtt-max).
	Max time.Duration
	// MaxPenalty is the penalty added at Max (max-rtt-penalty); 0 disables
	// the RTT metric.
	MaxPenalty uint16
	// Decay is the weight of a new sample in the exponential average, out
	// of 256 (rtt-decay, 1..256).
	Decay int
}

// Babeld's defaults for tunnels and re6st's network-wide setting.
var (
	DefaultTunnelRTT = RTTConfig{Min: 10 * time.Millisecond, Max: 120 * time.Millisecond, MaxPenalty: 96, Decay: 42}
	Re6stRTT         = RTTConfig{Min: 10 * time.Millisecond, Max: 500 * time.Millisecond, MaxPenalty: 5000, Decay: 125}
)

// Penalty is babeld's neighbour_rttcost() for a smoothed RTT in microseconds.
func (c RTTConfig) Penalty(rttUs uint32) uint16 {
	minUs, maxUs := uint64(c.Min/time.Microsecond), uint64(c.Max/time.Microsecond)
	rtt := uint64(rttUs)
	switch {
	case c.MaxPenalty == 0 || rtt <= minUs:
		return 0
	case rtt <= maxUs && maxUs > minUs:
		return uint16(uint64(c.MaxPenalty) * (rtt - minUs) / (maxUs - minUs))
	default:
		return c.MaxPenalty
	}
}

// smoothRTT folds a sample (µs) into the running average. The first sample
// counts double, to be conservative with new neighbours; later ones round
// towards the sample.
func (c RTTConfig) smooth(old uint32, haveOld bool, sample uint32) uint32 {
	if !haveOld {
		return 2 * sample
	}
	s := uint64(c.Decay)*uint64(sample) + uint64(256-c.Decay)*uint64(old)
	if old >= sample {
		return uint32(s / 256)
	}
	return uint32((s + 255) / 256)
}

// rttSample computes an RTT sample in µs from the four RFC 9616 timestamps
// (t1: our Hello sent, t2: peer received it, t3: peer's Hello sent, t4: we
// received it), all modulo 2^32. ok is false when a waiting time is negative
// or longer than 600 s.
func rttSample(t1, t2, t3, t4 uint32) (rtt uint32, ok bool) {
	remote := int64(int32(t3 - t2))
	local := int64(int32(t4 - t1))
	const limit = 600 * 1000 * 1000
	if remote < 0 || local < 0 || remote > limit || local > limit {
		return 0, false
	}
	return uint32(max(0, local-remote)), true
}
