package loader

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/rs/zerolog/log"
	"github.com/vishvananda/netlink"
)

// validate checks what Up and Ensure are given, before anything is made.
func (o *Options) validate() error {
	if err := CheckInstance(o.Instance); err != nil {
		return err
	}
	if !o.Address.IsValid() || !o.Address.Addr().Is6() || o.Address.Addr().Is4In6() {
		return fmt.Errorf("--address must be an IPv6 address with the network prefix length, e.g. 2001:db8:1::1/32")
	}
	if len(o.Underlays) == 0 {
		return errors.New("at least one underlay interface is needed")
	}
	if o.Hook != HookTC && o.Hook != HookXDP && o.Hook != HookAuto {
		return fmt.Errorf("unknown hook %q (want tc, xdp or auto)", o.Hook)
	}
	return nil
}

// upRun is one `up` in progress: what its steps have made so far.
type upRun struct {
	opts   Options
	d      *Datapath
	dev    overlayDevice
	objs   *datapathObjects
	record func() error
}

// upSteps are the steps of Up, in order. Each records in the state what it
// is about to make, so that a failure at any point, or `down` after a
// crash, removes exactly what exists.
var upSteps = []struct {
	name string
	run  func(*upRun) error
}{
	{"record", func(u *upRun) error { return u.record() }},
	{"overlay", (*upRun).overlay},
	{"load", (*upRun).load},
	{"attach", (*upRun).attach},
	{"commit", (*upRun).commit},
}

// upFault, set by tests, is called after each step of Up; an error it
// returns fails Up there.
var upFault func(step string) error

// Up creates the overlay device, loads the programs, attaches them and pins
// everything for opts.Instance. A failure at any step removes what the
// earlier steps made: nothing is left behind.
func Up(opts Options) (*Datapath, error) {
	opts.defaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := CheckHostNamespaces(opts.Netns); err != nil {
		return nil, err
	}
	if err := checkRequired(); err != nil {
		return nil, err
	}
	mode, why, err := chooseAttach(opts.Attach)
	if err != nil {
		return nil, err
	}
	if err := checkFree(opts.Instance); err != nil {
		return nil, err
	}
	if err := ensureBPFFS(); err != nil {
		return nil, err
	}
	u := &upRun{opts: opts, d: &Datapath{State: State{
		Instance: opts.Instance, Netns: opts.Netns, Address: opts.Address, FOUPort: opts.FOUPort,
		Attach: mode, AttachWhy: why, Building: true,
	}}}
	u.record = func() error { return writeState(&u.d.State) }
	for _, s := range upSteps {
		err := s.run(u)
		if err == nil && upFault != nil {
			err = upFault(s.name)
		}
		if err != nil {
			return nil, u.abort(err)
		}
	}
	// The links and filters hold the programs now.
	u.objs.datapathPrograms.Close()
	return u.d, nil
}

// checkFree refuses an instance of which something exists.
func checkFree(instance string) error {
	st, err := readState(instance)
	switch {
	case err == nil && st.Building:
		return fmt.Errorf("instance %q is half up (an `up` failed or was interrupted): run `%s`", instance, downCommand(instance))
	case err == nil:
		return fmt.Errorf("instance %q is already up (run `re6st-bpf down` first)", instance)
	case !errors.Is(err, ErrNotUp):
		return err
	}
	if entries, err := os.ReadDir(pinDir(instance)); err == nil {
		return fmt.Errorf("instance %q: %d leftover pins under %s: run `%s`", instance, len(entries), pinDir(instance), downCommand(instance))
	}
	return nil
}

func (u *upRun) overlay() error {
	return InNetns(u.opts.Netns, func() error {
		if err := createOverlay(&u.d.State, u.opts, u.record); err != nil {
			return err
		}
		var err error
		u.dev, err = readOverlay(&u.d.State)
		return err
	})
}

