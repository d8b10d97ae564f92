package atfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/atfile"
)

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "common.conf"), []byte("hello 4\n"), 0o644))
	main := filepath.Join(dir, "registry.conf")
	require.NoError(t, os.WriteFile(main, []byte(`# comment
port 8080
ipv4 10.42.0.0/16 8   # two values
encrypt
same-country FR DE
v 3
@common.conf
`), 0o644))
	arity := map[string]int{"ipv4": 2}
	args, err := atfile.Expand([]string{"--db", "x.db", "@" + main, "--ipv4", "10.1.0.0/16", "4"}, arity)
	require.NoError(t, err)
	require.Equal(t, []string{"--db", "x.db", "--port", "8080", "--ipv4", "10.42.0.0/16 8", "--encrypt",
		"--same-country", "FR", "--same-country", "DE", "-v", "3", "--hello", "4", "--ipv4", "10.1.0.0/16 4"}, args)

	_, err = atfile.Expand([]string{"@" + filepath.Join(dir, "missing")}, arity)
	require.ErrorContains(t, err, "option file")
	_, err = atfile.Expand([]string{"--ipv4", "10.0.0.0/8"}, arity)
	require.ErrorContains(t, err, "takes 2 values")
	bad := filepath.Join(dir, "bad.conf")
	require.NoError(t, os.WriteFile(bad, []byte("ipv4 10.0.0.0/8\n"), 0o644))
	_, err = atfile.Expand([]string{"@" + bad}, arity)
	require.ErrorContains(t, err, "bad.conf:1: ipv4 takes 2 values")
	loop := filepath.Join(dir, "loop.conf")
	require.NoError(t, os.WriteFile(loop, []byte("@loop.conf\n"), 0o644))
	_, err = atfile.Expand([]string{"@" + loop}, arity)
	require.ErrorContains(t, err, "nested")
}
