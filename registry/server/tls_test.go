package server_test

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/client"
)

func TestAuthenticatedCallsOverTLS(t *testing.T) {
	r := startRegistry(t, nil)
	tlsServer := httptest.NewTLSServer(r.server)
	defer tlsServer.Close()
	c, err := client.New(tlsServer.URL, tlsServer.Client())
	require.NoError(t, err)
	csr, err := ca.NewRequest(nodeKey(t, 0), nil)
	require.NoError(t, err)
	certPEM, err := c.RequestCertificate(ctx, "", csr, "")
	require.NoError(t, err)
	cert, err := ca.ParseCertificate(certPEM)
	require.NoError(t, err)
	session, err := c.Session(client.Identity{CA: r.cfg.Authority.Cert, Cert: cert, Key: nodeKey(t, 0)})
	require.NoError(t, err)
	params, err := session.NetworkConfig(ctx)
	require.NoError(t, err)
	require.Equal(t, session.Prefix(), params.RegistryPrefix)
}
