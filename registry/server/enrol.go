package server

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"math/big"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/registry/alloc"
	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/store"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

// TokenMailSubject and the body below are the token mail re6st sends.
const TokenMailSubject = "[re6stnet] Token Request"

func (s *Server) hello(c *call) ([]byte, error) {
	prefix := c.arg("client_prefix")
	protocol := 1
	if text, ok := c.args["protocol"]; ok {
		var err error
		if protocol, err = strconv.Atoi(text); err != nil || protocol < 0 {
			return nil, errBadRequest("protocol %q is not a number", text)
		}
	}
	for {
		answer, making := s.pendingOrClaim(prefix, protocol)
		if answer != nil {
			return answer, nil
		}
		if making == nil {
			break // this hello makes the secret
		}
		<-making // another hello is making it: wait, then look again
	}
	defer s.releaseClaim(prefix)
	source := c.client
	if ok, wait := s.helloLimit.allow(source, s.cfg.Now()); !ok {
		return nil, errTooMany(wait, "too many hellos from %s: retry in %s", source, wait.Round(time.Second))
	}
	key, err := s.nodeKey(prefix)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	secret, err := wire.NewHelloSecret(now)
	if err != nil {
		return nil, err
	}
	answer, err := wire.SealHello(key, s.cfg.Authority.Key, secret)
	if err != nil {
		return nil, err
	}
	s.sessionsMu.Lock()
	defer s.sessionsMu.Unlock()
	sess := s.sessions[prefix]
	if sess == nil {
		sess = &session{}
		s.sessions[prefix] = sess
	}
	// The running chain is kept: a third party's hello does not break it.
	sess.pending = &pendingHello{secret: secret, answer: answer, protocol: protocol, expires: now.Add(PendingHelloLifetime)}
	return answer, nil
}

// pendingOrClaim returns the answer of the hello secret of prefix not used
// yet if there is one; else, if another hello is making one, a channel
// closed once it is done; else nothing, and the caller must make the
// secret and then call releaseClaim. So concurrent hellos for a prefix
// cost one signature. The session takes the highest protocol of the
// hellos that shared the secret: a third party's hello cannot downgrade
// a node (protocol < 7 strips the country of bootstrap addresses).
func (s *Server) pendingOrClaim(prefix string, protocol int) ([]byte, <-chan struct{}) {
	s.sessionsMu.Lock()
	defer s.sessionsMu.Unlock()
	if sess := s.sessions[prefix]; sess != nil && sess.pending != nil && s.cfg.Now().Before(sess.pending.expires) {
		sess.pending.protocol = max(sess.pending.protocol, protocol)
		return sess.pending.answer, nil
	}
	if making := s.makingHello[prefix]; making != nil {
		return nil, making
	}
	s.makingHello[prefix] = make(chan struct{})
	return nil, nil
}

// releaseClaim ends the claim pendingOrClaim gave, and wakes the hellos
// waiting for it.
func (s *Server) releaseClaim(prefix string) {
	s.sessionsMu.Lock()
	defer s.sessionsMu.Unlock()
	close(s.makingHello[prefix])
	delete(s.makingHello, prefix)
}

func (s *Server) getCa(*call) ([]byte, error) {
	return s.cfg.Authority.CertPEM, nil
}

// newToken returns 8 distinct random lowercase letters, as re6st does.
func newToken() (string, error) {
	letters := []byte("abcdefghijklmnopqrstuvwxyz")
	for i := range 8 {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(len(letters)-i)))
		if err != nil {
			return "", err
		}
		k := i + int(j.Int64())
		letters[i], letters[k] = letters[k], letters[i]
	}
	return string(letters[:8]), nil
}

// insertNewToken stores a fresh random token for email.
func (s *Server) insertNewToken(email string) (string, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	for {
		token, err := newToken()
		if err != nil {
			return "", err
		}
		err = s.cfg.Store.Update(func(tx *store.Tx) error {
			return tx.InsertToken(store.Token{Token: token, Email: email, PrefixLen: s.cfg.PrefixLength, Date: s.cfg.Now().Unix()})
		})
		if !errors.Is(err, store.ErrTokenExists) {
			return token, err
		}
	}
}

func validEmail(email string) error {
	if len(email) > 254 || strings.ContainsAny(email, "\r\n <>,;") || !strings.Contains(email, "@") {
		return errBadRequest("%q is not an e-mail address", email)
	}
	return nil
}

