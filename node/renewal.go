package node

import (
	"context"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/server"
)

// renewAt is when a certificate is renewed: when less than the registry's
// renewal period (re6st's RENEW_PERIOD, 30 days) is left, or half its
// life for a certificate shorter than twice that. The registry issues a
// new certificate from the same point, so the node never asks in vain.
func renewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotAfter.Add(-min(server.RenewPeriod, life/2))
}

// renewRetry bounds the delay between attempts while the registry does
// not answer: the first retry comes after renewRetryMin, doubling.
const (
	renewRetryMin = 5 * time.Second
	renewRetryMax = 10 * time.Minute
)

// renewal is the certificate in force and what the last attempts to renew
// it said (status shows them).
type renewal struct {
	mu          sync.Mutex
	cert        *x509.Certificate
	lastAttempt time.Time
	lastRenewed time.Time
	lastErr     string
}

func (r *renewal) current() *x509.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert
}

func (r *renewal) status() CertStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return CertStatus{Serial: r.cert.SerialNumber.String(), Expires: r.cert.NotAfter,
		Days: int(time.Until(r.cert.NotAfter).Hours() / 24), RenewAt: renewAt(r.cert),
		LastAttempt: r.lastAttempt, LastRenewed: r.lastRenewed, LastError: r.lastErr}
}

// followRenewal renews the certificate while the node runs: at renewAt,
// then, while the registry does not answer, with a back-off from
// renewRetryMin to renewRetryMax, until ctx ends. Tunnels stay: the node
// protocol carries the new certificate from its next handshakes.
func (n *Node) followRenewal(ctx context.Context) error {
	retry := time.Duration(0)
	for {
		wait := time.Until(renewAt(n.cert.current()))
		if retry > 0 {
			wait = retry
		}
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		renewed, err := n.renew(ctx)
		switch {
		case err != nil:
			retry = min(max(2*retry, renewRetryMin), renewRetryMax)
			n.log.Warn().Err(err).Dur("retry_in", retry).Time("expires", n.cert.current().NotAfter).Msg("certificate renewal failed")
		case !renewed:
			retry = renewRetryMax // the registry gave the same one back: not due there yet
		default:
			retry = 0
		}
	}
}

// renew asks the registry for a new certificate, checks it, writes it in
// place and puts it in force. renewed is false when the registry gave the
// current one back.
func (n *Node) renew(ctx context.Context) (renewed bool, err error) {
	now := time.Now()
	defer func() {
		n.cert.mu.Lock()
		n.cert.lastAttempt = now
		n.cert.lastErr = ""
		if err != nil {
			n.cert.lastErr = err.Error()
		} else if renewed {
			n.cert.lastRenewed = now
		}
		n.cert.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	pem, err := n.session.RenewCertificate(ctx)
	n.registry.note(err)
	if err != nil {
		return false, fmt.Errorf("renew certificate: %w", err)
	}
	cert, err := ca.ParseCertificate(pem)
	if err != nil {
		return false, fmt.Errorf("renewed certificate: %w", err)
	}
	if cert.Equal(n.cert.current()) {
		return false, nil
	}
	next := *n.id
	next.Cert = cert
	if err := next.check(now); err != nil {
		return false, fmt.Errorf("renewed certificate: %w", err)
	}
	if next.prefix != n.id.prefix {
		return false, fmt.Errorf("renewed certificate is for %s, not %s", next.prefix, n.id.prefix)
	}
	if err := writeFileAtomic(n.cfg.Cert, pem, 0o644); err != nil {
		return false, err
	}
	if n.proto != nil {
		if err := n.proto.SetCertificate(cert); err != nil {
			return false, err
		}
	}
	serial, _ := ca.SerialUint64(cert)
	n.params.serial.Store(serial)
	n.cert.mu.Lock()
	n.cert.cert = cert
	n.cert.mu.Unlock()
	if n.backend != nil {
		n.backend.ovpn.certificateRenewed()
	}
	n.log.Info().Str("serial", cert.SerialNumber.String()).Time("expires", cert.NotAfter).Time("next_renewal", renewAt(cert)).Msg("certificate renewed")
	return true, nil
}

// renewExpired renews a certificate that expired while the node was down
// (re6st restarts to do so): peers refuse an expired certificate, so the
// node waits for the registry, retrying from 1 to 60 s, until ctx ends.
func (n *Node) renewExpired(ctx context.Context) error {
	n.log.Warn().Time("expired", n.id.Cert.NotAfter).Msg("certificate expired: renewing it before anything else")
	for delay := time.Second; ; delay = min(2*delay, time.Minute) {
		renewed, err := n.renew(ctx)
		if err == nil && renewed {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("the registry gave the expired certificate back")
		}
		n.log.Warn().Err(err).Dur("retry_in", delay).Msg("cannot renew the expired certificate")
		select {
		case <-ctx.Done():
			return fmt.Errorf("certificate expired on %s and not renewed: %w", n.id.Cert.NotAfter.Format(time.DateTime), err)
		case <-time.After(delay):
		}
	}
}
