package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/client"
	"github.com/re6st-bpf/re6st-bpf/registry/store"
)

const testdata = "../../testdata/registry/"

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds re6st-registry, re6st-conf and re6stnet once per test
// binary.
func binaries(t *testing.T) (registryBin, confBin string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "re6st-registry-e2e")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{".", "../re6st-conf", "../re6stnet"} {
			out, err := exec.Command("go", "build", "-o", binDir+"/", pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v: %s", pkg, err, out)
				return
			}
		}
	})
	require.NoError(t, buildErr)
	return filepath.Join(binDir, "re6st-registry"), filepath.Join(binDir, "re6st-conf")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type daemon struct {
	cmd  *exec.Cmd
	url  string
	dir  string
	port int
	db   string
	log  string
}

func startDaemon(t *testing.T, dir string, port int, extra ...string) *daemon {
	t.Helper()
	return startDaemonUnder(t, nil, dir, port, extra...)
}

// startDaemonUnder starts the registry through wrapper, a command that
// runs its arguments (e.g. prlimit ... --).
func startDaemonUnder(t *testing.T, wrapper []string, dir string, port int, extra ...string) *daemon {
	t.Helper()
	registryBin, _ := binaries(t)
	d := &daemon{dir: dir, port: port, db: filepath.Join(dir, "registry.db"), log: filepath.Join(dir, "registry.log"),
		url: fmt.Sprintf("http://127.0.0.1:%d/", port)}
	options := filepath.Join(dir, "registry.conf")
	require.NoError(t, os.WriteFile(options, []byte(fmt.Sprintf(`# written by the test
port %d
4 127.0.0.1
db %s
ca %s
key %s
mailhost %s
anonymous-prefix-length 16
relay %s
v 2
`, port, d.db, testdata+"ca.crt", testdata+"ca.key", filepath.Join(dir, "mbox"), "127.0.0.1:9")), 0o644))
	argv := append(append(wrapper, registryBin, "@"+options, "-6", "", "--logfile", d.log), extra...)
	d.cmd = exec.Command(argv[0], argv[1:]...)
	require.NoError(t, d.cmd.Start())
	t.Cleanup(func() { d.cmd.Process.Kill(); d.cmd.Wait() })
	c, err := client.New(d.url, nil)
	require.NoError(t, err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := c.GetCA(context.Background()); err == nil {
			return d
		}
		require.True(t, time.Now().Before(deadline), "registry did not start; log:\n%s", readFile(d.log))
		time.Sleep(50 * time.Millisecond)
	}
}

