package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/secfile"
	"github.com/re6st-bpf/re6st-bpf/registry/client"
)

// ErrRevoked ends a node whose certificate is revoked.
var ErrRevoked = errors.New("certificate revoked: enrol again with re6st-conf")

// RevokedFile, in the state directory, records a revocation: the node
// refuses to start again with that certificate, and `re6stnet status`
// shows it once the node has stopped.
const RevokedFile = "revoked.json"

// Revocation is what RevokedFile holds.
type Revocation struct {
	Serial string    `json:"serial"`
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// ReadRevocation reads the revocation recorded in stateDir, if any.
func ReadRevocation(stateDir string) (*Revocation, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, RevokedFile))
	if err != nil {
		return nil, err
	}
	var r Revocation
	return &r, json.Unmarshal(data, &r)
}

// refusalsToRevoke: the registry must refuse our certificate this many
// times in a row (re6st checks twice) before the node concludes it is
// revoked.
const refusalsToRevoke = 2

// registryRefuses reports whether err is the registry saying it does not
// know our certificate: a revoked certificate's prefix is freed and its
// session dropped, so the node cannot fetch new parameters any more and
// learns of the revocation only from its peers (their newer version,
// their refusals) and from this refusal.
func registryRefuses(err error) bool {
	status := client.StatusOf(err)
	return status == http.StatusNotFound || status == http.StatusForbidden
}

// revoked logs the revocation, records it and returns the error that
// stops the node (it retracts its routes and stops cleanly).
func (n *Node) revoked(reason string) error {
	serial := n.cert.current().SerialNumber.String()
	n.log.Error().Str("serial", serial).Str("reason", reason).Msg("our certificate is revoked: stopping (enrol again with re6st-conf)")
	data, _ := json.Marshal(Revocation{Serial: serial, Reason: reason, Time: time.Now().UTC()})
	if err := writeFileAtomic(filepath.Join(n.cfg.StateDir, RevokedFile), data, secfile.FileMode); err != nil {
		n.log.Warn().Err(err).Msg("cannot record the revocation")
	}
	return fmt.Errorf("%w (%s)", ErrRevoked, reason)
}

// checkRevocationRecord refuses to start with a certificate a previous run
// found revoked.
func (n *Node) checkRevocationRecord() error {
	r, err := ReadRevocation(n.cfg.StateDir)
	if err != nil || r.Serial != n.id.Cert.SerialNumber.String() {
		return nil
	}
	return fmt.Errorf("%w (found on %s: %s; %s records it)", ErrRevoked, r.Time.Format(time.DateTime), r.Reason,
		filepath.Join(n.cfg.StateDir, RevokedFile))
}
