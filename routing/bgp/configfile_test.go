package bgp

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// TestSpeakerConfigFile: the global section and the neighbour come from a
// GoBGP configuration file (--bgp-config); the import policy still
// rejects the network's own prefixes.
func TestSpeakerConfigFile(t *testing.T) {
	netns.RequireRoot(t)
	upstream(t, "")
	file := filepath.Join(t.TempDir(), "gobgp.toml")
	require.NoError(t, os.WriteFile(file, []byte(`[global.config]
  as = 65000
  router-id = "10.255.0.2"
  port = 179

[[neighbors]]
  [neighbors.config]
    neighbor-address = "fd00:b::1"
    peer-as = 65001
  [neighbors.timers.config]
    connect-retry = 1
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
`), 0o600))
	logs := &logBuffer{}
	s, err := Start(Config{ConfigFile: file, Network: network, Logger: zerolog.New(logs)})
	require.NoError(t, err)
	t.Cleanup(s.Stop)
	require.Eventually(t, func() bool { return s.LearnedCount() == 2 && s.Rejected() == 2 }, 20*time.Second, 50*time.Millisecond,
		"learned %v, rejected %d; log:\n%s", learned(s), s.Rejected(), logs)
	require.Contains(t, learned(s), netip.MustParsePrefix("::/0"))
	require.EqualValues(t, 65000, s.cfg.ASN)

	_, err = Start(Config{ConfigFile: filepath.Join(t.TempDir(), "missing.toml"), Network: network, Logger: zerolog.Nop()})
	require.ErrorContains(t, err, "--bgp-config")
}
