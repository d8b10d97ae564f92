package nodeproto

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// MinProtocol is the oldest protocol a peer may announce in its handshake.
const MinProtocol = 10

// DefaultRetry is how often requests and handshakes are retransmitted.
const DefaultRetry = 2 * time.Second

// Peer is the authenticated sender of a message.
type Peer struct {
	Prefix netip.Prefix      // the certificate's prefix
	Bits   string            // the same, as re6st's binary string
	Cert   *x509.Certificate // verified against the CA and the CRL
	Via    netip.AddrPort    // underlay endpoint of a direct message; invalid over the overlay
}

// Handler answers the peers. Its methods are called synchronously from
// Receive (and ServeRelay), without any lock of the Node held: they may
// call the Node but should not block for long.
type Handler interface {
	// Version returns our signed network version (registry/wire format).
	Version() []byte
	// NewerVersion is called when a peer sent a version newer than ours;
	// its CA signature has been verified.
	NewerVersion(peer Peer, signed []byte)
	// Addresses returns what code 1 answers.
	Addresses() []Address
	// TunnelSetup answers a tunnel request. Observed is filled in by the
	// Node. A retransmitted request (same request id) is answered from
	// the previous answer, without calling TunnelSetup again.
	TunnelSetup(peer Peer, req TunnelRequest) TunnelReply
	// TunnelKill is called on code 2; it returns true when the tunnel to
	// peer is drained and may go (the Node then answers code 3).
	TunnelKill(peer Peer) (ready bool)
	// Topology returns what code 5 answers: "<n> cn1 cn2 ...".
	Topology() string
}

// BindingHandler is implemented by a Handler that takes newer WireGuard
// key bindings (code 10); without it, they are refused.
type BindingHandler interface {
	// KeyBinding applies a peer's newer key binding to its WireGuard
	// tunnels; an error says why not (sent back to the peer). A
	// retransmitted binding must be taken again without harm.
	KeyBinding(peer Peer, binding []byte) error
}

