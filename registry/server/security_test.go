package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/alloc"
	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/client"
	"github.com/re6st-bpf/re6st-bpf/registry/geoip"
	"github.com/re6st-bpf/re6st-bpf/registry/server"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// httpFrom is an HTTP client whose connections come from the loopback
// address source (any of 127/8 reaches a listener on 127.0.0.1), so a
// test can tell an attacker from a victim by address.
func httpFrom(source string) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	return &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
}

// flood runs workers goroutines that GET uri from source until stop is
// closed; it returns the number of answers by status once they are done.
func flood(t *testing.T, r *registry, source, uri string, workers int, stop <-chan struct{}) func() map[int]int {
	t.Helper()
	h := httpFrom(source)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := h.Get(r.http.URL + uri)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	return func() map[int]int {
		wg.Wait()
		h.CloseIdleConnections()
		return statuses
	}
}

// helloFlood runs 4 threads looping hello for a victim's prefix from
// source while the victim makes 50 calls, each with a new session (so each
// needs a hello), and returns how many of them failed.
func helloFlood(t *testing.T, r *registry, source string) int {
	t.Helper()
	victim := r.enrol(t, "", 0)
	stop := make(chan struct{})
	wait := flood(t, r, source, "/hello?client_prefix="+victim.prefix+"&protocol=10", 4, stop)
	failed := 0
	for range 50 {
		session, err := r.client.Session(client.Identity{CA: r.cfg.Authority.Cert, Cert: victim.cert, Key: victim.key})
		require.NoError(t, err)
		if _, err := session.NetworkConfig(context.Background()); err != nil {
			failed++
			t.Log(err)
		}
	}
	close(stop)
	statuses := wait()
	t.Logf("hello flood from %s: %d of 50 calls failed; flood answers by status: %v", source, failed, statuses)
	require.Greater(t, statuses[http.StatusOK], 50, "the flood ran alongside the calls")
	return failed
}

// Issue 16.1: 4 threads looping hello for a victim's prefix made most of
// its calls fail with "wrong HMAC" although the client retries once.
func TestHelloFloodDoesNotBreakOwnerCalls(t *testing.T) {
	require.Zero(t, helloFlood(t, startRegistry(t, nil), "127.0.0.2"))
}

// The same flood from the victim's own address, with the default limits:
// concurrent hellos for a prefix wait for one secret instead of each
// taking a share of the source's budget.
func TestHelloFloodFromOwnSource(t *testing.T) {
	r := startRegistry(t, func(cfg *server.Config) { cfg.Limits = server.DefaultLimits() })
	require.Zero(t, helloFlood(t, r, "127.0.0.1"))
}

// A hello while the prefix has a secret nobody used gets the same answer
// and costs nothing; new secrets are limited per source with a 429.
func TestHelloRateLimitPerSource(t *testing.T) {
	r := startRegistry(t, func(cfg *server.Config) {
		cfg.Limits.HelloPerSource = server.Rate{Every: time.Hour, Burst: 2}
	})
	nodes := []*node{r.enrol(t, "", 0), r.enrol(t, "", 1), r.enrol(t, "", 2)}
	hello := func(n *node) (int, string, http.Header) {
		resp, err := http.Get(r.http.URL + "/hello?client_prefix=" + n.prefix + "&protocol=10")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body), resp.Header
	}
	status, first, _ := hello(nodes[0])
	require.Equal(t, http.StatusOK, status)
	for range 10 {
		status, again, _ := hello(nodes[0])
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, first, again, "the pending secret is handed out again")
	}
	status, _, _ = hello(nodes[1])
	require.Equal(t, http.StatusOK, status)
	status, body, header := hello(nodes[2])
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Contains(t, body, "too many hellos from 127.0.0.1")
	require.Equal(t, "3600", header.Get("Retry-After"))

	// Once the owner used the pending secret, the next hello needs a new
	// one, and this source has none left.
	_, err := nodes[0].session.NetworkConfig(ctx)
	require.NoError(t, err)
	status, _, _ = hello(nodes[0])
	require.Equal(t, http.StatusTooManyRequests, status)
	_, err = nodes[0].session.NetworkConfig(ctx)
	require.NoError(t, err, "the running chain does not need a hello")
}

