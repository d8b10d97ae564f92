package server

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/netip"
	"time"

	"github.com/re6st-bpf/re6st-bpf/registry/alloc"
	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/store"
)

func (s *Server) getNetworkConfig(c *call) ([]byte, error) {
	key, err := s.nodeKey(c.arg("cn"))
	if err != nil {
		return nil, err
	}
	return s.published.Load().document.Encode(key)
}

func (s *Server) getDh(*call) ([]byte, error) {
	if len(s.cfg.DHParams) == 0 {
		return nil, errNotFound("this registry has no DH parameters (--dh)")
	}
	return s.cfg.DHParams, nil
}

func (s *Server) getCountry(c *call) ([]byte, error) {
	if s.cfg.GeoIP == nil {
		return nil, errBadRequest("this registry has no GeoIP database")
	}
	addr, err := netip.ParseAddr(c.arg("address"))
	if err != nil {
		return nil, errBadRequest("%q is not an IP address", c.arg("address"))
	}
	location, ok := s.cfg.GeoIP.Lookup(addr)
	if !ok {
		return nil, nil
	}
	return []byte(location.Country), nil
}

// updateHMAC advances the Babel key rotation by one step and publishes a
// new version.
func (s *Server) updateHMAC(*call) ([]byte, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	key, err := newBabelKey()
	if err != nil {
		return nil, err
	}
	err = s.cfg.Store.Update(func(tx *store.Tx) error {
		slots, err := readSlots(tx)
		if err != nil {
			return err
		}
		next, phase1 := slots.Rotate(key)
		if err := writeSlots(tx, next); err != nil {
			return err
		}
		if phase1 {
			err = tx.SetConfig(store.ConfigValidUntil, s.cfg.Now().Add(KeyRotationPhase1).Unix())
		} else {
			err = tx.DeleteConfig(store.ConfigValidUntil)
		}
		if err != nil {
			return err
		}
		return s.publish(tx, true)
	})
	if err != nil {
		return nil, err
	}
	s.cfg.Logger.Info().Msg("Babel keys rotated")
	return nil, s.reload()
}

// Cleanup deletes the tokens older than the grace period, frees the
// prefixes of certificates expired for longer than the grace period, and
// drops CRL rows of expired certificates. It refuses to free the
// registry's own prefix (a wrong clock would otherwise wreck the network).
func (s *Server) Cleanup() error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	now := s.cfg.Now()
	limit := now.Add(-s.cfg.GracePeriod)
	freed := map[string]*x509.Certificate{}
	err := s.cfg.Store.Update(func(tx *store.Tx) error {
		tokens, err := tx.DeleteTokensBefore(limit.Unix())
		if err != nil {
			return err
		}
		if tokens > 0 {
			s.cfg.Logger.Info().Int64("tokens", tokens).Msg("expired tokens deleted")
		}
		registryPrefix, _, err := tx.ConfigBytes(store.ConfigPrefix)
		if err != nil {
			return err
		}
		blocks, err := tx.IssuedBlocks()
		if err != nil {
			return err
		}
		for _, block := range blocks {
			cert, err := ca.ParseCertificate([]byte(block.Cert))
			if err != nil || !cert.NotAfter.Before(limit) {
				continue
			}
			if block.Prefix == string(registryPrefix) {
				return fmt.Errorf("the registry node's certificate expired on %s, more than the grace period ago; refusing to free its prefix (wrong clock?)", cert.NotAfter.Format(time.RFC3339))
			}
			if err := tx.FreeBlock(block.Prefix); err != nil {
				return err
			}
			freed[block.Prefix] = cert
		}
		if err := alloc.Merge(tx); err != nil {
			return err
		}
		if _, err := tx.PurgeRevocationsBefore(now.Unix()); err != nil {
			return err
		}
		return s.publish(tx, false)
	})
	if err != nil {
		return err
	}
	for prefix, cert := range freed {
		s.unindex(prefix, cert)
		s.cfg.Logger.Info().Str("prefix", prefix).Msg("prefix of an expired certificate freed")
	}
	return s.reload()
}

// RunCleanup runs Cleanup every interval until ctx ends or it fails.
func (s *Server) RunCleanup(ctx context.Context, interval time.Duration) error {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if err := s.Cleanup(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}
