package node

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
)

// re6st's rule: subnet k of length N+S in the IPv4 network, the node on its
// first host address (the subnet itself for a /31 or /32).
func TestIPv4Of(t *testing.T) {
	for _, tc := range []struct {
		network      string
		sublen, k    int
		addr, subnet string
		err          bool
	}{
		{"10.42.0.0/16", 8, 0, "10.42.0.1/16", "10.42.0.0/24", false},
		{"10.42.0.0/16", 8, 5, "10.42.5.1/16", "10.42.5.0/24", false},
		{"10.42.0.0/16", 8, 255, "10.42.255.1/16", "10.42.255.0/24", false},
		{"10.0.0.0/8", 16, 258, "10.1.2.1/8", "10.1.2.0/24", false},
		{"10.42.0.0/24", 7, 3, "10.42.0.6/24", "10.42.0.6/31", false},
		{"10.42.0.0/24", 8, 3, "10.42.0.3/24", "10.42.0.3/32", false},
		{"10.42.0.0/16", 8, 256, "", "", true}, // no subnet for this serial
		{"10.42.0.0/16", 17, 0, "", "", true},  // S > 16
		{"10.42.0.0/24", 9, 0, "", "", true},   // N+S > 32
		{"2001:db8::/32", 8, 0, "", "", true},  // not IPv4
		{"10.42.0.0/16", 8, -1, "", "", true},  // no subject serial
	} {
		got, err := ipv4Of(&netparams.Params{IPv4: tc.network, IPv4Sublen: tc.sublen}, tc.k)
		if tc.err {
			require.Error(t, err, "%+v", tc)
			continue
		}
		require.NoError(t, err, "%+v", tc)
		require.Equal(t, ipv4Payload{addr: netip.MustParsePrefix(tc.addr), subnet: netip.MustParsePrefix(tc.subnet)}, got, "%+v", tc)
	}
	_, err := ipv4Of(&netparams.Params{}, 0)
	require.ErrorIs(t, err, errNoIPv4)
}
