package node

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// renewAt: 30 days before expiry (re6st's rule, the registry's), or at
// half the life of a certificate shorter than 60 days.
func TestRenewAt(t *testing.T) {
	issued := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	year := &x509.Certificate{NotBefore: issued, NotAfter: issued.Add(365 * 24 * time.Hour)}
	assert.Equal(t, issued.Add(335*24*time.Hour), renewAt(year))
	short := &x509.Certificate{NotBefore: issued, NotAfter: issued.Add(3 * time.Minute)}
	assert.Equal(t, issued.Add(90*time.Second), renewAt(short))
}
