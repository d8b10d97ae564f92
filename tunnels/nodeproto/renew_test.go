package nodeproto_test

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
)

// TestRenewedCertificateReachesPeers: a node given a renewed certificate
// (same key and prefix, a later expiry) hands it to a peer at the next
// message; a certificate for another key or prefix is refused.
func TestRenewedCertificateReachesPeers(t *testing.T) {
	_, a, b := pair(t)
	a.node.Gossip(b.prefix)
	require.Eventually(t, func() bool { return b.node.PeerCertificate(a.prefix) != nil }, 5*time.Second, 5*time.Millisecond)
	require.Equal(t, a.cert.SerialNumber, b.node.PeerCertificate(a.prefix).SerialNumber)

	empty, err := asn1.Marshal(pkix.RDNSequence{})
	require.NoError(t, err)
	renew := func(key string, bits string, serial uint64) *ca.Issue {
		subject, err := ca.NodeSubject(empty, bits, int(serial))
		require.NoError(t, err)
		return &ca.Issue{RawSubject: subject, PublicKey: &loadKey(t, key).PublicKey, Serial: serial,
			NotBefore: notBefore, NotAfter: notAfter.Add(24 * time.Hour)}
	}
	certOf := func(issue *ca.Issue) []byte {
		certPEM, err := ourCA(t).Sign(*issue)
		require.NoError(t, err)
		return certPEM
	}
	renewed, err := ca.ParseCertificate(certOf(renew("a", prefixBits["a"], 77)))
	require.NoError(t, err)
	wrongKey, err := ca.ParseCertificate(certOf(renew("b", prefixBits["a"], 78)))
	require.NoError(t, err)
	wrongPrefix, err := ca.ParseCertificate(certOf(renew("a", prefixBits["c"], 79)))
	require.NoError(t, err)
	require.ErrorContains(t, a.node.SetCertificate(wrongKey), "not for our key")
	require.ErrorContains(t, a.node.SetCertificate(wrongPrefix), "not for prefix")

	require.NoError(t, a.node.SetCertificate(renewed))
	a.node.Gossip(b.prefix)
	require.Eventually(t, func() bool {
		return b.node.PeerCertificate(a.prefix).SerialNumber.Uint64() == 77
	}, 5*time.Second, 5*time.Millisecond, "the peer still holds the old certificate")
}
