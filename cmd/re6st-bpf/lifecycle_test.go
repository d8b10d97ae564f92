package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/loader"
)

// `ip netns exec NS re6st-bpf up` is refused with one line naming --netns,
// and leaves nothing: its pins would live in the command's private /sys.
// So is a process inside NS without --netns (the state in /run is shared).
func TestIPNetnsExecIsRefused(t *testing.T) {
	ns := underlayNS(t, "cliexec", "10.44.0.1/24")
	bin := buildCLI(t)
	ipExec := []string{"ip", "netns", "exec", ns.Name, bin}
	enter := []string{"nsenter", "--net=/run/netns/" + ns.Name, bin}
	up := []string{"up", "--underlay", "u0", "--address", "2001:db8:1::1/32"}
	for _, argv := range [][]string{
		slices.Concat(ipExec, up, []string{"--instance", ns.Name}),
		slices.Concat(ipExec, []string{"-n", ns.Name}, up),
		slices.Concat(ipExec, []string{"-n", ns.Name, "status"}),
		slices.Concat(enter, up, []string{"--instance", ns.Name}),
	} {
		_, stderr, err := runCLI(exec.Command(argv[0], argv[1:]...))
		requireOneLineError(t, stderr, err, "--netns "+ns.Name)
		_, err = os.Stat(statePath(ns.Name))
		require.True(t, errors.Is(err, os.ErrNotExist), "state written by %v", argv)
		_, err = ns.Run("ip", "link", "show", "re6st0")
		require.Error(t, err, "overlay device made by %v", argv)
	}
}

// A state whose pins are gone: status names what is missing and the fix,
// down removes the rest and says what, a second down has nothing to do.
func TestDownAfterPinsVanished(t *testing.T) {
	ns := underlayNS(t, "clistale", "10.45.0.1/24")
	bin := buildCLI(t)
	run := func(args ...string) (string, string, error) {
		return runCLI(exec.Command(bin, append([]string{"-n", ns.Name}, args...)...))
	}
	stdout, stderr, err := run("up", "--underlay", "u0", "--address", "2001:db8:1::1/32", "--attach", "legacy")
	require.NoError(t, err, stderr)
	t.Cleanup(func() { run("down") })
	require.Contains(t, stdout, "attachment: legacy (requested)")
	// Standard error is a pipe: --log-format auto writes JSON lines.
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		require.True(t, json.Valid([]byte(line)), "not a JSON log line: %q", line)
	}
	stdout, stderr, err = run("status")
	require.NoError(t, err, stderr)
	require.Contains(t, stdout, "attachment: legacy (requested)")
	require.Regexp(t, `u0\s+underlay_tc\s+[1-9]\d*\s+tc-ingress\s+true`, stdout)
	require.NoError(t, os.RemoveAll(filepath.Join(loader.PinRoot, ns.Name)))

	_, stderr, err = run("status")
	requireOneLineError(t, stderr, err, "missing map ")
	require.Contains(t, stderr, "run `re6st-bpf --instance "+ns.Name+" down`")
	stdout, stderr, err = run("down")
	require.NoError(t, err, stderr)
	for _, want := range []string{"tc-ingress filter on u0", "clsact qdisc on u0", "overlay device re6st0", "state " + statePath(ns.Name)} {
		require.Contains(t, stdout, "removed "+want)
	}
	stdout, stderr, err = run("down")
	require.NoError(t, err, stderr)
	require.Contains(t, stdout, "nothing to remove")
	_, stderr, err = run("status")
	requireOneLineError(t, stderr, err, "is not up")
}

func statePath(instance string) string { return filepath.Join(loader.StateRoot, instance+".json") }
