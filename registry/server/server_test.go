package server_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/client"
	"github.com/re6st-bpf/re6st-bpf/registry/server"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

var ctx = context.Background()

func TestEmailEnrolment(t *testing.T) {
	r := startRegistry(t, nil)
	require.NoError(t, r.client.RequestToken(ctx, "alice@example.com"))
	mbox, err := os.ReadFile(r.mbox)
	require.NoError(t, err)
	require.Contains(t, string(mbox), "Subject: [re6stnet] Token Request")
	match := regexp.MustCompile(`your token to join re6st network is: ([a-z]{8})`).FindStringSubmatch(string(mbox))
	require.NotNil(t, match, "mbox: %s", mbox)
	token := match[1]
	known, err := r.client.IsToken(ctx, token)
	require.NoError(t, err)
	require.True(t, known)

	n := r.enrol(t, token, 0)
	require.Len(t, n.prefix, 16)
	require.Equal(t, "0", n.cert.Subject.SerialNumber)
	known, err = r.client.IsToken(ctx, token)
	require.NoError(t, err)
	require.False(t, known, "the token is consumed")
	cn, err := r.client.NodePrefix(ctx, "alice@example.com")
	require.NoError(t, err)
	require.Equal(t, n.cert.Subject.CommonName, cn)
	address, err := r.client.IPv6Address(ctx, "alice@example.com")
	require.NoError(t, err)
	subnet, err := wire.Subnet(r.cfg.Authority.Network, n.prefix)
	require.NoError(t, err)
	require.Equal(t, subnet.Addr().String(), address)
	require.True(t, netip.MustParsePrefix("2001:db8:42::/48").Contains(subnet.Addr()))

	params, err := n.session.NetworkConfig(ctx)
	require.NoError(t, err)
	require.Equal(t, n.prefix, params.RegistryPrefix, "the first node is the registry node")
	require.Equal(t, 10, params.Protocol)
	require.Equal(t, 20, params.MaxClients)
	require.Len(t, params.BabelHMACSign.Key, 16, "a new network starts with a Babel key")
	require.False(t, params.BabelHMACAccept.Set)
	require.Equal(t, r.server.Version(), params.Version)

	second := r.enrol(t, "", 1)
	require.Equal(t, "1", second.cert.Subject.SerialNumber, "subject serials are the smallest free integers")
	require.NotEqual(t, n.prefix, second.prefix)
}

func TestRefusalsChangeNothing(t *testing.T) {
	r := startRegistry(t, func(cfg *server.Config) {
		cfg.AnonymousPrefixLength = 0
		cfg.Mailer = nil
	})
	before, err := r.client.ListPrefixes(ctx)
	require.NoError(t, err)
	version := r.server.Version()

	csr, err := ca.NewRequest(nodeKey(t, 0), nil)
	require.NoError(t, err)
	_, err = r.client.RequestCertificate(ctx, "nosuchtk", csr, "")
	require.ErrorIs(t, err, client.ErrInvalidToken)
	_, err = r.client.RequestCertificate(ctx, "", csr, "")
	require.Equal(t, http.StatusForbidden, client.StatusOf(err))
	require.ErrorContains(t, err, "anonymous registration is disabled")
	err = r.client.RequestToken(ctx, "a@example.com")
	require.Equal(t, http.StatusForbidden, client.StatusOf(err))
	require.ErrorContains(t, err, "registration by e-mail is disabled")
	_, err = r.client.AddToken(ctx, "a@example.com", "tok")
	require.NoError(t, err)
	_, err = r.client.AddToken(ctx, "b@example.com", "tok")
	require.Equal(t, http.StatusConflict, client.StatusOf(err))
	_, err = r.client.RequestCertificate(ctx, "tok", []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), "")
	require.Equal(t, http.StatusBadRequest, client.StatusOf(err))
	require.ErrorContains(t, err, "malformed certificate request")
	known, err := r.client.IsToken(ctx, "tok")
	require.NoError(t, err)
	require.True(t, known, "a refused request does not consume the token")
	_, err = r.client.RequestCertificate(ctx, "tok", csr, "France")
	require.ErrorContains(t, err, "location")

	for _, probe := range []struct {
		method, uri string
		status      int
		message     string
	}{
		{"GET", "/noSuchMethod", 404, "unknown method"},
		{"GET", "/getCa?x=1", 400, "takes no argument"},
		{"GET", "/requestCertificate?token=a", 400, `needs the argument "req"`},
		{"GET", "/isToken?token=a&token=b", 400, "given twice"},
		{"GET", "/isToken?token", 400, "has no value"},
		{"GET", "/isToken?token=%zz", 400, "not URL-encoded"},
		{"GET", "/getCa?" + strings.Repeat("a", server.MaxRequestURI), 414, ""},
		{"POST", "/getCa", 405, "only GET"},
		{"GET", "/getNetworkConfig?cn=0000000000000001", 400, "missing Re6stHMAC header"},
	} {
		status, body := rawRequest(t, r, probe.method, probe.uri, nil)
		require.Equal(t, probe.status, status, probe.uri)
		require.Contains(t, body, probe.message, probe.uri)
	}
	after, err := r.client.ListPrefixes(ctx)
	require.NoError(t, err)
	require.Equal(t, before, after)
	require.Equal(t, version, r.server.Version())
	_, err = r.client.GetCA(ctx)
	require.NoError(t, err, "the server keeps serving")
}

