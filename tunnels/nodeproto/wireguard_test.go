package nodeproto_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// WireGuard items of the address list: they need a port; a peer that
// predates them skips them as it skips re6st's OpenVPN items (the same
// rule, shown here with a protocol this version does not know).
func TestAddressesWithWireGuard(t *testing.T) {
	list, err := nodeproto.ParseAddresses("192.0.2.1,5555,fou;192.0.2.1,51820,wireguard;192.0.2.1,1194,tcp;192.0.2.1,4000,future")
	require.NoError(t, err)
	require.Equal(t, []nodeproto.Address{
		{IP: netip.MustParseAddr("192.0.2.1"), Port: 5555, Proto: "fou"},
		{IP: netip.MustParseAddr("192.0.2.1"), Port: 51820, Proto: "wireguard"},
		{IP: netip.MustParseAddr("192.0.2.1"), Port: 1194, Proto: nodeproto.ProtoOpenVPNTCP},
	}, list)
	_, err = nodeproto.ParseAddresses("192.0.2.1,0,wireguard")
	require.ErrorContains(t, err, "wireguard needs a port")
}

// A WireGuard tunnel request carries the requester's key binding, the
// reply the server's; other requests carry none, as before.
func TestTunnelSetupCarriesWireGuardBindings(t *testing.T) {
	_, a, b := pair(t)
	serverBinding := []byte("server binding bytes")
	b.handler.reply = nodeproto.TunnelReply{Accepted: true, Endpoint: netip.MustParseAddrPort("203.0.113.2:51820"), Binding: serverBinding, Reason: "welcome"}
	req := nodeproto.TunnelRequest{Encap: nodeproto.ProtoWireGuard, Endpoint: netip.MustParseAddrPort("198.51.100.1:51821"), Binding: []byte("requester binding")}
	reply, err := a.node.SetupTunnel(ctxTimeout(t, 5*time.Second), b.prefix, netip.AddrPort{}, req)
	require.NoError(t, err)
	require.Equal(t, serverBinding, reply.Binding)
	require.Equal(t, "welcome", reply.Reason)
	require.True(t, reply.Accepted)
	b.handler.get(func(h *handler) { require.Equal(t, []nodeproto.TunnelRequest{req}, h.setups) })

	// A binding only with WireGuard, and always with it.
	_, err = a.node.SetupTunnel(ctxTimeout(t, time.Second), b.prefix, netip.AddrPort{}, nodeproto.TunnelRequest{Encap: nodeproto.ProtoWireGuard})
	require.Error(t, err)
	_, err = a.node.SetupTunnel(ctxTimeout(t, time.Second), b.prefix, netip.AddrPort{}, nodeproto.TunnelRequest{Encap: nodeproto.ProtoFOU, Binding: []byte("x")})
	require.Error(t, err)
}

// A key rotation's newer binding goes to the peer outside a set-up (code
// 10) and is acknowledged (code 11); a refusal comes back with its reason.
func TestSendKeyBinding(t *testing.T) {
	_, a, b := pair(t)
	binding := []byte("newer binding")
	require.NoError(t, a.node.SendKeyBinding(ctxTimeout(t, 5*time.Second), b.prefix, netip.AddrPort{}, binding))
	b.handler.get(func(h *handler) {
		require.Equal(t, [][]byte{binding}, h.bindings)
		require.Equal(t, []netip.Prefix{a.prefix}, h.bindingsBy, "from the authenticated peer")
	})
	b.handler.set(func(h *handler) { h.bindingErr = errors.New("an older generation") })
	err := a.node.SendKeyBinding(ctxTimeout(t, 5*time.Second), b.prefix, netip.AddrPort{}, binding)
	require.ErrorContains(t, err, "an older generation")
}
