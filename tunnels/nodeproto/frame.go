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
	// CodeKeyBinding carries a newer WireGuard key binding
	// (wireguard.Binding.Marshal) outside a set-up: a key rotation
	// (re6st-bpf).
	CodeKeyBinding byte = 10
	// CodeKeyBindingAck answers it: empty when taken, otherwise why not.
	CodeKeyBindingAck byte = 11
	// RelayFlag marks a request made on behalf of the local registry; the
	// answer carries it too.
	RelayFlag byte = 0x80
)

// Encapsulations of a tunnel request.
var encaps = []string{"", ProtoFOU, ProtoGRE, ProtoWireGuard}

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
	Encap    string         // ProtoFOU, ProtoGRE or ProtoWireGuard
	Endpoint netip.AddrPort // the requester's underlay endpoint as it sees itself
	Key      uint32         // GRE key proposed, 0 = none
	// Binding is the requester's WireGuard key binding
	// (wireguard.Binding.Marshal), for ProtoWireGuard.
	Binding []byte
}

// TunnelReply is a peer's answer to a TunnelRequest (code 9).
type TunnelReply struct {
	Accepted bool
	Reason   string         // why not, or a note
	Endpoint netip.AddrPort // the server's underlay endpoint
	Key      uint32         // GRE key to use, 0 = none
	Observed netip.AddrPort // the requester's endpoint as the server saw it; invalid over the overlay
	Binding  []byte         // the server's WireGuard key binding, for ProtoWireGuard
}

// Code 8 body: request id (4), encap (1), key (4), endpoint; for
// WireGuard, then the binding (a 2-byte length and the bytes).
func (r TunnelRequest) marshal(id uint32) ([]byte, error) {
	encap, ok := encapByte(r.Encap)
	if !ok {
		return nil, errors.New("tunnel request: encap must be fou, gre or wireguard")
	}
	if (r.Encap == ProtoWireGuard) != (len(r.Binding) > 0) || len(r.Binding) > 0xffff {
		return nil, errors.New("tunnel request: a wireguard request, and it only, carries a key binding")
	}
	b := binary.BigEndian.AppendUint32(nil, id)
	b = append(b, encap)
	b = binary.BigEndian.AppendUint32(b, r.Key)
	b = appendEndpoint(b, r.Endpoint)
	if r.Encap == ProtoWireGuard {
		b = appendBinding(b, r.Binding)
	}
	return b, nil
}

// appendBinding writes a key binding as a 2-byte length and the bytes.
func appendBinding(b, binding []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(binding)))
	return append(b, binding...)
}

func readBinding(b []byte) ([]byte, []byte, error) {
	if len(b) < 2 {
		return nil, nil, errMalformed
	}
	n := int(binary.BigEndian.Uint16(b))
	if n == 0 || len(b) < 2+n {
		return nil, nil, errMalformed
	}
	return append([]byte(nil), b[2:2+n]...), b[2+n:], nil
}

func parseTunnelRequest(b []byte) (id uint32, r TunnelRequest, err error) {
	if len(b) < 9 || int(b[4]) >= len(encaps) || b[4] == 0 {
		return 0, r, errMalformed
	}
	id, r.Encap, r.Key = binary.BigEndian.Uint32(b), encaps[b[4]], binary.BigEndian.Uint32(b[5:])
	var rest []byte
	if r.Endpoint, rest, err = readEndpoint(b[9:]); err != nil {
		return 0, r, errMalformed
	}
	if r.Encap == ProtoWireGuard {
		if r.Binding, rest, err = readBinding(rest); err != nil {
			return 0, r, errMalformed
		}
	}
	if len(rest) != 0 {
		return 0, r, errMalformed
	}
	return id, r, nil
}

// Flags of code 9.
const (
	replyAccepted   = 1
	replyHasBinding = 2 // a WireGuard key binding follows the observed endpoint
)

// Code 9 body: request id (4), flags (1), key (4), endpoint, observed
// endpoint, the binding if flagged (a 2-byte length and the bytes), reason
// (rest).
func (r TunnelReply) marshal(id uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, id)
	var flags byte
	if r.Accepted {
		flags |= replyAccepted
	}
	binding := r.Binding
	if len(binding) > 0xffff {
		binding = nil
	}
	if len(binding) > 0 {
		flags |= replyHasBinding
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint32(b, r.Key)
	b = appendEndpoint(b, r.Endpoint)
	b = appendEndpoint(b, r.Observed)
	if len(binding) > 0 {
		b = appendBinding(b, binding)
	}
	return append(b, r.Reason...)
}

func parseTunnelReply(b []byte) (id uint32, r TunnelReply, err error) {
	if len(b) < 9 || b[4]&^(replyAccepted|replyHasBinding) != 0 {
		return 0, r, errMalformed
	}
	id, r.Accepted, r.Key = binary.BigEndian.Uint32(b), b[4]&replyAccepted != 0, binary.BigEndian.Uint32(b[5:])
	rest := b[9:]
	if r.Endpoint, rest, err = readEndpoint(rest); err != nil {
		return 0, r, err
	}
	if r.Observed, rest, err = readEndpoint(rest); err != nil {
		return 0, r, err
	}
	if b[4]&replyHasBinding != 0 {
		if r.Binding, rest, err = readBinding(rest); err != nil {
			return 0, r, err
		}
	}
	r.Reason = string(rest)
	return id, r, nil
}
