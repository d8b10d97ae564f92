package main

import (
	"encoding/json"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// class set/list/del and shape take effect on the loaded data plane
// without a daemon; bad input fails with a one-line error.
func TestClassCommands(t *testing.T) {
	ns := underlayNS(t, "clc", "10.43.0.1/24")
	bin := buildCLI(t)
	run := func(args ...string) (string, string, error) {
		return runCLI(exec.Command(bin, append([]string{"-n", ns.Name}, args...)...))
	}
	ok := func(args ...string) string {
		t.Helper()
		stdout, stderr, err := run(args...)
		require.NoError(t, err, stderr)
		return stdout
	}
	fails := func(want string, args ...string) {
		t.Helper()
		_, stderr, err := run(args...)
		requireOneLineError(t, stderr, err, want)
	}

	ok("up", "--underlay", "u0", "--address", "2001:db8:1::1/32")
	t.Cleanup(func() { run("down") })
	ok("class", "set", "1", "--queues", "0-1", "--dscp", "46", "--priority", "7", "--rate", "1M")
	ok("class", "set", "2", "--queues", "2-7", "--dscp", "10", "--priority", "1:20", "--flows", "4")
	fails("want 1-255", "class", "set", "0", "--queues", "0-1")
	fails("want FIRST-LAST", "class", "set", "3", "--queues", "5-2")
	fails("0..63", "class", "set", "3", "--dscp", "64")
	fails("--rate", "class", "set", "3", "--rate", "fast")
	fails("not found", "class", "del", "9")

	var classes []struct {
		ID         uint8  `json:"id"`
		QueueFirst uint16 `json:"queue_first"`
		QueueCount uint16 `json:"queue_count"`
		DSCP       uint8  `json:"dscp"`
		Priority   uint32 `json:"priority"`
		Rate       uint64 `json:"rate"`
		Flows      uint16 `json:"flows"`
		Shaped     bool   `json:"shaped"`
	}
	list := func() {
		t.Helper()
		classes = nil // fields left out (omitempty) must read as zero
		require.NoError(t, json.Unmarshal([]byte(ok("class", "list", "--json")), &classes))
	}
	list()
	require.Len(t, classes, 2)
	require.Equal(t, uint16(0), classes[0].QueueFirst)
	require.Equal(t, uint16(2), classes[0].QueueCount)
	require.Equal(t, uint64(1_000_000), classes[0].Rate)
	require.Equal(t, uint32(0x10020), classes[1].Priority)
	require.Equal(t, uint16(6), classes[1].QueueCount)
	require.Contains(t, ok("class", "list"), "0-1")

	require.Contains(t, ok("class", "list"), "shaper on u0: none")
	fails("u0 (driver veth): no ntuple filters", "class", "pin-rx", "u0")
	fails("u0 (driver veth): no ntuple filters", "class", "unpin-rx", "u0", "7")
	fails("want a number", "class", "unpin-rx", "u0", "x")
	// Class 1 has a rate: HTB, whatever the kernel has; list and status
	// say so.
	require.Contains(t, ok("class", "shape", "u0", "--rate", "100M"), "u0: HTB at 100000000 bit/s (mqprio: ")
	require.Contains(t, ok("class", "list"), "shaper on u0: htb (qdiscs: mqprio ")
	var st struct {
		Shaping struct {
			Qdiscs []struct {
				Name      string `json:"name"`
				Available bool   `json:"available"`
			} `json:"qdiscs"`
			Roots map[string]string `json:"roots"`
		} `json:"shaping"`
	}
	require.NoError(t, json.Unmarshal([]byte(ok("status", "--json")), &st))
	require.Equal(t, "htb", st.Shaping.Roots["u0"])
	require.Len(t, st.Shaping.Qdiscs, 5)
	list()
	require.True(t, classes[0].Shaped && classes[1].Shaped)
	out, err := ns.Run("tc", "class", "show", "dev", "u0")
	require.NoError(t, err)
	require.Contains(t, out, "class htb 1:204")
	require.Contains(t, ok("status", "--json"), `"shaper": {`)
	fails("more than the link", "class", "shape", "u0", "--rate", "500k")
	ok("class", "unshape", "u0")
	list()
	require.False(t, classes[0].Shaped)

	require.Contains(t, ok("status", "--json"), `"classes": [`)
	ok("class", "del", "2")
	list()
	require.Len(t, classes, 1)
}
