package babel

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"time"
)

// Protocol constants (RFC 8966 §4).
const (
	// Port is the UDP port Babel speaks on.
	Port = 6696
	// Infinity is the metric of an unreachable route; an Update carrying it
	// is a retraction.
	Infinity = 0xFFFF

	magic   = 42
	version = 2
	// headerLen is the length of the packet header: magic, version, body length.
	headerLen = 4
)

// MulticastGroup is the link-local multicast group Babel speaks on.
var MulticastGroup = netip.MustParseAddr("ff02::1:6")

// TLV types.
const (
	tlvPad1             = 0
	tlvPadN             = 1
	tlvAckRequest       = 2
	tlvAck              = 3
	tlvHello            = 4
	tlvIHU              = 5
	tlvRouterID         = 6
	tlvNextHop          = 7
	tlvUpdate           = 8
	tlvRouteRequest     = 9
	tlvSeqnoRequest     = 10
	tlvMAC              = 16
	tlvPC               = 17
	tlvChallengeRequest = 18
	tlvChallengeReply   = 19
)

// Sub-TLV types.
const (
	subPad1         = 0
	subPadN         = 1
	subTimestamp    = 3
	subSourcePrefix = 128
	subMandatory    = 0x80
)

// Address encodings.
const (
	aeWildcard  = 0
	aeIPv4      = 1
	aeIPv6      = 2
	aeLinkLocal = 3
	// aeV4viaV6 is an IPv4 prefix whose next hop is an IPv6 address (RFC
	// 9229): the IPv6 Next Hop in effect, or the packet's source. It
	// shares AE 1's prefix compression state, as babeld does.
	aeV4viaV6 = 4
)

const (
	helloFlagUnicast   = 0x8000
	updateFlagDefault  = 0x80
	updateFlagRouterID = 0x40
	maxNonceLen        = 192
	maxPCIndexLen      = 32
)

// Centis is a protocol interval in centiseconds, as carried on the wire.
type Centis uint16

// Duration converts the interval to a time.Duration.
func (c Centis) Duration() time.Duration { return time.Duration(c) * 10 * time.Millisecond }

// CentisOf converts d to centiseconds, saturating at the largest value the
// wire can carry (655.35 s).
func CentisOf(d time.Duration) Centis {
	c := d / (10 * time.Millisecond)
	if c > 0xFFFF {
		return 0xFFFF
	}
	if c < 0 {
		return 0
	}
	return Centis(c)
}

// RouterID identifies a Babel router. All-zeros and all-ones are invalid.
type RouterID [8]byte

// Valid reports whether id may be used as a router-id.
func (id RouterID) Valid() bool {
	return id != RouterID{} && id != RouterID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
}

// String formats id the way babeld does (colon-separated hex octets).
func (id RouterID) String() string {
	b := make([]byte, 0, 23)
	for i, x := range id {
		if i > 0 {
			b = append(b, ':')
		}
		b = hex.AppendEncode(b, []byte{x})
	}
	return string(b)
}

// ParseRouterID parses 16 hex digits, optionally separated by colons.
func ParseRouterID(s string) (RouterID, error) {
	var clean []byte
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			clean = append(clean, s[i])
		}
	}
	var id RouterID
	if len(clean) != 16 {
		return id, fmt.Errorf("router-id %q: want 8 octets in hex", s)
	}
	if _, err := hex.Decode(id[:], clean); err != nil {
		return id, fmt.Errorf("router-id %q: %w", s, err)
	}
	if !id.Valid() {
		return id, fmt.Errorf("router-id %q: all-zeros and all-ones are reserved", s)
	}
	return id, nil
}

// Message is one TLV of a packet body, decoded. Router-Id and Next Hop TLVs
// are not messages: the parser folds them into the Updates that follow, and
// the Encoder emits them when an Update needs them.
type Message interface {
	tlvType() uint8
}

// Pad1 is a one-octet padding TLV.
type Pad1 struct{}

// PadN is N octets of padding (N counts the payload, not the TLV header).
type PadN struct{ N int }

