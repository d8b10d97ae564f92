package cluster

import (
	"os"
	"os/exec"
	"slices"
	"strings"
)

// SetRegistryArgs replaces the extra re6st-registry flags of the next
// StartRegistry (new network parameters: the registry publishes a new
// version when they change).
func (c *Cluster) SetRegistryArgs(args ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opts.RegistryArgs = slices.Clone(args)
}

// UpdateHMAC advances the network's Babel key rotation by one step
// (re6st-registry update-hmac).
func (c *Cluster) UpdateHMAC() error {
	_, err := c.admin("update-hmac")
	return err
}

// NodeRunning reports whether a node's re6stnet is running.
func (c *Cluster) NodeRunning(name string) bool {
	n, err := c.node(name)
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return n.proc != nil && !n.proc.exited()
}

// NodeLogContains reports whether a node's log holds text.
func (c *Cluster) NodeLogContains(name, text string) bool {
	n, err := c.node(name)
	if err != nil {
		return false
	}
	data, err := os.ReadFile(n.Log())
	return err == nil && strings.Contains(string(data), text)
}

// StatusText returns what `re6stnet status` prints for a node, running or
// not (a stopped node's recorded revocation), and its error.
func (c *Cluster) StatusText(name string) (string, error) {
	n, err := c.node(name)
	if err != nil {
		return "", err
	}
	out, err := exec.Command(c.bin("re6stnet"), "status", "-r", n.RunDir(), "-s", n.StateDir()).CombinedOutput()
	return string(out), err
}