func rawRequest(t *testing.T, r *registry, method, uri string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, r.http.URL+uri, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestPrivateCallsNeedAuthorizedOrigin(t *testing.T) {
	r := startRegistry(t, func(cfg *server.Config) {
		cfg.AuthorizedOrigins = []netip.Addr{netip.MustParseAddr("::1")}
	})
	_, err := r.client.AddToken(ctx, "a@example.com", "")
	require.Equal(t, http.StatusForbidden, client.StatusOf(err))
	require.ErrorContains(t, err, "not an authorized origin")

	r2 := startRegistry(t, nil)
	status, _ := rawRequest(t, r2, "GET", "/isToken?token=x", nil)
	require.Equal(t, http.StatusNoContent, status)
}

// handshake performs hello by hand and returns the session secret.
func handshake(t *testing.T, r *registry, n *node) []byte {
	t.Helper()
	status, body := rawRequest(t, r, "GET", "/hello?client_prefix="+n.prefix+"&protocol=10", nil)
	require.Equal(t, http.StatusOK, status)
	secret, err := wire.OpenHello([]byte(body), &r.cfg.Authority.Key.PublicKey, n.key)
	require.NoError(t, err)
	return secret
}

func signedHeader(key []byte, uri string) http.Header {
	return http.Header{wire.HMACHeader: {base64.StdEncoding.EncodeToString(wire.RequestMAC(key, uri))}}
}

func TestHMACChainRejectsReplayAndWrongMAC(t *testing.T) {
	r := startRegistry(t, nil)
	n := r.enrol(t, "", 0)
	uri := "/getCountry?cn=" + n.prefix + "&address=192.0.2.1"

	status, body := rawRequest(t, r, "GET", "/getCa", nil)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "BEGIN CERTIFICATE")

	status, body = rawRequest(t, r, "GET", "/getDh?cn=0000000000011111", signedHeader(make([]byte, 20), "/getDh?cn=0000000000011111"))
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, body, "call hello first")

	key := handshake(t, r, n)
	dhURI := "/getDh?cn=" + n.prefix
	status, _ = rawRequest(t, r, "GET", dhURI, signedHeader(wire.NextKey(key), dhURI))
	require.Equal(t, http.StatusBadRequest, status, "a key from further down the chain is wrong")

	// A correct call: the answer is MAC'd with SHA1(key).
	req, err := http.NewRequest("GET", r.http.URL+dhURI, nil)
	require.NoError(t, err)
	req.Header = signedHeader(key, dhURI)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "no DH configured: %s", answer)

	// Replaying the same MAC fails: the chain moved on.
	status, body = rawRequest(t, r, "GET", dhURI, signedHeader(key, dhURI))
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "wrong HMAC")

	next := wire.NextKey(key)
	// A third party calling hello does not break the running chain.
	handshake(t, r, n)
	req, err = http.NewRequest("GET", r.http.URL+uri, nil)
	require.NoError(t, err)
	req.Header = signedHeader(next, uri)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	answer, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, "no GeoIP: %s", answer)
	require.Contains(t, string(answer), "no GeoIP database")

	next = wire.NextKey(next)
	netURI := "/getNetworkConfig?cn=" + n.prefix
	req, err = http.NewRequest("GET", r.http.URL+netURI, nil)
	require.NoError(t, err)
	req.Header = signedHeader(next, netURI)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	answer, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, base64.StdEncoding.EncodeToString(wire.ResponseMAC(next, answer)), resp.Header.Get(wire.HMACHeader))
}

