package nodeproto_test

import (
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/client"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// Fixed validity, so that certificates (and the fuzz seeds made of them)
// are the same on every run; the nodes' clock is set inside it.
var (
	notBefore = time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC)
	notAfter  = notBefore.Add(365 * 24 * time.Hour)
	testNow   = notBefore.Add(time.Hour)
)

func loadAuthority(t testing.TB, cert, key string) *ca.Authority {
	t.Helper()
	authority, err := ca.LoadAuthority(cert, key)
	require.NoError(t, err)
	return authority
}

func ourCA(t testing.TB) *ca.Authority {
	return loadAuthority(t, "../../testdata/registry/ca.crt", "../../testdata/registry/ca.key")
}

func rogueCA(t testing.TB) *ca.Authority {
	return loadAuthority(t, "testdata/rogue-ca.crt", "testdata/rogue-ca.key")
}

func loadKey(t testing.TB, name string) *rsa.PrivateKey {
	t.Helper()
	data, err := os.ReadFile("testdata/node-" + name + ".key")
	require.NoError(t, err)
	key, err := ca.ParsePrivateKey(data)
	require.NoError(t, err)
	return key
}

// issue makes a node certificate for prefix bits.
func issue(t testing.TB, authority *ca.Authority, key *rsa.PrivateKey, bits string, serial uint64) *x509.Certificate {
	t.Helper()
	empty, err := asn1.Marshal(pkix.RDNSequence{})
	require.NoError(t, err)
	subject, err := ca.NodeSubject(empty, bits, int(serial))
	require.NoError(t, err)
	certPEM, err := authority.Sign(ca.Issue{RawSubject: subject, PublicKey: &key.PublicKey, Serial: serial, NotBefore: notBefore, NotAfter: notAfter})
	require.NoError(t, err)
	cert, err := ca.ParseCertificate(certPEM)
	require.NoError(t, err)
	return cert
}

func network(t testing.TB) netip.Prefix {
	p, err := wire.Subnet(ourCA(t).Network, "")
	require.NoError(t, err)
	return p
}

// Prefix bits of the test nodes, by key name.
var prefixBits = map[string]string{"a": "0000000000000001", "b": "0000000000000010", "c": "0000000000000011"}

// handler is a scripted Handler that records what it is asked.
type handler struct {
	mu        sync.Mutex
	version   []byte
	newer     [][]byte
	addresses []nodeproto.Address
	topology  string
	ready     bool
	kills     int
	setups    []nodeproto.TunnelRequest
	setupVia  []netip.AddrPort
	reply     nodeproto.TunnelReply
	// bindings are the key bindings received (code 10), from whom;
	// bindingErr refuses them.
	bindings   [][]byte
	bindingsBy []netip.Prefix
	bindingErr error
}

func (h *handler) KeyBinding(peer nodeproto.Peer, binding []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bindings = append(h.bindings, binding)
	h.bindingsBy = append(h.bindingsBy, peer.Prefix)
	return h.bindingErr
}

func (h *handler) Version() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.version
}

func (h *handler) NewerVersion(_ nodeproto.Peer, signed []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.newer = append(h.newer, signed)
}

func (h *handler) Addresses() []nodeproto.Address {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addresses
}

func (h *handler) TunnelSetup(peer nodeproto.Peer, req nodeproto.TunnelRequest) nodeproto.TunnelReply {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.setups = append(h.setups, req)
	h.setupVia = append(h.setupVia, peer.Via)
	return h.reply
}

func (h *handler) TunnelKill(nodeproto.Peer) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.kills++
	return h.ready
}

func (h *handler) Topology() string { return h.topology }

