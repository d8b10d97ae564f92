package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOperatorFiles starts each command with option files written the way
// re6st's documentation and re6st-conf write them, including re6st's
// options that have no meaning here: each is accepted with one warning.
func TestOperatorFiles(t *testing.T) {
	registryBin, confBin := binaries(t)
	nodeBin := filepath.Join(filepath.Dir(registryBin), "re6stnet")
	for _, bin := range []string{registryBin, confBin, nodeBin} {
		out, err := exec.Command(bin, "--version").CombinedOutput()
		require.NoError(t, err, "%s --version: %s", bin, out)
		require.Regexp(t, `^re6st-bpf \S+ \(.*\) protocol 10\n$`, string(out))
		short, err := exec.Command(bin, "-V").CombinedOutput()
		require.NoError(t, err)
		require.Equal(t, string(out), string(short))
	}

	// The registry: re6st's -r/--run (babeld's socket) is ignored, once.
	dir := t.TempDir()
	extra := filepath.Join(dir, "extra.conf")
	require.NoError(t, os.WriteFile(extra, []byte("run /var/run/re6stnet\nr /var/run/re6stnet\nhello 15\n"), 0o644))
	d := startDaemon(t, dir, freePort(t), "@"+extra)
	log := readFile(d.log)
	require.Equal(t, 1, strings.Count(log, `-r/--run`), log)
	require.Contains(t, log, "ignored: the local node's relay is reached at --relay")

	// re6st-conf: -r KEY VALUE in its short form; an enrolment keeps the
	// subject fields of the certificate it replaces, as re6st does.
	node := filepath.Join(t.TempDir(), "node")
	out, err := runConf(t, "", "--registry", d.url, "--anonymous", "--dir", node, "-r", "O", "Example Org", "--location", "FR,EU")
	require.NoError(t, err, out)
	// A new key beside the old certificate (the registry gives an enrolled
	// key its current certificate back).
	renewed := filepath.Join(t.TempDir(), "renewed")
	require.NoError(t, os.MkdirAll(renewed, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(renewed, "cert.crt"), []byte(readFile(filepath.Join(node, "cert.crt"))), 0o644))
	confFile := filepath.Join(t.TempDir(), "conf.options")
	require.NoError(t, os.WriteFile(confFile, []byte("registry "+d.url+"\nanonymous\ndir "+renewed+"\nr OU Lab\n"), 0o644))
	out, err = runConf(t, "", "@"+confFile)
	require.NoError(t, err, out)
	subject := openssl(t, "x509", "-in", filepath.Join(renewed, "cert.crt"), "-noout", "-subject")
	require.Contains(t, subject, "O = Example Org")
	require.Contains(t, subject, "OU = Lab")

	// re6stnet: the file re6st-conf wrote (with its country line), plus
	// the lines re6st's documentation shows, some of them quoted.
	conf := filepath.Join(node, "re6stnet.conf")
	written := readFile(conf)
	require.Contains(t, written, "country FR")
	require.NoError(t, os.WriteFile(conf, []byte(written+`# re6st's sample lines
verbose 3
ovpnlog
O--verb
O3
pp 1194 udp
pp 1194 tcp
dh /etc/re6stnet/dh.pem
table 0
default
B -h
client 192.0.2.1,1194,udp
remote-gateway 192.0.2.254
disable-proto udp6
multicast
console /run/re6stnet/console
up "ip -6 addr add 2001:db8::1/64 dev lo"
I lo
`), 0o644))
	cmd := exec.Command(nodeBin, "@"+conf, "--test", "main_interface != 'eth0'", "--log-format", "json")
	cmd.Dir = node
	nodeOut, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", nodeOut)
	out = string(nodeOut)
	for _, option := range []string{"--ovpnlog", "-O/--openvpn-arg", "--pp", "--dh", "--table", "-D/--default",
		"-B/--babel-arg", "--client", "--remote-gateway", "--disable-proto", "-m/--multicast", "--console"} {
		require.Equal(t, 1, strings.Count(out, `"option":"`+option+`"`), "%s in\n%s", option, out)
	}
	require.Contains(t, out, "the configuration is valid")
	require.Contains(t, out, `"level":"debug"`, "verbose 3 is the debug level")

	// A mistake in the file is still an error that names the line.
	require.NoError(t, os.WriteFile(conf, []byte(written+"up \"unterminated\n"), 0o644))
	nodeOut, err = exec.Command(nodeBin, "@"+conf, "--test", "1").CombinedOutput()
	require.Error(t, err)
	require.Regexp(t, regexp.MustCompile(`re6stnet.conf:\d+: `), string(nodeOut))
}
