package node

import (
	"fmt"
	"slices"
	"strings"

	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/tunnels/manager"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/re6st-bpf/re6st-bpf/tunnels/openvpn"
)

// encryptingTypes are the tunnel types that encrypt what they carry in a
// network that encrypts: WireGuard (tunnels/wireguard, one device per
// tunnel: wireguard.go), and OpenVPN, which then runs with a cipher
// (openvpn.go). In such a network, the node's backend carries these only.
var encryptingTypes = []string{nodeproto.ProtoWireGuard, nodeproto.ProtoOpenVPNTCP, nodeproto.ProtoOpenVPNUDP}

// tunnelEncrypted: tunnel id, of encap, encrypts. An OpenVPN client says
// which cipher it negotiated (with a re6st peer run with OpenVPN 2.6, one
// even when the network does not encrypt: TestInteropRe6st); before, and
// for the other types, encrypted answers.
func (n *Node) tunnelEncrypted(id uint32, encap string, networkEncrypts bool) bool {
	if c := n.backend.ovpn.cipher(id); c != "" {
		return c != openvpn.NoCipher
	}
	return encrypted(encap, networkEncrypts)
}

// encrypted: a tunnel of encap encrypts. OpenVPN has a cipher when the
// network encrypts (its client started without --cipher none).
func encrypted(encap string, networkEncrypts bool) bool {
	if _, ovpn := openvpnTypes[encap]; ovpn {
		return networkEncrypts
	}
	return slices.Contains(encryptingTypes, encap)
}

// offeredTypes are the tunnel types the node offers.
func (c *Config) offeredTypes() []string {
	if len(c.TunnelTypes) > 0 {
		return c.TunnelTypes
	}
	return []string{c.Encap.String()}
}

// checkEncryption refuses a network whose parameters say `encrypt` when
// none of the tunnel types the node offers encrypts: such a node would
// carry the network's traffic in clear.
func checkEncryption(p *netparams.Params, offered []string) error {
	if !p.Encrypt {
		return nil
	}
	for _, t := range offered {
		if slices.Contains(encryptingTypes, t) {
			return nil
		}
	}
	return fmt.Errorf("the network requires encrypted tunnels (registry --encrypt) and this node's tunnel types (%s) do not encrypt: it cannot join",
		strings.Join(offered, ","))
}

// dropClearTunnels tears down, when newer parameters turn encryption on,
// the tunnels that carry the network's traffic in clear: FOU and GRE, and
// OpenVPN clients started without a cipher (every client running then
// was; one that negotiated a cipher anyway, with a re6st peer, stays). The
// manager then makes encrypting ones only (tunnelBackend.Carries).
func (n *Node) dropClearTunnels(old, p *netparams.Params) {
	if old.Encrypt || !p.Encrypt {
		return
	}
	dropped := n.tunnels.CloseIf("the network encrypts now", func(t manager.Tunnel) bool {
		if _, ovpn := openvpnTypes[t.Endpoint.Encap]; ovpn {
			c := n.backend.ovpn.cipher(t.ID)
			return c == "" || c == openvpn.NoCipher
		}
		return !slices.Contains(encryptingTypes, t.Endpoint.Encap)
	})
	n.log.Info().Int("tunnels", dropped).Msg("the network encrypts now: tunnels in clear torn down")
}
