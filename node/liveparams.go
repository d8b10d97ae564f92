package node

import (
	"bytes"
	"slices"

	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
)

// applyLive applies new network parameters to what runs: the Babel hello
// interval and MAC keys of every tunnel and -i LAN, in place (the keys of
// update-hmac's three steps take effect without dropping a neighbour;
// tunnels made later read them from the parameters). The client counts,
// tunnel_refresh, the CRL and same_country need nothing here: their users
// read the parameters in force at each use.
func (n *Node) applyLive(old, p *netparams.Params) {
	if old.Hello == p.Hello && sameSlot(old.BabelHMACSign, p.BabelHMACSign) && sameSlot(old.BabelHMACAccept, p.BabelHMACAccept) {
		return
	}
	var applied int
	peers := map[string]string{} // interface → peer's bits
	for _, t := range n.tunnels.Tunnels() {
		peers[t.Interface()] = t.Bits
	}
	for _, i := range n.router.Dump().Interfaces {
		cfg := n.tunnelInterface(peers[i.Name])
		if slices.Contains(n.cfg.LANs, i.Name) {
			cfg = n.babelInterface(babel.LinkWired)
		}
		if err := n.router.Reconfigure(i.Name, cfg); err != nil {
			n.log.Warn().Err(err).Str("interface", i.Name).Msg("new Babel parameters not applied")
			continue
		}
		applied++
	}
	n.log.Info().Int("interfaces", applied).Int("hello", p.Hello).Bool("sign", p.BabelHMACSign.Set).
		Bool("accept", p.BabelHMACAccept.Set).Msg("Babel hello interval and MAC keys applied live")
}

func sameSlot(a, b netparams.Slot) bool { return a.Set == b.Set && bytes.Equal(a.Key, b.Key) }
