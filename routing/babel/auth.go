package babel

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/crypto/blake2s"
)

// MACAlgorithm is an RFC 8967 MAC algorithm.
type MACAlgorithm int

// The two algorithms babeld implements.
const (
	HMACSHA256 MACAlgorithm = iota + 1
	BLAKE2s128
)

func (a MACAlgorithm) String() string {
	switch a {
	case HMACSHA256:
		return "hmac-sha256"
	case BLAKE2s128:
		return "blake2s128"
	}
	return fmt.Sprintf("mac-algorithm-%d", int(a))
}

// Key is one MAC key.
type Key struct {
	Algorithm MACAlgorithm
	Secret    []byte
}

// ParseKey parses "blake2s128:HEX" or "hmac-sha256:HEX". BLAKE2s-128 keys
// are 1 to 32 octets, HMAC-SHA256 keys 1 to 64 (babeld's limits).
func ParseKey(s string) (Key, error) {
	alg, hexKey, ok := strings.Cut(s, ":")
	if !ok {
		return Key{}, fmt.Errorf("MAC key %q: want ALGORITHM:HEX, with blake2s128 or hmac-sha256", s)
	}
	secret, err := hex.DecodeString(hexKey)
	if err != nil {
		return Key{}, fmt.Errorf("MAC key: %w", err)
	}
	var k Key
	switch alg {
	case "blake2s128":
		k = Key{Algorithm: BLAKE2s128, Secret: secret}
	case "hmac-sha256":
		k = Key{Algorithm: HMACSHA256, Secret: secret}
	default:
		return Key{}, fmt.Errorf("MAC key: unknown algorithm %q (want blake2s128 or hmac-sha256)", alg)
	}
	return k, k.validate()
}

func (k Key) validate() error {
	maxLen := 64
	if k.Algorithm == BLAKE2s128 {
		maxLen = blake2s.Size
	} else if k.Algorithm != HMACSHA256 {
		return fmt.Errorf("MAC key: unknown algorithm %d", int(k.Algorithm))
	}
	if len(k.Secret) == 0 || len(k.Secret) > maxLen {
		return fmt.Errorf("MAC key: %s keys are 1 to %d octets, got %d", k.Algorithm, maxLen, len(k.Secret))
	}
	return nil
}

func (k Key) newHash() hash.Hash {
	if k.Algorithm == BLAKE2s128 {
		h, err := blake2s.New128(k.Secret)
		if err != nil {
			panic(err) // the key length was validated
		}
		return h
	}
	return hmac.New(sha256.New, k.Secret)
}

// mac computes the MAC of pkt (header and body) sent from src to dst on the
// Babel port (RFC 8967 §4.1 pseudo-header).
func (k Key) mac(src, dst netip.Addr, pkt []byte) []byte {
	h := k.newHash()
	var ph [36]byte
	s, d := src.As16(), dst.As16()
	copy(ph[0:16], s[:])
	binary.BigEndian.PutUint16(ph[16:18], Port)
	copy(ph[18:34], d[:])
	binary.BigEndian.PutUint16(ph[34:36], Port)
	h.Write(ph[:])
	h.Write(pkt)
	return h.Sum(nil)
}

// Auth configures RFC 8967 MAC authentication on an interface.
type Auth struct {
	// Sign keys each add one MAC TLV to every packet sent.
	Sign []Key
	// Accept keys are also accepted on input (key rotation).
	Accept []Key
	// Permissive accepts packets without a valid MAC, as babeld's
	// accept-bad-signatures does while a network migrates.
	Permissive bool
}

func (a *Auth) validate() error {
	if len(a.Sign) == 0 && !a.Permissive {
		return fmt.Errorf("MAC authentication needs at least one signing key")
	}
	for _, k := range append(append([]Key{}, a.Sign...), a.Accept...) {
		if err := k.validate(); err != nil {
			return err
		}
	}
	return nil
}

