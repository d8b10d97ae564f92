package babel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Errors returned by ParsePacket. A packet that fails to parse must be
// dropped as a whole.
var (
	ErrShortPacket = errors.New("babel: packet shorter than its header")
	ErrBadMagic    = errors.New("babel: not a Babel version 2 packet")
	ErrBadLength   = errors.New("babel: body length exceeds the packet")
	ErrTruncated   = errors.New("babel: TLV extends beyond the body")
)

// errIgnoreTLV marks a TLV that is skipped without failing the packet.
var errIgnoreTLV = errors.New("ignored TLV")

// SplitPacket checks the header and returns the header-plus-body part and
// the trailer.
func SplitPacket(data []byte) (packet, trailer []byte, err error) {
	if len(data) < headerLen {
		return nil, nil, ErrShortPacket
	}
	if data[0] != magic || data[1] != version {
		return nil, nil, ErrBadMagic
	}
	n := int(binary.BigEndian.Uint16(data[2:4]))
	if headerLen+n > len(data) {
		return nil, nil, ErrBadLength
	}
	return data[:headerLen+n], data[headerLen+n:], nil
}

// ParsePacket decodes a packet. Router-Id and Next Hop TLVs are resolved
// into the Updates that follow them and compressed prefixes are expanded.
// TLVs that are unknown or invalid are skipped and counted in Ignored; a
// TLV that overruns the body or the trailer fails the whole packet.
func ParsePacket(data []byte) (*Packet, error) {
	packet, trailer, err := SplitPacket(data)
	if err != nil {
		return nil, err
	}
	p := &Packet{}
	var st codecState
	err = walkTLVs(packet[headerLen:], func(typ uint8, body []byte) {
		m, err := st.parseTLV(typ, body)
		switch {
		case err != nil:
			p.Ignored++
		case m != nil:
			p.Messages = append(p.Messages, m)
		}
	})
	if err != nil {
		return nil, err
	}
	err = walkTLVs(trailer, func(typ uint8, body []byte) {
		switch typ {
		case tlvMAC:
			p.MACs = append(p.MACs, body)
		case tlvPad1, tlvPadN:
		default:
			p.Ignored++
		}
	})
	if err != nil {
		return nil, fmt.Errorf("trailer: %w", err)
	}
	return p, nil
}

// walkTLVs calls fn for every TLV in b. Pad1 is reported with a nil body.
func walkTLVs(b []byte, fn func(typ uint8, body []byte)) error {
	for i := 0; i < len(b); {
		typ := b[i]
		if typ == tlvPad1 {
			fn(typ, nil)
			i++
			continue
		}
		if i+2 > len(b) {
			return ErrTruncated
		}
		n := int(b[i+1])
		if i+2+n > len(b) {
			return ErrTruncated
		}
		fn(typ, b[i+2:i+2+n])
		i += 2 + n
	}
	return nil
}

// subTLVs holds the sub-TLVs this implementation understands.
type subTLVs struct {
	timestamp []byte
	source    []byte
	hasSource bool
}

// parseSubTLVs decodes b; an unknown mandatory sub-TLV or a malformed one
// makes the enclosing TLV ignored.
func parseSubTLVs(b []byte) (subTLVs, error) {
	var s subTLVs
	for i := 0; i < len(b); {
		typ := b[i]
		if typ == subPad1 {
			i++
			continue
		}
		if i+2 > len(b) {
			return s, errIgnoreTLV
		}
		n := int(b[i+1])
		if i+2+n > len(b) {
			return s, errIgnoreTLV
		}
		body := b[i+2 : i+2+n]
		switch {
		case typ == subTimestamp:
			s.timestamp = body
		case typ == subSourcePrefix:
			if s.hasSource {
				return s, errIgnoreTLV
			}
			s.source, s.hasSource = body, true
		case typ&subMandatory != 0:
			return s, errIgnoreTLV
		}
		i += 2 + n
	}
	return s, nil
}

func (st *codecState) parseTLV(typ uint8, b []byte) (Message, error) {
	switch typ {
	case tlvPad1:
		return Pad1{}, nil
	case tlvPadN:
		return PadN{N: len(b)}, nil
	case tlvAckRequest:
		if len(b) < 6 {
			return nil, errIgnoreTLV
		}
		return AckRequest{Opaque: be16(b[2:]), Interval: Centis(be16(b[4:]))}, nil
	case tlvAck:
		if len(b) < 2 {
			return nil, errIgnoreTLV
		}
		return Ack{Opaque: be16(b)}, nil
	case tlvHello:
		return parseHello(b)
	case tlvIHU:
		return parseIHU(b)
	case tlvRouterID:
		if len(b) < 10 {
			return nil, errIgnoreTLV
		}
		id := RouterID(b[2:10])
		if !id.Valid() {
			st.haveRouterID = false
			return nil, errIgnoreTLV
		}
		st.routerID, st.haveRouterID = id, true
		return nil, nil
	case tlvNextHop:
		return nil, st.parseNextHop(b)
	case tlvUpdate:
		return st.parseUpdate(b)
	case tlvRouteRequest:
		return parseRouteRequest(b)
	case tlvSeqnoRequest:
		return parseSeqnoRequest(b)
	case tlvPC:
		if len(b) < 4 || len(b) > 4+maxPCIndexLen {
			return nil, errIgnoreTLV
		}
		return PC{Counter: binary.BigEndian.Uint32(b), Index: clone(b[4:])}, nil
	case tlvChallengeRequest:
		return ChallengeRequest{Nonce: clone(b)}, nil
	case tlvChallengeReply:
		return ChallengeReply{Nonce: clone(b)}, nil
	}
	return nil, errIgnoreTLV
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }

