package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stopTimeout is how long a process has to exit after SIGTERM before it
// gets SIGKILL.
const stopTimeout = 10 * time.Second

// process is a daemon started in its own process group, its output
// appended to a log file. A pid file beside the log ("<pid> <executable>")
// lets Down find it after the program that started it is gone.
type process struct {
	cmd     *exec.Cmd
	pidFile string
	done    chan struct{} // closed when it has exited
}

// startProcess starts cmd with its output appended to logPath; exe is the
// executable the process ends up running (cmd may be a wrapper that execs
// it, like `ip netns exec`). Unless detach, the process is killed if the
// thread that started it dies.
// spawner is a goroutine locked to its OS thread for the life of the
// program: the parent-death signal fires when the *thread* that forked a
// child exits, and Go ends threads (those a goroutine left locked, after a
// network-namespace switch for instance), which would kill children at
// random. Children are forked from this thread only.
var spawner = make(chan func())

func init() {
	go func() {
		runtime.LockOSThread()
		for f := range spawner {
			f()
		}
	}()
}

func startFromSpawner(cmd *exec.Cmd) error {
	done := make(chan error)
	spawner <- func() { done <- cmd.Start() }
	return <-done
}

func startProcess(cmd *exec.Cmd, exe, logPath string, detach bool) (*process, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !detach {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := startFromSpawner(cmd); err != nil {
		return nil, fmt.Errorf("%s: %w", cmd.Path, err)
	}
	p := &process{cmd: cmd, pidFile: strings.TrimSuffix(logPath, ".log") + ".pid", done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	if err := os.WriteFile(p.pidFile, fmt.Appendf(nil, "%d %s\n", cmd.Process.Pid, exe), 0o644); err != nil {
		return nil, errors.Join(err, p.stop(syscall.SIGKILL))
	}
	return p, nil
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig to the process group, then SIGKILL after stopTimeout, and
// waits for the process to exit. Exiting because of sig is no error.
func (p *process) stop(sig syscall.Signal) error {
	defer os.Remove(p.pidFile)
	pgid := p.cmd.Process.Pid
	if !p.exited() {
		_ = syscall.Kill(-pgid, sig)
	}
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not exit within %s of %s: killed", filepath.Base(p.cmd.Path), stopTimeout, sig)
	}
	// Whatever else is left in the group goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return nil
}

// killPidFile stops the process group a pid file names, if that process's
// command line still holds the executable recorded (a reused pid is left
// alone).
func killPidFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	pidText, exe, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 1 {
		return fmt.Errorf("%s: bad pid file", path)
	}
	defer os.Remove(path)
	running := func() bool {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return err == nil && slices.Contains(strings.Split(string(cmdline), "\x00"), exe)
	}
	if !running() {
		return nil
	}
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	for deadline := time.Now().Add(stopTimeout); running() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
