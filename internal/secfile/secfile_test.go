package secfile_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/secfile"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	require.NoError(t, err)
	return info.Mode().Perm()
}

func TestModesWhateverTheUmask(t *testing.T) {
	for _, umask := range []int{0, 0o022, 0o077, 0o277} {
		old := syscall.Umask(umask)
		dir := filepath.Join(t.TempDir(), "a", "b")
		_, err := secfile.Dir(dir)
		require.NoError(t, err)
		file := filepath.Join(dir, "secret")
		_, err = secfile.File(file)
		syscall.Umask(old)
		require.NoError(t, err)
		require.Equal(t, secfile.DirMode, mode(t, dir), "umask %o", umask)
		require.Equal(t, secfile.FileMode, mode(t, file), "umask %o", umask)
	}
}

func TestExistingWiderModes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(file, []byte("key"), 0o644))
	require.NoError(t, os.Chmod(file, 0o644))
	was, err := secfile.File(file)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o644), was)
	require.Equal(t, secfile.FileMode, mode(t, file))
	content, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, "key", string(content), "an existing file is kept")
	was, err = secfile.File(file)
	require.NoError(t, err)
	require.Zero(t, was, "already private")
	was, err = secfile.Tighten(filepath.Join(dir, "missing"))
	require.NoError(t, err)
	require.Zero(t, was)

	require.NoError(t, os.Chmod(dir, 0o755))
	was, err = secfile.Dir(dir)
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o755), was, "reported, not changed")
	require.Equal(t, fs.FileMode(0o755), mode(t, dir))
}
