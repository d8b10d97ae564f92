package netns

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
)

// NS is one named network namespace.
type NS struct {
	Name   string
	handle vnetns.NsHandle
}

// UniqueName returns prefix followed by a short random suffix, so that
// parallel test runs do not collide.
func UniqueName(prefix string) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// New creates the named namespace name, brings its loopback up and returns it.
// The calling thread's namespace is left untouched.
func New(name string) (*NS, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("netns %s: creating network namespaces needs root", name)
	}
	if err := runDirOnce(); err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := vnetns.Get()
	if err != nil {
		return nil, fmt.Errorf("netns: current namespace: %w", err)
	}
	defer orig.Close()
	h, err := vnetns.NewNamed(name) // switches this thread into it
	if serr := vnetns.Set(orig); serr != nil {
		panic(fmt.Sprintf("netns: cannot return to the original namespace: %v", serr))
	}
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", name, err)
	}
	ns := &NS{Name: name, handle: h}
	if err := ns.Do(func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	}); err != nil {
		ns.Close()
		return nil, err
	}
	return ns, nil
}

// Close deletes the namespace. Processes still running in it keep it alive
// until they exit; veth links in it disappear with it.
func (ns *NS) Close() error {
	if ns == nil || !ns.handle.IsOpen() {
		return nil
	}
	ns.handle.Close()
	return vnetns.DeleteNamed(ns.Name)
}

// Do runs fn on an OS thread that has entered the namespace. The thread is
// returned to its original namespace afterwards.
func (ns *NS) Do(fn func() error) error {
	return Do(ns.handle, fn)
}

// ErrEnter marks a failure to enter the namespace (as opposed to an error
// of fn). With EINVAL it means the handle is not a network namespace: its
// name outlived it (a bind mount lazily detached).
var ErrEnter = errors.New("netns: enter")

// Do runs fn on an OS thread switched into the namespace h.
func Do(h vnetns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// A dedicated goroutine: if switching back fails, the thread stays
		// locked and is destroyed with the goroutine instead of leaking a
		// thread in the wrong namespace into the scheduler.
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := vnetns.Set(h); err != nil {
			errc <- fmt.Errorf("%w: %w", ErrEnter, err)
			return
		}
		err = fn()
		if serr := vnetns.Set(orig); serr != nil {
			errc <- err
			return // thread stays locked; it dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// Command returns a command that runs argv inside the namespace.
func (ns *NS) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name}, argv...)...)
}

// Run runs argv inside the namespace and returns its combined output; a
// non-zero exit is an error that carries the output.
func (ns *NS) Run(argv ...string) (string, error) {
	var out bytes.Buffer
	cmd := ns.Command(context.Background(), argv...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s: %s: %w: %s", ns.Name, strings.Join(argv, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// Sysctl writes value to /proc/sys/<key> inside the namespace (key uses dots).
func (ns *NS) Sysctl(key, value string) error {
	_, err := ns.Run("sysctl", "-qw", key+"="+value)
	return err
}
