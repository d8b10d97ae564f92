package node

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/tunnels/peercache"
)

func mode(t *testing.T, path string) fs.FileMode {
	info, err := os.Stat(path)
	require.NoError(t, err)
	return info.Mode().Perm()
}

// The state and run directories and the files with the network's secrets
// are private whatever the umask, and those an older version left readable
// by others are tightened.
func TestPrivateFiles(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	root := t.TempDir()
	n := &Node{cfg: &Config{StateDir: filepath.Join(root, "state"), RunDir: filepath.Join(root, "run")}, log: zerolog.Nop()}

	// An older version: directories 0755, files 0644.
	require.NoError(t, os.Mkdir(n.cfg.StateDir, 0o755))
	for _, name := range []string{tunnelsFile, paramsFile} {
		require.NoError(t, os.WriteFile(filepath.Join(n.cfg.StateDir, name), []byte("x"), 0o644))
	}
	require.NoError(t, n.privateFiles())
	require.Equal(t, fs.FileMode(0o700), mode(t, n.cfg.StateDir))
	require.Equal(t, fs.FileMode(0o700), mode(t, n.cfg.RunDir))
	for _, name := range []string{"cache.db", tunnelsFile, paramsFile} {
		require.Equal(t, fs.FileMode(0o600), mode(t, filepath.Join(n.cfg.StateDir, name)), name)
	}

	// Written again, they stay private.
	require.NoError(t, writeFileAtomic(filepath.Join(n.cfg.StateDir, paramsFile), []byte("y"), 0o600))
	require.Equal(t, fs.FileMode(0o600), mode(t, filepath.Join(n.cfg.StateDir, paramsFile)))
}

// A corrupt peer cache is set aside, and the network parameters kept in
// their own file are still there to start from while the registry is down.
func TestParametersSurviveACorruptCache(t *testing.T) {
	dir := t.TempDir()
	n := &Node{cfg: &Config{StateDir: dir, RunDir: filepath.Join(dir, "run")}, log: zerolog.Nop()}
	require.NoError(t, writeFileAtomic(filepath.Join(dir, paramsFile), []byte("signed parameters"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cache.db"), []byte("not a database, not at all, but long enough to be read as one"), 0o600))
	require.NoError(t, n.privateFiles())

	var err error
	n.cache, err = peercache.Open(filepath.Join(dir, "cache.db"), n.log)
	require.NoError(t, err)
	defer n.cache.Close()
	require.FileExists(t, filepath.Join(dir, "cache.db.bak"), "the corrupt cache was not set aside")
	require.Equal(t, [][]byte{[]byte("signed parameters")}, n.cachedParams())
}
