package wireguard

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// nodeCert returns a node key and a certificate for it (self-signed: the
// CA check is the node protocol's, before a binding is looked at).
func nodeCert(t *testing.T) (*rsa.PrivateKey, *x509.Certificate) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return key, cert
}

func TestBindingVerifies(t *testing.T) {
	key, cert := nodeCert(t)
	_, otherCert := nodeCert(t)
	prefix := netip.MustParsePrefix("2001:db8:42::/48")
	priv, err := GenerateKey()
	require.NoError(t, err)

	b, err := Bind(key, prefix, 3, priv.Public())
	require.NoError(t, err)
	got, err := UnmarshalBinding(b.Marshal())
	require.NoError(t, err)
	require.Equal(t, b, got)
	require.NoError(t, got.Verify(cert, prefix))

	require.ErrorIs(t, got.Verify(otherCert, prefix), ErrBadSignature, "signed by another node's key")
	require.ErrorIs(t, got.Verify(cert, netip.MustParsePrefix("2001:db8:43::/48")), ErrWrongPrefix)

	for name, tamper := range map[string]func(*Binding){
		"key":        func(b *Binding) { b.PublicKey[0] ^= 1 },
		"generation": func(b *Binding) { b.Generation++ },
		"prefix":     func(b *Binding) { b.Prefix = netip.MustParsePrefix("2001:db8:42:8000::/49") },
	} {
		c := got
		tamper(&c)
		require.ErrorIs(t, c.Verify(cert, c.Prefix), ErrBadSignature, name)
	}
}

func TestUnmarshalBindingRefusesMalformed(t *testing.T) {
	key, _ := nodeCert(t)
	priv, err := GenerateKey()
	require.NoError(t, err)
	b, err := Bind(key, netip.MustParsePrefix("2001:db8:42::/48"), 1, priv.Public())
	require.NoError(t, err)
	good := b.Marshal()
	for name, data := range map[string][]byte{
		"empty":        nil,
		"no signature": good[:bindingFieldsLen],
		"version":      append([]byte{2}, good[1:]...),
		"prefix bits":  append(append(append([]byte(nil), good[:17]...), 200), good[18:]...),
		"host bits":    append(append(append([]byte(nil), good[:17]...), 8), good[18:]...),
	} {
		_, err := UnmarshalBinding(data)
		require.ErrorIs(t, err, ErrBadBinding, name)
	}
}

func TestKeyText(t *testing.T) {
	priv, err := GenerateKey()
	require.NoError(t, err)
	pub := priv.Public()
	text, err := pub.MarshalText()
	require.NoError(t, err)
	var back Key
	require.NoError(t, back.UnmarshalText(text))
	require.Equal(t, pub, back)
	require.Error(t, back.UnmarshalText([]byte("short")))
	require.NotEqual(t, pub, priv, "public key derived")
}

// An identity's binding verifies as the peer's key; a rotation moves to
// the next generation and a new key; a binding from a key the certificate
// does not certify (a node not signed by the CA has no such certificate)
// is refused.
func TestIdentity(t *testing.T) {
	key, cert := nodeCert(t)
	rogueKey, _ := nodeCert(t)
	prefix := netip.MustParsePrefix("2001:db8:42::/48")
	id, err := NewIdentity(key, prefix)
	require.NoError(t, err)
	b, err := PeerKey(id.Binding(), cert, prefix)
	require.NoError(t, err)
	require.Equal(t, id.PrivateKey().Public(), b.PublicKey)
	require.Equal(t, uint64(1), b.Generation)

	require.NoError(t, id.Rotate())
	b2, err := PeerKey(id.Binding(), cert, prefix)
	require.NoError(t, err)
	require.Equal(t, uint64(2), b2.Generation)
	require.NotEqual(t, b.PublicKey, b2.PublicKey)

	rogue, err := NewIdentity(rogueKey, prefix)
	require.NoError(t, err)
	_, err = PeerKey(rogue.Binding(), cert, prefix)
	require.ErrorIs(t, err, ErrBadSignature)
	_, err = PeerKey(id.Binding(), nil, prefix)
	require.ErrorIs(t, err, ErrBadSignature)
	_, err = PeerKey([]byte("junk"), cert, prefix)
	require.ErrorIs(t, err, ErrBadBinding)
}
