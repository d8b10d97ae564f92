package server

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/re6st-bpf/re6st-bpf/registry/alloc"
	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/geoip"
	"github.com/re6st-bpf/re6st-bpf/registry/mail"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/registry/relay"
	"github.com/re6st-bpf/re6st-bpf/registry/store"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// Lifetimes, as re6st defines them.
const (
	DefaultCertDuration = 365 * 24 * time.Hour
	RenewPeriod         = 30 * 24 * time.Hour
	DefaultGracePeriod  = 100 * 24 * time.Hour
	KeyRotationPhase1   = time.Hour // NETCONF_TEMP: valid_until during phase 1
)

// Config is what a registry is made of.
type Config struct {
	Authority             *ca.Authority
	Store                 *store.Store
	Settings              netparams.Settings
	PrefixLength          int // for e-mail and admin tokens; 0 disables them
	AnonymousPrefixLength int // 0 disables anonymous registration
	CertDuration          time.Duration
	GracePeriod           time.Duration
	Communities           alloc.Communities
	GeoIP                 *geoip.Database // optional
	Mailer                mail.Sender     // nil: requestToken is refused
	AuthorizedOrigins     []netip.Addr
	TrustedProxies        []netip.Prefix // whose X-Forwarded-For is believed
	Limits                Limits         // zero: unlimited; see DefaultLimits
	DHParams              []byte         // optional contents served by getDh
	Relay                 *relay.Relay   // optional: versions, topology, getIPv4Information
	Logger                zerolog.Logger
	Now                   func() time.Time // defaults to time.Now
}

// Server is a running registry.
type Server struct {
	cfg      Config
	hostBits int
	network  netip.Prefix // the IPv6 network of the CA

	// writeMu serialises every state change, like re6st's registry lock,
	// and guards the indexes of the issued certificates.
	writeMu        sync.Mutex
	subjectSerials map[int]bool
	keyPrefixes    map[string]string // PKCS#1 public key → prefix

	// enrolSources are the client addresses prefixes were issued to since
	// the registry started, for the operator to find a flood.
	enrolSourcesMu sync.Mutex
	enrolSources   map[string]netip.Addr

	published atomic.Pointer[published]

	sessionsMu  sync.Mutex
	sessions    map[string]*session
	makingHello map[string]chan struct{} // closed once the prefix's hello secret is made

	bootstrap bootstrapState

	helloLimit, enrolLimit *keyedLimiter
	enrolGlobal            *rate.Limiter // nil: unlimited
}

// published is the network state nodes see, swapped after each commit.
type published struct {
	document       netparams.Document
	crl            map[uint64]bool
	registryPrefix string
}

// PendingHelloLifetime is how long a hello secret nobody used is handed
// out again to every hello for its prefix.
const PendingHelloLifetime = 5 * time.Minute

// session is the hash-chain state of one node: the next key of the running
// chain and the hello secret not used yet. The pending secret is replaced
// only once used or expired: a hello for a prefix with a pending secret
// gets the same answer, which only the node can decrypt. So a flood of
// hellos neither breaks the owner's handshake nor costs a signature each.
type session struct {
	chain    []byte // nil before the first authenticated call
	protocol int
	pending  *pendingHello
}

// pendingHello is a hello secret, its sealed answer and the protocol of
// the hello that made it.
type pendingHello struct {
	secret   []byte
	answer   []byte
	protocol int
	expires  time.Time
}

