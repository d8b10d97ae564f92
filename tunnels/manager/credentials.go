package manager

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
)

// Credentials is implemented by a Backend whose tunnels of some types need
// key material from each end, exchanged in the tunnel set-up and bound to
// the peer's certificate (WireGuard: a wireguard.Binding). The peer's
// credential reaches Backend.Add in Endpoint.PeerCredential.
type Credentials interface {
	// Credential is what we send a peer for a tunnel of encap; nil when
	// encap needs none.
	Credential(encap string) ([]byte, error)
	// CheckCredential verifies a peer's credential for a tunnel of encap
	// against the peer's certificate (which the node protocol checked
	// against the network's CA) and prefix.
	CheckCredential(encap string, peer netip.Prefix, cert *x509.Certificate, credential []byte) error
}

var errUnexpectedCredential = errors.New("a credential for a tunnel type that takes none")

// credential is ours for encap, nil when the backend needs none.
func (m *Manager) credential(encap string) ([]byte, error) {
	c, ok := m.cfg.Backend.(Credentials)
	if !ok {
		return nil, nil
	}
	return c.Credential(encap)
}

// checkCredential verifies a peer's credential for encap; a backend
// without credentials takes none.
func (m *Manager) checkCredential(encap string, peer netip.Prefix, cert *x509.Certificate, credential []byte) error {
	c, ok := m.cfg.Backend.(Credentials)
	if !ok {
		if len(credential) > 0 {
			return errUnexpectedCredential
		}
		return nil
	}
	if err := c.CheckCredential(encap, peer, cert, credential); err != nil {
		return fmt.Errorf("%s credential of %s: %w", encap, peer, err)
	}
	return nil
}