func (s *Server) requestToken(c *call) ([]byte, error) {
	if s.cfg.Mailer == nil {
		return nil, errForbidden("registration by e-mail is disabled on this registry (no mail host)")
	}
	if s.cfg.PrefixLength == 0 {
		return nil, errForbidden("registration by token is disabled on this registry (prefix length 0)")
	}
	email := c.arg("email")
	if err := validEmail(email); err != nil {
		return nil, err
	}
	if err := s.allowEnrolment(c.client); err != nil {
		return nil, err
	}
	token, err := s.insertNewToken(email)
	if err != nil {
		return nil, err
	}
	body := "Hello, your token to join re6st network is: " + token + "\n"
	if err := s.cfg.Mailer.Send(email, TokenMailSubject, body); err != nil {
		s.cfg.Logger.Error().Err(err).Str("email", email).Msg("cannot send the token mail")
		return nil, refuse(http.StatusBadGateway, "cannot send the token mail")
	}
	s.cfg.Logger.Info().Str("email", email).Msg("token mailed")
	return nil, nil
}

// allowEnrolment takes one enrolment (requestCertificate or requestToken)
// from the per-source and global budgets.
func (s *Server) allowEnrolment(source netip.Addr) error {
	now := s.cfg.Now()
	if ok, wait := s.enrolLimit.allow(source, now); !ok {
		return errTooMany(wait, "too many enrolments from %s: retry in %s", source, wait.Round(time.Second))
	}
	if s.enrolGlobal != nil {
		if ok, wait := take(s.enrolGlobal, now); !ok {
			return errTooMany(wait, "too many enrolments on this registry: retry in %s", wait.Round(time.Second))
		}
	}
	return nil
}

// community picks the community of a new node: from the location it sent
// ("CC,CONT", either part may be empty), else from GeoIP, else "*".
func (s *Server) community(c *call) (string, error) {
	country, continent := "", ""
	if location := c.arg("location"); location != "" {
		var ok bool
		country, continent, ok = strings.Cut(location, ",")
		if !ok || len(country) > 2 || len(continent) > 2 {
			return "", errBadRequest("location %q is not \"CC,CONT\" (e.g. FR,EU)", location)
		}
	} else if s.cfg.GeoIP != nil {
		if location, ok := s.cfg.GeoIP.Lookup(c.client); ok {
			country, continent = location.Country, location.Continent
		}
	}
	return s.cfg.Communities.Lookup(country, continent), nil
}

