package manager

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/re6st-bpf/re6st-bpf/tunnels/peercache"
)

// extendMesh tunnels to distant peers Babel knows: with their cached
// addresses if untried, else after asking them over the overlay.
func (m *Manager) extendMesh(v view, need int) {
	var distant []string
	for bits := range v.known {
		if !v.direct[bits] {
			distant = append(distant, bits)
		}
	}
	for _, bits := range Order(distant, m.isNeighbour, m.cfg.Rand) {
		if need == 0 {
			return
		}
		if !m.claim(bits) {
			continue
		}
		need--
		prefix := v.known[bits]
		m.spawn(func() {
			defer m.release(bits)
			addrs, ok := m.cfg.Cache.Get(bits)
			if !ok || m.triedRecently(bits) {
				ctx, cancel := context.WithTimeout(m.ctx, setupTimeout)
				list, err := m.cfg.Protocol.AskAddresses(ctx, prefix)
				cancel()
				if err != nil {
					m.log.Debug().Err(err).Stringer("peer", prefix).Msg("no address from peer")
					return
				}
				addrs = nodeproto.FormatAddresses(list)
				m.putCache(bits, addrs)
			}
			m.makeTunnel(bits, addrs)
		})
	}
}

func (m *Manager) putCache(bits, addrs string) {
	if err := m.cfg.Cache.Put(bits, addrs); err != nil {
		m.log.Warn().Err(err).Msg("peer cache")
	}
}

// triedRecently: the cache's blacklist says we failed with these
// addresses; ask the peer for fresh ones.
func (m *Manager) triedRecently(bits string) bool {
	untried, err := m.cfg.Cache.Random(1, true, func(b string) bool { return b != bits })
	return err == nil && len(untried) == 0
}

// bootstrap: nobody known through Babel. Try cached peers, then one from
// the registry, then, as a last resort, cached peers that failed before.
// The registry is asked on a goroutine: the table stays available.
func (m *Manager) bootstrap(v view, need int) {
	skip := func(bits string) bool { return bits == m.cfg.Self || v.direct[bits] || m.pending[bits] }
	entries, err := m.cfg.Cache.Random(need, true, skip)
	if err != nil {
		m.log.Warn().Err(err).Msg("peer cache")
	}
	if len(entries) > 0 {
		m.setupAll(entries)
		return
	}
	m.askRegistry(skip, func() []peercache.Entry {
		entries, _ := m.cfg.Cache.Random(need, false, skip)
		return entries
	})
}

// askRegistry asks the registry for a bootstrap peer, on a goroutine (the
// table stays available), and tunnels to it; without one, to the peers
// fallback gives.
func (m *Manager) askRegistry(skip func(bits string) bool, fallback func() []peercache.Entry) {
	if m.bootstrapping {
		return
	}
	m.bootstrapping = true
	m.spawn(func() {
		ctx, cancel := context.WithTimeout(m.ctx, setupTimeout)
		bits, addrs, ok, err := m.cfg.Registry.BootstrapPeer(ctx)
		cancel()
		m.do(func() {
			m.bootstrapping = false
			var entries []peercache.Entry
			switch {
			case err != nil:
				m.log.Debug().Err(err).Msg("no bootstrap peer from the registry")
			case ok && !skip(bits):
				m.putCache(bits, addrs)
				entries = append(entries, peercache.Entry{Bits: bits, Addresses: addrs})
			}
			if len(entries) == 0 && fallback != nil {
				entries = fallback()
			}
			m.setupAll(entries)
		})
	})
}

func (m *Manager) setupAll(entries []peercache.Entry) {
	for _, e := range entries {
		if m.claim(e.Bits) {
			m.spawn(func() {
				defer m.release(e.Bits)
				m.makeTunnel(e.Bits, e.Addresses)
			})
		}
	}
}

