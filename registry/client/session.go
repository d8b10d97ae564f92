package client

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// Identity is what a node authenticates with.
type Identity struct {
	CA   *x509.Certificate
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
}

// Session makes a node's authenticated calls. It is safe for concurrent
// use; calls are serialised, as the hash chain requires.
type Session struct {
	client   *Client
	identity Identity
	prefix   string
	caKey    *rsa.PublicKey

	mu  sync.Mutex
	key []byte // next chain key, nil before hello
	// handshakes is read without mu, which a call holds for its whole
	// round trip.
	handshakes atomic.Uint64
}

// Session binds the client to a node identity.
func (c *Client) Session(identity Identity) (*Session, error) {
	prefix, err := ca.NodePrefix(identity.Cert)
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	caKey, ok := identity.CA.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("the CA key is not RSA")
	}
	return &Session{client: c, identity: identity, prefix: prefix, caKey: caKey}, nil
}

// Handshakes counts the session's successful hellos. One after the first
// means the registry had forgotten the session: it restarted, and forgot
// with it what the node reported (ReportAddress).
func (s *Session) Handshakes() uint64 { return s.handshakes.Load() }

// Prefix returns the node's prefix bits.
func (s *Session) Prefix() string { return s.prefix }

// ErrUnauthenticatedAnswer is returned when an answer's MAC is wrong.
var ErrUnauthenticatedAnswer = errors.New("registry answer failed HMAC verification")

func (s *Session) handshake(ctx context.Context) ([]byte, error) {
	answer, err := s.client.call(ctx, "hello", arg{"client_prefix", s.prefix}, arg{"protocol", strconv.Itoa(netparams.Protocol)})
	if err != nil {
		return nil, err
	}
	secret, err := wire.OpenHello(answer, s.caKey, s.identity.Key)
	if err != nil {
		return nil, fmt.Errorf("registry hello: %w", err)
	}
	return secret, nil
}

// call makes one authenticated call. If the registry refuses it with a
// key of an earlier handshake, it handshakes again and retries once.
func (s *Session) call(ctx context.Context, method string, args ...arg) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pathAndQuery := query(method, append([]arg{{"cn", s.prefix}}, args...))
	for retry := true; ; {
		key := s.key
		if key == nil {
			retry = false
			var err error
			if key, err = s.handshake(ctx); err != nil {
				return nil, err
			}
			s.handshakes.Add(1)
		}
		s.key = wire.NextKey(key)
		body, mac, err := s.client.do(ctx, method, pathAndQuery, wire.RequestMAC(key, pathAndQuery))
		if err == nil {
			got, decodeErr := base64.StdEncoding.DecodeString(mac)
			if decodeErr == nil && hmac.Equal(got, wire.ResponseMAC(key, body)) {
				return body, nil
			}
			err = ErrUnauthenticatedAnswer
		}
		s.key = nil
		if !retry || ctx.Err() != nil {
			return nil, err
		}
		retry = false
	}
}

// NetworkConfig fetches the network parameters, checks their version
// signature and decrypts the Babel keys.
func (s *Session) NetworkConfig(ctx context.Context) (*netparams.Params, error) {
	_, p, err := s.NetworkConfigDocument(ctx)
	return p, err
}

// NetworkConfigDocument is NetworkConfig that also returns the document as
// received, for a node to cache and decode again (netparams.Decode) when
// the registry is unreachable.
func (s *Session) NetworkConfigDocument(ctx context.Context) ([]byte, *netparams.Params, error) {
	body, err := s.call(ctx, "getNetworkConfig")
	if err != nil {
		return nil, nil, err
	}
	p, err := netparams.Decode(body, s.caKey, s.identity.Key)
	if err != nil {
		return nil, nil, err
	}
	return body, p, nil
}

// RenewCertificate returns the node's certificate: a new one if it was due
// for renewal or revoked by serial, the current one otherwise.
func (s *Session) RenewCertificate(ctx context.Context) ([]byte, error) {
	return s.call(ctx, "renewCertificate")
}

// DH returns the DH parameters the registry hands out.
func (s *Session) DH(ctx context.Context) ([]byte, error) {
	return s.call(ctx, "getDh")
}

// Country returns the country code of an IP address, "" if unknown.
func (s *Session) Country(ctx context.Context, address string) (string, error) {
	answer, err := s.call(ctx, "getCountry", arg{"address", address})
	return string(answer), err
}

// ReportAddress tells the registry the node's addresses,
// "ip,port,proto[,country];..." (re6st-bpf extension).
func (s *Session) ReportAddress(ctx context.Context, addresses string) error {
	_, err := s.call(ctx, "reportAddress", arg{"address", addresses})
	return err
}

// BootstrapPeer asks for a peer to tunnel to; ok is false when the
// registry has none.
func (s *Session) BootstrapPeer(ctx context.Context) (prefix, addresses string, ok bool, err error) {
	answer, err := s.call(ctx, "getBootstrapPeer")
	if err != nil || len(answer) == 0 {
		return "", "", false, err
	}
	plain, err := wire.Decrypt(s.identity.Key, answer)
	if err != nil {
		return "", "", false, fmt.Errorf("bootstrap answer: %w", err)
	}
	prefix, addresses, found := strings.Cut(string(plain), " ")
	if !found || !wire.ValidBits(prefix) {
		return "", "", false, fmt.Errorf("bootstrap answer %q is not \"<prefix> <addresses>\"", plain)
	}
	return prefix, addresses, true, nil
}