// Identity is the node's CA, certificate and key (the fields of
// registry/client.Identity, which converts to it).
type Identity struct {
	CA   *x509.Certificate
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// Config configures a Node.
type Config struct {
	Identity Identity
	// Software is what the node answers to the software query (code 4).
	Software string
	Network  netip.Prefix
	Protocol int // announced in handshakes; 0 means MinProtocol
	// Revoked reports whether a certificate serial is revoked. It may
	// change over time; it is asked on every message and must not call
	// the Node. nil: nothing is revoked.
	Revoked func(serial uint64) bool
	// Send sends one datagram: to dst:326 over the overlay when via is
	// invalid, otherwise directly to the underlay endpoint via (the inner
	// IPv6 destination being dst). It must not block for long.
	Send    func(dst netip.Addr, via netip.AddrPort, payload []byte) error
	Handler Handler
	Now     func() time.Time // nil: time.Now
	Logger  zerolog.Logger
	// Retry is the retransmission interval of requests and handshakes;
	// 0 means DefaultRetry. A handshake frame is answered at most once per
	// Retry/2 per peer.
	Retry time.Duration
	// IsRegistry, if set, restricts code 5 (topology) to the peers for
	// which it returns true, as re6st answers it only to the registry.
	// The local relay is always answered.
	IsRegistry func(peer netip.Prefix) bool
}

// Node speaks the node protocol for one node. It owns no socket: the daemon
// passes received datagrams to Receive and Node sends through Config.Send.
type Node struct {
	cfg         Config
	now         func() time.Time
	log         zerolog.Logger
	prefix      netip.Prefix
	bits        string
	caKey       *rsa.PublicKey
	roots       *x509.CertPool
	fingerprint [sha256.Size]byte
	hello0      []byte // our hello0 frame, constant
	retry       time.Duration

	mu       sync.Mutex
	sessions map[netip.Prefix]*session
	floors   map[netip.Prefix][]byte // greatest secret seen per peer, kept across Forget
	waiters  map[waitKey][]chan []byte

	stats counters
}

type waitKey struct {
	peer netip.Prefix
	code byte
	id   uint32
}

// New checks the configuration and returns a Node.
func New(cfg Config) (*Node, error) {
	id := cfg.Identity
	if id.CA == nil || id.Cert == nil || id.Key == nil {
		return nil, errors.New("nodeproto: identity needs the CA, the certificate and the key")
	}
	caKey, ok := id.CA.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("nodeproto: the CA key is not RSA")
	}
	if public, ok := id.Cert.PublicKey.(*rsa.PublicKey); !ok || !public.Equal(&id.Key.PublicKey) {
		return nil, errors.New("nodeproto: the key does not match the certificate")
	}
	if !cfg.Network.IsValid() || !cfg.Network.Addr().Is6() || cfg.Network.Addr().Is4In6() || cfg.Network != cfg.Network.Masked() {
		return nil, fmt.Errorf("nodeproto: network %s is not a masked IPv6 prefix", cfg.Network)
	}
	if cfg.Send == nil || cfg.Handler == nil {
		return nil, errors.New("nodeproto: Send and Handler are required")
	}
	bits, err := ca.NodePrefix(id.Cert)
	if err != nil {
		return nil, fmt.Errorf("nodeproto: our certificate: %w", err)
	}
	prefix, err := PrefixOf(cfg.Network, bits)
	if err != nil {
		return nil, fmt.Errorf("nodeproto: our certificate: %w", err)
	}
	if cfg.Protocol == 0 {
		cfg.Protocol = MinProtocol
	}
	if cfg.Revoked == nil {
		cfg.Revoked = func(uint64) bool { return false }
	}
	n := &Node{
		cfg: cfg, now: cfg.Now, log: cfg.Logger, prefix: prefix, bits: bits, caKey: caKey,
		roots: x509.NewCertPool(), fingerprint: sha256.Sum256(id.Cert.Raw),
		hello0: append(binary.BigEndian.AppendUint32(nil, seqHello0), id.Cert.Raw...),
		retry:  cfg.Retry, sessions: map[netip.Prefix]*session{},
		floors: map[netip.Prefix][]byte{}, waiters: map[waitKey][]chan []byte{},
	}
	n.roots.AddCert(id.CA)
	if n.now == nil {
		n.now = time.Now
	}
	if n.retry <= 0 {
		n.retry = DefaultRetry
	}
	return n, nil
}

// Prefix returns our own prefix.
func (n *Node) Prefix() netip.Prefix { return n.prefix }

