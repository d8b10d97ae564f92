package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
)

// Issue 16.5: --dir was created 0755. It is 0700 whatever the umask, and
// an existing cert.key readable by others is tightened with a warning.
func TestPrivateFiles(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "etc", "re6stnet")
	var stderr strings.Builder
	require.NoError(t, privateDir(dir, &stderr))
	info, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm())
	require.Empty(t, stderr.String())

	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, privateDir(dir, &stderr))
	require.Contains(t, stderr.String(), "is mode 0755: other users can list it")

	caCert, err := ca.ParseCertificate(mustRead(t, "../../testdata/registry/ca.crt"))
	require.NoError(t, err)
	keyPath := filepath.Join(dir, "cert.key")
	_, keyPEM, err := ca.NewKey(1024)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(keyPath, keyPEM, 0o644))
	stderr.Reset()
	_, err = loadOrCreateKey(keyPath, caCert, &stderr)
	require.NoError(t, err)
	info, err = os.Stat(keyPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	require.Contains(t, stderr.String(), "was readable by other users (mode 0644): made 0600")
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}