// Issue 16.2: one client reusing one CSR got thousands of prefixes. One
// key holds one prefix: the same CSR, anonymous or with a token, gets the
// same certificate back, and the token is not consumed.
func TestOneKeyOnePrefix(t *testing.T) {
	r := startRegistry(t, nil)
	csr, err := ca.NewRequest(nodeKey(t, 0), nil)
	require.NoError(t, err)
	first, err := r.client.RequestCertificate(ctx, "", csr, "")
	require.NoError(t, err)
	for range 3 {
		again, err := r.client.RequestCertificate(ctx, "", csr, "")
		require.NoError(t, err)
		require.Equal(t, string(first), string(again))
	}
	_, err = r.client.AddToken(ctx, "a@example.com", "tok")
	require.NoError(t, err)
	again, err := r.client.RequestCertificate(ctx, "tok", csr, "")
	require.NoError(t, err)
	require.Equal(t, string(first), string(again))
	known, err := r.client.IsToken(ctx, "tok")
	require.NoError(t, err)
	require.True(t, known, "the token is kept for a new key")

	// Once the prefix is freed, the key may enrol again.
	cert, err := ca.ParseCertificate(first)
	require.NoError(t, err)
	require.NoError(t, r.client.Revoke(ctx, cert.Subject.CommonName))
	renewed, err := r.client.RequestCertificate(ctx, "tok", csr, "")
	require.NoError(t, err)
	require.NotEqual(t, string(first), string(renewed))
}

// enrolNew enrols the key of mustCSR(t, i) and returns the HTTP status: 200 or the refusal's.
func enrolNew(t *testing.T, c *client.Client, i int) int {
	t.Helper()
	if _, err := c.RequestCertificate(ctx, "", mustCSR(t, i), ""); err != nil {
		require.Equal(t, http.StatusTooManyRequests, client.StatusOf(err), "%v", err)
		return client.StatusOf(err)
	}
	return http.StatusOK
}

// With the default limits, one source gets the burst then one prefix every
// 10 s: 23 in 30 s (it got 4,472 before). The clock is the registry's.
func TestEnrolmentFloodIsBounded(t *testing.T) {
	r := startRegistry(t, func(cfg *server.Config) { cfg.Limits = server.DefaultLimits() })
	got, i := 0, 0
	for second := range 31 {
		if second > 0 {
			r.advance(time.Second)
		}
		for ; enrolNew(t, r.client, i) == http.StatusOK; i++ {
			got++
		}
	}
	t.Logf("prefixes one source got in 30 s (registry clock): %d", got)
	require.Equal(t, 23, got)
}

func TestEnrolmentLimits(t *testing.T) {
	r := startRegistry(t, func(cfg *server.Config) {
		cfg.Limits.EnrolPerSource = server.Rate{Every: time.Hour, Burst: 3}
		cfg.Limits.EnrolGlobal = server.Rate{Every: time.Hour, Burst: 5}
	})
	for i := range 2 {
		require.Equal(t, http.StatusOK, enrolNew(t, r.client, i))
	}
	require.NoError(t, r.client.RequestToken(ctx, "a@example.com"), "token requests count too")
	status, body := rawRequest(t, r, "GET", "/requestToken?email=b@example.com", nil)
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Contains(t, body, "too many enrolments from 127.0.0.1")
	require.Equal(t, http.StatusTooManyRequests, enrolNew(t, r.client, 3))

	other, err := client.New(r.http.URL, httpFrom("127.0.0.2"))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, enrolNew(t, other, 4))
	require.Equal(t, http.StatusOK, enrolNew(t, other, 5))
	_, err = other.RequestCertificate(ctx, "", mustCSR(t, 6), "")
	require.Equal(t, http.StatusTooManyRequests, client.StatusOf(err))
	require.ErrorContains(t, err, "too many enrolments on this registry")
}

// mustCSR is a CSR of the key of index 100+i (1024 bits, quick to make).
func mustCSR(t *testing.T, i int) []byte {
	t.Helper()
	csr, err := ca.NewRequest(nodeKey(t, 100+i), nil)
	require.NoError(t, err)
	return csr
}

