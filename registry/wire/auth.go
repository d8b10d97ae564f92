package wire

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"time"
)

// HMACHeader carries the MAC of an authenticated request and of its answer.
const HMACHeader = "Re6stHMAC"

// SessionKeySize is the size of the secret returned by hello and of every
// key of the hash chain derived from it.
const SessionKeySize = sha1.Size

// NewHelloSecret returns a fresh 20-byte session secret: the current time in
// microseconds (8 bytes, big-endian) followed by 12 random bytes.
func NewHelloSecret(now time.Time) ([]byte, error) {
	secret := make([]byte, SessionKeySize)
	binary.BigEndian.PutUint64(secret, uint64(now.UnixMicro()))
	if _, err := rand.Read(secret[8:]); err != nil {
		return nil, err
	}
	return secret, nil
}

// RequestMAC is the MAC a client sends with a request: HMAC-SHA1 of the
// request path and query ("/method?args") under the current chain key.
func RequestMAC(key []byte, pathAndQuery string) []byte {
	return macSHA1(key, []byte(pathAndQuery))
}

// ResponseKey is the key that authenticates the answer to a request made
// with key: SHA1(key).
func ResponseKey(key []byte) []byte {
	sum := sha1.Sum(key)
	return sum[:]
}

// ResponseMAC is the MAC of an answer body: HMAC-SHA1 under ResponseKey(key).
func ResponseMAC(key, body []byte) []byte {
	return macSHA1(ResponseKey(key), body)
}

// NextKey is the chain key for the request after one made with key:
// SHA1(SHA1(key)). A MAC is never accepted twice because the key moves on.
func NextKey(key []byte) []byte {
	return ResponseKey(ResponseKey(key))
}

func macSHA1(key, data []byte) []byte {
	mac := hmac.New(sha1.New, key)
	mac.Write(data)
	return mac.Sum(nil)
}

// ErrBadHello is returned when a hello answer is not signed by the CA.
var ErrBadHello = errors.New("hello answer is not signed by the network CA")

// SealHello builds the answer to hello: the secret encrypted to the node's
// public key (PKCS#1 v1.5) followed by the CA's RSA-SHA512 signature of that
// ciphertext.
func SealHello(node *rsa.PublicKey, ca *rsa.PrivateKey, secret []byte) ([]byte, error) {
	ciphertext, err := rsa.EncryptPKCS1v15(rand.Reader, node, secret)
	if err != nil {
		return nil, err
	}
	signature, err := Sign(ca, ciphertext)
	if err != nil {
		return nil, err
	}
	return append(ciphertext, signature...), nil
}

// OpenHello checks and decrypts an answer built by SealHello. The two halves
// have the same length, as re6st requires the node and CA keys to have the
// same size.
func OpenHello(answer []byte, ca *rsa.PublicKey, node *rsa.PrivateKey) ([]byte, error) {
	if len(answer) == 0 || len(answer)%2 != 0 {
		return nil, ErrBadHello
	}
	half := len(answer) / 2
	ciphertext, signature := answer[:half], answer[half:]
	if err := Verify(ca, ciphertext, signature); err != nil {
		return nil, ErrBadHello
	}
	return rsa.DecryptPKCS1v15(nil, node, ciphertext)
}

// Sign returns the RSA PKCS#1 v1.5 SHA-512 signature of data.
func Sign(key *rsa.PrivateKey, data []byte) ([]byte, error) {
	digest := sha512.Sum512(data)
	return rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA512, digest[:])
}

// Verify checks an RSA PKCS#1 v1.5 SHA-512 signature.
func Verify(key *rsa.PublicKey, data, signature []byte) error {
	digest := sha512.Sum512(data)
	return rsa.VerifyPKCS1v15(key, crypto.SHA512, digest[:], signature)
}

// Encrypt encrypts a short message to a node (PKCS#1 v1.5), as re6st does
// for Babel keys and bootstrap answers.
func Encrypt(key *rsa.PublicKey, message []byte) ([]byte, error) {
	return rsa.EncryptPKCS1v15(rand.Reader, key, message)
}

// Decrypt is the inverse of Encrypt.
func Decrypt(key *rsa.PrivateKey, ciphertext []byte) ([]byte, error) {
	return rsa.DecryptPKCS1v15(nil, key, ciphertext)
}

// EncodeVersion returns a signed network version: PackInteger(version)
// followed by the CA's signature of those bytes.
func EncodeVersion(version uint64, ca *rsa.PrivateKey) ([]byte, error) {
	packed, err := PackInteger(version)
	if err != nil {
		return nil, err
	}
	signature, err := Sign(ca, packed)
	if err != nil {
		return nil, err
	}
	return append(packed, signature...), nil
}

// ErrBadVersion is returned for a network version whose signature does not
// verify.
var ErrBadVersion = errors.New("network version is not signed by the network CA")

// VerifyVersion checks a signed version and returns its number.
func VerifyVersion(signed []byte, ca *rsa.PublicKey) (uint64, error) {
	version, size, err := UnpackInteger(signed)
	if err != nil {
		return 0, err
	}
	if err := Verify(ca, signed[:size], signed[size:]); err != nil {
		return 0, ErrBadVersion
	}
	return version, nil
}

// VersionNumber reads the number of a signed version without checking the
// signature (the registry reads its own stored version this way).
func VersionNumber(signed []byte) (uint64, error) {
	version, _, err := UnpackInteger(signed)
	return version, err
}
