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
	Hook      string `json:"hook"`          // tcx-egress, tcx-ingress, xdp, tc-egress, tc-ingress
	Why       string `json:"why,omitempty"` // how auto chose the hook
	// Filter identifies a legacy (cls_bpf) attachment, which is not a link
	// and so has no pin: down deletes it by this identity.
	Filter *Filter `json:"filter,omitempty"`
	// Filled by Inspect: whether the program is attached, and its id.
	Attached  bool   `json:"attached"`
	ProgramID uint32 `json:"program_id,omitempty"`
}

// State is what `up` set up, kept beside the pins so that later commands
// and restarts know it. `up` writes it before each step that creates
// something (with Building set), so that `down` finds whatever exists even
// after a failed or interrupted `up`.
type State struct {
	Instance string `json:"instance"`
	Netns    string `json:"netns,omitempty"`
	// Overlay and OverlayPeer are set once the names are known to be free,
	// just before the device is created.
	Overlay     string       `json:"overlay"`
	OverlayPeer string       `json:"overlay_peer"`
	Address     netip.Prefix `json:"address"`
	MTU         int          `json:"mtu"`
	FOUPort     uint16       `json:"fou_port"`
	// Attach is how the tc programs are attached, and why.
	Attach      AttachMode   `json:"attach,omitempty"`
	AttachWhy   string       `json:"attach_why,omitempty"`
	Attachments []Attachment `json:"attachments"`
	// ObjectHash and OptionsHash identify the loaded programs: the BPF
	// object and the options they were configured from (see Ensure).
	ObjectHash  string `json:"object_hash,omitempty"`
	OptionsHash string `json:"options_hash,omitempty"`
	// IPv4 is the node's IPv4 address on the overlay device with the
	// IPv4 overlay's prefix length (SetIPv4); unset without IPv4.
	IPv4 netip.Prefix `json:"ipv4,omitzero"`
	// Building is true until `up` has finished.
	Building bool `json:"building,omitempty"`
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
	st, err := readState(instance)
	if err != nil {
		return nil, err
	}
	if st.Building {
		return nil, fmt.Errorf("instance %q is half up (an `up` failed or was interrupted): run `%s`", instance, downCommand(instance))
	}
	d := &Datapath{State: *st}
	if err := openPinnedMaps(instance, &d.maps); err != nil {
		return nil, fmt.Errorf("instance %q: %w (pins missing under %s): run `%s`, then `up` again", instance, err, pinDir(instance), downCommand(instance))
	}
	return d, nil
}

// readState reads the instance's state file; ErrNotUp if there is none.
func readState(instance string) (*State, error) {
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
	st := &State{}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("instance %q: corrupt state %s: %w: run `%s`", instance, statePath(instance), err, downCommand(instance))
	}
	if st.Attach == "" {
		st.Attach = AttachTCX // states from before the legacy attachment
	}
	return st, nil
}

// downCommand is the command that removes whatever exists of instance.
func downCommand(instance string) string {
	return "re6st-bpf --instance " + instance + " down"
}

// Close releases this process's handles; the pinned data plane stays.
func (d *Datapath) Close() error { return d.maps.Close() }

// pinnedMaps names the maps the object pins (LIBBPF_PIN_BY_NAME), sorted.
func pinnedMaps(spec *ebpf.CollectionSpec) []string {
	var names []string
	for name, m := range spec.Maps {
		if m.Pinning == ebpf.PinByName {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// addedMaps are the maps added to the object after instances were up
// without them: Open makes them where they are missing.
var addedMaps = map[string]bool{datapathMapDeviceTunnels: true, datapathMapNativeRoutes: true, datapathMapNativeCounters: true,
	datapathMapDeviceNexthops: true, datapathMapDeviceNeighbours: true, datapathMapDeviceMacs: true}

// openPinnedMaps opens every pinned map of the object from its pin, by the
// name the object gives it.
func openPinnedMaps(instance string, m *datapathMaps) error {
	spec, err := loadDatapath()
	if err != nil {
		return err
	}
	coll := &ebpf.Collection{Maps: map[string]*ebpf.Map{}}
	for _, name := range pinnedMaps(spec) {
		mp, err := ebpf.LoadPinnedMap(filepath.Join(pinDir(instance), name), nil)
		if errors.Is(err, os.ErrNotExist) && addedMaps[name] {
			// An instance brought up by an older object: the map is
			// made now, as the new object's load would make it.
			mp, err = ebpf.NewMapWithOptions(spec.Maps[name], ebpf.MapOptions{PinPath: pinDir(instance)})
		}
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

// Underlays lists the underlay interfaces the programs are attached to.
func (s *State) Underlays() []string {
	var out []string
	for _, a := range s.Attachments {
		if a.Interface != s.Overlay && a.Interface != s.OverlayPeer && !slices.Contains(out, a.Interface) {
			out = append(out, a.Interface)
		}
	}
	return out
}
