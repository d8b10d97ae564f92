package loader

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

// TestProbeQdiscs checks the probe against tc: for each qdisc, tc's own
// attempt on a multi-queue veth in a namespace says "Specified qdisc kind
// is unknown" exactly when the probe says it is not available. On this
// project's CI kernel (6.18 without mqprio, taprio, fq and fq_codel) that
// is htb alone; the test holds on any kernel.
func TestProbeQdiscs(t *testing.T) {
	ns := netns.ForTest(t, "qdp")
	require.NoError(t, netns.VethQueues(ns, "qa", ns, "qb", 2))
	probes, err := ProbeQdiscs()
	require.NoError(t, err)
	require.Len(t, probes, len(ProbedQdiscs))
	for _, p := range probes {
		out, _ := ns.Run("tc", "qdisc", "add", "dev", "qa", "root", "handle", "1:", p.Name)
		_, _ = ns.Run("tc", "qdisc", "del", "dev", "qa", "root")
		unknown := strings.Contains(out, "Specified qdisc kind is unknown")
		require.Equal(t, !unknown, p.Available, "%s: probe %+v, tc said %q", p.Name, p, out)
		t.Logf("%s: available %v %s", p.Name, p.Available, p.Why)
	}
	require.True(t, qdiscAvailable(probes, "htb"), "the shaper's HTB")
}