func readFile(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

func runConf(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	_, confBin := binaries(t)
	cmd := exec.Command(confBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	require.NoError(t, err, "openssl %v: %s", args, out)
	return string(out)
}

func TestConfEnrolment(t *testing.T) {
	registryBin, _ := binaries(t)
	d := startDaemon(t, t.TempDir(), freePort(t))
	fingerprint := strings.TrimSpace(strings.SplitN(openssl(t, "x509", "-in", testdata+"ca.crt", "-noout", "-fingerprint", "-sha256"), "=", 2)[1])

	// Anonymous, with the fingerprint and subject fields.
	dir := filepath.Join(t.TempDir(), "node1")
	out, err := runConf(t, "", "--registry", d.url, "--anonymous", "--dir", dir, "--fingerprint", "sha256:"+fingerprint,
		"--req", "O", "Example", "--location", "FR,EU")
	require.NoError(t, err, out)
	require.Regexp(t, `Your subnet: 2001:db8:42:[0-9a-f:]*/64 \(CN=\d+/16\)`, out)
	info, err := os.Stat(filepath.Join(dir, "cert.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	info, err = os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), info.Mode().Perm(), "issue 16.5: the directory is private")
	info, err = os.Stat(d.db)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "issue 16.5: the database is private")
	require.Contains(t, openssl(t, "verify", "-CAfile", filepath.Join(dir, "ca.crt"), filepath.Join(dir, "cert.crt")), ": OK")
	require.Contains(t, openssl(t, "x509", "-in", filepath.Join(dir, "cert.crt"), "-noout", "-subject"), "O = Example")
	conf := readFile(filepath.Join(dir, "re6stnet.conf"))
	require.Contains(t, conf, "registry "+d.url)
	require.Contains(t, conf, "country FR")

	// Fingerprint mismatch: refused, nothing but nothing written.
	dir2 := filepath.Join(t.TempDir(), "node2")
	out, err = runConf(t, "", "--registry", d.url, "--anonymous", "--dir", dir2, "--fingerprint", "sha256:"+strings.Repeat("00", 32))
	require.Error(t, err)
	require.Contains(t, out, "CA fingerprint mismatch")
	_, statErr := os.Stat(filepath.Join(dir2, "cert.key"))
	require.True(t, os.IsNotExist(statErr))

	// Bad token.
	out, err = runConf(t, "", "--registry", d.url, "--token", "nosuchtk", "--dir", dir2)
	require.Error(t, err)
	require.Contains(t, out, "invalid or expired token")

	// Admin-added token, through the admin subcommand.
	added, err := exec.Command(registryBin, "token", "add", "bob@example.com", "bobtoken1", "--registry", d.url).CombinedOutput()
	require.NoError(t, err, string(added))
	out, err = runConf(t, "", "--registry", d.url, "--token", "bobtoken1", "--dir", dir2)
	require.NoError(t, err, out)

	// E-mail: the token arrives in the mbox and is typed on stdin.
	dir3 := filepath.Join(t.TempDir(), "node3")
	_, confBin := binaries(t)
	cmd := exec.Command(confBin, "--registry", d.url, "--email", "carol@example.com", "--dir", dir3)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	var output strings.Builder
	cmd.Stdout, cmd.Stderr = &output, &output
	require.NoError(t, cmd.Start())
	var token string
	require.Eventually(t, func() bool {
		m := regexp.MustCompile(`is: ([a-z]{8})`).FindStringSubmatch(readFile(filepath.Join(d.dir, "mbox")))
		if m != nil {
			token = m[1]
		}
		return m != nil
	}, 10*time.Second, 20*time.Millisecond)
	fmt.Fprintln(stdin, token)
	require.NoError(t, cmd.Wait(), output.String())
	require.Contains(t, output.String(), "Please enter your token")

	listed, err := exec.Command(registryBin, "nodes", "--json", "--registry", d.url).Output()
	require.NoError(t, err)
	var nodes []client.Prefix
	require.NoError(t, json.Unmarshal(listed, &nodes))
	require.Len(t, nodes, 3)
	emails := map[string]bool{}
	for _, n := range nodes {
		emails[n.Email] = true
	}
	require.True(t, emails["bob@example.com"] && emails["carol@example.com"])
	table, err := exec.Command(registryBin, "prefixes", "--registry", d.url).Output()
	require.NoError(t, err)
	require.Regexp(t, `2001:db8:42:8000::/49 +free`, string(table))
	require.Regexp(t, `2001:db8:42::/64 +issued +0/16 .* registry`, string(table))

	// Registration disabled: a clear refusal.
	d2 := startDaemon(t, t.TempDir(), freePort(t), "--anonymous-prefix-length", "0")
	out, err = runConf(t, "", "--registry", d2.url, "--anonymous", "--dir", filepath.Join(t.TempDir(), "n"))
	require.Error(t, err)
	require.Contains(t, out, "anonymous registration is disabled")
}

func TestKillDuringEnrolments(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	d := startDaemon(t, dir, port, "--enrol-limit", "0")
	csrs := newCSRs(t, 150) // one key, one prefix
	c, err := client.New(d.url, nil)
	require.NoError(t, err)

	var acknowledged sync.Map // serial → prefix
	var done atomic.Int32
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				var csr []byte
				select {
				case csr = <-csrs:
				default:
					t.Error("out of CSRs before the registry was killed")
					return
				}
				certPEM, err := c.RequestCertificate(ctx, "", csr, "")
				if err != nil {
					return // the registry died
				}
				cert, err := ca.ParseCertificate(certPEM)
				if err == nil {
					prefix, _ := ca.NodePrefix(cert)
					acknowledged.Store(cert.SerialNumber.Uint64(), prefix)
					done.Add(1)
				}
			}
		})
	}
	require.Eventually(t, func() bool { return done.Load() >= 20 }, 20*time.Second, 5*time.Millisecond)
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGKILL))
	wg.Wait()
	d.cmd.Wait()

	d = startDaemon(t, dir, port, "--enrol-limit", "0")
	prefixes, err := client.New(d.url, nil)
	require.NoError(t, err)
	list, err := prefixes.ListPrefixes(context.Background())
	require.NoError(t, err)
	issued := map[uint64]string{}
	for _, p := range list {
		if p.State == "issued" {
			_, dup := issued[p.Serial]
			require.False(t, dup, "serial %d issued twice", p.Serial)
			issued[p.Serial] = p.Prefix
		}
	}
	count := 0
	acknowledged.Range(func(serial, prefix any) bool {
		count++
		require.Equal(t, prefix, issued[serial.(uint64)], "acknowledged certificate %d lost", serial)
		return true
	})
	require.GreaterOrEqual(t, count, 20)
	// After the restart, enrolment goes on without handing out a prefix twice.
	for range 5 {
		certPEM, err := prefixes.RequestCertificate(context.Background(), "", <-csrs, "")
		require.NoError(t, err)
		cert, err := ca.ParseCertificate(certPEM)
		require.NoError(t, err)
		prefix, _ := ca.NodePrefix(cert)
		for _, held := range issued {
			require.False(t, strings.HasPrefix(prefix, held) || strings.HasPrefix(held, prefix), "%s overlaps %s", prefix, held)
		}
		issued[cert.SerialNumber.Uint64()] = prefix
	}
	// The database itself is consistent: the blocks tile the network.
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()
	checkDatabase(t, d.db)
}

// newCSRs returns a channel of count CSRs of distinct 1024-bit keys (quick
// to make), made by two goroutines before it returns.
func newCSRs(t *testing.T, count int) chan []byte {
	t.Helper()
	csrs := make(chan []byte, count)
	var wg sync.WaitGroup
	for worker := range 2 {
		wg.Go(func() {
			for range count/2 + worker*(count%2) {
				key, _, err := ca.NewKey(1024)
				if err == nil {
					var csr []byte
					if csr, err = ca.NewRequest(key, nil); err == nil {
						csrs <- csr
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return csrs
}

func checkDatabase(t *testing.T, path string) {
	t.Helper()
	db, err := store.Open(path)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.View(func(tx *store.Tx) error {
		blocks, err := tx.Blocks()
		require.NoError(t, err)
		for i := 1; i < len(blocks); i++ {
			require.False(t, strings.HasPrefix(blocks[i].Prefix, blocks[i-1].Prefix), "%q overlaps %q", blocks[i].Prefix, blocks[i-1].Prefix)
		}
		serial, _, err := tx.ConfigInt(store.ConfigSerial)
		require.NoError(t, err)
		issued, err := tx.IssuedBlocks()
		require.NoError(t, err)
		for _, block := range issued {
			cert, err := ca.ParseCertificate([]byte(block.Cert))
			require.NoError(t, err)
			require.LessOrEqual(t, cert.SerialNumber.Int64(), serial)
		}
		return nil
	}))
}
