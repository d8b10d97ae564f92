package atfile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/atfile"
)

func testSpec() atfile.Spec {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	for _, name := range []string{"db", "port", "ipv4", "encrypt", "same-country", "hello", "up"} {
		fs.String(name, "", "")
	}
	fs.StringP("verbose", "v", "", "")
	fs.StringP("openvpn-arg", "O", "", "")
	fs.StringP("req", "r", "", "")
	return atfile.Spec{Flags: []*pflag.FlagSet{fs}, Arity: map[string]int{"ipv4": 2, "req": 2}}
}

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
	spec := testSpec()
	args, err := atfile.Expand([]string{"--db", "x.db", "@" + main, "--ipv4", "10.1.0.0/16", "4", "-r", "C", "FR"}, spec)
	require.NoError(t, err)
	require.Equal(t, []string{"--db", "x.db", "--port", "8080", "--ipv4", "10.42.0.0/16 8", "--encrypt",
		"--same-country", "FR", "--same-country", "DE", "-v", "3", "--hello", "4", "--ipv4", "10.1.0.0/16 4",
		"-r", "C FR"}, args)

	_, err = atfile.Expand([]string{"@" + filepath.Join(dir, "missing")}, spec)
	require.ErrorContains(t, err, "option file")
	_, err = atfile.Expand([]string{"--ipv4", "10.0.0.0/8"}, spec)
	require.ErrorContains(t, err, "takes 2 values")
	bad := filepath.Join(dir, "bad.conf")
	require.NoError(t, os.WriteFile(bad, []byte("ipv4 10.0.0.0/8\n"), 0o644))
	_, err = atfile.Expand([]string{"@" + bad}, spec)
	require.ErrorContains(t, err, "bad.conf:1: ipv4 takes 2 values")
	loop := filepath.Join(dir, "loop.conf")
	require.NoError(t, os.WriteFile(loop, []byte("@loop.conf\n"), 0o644))
	_, err = atfile.Expand([]string{"@" + loop}, spec)
	require.ErrorContains(t, err, "nested")
}

// TestShellQuoting: lines are split as re6st splits them (shlex), and a
// name that is not a long option is a short one with its value glued on,
// as in the "O--verb" line re6st-conf writes (commented out).
func TestShellQuoting(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "re6stnet.conf")
	require.NoError(t, os.WriteFile(conf, []byte(`up "ip link set dev eth1 up"
up 'echo it'"'"'s up'
up echo\ two\ words
O--verb
O3
req O "Example Org"
registy http://misspelt/
unterminated "quote
`), 0o644))
	_, err := atfile.Expand([]string{"@" + conf}, testSpec())
	require.ErrorContains(t, err, "re6stnet.conf:8:")
	require.NoError(t, os.WriteFile(conf, []byte(strings.Join(strings.Split(mustRead(t, conf), "\n")[:7], "\n")), 0o644))
	args, err := atfile.Expand([]string{"@" + conf}, testSpec())
	require.NoError(t, err)
	require.Equal(t, []string{"--up", "ip link set dev eth1 up", "--up", "echo it's up", "--up", "echo two words",
		"-O--verb", "-O3", "--req", "O Example Org", "--registy", "http://misspelt/"}, args)
}

// TestIgnored: re6st's options without meaning here parse, in every form,
// and each gives one warning however often it is given.
func TestIgnored(t *testing.T) {
	ignored := []atfile.Ignored{
		{Name: "pp", Values: 2, Why: "no OpenVPN servers"},
		{Name: "openvpn-arg", Shorthand: "O", Values: 1, Why: "no OpenVPN"},
		{Name: "ovpnlog", Why: "no OpenVPN logs"},
		{Name: "dh", Values: 1, Why: "no DH"},
	}
	fs := pflag.NewFlagSet("node", pflag.ContinueOnError)
	fs.String("registry", "", "")
	atfile.AddIgnored(fs, ignored)
	conf := filepath.Join(t.TempDir(), "re6stnet.conf")
	require.NoError(t, os.WriteFile(conf, []byte("registry http://r/\npp 1194 udp\npp 1194 tcp\nO--verb\nO3\novpnlog\n"), 0o644))
	args, err := atfile.Expand([]string{"@" + conf}, atfile.Spec{Flags: []*pflag.FlagSet{fs}, Arity: map[string]int{"pp": 2}})
	require.NoError(t, err)
	require.NoError(t, fs.Parse(args))
	var log strings.Builder
	atfile.WarnIgnored(fs, ignored, zerolog.New(&log))
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	require.Len(t, lines, 3, log.String())
	require.Contains(t, lines[0], `"option":"--pp"`)
	require.Contains(t, lines[1], `"option":"-O/--openvpn-arg"`)
	require.Contains(t, lines[2], `"option":"--ovpnlog"`)
	require.Contains(t, lines[2], "ignored: no OpenVPN logs")
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}
