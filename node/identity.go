package node

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/client"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// identity is the node's certificate and what it binds.
type identity struct {
	client.Identity
	network netip.Prefix // the whole overlay network
	prefix  netip.Prefix // this node's subnet
	bits    string       // the subnet as re6st writes it (bits after the network)
	addr    netip.Addr   // <subnet>::1
}

func readPEM[T any](path string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	data, err := os.ReadFile(path)
	if err != nil {
		return zero, err
	}
	v, err := parse(data)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// loadIdentity reads the CA, certificate and key, and checks that the
// certificate is the CA's, current, and matches the key.
func loadIdentity(cfg *Config, now time.Time) (*identity, error) {
	caCert, err := readPEM(cfg.CA, ca.ParseCertificate)
	if err != nil {
		return nil, err
	}
	cert, err := readPEM(cfg.Cert, ca.ParseCertificate)
	if err != nil {
		return nil, err
	}
	key, err := readPEM(cfg.Key, ca.ParsePrivateKey)
	if err != nil {
		return nil, err
	}
	id := &identity{Identity: client.Identity{CA: caCert, Cert: cert, Key: key}}
	if err := id.check(now); errors.Is(err, errExpired) {
		return id, err // complete: the node can still renew it
	} else if err != nil {
		return nil, err
	}
	return id, nil
}

// errExpired: the certificate is otherwise valid, but expired.
var errExpired = errors.New("certificate expired")

func (id *identity) check(now time.Time) error {
	if err := id.Cert.CheckSignatureFrom(id.CA); err != nil {
		return fmt.Errorf("certificate not issued by the CA: %w", err)
	}
	pub, ok := id.Cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&id.Key.PublicKey) {
		return fmt.Errorf("the key does not match the certificate")
	}
	netBits, err := wire.NetworkFromSerial(id.CA.SerialNumber)
	if err != nil {
		return fmt.Errorf("CA serial: %w", err)
	}
	if id.network, err = nodeproto.PrefixOf(netip.PrefixFrom(netip.IPv6Unspecified(), 0), netBits); err != nil {
		return fmt.Errorf("CA serial: %w", err)
	}
	if id.bits, err = ca.NodePrefix(id.Cert); err != nil {
		return err
	}
	if id.prefix, err = nodeproto.PrefixOf(id.network, id.bits); err != nil {
		return err
	}
	id.addr = nodeproto.NodeAddr(id.prefix)
	if now.After(id.Cert.NotAfter) {
		return fmt.Errorf("%w on %s", errExpired, id.Cert.NotAfter.Format(time.DateTime))
	}
	return nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
