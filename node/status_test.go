package node

import (
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The status JSON is what `re6stnet status` and scripts read back.
func TestStatusJSONRoundTrip(t *testing.T) {
	s := Status{
		Prefix: netip.MustParsePrefix("2001:db8:42:1::/64"), Uptime: Duration(90 * time.Second),
		Tunnels: []TunnelStatus{{ID: 3, Encap: loader.GRE, Age: Duration(time.Minute), Remote: netip.MustParseAddrPort("198.18.1.2:0")}},
		Control: ControlStatus{NodeProtocol: nodeproto.Stats{Dropped: map[nodeproto.Reason]uint64{nodeproto.DropBadMAC: 2}}},
	}
	b, err := json.Marshal(s)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"uptime":"1m30s"`)
	assert.Contains(t, string(b), `"encap":"gre"`)
	assert.Contains(t, string(b), `"bad_mac":2`)
	var back Status
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, s, back)
}
