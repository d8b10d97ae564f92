package node

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/re6st-bpf/re6st-bpf/internal/secfile"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
)

// babelStateFile holds, between a clean stop and the next start, what the
// stopped Babel router handed over (babel.Handover): with it, the
// restarted node's neighbours keep their links, and so their routes
// through it, while its data plane forwards on, and the new router rejects
// the routes that would loop back through it (docs/node.md, "Restarts").
const babelStateFile = "babel-state.json"

// loadBabelState reads the hand-over and removes the file at once, so that
// a run that crashes leaves none: a hand-over must never be used twice.
func (n *Node) loadBabelState() *babel.Handover {
	path := filepath.Join(n.cfg.StateDir, babelStateFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = os.Remove(path)
	}
	var h babel.Handover
	if err == nil {
		err = json.Unmarshal(data, &h)
	}
	if err != nil {
		n.log.Warn().Err(err).Msg("babel hand-over unusable: starting afresh")
		return nil
	}
	return &h
}

// saveBabelState writes the router's hand-over; called on a stop, right
// before the router closes.
func (n *Node) saveBabelState() {
	data, err := json.Marshal(n.router.Snapshot())
	if err == nil {
		err = writeFileAtomic(filepath.Join(n.cfg.StateDir, babelStateFile), data, secfile.FileMode)
	}
	if err != nil {
		n.log.Warn().Err(err).Msg("babel hand-over not saved: neighbours will see a new router")
	}
}