func clone(b []byte) []byte { return append([]byte{}, b...) }

func parseHello(b []byte) (Message, error) {
	if len(b) < 6 {
		return nil, errIgnoreTLV
	}
	sub, err := parseSubTLVs(b[6:])
	if err != nil {
		return nil, err
	}
	h := Hello{Unicast: be16(b)&helloFlagUnicast != 0, Seqno: be16(b[2:]), Interval: Centis(be16(b[4:]))}
	if len(sub.timestamp) >= 4 {
		h.HasTimestamp, h.Timestamp = true, binary.BigEndian.Uint32(sub.timestamp)
	}
	return h, nil
}

// parseAddress decodes a full (uncompressed) address and returns the octets
// it used.
func parseAddress(ae uint8, b []byte) (netip.Addr, int, error) {
	switch ae {
	case aeIPv4:
		if len(b) < 4 {
			return netip.Addr{}, 0, errIgnoreTLV
		}
		return netip.AddrFrom4([4]byte(b[:4])), 4, nil
	case aeIPv6:
		if len(b) < 16 {
			return netip.Addr{}, 0, errIgnoreTLV
		}
		return netip.AddrFrom16([16]byte(b[:16])), 16, nil
	case aeLinkLocal:
		if len(b) < 8 {
			return netip.Addr{}, 0, errIgnoreTLV
		}
		var a [16]byte
		a[0], a[1] = 0xfe, 0x80
		copy(a[8:], b[:8])
		return netip.AddrFrom16(a), 8, nil
	}
	return netip.Addr{}, 0, errIgnoreTLV
}

func parseIHU(b []byte) (Message, error) {
	if len(b) < 6 {
		return nil, errIgnoreTLV
	}
	m := IHU{Rxcost: be16(b[2:]), Interval: Centis(be16(b[4:]))}
	rest := b[6:]
	if ae := b[0]; ae != aeWildcard {
		a, n, err := parseAddress(ae, rest)
		if err != nil {
			return nil, err
		}
		m.Address, rest = a, rest[n:]
	}
	sub, err := parseSubTLVs(rest)
	if err != nil {
		return nil, err
	}
	if len(sub.timestamp) >= 8 {
		m.HasTimestamps = true
		m.Origin = binary.BigEndian.Uint32(sub.timestamp)
		m.Receive = binary.BigEndian.Uint32(sub.timestamp[4:])
	}
	return m, nil
}

func (st *codecState) parseNextHop(b []byte) error {
	if len(b) < 2 {
		return errIgnoreTLV
	}
	a, _, err := parseAddress(b[0], b[2:])
	if err != nil {
		return err
	}
	if a.Is4() {
		st.nextHop4 = a
	} else {
		st.nextHop6 = a
	}
	return nil
}

// plainPrefix decodes an uncompressed prefix of plen bits with the given AE
// and returns the octets it used.
func plainPrefix(ae, plen uint8, b []byte) (netip.Prefix, int, error) {
	var max int
	switch ae {
	case aeIPv4, aeV4viaV6:
		max = 32
	case aeIPv6:
		max = 128
	default:
		return netip.Prefix{}, 0, errIgnoreTLV
	}
	if int(plen) > max {
		return netip.Prefix{}, 0, errIgnoreTLV
	}
	n := (int(plen) + 7) / 8
	if len(b) < n {
		return netip.Prefix{}, 0, errIgnoreTLV
	}
	return prefixFromBytes(ae, b[:n], int(plen)), n, nil
}

func prefixFromBytes(ae uint8, raw []byte, plen int) netip.Prefix {
	var a netip.Addr
	if ae == aeIPv4 || ae == aeV4viaV6 {
		var x [4]byte
		copy(x[:], raw)
		a = netip.AddrFrom4(x)
	} else {
		var x [16]byte
		copy(x[:], raw)
		a = netip.AddrFrom16(x)
	}
	return netip.PrefixFrom(a, plen).Masked()
}

// sourcePrefix decodes the RFC 9079 sub-TLV for a TLV of the given AE.
func (s subTLVs) sourcePrefix(ae uint8) (netip.Prefix, error) {
	if !s.hasSource {
		return netip.Prefix{}, nil
	}
	if len(s.source) < 1 || s.source[0] == 0 {
		return netip.Prefix{}, errIgnoreTLV
	}
	p, n, err := plainPrefix(ae, s.source[0], s.source[1:])
	if err != nil || n != len(s.source)-1 {
		return netip.Prefix{}, errIgnoreTLV
	}
	return p, nil
}

