package nodeproto

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Sequence numbers 0 to 2 are handshake frames; authenticated messages
// start at 3.
const (
	seqHello0 = 0 // sender's certificate
	seqHello1 = 1 // protocol, fingerprint of the receiver's certificate, sender's certificate
	seqHello  = 2 // protocol, encrypted secret, signature
)

// Payload codes: the first byte of an authenticated message.
const (
	CodeVersion     byte = 0 // signed network version
	CodeAddresses   byte = 1 // empty: request; otherwise the address list
	CodeKill        byte = 2 // tunnel kill request
	CodeKillReady   byte = 3 // ready to kill
	CodeSoftware    byte = 4 // empty: request; otherwise "<software>, <platform>"
	CodeTopology    byte = 5 // empty: request; otherwise "<n> cn1 cn2 ..."
	CodeText        byte = 7 // free text, logged
	CodeTunnelSetup byte = 8 // tunnel request (re6st-bpf)
	CodeTunnelReply byte = 9 // tunnel reply (re6st-bpf)
	// RelayFlag marks a request made on behalf of the local registry; the
	// answer carries it too.
	RelayFlag byte = 0x80
)

// Encapsulations of a tunnel request.
var encaps = []string{"", ProtoFOU, ProtoGRE}

func encapByte(encap string) (byte, bool) {
	for i, e := range encaps {
		if i > 0 && e == encap {
			return byte(i), true
		}
	}
	return 0, false
}

var errMalformed = errors.New("malformed payload")

// appendEndpoint writes an endpoint as a length byte (0, 4 or 16), the
// address and, unless the length is 0, the port.
func appendEndpoint(b []byte, ap netip.AddrPort) []byte {
	if !ap.IsValid() {
		return append(b, 0)
	}
	addr := ap.Addr().Unmap().AsSlice()
	b = append(b, byte(len(addr)))
	b = append(b, addr...)
	return binary.BigEndian.AppendUint16(b, ap.Port())
}

func readEndpoint(b []byte) (netip.AddrPort, []byte, error) {
	if len(b) == 0 {
		return netip.AddrPort{}, nil, errMalformed
	}
	n := int(b[0])
	if n == 0 {
		return netip.AddrPort{}, b[1:], nil
	}
	if n != 4 && n != 16 || len(b) < 1+n+2 {
		return netip.AddrPort{}, nil, errMalformed
	}
	addr, _ := netip.AddrFromSlice(b[1 : 1+n])
	return netip.AddrPortFrom(addr, binary.BigEndian.Uint16(b[1+n:])), b[1+n+2:], nil
}

// TunnelRequest asks a peer for a tunnel (code 8).
type TunnelRequest struct {
	Encap    string         // ProtoFOU or ProtoGRE
	Endpoint netip.AddrPort // the requester's underlay endpoint as it sees itself
	Key      uint32         // GRE key proposed, 0 = none
}

// TunnelReply is a peer's answer to a TunnelRequest (code 9).
type TunnelReply struct {
	Accepted bool
	Reason   string         // why not, or a note
	Endpoint netip.AddrPort // the server's underlay endpoint
	Key      uint32         // GRE key to use, 0 = none
	Observed netip.AddrPort // the requester's endpoint as the server saw it; invalid over the overlay
}

// Code 8 body: request id (4), encap (1), key (4), endpoint.
func (r TunnelRequest) marshal(id uint32) ([]byte, error) {
	encap, ok := encapByte(r.Encap)
	if !ok {
		return nil, errors.New("tunnel request: encap must be fou or gre")
	}
	b := binary.BigEndian.AppendUint32(nil, id)
	b = append(b, encap)
	b = binary.BigEndian.AppendUint32(b, r.Key)
	return appendEndpoint(b, r.Endpoint), nil
}

func parseTunnelRequest(b []byte) (id uint32, r TunnelRequest, err error) {
	if len(b) < 9 || int(b[4]) >= len(encaps) || b[4] == 0 {
		return 0, r, errMalformed
	}
	id, r.Encap, r.Key = binary.BigEndian.Uint32(b), encaps[b[4]], binary.BigEndian.Uint32(b[5:])
	var rest []byte
	if r.Endpoint, rest, err = readEndpoint(b[9:]); err != nil || len(rest) != 0 {
		return 0, r, errMalformed
	}
	return id, r, nil
}

// Code 9 body: request id (4), flags (1, bit 0 = accepted), key (4),
// endpoint, observed endpoint, reason (rest).
func (r TunnelReply) marshal(id uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, id)
	var flags byte
	if r.Accepted {
		flags = 1
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint32(b, r.Key)
	b = appendEndpoint(b, r.Endpoint)
	b = appendEndpoint(b, r.Observed)
	return append(b, r.Reason...)
}

func parseTunnelReply(b []byte) (id uint32, r TunnelReply, err error) {
	if len(b) < 9 || b[4] > 1 {
		return 0, r, errMalformed
	}
	id, r.Accepted, r.Key = binary.BigEndian.Uint32(b), b[4] == 1, binary.BigEndian.Uint32(b[5:])
	rest := b[9:]
	if r.Endpoint, rest, err = readEndpoint(rest); err != nil {
		return 0, r, err
	}
	if r.Observed, rest, err = readEndpoint(rest); err != nil {
		return 0, r, err
	}
	r.Reason = string(rest)
	return id, r, nil
}