func (s *Server) requestCertificate(c *call) ([]byte, error) {
	csr, key, err := ca.ParseRequest([]byte(c.arg("req")))
	if err != nil {
		return nil, errBadRequest("%s", err.Error())
	}
	token := c.arg("token")
	if token != "" && s.cfg.PrefixLength == 0 {
		return nil, errForbidden("registration by token is disabled on this registry")
	}
	if token == "" && s.cfg.AnonymousPrefixLength == 0 {
		return nil, errForbidden("anonymous registration is disabled on this registry")
	}
	source := c.client
	if err := s.allowEnrolment(source); err != nil {
		return nil, err
	}
	community, err := s.community(c)
	if err != nil {
		return nil, err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if prefix, ok := s.keyPrefixes[string(x509.MarshalPKCS1PublicKey(key))]; ok {
		// One key, one prefix: the CSR's signature proves the requester
		// holds the key, so it gets the certificate it already has.
		s.cfg.Logger.Info().Str("prefix", prefix).Str("source", source.String()).Msg("certificate requested again for an enrolled key: the current one is returned")
		block, err := s.issuedBlock(prefix)
		return []byte(block.Cert), err
	}
	var certPEM []byte
	var subjectSerial int
	var becameRegistry bool
	err = s.cfg.Store.Update(func(tx *store.Tx) error {
		email, prefixLen := "", s.cfg.AnonymousPrefixLength
		if token != "" {
			row, found, err := tx.LookupToken(token)
			if err != nil {
				return err
			}
			if !found {
				return errUnknownToken
			}
			if _, err := tx.DeleteToken(token); err != nil {
				return err
			}
			email, prefixLen = row.Email, row.PrefixLen
		}
		prefix, err := alloc.Allocate(tx, s.hostBits, prefixLen, community)
		if errors.Is(err, alloc.ErrExhausted) {
			return refuse(http.StatusServiceUnavailable, "%s", err.Error())
		}
		if err != nil {
			return err
		}
		subjectSerial = s.freeSubjectSerial()
		subject, err := ca.NodeSubject(csr.RawSubject, prefix, subjectSerial)
		if err != nil {
			return errBadRequest("certificate request subject: %s", err.Error())
		}
		now := s.cfg.Now()
		if certPEM, err = s.sign(tx, subject, key, now, now.Add(s.cfg.CertDuration)); err != nil {
			return err
		}
		if err := tx.SetCertificate(prefix, email, string(certPEM)); err != nil {
			return err
		}
		if _, hasPrefix, err := tx.ConfigBytes(store.ConfigPrefix); err != nil || hasPrefix || !(s.isAuthorized(source) || source == c.local) {
			return err
		}
		// The first node enrolled from the registry host (an authorized
		// origin, or the registry's own address) is the registry's node.
		becameRegistry = true
		if err := tx.SetConfig(store.ConfigPrefix, prefix); err != nil {
			return err
		}
		return s.publish(tx, false)
	})
	if errors.Is(err, errUnknownToken) {
		s.cfg.Logger.Info().Msg("certificate requested with an unknown token")
		return nil, nil // re6st answers 204: the client reports an invalid or expired token
	}
	if err != nil {
		return nil, err
	}
	cert, err := ca.ParseCertificate(certPEM)
	if err != nil {
		return nil, err
	}
	prefix, err := ca.NodePrefix(cert)
	if err != nil {
		return nil, err
	}
	s.index(prefix, cert)
	s.enrolSourcesMu.Lock()
	s.enrolSources[prefix] = source
	s.enrolSourcesMu.Unlock()
	if becameRegistry {
		if err := s.reload(); err != nil {
			return nil, err
		}
	}
	s.cfg.Logger.Info().Int("subject_serial", subjectSerial).Str("prefix", prefix).Str("source", source.String()).Bool("anonymous", token == "").Msg("certificate issued")
	return certPEM, nil
}

var errUnknownToken = errors.New("unknown token")

// freeSubjectSerial is the smallest subject serialNumber not in use (it
// numbers the IPv4 subnets of the optional IPv4 payload).
func (s *Server) freeSubjectSerial() int {
	for i := 0; ; i++ {
		if !s.subjectSerials[i] {
			return i
		}
	}
}

// sign issues a certificate with the next serial number.
func (s *Server) sign(tx *store.Tx, subject []byte, key *rsa.PublicKey, notBefore, notAfter time.Time) ([]byte, error) {
	serial, _, err := tx.ConfigInt(store.ConfigSerial)
	if err != nil {
		return nil, err
	}
	serial++
	if err := tx.SetConfig(store.ConfigSerial, serial); err != nil {
		return nil, err
	}
	return s.cfg.Authority.Sign(ca.Issue{RawSubject: subject, PublicKey: key, Serial: uint64(serial), NotBefore: notBefore, NotAfter: notAfter})
}

func (s *Server) renewCertificate(c *call) ([]byte, error) {
	prefix := c.arg("cn")
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var certPEM []byte
	err := s.cfg.Store.Update(func(tx *store.Tx) error {
		block, found, err := tx.Block(prefix)
		if err != nil {
			return err
		}
		if !found || !block.Issued() {
			return errNotFound("no certificate for prefix %q", prefix)
		}
		cert, err := ca.ParseCertificate([]byte(block.Cert))
		if err != nil {
			return err
		}
		serial, err := ca.SerialUint64(cert)
		if err != nil {
			return err
		}
		revoked, err := tx.IsRevoked(serial)
		if err != nil {
			return err
		}
		now := s.cfg.Now()
		notAfter := cert.NotAfter
		switch {
		case revoked: // a new serial, the same expiry
		case cert.NotAfter.Add(-RenewPeriod).Before(now):
			notAfter = now.Add(s.cfg.CertDuration)
		default:
			certPEM = []byte(block.Cert)
			return nil
		}
		if certPEM, err = s.sign(tx, cert.RawSubject, cert.PublicKey.(*rsa.PublicKey), now, notAfter); err != nil {
			return err
		}
		return tx.ReplaceCertificate(prefix, string(certPEM))
	})
	return certPEM, err
}

// revoke revokes by serial (the prefix is kept: the owner can renew) or by
// CN "n/len" (the prefix is freed).
func (s *Server) revoke(c *call) ([]byte, error) {
	target := c.arg("cn_or_serial")
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var freed *x509.Certificate
	err := s.cfg.Store.Update(func(tx *store.Tx) error {
		cert, prefix, err := findCertificate(tx, target)
		if err != nil {
			return err
		}
		if prefix != "" {
			if err := tx.FreeBlock(prefix); err != nil {
				return err
			}
			if err := alloc.Merge(tx); err != nil {
				return err
			}
			freed = cert
		}
		if !cert.NotAfter.After(s.cfg.Now()) {
			return nil // expired: nobody can use it, no CRL entry needed
		}
		serial, err := ca.SerialUint64(cert)
		if err != nil {
			return err
		}
		if err := tx.Revoke(serial, cert.NotAfter.Unix()); err != nil {
			return err
		}
		return s.publish(tx, false)
	})
	if err != nil {
		return nil, err
	}
	if freed != nil {
		prefix, _ := ca.NodePrefix(freed)
		s.unindex(prefix, freed)
	}
	s.cfg.Logger.Info().Str("target", target).Msg("certificate revoked")
	return nil, s.reload()
}

// findCertificate finds a certificate by decimal serial (prefix returned
// empty) or by CN (prefix returned).
func findCertificate(tx *store.Tx, target string) (*x509.Certificate, string, error) {
	if serial, err := strconv.ParseUint(target, 10, 64); err == nil {
		blocks, err := tx.IssuedBlocks()
		if err != nil {
			return nil, "", err
		}
		for _, block := range blocks {
			cert, err := ca.ParseCertificate([]byte(block.Cert))
			if err == nil && cert.SerialNumber.IsUint64() && cert.SerialNumber.Uint64() == serial {
				return cert, "", nil
			}
		}
		return nil, "", errNotFound("no certificate with serial %d", serial)
	}
	prefix, err := wire.PrefixFromCommonName(target)
	if err != nil {
		return nil, "", errBadRequest("%q is neither a serial number nor a CN: %s", target, err.Error())
	}
	block, found, err := tx.Block(prefix)
	if err != nil {
		return nil, "", err
	}
	if !found || !block.Issued() {
		return nil, "", errNotFound("no certificate with CN %s", target)
	}
	cert, err := ca.ParseCertificate([]byte(block.Cert))
	return cert, prefix, err
}

func (s *Server) isToken(c *call) ([]byte, error) {
	var found bool
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		var err error
		_, found, err = tx.LookupToken(c.arg("token"))
		return err
	})
	if err != nil || !found {
		return nil, err
	}
	return []byte("1"), nil
}