func (st *codecState) parseUpdate(b []byte) (Message, error) {
	if len(b) < 10 {
		return nil, errIgnoreTLV
	}
	ae, flags, plen, omitted := b[0], b[1], int(b[2]), int(b[3])
	m := Update{Interval: Centis(be16(b[4:])), Seqno: be16(b[6:]), Metric: be16(b[8:])}
	rest := b[10:]
	switch ae {
	case aeWildcard:
		if m.Metric != Infinity || plen != 0 || omitted != 0 {
			return nil, errIgnoreTLV
		}
		if st.haveRouterID {
			m.RouterID = st.routerID
		}
		if _, err := parseSubTLVs(rest); err != nil {
			return nil, err
		}
		return m, nil
	case aeIPv4, aeIPv6, aeV4viaV6:
		max, def, have := 16, st.prefix6[:], st.have6
		if ae != aeIPv6 {
			max, def, have = 4, st.prefix4[:], st.have4
		}
		if plen > max*8 {
			return nil, errIgnoreTLV
		}
		n := (plen + 7) / 8
		if omitted > n || (omitted > 0 && !have) || len(rest) < n-omitted {
			return nil, errIgnoreTLV
		}
		raw := make([]byte, max)
		copy(raw, def[:omitted])
		copy(raw[omitted:n], rest[:n-omitted])
		rest = rest[n-omitted:]
		m.Prefix = prefixFromBytes(ae, raw, plen)
		if flags&updateFlagDefault != 0 {
			if ae != aeIPv6 {
				st.prefix4, st.have4 = [4]byte(raw), true
			} else {
				st.prefix6, st.have6 = [16]byte(raw), true
			}
		}
	case aeLinkLocal:
		if omitted != 0 || plen > 128 || len(rest) < 8 {
			return nil, errIgnoreTLV
		}
		var a [16]byte
		a[0], a[1] = 0xfe, 0x80
		copy(a[8:], rest[:8])
		rest = rest[8:]
		m.Prefix = netip.PrefixFrom(netip.AddrFrom16(a), plen).Masked()
	default:
		return nil, errIgnoreTLV
	}
	if flags&updateFlagRouterID != 0 {
		var id RouterID
		if m.Prefix.Addr().Is4() {
			a := m.Prefix.Addr().As4()
			copy(id[4:], a[:])
		} else {
			a := m.Prefix.Addr().As16()
			copy(id[:], a[8:])
		}
		if !id.Valid() {
			st.haveRouterID = false
			return nil, errIgnoreTLV
		}
		st.routerID, st.haveRouterID = id, true
	}
	sub, err := parseSubTLVs(rest)
	if err != nil {
		return nil, err
	}
	if m.Source, err = sub.sourcePrefix(ae); err != nil {
		return nil, err
	}
	if st.haveRouterID {
		m.RouterID = st.routerID
	} else if m.Metric != Infinity {
		return nil, errIgnoreTLV
	}
	switch {
	case ae == aeV4viaV6:
		m.NextHop = st.nextHop6
	case m.Prefix.Addr().Is4():
		m.NextHop = st.nextHop4
		if !m.NextHop.IsValid() && m.Metric != Infinity {
			return nil, errIgnoreTLV
		}
	default:
		m.NextHop = st.nextHop6
	}
	return m, nil
}

func parseRouteRequest(b []byte) (Message, error) {
	if len(b) < 2 {
		return nil, errIgnoreTLV
	}
	ae, plen := b[0], b[1]
	if ae == aeWildcard {
		if plen != 0 {
			return nil, errIgnoreTLV
		}
		sub, err := parseSubTLVs(b[2:])
		if err != nil || sub.hasSource {
			return nil, errIgnoreTLV
		}
		return RouteRequest{}, nil
	}
	p, n, err := plainPrefix(ae, plen, b[2:])
	if err != nil {
		return nil, err
	}
	sub, err := parseSubTLVs(b[2+n:])
	if err != nil {
		return nil, err
	}
	src, err := sub.sourcePrefix(ae)
	if err != nil {
		return nil, err
	}
	return RouteRequest{Prefix: p, Source: src}, nil
}

func parseSeqnoRequest(b []byte) (Message, error) {
	if len(b) < 14 {
		return nil, errIgnoreTLV
	}
	ae, plen := b[0], b[1]
	m := SeqnoRequest{Seqno: be16(b[2:]), HopCount: b[4], RouterID: RouterID(b[6:14])}
	p, n, err := plainPrefix(ae, plen, b[14:])
	if err != nil {
		return nil, err
	}
	m.Prefix = p
	sub, err := parseSubTLVs(b[14+n:])
	if err != nil {
		return nil, err
	}
	if m.Source, err = sub.sourcePrefix(ae); err != nil {
		return nil, err
	}
	return m, nil
}