func (h *handler) set(f func(h *handler)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

func (h *handler) get(f func(h *handler)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f(h)
}

// packet is one datagram in flight.
type packet struct {
	from    *testNode
	dst     netip.Addr
	via     netip.AddrPort
	payload []byte
}

// testNet delivers datagrams between nodes in order, one queue per
// receiver. filter, if set, may drop or change packets.
type testNet struct {
	t       testing.TB
	revoked sync.Map // serial → true
	nodes   []*testNode
	mu      sync.Mutex
	filter  func(p *packet) bool // false: drop
	log     []packet
}

type testNode struct {
	name    string
	node    *nodeproto.Node
	handler *handler
	prefix  netip.Prefix
	cert    *x509.Certificate
	public  netip.AddrPort // underlay endpoint others see (NAT mapping)
	inbox   chan packet
	queued  atomic.Int64 // packets routed to it whose Receive has not returned
	closed  bool         // guarded by testNet.mu
	clock   atomic.Pointer[time.Time]
}

func newNet(t testing.TB) *testNet {
	return &testNet{t: t}
}

// add starts a node with key name, certified by authority with serial.
func (tn *testNet) add(name string, authority *ca.Authority, serial uint64, configure func(*nodeproto.Config)) *testNode {
	t := tn.t
	key := loadKey(t, name)
	n := &testNode{name: name, handler: &handler{}, inbox: make(chan packet, 1024)}
	n.public = netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(len(tn.nodes) + 1)}), 40000+uint16(len(tn.nodes)))
	now := testNow
	n.clock.Store(&now)
	n.cert = issue(t, authority, key, prefixBits[name], serial)
	cfg := nodeproto.Config{
		Identity: nodeproto.Identity{CA: ourCA(t).Cert, Cert: n.cert, Key: key}, Software: client.UserAgent,
		Network: network(t),
		Revoked: func(serial uint64) bool { return tn.isRevoked(serial) },
		Send: func(dst netip.Addr, via netip.AddrPort, payload []byte) error {
			tn.route(packet{from: n, dst: dst, via: via, payload: append([]byte(nil), payload...)})
			return nil
		},
		Handler: n.handler,
		Now:     func() time.Time { return *n.clock.Load() },
		Logger:  zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel),
		Retry:   100 * time.Millisecond,
	}
	if configure != nil {
		configure(&cfg)
	}
	node, err := nodeproto.New(cfg)
	require.NoError(t, err)
	n.node, n.prefix = node, node.Prefix()
	tn.nodes = append(tn.nodes, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := range n.inbox {
			via := netip.AddrPort{}
			if p.via.IsValid() {
				via = p.from.public // what the receiver sees: the sender's NAT mapping
			}
			n.node.Receive(nodeproto.NodeAddr(p.from.prefix), via, p.payload)
			n.queued.Add(-1)
		}
	}()
	t.Cleanup(func() {
		tn.mu.Lock()
		n.closed = true
		close(n.inbox)
		tn.mu.Unlock()
		<-done
	})
	return n
}

func (n *testNode) advance(d time.Duration) {
	now := n.clock.Load().Add(d)
	n.clock.Store(&now)
}

func (tn *testNet) route(p packet) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	tn.log = append(tn.log, p)
	if tn.filter != nil && !tn.filter(&p) {
		return
	}
	for _, n := range tn.nodes {
		if n.prefix.Contains(p.dst) && !n.closed {
			n.queued.Add(1)
			select {
			case n.inbox <- p:
			default: // queue full: lost, as UDP would be
				n.queued.Add(-1)
			}
			return
		}
	}
}

func (tn *testNet) setFilter(f func(p *packet) bool) {
	tn.mu.Lock()
	tn.filter = f
	tn.mu.Unlock()
}

// sent returns the packets sent so far.
func (tn *testNet) sent() []packet {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return append([]packet(nil), tn.log...)
}

// signedVersion returns version number v signed by authority.
func signedVersion(t testing.TB, authority *ca.Authority, v uint64) []byte {
	t.Helper()
	signed, err := wire.EncodeVersion(v, authority.Key)
	require.NoError(t, err)
	return signed
}

func (tn *testNet) isRevoked(serial uint64) bool {
	_, ok := tn.revoked.Load(serial)
	return ok
}