func TestRenewAndRevoke(t *testing.T) {
	r := startRegistry(t, nil)
	registryNode := r.enrol(t, "", 0)
	n := r.enrol(t, "", 1)
	same, err := n.session.RenewCertificate(ctx)
	require.NoError(t, err)
	require.Equal(t, n.certPEM, same, "not due: the same certificate")

	r.advance(340 * 24 * time.Hour)
	renewedPEM, err := n.session.RenewCertificate(ctx)
	require.NoError(t, err)
	renewed, err := ca.ParseCertificate(renewedPEM)
	require.NoError(t, err)
	require.NotEqual(t, n.cert.SerialNumber, renewed.SerialNumber)
	require.Equal(t, n.cert.Subject.String(), renewed.Subject.String())
	require.True(t, renewed.NotAfter.After(n.cert.NotAfter))

	version := r.server.Version()
	require.NoError(t, r.client.Revoke(ctx, renewed.SerialNumber.String()))
	require.Equal(t, version+1, r.server.Version(), "the CRL change bumps the version")
	params, err := registryNode.session.NetworkConfig(ctx)
	require.NoError(t, err)
	require.Contains(t, params.CRL, renewed.SerialNumber.Uint64())

	// Revoked by serial: the node keeps its prefix and renews to a new
	// serial with the same expiry.
	n = r.nodeFromCert(t, n.key, renewedPEM)
	againPEM, err := n.session.RenewCertificate(ctx)
	require.NoError(t, err)
	again, err := ca.ParseCertificate(againPEM)
	require.NoError(t, err)
	require.NotEqual(t, renewed.SerialNumber, again.SerialNumber)
	require.Equal(t, renewed.NotAfter, again.NotAfter)

	// Revoked by CN: the prefix is freed, the session gone.
	require.NoError(t, r.client.Revoke(ctx, again.Subject.CommonName))
	_, err = n.session.NetworkConfig(ctx)
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))
	prefixes, err := r.client.ListPrefixes(ctx)
	require.NoError(t, err)
	for _, p := range prefixes {
		require.NotEqual(t, again.Subject.CommonName, p.CN)
	}
	err = r.client.Revoke(ctx, again.Subject.CommonName)
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))
	err = r.client.Revoke(ctx, "12x")
	require.Equal(t, http.StatusBadRequest, client.StatusOf(err))
}

func TestBabelKeyRotation(t *testing.T) {
	r := startRegistry(t, nil)
	n := r.enrol(t, "", 0)
	get := func() (sign, accept []byte, acceptSet bool, validUntil int64) {
		params, err := n.session.NetworkConfig(ctx)
		require.NoError(t, err)
		return params.BabelHMACSign.Key, params.BabelHMACAccept.Key, params.BabelHMACAccept.Set, params.ValidUntil
	}
	k0, _, acceptSet, validUntil := get()
	require.False(t, acceptSet)
	require.Zero(t, validUntil)

	version := r.server.Version()
	require.NoError(t, r.client.UpdateHMAC(ctx))
	require.Equal(t, version+1, r.server.Version())
	sign, k1, _, validUntil := get()
	require.Equal(t, k0, sign)
	require.Len(t, k1, 16)
	require.NotEqual(t, k0, k1)
	require.Equal(t, r.clock().Add(time.Hour).Unix(), validUntil)

	require.NoError(t, r.client.UpdateHMAC(ctx))
	sign, accept, _, validUntil := get()
	require.Equal(t, k1, sign)
	require.Equal(t, k0, accept)
	require.Zero(t, validUntil)

	require.NoError(t, r.client.UpdateHMAC(ctx))
	sign, _, acceptSet, _ = get()
	require.Equal(t, k1, sign)
	require.False(t, acceptSet)
}

func TestCleanupAfterGracePeriod(t *testing.T) {
	r := startRegistry(t, func(cfg *server.Config) {
		cfg.CertDuration = 10 * 24 * time.Hour
		cfg.GracePeriod = 5 * 24 * time.Hour
	})
	registryNode := r.enrol(t, "", 0)
	_, err := r.client.AddToken(ctx, "old@example.com", "oldtoken")
	require.NoError(t, err)
	r.advance(9 * 24 * time.Hour)
	other := r.enrol(t, "", 1)
	_, err = registryNode.session.RenewCertificate(ctx) // due: renewed
	require.NoError(t, err)
	r.advance(7 * 24 * time.Hour) // first certificate of other: still in grace
	require.NoError(t, r.server.Cleanup())
	known, err := r.client.IsToken(ctx, "oldtoken")
	require.NoError(t, err)
	require.False(t, known, "the token outlived the grace period")
	_, err = other.session.NetworkConfig(ctx)
	require.NoError(t, err)

	_, err = registryNode.session.RenewCertificate(ctx) // now valid until day 26
	require.NoError(t, err)
	r.advance(10 * 24 * time.Hour) // day 26: other expired 7 days ago
	require.NoError(t, r.server.Cleanup())
	_, err = other.session.NetworkConfig(ctx)
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))

	r.advance(30 * 24 * time.Hour) // the registry node's certificate too
	require.ErrorContains(t, r.server.Cleanup(), "wrong clock")
}

