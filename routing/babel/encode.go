package babel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// ErrPacketFull is returned by Encoder.Append when the message does not fit
// in the packet's size limit. The encoder is left as it was before the call.
var ErrPacketFull = errors.New("babel: packet full")

// Encoder builds one packet body, emitting Router-Id and Next Hop TLVs and
// compressing prefixes as needed by the Updates appended to it.
type Encoder struct {
	buf   []byte
	limit int
	st    codecState
}

// codecState is the per-packet state shared by the parser and the encoder
// (RFC 8966 §4.5): the router-id, next hop and default prefix in effect.
type codecState struct {
	routerID     RouterID
	haveRouterID bool
	nextHop4     netip.Addr
	nextHop6     netip.Addr
	prefix4      [4]byte
	have4        bool
	prefix6      [16]byte
	have6        bool
}

// NewEncoder returns an encoder for packets of at most limit octets
// (header and body; 0 means no limit).
func NewEncoder(limit int) *Encoder {
	e := &Encoder{limit: limit}
	e.Reset()
	return e
}

// Reset empties the packet.
func (e *Encoder) Reset() {
	e.buf = append(e.buf[:0], magic, version, 0, 0)
	e.st = codecState{}
}

// Empty reports whether the body holds no TLV.
func (e *Encoder) Empty() bool { return len(e.buf) == headerLen }

// Len is the current length of the packet, header included.
func (e *Encoder) Len() int { return len(e.buf) }

// Bytes returns the packet (header and body). It stays valid until the
// next call to Append or Reset.
func (e *Encoder) Bytes() []byte {
	binary.BigEndian.PutUint16(e.buf[2:4], uint16(len(e.buf)-headerLen))
	return e.buf
}

// Append encodes m at the end of the body. It returns ErrPacketFull, with
// the encoder unchanged, when m would exceed the size limit, and another
// error when m cannot be encoded at all.
func (e *Encoder) Append(m Message) error {
	mark, st := len(e.buf), e.st
	if err := e.append(m); err != nil {
		e.buf, e.st = e.buf[:mark], st
		return err
	}
	if len(e.buf)-headerLen > 0xFFFF || (e.limit > 0 && len(e.buf) > e.limit) {
		e.buf, e.st = e.buf[:mark], st
		return ErrPacketFull
	}
	return nil
}

func (e *Encoder) append(m Message) error {
	switch m := m.(type) {
	case Pad1:
		e.buf = append(e.buf, tlvPad1)
	case PadN:
		if m.N < 0 || m.N > 255 {
			return fmt.Errorf("babel: PadN of %d octets", m.N)
		}
		e.buf = append(e.buf, tlvPadN, byte(m.N))
		e.buf = append(e.buf, make([]byte, m.N)...)
	case AckRequest:
		e.buf = append(e.buf, tlvAckRequest, 6, 0, 0)
		e.buf = binary.BigEndian.AppendUint16(e.buf, m.Opaque)
		e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(m.Interval))
	case Ack:
		e.buf = append(e.buf, tlvAck, 2)
		e.buf = binary.BigEndian.AppendUint16(e.buf, m.Opaque)
	case Hello:
		e.appendHello(m)
	case IHU:
		return e.appendIHU(m)
	case Update:
		return e.appendUpdate(m)
	case RouteRequest:
		return e.appendRouteRequest(m)
	case SeqnoRequest:
		return e.appendSeqnoRequest(m)
	case PC:
		if len(m.Index) > maxPCIndexLen {
			return fmt.Errorf("babel: PC index of %d octets", len(m.Index))
		}
		e.buf = append(e.buf, tlvPC, byte(4+len(m.Index)))
		e.buf = binary.BigEndian.AppendUint32(e.buf, m.Counter)
		e.buf = append(e.buf, m.Index...)
	case ChallengeRequest:
		return e.appendNonce(tlvChallengeRequest, m.Nonce)
	case ChallengeReply:
		return e.appendNonce(tlvChallengeReply, m.Nonce)
	default:
		return fmt.Errorf("babel: cannot encode %T", m)
	}
	return nil
}

// openTLV appends a TLV header with a length to be fixed by closeTLV.
func (e *Encoder) openTLV(typ uint8) int {
	e.buf = append(e.buf, typ, 0)
	return len(e.buf)
}

func (e *Encoder) closeTLV(start int) error {
	n := len(e.buf) - start
	if n > 255 {
		return fmt.Errorf("babel: TLV type %d of %d octets", e.buf[start-2], n)
	}
	e.buf[start-1] = byte(n)
	return nil
}

func (e *Encoder) appendNonce(typ uint8, nonce []byte) error {
	if len(nonce) > maxNonceLen {
		return fmt.Errorf("babel: nonce of %d octets", len(nonce))
	}
	e.buf = append(e.buf, typ, byte(len(nonce)))
	e.buf = append(e.buf, nonce...)
	return nil
}

