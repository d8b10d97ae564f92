package loader_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
)

// The data plane passes up the Babel traffic the daemon listens to.
func TestDataPlanePassesBabelPort(t *testing.T) {
	require.Equal(t, babel.Port, int(loader.BabelPort))
}
