package netns

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// freshEnv marks the child of TestDeleteAfterIproute2 that runs in a mount
// namespace of its own where /run/netns is not a mount point, as on a
// machine where `ip netns add` never ran.
const freshEnv = "RE6ST_NETNS_FRESH_RUNDIR"

// TestDeleteAfterIproute2 creates a namespace, lets iproute2 add and
// delete one of its own (its first `ip netns add` on a machine bind-mounts
// /run/netns onto itself), then deletes ours: its name must go. Before
// /run/netns was prepared, the removal failed with EBUSY and the name
// stayed for good. It runs in a private mount namespace, with /run/netns
// unmounted there, so that the machine's mounts are left alone.
func TestDeleteAfterIproute2(t *testing.T) {
	RequireRoot(t)
	if os.Getenv(freshEnv) == "" {
		script := "umount -l " + runDir + " 2>/dev/null; exec \"$0\" -test.run='^TestDeleteAfterIproute2$' -test.v"
		cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", script, os.Args[0])
		cmd.Env = append(os.Environ(), freshEnv+"=1")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "--- PASS: TestDeleteAfterIproute2")
		return
	}
	ns, err := New(UniqueName("rd"))
	require.NoError(t, err)
	other := UniqueName("rdip")
	out, err := exec.Command("ip", "netns", "add", other).CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command("ip", "netns", "del", other).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.NoError(t, ns.Close())
	_, err = os.Stat(runDir + "/" + ns.Name)
	require.ErrorIs(t, err, os.ErrNotExist)

	mounts, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	var shared bool
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) > 6 && f[4] == runDir && strings.Contains(line, "shared:") {
			shared = true
		}
	}
	require.True(t, shared, "%s is a shared mount point", runDir)
}