// AckRequest asks the receiver to send an Ack within Interval.
type AckRequest struct {
	Opaque   uint16
	Interval Centis
}

// Ack answers an AckRequest.
type Ack struct{ Opaque uint16 }

// Hello is sent periodically on every interface. Unicast Hellos have their
// own seqno space per neighbour. Timestamp carries the RFC 9616 transmit
// timestamp (microseconds of the sender's clock) when HasTimestamp is set.
type Hello struct {
	Unicast      bool
	Seqno        uint16
	Interval     Centis
	HasTimestamp bool
	Timestamp    uint32
}

// IHU ("I Heard You") tells a neighbour the cost at which we receive it.
// An invalid Address means "every receiver" (AE 0). With HasTimestamps, Origin
// echoes the neighbour's last Hello timestamp and Receive is when we got it.
type IHU struct {
	Address       netip.Addr
	Rxcost        uint16
	Interval      Centis
	HasTimestamps bool
	Origin        uint32
	Receive       uint32
}

// Update announces (or, with Metric == Infinity, retracts) a route. A zero
// Prefix with an infinite metric is a wildcard retraction. Source is the
// RFC 9079 source prefix; the zero Prefix means no source prefix. NextHop is
// the next hop in effect for the packet; invalid means the packet's source.
type Update struct {
	Prefix   netip.Prefix
	Source   netip.Prefix
	RouterID RouterID
	NextHop  netip.Addr
	Interval Centis
	Seqno    uint16
	Metric   uint16
}

// RouteRequest asks for an Update for Prefix (and Source), or for a full
// dump when Prefix is the zero Prefix (a wildcard request).
type RouteRequest struct {
	Prefix netip.Prefix
	Source netip.Prefix
}

// SeqnoRequest asks the source RouterID to announce Prefix with a seqno at
// least Seqno. It is forwarded at most HopCount times.
type SeqnoRequest struct {
	Prefix   netip.Prefix
	Source   netip.Prefix
	Seqno    uint16
	HopCount uint8
	RouterID RouterID
}

// PC is the RFC 8967 packet counter with its index.
type PC struct {
	Counter uint32
	Index   []byte
}

// ChallengeRequest asks a neighbour to prove freshness by echoing Nonce.
type ChallengeRequest struct{ Nonce []byte }

// ChallengeReply echoes the nonce of a ChallengeRequest.
type ChallengeReply struct{ Nonce []byte }

func (Pad1) tlvType() uint8             { return tlvPad1 }
func (PadN) tlvType() uint8             { return tlvPadN }
func (AckRequest) tlvType() uint8       { return tlvAckRequest }
func (Ack) tlvType() uint8              { return tlvAck }
func (Hello) tlvType() uint8            { return tlvHello }
func (IHU) tlvType() uint8              { return tlvIHU }
func (Update) tlvType() uint8           { return tlvUpdate }
func (RouteRequest) tlvType() uint8     { return tlvRouteRequest }
func (SeqnoRequest) tlvType() uint8     { return tlvSeqnoRequest }
func (PC) tlvType() uint8               { return tlvPC }
func (ChallengeRequest) tlvType() uint8 { return tlvChallengeRequest }
func (ChallengeReply) tlvType() uint8   { return tlvChallengeReply }

// IsWildcard reports whether u is a wildcard retraction.
func (u Update) IsWildcard() bool { return !u.Prefix.IsValid() }

// Packet is a decoded Babel packet: the body's messages and the MACs found
// in the trailer.
type Packet struct {
	Messages []Message
	MACs     [][]byte
	// Ignored counts TLVs that were skipped: unknown types, unknown address
	// encodings, unknown mandatory sub-TLVs, invalid contents.
	Ignored int
}

// SeqnoLess reports whether a is older than b in modulo-2^16 seqno order.
func SeqnoLess(a, b uint16) bool {
	d := b - a
	return d != 0 && d < 0x8000
}

// seqnoMinus returns a-b as a signed distance in seqno space.
func seqnoMinus(a, b uint16) int {
	return int(int16(a - b))
}
