package ca_test

import (
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
)

const testdata = "../../testdata/registry/"

// openssl runs the openssl CLI, the independent judge of the format.
func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	require.NoError(t, err, "openssl %v: %s", args, out)
	return string(out)
}

func issueFromOpenSSLRequest(t *testing.T) (*ca.Authority, string) {
	t.Helper()
	authority, err := ca.LoadAuthority(testdata+"ca.crt", testdata+"ca.key")
	require.NoError(t, err)
	csrPEM, err := os.ReadFile(testdata + "node.csr")
	require.NoError(t, err)
	csr, key, err := ca.ParseRequest(csrPEM)
	require.NoError(t, err)
	subject, err := ca.NodeSubject(csr.RawSubject, "0000000000000001", 3)
	require.NoError(t, err)
	now := time.Now()
	certPEM, err := authority.Sign(ca.Issue{RawSubject: subject, PublicKey: key, Serial: 42, NotBefore: now, NotAfter: now.Add(365 * 24 * time.Hour)})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "cert.crt")
	require.NoError(t, os.WriteFile(path, certPEM, 0o644))
	return authority, path
}

func TestNodeCertificateFormatCheckedByOpenSSL(t *testing.T) {
	_, path := issueFromOpenSSLRequest(t)
	require.Contains(t, openssl(t, "verify", "-CAfile", testdata+"ca.crt", path), path+": OK")
	subject := openssl(t, "x509", "-in", path, "-noout", "-subject", "-nameopt", "RFC2253")
	require.Equal(t, "subject=serialNumber=3,CN=1/16,emailAddress=node@example.com,O=Example Org\n", subject)
	text := openssl(t, "x509", "-in", path, "-noout", "-text")
	require.Contains(t, text, "Signature Algorithm: sha512WithRSAEncryption")
	require.Contains(t, text, "Serial Number: 42 (0x2a)")
	require.Contains(t, text, "Issuer: CN = re6st test CA, emailAddress = registry@example.com")
	// The certificate carries the CSR's key: its modulus is node.key's.
	require.Equal(t,
		openssl(t, "rsa", "-in", testdata+"node.key", "-noout", "-modulus"),
		openssl(t, "x509", "-in", path, "-noout", "-modulus"))
	// The CN string type is UTF8String, as OpenSSL itself writes it.
	require.Contains(t, openssl(t, "asn1parse", "-in", path), "UTF8STRING        :1/16")
}

func TestReadsBackPrefixAndSubjectSerial(t *testing.T) {
	authority, path := issueFromOpenSSLRequest(t)
	require.Equal(t, "001000000000000100001101101110000000000001000010", authority.Network)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	cert, err := ca.ParseCertificate(data)
	require.NoError(t, err)
	prefix, err := ca.NodePrefix(cert)
	require.NoError(t, err)
	require.Equal(t, "0000000000000001", prefix)
	serial, ok := ca.SubjectSerial(cert)
	require.True(t, ok)
	require.Equal(t, 3, serial)
	require.Equal(t, []ca.SubjectField{{"O", "Example Org"}, {"emailAddress", "node@example.com"}}, ca.SubjectFieldsOf(cert))
}

func TestNodeSubjectReplacesRequestedCNAndSerial(t *testing.T) {
	key, _, err := ca.NewKey(1024)
	require.NoError(t, err)
	// A hand-crafted request with its own CN and serialNumber, by openssl.
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "k.pem")
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyPath, pemBlock("PRIVATE KEY", der), 0o600))
	csrPEM := openssl(t, "req", "-new", "-key", keyPath, "-subj", "/CN=evil/serialNumber=99/O=X")
	csr, _, err := ca.ParseRequest([]byte(csrPEM))
	require.NoError(t, err)
	subject, err := ca.NodeSubject(csr.RawSubject, "111", 0)
	require.NoError(t, err)
	authority, err := ca.LoadAuthority(testdata+"ca.crt", testdata+"ca.key")
	require.NoError(t, err)
	certPEM, err := authority.Sign(ca.Issue{RawSubject: subject, PublicKey: &key.PublicKey, Serial: 1, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	cert, err := ca.ParseCertificate(certPEM)
	require.NoError(t, err)
	require.Equal(t, "SERIALNUMBER=0,CN=7/3,O=X", cert.Subject.String(), "RFC 2253 order: last RDN first")
}

func TestNewRequestRefusesReservedFields(t *testing.T) {
	key, _, err := ca.NewKey(1024)
	require.NoError(t, err)
	_, err = ca.NewRequest(key, []ca.SubjectField{{"CN", "x"}})
	require.ErrorIs(t, err, ca.ErrReservedField)
	_, err = ca.NewRequest(key, []ca.SubjectField{{"serialNumber", "1"}})
	require.ErrorIs(t, err, ca.ErrReservedField)
	_, err = ca.NewRequest(key, []ca.SubjectField{{"XX", "1"}})
	require.ErrorContains(t, err, "unknown subject field")
	csrPEM, err := ca.NewRequest(key, []ca.SubjectField{{"O", "Acme"}, {"C", "FR"}})
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "req.csr")
	require.NoError(t, os.WriteFile(path, csrPEM, 0o644))
	out := openssl(t, "req", "-in", path, "-noout", "-verify", "-subject", "-text")
	require.Contains(t, out, "subject=O = Acme, C = FR")
	require.Contains(t, out, "sha512WithRSAEncryption")
}

func TestParseRequestRejectsBadInput(t *testing.T) {
	_, _, err := ca.ParseRequest([]byte("garbage"))
	require.ErrorContains(t, err, "no PEM certificate request")
	_, _, err = ca.ParseRequest(pemBlock("CERTIFICATE REQUEST", []byte{0x30, 0x03, 1, 2, 3}))
	require.ErrorContains(t, err, "malformed certificate request")
	csrPEM, err := os.ReadFile(testdata + "node.csr")
	require.NoError(t, err)
	csr, _, err := ca.ParseRequest(csrPEM)
	require.NoError(t, err)
	tampered := append([]byte(nil), csr.Raw...)
	tampered[len(tampered)-5] ^= 0xff // inside the signature
	_, _, err = ca.ParseRequest(pemBlock("CERTIFICATE REQUEST", tampered))
	require.ErrorContains(t, err, "signature")
}

func TestFingerprintAgainstOpenSSL(t *testing.T) {
	certPEM, err := os.ReadFile(testdata + "ca.crt")
	require.NoError(t, err)
	cert, err := ca.ParseCertificate(certPEM)
	require.NoError(t, err)
	out := openssl(t, "x509", "-in", testdata+"ca.crt", "-noout", "-fingerprint", "-sha256")
	digits := strings.TrimSpace(strings.SplitN(out, "=", 2)[1])
	require.NoError(t, ca.CheckFingerprint(cert.Raw, "sha256:"+digits))
	require.NoError(t, ca.CheckFingerprint(cert.Raw, "SHA256:"+strings.ToLower(strings.ReplaceAll(digits, ":", ""))))
	err = ca.CheckFingerprint(cert.Raw, "sha256:"+strings.Repeat("00", 32))
	require.ErrorContains(t, err, "CA fingerprint mismatch")
	require.ErrorContains(t, ca.CheckFingerprint(cert.Raw, "whirl:00"), "unknown")
	require.ErrorContains(t, ca.CheckFingerprint(cert.Raw, "sha1"), "ALG:HEX")
}
