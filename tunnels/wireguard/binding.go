package wireguard

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// Binding ties a node's WireGuard public key to its re6st certificate.
type Binding struct {
	Prefix netip.Prefix // the node's subnet, as its certificate gives it
	// Generation orders the keys of one node: a binding replaces the key
	// of an older generation only.
	Generation uint64
	PublicKey  Key
	Signature  []byte // by the node's RSA key, over signedData
}

// bindingVersion is the first byte of a marshalled binding.
const bindingVersion = 1

// bindingContext keeps a binding's signature from meaning anything else.
const bindingContext = "re6st wireguard key\x00"

// Errors of Verify and Unmarshal.
var (
	ErrBadBinding   = errors.New("wireguard: malformed key binding")
	ErrBadSignature = errors.New("wireguard: key binding not signed by the peer's certificate")
	ErrWrongPrefix  = errors.New("wireguard: key binding for another node")
)

// Bind signs pub for the node whose subnet is prefix, with the node's key.
func Bind(nodeKey *rsa.PrivateKey, prefix netip.Prefix, generation uint64, pub Key) (Binding, error) {
	b := Binding{Prefix: prefix, Generation: generation, PublicKey: pub}
	sig, err := wire.Sign(nodeKey, b.signedData())
	if err != nil {
		return Binding{}, err
	}
	b.Signature = sig
	return b, nil
}

// Verify checks that b is signed by the key of cert, the certificate of
// the node whose subnet is prefix (the caller has checked cert against the
// network's CA, as the node protocol does for every peer).
func (b Binding) Verify(cert *x509.Certificate, prefix netip.Prefix) error {
	if b.Prefix != prefix {
		return fmt.Errorf("%w: %s, not %s", ErrWrongPrefix, b.Prefix, prefix)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return ErrBadSignature
	}
	if err := wire.Verify(pub, b.signedData(), b.Signature); err != nil {
		return ErrBadSignature
	}
	return nil
}

// signedData is what the signature covers: a context string, then the
// marshalled binding without its signature.
func (b Binding) signedData() []byte {
	return append([]byte(bindingContext), b.fields()...)
}

// fields: version, prefix (16 bytes and the length), generation (8 bytes,
// big-endian), public key (32 bytes).
func (b Binding) fields() []byte {
	out := []byte{bindingVersion}
	a := b.Prefix.Addr().As16()
	out = append(out, a[:]...)
	out = append(out, byte(b.Prefix.Bits()))
	out = binary.BigEndian.AppendUint64(out, b.Generation)
	return append(out, b.PublicKey[:]...)
}

const bindingFieldsLen = 1 + 16 + 1 + 8 + 32

// Marshal is the binding as the node protocol carries it: the fields, then
// the signature.
func (b Binding) Marshal() []byte { return append(b.fields(), b.Signature...) }

// UnmarshalBinding reads what Marshal writes.
func UnmarshalBinding(data []byte) (Binding, error) {
	if len(data) <= bindingFieldsLen || data[0] != bindingVersion {
		return Binding{}, ErrBadBinding
	}
	var b Binding
	addr := netip.AddrFrom16([16]byte(data[1:17]))
	bits := int(data[17])
	if bits > 128 {
		return Binding{}, ErrBadBinding
	}
	b.Prefix = netip.PrefixFrom(addr, bits)
	if b.Prefix.Masked() != b.Prefix {
		return Binding{}, ErrBadBinding
	}
	b.Generation = binary.BigEndian.Uint64(data[18:26])
	copy(b.PublicKey[:], data[26:58])
	b.Signature = append([]byte(nil), data[bindingFieldsLen:]...)
	return b, nil
}