func TestBootstrapPeerIsEncryptedToCaller(t *testing.T) {
	r := startRegistry(t, nil)
	a := r.enrol(t, "", 0)
	b := r.enrol(t, "", 1)
	_, _, ok, err := a.session.BootstrapPeer(ctx)
	require.NoError(t, err)
	require.False(t, ok, "nobody reported an address")
	require.NoError(t, b.session.ReportAddress(ctx, "192.0.2.7,1194,udp,FR;2001:db8::7,1194,udp6"))
	require.NoError(t, a.session.ReportAddress(ctx, "192.0.2.6,1194,tcp"))
	err = a.session.ReportAddress(ctx, "not an address")
	require.Equal(t, http.StatusBadRequest, client.StatusOf(err))
	requirePeer(t, a, b, "192.0.2.7,1194,udp,FR;2001:db8::7,1194,udp6")
	prefix, addresses, ok, err := b.session.BootstrapPeer(ctx)
	require.NoError(t, err)
	if ok {
		require.Equal(t, a.prefix, prefix)
		require.Equal(t, "192.0.2.6,1194,tcp", addresses)
	}
}

// requirePeer asks from for a bootstrap peer a few times: each answer is
// peer with addresses, or none (the caller itself was drawn, and the
// registry node is the caller).
func requirePeer(t *testing.T, from, peer *node, addresses string) {
	t.Helper()
	for range 3 {
		prefix, got, ok, err := from.session.BootstrapPeer(ctx)
		require.NoError(t, err)
		if ok {
			require.Equal(t, peer.prefix, prefix)
			require.Equal(t, addresses, got)
		}
	}
}

func TestParallelEnrolmentsAndRestart(t *testing.T) {
	r := startRegistry(t, nil)
	const count = 50
	nodes := make([]*node, count)
	var wg sync.WaitGroup
	for i := range count {
		wg.Go(func() { nodes[i] = r.enrol(t, "", i) })
	}
	wg.Wait()
	seen := map[string]bool{}
	serials := map[string]bool{}
	for _, n := range nodes {
		for other := range seen {
			require.False(t, strings.HasPrefix(n.prefix, other) || strings.HasPrefix(other, n.prefix), "%s overlaps %s", n.prefix, other)
		}
		seen[n.prefix] = true
		serials[n.cert.SerialNumber.String()] = true
		require.Contains(t, n.cert.Subject.CommonName, "/16")
	}
	require.Len(t, serials, count)
	for _, n := range nodes[:5] {
		_, err := n.session.NetworkConfig(ctx)
		require.NoError(t, err)
	}
	version := r.server.Version()
	for _, n := range nodes[:5] {
		require.Equal(t, uint64(1), n.session.Handshakes())
	}

	r.restart()
	// Every session re-handshakes by itself, and says so (a node reports
	// its addresses again); nothing was lost.
	for _, n := range nodes[:5] {
		params, err := n.session.NetworkConfig(ctx)
		require.NoError(t, err)
		require.Equal(t, version, params.Version)
		require.Equal(t, uint64(2), n.session.Handshakes())
	}
	prefixes, err := r.client.ListPrefixes(ctx)
	require.NoError(t, err)
	issued := 0
	for _, p := range prefixes {
		if p.State == "issued" {
			issued++
			require.True(t, seen[p.Prefix])
		}
	}
	require.Equal(t, count, issued)
	fresh := r.enrol(t, "", count)
	require.Equal(t, "50", fresh.cert.Subject.SerialNumber, "subject serials survive the restart")
}

func TestListTokens(t *testing.T) {
	r := startRegistry(t, nil)
	made, err := r.client.AddToken(ctx, "x@example.com", "")
	require.NoError(t, err)
	require.Regexp(t, `^[a-z]{8}$`, made)
	tokens, err := r.client.ListTokens(ctx)
	require.NoError(t, err)
	require.Len(t, tokens, 1)
	require.Equal(t, client.Token{Token: made, Email: "x@example.com", PrefixLen: 16, Date: r.clock().Unix()}, tokens[0])
	require.NoError(t, r.client.DeleteToken(ctx, made))
	tokens, err = r.client.ListTokens(ctx)
	require.NoError(t, err)
	require.Empty(t, tokens)
	_, err = r.client.AddToken(ctx, "not-an-email", "")
	require.Equal(t, http.StatusBadRequest, client.StatusOf(err))
}