// On a small registry the first anonymous client became the registry's
// own node: only an enrolment from the registry host does now.
func TestRegistryNodeEnrolsFromAuthorizedOrigin(t *testing.T) {
	r := startRegistry(t, nil)
	remote, err := client.New(r.http.URL, httpFrom("127.0.0.2"))
	require.NoError(t, err)
	csr, err := ca.NewRequest(nodeKey(t, 1), nil)
	require.NoError(t, err)
	first, err := remote.RequestCertificate(ctx, "", csr, "")
	require.NoError(t, err)
	n := r.nodeFromCert(t, nodeKey(t, 1), first)
	local := r.enrol(t, "", 0)
	params, err := n.session.NetworkConfig(ctx)
	require.NoError(t, err)
	require.Equal(t, local.prefix, params.RegistryPrefix)

	// A node on the registry host that uses its public address is local
	// too: the client is the registry's own end of the connection.
	r2 := startRegistry(t, func(cfg *server.Config) { cfg.AuthorizedOrigins = nil })
	own := r2.enrol(t, "", 0)
	params, err = own.session.NetworkConfig(ctx)
	require.NoError(t, err)
	require.Equal(t, own.prefix, params.RegistryPrefix)
}

// stuckConns opens count connections from source to the registry, each
// pipelining requests getCa requests without ever reading an answer. A
// connection the registry refused may be reset: errors are ignored.
func stuckConns(t *testing.T, r *registry, source string, count, requests int) {
	t.Helper()
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	pipeline := []byte(strings.Repeat("GET /getCa HTTP/1.1\r\nHost: registry\r\n\r\n", requests))
	for range count {
		conn, err := dialer.Dial("tcp", r.http.Listener.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		conn.(*net.TCPConn).SetReadBuffer(4096) // fill up quickly
		conn.Write(pipeline)
	}
}

// Issue 16.3: clients that pipeline requests and never read the answers
// kept their connections forever, until the registry ran out of file
// descriptors. They are now bounded per source, and closed by the write
// timeout; getCa from another source is answered meanwhile.
func TestStuckConnectionsAreBounded(t *testing.T) {
	const perSource, stuck = 8, 40
	var mu sync.Mutex
	attackers, most := map[net.Conn]bool{}, 0
	r := startRegistryHTTP(t, nil, func(h *httptest.Server) {
		h.Listener = server.NewConnLimiter(perSource, 0, nil).Listener(h.Listener)
		h.Config = server.NewHTTPServer(h.Config.Handler, time.Second)
		h.Config.ConnState = func(conn net.Conn, state http.ConnState) {
			if !strings.HasPrefix(conn.RemoteAddr().String(), "127.0.0.2:") {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch state {
			case http.StateNew:
				attackers[conn] = true
				most = max(most, len(attackers))
			case http.StateClosed, http.StateHijacked:
				delete(attackers, conn)
			}
		}
	})
	stuckConns(t, r, "127.0.0.2", stuck, 4000) // 5 MB of answers each
	start := time.Now()
	timeout, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := r.client.GetCA(timeout)
	took := time.Since(start)
	require.NoError(t, err)
	t.Logf("getCa under %d stuck connections answered in %s", stuck, took)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(attackers) == 0
	}, 20*time.Second, 10*time.Millisecond, "the write timeout (1 s) closes the stuck connections, before the read and idle timeouts (30 s)")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, perSource, most, "connections per source are bounded")
}