// makeTunnel sets up an outgoing tunnel with a peer, trying its
// addresses in our order of tunnel types (choice.go).
func (m *Manager) makeTunnel(bits, addresses string) {
	prefix, err := nodeproto.PrefixOf(m.cfg.Network, bits)
	if err != nil {
		return
	}
	list, err := nodeproto.ParseAddresses(addresses)
	if err != nil {
		if err := m.cfg.Cache.Remove(bits); err != nil {
			m.log.Warn().Err(err).Msg("peer cache")
		}
		return
	}
	m.cfg.Cache.MarkTried(bits)
	var ordered []nodeproto.Address
	m.do(func() { ordered = m.order(bits, m.allowedAddresses(list), m.clock.Now()) })
	for _, a := range ordered {
		err := m.setupWith(bits, prefix, a, list)
		if err == nil {
			m.cfg.Cache.MarkWorked(bits)
			return
		}
		m.log.Debug().Err(err).Stringer("peer", prefix).Stringer("ip", a.IP).Str("proto", a.Proto).Msg("tunnel setup failed")
		if errors.Is(err, errStopped) {
			return
		}
		m.noteSetupFailure(bits, pathOf(a.Proto, a.IP), err)
	}
}

// fouPortOf is the peer's FOU port on ip (node-protocol messages always
// go there), def if it does not say.
func fouPortOf(list []nodeproto.Address, ip netip.Addr, def uint16) uint16 {
	for _, a := range list {
		if a.IP == ip && a.Proto == nodeproto.ProtoFOU && a.Port != 0 {
			return a.Port
		}
	}
	return def
}

func (m *Manager) setupWith(bits string, prefix netip.Prefix, a nodeproto.Address, list []nodeproto.Address) error {
	local, err := m.cfg.Backend.LocalFor(a.IP)
	if err != nil {
		return err
	}
	if m.unannounced(a.Proto) {
		return m.openUnannounced(bits, prefix, local, a)
	}
	via := netip.AddrPortFrom(a.IP, fouPortOf(list, a.IP, m.cfg.PeerPort))
	req := nodeproto.TunnelRequest{Encap: a.Proto, Endpoint: netip.AddrPortFrom(local, m.cfg.FOUPort)}
	keyed := m.cfg.Backend.Keyed(a.Proto)
	if keyed {
		req.Key = randomKey()
	}
	if req.Binding, err = m.credential(a.Proto); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(m.ctx, setupTimeout)
	defer cancel()
	reply, err := m.cfg.Protocol.SetupTunnel(ctx, prefix, via, req)
	if err != nil {
		return err
	}
	if !reply.Accepted {
		return fmt.Errorf("refused: %s", reply.Reason)
	}
	cert := m.cfg.Protocol.PeerCertificate(prefix)
	if err := m.checkCredential(a.Proto, prefix, cert, reply.Binding); err != nil {
		m.cfg.Protocol.KillTunnel(ctx, prefix)
		return err
	}
	devicePort, err := m.devicePort(a.Proto, reply.Endpoint.Port())
	if err != nil {
		m.cfg.Protocol.KillTunnel(ctx, prefix)
		return err
	}
	nat := reply.Observed.IsValid() && reply.Observed != req.Endpoint
	t := Tunnel{Peer: prefix, Bits: bits, Outgoing: true, Endpoint: Endpoint{
		Encap: a.Proto, Local: local, Remote: via, NAT: nat && !keyed, DevicePort: devicePort}}
	if keyed {
		t.Endpoint.Key = reply.Key
	}
	t.Endpoint.PeerCredential = string(reply.Binding)
	if cert != nil {
		t.Serial, _ = ca.SerialUint64(cert)
	}
	err = errStopped
	m.do(func() {
		if _, err = m.open(t); err == nil {
			m.lastRefresh = m.clock.Now()
		}
	})
	if err != nil {
		if !errors.Is(err, errDuplicate) && !errors.Is(err, errStopped) {
			m.cfg.Protocol.KillTunnel(ctx, prefix)
		}
		return err
	}
	m.cfg.Protocol.Gossip(prefix)
	return nil
}

func randomKey() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:]) | 1
}
