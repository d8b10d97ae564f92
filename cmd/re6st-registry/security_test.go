package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/client"
)

// Issue 16.2: anonymous enrolment is rate-limited per source with a clear
// 429, and the operator lists and revokes a flood in one command.
func TestEnrolmentFloodLimitedAndRevoked(t *testing.T) {
	registryBin, _ := binaries(t)
	d := startDaemon(t, t.TempDir(), freePort(t), "--enrol-limit", "5/1h")
	csrs := newCSRs(t, 6)
	c, err := client.New(d.url, nil)
	require.NoError(t, err)
	for range 5 {
		_, err := c.RequestCertificate(context.Background(), "", <-csrs, "")
		require.NoError(t, err)
	}
	_, err = c.RequestCertificate(context.Background(), "", <-csrs, "")
	require.Equal(t, http.StatusTooManyRequests, client.StatusOf(err))
	require.ErrorContains(t, err, "too many enrolments from 127.0.0.1: retry in 1h")

	out, err := exec.Command(registryBin, "nodes", "--anonymous", "--since", "1h", "--source", "127.0.0.0/8", "--revoke", "--json", "--registry", d.url).Output()
	require.NoError(t, err)
	var listed []client.Prefix
	require.NoError(t, json.Unmarshal(out, &listed))
	require.Len(t, listed, 5)
	for _, p := range listed {
		require.Equal(t, "127.0.0.1", p.Source)
	}
	out, err = exec.Command(registryBin, "nodes", "--json", "--registry", d.url).Output()
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(out, &listed))
	require.Len(t, listed, 1, "all revoked but the registry's own node (the first one, from loopback)")
	require.True(t, listed[0].Registry)

	out, err = exec.Command(registryBin, "nodes", "--source", "nonsense", "--registry", d.url).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), `--source "nonsense": not an address or a network`)
}

// Issue 16.3 as reported: 260 connections that pipeline requests and never
// read the answers, against a registry limited to 256 files, made getCa
// time out for everyone. With the default limits each is answered or
// refused at once (none waits in the listen queue), and another source is
// answered.
func TestStuckConnectionsUnderFileLimit(t *testing.T) {
	d := startDaemonUnder(t, []string{"prlimit", "--nofile=256:256", "--"}, t.TempDir(), freePort(t))
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	pipeline := []byte(strings.Repeat("GET /getCa HTTP/1.1\r\nHost: registry\r\n\r\n", 100))
	var answered, refused, waiting atomic.Int32
	var wg sync.WaitGroup
	deadline := time.Now().Add(20 * time.Second)
	for range 260 {
		conn, err := dialer.Dial("tcp", strings.TrimPrefix(strings.TrimSuffix(d.url, "/"), "http://"))
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		conn.Write(pipeline) // a refused connection may be reset
		wg.Go(func() {
			conn.SetReadDeadline(deadline)
			_, err := conn.Read(make([]byte, 1)) // the first byte only: the answers stay unread
			switch {
			case err == nil:
				answered.Add(1)
			case errors.Is(err, os.ErrDeadlineExceeded):
				waiting.Add(1)
			default:
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("stuck connections: %d answered, %d refused, %d left waiting", answered.Load(), refused.Load(), waiting.Load())
	c, err := client.New(d.url, &http.Client{Timeout: 20 * time.Second})
	require.NoError(t, err)
	start := time.Now()
	_, err = c.GetCA(context.Background())
	require.NoError(t, err)
	t.Logf("getCa under 260 stuck connections, 256 files: %s", time.Since(start))
	require.Zero(t, waiting.Load())
	require.Contains(t, readFile(d.log), `"max_connections":192,"file_limit":256`, "--max-connections is lowered to fit the file limit")
}