// New opens a registry on an open store: checks the communities against
// the allocated blocks, creates the first Babel key of a new network,
// publishes the parameters (bumping the version if the settings changed)
// and loads the in-memory indexes.
func New(cfg Config) (*Server, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CertDuration == 0 {
		cfg.CertDuration = DefaultCertDuration
	}
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	// The communities are published in the parameters, for the border
	// gateways (a registry without a community file publishes none).
	cfg.Settings.Communities = cfg.Communities.All()
	s := &Server{
		cfg:            cfg,
		hostBits:       128 - len(cfg.Authority.Network),
		subjectSerials: map[int]bool{},
		keyPrefixes:    map[string]string{},
		enrolSources:   map[string]netip.Addr{},
		sessions:       map[string]*session{},
		makingHello:    map[string]chan struct{}{},
		helloLimit:     newKeyedLimiter(cfg.Limits.HelloPerSource),
		enrolLimit:     newKeyedLimiter(cfg.Limits.EnrolPerSource),
	}
	if !cfg.Limits.EnrolGlobal.unlimited() {
		s.enrolGlobal = cfg.Limits.EnrolGlobal.limiter()
	}
	var err error
	if s.network, err = wire.Subnet(cfg.Authority.Network, ""); err != nil {
		return nil, err
	}
	if maxLen := cfg.Communities.MaxLength() + max(cfg.PrefixLength, cfg.AnonymousPrefixLength); maxLen > s.hostBits {
		return nil, fmt.Errorf("prefix length %d plus community bits do not fit in the %d host bits of the network", maxLen-cfg.Communities.MaxLength(), s.hostBits)
	}
	err = cfg.Store.Update(func(tx *store.Tx) error {
		if err := cfg.Communities.CheckAgainst(tx); err != nil {
			return err
		}
		_, hasPrefix, err := tx.ConfigBytes(store.ConfigPrefix)
		if err != nil {
			return err
		}
		slots, err := readSlots(tx)
		if err != nil {
			return err
		}
		if !hasPrefix && !slots[0].Set && !slots[1].Set && !slots[2].Set {
			key, err := newBabelKey()
			if err != nil {
				return err
			}
			if err := tx.SetConfig(store.ConfigBabelHMAC[0], key); err != nil {
				return err
			}
		}
		return s.publish(tx, false)
	})
	if err != nil {
		return nil, err
	}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, cfg.Store.View(func(tx *store.Tx) error {
		blocks, err := tx.IssuedBlocks()
		if err != nil {
			return err
		}
		for _, block := range blocks {
			cert, err := ca.ParseCertificate([]byte(block.Cert))
			if err != nil {
				return fmt.Errorf("certificate of prefix %q in the database: %w", block.Prefix, err)
			}
			s.index(block.Prefix, cert)
		}
		return nil
	})
}

// publicKeyID identifies a certificate's key in keyPrefixes.
func publicKeyID(cert *x509.Certificate) string {
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return ""
	}
	return string(x509.MarshalPKCS1PublicKey(key))
}

// index records an issued certificate's subject serial and key; the
// caller holds writeMu (or is New).
func (s *Server) index(prefix string, cert *x509.Certificate) {
	if serial, ok := ca.SubjectSerial(cert); ok {
		s.subjectSerials[serial] = true
	}
	s.keyPrefixes[publicKeyID(cert)] = prefix
}

// unindex forgets the certificate of a freed prefix and its session; the
// caller holds writeMu.
func (s *Server) unindex(prefix string, cert *x509.Certificate) {
	if serial, ok := ca.SubjectSerial(cert); ok {
		delete(s.subjectSerials, serial)
	}
	delete(s.keyPrefixes, publicKeyID(cert))
	s.enrolSourcesMu.Lock()
	delete(s.enrolSources, prefix)
	s.enrolSourcesMu.Unlock()
	s.dropSession(prefix)
}

func newBabelKey() ([]byte, error) {
	key := make([]byte, netparams.BabelKeySize)
	_, err := rand.Read(key)
	return key, err
}

func readSlots(tx *store.Tx) (netparams.Slots, error) {
	var slots netparams.Slots
	for i, name := range store.ConfigBabelHMAC {
		key, ok, err := tx.ConfigBytes(name)
		if err != nil {
			return slots, err
		}
		slots[i] = netparams.Slot{Set: ok, Key: key}
	}
	return slots, nil
}

