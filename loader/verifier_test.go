package loader

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

// Every program passes the kernel's verifier.
func TestVerifierAcceptsEveryProgram(t *testing.T) {
	netns.RequireRoot(t)
	spec := unpinnedSpec(t)
	require.Len(t, spec.Programs, 6)
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
	require.NoError(t, err)
	defer coll.Close()
	for name, p := range coll.Programs {
		info, err := p.Info()
		require.NoError(t, err)
		insns, _ := info.VerifiedInstructions()
		t.Logf("%s: %d verified instructions; %s", name, insns, p.VerifierLog)
	}
}