func (u *upRun) load() error {
	if err := os.MkdirAll(pinDir(u.opts.Instance), 0o700); err != nil {
		return err
	}
	objs, err := loadObjects(u.opts, u.dev, u.d.State.Attach)
	if err != nil {
		return err
	}
	u.objs, u.d.maps = objs, objs.datapathMaps
	return nil
}

// attach attaches the egress program to the overlay device and the
// ingress program to every underlay, recording each attachment as it is
// made. Runs inside the namespace (XDP, tcx and tc resolve interface
// indexes there).
func (u *upRun) attach() error {
	st, progs := &u.d.State, &u.objs.datapathPrograms
	one := func(a Attachment) error {
		if err := attach(st.Instance, &a, progs.byName(a.Program)); err != nil {
			return err
		}
		st.Attachments = append(st.Attachments, a)
		return u.record()
	}
	return InNetns(u.opts.Netns, func() error {
		if err := one(Attachment{Interface: st.Overlay, Program: "overlay_egress", Hook: tcPoint(st.Attach, false)}); err != nil {
			return err
		}
		// The segmented transit detour comes back on the overlay peer.
		if err := one(Attachment{Interface: st.OverlayPeer, Program: "underlay_tc", Hook: tcPoint(st.Attach, true), Why: "segmented transit"}); err != nil {
			return err
		}
		for _, name := range u.opts.Underlays {
			hook, why := chooseHook(u.opts.Hook, name)
			a := Attachment{Interface: name, Program: "underlay_tc", Hook: tcPoint(st.Attach, true), Why: why}
			if hook == HookXDP {
				if err := prepareXDP(st, name); err != nil {
					return err
				}
				a.Program, a.Hook = "underlay_xdp", pointXDP
			}
			if err := one(a); err != nil {
				return err
			}
			log.Info().Str("interface", name).Str("hook", a.Hook).Str("why", why).Msg("underlay attached")
		}
		return nil
	})
}

func (u *upRun) commit() error {
	st := &u.d.State
	st.ObjectHash, st.OptionsHash, st.Building = objectHash(), u.opts.hash(), false
	return u.record()
}

// abort releases what this process holds and removes what the steps made.
func (u *upRun) abort(err error) error {
	if u.objs != nil {
		u.objs.Close()
	}
	removed, rerr := remove(&u.d.State)
	log.Debug().Strs("removed", removed).Err(err).Msg("up failed: removed what it had made")
	if rerr != nil {
		return fmt.Errorf("%w; removing what it made failed too (%v): run `%s`", err, rerr, downCommand(u.opts.Instance))
	}
	return err
}

// byName returns the program the object names name.
func (p *datapathPrograms) byName(name string) *ebpf.Program {
	switch name {
	case "overlay_egress":
		return p.OverlayEgress
	case "underlay_tc":
		return p.UnderlayTc
	case "underlay_xdp":
		return p.UnderlayXdp
	}
	return nil
}

// loadObjects loads the programs configured from opts and dev, and the
// maps pinned under the instance's directory (reused when pinned, created
// and pinned otherwise).
// decapCompatForTest makes the programs Up loads decapsulate native
// traffic as on kernels before 6.3 (export_test.go).
var decapCompatForTest bool

// config is the load-time configuration of the programs
// (bpf/include/config.h).
type config struct {
	fouPort                     uint16 // host order
	overlayIfindex, peerIfindex uint32
	overlayMAC                  [6]byte
	nodeAddr                    netip.Addr
	unknownPeerPPS, icmpPPS     uint32
	decapCompat                 bool // tests: the decapsulation of kernels before 6.3
}