func (e *Encoder) appendHello(m Hello) {
	start := e.openTLV(tlvHello)
	var flags uint16
	if m.Unicast {
		flags |= helloFlagUnicast
	}
	e.buf = binary.BigEndian.AppendUint16(e.buf, flags)
	e.buf = binary.BigEndian.AppendUint16(e.buf, m.Seqno)
	e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(m.Interval))
	if m.HasTimestamp {
		e.buf = append(e.buf, subTimestamp, 4)
		e.buf = binary.BigEndian.AppendUint32(e.buf, m.Timestamp)
	}
	_ = e.closeTLV(start) // at most 12 octets
}

// addressAE returns the address encoding used for a full address.
func addressAE(a netip.Addr) (ae uint8, raw []byte) {
	switch {
	case a.Is4():
		b := a.As4()
		return aeIPv4, b[:]
	case a.Is6() && a.IsLinkLocalUnicast() && isFE80Slash64(a):
		b := a.As16()
		return aeLinkLocal, b[8:]
	default:
		b := a.As16()
		return aeIPv6, b[:]
	}
}

func isFE80Slash64(a netip.Addr) bool {
	b := a.As16()
	return b[0] == 0xfe && b[1] == 0x80 && b[2]|b[3]|b[4]|b[5]|b[6]|b[7] == 0
}

func (e *Encoder) appendIHU(m IHU) error {
	start := e.openTLV(tlvIHU)
	var ae uint8
	var raw []byte
	if m.Address.IsValid() {
		if m.Address.Zone() != "" {
			return fmt.Errorf("babel: IHU address %s has a zone", m.Address)
		}
		ae, raw = addressAE(m.Address)
	}
	e.buf = append(e.buf, ae, 0)
	e.buf = binary.BigEndian.AppendUint16(e.buf, m.Rxcost)
	e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(m.Interval))
	e.buf = append(e.buf, raw...)
	if m.HasTimestamps {
		e.buf = append(e.buf, subTimestamp, 8)
		e.buf = binary.BigEndian.AppendUint32(e.buf, m.Origin)
		e.buf = binary.BigEndian.AppendUint32(e.buf, m.Receive)
	}
	return e.closeTLV(start)
}

// prefixAE returns the address encoding and the significant octets of p.
func prefixAE(p netip.Prefix) (ae uint8, raw []byte, err error) {
	if !p.IsValid() {
		return aeWildcard, nil, nil
	}
	p = p.Masked()
	n := (p.Bits() + 7) / 8
	if p.Addr().Is4() {
		b := p.Addr().As4()
		return aeIPv4, b[:n], nil
	}
	if p.Addr().Zone() != "" {
		return 0, nil, fmt.Errorf("babel: prefix %s has a zone", p)
	}
	b := p.Addr().As16()
	return aeIPv6, b[:n], nil
}

// appendSourcePrefix appends the RFC 9079 sub-TLV if src is set.
func (e *Encoder) appendSourcePrefix(dst, src netip.Prefix) error {
	if !src.IsValid() {
		return nil
	}
	if src.Bits() == 0 {
		return fmt.Errorf("babel: source prefix %s has length 0", src)
	}
	if src.Addr().Is4() != dst.Addr().Is4() {
		return fmt.Errorf("babel: source prefix %s and prefix %s differ in family", src, dst)
	}
	_, raw, err := prefixAE(src)
	if err != nil {
		return err
	}
	e.buf = append(e.buf, subSourcePrefix, byte(1+len(raw)), byte(src.Bits()))
	e.buf = append(e.buf, raw...)
	return nil
}

func (e *Encoder) appendNextHop(a netip.Addr) error {
	if a.Zone() != "" {
		return fmt.Errorf("babel: next hop %s has a zone", a)
	}
	ae, raw := addressAE(a)
	e.buf = append(e.buf, tlvNextHop, byte(2+len(raw)), ae, 0)
	e.buf = append(e.buf, raw...)
	if a.Is4() {
		e.st.nextHop4 = a
	} else {
		e.st.nextHop6 = a
	}
	return nil
}

