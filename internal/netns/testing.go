package netns

import (
	"os"
	"testing"
)

// RequireRoot skips the test when not running as root, saying why.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipped: needs root to create network namespaces and load BPF programs (CI runs as root)")
	}
}

// ForTest creates a namespace named after prefix that is deleted when the
// test ends. It skips the test when not root.
func ForTest(tb testing.TB, prefix string) *NS {
	tb.Helper()
	RequireRoot(tb)
	ns, err := New(UniqueName(prefix))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ns.Close() })
	return ns
}
