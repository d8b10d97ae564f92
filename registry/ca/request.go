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
	"strings"
)

// MinKeyBits is the smallest RSA key accepted in a CSR.
const MinKeyBits = 1024

// MaxKeyBits is the largest RSA key accepted in a CSR.
const MaxKeyBits = 8192

// ParseRequest decodes a PEM CSR, checks its signature and that it
// carries an RSA key of a usable size (re6st encrypts to node keys).
func ParseRequest(data []byte) (*x509.CertificateRequest, *rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, nil, errors.New("no PEM certificate request found")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("malformed certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, fmt.Errorf("certificate request signature: %w", err)
	}
	key, ok := csr.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, nil, fmt.Errorf("certificate request key is %T; re6st needs RSA", csr.PublicKey)
	}
	if bits := key.N.BitLen(); bits < MinKeyBits || bits > MaxKeyBits {
		return nil, nil, fmt.Errorf("RSA key of %d bits; between %d and %d required", bits, MinKeyBits, MaxKeyBits)
	}
	return csr, key, nil
}

// subjectAttributes maps the names accepted by re6st-conf --req to OIDs.
var subjectAttributes = map[string]asn1.ObjectIdentifier{
	"C":            {2, 5, 4, 6},
	"ST":           {2, 5, 4, 8},
	"L":            {2, 5, 4, 7},
	"O":            {2, 5, 4, 10},
	"OU":           {2, 5, 4, 11},
	"emailAddress": {1, 2, 840, 113549, 1, 9, 1},
}

// SubjectField is one "--req KEY VALUE" pair.
type SubjectField struct {
	Key, Value string
}

// ErrReservedField is returned for the subject fields the registry sets.
var ErrReservedField = errors.New("CN and serialNumber are set by the registry and cannot be requested")

// NewRequest makes a PEM CSR signed with SHA-512 whose subject holds
// fields in order.
func NewRequest(key *rsa.PrivateKey, fields []SubjectField) ([]byte, error) {
	var subject pkix.RDNSequence
	for _, field := range fields {
		switch field.Key {
		case "CN", "commonName", "serialNumber", "serial":
			return nil, ErrReservedField
		}
		oid, ok := subjectAttributes[field.Key]
		if !ok {
			return nil, fmt.Errorf("unknown subject field %q (known: C, ST, L, O, OU, emailAddress)", field.Key)
		}
		if strings.TrimSpace(field.Value) == "" {
			return nil, fmt.Errorf("subject field %s is empty", field.Key)
		}
		subject = append(subject, pkix.RelativeDistinguishedNameSET{{Type: oid, Value: field.Value}})
	}
	rawSubject, err := asn1.Marshal(subject)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		RawSubject:         rawSubject,
		SignatureAlgorithm: x509.SHA512WithRSA,
	}, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// SubjectFieldsOf returns the fields of a certificate subject that
// NewRequest accepts, so that re-enrolment keeps them.
func SubjectFieldsOf(cert *x509.Certificate) []SubjectField {
	var fields []SubjectField
	for _, attribute := range cert.Subject.Names {
		for name, oid := range subjectAttributes {
			if value, ok := attribute.Value.(string); ok && attribute.Type.Equal(oid) {
				fields = append(fields, SubjectField{Key: name, Value: value})
			}
		}
	}
	return fields
}

// NewKey generates an RSA key of bits bits and returns it with its PKCS#8
// PEM encoding.
func NewKey(bits int) (*rsa.PrivateKey, []byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