func (s *Server) deleteToken(c *call) ([]byte, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return nil, s.cfg.Store.Update(func(tx *store.Tx) error {
		_, err := tx.DeleteToken(c.arg("token"))
		return err
	})
}

// addToken adds a token for email; without a token argument a random one
// is made and returned.
func (s *Server) addToken(c *call) ([]byte, error) {
	if s.cfg.PrefixLength == 0 {
		return nil, errForbidden("registration by token is disabled on this registry (prefix length 0)")
	}
	email := c.arg("email")
	if err := validEmail(email); err != nil {
		return nil, err
	}
	token := c.arg("token")
	if token == "" {
		token, err := s.insertNewToken(email)
		return []byte(token), err
	}
	if len(token) > 64 || strings.ContainsAny(token, " \t\r\n") {
		return nil, errBadRequest("token %q is too long or has blanks", token)
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err := s.cfg.Store.Update(func(tx *store.Tx) error {
		return tx.InsertToken(store.Token{Token: token, Email: email, PrefixLen: s.cfg.PrefixLength, Date: s.cfg.Now().Unix()})
	})
	if errors.Is(err, store.ErrTokenExists) {
		return nil, refuse(http.StatusConflict, "token %q already exists", token)
	}
	return nil, err
}

func (s *Server) blockByEmail(email string) (store.Block, bool, error) {
	var blocks []store.Block
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		var err error
		blocks, err = tx.BlocksByEmail(email)
		return err
	})
	if err != nil || len(blocks) == 0 {
		return store.Block{}, false, err
	}
	return blocks[0], true, nil
}

func (s *Server) getNodePrefix(c *call) ([]byte, error) {
	block, found, err := s.blockByEmail(c.arg("email"))
	if err != nil || !found {
		return nil, err
	}
	return []byte(wire.CommonName(block.Prefix)), nil
}

func (s *Server) getIPv6Address(c *call) ([]byte, error) {
	block, found, err := s.blockByEmail(c.arg("email"))
	if err != nil || !found {
		return nil, err
	}
	subnet, err := wire.Subnet(s.cfg.Authority.Network, block.Prefix)
	if err != nil {
		return nil, err
	}
	return []byte(subnet.Addr().String()), nil
}
