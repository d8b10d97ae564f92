package store_test

import (
	"database/sql"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/alloc"
	"github.com/re6st-bpf/re6st-bpf/registry/store"
)

// copyFixture copies the database written by testdata/registry/make-re6st-db.py
// (Python's own sqlite3, re6st's table definitions).
func copyFixture(t *testing.T) string {
	t.Helper()
	src, err := os.Open("../../testdata/registry/re6st-registry.db")
	require.NoError(t, err)
	defer src.Close()
	path := filepath.Join(t.TempDir(), "registry.db")
	dst, err := os.Create(path)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())
	return path
}

func TestOpensPythonRegistryDatabase(t *testing.T) {
	s, err := store.Open(copyFixture(t))
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.View(func(tx *store.Tx) error {
		prefix, ok, err := tx.ConfigBytes(store.ConfigPrefix)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, "0000000000000001", string(prefix))
		serial, ok, err := tx.ConfigInt(store.ConfigSerial)
		require.NoError(t, err)
		require.True(t, ok)
		require.EqualValues(t, 7, serial)
		key, ok, err := tx.ConfigBytes(store.ConfigBabelHMAC[0])
		require.NoError(t, err)
		require.True(t, ok)
		require.Len(t, key, 16)
		_, ok, err = tx.ConfigBytes(store.ConfigBabelHMAC[1])
		require.NoError(t, err)
		require.False(t, ok)
		token, ok, err := tx.LookupToken("abcdefgh")
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, store.Token{Token: "abcdefgh", Email: "a@example.com", PrefixLen: 16, Date: 1700000000}, token)
		issued, err := tx.IssuedBlocks()
		require.NoError(t, err)
		require.Len(t, issued, 2)
		require.Equal(t, "b@example.com", issued[1].Email)
		revoked, err := tx.IsRevoked(3)
		require.NoError(t, err)
		require.True(t, revoked)
		return nil
	}))
	// The allocator continues where re6st left off.
	var prefix string
	require.NoError(t, s.Update(func(tx *store.Tx) error {
		prefix, err = alloc.Allocate(tx, 80, 16, "")
		return err
	}))
	require.Equal(t, "0000000000000011", prefix)
}

func TestRefusesUnexpectedSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec("CREATE TABLE cert (prefix TEXT, cert BLOB)")
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = store.Open(path)
	require.ErrorContains(t, err, `table "cert" exists with an unexpected schema`)
}

func TestNewDatabaseHasWholeNetworkFree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	s, err := store.Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	// Reopening checks the schema we wrote against the expected text.
	s, err = store.Open(path)
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.View(func(tx *store.Tx) error {
		blocks, err := tx.Blocks()
		require.Equal(t, []store.Block{{Prefix: ""}}, blocks)
		return err
	}))
}

func TestFailedUpdateChangesNothing(t *testing.T) {
	s, err := store.Open(filepath.Join(t.TempDir(), "tx.db"))
	require.NoError(t, err)
	defer s.Close()
	err = s.Update(func(tx *store.Tx) error {
		require.NoError(t, tx.InsertToken(store.Token{Token: "x", Email: "e", PrefixLen: 16, Date: 1}))
		require.NoError(t, tx.SetConfig(store.ConfigSerial, int64(9)))
		return io.ErrUnexpectedEOF
	})
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.NoError(t, s.View(func(tx *store.Tx) error {
		_, ok, err := tx.LookupToken("x")
		require.False(t, ok)
		_, ok, _ = tx.ConfigInt(store.ConfigSerial)
		require.False(t, ok)
		return err
	}))
	require.NoError(t, s.Update(func(tx *store.Tx) error {
		require.NoError(t, tx.InsertToken(store.Token{Token: "x", Email: "e", PrefixLen: 16, Date: 1}))
		require.ErrorIs(t, tx.InsertToken(store.Token{Token: "x", Email: "f", PrefixLen: 16, Date: 2}), store.ErrTokenExists)
		return nil
	}))
}

// Issue 16.5: registry.db was created 0644, though it holds the Babel key
// and the tokens.
func TestDatabaseIsPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	path := filepath.Join(t.TempDir(), "registry.db")
	s, err := store.Open(path)
	require.NoError(t, err)
	require.NoError(t, s.Update(func(tx *store.Tx) error { return tx.SetConfig("x", "y") }))
	require.NoError(t, s.Close())
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	require.NoError(t, os.Chmod(path, 0o644))
	s, err = store.Open(path)
	require.NoError(t, err)
	defer s.Close()
	info, err = os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "an existing database is tightened")
	require.Len(t, s.Tightened(), 1)
	require.Contains(t, s.Tightened()[0], "mode 0644")
}