func writeSlots(tx *store.Tx, slots netparams.Slots) error {
	for i, name := range store.ConfigBabelHMAC {
		var err error
		if slots[i].Set {
			err = tx.SetConfig(name, append([]byte{}, slots[i].Key...))
		} else {
			err = tx.DeleteConfig(name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// publish recomputes the versioned parameters and bumps the signed
// version if they changed (or if force is set: the Babel keys changed).
func (s *Server) publish(tx *store.Tx, force bool) error {
	revocations, err := tx.Revocations()
	if err != nil {
		return err
	}
	serials := make([]uint64, len(revocations))
	for i, r := range revocations {
		serials[i] = r.Serial
	}
	prefix, _, err := tx.ConfigBytes(store.ConfigPrefix)
	if err != nil {
		return err
	}
	canonical := netparams.Canonical(s.cfg.Settings, serials, string(prefix))
	last, _, err := tx.ConfigBytes(store.ConfigLastConfig)
	if err != nil {
		return err
	}
	if !force && string(last) == canonical {
		return nil
	}
	var version uint64
	if signed, ok, err := tx.ConfigBytes(store.ConfigVersion); err != nil {
		return err
	} else if ok {
		if version, err = wire.VersionNumber(signed); err != nil {
			return fmt.Errorf("stored network version: %w", err)
		}
	}
	signed, err := wire.EncodeVersion(version+1, s.cfg.Authority.Key)
	if err != nil {
		return err
	}
	if err := tx.SetConfig(store.ConfigVersion, signed); err != nil {
		return err
	}
	return tx.SetConfig(store.ConfigLastConfig, canonical)
}

// reload reads the published state back from the database.
func (s *Server) reload() error {
	return s.cfg.Store.View(func(tx *store.Tx) error {
		var p published
		var err error
		last, _, err := tx.ConfigBytes(store.ConfigLastConfig)
		if err != nil {
			return err
		}
		p.document.Canonical = string(last)
		if p.document.SignedVersion, _, err = tx.ConfigBytes(store.ConfigVersion); err != nil {
			return err
		}
		if p.document.ValidUntil, _, err = tx.ConfigInt(store.ConfigValidUntil); err != nil {
			return err
		}
		slots, err := readSlots(tx)
		if err != nil {
			return err
		}
		p.document.Sign, p.document.Accept = slots.Published()
		prefix, _, err := tx.ConfigBytes(store.ConfigPrefix)
		if err != nil {
			return err
		}
		p.registryPrefix = string(prefix)
		revocations, err := tx.Revocations()
		if err != nil {
			return err
		}
		p.crl = map[uint64]bool{}
		for _, r := range revocations {
			p.crl[r.Serial] = true
		}
		s.published.Store(&p)
		return nil
	})
}

// Version returns the current network version number.
func (s *Server) Version() uint64 {
	version, _ := wire.VersionNumber(s.published.Load().document.SignedVersion)
	return version
}

// issuedBlock returns the block of prefix, which must hold a certificate.
func (s *Server) issuedBlock(prefix string) (store.Block, error) {
	var block store.Block
	var found bool
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		var err error
		block, found, err = tx.Block(prefix)
		return err
	})
	if err == nil && (!found || !block.Issued()) {
		err = errNotFound("no certificate for prefix %q", prefix)
	}
	return block, err
}

// issuedCertificate returns the certificate held by prefix.
func (s *Server) issuedCertificate(prefix string) (*x509.Certificate, error) {
	block, err := s.issuedBlock(prefix)
	if err != nil {
		return nil, err
	}
	return ca.ParseCertificate([]byte(block.Cert))
}

func (s *Server) nodeKey(prefix string) (*rsa.PublicKey, error) {
	cert, err := s.issuedCertificate(prefix)
	if err != nil {
		return nil, err
	}
	key, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("node certificate without an RSA key")
	}
	return key, nil
}

func (s *Server) dropSession(prefix string) {
	s.sessionsMu.Lock()
	delete(s.sessions, prefix)
	s.sessionsMu.Unlock()
}
