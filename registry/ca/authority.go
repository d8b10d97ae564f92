package ca

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"time"

	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// Authority is the network CA: its certificate, its key and the network
// prefix read from its serial number.
type Authority struct {
	Cert    *x509.Certificate
	CertPEM []byte
	Key     *rsa.PrivateKey
	Network string // bits of the network prefix
}

// LoadAuthority reads the CA certificate and its private key (PKCS#1 or
// PKCS#8 PEM).
func LoadAuthority(certPath, keyPath string) (*Authority, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w", certPath, err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA key %s: %w", keyPath, err)
	}
	public, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !public.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("CA key %s does not match the RSA key of %s", keyPath, certPath)
	}
	network, err := wire.NetworkFromSerial(cert.SerialNumber)
	if err != nil {
		return nil, fmt.Errorf("CA certificate %s: %w", certPath, err)
	}
	return &Authority{Cert: cert, CertPEM: certPEM, Key: key, Network: network}, nil
}

// ParseCertificate decodes one PEM certificate.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM certificate found")
	}
	return x509.ParseCertificate(block.Bytes)
}

// ParsePrivateKey decodes a PEM RSA private key, PKCS#1 or PKCS#8.
func ParsePrivateKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM key found")
	}
	if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return key, nil
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not an RSA private key: %w", err)
	}
	rsaKey, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, re6st needs RSA", key)
	}
	return rsaKey, nil
}

// Issue is what a node certificate is made of.
type Issue struct {
	RawSubject []byte // DER subject, e.g. from NodeSubject
	PublicKey  *rsa.PublicKey
	Serial     uint64
	NotBefore  time.Time
	NotAfter   time.Time
}

// Sign issues a certificate signed with SHA-512 and returns it in PEM.
func (a *Authority) Sign(issue Issue) ([]byte, error) {
	template := &x509.Certificate{
		SerialNumber:       new(big.Int).SetUint64(issue.Serial),
		RawSubject:         issue.RawSubject,
		NotBefore:          issue.NotBefore.UTC().Truncate(time.Second),
		NotAfter:           issue.NotAfter.UTC().Truncate(time.Second),
		SignatureAlgorithm: x509.SHA512WithRSA,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, a.Cert, issue.PublicKey, a.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

var (
	oidCommonName   = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}
)

// NodeSubject takes the subject of a CSR, drops any CN and serialNumber it
// has and appends the node's: CN "<int>/<len>" of prefix (UTF8String) and
// serialNumber subjectSerial (PrintableString), as OpenSSL writes them.
func NodeSubject(csrSubject []byte, prefix string, subjectSerial int) ([]byte, error) {
	var rdns pkix.RDNSequence
	rest, err := asn1.Unmarshal(csrSubject, &rdns)
	if err != nil || len(rest) > 0 {
		return nil, errors.New("malformed subject")
	}
	var kept pkix.RDNSequence
	for _, rdn := range rdns {
		var set pkix.RelativeDistinguishedNameSET
		for _, attribute := range rdn {
			if !attribute.Type.Equal(oidCommonName) && !attribute.Type.Equal(oidSerialNumber) {
				set = append(set, attribute)
			}
		}
		if len(set) > 0 {
			kept = append(kept, set)
		}
	}
	kept = append(kept,
		pkix.RelativeDistinguishedNameSET{{Type: oidCommonName, Value: asn1.RawValue{Tag: asn1.TagUTF8String, Bytes: []byte(wire.CommonName(prefix))}}},
		pkix.RelativeDistinguishedNameSET{{Type: oidSerialNumber, Value: asn1.RawValue{Tag: asn1.TagPrintableString, Bytes: []byte(strconv.Itoa(subjectSerial))}}},
	)
	return asn1.Marshal(kept)
}

// NodePrefix returns the prefix bits a node certificate's CN binds.
func NodePrefix(cert *x509.Certificate) (string, error) {
	return wire.PrefixFromCommonName(cert.Subject.CommonName)
}

// SubjectSerial returns the subject serialNumber of a node certificate, or
// ok=false if it has none.
func SubjectSerial(cert *x509.Certificate) (int, bool) {
	n, err := strconv.Atoi(cert.Subject.SerialNumber)
	return n, err == nil && n >= 0
}

// SerialUint64 returns a certificate serial number as an integer.
func SerialUint64(cert *x509.Certificate) (uint64, error) {
	if cert.SerialNumber.Sign() < 0 || !cert.SerialNumber.IsUint64() {
		return 0, fmt.Errorf("certificate serial %s does not fit in 64 bits", cert.SerialNumber)
	}
	return cert.SerialNumber.Uint64(), nil
}
