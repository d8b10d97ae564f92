package main_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"testing"

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
