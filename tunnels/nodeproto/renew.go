package nodeproto

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
)

// SetCertificate replaces our certificate with a renewed one (the same key
// and prefix). The handshakes that follow carry it, and every session is
// dropped, so that each peer gets it at the next message, long before the
// old one expires; tunnels are not affected.
func (n *Node) SetCertificate(cert *x509.Certificate) error {
	public, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !public.Equal(&n.cfg.Identity.Key.PublicKey) {
		return errors.New("nodeproto: the renewed certificate is not for our key")
	}
	if bits, err := ca.NodePrefix(cert); err != nil || bits != n.bits {
		return fmt.Errorf("nodeproto: the renewed certificate is not for prefix %s", n.bits)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cfg.Identity.Cert = cert
	n.fingerprint = sha256.Sum256(cert.Raw)
	n.hello0 = append(binary.BigEndian.AppendUint32(nil, seqHello0), cert.Raw...)
	for prefix := range n.sessions {
		n.forget(prefix)
	}
	return nil
}