// PeerCertificate is the verified certificate of the peer owning prefix,
// nil if no session has one (the daemon records its serial with the
// tunnel, to tear the tunnel down if the CRL names it).
func (n *Node) PeerCertificate(prefix netip.Prefix) *x509.Certificate {
	n.mu.Lock()
	defer n.mu.Unlock()
	if s := n.sessions[prefix]; s != nil {
		return s.cert
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (n *Node) Stats() Stats {
	s := n.stats.snapshot()
	n.mu.Lock()
	for _, session := range n.sessions {
		if session.key != nil {
			s.Sessions++
		}
	}
	n.mu.Unlock()
	return s
}

func (n *Node) drop(r Reason, src netip.Addr) {
	n.stats.dropped[r].Add(1)
	n.log.Debug().Stringer("src", src).Stringer("reason", r).Msg("node protocol: dropped")
}

func (n *Node) send(dst netip.Addr, via netip.AddrPort, frame []byte) {
	n.stats.sent.Add(1)
	if err := n.cfg.Send(dst, via, frame); err != nil {
		n.stats.sendErrors.Add(1)
		n.log.Debug().Err(err).Stringer("dst", dst).Stringer("via", via).Msg("node protocol: send failed")
	}
}

// peerSource reports whether src may be a peer's address.
func (n *Node) peerSource(src netip.Addr) bool {
	return src.Is6() && !src.Is4In6() && src.Zone() == "" && n.cfg.Network.Contains(src) && !n.prefix.Contains(src)
}

// checkPeer validates a peer prefix given to the API.
func (n *Node) checkPeer(peer netip.Prefix) (netip.Prefix, string, error) {
	peer = peer.Masked()
	bits, err := BitsOf(n.cfg.Network, peer)
	if err != nil || peer.Overlaps(n.prefix) {
		return peer, "", fmt.Errorf("nodeproto: %s: %w", peer, errNotPeer)
	}
	return peer, bits, nil
}

// sessionFor returns the session of prefix, creating it. Locked.
func (n *Node) sessionFor(prefix netip.Prefix, bits string) *session {
	s := n.sessions[prefix]
	if s == nil {
		s = newSession(prefix, bits)
		n.sessions[prefix] = s
	}
	return s
}

// lookup returns the session with a certificate whose prefix is the
// longest one containing src. Locked.
func (n *Node) lookup(src netip.Addr) *session {
	for bits := 128; bits >= n.cfg.Network.Bits(); bits-- {
		p, _ := src.Prefix(bits)
		if s := n.sessions[p]; s != nil && s.cert != nil {
			return s
		}
	}
	return nil
}

// certificate is a verified peer certificate.
type certificate struct {
	cert   *x509.Certificate
	prefix netip.Prefix
	bits   string
}

// verify checks a peer's certificate (DER) against the CA, the clock, the
// CRL and the source address.
func (n *Node) verify(src netip.Addr, der []byte) (certificate, Reason, bool) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return certificate{}, DropBadCert, false
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return certificate{}, DropBadCert, false
	}
	_, err = cert.Verify(x509.VerifyOptions{Roots: n.roots, CurrentTime: n.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	var unknownAuthority x509.UnknownAuthorityError
	switch {
	case errors.As(err, &unknownAuthority):
		return certificate{}, DropWrongCA, false
	case err != nil:
		return certificate{}, DropBadCert, false
	}
	if r, bad := n.invalid(cert); bad {
		return certificate{}, r, false
	}
	bits, err := ca.NodePrefix(cert)
	if err != nil {
		return certificate{}, DropBadCert, false
	}
	prefix, err := PrefixOf(n.cfg.Network, bits)
	if err != nil {
		return certificate{}, DropBadCert, false
	}
	if !prefix.Contains(src) {
		return certificate{}, DropPrefixMismatch, false
	}
	return certificate{cert, prefix, bits}, 0, true
}

// invalid reports whether a certificate accepted earlier is now revoked or
// expired.
func (n *Node) invalid(cert *x509.Certificate) (Reason, bool) {
	serial, err := ca.SerialUint64(cert)
	switch {
	case err != nil:
		return DropBadCert, true
	case n.cfg.Revoked(serial):
		return DropRevoked, true
	case n.now().After(cert.NotAfter):
		return DropBadCert, true
	}
	return 0, false
}

// Receive handles one datagram of the node protocol: src is the inner IPv6
// source, via the underlay endpoint of a direct message (invalid for a
// message over the overlay). Bad input is dropped and counted; it never
// changes any state.
func (n *Node) Receive(src netip.Addr, via netip.AddrPort, payload []byte) {
	n.stats.received.Add(1)
	if !n.peerSource(src) {
		n.drop(DropBadSource, src)
		return
	}
	if len(payload) <= 4 {
		n.drop(DropShort, src)
		return
	}
	seq, body := binary.BigEndian.Uint32(payload), payload[4:]
	var r Reason
	var ok bool
	switch seq {
	case seqHello0:
		r, ok = n.receiveHello0(src, via, body)
	case seqHello1:
		r, ok = n.receiveHello1(src, via, body)
	case seqHello:
		r, ok = n.receiveHello(src, via, body)
	default:
		r, ok = n.receiveMessage(src, via, seq, payload)
	}
	if !ok {
		n.drop(r, src)
	}
}

// answerAllowed rate-limits handshake answers to one peer. Like the
// retransmissions it is paced by the real clock, not Config.Now. Locked.
func (n *Node) answerAllowed(s *session) bool {
	now := time.Now()
	if !s.lastAnswer.IsZero() && now.Sub(s.lastAnswer) < n.retry/2 {
		return false
	}
	s.lastAnswer = now
	return true
}

// hello1 builds "I have your certificate (fingerprint), here is mine".
// Locked; s.cert is set.
func (n *Node) hello1(s *session) []byte {
	fingerprint := sha256.Sum256(s.cert.Raw)
	b := binary.BigEndian.AppendUint32(nil, seqHello1)
	b = append(b, n.packedProtocol()...)
	b = append(b, fingerprint[:]...)
	return append(b, n.cfg.Identity.Cert.Raw...)
}

func (n *Node) packedProtocol() []byte {
	packed, _ := wire.PackInteger(uint64(n.cfg.Protocol))
	return packed
}

// handshakeProtocol reads the protocol that starts hello1 and hello.
func handshakeProtocol(body []byte) (int, []byte, Reason, bool) {
	protocol, size, err := wire.UnpackInteger(body)
	switch {
	case err != nil:
		return 0, nil, DropShort, false
	case protocol < MinProtocol:
		return 0, nil, DropOldProtocol, false
	}
	return int(min(protocol, 1<<16)), body[size:], 0, true
}

func (n *Node) receiveHello0(src netip.Addr, via netip.AddrPort, body []byte) (Reason, bool) {
	c, r, ok := n.verify(src, body)
	if !ok {
		return r, false
	}
	n.mu.Lock()
	s := n.sessionFor(c.prefix, c.bits)
	s.setCert(c.cert)
	if !n.answerAllowed(s) {
		n.mu.Unlock()
		return DropRateLimited, false
	}
	frame := n.hello1(s)
	n.mu.Unlock()
	n.send(src, via, frame)
	return 0, true
}

func (n *Node) receiveHello1(src netip.Addr, via netip.AddrPort, body []byte) (Reason, bool) {
	protocol, rest, r, ok := handshakeProtocol(body)
	if !ok {
		return r, false
	}
	if len(rest) <= sha256.Size {
		return DropShort, false
	}
	fingerprint, der := rest[:sha256.Size], rest[sha256.Size:]
	c, r, ok := n.verify(src, der)
	if !ok {
		return r, false
	}
	n.mu.Lock()
	s := n.sessionFor(c.prefix, c.bits)
	s.setCert(c.cert)
	s.protocol = protocol
	if !n.answerAllowed(s) {
		n.mu.Unlock()
		return DropRateLimited, false
	}
	var frame []byte
	if bytes.Equal(fingerprint, n.fingerprint[:]) {
		var err error
		if frame, err = n.hello(s); err != nil {
			n.mu.Unlock()
			n.log.Warn().Err(err).Str("peer", s.bits).Msg("node protocol: cannot make hello")
			return DropBadCert, false
		}
	} else {
		frame = n.hello1(s) // it has an older certificate of ours
	}
	n.mu.Unlock()
	n.send(src, via, frame)
	return 0, true
}

// hello builds a seqno-2 frame with a new secret, which becomes s.pending.
// Locked; s.cert is set.
func (n *Node) hello(s *session) ([]byte, error) {
	secret, err := wire.NewHelloSecret(n.now())
	if err != nil {
		return nil, err
	}
	if floor := n.floors[s.prefix]; !newer(secret, floor) {
		// Our clock went back: stay above every secret seen.
		binary.BigEndian.PutUint64(secret, binary.BigEndian.Uint64(floor)+1)
	}
	encrypted, err := wire.Encrypt(s.cert.PublicKey.(*rsa.PublicKey), secret)
	if err != nil {
		return nil, err
	}
	signature, err := wire.Sign(n.cfg.Identity.Key, encrypted)
	if err != nil {
		return nil, err
	}
	s.pending = secret
	n.floors[s.prefix] = secret
	b := binary.BigEndian.AppendUint32(nil, seqHello)
	b = append(b, n.packedProtocol()...)
	b = append(b, encrypted...)
	return append(b, signature...), nil
}

func (n *Node) receiveHello(src netip.Addr, via netip.AddrPort, body []byte) (Reason, bool) {
	protocol, rest, r, ok := handshakeProtocol(body)
	if !ok {
		return r, false
	}
	size := n.cfg.Identity.Key.Size()
	if len(rest) <= size {
		return DropShort, false
	}
	encrypted, signature := rest[:size], rest[size:]
	version := n.cfg.Handler.Version()
	n.mu.Lock()
	s := n.lookup(src)
	if s == nil {
		n.mu.Unlock()
		return DropNoSession, false
	}
	if r, bad := n.invalid(s.cert); bad {
		n.forget(s.prefix)
		n.mu.Unlock()
		return r, false
	}
	if wire.Verify(s.cert.PublicKey.(*rsa.PublicKey), encrypted, signature) != nil {
		n.mu.Unlock()
		return DropBadSignature, false
	}
	secret, err := wire.Decrypt(n.cfg.Identity.Key, encrypted)
	if err != nil || len(secret) != wire.SessionKeySize {
		n.mu.Unlock()
		return DropBadSignature, false
	}
	if !newer(secret, n.floors[s.prefix]) {
		n.mu.Unlock()
		return DropStaleSecret, false
	}
	n.floors[s.prefix] = secret
	s.install(secret)
	s.protocol = protocol
	n.stats.handshakes.Add(1)
	frame := s.seal(append([]byte{CodeVersion}, version...))
	s.awaiting = n.now()
	n.mu.Unlock()
	n.log.Debug().Str("peer", s.bits).Stringer("via", via).Msg("node protocol: session installed")
	n.send(src, via, frame)
	return 0, true
}

func (n *Node) receiveMessage(src netip.Addr, via netip.AddrPort, seq uint32, frame []byte) (Reason, bool) {
	if len(frame) < 4+macSize {
		return DropShort, false
	}
	n.mu.Lock()
	s := n.lookup(src)
	if s == nil || s.key == nil && s.pending == nil {
		n.mu.Unlock()
		return DropNoSession, false
	}
	if r, bad := n.invalid(s.cert); bad {
		n.forget(s.prefix)
		n.mu.Unlock()
		return r, false
	}
	payload, r, ok := s.open(seq, frame)
	if !ok {
		n.mu.Unlock()
		return r, false
	}
	peer := Peer{Prefix: s.prefix, Bits: s.bits, Cert: s.cert, Via: via}
	n.mu.Unlock()
	n.stats.accepted.Add(1)
	n.dispatch(peer, src, payload)
	return 0, true
}

// forget drops the session of prefix. Locked.
func (n *Node) forget(prefix netip.Prefix) {
	delete(n.sessions, prefix)
}

// Forget drops the session with a peer (revoked, tunnel gone). The next
// message to or from it needs a new handshake.
func (n *Node) Forget(peer netip.Prefix) {
	n.mu.Lock()
	n.forget(peer.Masked())
	n.mu.Unlock()
}

// reply sends payload to the peer that sent a message, the way it came.
// A nil payload is the empty acknowledgement. expectReply marks the
// session as waiting for an answer.
func (n *Node) reply(peer Peer, src netip.Addr, payload []byte, expectReply bool) {
	n.mu.Lock()
	s := n.sessions[peer.Prefix]
	if s == nil || s.key == nil {
		n.mu.Unlock()
		return
	}
	frame := s.seal(payload)
	if expectReply && s.awaiting.IsZero() {
		s.awaiting = n.now()
	}
	n.mu.Unlock()
	n.send(src, peer.Via, frame)
}

// dispatch acts on an authenticated payload.
func (n *Node) dispatch(peer Peer, src netip.Addr, payload []byte) {
	if len(payload) == 0 {
		return // acknowledgement
	}
	code, data := payload[0], payload[1:]
	relayed := code&RelayFlag != 0
	switch base := code &^ RelayFlag; {
	case base == CodeVersion && !relayed:
		n.receiveVersion(peer, src, data)
	case base == CodeAddresses || base == CodeSoftware || base == CodeTopology:
		if len(data) > 0 {
			n.deliver(waitKey{peer.Prefix, code, 0}, data)
			return
		}
		if answer := n.answer(base, &peer); answer != nil {
			n.reply(peer, src, append([]byte{code}, answer...), false)
		} else {
			n.reply(peer, src, nil, false)
		}
	case code == CodeKill:
		if n.cfg.Handler.TunnelKill(peer) {
			n.reply(peer, src, []byte{CodeKillReady}, false)
		} else {
			n.reply(peer, src, nil, false)
		}
	case code == CodeKillReady:
		n.deliver(waitKey{peer.Prefix, code, 0}, data)
	case code == CodeText:
		n.log.Info().Str("peer", peer.Bits).Str("text", string(data[:min(len(data), 1024)])).Msg("node protocol: message from peer")
		n.reply(peer, src, nil, false)
	case code == CodeKeyBinding:
		reason := "key bindings not taken"
		if h, ok := n.cfg.Handler.(BindingHandler); ok {
			reason = ""
			if err := h.KeyBinding(peer, data); err != nil {
				reason = err.Error()
			}
		}
		n.reply(peer, src, append([]byte{CodeKeyBindingAck}, reason...), false)
	case code == CodeKeyBindingAck:
		n.deliver(waitKey{peer.Prefix, code, 0}, data)
	case code == CodeTunnelSetup:
		n.receiveTunnelSetup(peer, src, data)
	case code == CodeTunnelReply:
		id, _, err := parseTunnelReply(data)
		if err != nil {
			n.drop(DropBadPayload, src)
			return
		}
		n.deliver(waitKey{peer.Prefix, code, id}, data)
	default:
		n.drop(DropUnknownCode, src)
		n.reply(peer, src, nil, false)
	}
}

// answer returns our answer to query code 1, 4 or 5; nil if none. peer is
// nil for the local relay.
func (n *Node) answer(code byte, peer *Peer) []byte {
	var answer string
	switch code {
	case CodeAddresses:
		answer = FormatAddresses(n.cfg.Handler.Addresses())
	case CodeSoftware:
		answer = n.cfg.Software
	case CodeTopology:
		if peer == nil || n.cfg.IsRegistry == nil || n.cfg.IsRegistry(peer.Prefix) {
			answer = n.cfg.Handler.Topology()
		}
	}
	if answer == "" {
		return nil
	}
	return []byte(answer)
}

func (n *Node) receiveVersion(peer Peer, src netip.Addr, theirs []byte) {
	theirNumber, err := wire.VerifyVersion(theirs, n.caKey)
	if err != nil {
		n.drop(DropBadPayload, src)
		n.reply(peer, src, nil, false)
		return
	}
	ours := n.cfg.Handler.Version()
	ourNumber, err := wire.VersionNumber(ours)
	switch {
	case err != nil || theirNumber > ourNumber:
		n.cfg.Handler.NewerVersion(peer, bytes.Clone(theirs))
		n.reply(peer, src, nil, false)
	case theirNumber < ourNumber:
		n.reply(peer, src, append([]byte{CodeVersion}, ours...), true)
	default:
		n.reply(peer, src, nil, false)
	}
}

func (n *Node) receiveTunnelSetup(peer Peer, src netip.Addr, data []byte) {
	id, req, err := parseTunnelRequest(data)
	if err != nil {
		n.drop(DropBadPayload, src)
		n.reply(peer, src, nil, false)
		return
	}
	n.mu.Lock()
	var cached []byte
	if s := n.sessions[peer.Prefix]; s != nil && s.tunnelReply != nil && s.tunnelID == id {
		cached = s.tunnelReply
	}
	n.mu.Unlock()
	if cached == nil {
		reply := n.cfg.Handler.TunnelSetup(peer, req)
		reply.Observed = peer.Via
		cached = append([]byte{CodeTunnelReply}, reply.marshal(id)...)
		n.mu.Lock()
		if s := n.sessions[peer.Prefix]; s != nil {
			s.tunnelID, s.tunnelReply = id, cached
		}
		n.mu.Unlock()
	}
	n.reply(peer, src, cached, false)
}

// deliver hands an answer to whoever waits for it.
func (n *Node) deliver(key waitKey, data []byte) {
	n.mu.Lock()
	waiters := n.waiters[key]
	delete(n.waiters, key)
	n.mu.Unlock()
	for _, ch := range waiters {
		ch <- bytes.Clone(data) // buffered, one answer per waiter
	}
}