func TestConnLimiterTotal(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	l := server.NewConnLimiter(2, 3, []netip.Prefix{netip.MustParsePrefix("127.0.0.3/32")}).Listener(raw)
	accepted := make(chan net.Conn, 10)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- conn
		}
	})
	defer wg.Wait()
	defer l.Close()
	dial := func(source string) net.Conn {
		dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
		conn, err := dialer.Dial("tcp", raw.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	// refused reads EOF (or a reset) once the listener closed conn.
	refused := func(conn net.Conn) bool {
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := conn.Read(make([]byte, 1))
		return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}
	dial("127.0.0.2")
	dial("127.0.0.2")
	first := <-accepted
	<-accepted
	require.True(t, refused(dial("127.0.0.2")), "a third connection from one source is closed")
	dial("127.0.0.3") // a trusted proxy: no per-source limit, but in the total
	<-accepted
	require.True(t, refused(dial("127.0.0.3")), "a fourth connection in all is closed")
	first.Close()
	dial("127.0.0.3")
	<-accepted
}

// Issue 16.4: only the first X-Forwarded-For line was read, so a second
// line let a private call through. Without a trusted proxy, a forwarded
// private call is refused whatever it says.
func TestForwardedPrivateCallWithoutTrustedProxy(t *testing.T) {
	r := startRegistry(t, nil)
	for _, lines := range [][]string{{"127.0.0.1", "6.6.6.6"}, {"127.0.0.1"}, {"6.6.6.6, 127.0.0.1"}} {
		status, body := rawRequest(t, r, "GET", "/isToken?token=x", http.Header{"X-Forwarded-For": lines})
		require.Equal(t, http.StatusForbidden, status, "%q", lines)
		require.Contains(t, body, "not a trusted proxy", "%q", lines)
	}
}

// Behind trusted proxies, the client is the right-most hop, across lines
// and commas, that is not a trusted proxy; it is what private calls, rate
// limits and GeoIP see.
func TestTrustedProxyHops(t *testing.T) {
	r := startRegistry(t, func(cfg *server.Config) {
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
		cfg.AuthorizedOrigins = append(cfg.AuthorizedOrigins, netip.MustParseAddr("192.0.2.5"))
		cfg.Limits.EnrolPerSource = server.Rate{Every: time.Hour, Burst: 1}
		var err error
		cfg.GeoIP, err = geoip.Parse(strings.NewReader("198.51.100.0/24,FR,EU\n6.0.0.0/8,US,NA\n"))
		require.NoError(t, err)
		cfg.Communities, err = alloc.ParseCommunities(strings.NewReader("0 *\n1 FR\n"))
		require.NoError(t, err)
	})
	for _, probe := range []struct {
		lines  []string
		status int
		client string
	}{
		{[]string{"127.0.0.1", "6.6.6.6"}, http.StatusForbidden, "client 6.6.6.6 "},
		{[]string{"6.6.6.6, 127.0.0.1"}, http.StatusForbidden, "client 6.6.6.6 "},
		{[]string{"6.6.6.6, 127.0.0.1", "10.1.2.3"}, http.StatusForbidden, "client 6.6.6.6 "},
		{[]string{"127.0.0.1, 6.6.6.6", "10.1.2.3"}, http.StatusForbidden, "client 6.6.6.6 "},
		{[]string{"::1, not-an-ip", "10.1.2.3"}, http.StatusForbidden, "client invalid IP "},
		{[]string{"6.6.6.6, 192.0.2.5", "10.1.2.3"}, http.StatusNoContent, ""}, // the forged 6.6.6.6 is left of the client
		{[]string{"127.0.0.1, ::ffff:10.0.0.1"}, http.StatusNoContent, ""},     // all trusted: the left-most
		{nil, http.StatusNoContent, ""},
	} {
		status, body := rawRequest(t, r, "GET", "/isToken?token=x", http.Header{"X-Forwarded-For": probe.lines})
		require.Equal(t, probe.status, status, "%q: %s", probe.lines, body)
		require.Contains(t, body, probe.client, "%q", probe.lines)
	}
	// Rate limits are per resolved client.
	forwarded := func(client string) http.Header { return http.Header{"X-Forwarded-For": {client}} }
	status, _ := rawRequest(t, r, "GET", "/requestToken?email=a@example.com", forwarded("198.51.100.1"))
	require.Equal(t, http.StatusNoContent, status)
	status, body := rawRequest(t, r, "GET", "/requestToken?email=a@example.com", forwarded("198.51.100.1"))
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Contains(t, body, "too many enrolments from 198.51.100.1")

	// GeoIP locates the resolved client: 198.51.100.2 is in France, whose
	// community is "1".
	status, body = rawRequest(t, r, "GET", "/requestCertificate?token=&req="+url.QueryEscape(string(mustCSR(t, 0))), forwarded("6.6.6.6, 198.51.100.2"))
	require.Equal(t, http.StatusOK, status, body)
	cert, err := ca.ParseCertificate([]byte(body))
	require.NoError(t, err)
	prefix, err := ca.NodePrefix(cert)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(prefix, "1"), "prefix %s is not in the community of FR", prefix)
}

