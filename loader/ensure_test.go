package loader_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// programIDs returns the id of the program at each attachment of instance,
// by interface, and checks that every one is attached.
func programIDs(t *testing.T, instance string) map[string]uint32 {
	t.Helper()
	h, err := loader.Inspect(instance)
	require.NoError(t, err)
	require.True(t, h.OK(), h.Missing)
	ids := map[string]uint32{}
	for _, a := range h.State.Attachments {
		require.NotZero(t, a.ProgramID, a.Interface)
		ids[a.Interface] = a.ProgramID
	}
	return ids
}

// requireReplaced checks that every attachment runs another program than
// in before.
func requireReplaced(t *testing.T, instance string, before map[string]uint32) map[string]uint32 {
	t.Helper()
	after := programIDs(t, instance)
	require.Len(t, after, len(before))
	for ifname, id := range before {
		require.NotEqual(t, id, after[ifname], "program on %s not replaced", ifname)
	}
	return after
}

// staleState makes the instance's state claim another BPF object, as an
// upgraded binary finds it.
func staleState(t *testing.T, instance string) {
	d, err := loader.Open(instance)
	require.NoError(t, err)
	d.Close()
	d.State.ObjectHash = "an older object"
	require.NoError(t, loader.WriteState(&d.State))
}

// Ensure brings an instance up, reopens it as it is, replaces the programs
// of one from another object or with other options while keeping its maps,
// and refuses what cannot change in place or maps it cannot keep.
func TestEnsure(t *testing.T) {
	for _, mode := range attachModes {
		t.Run(string(mode), func(t *testing.T) {
			ns, opts := underlayNS(t, mode)
			d, reused, err := loader.Ensure(opts)
			require.NoError(t, err)
			require.False(t, reused)
			tun := loader.Tunnel{ID: 1, Type: loader.FOU, Port: loader.DefaultFOUPort, MTU: 1400,
				Local: netip.MustParseAddr("10.43.0.1"), Remote: netip.MustParseAddr("10.43.0.2")}
			require.NoError(t, ns.Do(func() error { return loader.ResolveUnderlay(&tun) }))
			require.NoError(t, d.AddTunnel(tun))
			route := netip.MustParsePrefix("2001:db8:2::/48")
			require.NoError(t, d.AddRoute(route, netip.Prefix{}, loader.Nexthop{Tunnel: 1}))
			d.Close()
			ids := programIDs(t, opts.Instance)

			d, reused, err = loader.Ensure(opts)
			require.NoError(t, err)
			require.True(t, reused)
			d.Close()
			require.Equal(t, ids, programIDs(t, opts.Instance), "a matching instance had its programs replaced")

			staleState(t, opts.Instance)
			d, reused, err = loader.Ensure(opts)
			require.NoError(t, err)
			require.True(t, reused)
			ids = requireReplaced(t, opts.Instance, ids)
			routes, err := d.Routes()
			require.NoError(t, err)
			require.Len(t, routes, 1, "routes lost with the programs")
			require.Equal(t, route, routes[0].Dst)
			tunnels, err := d.Tunnels()
			require.NoError(t, err)
			require.Len(t, tunnels, 1, "tunnels lost with the programs")
			d.Close()

			opts.ICMPPPS = 7
			d, reused, err = loader.Ensure(opts)
			require.NoError(t, err)
			require.True(t, reused)
			d.Close()
			requireReplaced(t, opts.Instance, ids)
			d, reused, err = loader.Ensure(opts)
			require.NoError(t, err)
			require.True(t, reused)
			d.Close()

			if mode == loader.AttachTCX {
				// A state written before the hashes and the attachment
				// modes: its programs are replaced too.
				ids = programIDs(t, opts.Instance)
				b, err := os.ReadFile(loader.StatePath(opts.Instance))
				require.NoError(t, err)
				var old map[string]any
				require.NoError(t, json.Unmarshal(b, &old))
				for _, k := range []string{"attach", "attach_why", "object_hash", "options_hash"} {
					delete(old, k)
				}
				b, err = json.Marshal(old)
				require.NoError(t, err)
				require.NoError(t, os.WriteFile(loader.StatePath(opts.Instance), b, 0o644))
				d, reused, err = loader.Ensure(opts)
				require.NoError(t, err)
				require.True(t, reused)
				d.Close()
				requireReplaced(t, opts.Instance, ids)
			}

			// An instance brought up by an object without the layer-2
			// device tunnels' maps: Open makes them, Ensure replaces the
			// programs and keeps the tunnels (struct tunnel's layout is
			// the same).
			for _, name := range []string{"device_nexthops", "device_neighbours", "device_macs"} {
				require.NoError(t, os.Remove(loader.PinDir(opts.Instance)+"/"+name))
			}
			d, err = loader.Open(opts.Instance)
			require.NoError(t, err)
			d.Close()
			staleState(t, opts.Instance)
			ids = programIDs(t, opts.Instance)
			d, reused, err = loader.Ensure(opts)
			require.NoError(t, err)
			require.True(t, reused)
			tunnels, err = d.Tunnels()
			require.NoError(t, err)
			require.Len(t, tunnels, 1, "tunnels lost with the programs")
			d.Close()
			requireReplaced(t, opts.Instance, ids)

			other := opts
			other.Address = netip.MustParsePrefix("2001:db8:9::1/32")
			_, _, err = loader.Ensure(other)
			require.ErrorContains(t, err, "run `re6st-bpf --instance "+opts.Instance+" down` first")

			// A pinned map the new object cannot use (another layout).
			pin := loader.PinDir(opts.Instance) + "/limiters"
			require.NoError(t, os.Remove(pin))
			m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
			require.NoError(t, err)
			require.NoError(t, m.Pin(pin))
			m.Close()
			staleState(t, opts.Instance)
			_, _, err = loader.Ensure(opts)
			require.ErrorContains(t, err, "another version of the data plane")
			require.ErrorContains(t, err, "re6st-bpf --instance "+opts.Instance+" down")

			_, err = loader.Remove(opts.Instance)
			require.NoError(t, err)
			requireNothingLeft(t, ns, opts.Instance)
		})
	}
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// A ping flood through the transit node B loses nothing while B's
// programs are replaced again and again, in every attachment.
func TestReplaceProgramsUnderPingFlood(t *testing.T) {
	for _, hm := range []hookMode{{loader.HookTC, loader.AttachTCX}, {loader.HookTC, loader.AttachLegacy}, {loader.HookXDP, loader.AttachTCX}} {
		t.Run(string(hm.hook)+"/"+string(hm.attach), func(t *testing.T) {
			c := chain.Build(t, chain.Options{Nodes: 3, Overlay: true, Encap: loader.FOU, Hook: hm.hook, Attach: hm.attach})
			a, b, cc := c.Nodes[0], c.Nodes[1], c.Nodes[2]
			warm, err := a.NS.Run("ping", "-c", "3", "-i", "0.2", "-W", "2", cc.Overlay.String())
			require.NoError(t, err, warm)
			opts := loader.Options{Instance: b.NS.Name, Netns: b.NS.Name, Hook: hm.hook, Attach: hm.attach,
				Underlays: b.Datapath.State.Underlays(), Address: b.Datapath.State.Address}
			ids := programIDs(t, b.NS.Name)
			transit := reason(t, b.Datapath, "transit")

			// Floods back to back, the first started before the first
			// replacement, until every replacement is done.
			var floods, sent, received int
			var out bytes.Buffer
			flood := func() *exec.Cmd {
				out.Reset()
				cmd := a.NS.Command(context.Background(), "ping", "-f", "-c", "5000", "-W", "1", cc.Overlay.String())
				cmd.Stdout, cmd.Stderr = &out, &out
				require.NoError(t, cmd.Start())
				return cmd
			}
			cmd := flood()
			const replacements = 5
			done := make(chan error, 1)
			go func() {
				for i := range replacements {
					opts.ICMPPPS = 101 + uint32(i%2) // other options: new programs
					d, reused, err := loader.Ensure(opts)
					if err != nil {
						done <- err
						return
					}
					d.Close()
					if !reused {
						done <- errors.New("Ensure brought a new instance up instead of replacing the programs")
						return
					}
				}
				done <- nil
			}()
			for replacing := true; replacing; {
				err := cmd.Wait()
				m := pingSummary.FindStringSubmatch(out.String())
				require.NotNil(t, m, out.String())
				tx, _ := strconv.Atoi(m[1])
				rx, _ := strconv.Atoi(m[2])
				floods, sent, received = floods+1, sent+tx, received+rx
				require.NoError(t, err, out.String())
				select {
				case err := <-done:
					require.NoError(t, err)
					replacing = false
				default:
					cmd = flood()
				}
			}
			t.Logf("%d replacements during %d back-to-back floods: %d echo requests, %d replies", replacements, floods, sent, received)
			require.Equal(t, sent, received, "lost %d of %d", sent-received, sent)
			requireReplaced(t, b.NS.Name, ids)
			require.GreaterOrEqual(t, reason(t, b.Datapath, "transit"), transit+uint64(2*sent), "B's counters were not kept, or the flood did not go through B's data plane")
		})
	}
}