func (e *Encoder) appendUpdate(m Update) error {
	if m.IsWildcard() {
		if m.Metric != Infinity || m.Source.IsValid() {
			return errors.New("babel: a wildcard update must be a plain retraction")
		}
		if m.RouterID != (RouterID{}) && (!e.st.haveRouterID || e.st.routerID != m.RouterID) {
			e.appendRouterID(m.RouterID)
		}
		e.buf = append(e.buf, tlvUpdate, 10, aeWildcard, 0, 0, 0)
		e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(m.Interval))
		e.buf = binary.BigEndian.AppendUint16(e.buf, m.Seqno)
		e.buf = binary.BigEndian.AppendUint16(e.buf, m.Metric)
		return nil
	}
	ae, raw, err := prefixAE(m.Prefix)
	if err != nil {
		return err
	}
	v4 := ae == aeIPv4
	// An IPv4 prefix without an IPv4 next hop goes v4-via-v6 (AE 4): its
	// next hop is the IPv6 one, or the packet's source.
	viaV6 := v4 && !m.NextHop.Is4()
	cur := e.st.nextHop6
	if viaV6 {
		ae = aeV4viaV6
	} else if v4 {
		cur = e.st.nextHop4
	}
	switch {
	case m.NextHop.IsValid() && m.NextHop != cur:
		if m.NextHop.Is4() != (v4 && !viaV6) {
			return fmt.Errorf("babel: next hop %s for prefix %s", m.NextHop, m.Prefix)
		}
		if err := e.appendNextHop(m.NextHop); err != nil {
			return err
		}
	case !m.NextHop.IsValid() && cur.IsValid():
		return fmt.Errorf("babel: update for %s uses the packet source after a Next Hop TLV", m.Prefix)
	}

	var flags uint8
	if m.RouterID != (RouterID{}) && (!e.st.haveRouterID || e.st.routerID != m.RouterID) {
		if !v4 && m.Prefix.Bits() == 128 && [8]byte(m.Prefix.Addr().AsSlice()[8:]) == m.RouterID {
			flags |= updateFlagRouterID
			e.st.routerID, e.st.haveRouterID = m.RouterID, true
		} else {
			e.appendRouterID(m.RouterID)
		}
	}
	if m.Metric != Infinity && !e.st.haveRouterID {
		return fmt.Errorf("babel: update for %s has no router-id", m.Prefix)
	}

	// AE 4 is sent whole and sets no compression state, as babeld sends
	// it: a receiver that keeps AE 4's state apart from AE 1's is not
	// misled.
	omitted := 0
	if v4 && !viaV6 && e.st.have4 {
		omitted = commonPrefixLen(raw, e.st.prefix4[:])
	} else if !v4 && e.st.have6 {
		omitted = commonPrefixLen(raw, e.st.prefix6[:])
	}
	if omitted < len(raw) && !viaV6 {
		flags |= updateFlagDefault
		if v4 {
			e.st.prefix4, e.st.have4 = [4]byte{}, true
			copy(e.st.prefix4[:], raw)
		} else {
			e.st.prefix6, e.st.have6 = [16]byte{}, true
			copy(e.st.prefix6[:], raw)
		}
	}
	start := e.openTLV(tlvUpdate)
	e.buf = append(e.buf, ae, flags, byte(m.Prefix.Bits()), byte(omitted))
	e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(m.Interval))
	e.buf = binary.BigEndian.AppendUint16(e.buf, m.Seqno)
	e.buf = binary.BigEndian.AppendUint16(e.buf, m.Metric)
	e.buf = append(e.buf, raw[omitted:]...)
	if err := e.appendSourcePrefix(m.Prefix, m.Source); err != nil {
		return err
	}
	return e.closeTLV(start)
}

func commonPrefixLen(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func (e *Encoder) appendRouteRequest(m RouteRequest) error {
	ae, raw, err := prefixAE(m.Prefix)
	if err != nil {
		return err
	}
	if ae == aeWildcard && m.Source.IsValid() {
		return errors.New("babel: a wildcard request has no source prefix")
	}
	start := e.openTLV(tlvRouteRequest)
	e.buf = append(e.buf, ae, byte(m.Prefix.Bits()))
	if ae == aeWildcard {
		e.buf[len(e.buf)-1] = 0
	}
	e.buf = append(e.buf, raw...)
	if err := e.appendSourcePrefix(m.Prefix, m.Source); err != nil {
		return err
	}
	return e.closeTLV(start)
}

func (e *Encoder) appendSeqnoRequest(m SeqnoRequest) error {
	if !m.Prefix.IsValid() {
		return errors.New("babel: a seqno request needs a prefix")
	}
	ae, raw, err := prefixAE(m.Prefix)
	if err != nil {
		return err
	}
	start := e.openTLV(tlvSeqnoRequest)
	e.buf = append(e.buf, ae, byte(m.Prefix.Bits()))
	e.buf = binary.BigEndian.AppendUint16(e.buf, m.Seqno)
	e.buf = append(e.buf, m.HopCount, 0)
	e.buf = append(e.buf, m.RouterID[:]...)
	e.buf = append(e.buf, raw...)
	if err := e.appendSourcePrefix(m.Prefix, m.Source); err != nil {
		return err
	}
	return e.closeTLV(start)
}

// AppendTrailerMAC appends one MAC TLV to a finished packet (after Bytes).
func AppendTrailerMAC(pkt, mac []byte) []byte {
	pkt = append(pkt, tlvMAC, byte(len(mac)))
	return append(pkt, mac...)
}

func (e *Encoder) appendRouterID(id RouterID) {
	e.buf = append(e.buf, tlvRouterID, 10, 0, 0)
	e.buf = append(e.buf, id[:]...)
	e.st.routerID, e.st.haveRouterID = id, true
}
