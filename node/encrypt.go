package node

import (
	"fmt"
	"slices"
	"strings"

	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// encryptingTypes are the tunnel types that encrypt what they carry:
// WireGuard (tunnels/wireguard, one device per tunnel: wireguard.go). In a
// network that encrypts, the node's backend carries these only.
var encryptingTypes = []string{nodeproto.ProtoWireGuard}

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
