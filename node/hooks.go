package node

import (
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// processes are the --daemon commands, killed at exit (TERM, then KILL
// 5 s later).
type processes struct {
	mu    sync.Mutex
	procs []*exec.Cmd
}

// hookEnv is re6st's environment for --up and --daemon commands.
func (n *Node) hookEnv() []string {
	return append(os.Environ(),
		"re6stnet_ip="+n.id.addr.String(),
		"re6stnet_iface="+n.dp.State.Overlay,
		"re6stnet_subnet="+n.id.prefix.String(),
		"re6stnet_network="+n.id.network.String())
}

// runHooks runs the --up commands, then starts the --daemon ones.
func (n *Node) runHooks() {
	for _, c := range n.cfg.Up {
		cmd := exec.Command("/bin/sh", "-c", c)
		cmd.Env = n.hookEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			n.log.Warn().Err(err).Str("command", c).Bytes("output", out).Msg("--up command failed")
		}
	}
	n.daemons = &processes{}
	for _, c := range n.cfg.Daemons {
		cmd := exec.Command("/bin/sh", "-c", c)
		cmd.Env = n.hookEnv()
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			n.log.Warn().Err(err).Str("command", c).Msg("--daemon command failed")
			continue
		}
		n.daemons.procs = append(n.daemons.procs, cmd)
	}
}

func (p *processes) stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var wg sync.WaitGroup
	for _, cmd := range p.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}()
	}
	wg.Wait()
}
