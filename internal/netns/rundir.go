package netns

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// runDir is where named namespaces are bind-mounted, as iproute2 does.
const runDir = "/run/netns"

// iproute2's `ip netns add` makes runDir a mount point of its own, shared,
// the first time it runs, by bind-mounting runDir onto itself
// recursively. When namespaces already exist (made by this package, which
// does not need that mount), the recursive bind copies their mounts and
// hides the originals under the new mount: from then on deleting such a
// namespace unmounts the copy, and removing its file fails with EBUSY
// forever, since its dentry is still a mount point underneath. So before
// the first namespace, runDir is made that shared mount point here, and a
// later `ip netns add` finds it ready.
var runDirOnce = sync.OnceValue(prepareRunDir)

func prepareRunDir() error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", runDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) { // not a mount point yet
		if err := unix.Mount(runDir, runDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("netns: bind-mounting %s onto itself: %w", runDir, err)
		}
		err = unix.Mount("", runDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("netns: making %s a shared mount: %w", runDir, err)
	}
	return nil
}
