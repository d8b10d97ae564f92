package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/re6st-bpf/re6st-bpf/internal/internet"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

// Binaries are the programs a cluster runs.
var Binaries = []string{"re6st-registry", "re6st-conf", "re6stnet"}

// BuildBinaries compiles the named commands (default: Binaries) into dir
// with `go build`, from the module that contains the working directory.
func BuildBinaries(dir string, names ...string) error {
	if len(names) == 0 {
		names = Binaries
	}
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return fmt.Errorf("cluster: finding the module: %w", err)
	}
	argv := []string{"build", "-o", dir + "/"}
	for _, b := range names {
		argv = append(argv, "./cmd/"+b)
	}
	cmd := exec.Command("go", argv...)
	cmd.Dir = strings.TrimSpace(string(root))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cluster: go %s: %w: %s", strings.Join(argv, " "), err, out)
	}
	return nil
}

// Build compiles the named commands (default: Binaries) into a directory
// removed after the test and returns it.
func Build(tb testing.TB, names ...string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := BuildBinaries(dir, names...); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// logTail is how many lines of each log a failed test shows.
const logTail = 40

// ForTest starts a cluster for a test: the default internet when
// o.Internet is nil, binaries built when o.Bin is empty, a temporary work
// directory when o.Dir is empty, progress through tb.Logf when o.Logf is
// nil. When the test ends, every process is stopped; if it failed, the
// nodes' Summary and the tail of every log are logged and a temporary work
// directory is kept. Not root: the test is skipped.
func ForTest(tb testing.TB, o Options) *Cluster {
	tb.Helper()
	netns.RequireRoot(tb)
	if o.Internet == nil {
		o.Internet = internet.ForTest(tb, internet.Default())
	}
	if o.Bin == "" {
		o.Bin = Build(tb)
	}
	temporary := o.Dir == ""
	if temporary {
		// Short, unlike tb.TempDir: control socket paths must fit in 108 bytes.
		dir, err := os.MkdirTemp("", "cluster")
		if err != nil {
			tb.Fatal(err)
		}
		o.Dir = dir
	}
	if o.Logf == nil {
		o.Logf = tb.Logf
	}
	showLogs := func() {
		for _, log := range logFiles(o.Dir) {
			tb.Logf("--- %s (last %d lines)\n%s", log, logTail, tail(log, logTail))
		}
		tb.Logf("work directory kept: %s", o.Dir)
	}
	c, err := Start(o)
	if err != nil {
		showLogs()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if tb.Failed() {
			tb.Logf("--- nodes at the failure\n%s", c.Summary())
		}
		if err := c.Close(); err != nil {
			tb.Error(err)
		}
		if tb.Failed() {
			showLogs()
		} else if temporary {
			os.RemoveAll(o.Dir)
		}
	})
	return c
}
