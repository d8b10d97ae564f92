package loader_test

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf/features"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// Every probe agrees with the version the kernel matrix gives for its
// feature (a kernel at least that recent has it, an older one lacks it),
// and MissingFeatures says nothing exactly when nothing is missing.
func TestKernelProbesMatchTheMatrix(t *testing.T) {
	netns.RequireRoot(t)
	code, err := features.LinuxVersionCode()
	require.NoError(t, err)
	missing := false
	for _, f := range loader.ProbeKernel() {
		var major, minor uint32
		_, err := fmt.Sscanf(f.Since, "%d.%d", &major, &minor)
		require.NoError(t, err, f.Since)
		want := code >= major<<16|minor<<8
		require.Equal(t, want, f.Have, "%s (Linux %s) on Linux %d.%d: %v", f.Name, f.Since, code>>16, code>>8&0xff, f.Err)
		missing = missing || !f.Have
	}
	require.Equal(t, missing, loader.MissingFeatures() != "", loader.MissingFeatures())
}
