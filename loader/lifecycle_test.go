package loader_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// attachModes are the ways the tc programs attach; both run on this
// kernel, so every namespace test runs in both.
var attachModes = []loader.AttachMode{loader.AttachTCX, loader.AttachLegacy}

// hookMode is an underlay hook with an attachment mode.
type hookMode struct {
	hook   loader.Hook
	attach loader.AttachMode
}

// hookModes are the underlay hooks, each with every attachment mode (the
// overlay's egress program attaches at tc under both hooks).
func hookModes() []hookMode {
	var out []hookMode
	for _, h := range []loader.Hook{loader.HookTC, loader.HookXDP} {
		for _, a := range attachModes {
			out = append(out, hookMode{h, a})
		}
	}
	return out
}

// underlayNS makes a namespace with one veth underlay u0 and returns it
// with the options of an instance there.
func underlayNS(t *testing.T, mode loader.AttachMode) (*netns.NS, loader.Options) {
	ns := netns.ForTest(t, "lc")
	peer := netns.ForTest(t, "lcp")
	require.NoError(t, netns.Veth(ns, "u0", peer, "p0"))
	require.NoError(t, ns.AddrAdd("u0", netip.MustParsePrefix("10.43.0.1/24")))
	t.Cleanup(func() { loader.Remove(ns.Name) })
	return ns, loader.Options{
		Instance: ns.Name, Netns: ns.Name, Underlays: []string{"u0"}, Hook: loader.HookTC, Attach: mode,
		Address: netip.MustParsePrefix("2001:db8:1::1/32"),
	}
}

// requireNothingLeft checks that no trace of the instance remains: state,
// pins, overlay device, program or qdisc on the underlay.
func requireNothingLeft(t *testing.T, ns *netns.NS, instance string) {
	t.Helper()
	_, err := os.Stat(loader.StatePath(instance))
	require.True(t, errors.Is(err, os.ErrNotExist), "state left behind")
	_, err = os.Stat(loader.PinDir(instance))
	require.True(t, errors.Is(err, os.ErrNotExist), "pins left behind")
	require.NoError(t, ns.Do(func() error {
		_, err := netlink.LinkByName(loader.DefaultOverlay)
		require.Error(t, err, "overlay device left behind")
		u0, err := netlink.LinkByName("u0")
		require.NoError(t, err)
		q, err := link.QueryPrograms(link.QueryOptions{Target: u0.Attrs().Index, Attach: ebpf.AttachTCXIngress})
		require.NoError(t, err)
		require.Empty(t, q.Programs, "tcx program left on u0")
		qs, err := netlink.QdiscList(u0)
		require.NoError(t, err)
		for _, q := range qs {
			require.NotEqual(t, "clsact", q.Type(), "clsact qdisc (and its filters) left on u0")
		}
		return nil
	}))
}

// A failure after any step of up leaves nothing behind, and up then works.
func TestUpFailureAtEveryStepLeavesNothing(t *testing.T) {
	for _, mode := range attachModes {
		t.Run(string(mode), func(t *testing.T) {
			ns, opts := underlayNS(t, mode)
			for _, step := range loader.UpSteps() {
				injected := fmt.Errorf("injected failure after %s", step)
				loader.FailUpAfter(t, step, injected)
				_, err := loader.Up(opts)
				require.ErrorIs(t, err, injected)
				requireNothingLeft(t, ns, opts.Instance)
			}
			loader.FailUpAfter(t, "", nil)
			d, err := loader.Up(opts)
			require.NoError(t, err)
			d.Close()
			removed, err := loader.Remove(opts.Instance)
			require.NoError(t, err)
			require.Contains(t, removed, "overlay device re6st0")
			requireNothingLeft(t, ns, opts.Instance)
		})
	}
}

// An instance whose pins or namespace are gone is reported as half present
// with the fix, and down removes what is left of it.
func TestDownRemovesHalfPresentInstances(t *testing.T) {
	t.Run("pins gone", func(t *testing.T) {
		ns, opts := underlayNS(t, loader.AttachTCX)
		d, err := loader.Up(opts)
		require.NoError(t, err)
		d.Close()
		require.NoError(t, os.RemoveAll(loader.PinDir(opts.Instance))) // bpffs remounted

		_, err = loader.Open(opts.Instance)
		require.ErrorContains(t, err, "re6st-bpf --instance "+opts.Instance+" down")
		h, err := loader.Inspect(opts.Instance)
		require.NoError(t, err)
		require.False(t, h.OK())
		require.Contains(t, h.Missing, "map routes")
		require.Contains(t, h.Present, "overlay device re6st0")
		require.ErrorContains(t, h.Err(), "run `re6st-bpf --instance "+opts.Instance+" down`")

		removed, err := loader.Remove(opts.Instance)
		require.NoError(t, err)
		require.Equal(t, []string{"overlay device re6st0", "state " + loader.StatePath(opts.Instance)}, removed)
		requireNothingLeft(t, ns, opts.Instance)
	})
	t.Run("namespace gone", func(t *testing.T) {
		ns, opts := underlayNS(t, loader.AttachLegacy)
		d, err := loader.Up(opts)
		require.NoError(t, err)
		d.Close()
		require.NoError(t, ns.Close())
		h, err := loader.Inspect(opts.Instance)
		require.NoError(t, err)
		require.Contains(t, h.Missing, "network namespace "+opts.Netns)

		removed, err := loader.Remove(opts.Instance)
		require.NoError(t, err)
		require.Len(t, removed, 2, "pins and state: %v", removed)
		_, err = os.Stat(loader.StatePath(opts.Instance))
		require.True(t, errors.Is(err, os.ErrNotExist))
		_, err = os.Stat(loader.PinDir(opts.Instance))
		require.True(t, errors.Is(err, os.ErrNotExist))

		removed, err = loader.Remove(opts.Instance)
		require.NoError(t, err)
		require.Empty(t, removed)
		_, err = loader.Inspect(opts.Instance)
		require.ErrorIs(t, err, loader.ErrNotUp)
	})
	// The namespace's name outlived it: /run/netns/NAME is no namespace
	// (a bind mount detached while a process held it), setns says EINVAL.
	t.Run("namespace name left without its namespace", func(t *testing.T) {
		ns, opts := underlayNS(t, loader.AttachTCX)
		d, err := loader.Up(opts)
		require.NoError(t, err)
		d.Close()
		require.NoError(t, ns.Close())
		path := filepath.Join("/run/netns", opts.Netns)
		require.NoError(t, os.WriteFile(path, nil, 0o444))
		t.Cleanup(func() { os.Remove(path) })

		removed, err := loader.Remove(opts.Instance)
		require.NoError(t, err)
		require.Len(t, removed, 2, "pins and state: %v", removed)
		_, err = loader.Inspect(opts.Instance)
		require.ErrorIs(t, err, loader.ErrNotUp)
	})
}

