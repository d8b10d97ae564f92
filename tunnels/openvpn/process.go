package openvpn

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Binary is the openvpn program run.
const Binary = "openvpn"

// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// Process is one openvpn child. Its output goes to the logger, line by
// line; the goroutine that reads it also waits for the child, and Stop
// waits for that goroutine.
type Process struct {
	cmd  *exec.Cmd
	log  zerolog.Logger
	done chan struct{}

	mu     sync.Mutex
	err    error // how the child ended, once done
	output []string
	cipher string // the data channel's, as openvpn last said it
}

// cipherSaid is what openvpn says of the data channel's cipher once it is
// negotiated (verb 3): "Data Channel: cipher 'AES-256-GCM', …", and
// "[null-cipher]" for none.
const cipherSaid = "Data Channel: cipher '"

// NoCipher is Cipher's answer for a data channel without a cipher.
const NoCipher = "[null-cipher]"

// outputKept is how many of the child's last lines Output returns.
const outputKept = 40

// Start runs cmd (openvpn with its arguments, made by the caller where it
// must run: exec.Command, or a namespace's command). The child gets
// SIGTERM if the node dies without stopping it (Pdeathsig): it is started
// from a thread locked for the child's whole life, since the kernel sends
// that signal when the thread that forked it ends.
func Start(cmd *exec.Cmd, log zerolog.Logger) (*Process, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, w
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	p := &Process{cmd: cmd, log: log, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		w.Close()
		started <- err
		if err != nil {
			r.Close()
			close(p.done)
			return
		}
		p.run(r)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("openvpn: %w", err)
	}
	return p, nil
}

// Command is openvpn with args, run in place.
func Command(args []string) *exec.Cmd { return exec.Command(Binary, args...) }

// run logs the child's output and waits for it.
func (p *Process) run(r *os.File) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		p.log.Debug().Msg(line)
		p.mu.Lock()
		if _, rest, ok := strings.Cut(line, cipherSaid); ok {
			p.cipher, _, _ = strings.Cut(rest, "'")
		}
		p.output = append(p.output, line)
		if len(p.output) > outputKept {
			p.output = p.output[1:]
		}
		p.mu.Unlock()
	}
	r.Close()
	err := p.cmd.Wait()
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

// Done is closed when the child has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the child ended (nil while it runs or if it exited 0).
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Cipher is the data channel's cipher (NoCipher for none), as openvpn last
// said it; "" before a data channel is up (a client not yet connected, or
// a server: one per client).
func (p *Process) Cipher() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cipher
}

// Output is the child's last lines.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.output, "\n")
}

// Stop ends the child (SIGTERM, SIGKILL after a grace period) and waits
// for it.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// CreateTAP makes a persistent TAP device for openvpn to open (--dev-type
// tap --dev name), with the given MTU, no address of the kernel's making
// (addr_gen_mode 1), addr as its link-local address (no DAD: Babel uses it
// at once), and up.
func CreateTAP(name string, mtu int, addr net.IP) (netlink.Link, error) {
	tap := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu}, Mode: netlink.TUNTAP_MODE_TAP,
		Flags: netlink.TUNTAP_NO_PI}
	if err := netlink.LinkAdd(tap); err != nil {
		return nil, fmt.Errorf("tap %s: %w", name, err)
	}
	l, err := setUpTAP(name, addr)
	if err != nil {
		return nil, errors.Join(err, DeleteTAP(name))
	}
	return l, nil
}

func setUpTAP(name string, addr net.IP) (netlink.Link, error) {
	if err := os.WriteFile(filepath.Join("/proc/sys/net/ipv6/conf", name, "addr_gen_mode"), []byte("1"), 0o644); err != nil {
		return nil, fmt.Errorf("tap %s: %w", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, err
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: addr, Mask: net.CIDRMask(64, 128)}, Flags: unix.IFA_F_NODAD}
	if err := netlink.AddrAdd(l, a); err != nil {
		return nil, fmt.Errorf("tap %s: link-local address: %w", name, err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("tap %s: up: %w", name, err)
	}
	return l, nil
}

// DeleteTAP removes a device CreateTAP made; a missing one is not an
// error.
func DeleteTAP(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	return netlink.LinkDel(l)
}
