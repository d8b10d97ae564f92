package wireguard

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"golang.org/x/crypto/curve25519"
)

// Key is a Curve25519 key, private or public, as WireGuard uses them.
type Key [32]byte

// GenerateKey returns a new private key, clamped as Curve25519 wants.
func GenerateKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k[:]); err != nil {
		return k, err
	}
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k, nil
}

// Public is the public key of private key k.
func (k Key) Public() Key {
	var pub Key
	out, err := curve25519.X25519(k[:], curve25519.Basepoint)
	if err != nil { // only for a low-order result, which a clamped key never gives
		panic(fmt.Sprintf("wireguard: public key: %v", err))
	}
	copy(pub[:], out)
	return pub
}

// String is the base64 form wg(8) prints.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// hex is the form of wireguard-go's configuration protocol.
func (k Key) hex() string { return hex.EncodeToString(k[:]) }

// MarshalText makes keys readable in JSON (public keys only are shown).
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (k *Key) UnmarshalText(b []byte) error {
	v, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil || len(v) != len(k) {
		return fmt.Errorf("wireguard: bad key %q", b)
	}
	copy(k[:], v)
	return nil
}
