package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/client"
	"github.com/re6st-bpf/re6st-bpf/registry/server"
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

// Issue 16.1: 4 threads looping hello for a victim's prefix made most of
// its calls fail with "wrong HMAC" although the client retries once. Each
// call here starts a new session, so each needs a hello.
func TestHelloFloodDoesNotBreakOwnerCalls(t *testing.T) {
	r := startRegistry(t, nil)
	victim := r.enrol(t, "", 0)
	stop := make(chan struct{})
	wait := flood(t, r, "127.0.0.2", "/hello?client_prefix="+victim.prefix+"&protocol=10", 4, stop)
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
	t.Logf("hello flood: %d of 50 calls failed; flood answers by status: %v", failed, statuses)
	require.Greater(t, statuses[http.StatusOK], 50, "the flood ran alongside the calls")
	require.Zero(t, failed)
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
