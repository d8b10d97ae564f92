package nodeproto_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

func TestParseAndFormatAddresses(t *testing.T) {
	list, err := nodeproto.ParseAddresses("192.0.2.1,326,fou;2001:db8::1,0,gre,FR;1.2.3.4,1194,tcp;1.2.3.4,1195,udp;" +
		"2001:db8::2,1194,tcp6;2001:db8::2,1195,udp6,FR;1.2.3.4,1194,tcp6;2001:db8::2,1194,tcp;1.2.3.4,1194,quic")
	require.NoError(t, err)
	require.Equal(t, []nodeproto.Address{
		{IP: netip.MustParseAddr("192.0.2.1"), Port: 326, Proto: "fou"},
		{IP: netip.MustParseAddr("2001:db8::1"), Proto: "gre", Country: "FR"},
		{IP: netip.MustParseAddr("1.2.3.4"), Port: 1194, Proto: nodeproto.ProtoOpenVPNTCP},
		{IP: netip.MustParseAddr("1.2.3.4"), Port: 1195, Proto: nodeproto.ProtoOpenVPNUDP},
		{IP: netip.MustParseAddr("2001:db8::2"), Port: 1194, Proto: nodeproto.ProtoOpenVPNTCP},
		{IP: netip.MustParseAddr("2001:db8::2"), Port: 1195, Proto: nodeproto.ProtoOpenVPNUDP, Country: "FR"},
	}, list, "re6st's OpenVPN over IPv6 (tcp6, udp6) are the OpenVPN types; an item whose address is of the other family, or of an unknown protocol, is skipped")
	require.Equal(t, "192.0.2.1,326,fou;2001:db8::1,0,gre,FR;1.2.3.4,1194,tcp;1.2.3.4,1195,udp;2001:db8::2,1194,tcp6;2001:db8::2,1195,udp6,FR",
		nodeproto.FormatAddresses(list))
	list, err = nodeproto.ParseAddresses("")
	require.NoError(t, err)
	require.Empty(t, list)
	require.Equal(t, "", nodeproto.FormatAddresses(nil))
	for _, bad := range []string{
		"192.0.2.1,326", "192.0.2.1,326,fou,FR,x", "bad,326,fou", "fe80::1%eth0,326,fou",
		"192.0.2.1,70000,fou", "192.0.2.1,0,fou", "192.0.2.1,326,gre", "192.0.2.1,326,fou,", "192.0.2.1,326,fou;", "192.0.2.1,0,tcp", "2001:db8::2,0,udp6",
	} {
		_, err := nodeproto.ParseAddresses(bad)
		require.Error(t, err, bad)
	}
}

func TestPrefixConversions(t *testing.T) {
	network := netip.MustParsePrefix("2001:db8:42::/48")
	p, err := nodeproto.PrefixOf(network, "0000000000000011")
	require.NoError(t, err)
	require.Equal(t, netip.MustParsePrefix("2001:db8:42:3::/64"), p)
	bits, err := nodeproto.BitsOf(network, p)
	require.NoError(t, err)
	require.Equal(t, "0000000000000011", bits)
	p, err = nodeproto.PrefixOf(network, "1")
	require.NoError(t, err)
	require.Equal(t, netip.MustParsePrefix("2001:db8:42:8000::/49"), p)
	whole, err := nodeproto.PrefixOf(network, "")
	require.NoError(t, err)
	require.Equal(t, network, whole)

	require.Equal(t, netip.MustParseAddr("2001:db8:42:3::1"), nodeproto.NodeAddr(netip.MustParsePrefix("2001:db8:42:3::/64")))

	_, err = nodeproto.PrefixOf(network, "012")
	require.Error(t, err)
	_, err = nodeproto.PrefixOf(network, string(make([]byte, 81)))
	require.Error(t, err)
	_, err = nodeproto.BitsOf(network, netip.MustParsePrefix("2001:db8:43::/64"))
	require.Error(t, err)
	_, err = nodeproto.BitsOf(network, netip.MustParsePrefix("2001:db8::/32"))
	require.Error(t, err)
}
