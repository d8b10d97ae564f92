package loader

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rs/zerolog/log"
)

// objectHash identifies the embedded BPF object.
func objectHash() string {
	sum := sha256.Sum256(_DatapathBytes)
	return hex.EncodeToString(sum[:])
}

// hash identifies the options the programs are configured and attached
// from (defaults applied).
func (o Options) hash() string {
	underlays := slices.Clone(o.Underlays)
	slices.Sort(underlays)
	b, _ := json.Marshal([]any{o.Netns, o.Overlay, o.Address, underlays, o.Hook, o.Attach, o.FOUPort, o.MTU, o.UnknownPeerPPS, o.ICMPPPS})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Ensure returns the data plane of opts.Instance as opts describe it,
// keeping what is pinned:
//   - no instance: Ensure brings one up (reused false);
//   - an instance loaded from this BPF object with these options: it is
//     reopened as it is (reused true);
//   - one loaded from another object (an upgraded binary) or with other
//     program options (FOU port, rates): its programs are replaced in place
//     — a link update, or a cls_bpf filter replaced at the same
//     parent/priority/handle — keeping its maps (tunnels, routes, counters),
//     so that forwarding never stops (reused true).
//
// An instance that differs in what cannot change in place (namespace,
// overlay device, address, underlays, hooks, attachment mode), whose maps
// the new object cannot use, or that is half present is an error naming
// the command that fixes it.
func Ensure(opts Options) (d *Datapath, reused bool, err error) {
	opts.defaults()
	if err := opts.validate(); err != nil {
		return nil, false, err
	}
	if err := CheckHostNamespaces(opts.Netns); err != nil {
		return nil, false, err
	}
	d, err = Open(opts.Instance)
	if errors.Is(err, ErrNotUp) {
		d, err = Up(opts)
		return d, false, err
	}
	if err != nil {
		return nil, false, err
	}
	if err := d.State.compatible(opts); err != nil {
		d.Close()
		return nil, false, err
	}
	if d.State.ObjectHash == objectHash() && d.State.OptionsHash == opts.hash() {
		return d, true, nil
	}
	if err := d.replacePrograms(opts); err != nil {
		d.Close()
		return nil, false, err
	}
	return d, true, nil
}

// compatible checks that opts describe what the instance is, in all that
// cannot change without `down`.
func (s *State) compatible(opts Options) error {
	differs := func(what string, have, want any) error {
		return fmt.Errorf("instance %q has %s %v, not %v: run `%s` first (tunnels and routes are lost)", s.Instance, what, have, want, downCommand(s.Instance))
	}
	have := s.Underlays()
	want := slices.Clone(opts.Underlays)
	slices.Sort(have)
	slices.Sort(want)
	mode, _, err := chooseAttach(opts.Attach)
	switch {
	case err != nil:
		return err
	case s.Netns != opts.Netns:
		return differs("network namespace", s.Netns, opts.Netns)
	case s.Overlay != opts.Overlay:
		return differs("overlay device", s.Overlay, opts.Overlay)
	case s.Address != opts.Address:
		return differs("address", s.Address, opts.Address)
	case !slices.Equal(have, want):
		return differs("underlays", have, want)
	case opts.MTU != 0 && s.MTU != opts.MTU:
		return differs("MTU", s.MTU, opts.MTU)
	case s.Attach != mode:
		return differs("attachment mode", s.Attach, mode)
	}
	return InNetns(s.Netns, func() error {
		for _, a := range s.Attachments {
			if a.Interface == s.Overlay || a.Interface == s.OverlayPeer {
				continue // always at tc, whatever the hook
			}
			hook, _ := chooseHook(opts.Hook, a.Interface)
			if (a.Hook == pointXDP) != (hook == HookXDP) {
				return differs("on "+a.Interface+" the hook", a.Hook, hook)
			}
		}
		return nil
	})
}

// replacePrograms loads the programs from this binary's object configured
// from opts, reusing the pinned maps, and swaps them in at every
// attachment.
func (d *Datapath) replacePrograms(opts Options) error {
	st := &d.State
	var dev overlayDevice
	if err := InNetns(st.Netns, func() (err error) {
		dev, err = readOverlay(st)
		return err
	}); err != nil {
		return fmt.Errorf("instance %q: %w: run `%s`", st.Instance, err, downCommand(st.Instance))
	}
	objs, err := loadObjects(opts, dev, st.Attach)
	if err != nil {
		return err
	}
	defer objs.datapathPrograms.Close()
	if err := InNetns(st.Netns, func() error {
		for i := range st.Attachments {
			a := &st.Attachments[i]
			if err := replaceProgram(st.Instance, a, objs.byName(a.Program)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		objs.datapathMaps.Close()
		return err
	}
	d.maps.Close()
	d.maps = objs.datapathMaps
	st.FOUPort, st.ObjectHash, st.OptionsHash = opts.FOUPort, objectHash(), opts.hash()
	log.Info().Str("instance", st.Instance).Msg("data plane programs replaced; maps and attachments kept")
	return writeState(st)
}

// CheckHostNamespaces refuses to act where the pins or the state would not
// be the host's:
//   - under `ip netns exec NAME`, whose private /sys (a sysfs mounted with
//     source NAME) hides the host's BPF file system: pins made there vanish
//     with the command;
//   - inside another network namespace without --netns: the state in /run
//     is shared by every namespace, so instances would collide. (A daemon
//     that lives in its namespace and passes --netns is fine.)
//
// Where PID 1 is visible it also compares /sys/fs/bpf and, without --netns,
// the network namespace with PID 1's.
func CheckHostNamespaces(netns string) error {
	const fix = "run re6st-bpf from the host's namespaces with --netns"
	if name := ipNetnsExec(); name != "" {
		return fmt.Errorf("running under `ip netns exec %s`, whose private /sys hides the host's BPF pins: %s %s", name, fix, name)
	}
	if same, err := sameFile("/sys/fs/bpf", "/proc/1/root/sys/fs/bpf"); err == nil && !same {
		return fmt.Errorf("/sys/fs/bpf is not the host's (a private /sys?): %s NAME", fix)
	}
	if netns != "" {
		return nil
	}
	if name := namedNetns(); name != "" {
		return fmt.Errorf("this process runs inside network namespace %s: %s %s", name, fix, name)
	}
	if same, err := sameFile("/proc/thread-self/ns/net", "/proc/1/ns/net"); err == nil && !same {
		return fmt.Errorf("this process is not in the host's network namespace: %s NAME", fix)
	}
	return nil
}

// netnsDir is where `ip netns` keeps named network namespaces.
const netnsDir = "/run/netns"

// namedNetns returns the name of the named network namespace the calling
// thread is in, "" if none.
func namedNetns() string {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return ""
	}
	for _, e := range entries {
		if same, err := sameFile("/proc/thread-self/ns/net", filepath.Join(netnsDir, e.Name())); err == nil && same {
			return e.Name()
		}
	}
	return ""
}

// ipNetnsExec returns NAME when /sys is the sysfs `ip netns exec NAME`
// mounts (its source is the namespace's name), "" otherwise.
func ipNetnsExec() string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	source := ""
	for _, line := range strings.Split(string(b), "\n") {
		// id parent dev root mountpoint options [optional...] - fstype source super
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if len(f) < 5 || sep < 0 || sep+2 >= len(f) || f[4] != "/sys" {
			continue
		}
		source = "" // the last mount on /sys is the visible one
		if f[sep+1] == "sysfs" && f[sep+2] != "sysfs" {
			source = f[sep+2]
		}
	}
	if source == "" {
		return ""
	}
	if _, err := os.Stat(filepath.Join(netnsDir, source)); err != nil {
		return ""
	}
	return source
}

// sameFile reports whether a and b are the same file (or namespace).
func sameFile(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}
