package bird

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

// Daemon is a running bird.
type Daemon struct {
	Dir    string // configuration, control socket and log
	ns     *netns.NS
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
	output bytes.Buffer // bird's stderr (written only by exec's copier until exited)
}

// Start writes conf into dir/bird.conf and runs bird in ns until Stop. It
// returns once bird answers on its control socket.
func Start(ns *netns.NS, dir, conf string) (*Daemon, error) {
	if _, err := exec.LookPath("bird"); err != nil {
		return nil, errors.New("bird not found: install Debian's bird2")
	}
	d := &Daemon{Dir: dir, ns: ns, exited: make(chan struct{})}
	if err := os.WriteFile(d.path("bird.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	d.cmd = ns.Command(context.Background(), "bird", "-f", "-c", d.path("bird.conf"), "-s", d.socket(), "-P", d.path("bird.pid"))
	d.cmd.Stdout, d.cmd.Stderr = &d.output, &d.output
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bird: %w", err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := d.Show("show", "status"); err == nil {
			return d, nil
		} else if time.Now().After(deadline) {
			d.Stop()
			return nil, fmt.Errorf("bird did not come up: %w (%s)", err, d.Output())
		}
		select {
		case <-d.exited:
			return nil, fmt.Errorf("bird exited: %v: %s", d.err, d.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (d *Daemon) path(name string) string { return filepath.Join(d.Dir, name) }
func (d *Daemon) socket() string          { return d.path("bird.ctl") }

// Show runs `birdc -s <socket> <args>` and returns its output.
func (d *Daemon) Show(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", d.socket()}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Output is what bird printed, once it exited (empty before).
func (d *Daemon) Output() string {
	select {
	case <-d.exited:
		return d.output.String()
	default:
		return ""
	}
}

// Stop terminates bird (SIGTERM, then SIGKILL after 5 s) and waits.
func (d *Daemon) Stop() {
	if d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}
