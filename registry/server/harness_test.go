package server_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"net"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/client"
	"github.com/re6st-bpf/re6st-bpf/registry/mail"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/registry/server"
	"github.com/re6st-bpf/re6st-bpf/registry/store"
)

const testdata = "../../testdata/registry/"

var (
	keysMu   sync.Mutex
	nodeKeys = map[int]*rsa.PrivateKey{}
)

// nodeKey returns the key of node i, made once per test binary: one key,
// one prefix. Keys 0 to 7 are of the CA key's 2048 bits, like real
// nodes' (the hello answer needs it); the others, for nodes that only
// enrol, of 1024 bits, quicker to make.
func nodeKey(t testing.TB, i int) *rsa.PrivateKey {
	keysMu.Lock()
	defer keysMu.Unlock()
	if nodeKeys[i] == nil {
		bits := 2048
		if i >= 8 {
			bits = 1024
		}
		key, _, err := ca.NewKey(bits)
		require.NoError(t, err)
		nodeKeys[i] = key
	}
	return nodeKeys[i]
}

type registry struct {
	t       testing.TB
	dbPath  string
	mbox    string
	cfg     server.Config
	server  *server.Server
	http    *httptest.Server
	client  *client.Client
	now     time.Time
	nowLock sync.Mutex
	// prepare, if set, adjusts the HTTP server before it starts.
	prepare func(*httptest.Server)
}

func defaultConfig(t testing.TB) server.Config {
	authority, err := ca.LoadAuthority(testdata+"ca.crt", testdata+"ca.key")
	require.NoError(t, err)
	return server.Config{
		Authority:             authority,
		Settings:              netparams.Settings{ClientCount: 10, MaxClients: 20, TunnelRefresh: 300, Hello: 15, MinProtocol: 1},
		PrefixLength:          16,
		AnonymousPrefixLength: 16,
		AuthorizedOrigins:     []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
		Logger:                zerolog.Nop(),
	}
}

func startRegistry(t testing.TB, configure func(*server.Config)) *registry {
	return startRegistryHTTP(t, configure, nil)
}

// startRegistryHTTP is startRegistry with prepare adjusting the HTTP server
// before it starts.
func startRegistryHTTP(t testing.TB, configure func(*server.Config), prepare func(*httptest.Server)) *registry {
	dir := t.TempDir()
	r := &registry{t: t, dbPath: filepath.Join(dir, "registry.db"), mbox: filepath.Join(dir, "mbox"), now: time.Now(), prepare: prepare}
	r.cfg = defaultConfig(t)
	r.cfg.Mailer = mail.New(r.mbox, "registry@example.com", "", "", false)
	r.cfg.Now = r.clock
	if configure != nil {
		configure(&r.cfg)
	}
	r.start("127.0.0.1:0")
	return r
}

func (r *registry) clock() time.Time {
	r.nowLock.Lock()
	defer r.nowLock.Unlock()
	return r.now
}

func (r *registry) advance(d time.Duration) {
	r.nowLock.Lock()
	r.now = r.now.Add(d)
	r.nowLock.Unlock()
}

func (r *registry) start(address string) {
	db, err := store.Open(r.dbPath)
	require.NoError(r.t, err)
	r.cfg.Store = db
	r.server, err = server.New(r.cfg)
	require.NoError(r.t, err)
	listener, err := net.Listen("tcp", address)
	require.NoError(r.t, err)
	r.http = httptest.NewUnstartedServer(r.server)
	r.http.Listener = listener
	if r.prepare != nil {
		r.prepare(r.http)
	}
	r.http.Start()
	if r.client == nil {
		r.client, err = client.New(r.http.URL, nil)
		require.NoError(r.t, err)
	}
	r.t.Cleanup(r.stop)
}

func (r *registry) stop() {
	if r.http != nil {
		r.http.Close()
		r.cfg.Store.Close()
		r.http = nil
	}
}

// restart stops the server and starts a new one on the same address and
// database: all sessions are lost, nothing else.
func (r *registry) restart() {
	address := r.http.Listener.Addr().String()
	r.stop()
	r.start(address)
}

// node is an enrolled node.
type node struct {
	key     *rsa.PrivateKey
	cert    *x509.Certificate
	certPEM []byte
	prefix  string
	session *client.Session
}

func (r *registry) enrol(t testing.TB, token string, i int) *node {
	key := nodeKey(t, i)
	csr, err := ca.NewRequest(key, []ca.SubjectField{{Key: "O", Value: "test"}})
	require.NoError(t, err)
	certPEM, err := r.client.RequestCertificate(context.Background(), token, csr, "")
	require.NoError(t, err)
	return r.nodeFromCert(t, key, certPEM)
}

func (r *registry) nodeFromCert(t testing.TB, key *rsa.PrivateKey, certPEM []byte) *node {
	cert, err := ca.ParseCertificate(certPEM)
	require.NoError(t, err)
	prefix, err := ca.NodePrefix(cert)
	require.NoError(t, err)
	session, err := r.client.Session(client.Identity{CA: r.cfg.Authority.Cert, Cert: cert, Key: key})
	require.NoError(t, err)
	return &node{key: key, cert: cert, certPEM: certPEM, prefix: prefix, session: session}
}