// Without tcx, auto attaches through clsact + cls_bpf, and tcx is refused
// with the fix.
func TestAutoAttachWithoutTCX(t *testing.T) {
	ns, opts := underlayNS(t, loader.AttachAuto)
	loader.WithoutTCX(t)
	opts.Attach = loader.AttachTCX
	_, err := loader.Up(opts)
	require.ErrorContains(t, err, "--attach legacy")
	requireNothingLeft(t, ns, opts.Instance)

	opts.Attach = loader.AttachAuto
	d, err := loader.Up(opts)
	require.NoError(t, err)
	d.Close()
	require.Equal(t, loader.AttachLegacy, d.State.Attach)
	require.Contains(t, d.State.AttachWhy, "no tcx")
	h, err := loader.Inspect(opts.Instance)
	require.NoError(t, err)
	require.True(t, h.OK(), h.Missing)
	for _, a := range h.State.Attachments {
		require.NotNil(t, a.Filter, a.Interface)
		require.True(t, a.Attached, a.Interface)
		require.NotZero(t, a.ProgramID, a.Interface)
	}
	_, err = loader.Remove(opts.Instance)
	require.NoError(t, err)
	requireNothingLeft(t, ns, opts.Instance)
}

// A clsact qdisc that was there before up stays after down; only our
// filter goes.
func TestLegacyDownKeepsAQdiscItFound(t *testing.T) {
	ns, opts := underlayNS(t, loader.AttachLegacy)
	_, err := ns.Run("tc", "qdisc", "add", "dev", "u0", "clsact")
	require.NoError(t, err)
	d, err := loader.Up(opts)
	require.NoError(t, err)
	d.Close()
	out, err := ns.Run("tc", "filter", "show", "dev", "u0", "ingress")
	require.NoError(t, err)
	require.Contains(t, out, "underlay_tc")

	removed, err := loader.Remove(opts.Instance)
	require.NoError(t, err)
	require.Contains(t, removed, "tc-ingress filter on u0")
	require.NotContains(t, removed, "clsact qdisc on u0")
	out, err = ns.Run("tc", "qdisc", "show", "dev", "u0")
	require.NoError(t, err)
	require.Contains(t, out, "clsact")
	out, err = ns.Run("tc", "filter", "show", "dev", "u0", "ingress")
	require.NoError(t, err)
	require.Empty(t, out)
}

// crashEnv names, in a child test process, the step after which Up exits
// and the namespace it acts in.
const crashEnv = "RE6ST_TEST_CRASH_UP_AFTER"

// An up that dies after any step (the process exits, nothing is cleaned
// up) leaves a state that says so: status names the fix, up refuses, and
// down removes everything.
func TestDownAfterUpCrashed(t *testing.T) {
	if step := os.Getenv(crashEnv); step != "" {
		ns := os.Getenv(crashEnv + "_NETNS")
		loader.CrashUpAfter(step)
		_, err := loader.Up(loader.Options{Instance: ns, Netns: ns, Underlays: []string{"u0"}, Hook: loader.HookTC,
			Attach: loader.AttachMode(os.Getenv(crashEnv + "_ATTACH")), Address: netip.MustParsePrefix("2001:db8:1::1/32")})
		t.Fatalf("up did not crash after %s: %v", step, err)
	}
	for _, mode := range attachModes {
		t.Run(string(mode), func(t *testing.T) {
			ns, opts := underlayNS(t, mode)
			steps := loader.UpSteps()
			for _, step := range steps[:len(steps)-1] { // after the commit, up is complete
				cmd := exec.Command(os.Args[0], "-test.run=^TestDownAfterUpCrashed$")
				cmd.Env = append(os.Environ(), crashEnv+"="+step, crashEnv+"_NETNS="+ns.Name, crashEnv+"_ATTACH="+string(mode))
				out, err := cmd.CombinedOutput()
				var exit *exec.ExitError
				require.ErrorAs(t, err, &exit, string(out))
				require.Equal(t, 3, exit.ExitCode(), string(out))

				_, err = loader.Up(opts)
				require.ErrorContains(t, err, "re6st-bpf --instance "+opts.Instance+" down", "after a crash at %s", step)
				h, err := loader.Inspect(opts.Instance)
				require.NoError(t, err)
				require.Contains(t, h.Missing, "a finished `up` (it failed or was interrupted)")
				_, err = loader.Remove(opts.Instance)
				require.NoError(t, err)
				requireNothingLeft(t, ns, opts.Instance)
			}
		})
	}
}