// apply writes cfg into the object's variables, through bpf2go's typed
// variable specs: a variable renamed in C no longer compiles here.
func (cfg config) apply(spec *ebpf.CollectionSpec) error {
	var v datapathVariableSpecs
	if err := spec.Assign(&v); err != nil {
		return fmt.Errorf("configure the programs: %w", err)
	}
	if err := errors.Join(
		v.CfgFouPort.Set(htons(cfg.fouPort)),
		v.CfgOverlayIfindex.Set(cfg.overlayIfindex),
		v.CfgOverlayPeerIfindex.Set(cfg.peerIfindex),
		v.CfgOverlayMac.Set(cfg.overlayMAC),
		v.CfgNodeAddr.Set(cfg.nodeAddr.As16()),
		v.CfgUnknownPeerPps.Set(cfg.unknownPeerPPS),
		v.CfgIcmpPps.Set(cfg.icmpPPS),
		v.CfgDecapCompat.Set(cfg.decapCompat),
	); err != nil {
		return fmt.Errorf("configure the programs: %w", err)
	}
	return nil
}

func loadObjects(opts Options, dev overlayDevice, mode AttachMode) (*datapathObjects, error) {
	spec, err := loadDatapath()
	if err != nil {
		return nil, err
	}
	cfg := config{fouPort: opts.FOUPort, overlayIfindex: uint32(dev.ifindex), peerIfindex: uint32(dev.peerIfindex),
		overlayMAC: dev.mac, nodeAddr: opts.Address.Addr(), unknownPeerPPS: opts.UnknownPeerPPS, icmpPPS: opts.ICMPPPS,
		decapCompat: decapCompatForTest}
	if err := cfg.apply(spec); err != nil {
		return nil, err
	}
	if mode == AttachLegacy {
		// cls_bpf takes SchedCLS programs of any expected attach type,
		// but kernels before tcx do not know the tcx ones.
		for _, p := range spec.Programs {
			if p.Type == ebpf.SchedCLS {
				p.AttachType = ebpf.AttachNone
			}
		}
	}
	var objs datapathObjects
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pinDir(opts.Instance)}}); err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("load BPF programs: %w: the pinned maps were made by another version of the data plane, whose maps cannot be kept: run `%s`, then `up` again", err, downCommand(opts.Instance))
		}
		return nil, fmt.Errorf("load BPF programs: %w", err)
	}
	return &objs, nil
}

// Down removes whatever exists of instance (see Remove).
func Down(instance string) error {
	_, err := Remove(instance)
	return err
}

// Remove removes whatever exists of instance — legacy filters, the overlay
// device, the pins (removing a link's last pin detaches its program) and
// the state — even after a failed or interrupted `up`, a deleted namespace
// or a remounted BPF file system, and says what it removed (nothing: the
// instance was not up).
func Remove(instance string) ([]string, error) {
	st, err := readState(instance)
	switch {
	case errors.Is(err, ErrNotUp):
		st = &State{Instance: instance}
	case err != nil && CheckInstance(instance) == nil:
		log.Warn().Err(err).Msg("state unreadable: removing the pins and the state only (check `ip link` for a leftover overlay device)")
		st = &State{Instance: instance}
	case err != nil:
		return nil, err
	}
	return remove(st)
}

