package loader

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Where pins and state live.
var (
	PinRoot   = "/sys/fs/bpf/re6st"
	StateRoot = "/run/re6st-bpf"
)

// ErrNotUp is returned when an instance has no data plane loaded.
var ErrNotUp = errors.New("not up")

var instanceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// CheckInstance validates an instance name (it becomes a directory name).
func CheckInstance(name string) error {
	if !instanceName.MatchString(name) {
		return fmt.Errorf("invalid instance name %q (letters, digits, '.', '_', '-'; at most 64)", name)
	}
	return nil
}

// Attachment records one program attached to one interface.
type Attachment struct {
	Interface string `json:"interface"`
	Program   string `json:"program"`
	Hook      string `json:"hook"`             // tcx-egress, tcx-ingress, xdp
	Why       string `json:"why,omitempty"`    // how auto chose the hook
	Pinned    bool   `json:"pinned,omitempty"` // filled by Status
}

// State is what `up` set up, kept beside the pins so that later commands
// and restarts know it.
type State struct {
	Instance    string       `json:"instance"`
	Netns       string       `json:"netns,omitempty"`
	Overlay     string       `json:"overlay"`
	OverlayPeer string       `json:"overlay_peer"`
	Address     netip.Prefix `json:"address"`
	MTU         int          `json:"mtu"`
	FOUPort     uint16       `json:"fou_port"`
	Attachments []Attachment `json:"attachments"`
}

// Datapath is an instance's loaded data plane: its maps, through which
// routes, tunnels and counters are read and written.
type Datapath struct {
	State State
	maps  datapathMaps
}

// Instances lists the instances that are up (those with a state file),
// sorted by name.
func Instances() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(StateRoot, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".json"); CheckInstance(name) == nil {
			out = append(out, name)
		}
	}
	return out, nil
}

func pinDir(instance string) string    { return filepath.Join(PinRoot, instance) }
func statePath(instance string) string { return filepath.Join(StateRoot, instance+".json") }

// Open returns the data plane that `up` left pinned for instance.
func Open(instance string) (*Datapath, error) {
	if err := CheckInstance(instance); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(statePath(instance))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("instance %q is %w (run `re6st-bpf up` first)", instance, ErrNotUp)
	}
	if err != nil {
		return nil, err
	}
	d := &Datapath{}
	if err := json.Unmarshal(b, &d.State); err != nil {
		return nil, fmt.Errorf("instance %q: corrupt state %s: %w", instance, statePath(instance), err)
	}
	if err := openPinnedMaps(instance, &d.maps); err != nil {
		return nil, fmt.Errorf("instance %q: %w (pins missing under %s: run `re6st-bpf down` then `up`)", instance, err, pinDir(instance))
	}
	return d, nil
}

// Close releases this process's handles; the pinned data plane stays.
func (d *Datapath) Close() error { return d.maps.Close() }

// openPinnedMaps opens every map of the object from its pin, by the name
// the object gives it (the maps are pinned by name, LIBBPF_PIN_BY_NAME).
func openPinnedMaps(instance string, m *datapathMaps) error {
	spec, err := loadDatapath()
	if err != nil {
		return err
	}
	coll := &ebpf.Collection{Maps: map[string]*ebpf.Map{}}
	for name, ms := range spec.Maps {
		if ms.Pinning != ebpf.PinByName {
			continue // .rodata and the like belong to the programs
		}
		mp, err := ebpf.LoadPinnedMap(filepath.Join(pinDir(instance), name), nil)
		if err != nil {
			coll.Close()
			return fmt.Errorf("map %s: %w", name, err)
		}
		coll.Maps[name] = mp
	}
	if err := coll.Assign(m); err != nil {
		coll.Close()
		return err
	}
	return nil
}

// ensureBPFFS mounts the BPF file system on /sys/fs/bpf when it is not.
func ensureBPFFS() error {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &st); err == nil && st.Type == unix.BPF_FS_MAGIC {
		return nil
	}
	if err := os.MkdirAll("/sys/fs/bpf", 0o755); err != nil {
		return err
	}
	if err := unix.Mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mount bpffs on /sys/fs/bpf: %w", err)
	}
	return nil
}

// Attachments returns the recorded attachments, each marked with whether its
// link is still pinned (and so attached).
func (d *Datapath) Attachments() ([]Attachment, error) {
	out := make([]Attachment, len(d.State.Attachments))
	for i, a := range d.State.Attachments {
		_, err := os.Stat(filepath.Join(pinDir(d.State.Instance), "link_"+a.Interface))
		a.Pinned = err == nil
		out[i] = a
	}
	return out, nil
}

// Underlays lists the underlay interfaces the programs are attached to.
func (s *State) Underlays() []string {
	var out []string
	for _, a := range s.Attachments {
		if a.Interface != s.Overlay && !slices.Contains(out, a.Interface) {
			out = append(out, a.Interface)
		}
	}
	return out
}
