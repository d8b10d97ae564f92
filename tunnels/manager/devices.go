package manager

import (
	"fmt"

	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// DevicePorts is implemented by a Backend whose tunnels of some types are
// devices with a UDP port of their own (WireGuard: one device, so one port,
// per tunnel). The server's set-up reply carries that port instead of its
// FOU port; the requester's tunnel gets it as Endpoint.DevicePort.
type DevicePorts interface {
	// HasOwnPort: tunnels of encap have a UDP port of their own.
	HasOwnPort(encap string) bool
	// Port is the UDP port of tunnel id, once Add made it.
	Port(id uint32) (uint16, error)
}

// ownPort: tunnels of encap have a UDP port of their own.
func (m *Manager) ownPort(encap string) bool {
	d, ok := m.cfg.Backend.(DevicePorts)
	return ok && d.HasOwnPort(encap)
}

// replyPort is the port our set-up reply gives for tunnel t: its device's,
// or our FOU port.
func (m *Manager) replyPort(t Tunnel) (uint16, error) {
	if !m.ownPort(t.Endpoint.Encap) {
		return m.cfg.FOUPort, nil
	}
	return m.cfg.Backend.(DevicePorts).Port(t.ID)
}

// devicePort is the peer's device port in its reply, for encap's tunnels
// that have one; 0 for the others.
func (m *Manager) devicePort(encap string, reply uint16) (uint16, error) {
	if !m.ownPort(encap) {
		return 0, nil
	}
	if reply == 0 {
		return 0, fmt.Errorf("the %s reply gives no port", encap)
	}
	return reply, nil
}

// newCredential: the peer of tunnel e (either way) asks for a tunnel of
// e's type with another credential than the one e has of it: it restarted
// and its WireGuard devices and key died with it, or it rotated its key.
// The request came over the node protocol's authenticated session and its
// credential verified: once e is settled (a request that crossed e's
// set-up is refused), the peer itself says it has no tunnel with us, so
// the tunnel is made again, with the new key, instead of waiting until the
// old one goes silent.
func newCredential(e *entry, req nodeproto.TunnelRequest) bool {
	return e.Endpoint.Encap == req.Encap && len(req.Binding) > 0 && e.Endpoint.PeerCredential != string(req.Binding)
}