// Timing of the challenge protocol (as in BIRD).
const (
	challengeTimeout  = 30 * time.Second
	challengeInterval = 300 * time.Millisecond
	nonceLen          = 16
	pcIndexLen        = 8
)

// authState is the MAC state of one interface.
type authState struct {
	cfg     Auth
	index   []byte
	counter uint32
	peers   map[netip.Addr]*authPeer
}

// authPeer is what we know of a neighbour's packet counter (RFC 9467 keeps
// the multicast and unicast counters apart).
type authPeer struct {
	index         []byte
	pcMulticast   uint32
	pcUnicast     uint32
	nonce         []byte
	nonceSent     time.Duration
	lastReplySent time.Duration
	replied       bool
}

func newAuthState(cfg Auth, index []byte) *authState {
	return &authState{cfg: cfg, index: index, peers: make(map[netip.Addr]*authPeer)}
}

// nextPC returns the PC TLV for the next packet.
func (a *authState) nextPC() PC {
	a.counter++
	return PC{Counter: a.counter, Index: a.index}
}

// sign appends one MAC TLV per signing key to pkt.
func (a *authState) sign(src, dst netip.Addr, pkt []byte) []byte {
	body := len(pkt)
	for _, k := range a.cfg.Sign {
		pkt = AppendTrailerMAC(pkt, k.mac(src, dst, pkt[:body]))
	}
	return pkt
}

// verify reports whether any MAC of the trailer matches any key.
func (a *authState) verify(src, dst netip.Addr, packet []byte, macs [][]byte) bool {
	for _, keys := range [][]Key{a.cfg.Sign, a.cfg.Accept} {
		for _, k := range keys {
			want := k.mac(src, dst, packet)
			for _, m := range macs {
				if hmac.Equal(want, m) {
					return true
				}
			}
		}
	}
	return false
}

// challengeAction is what checkPC asks the caller to send back.
type challengeAction struct {
	request []byte // a nonce to send in a Challenge Request
	replies [][]byte
}

// checkPC applies RFC 8967 §4.3 (with RFC 9467's two counters) to a packet
// whose MAC verified. It returns whether to accept the packet and which
// challenge TLVs to send to its source.
func (a *authState) checkPC(src netip.Addr, multicast bool, msgs []Message, now time.Duration, nonce func() []byte) (bool, challengeAction) {
	var act challengeAction
	var pc *PC
	challengeOK := false
	peer := a.peers[src]
	for _, m := range msgs {
		switch m := m.(type) {
		case PC:
			if pc == nil {
				pc = &m
			}
		case ChallengeRequest:
			act.replies = append(act.replies, m.Nonce)
		case ChallengeReply:
			if peer != nil && peer.nonce != nil && bytes.Equal(m.Nonce, peer.nonce) && now-peer.nonceSent <= challengeTimeout {
				challengeOK = true
			}
		}
	}
	if pc == nil {
		return false, act
	}
	if peer == nil {
		peer = &authPeer{}
		a.peers[src] = peer
	}
	if len(act.replies) > 0 {
		if peer.replied && now-peer.lastReplySent < challengeInterval {
			act.replies = nil
		} else {
			peer.lastReplySent, peer.replied = now, true
		}
	}
	switch {
	case challengeOK:
		peer.index = append(peer.index[:0], pc.Index...)
		peer.pcMulticast, peer.pcUnicast = pc.Counter, pc.Counter
		peer.nonce = nil
		return true, act
	case peer.index != nil && bytes.Equal(peer.index, pc.Index):
		last := &peer.pcUnicast
		if multicast {
			last = &peer.pcMulticast
		}
		if pc.Counter <= *last {
			return false, act
		}
		*last = pc.Counter
		return true, act
	}
	if peer.nonce == nil || now-peer.nonceSent >= challengeInterval {
		peer.nonce, peer.nonceSent = nonce(), now
		act.request = peer.nonce
	}
	return false, act
}
