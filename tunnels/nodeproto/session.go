package nodeproto

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"math"
	"net/netip"
	"time"
)

// SessionTimeout is how long a request may stay unanswered before the
// session is considered dead and the next send handshakes again.
const SessionTimeout = 60 * time.Second

// macSize is the size of the HMAC-SHA256 tag that ends every message.
const macSize = sha256.Size

// session is what we know of one peer, keyed by its certificate's prefix
// (or, before the certificate is known, by the prefix we were asked to
// reach).
type session struct {
	prefix   netip.Prefix
	bits     string
	cert     *x509.Certificate // nil until the peer sends it
	protocol int

	key        []byte    // confirmed secret, nil if none
	recv, send uint32    // last seqno accepted / sent under key
	pending    []byte    // secret we sent in a hello, used once the peer uses it
	awaiting   time.Time // when the oldest unanswered request was sent; zero if none
	lastHello  time.Time // last handshake frame we initiated (real clock)
	lastAnswer time.Time // last handshake frame we sent in answer (real clock)
	up         chan struct{}

	// The last tunnel request answered, so that a retransmission gets the
	// same answer without asking the handler twice.
	tunnelID    uint32
	tunnelReply []byte
}

func newSession(prefix netip.Prefix, bits string) *session {
	return &session{prefix: prefix, bits: bits, up: make(chan struct{})}
}

// alive reports whether messages may be sent under the session key.
func (s *session) alive(now time.Time) bool {
	return s.key != nil && s.send < math.MaxUint32 &&
		(s.awaiting.IsZero() || now.Sub(s.awaiting) < SessionTimeout)
}

// setCert records the peer's certificate; a different one replaces it
// only if it expires later (a renewal), so a replayed old certificate
// changes nothing.
func (s *session) setCert(cert *x509.Certificate) {
	if s.cert == nil || cert.NotAfter.After(s.cert.NotAfter) {
		s.cert = cert
	}
}

// install makes secret the session key and wakes whoever waits for it.
func (s *session) install(secret []byte) {
	s.key, s.pending = secret, nil
	s.recv, s.send = seqHello, seqHello
	s.awaiting = time.Time{}
	close(s.up)
	s.up = make(chan struct{})
}

func mac(key, data []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(data)
	return h.Sum(nil)
}

// seal frames payload as the next message: seqno, payload, HMAC.
func (s *session) seal(payload []byte) []byte {
	s.send++
	b := make([]byte, 4, 4+len(payload)+macSize)
	binary.BigEndian.PutUint32(b, s.send)
	b = append(b, payload...)
	return append(b, mac(s.key, b)...)
}

// open checks a message (seqno ≥ 3, at least macSize bytes after it) and
// returns its payload. A message under the pending secret confirms it.
func (s *session) open(seq uint32, frame []byte) ([]byte, Reason, bool) {
	body, tag := frame[:len(frame)-macSize], frame[len(frame)-macSize:]
	switch {
	case s.key != nil && hmac.Equal(mac(s.key, body), tag):
		if seq <= s.recv {
			return nil, DropReplay, false
		}
	case s.pending != nil && hmac.Equal(mac(s.pending, body), tag):
		s.install(s.pending)
	default:
		return nil, DropBadMAC, false
	}
	s.recv = seq
	s.awaiting = time.Time{}
	return body[4:], 0, true
}

// newer reports whether secret may replace floor under re6st's rule: new
// secrets compare greater than every earlier one.
func newer(secret, floor []byte) bool {
	return bytes.Compare(secret, floor) > 0
}
