package ca

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"
)

var fingerprintHashes = map[string]func() hash.Hash{
	"md5":    md5.New,
	"sha1":   sha1.New,
	"sha224": sha256.New224,
	"sha256": sha256.New,
	"sha384": sha512.New384,
	"sha512": sha512.New,
}

// CheckFingerprint compares the hash of a DER certificate with a
// fingerprint written "ALG:HEX" (e.g. "sha256:ab12..."); colons inside the
// hex digits, as openssl prints them, are accepted.
func CheckFingerprint(der []byte, fingerprint string) error {
	algorithm, digits, ok := strings.Cut(fingerprint, ":")
	if !ok {
		return fmt.Errorf("fingerprint %q is not ALG:HEX", fingerprint)
	}
	newHash, ok := fingerprintHashes[strings.ToLower(algorithm)]
	if !ok {
		return fmt.Errorf("fingerprint algorithm %q unknown (md5, sha1, sha224, sha256, sha384, sha512)", algorithm)
	}
	want, err := hex.DecodeString(strings.ReplaceAll(digits, ":", ""))
	if err != nil {
		return fmt.Errorf("fingerprint %q: bad hex digits", fingerprint)
	}
	h := newHash()
	h.Write(der)
	got := h.Sum(nil)
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return fmt.Errorf("CA fingerprint mismatch: the registry's CA has %s:%s, expected %s", strings.ToLower(algorithm), hex.EncodeToString(got), fingerprint)
	}
	return nil
}