// Issue 16.6: reportAddress stored anything, and getBootstrapPeer handed
// it out. Each item is now checked: a routable unicast address outside the
// network, a known protocol of the address's family (WireGuard included),
// a port (none for GRE), an optional country code; at most 8 items.
func TestReportAddressValidated(t *testing.T) {
	r := startRegistry(t, nil)
	a := r.enrol(t, "", 0)
	b := r.enrol(t, "", 1)
	for _, bad := range []string{
		"not-an-ip,xyz,fou", "1.2.3.4,99999,gre", "1.2.3.4,99999,fou", "1.2.3.4,0,fou", "1.2.3.4,-1,fou", "1.2.3.4,5,gre",
		"1.2.3.4,0,wireguard", "1.2.3.4,1194,xyz", "127.0.0.1,1194,fou", "224.0.0.1,1,fou", "255.255.255.255,1,fou", "0.1.2.3,1,fou",
		"fe80::1,1,fou", "::,1,fou", "2001:db8:42::1,1,fou", "2001:db8::1,1194,udp", "192.0.2.1,1194,udp6",
		"1.2.3.4,1,fou,france", "1.2.3.4,1,fou,", "1.2.3.4,1", "1.2.3.4,1,fou;", "fe80::1%eth0,1,fou",
		strings.Repeat("1.2.3.4,1,fou;", 8) + "1.2.3.5,1,fou",
	} {
		err := b.session.ReportAddress(ctx, bad)
		require.Equal(t, http.StatusBadRequest, client.StatusOf(err), "%q: %v", bad, err)
	}
	_, _, ok, err := a.session.BootstrapPeer(ctx)
	require.NoError(t, err)
	require.False(t, ok, "nothing was stored")

	require.NoError(t, b.session.ReportAddress(ctx, "192.0.2.7,1194,fou,FR;192.0.2.7,0,gre;::ffff:192.0.2.7,1194,fou;2001:DB8::7,1194,udp6;192.0.2.7,51820,wireguard"))
	requirePeer(t, a, b, "192.0.2.7,1194,fou,FR;192.0.2.7,0,gre;192.0.2.7,1194,fou;2001:db8::7,1194,udp6;192.0.2.7,51820,wireguard")
}

// A node revoked after it reported its addresses is no bootstrap peer:
// its report is dropped, and the other node's is handed out.
func TestBootstrapSkipsRevoked(t *testing.T) {
	r := startRegistry(t, nil)
	a := r.enrol(t, "", 0)
	b := r.enrol(t, "", 1)
	c := r.enrol(t, "", 2)
	require.NoError(t, b.session.ReportAddress(ctx, "192.0.2.7,1194,fou"))
	require.NoError(t, c.session.ReportAddress(ctx, "192.0.2.8,1194,fou"))
	require.NoError(t, r.client.Revoke(ctx, b.cert.Subject.CommonName))
	for range 4 {
		requirePeer(t, a, c, "192.0.2.8,1194,fou")
	}
}

// The address the registry sees a node at comes first, and the other
// public addresses of its family are dropped: a node cannot send its
// peers to 8.8.8.8.
func TestReportAddressPrefersObserved(t *testing.T) {
	r := startRegistry(t, func(cfg *server.Config) {
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	n := r.enrol(t, "", 0)
	key := handshake(t, r, n)
	report := func(addresses string) (int, string) {
		uri := "/reportAddress?cn=" + n.prefix + "&address=" + url.QueryEscape(addresses)
		header := signedHeader(key, uri)
		header.Set("X-Forwarded-For", "198.51.100.7")
		key = wire.NextKey(key)
		return rawRequest(t, r, "GET", uri, header)
	}
	status, body := report("8.8.8.8,53,fou")
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "no address left")
	status, body = report("8.8.8.8,53,fou;10.0.0.5,5555,fou;2001:db8::7,5555,fou;198.51.100.7,5555,fou")
	require.Equal(t, http.StatusNoContent, status, body)
	prefixes, err := r.client.ListPrefixes(ctx)
	require.NoError(t, err)
	found := false
	for _, p := range prefixes {
		if p.Prefix == n.prefix {
			found = true
			require.Equal(t, "198.51.100.7,5555,fou;10.0.0.5,5555,fou;2001:db8::7,5555,fou", p.Addresses)
		}
	}
	require.True(t, found)
}

// A third party's hello cannot downgrade the protocol of a node's session
// (protocol < 7 strips the country of bootstrap addresses).
func TestHelloCannotDowngradeProtocol(t *testing.T) {
	r := startRegistry(t, nil)
	a := r.enrol(t, "", 0)
	b := r.enrol(t, "", 1)
	require.NoError(t, b.session.ReportAddress(ctx, "192.0.2.7,1194,fou,FR"))
	downgrade := func() {
		status, _ := rawRequest(t, r, "GET", "/hello?client_prefix="+a.prefix+"&protocol=1", nil)
		require.Equal(t, http.StatusOK, status)
	}
	downgrade() // before a's handshake: it shares the secret
	requirePeer(t, a, b, "192.0.2.7,1194,fou,FR")
	downgrade() // during a's session
	requirePeer(t, a, b, "192.0.2.7,1194,fou,FR")
}
