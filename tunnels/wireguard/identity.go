package wireguard

import (
	"crypto/rsa"
	"crypto/x509"
	"net/netip"
	"sync"
)

// Identity is a node's WireGuard key and its binding to the node's
// certificate: what the node sends peers in a tunnel set-up, and how it
// checks theirs. Rotate replaces the key with a binding of the next
// generation. Safe for concurrent use.
type Identity struct {
	nodeKey *rsa.PrivateKey
	prefix  netip.Prefix

	mu      sync.Mutex
	private Key
	binding Binding
}

// NewIdentity makes a WireGuard key for the node whose subnet is prefix
// and signs its binding with the node's key.
func NewIdentity(nodeKey *rsa.PrivateKey, prefix netip.Prefix) (*Identity, error) {
	id := &Identity{nodeKey: nodeKey, prefix: prefix}
	return id, id.Rotate()
}

// Rotate makes a new key, bound with the next generation.
func (id *Identity) Rotate() error {
	priv, err := GenerateKey()
	if err != nil {
		return err
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	b, err := Bind(id.nodeKey, id.prefix, id.binding.Generation+1, priv.Public())
	if err != nil {
		return err
	}
	id.private, id.binding = priv, b
	return nil
}

// PrivateKey is the current key, for the devices.
func (id *Identity) PrivateKey() Key {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.private
}

// Current is the current key and its binding (as the node protocol
// carries it), read together: a Rotate between two reads would give a key
// and another key's binding.
func (id *Identity) Current() (Key, []byte) {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.private, id.binding.Marshal()
}

// Generation is the current key's generation: 1 for the first key, one
// more at each Rotate.
func (id *Identity) Generation() uint64 {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.binding.Generation
}

// Binding is the current key's binding, as the node protocol carries it.
func (id *Identity) Binding() []byte {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.binding.Marshal()
}

// PeerKey checks a peer's binding against its certificate and prefix, and
// returns its WireGuard key.
func PeerKey(data []byte, cert *x509.Certificate, peer netip.Prefix) (Binding, error) {
	b, err := UnmarshalBinding(data)
	if err != nil {
		return Binding{}, err
	}
	if cert == nil {
		return Binding{}, ErrBadSignature
	}
	return b, b.Verify(cert, peer)
}