// remove deletes whatever exists of what st records and says what it
// removed. The state file goes last, and only when everything else went,
// so that a failed removal can be retried with `down`.
func remove(st *State) ([]string, error) {
	var removed []string
	var errs []error
	err := InNetns(st.Netns, func() error {
		for i := range st.Attachments {
			if a := &st.Attachments[i]; a.Filter != nil {
				r, err := detachFilter(a)
				removed = append(removed, r...)
				if err != nil {
					return err
				}
			}
		}
		if st.Overlay == "" {
			return nil
		}
		l, err := netlink.LinkByName(st.Overlay)
		if err != nil {
			return nil
		}
		if err := netlink.LinkDel(l); err != nil {
			return fmt.Errorf("delete %s: %w", st.Overlay, err)
		}
		removed = append(removed, "overlay device "+st.Overlay)
		return nil
	})
	// A deleted namespace took its devices with it, and so did one whose
	// name is left but is no namespace any more.
	gone := errors.Is(err, os.ErrNotExist) || errors.Is(err, netns.ErrEnter) && errors.Is(err, syscall.EINVAL)
	if err != nil && !gone {
		errs = append(errs, err)
	}
	if entries, err := os.ReadDir(pinDir(st.Instance)); err == nil {
		if err := os.RemoveAll(pinDir(st.Instance)); err != nil {
			errs = append(errs, err)
		} else {
			removed = append(removed, fmt.Sprintf("%d pins under %s", len(entries), pinDir(st.Instance)))
		}
	}
	if len(errs) == 0 {
		if err := os.Remove(statePath(st.Instance)); err == nil {
			removed = append(removed, "state "+statePath(st.Instance))
		} else if !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}

// Health says what exists of an instance and what is missing from it.
type Health struct {
	Instance string   `json:"instance"`
	State    *State   `json:"state,omitempty"` // nil: no readable state file
	Present  []string `json:"present"`
	Missing  []string `json:"missing"`
	// Fix is the command that repairs a half-present instance.
	Fix string `json:"fix,omitempty"`
}

// OK reports whether nothing is missing.
func (h *Health) OK() bool { return len(h.Missing) == 0 }

// Err is nil when nothing is missing, else one line naming what is and the
// command that fixes it.
func (h *Health) Err() error {
	if h.OK() {
		return nil
	}
	return fmt.Errorf("instance %q is half present, missing %s: run `%s`, then `up` again", h.Instance, strings.Join(h.Missing, ", "), h.Fix)
}

// Inspect says what exists of instance — state, pinned maps, overlay
// device, attachments — and what is missing; ErrNotUp when nothing exists.
func Inspect(instance string) (*Health, error) {
	h := &Health{Instance: instance, Fix: downCommand(instance)}
	st, err := readState(instance)
	pins, _ := os.ReadDir(pinDir(instance))
	switch {
	case errors.Is(err, ErrNotUp) && len(pins) == 0:
		return nil, err
	case errors.Is(err, ErrNotUp):
		h.Missing = append(h.Missing, "state "+statePath(instance))
	case err != nil:
		h.Missing = append(h.Missing, "a readable state "+statePath(instance))
	default:
		h.State = st
		h.Present = append(h.Present, "state "+statePath(instance))
		if st.Building {
			h.Missing = append(h.Missing, "a finished `up` (it failed or was interrupted)")
		}
	}
	spec, err := loadDatapath()
	if err != nil {
		return nil, err
	}
	for _, name := range pinnedMaps(spec) {
		if _, err := os.Stat(filepath.Join(pinDir(instance), name)); err == nil {
			h.Present = append(h.Present, "map "+name)
		} else {
			h.Missing = append(h.Missing, "map "+name)
		}
	}
	if h.State != nil {
		h.inspectDevices()
	}
	if h.OK() {
		h.Fix = ""
	}
	return h, nil
}

// inspectDevices checks the overlay device and the attachments in the
// instance's namespace, filling Attachment.Attached.
func (h *Health) inspectDevices() {
	st := h.State
	err := InNetns(st.Netns, func() error {
		if st.Overlay != "" {
			if _, err := netlink.LinkByName(st.Overlay); err == nil {
				h.Present = append(h.Present, "overlay device "+st.Overlay)
			} else {
				h.Missing = append(h.Missing, "overlay device "+st.Overlay)
			}
		}
		for i := range st.Attachments {
			a := &st.Attachments[i]
			inspect(st.Instance, a)
			desc := fmt.Sprintf("%s at %s of %s", a.Program, a.Hook, a.Interface)
			if a.Attached {
				h.Present = append(h.Present, desc)
			} else {
				h.Missing = append(h.Missing, desc)
			}
		}
		return nil
	})
	if err != nil {
		h.Missing = append(h.Missing, "network namespace "+st.Netns)
	}
}
