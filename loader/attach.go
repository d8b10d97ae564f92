package loader

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AttachMode says how the tc programs (overlay egress, underlay ingress at
// the tc hook) are attached. XDP always attaches through a BPF link.
type AttachMode string

const (
	AttachTCX    AttachMode = "tcx"    // tcx links (Linux 6.6)
	AttachLegacy AttachMode = "legacy" // clsact qdisc + cls_bpf direct-action filters
	AttachAuto   AttachMode = "auto"   // tcx where the kernel has it, legacy otherwise
)

// Attachment points, as recorded in Attachment.Hook.
const (
	pointTCXEgress  = "tcx-egress"
	pointTCXIngress = "tcx-ingress"
	pointXDP        = "xdp"
	pointTCEgress   = "tc-egress"  // legacy: cls_bpf on clsact egress
	pointTCIngress  = "tc-ingress" // legacy: cls_bpf on clsact ingress
)

// Filter is the identity of a legacy cls_bpf filter: a filter is replaced
// in place and deleted by its parent, priority and handle.
type Filter struct {
	Parent   uint32 `json:"parent"`
	Priority uint16 `json:"priority"`
	Handle   uint32 `json:"handle"`
	// QdiscCreated: `up` added the clsact qdisc, so `down` removes it.
	QdiscCreated bool `json:"qdisc_created,omitempty"`
}

// Priority and handle of our cls_bpf filters: fixed, so that a second
// attachment to the same hook fails instead of stacking.
const (
	legacyPriority = 0xe6
	legacyHandle   = 1
	// nativePriority runs native_ingress after underlay_tc when an
	// upstream interface is an underlay too.
	nativePriority = legacyPriority + 1
)

// chooseAttach resolves mode against what the kernel has, and says why.
func chooseAttach(mode AttachMode) (AttachMode, string, error) {
	tcx := haveTCX()
	switch mode {
	case AttachTCX:
		if tcx != nil {
			return "", "", fmt.Errorf("--attach tcx: this kernel has no tcx (Linux 6.6): use --attach legacy or auto")
		}
		return AttachTCX, "requested", nil
	case AttachLegacy:
		return AttachLegacy, "requested", nil
	case AttachAuto:
		if tcx != nil {
			return AttachLegacy, "no tcx in this kernel (Linux < 6.6): clsact qdisc with cls_bpf filters", nil
		}
		return AttachTCX, "the kernel has tcx", nil
	}
	return "", "", fmt.Errorf("unknown attachment mode %q (want tcx, legacy or auto)", mode)
}

// tcPoint is the attachment point of a tc program in mode.
func tcPoint(mode AttachMode, ingress bool) string {
	switch {
	case mode == AttachLegacy && ingress:
		return pointTCIngress
	case mode == AttachLegacy:
		return pointTCEgress
	case ingress:
		return pointTCXIngress
	}
	return pointTCXEgress
}

// attach attaches prog to a.Interface at a.Hook: a link pinned as
// link_<interface>, or a legacy filter recorded in a.Filter. Runs inside
// the namespace.
func attach(instance string, a *Attachment, prog *ebpf.Program) error {
	l, err := netlink.LinkByName(a.Interface)
	if err != nil {
		return fmt.Errorf("unknown interface %q", a.Interface)
	}
	ifindex := l.Attrs().Index
	var lk link.Link
	switch a.Hook {
	case pointTCXEgress, pointTCXIngress:
		at := ebpf.AttachTCXIngress
		if a.Hook == pointTCXEgress {
			at = ebpf.AttachTCXEgress
		}
		lk, err = link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: prog, Attach: at})
	case pointXDP:
		lk, err = link.AttachXDP(link.XDPOptions{Interface: ifindex, Program: prog})
	case pointTCEgress, pointTCIngress:
		a.Filter, err = attachFilter(ifindex, a.Hook == pointTCIngress, legacyPriority, prog)
	default:
		err = fmt.Errorf("unknown attachment point %q", a.Hook)
	}
	if err != nil {
		return fmt.Errorf("attach %s to %s at %s: %w", a.Program, a.Interface, a.Hook, err)
	}
	if lk == nil {
		return nil
	}
	defer lk.Close()
	if err := lk.Pin(linkPin(instance, a.Interface)); err != nil {
		return fmt.Errorf("pin the link of %s: %w", a.Interface, err)
	}
	return nil
}

func linkPin(instance, ifname string) string {
	return filepath.Join(pinDir(instance), "link_"+ifname)
}

// attachFilter adds a direct-action cls_bpf filter for prog at the clsact
// ingress or egress of ifindex with priority, adding the clsact qdisc if it
// is missing.
func attachFilter(ifindex int, ingress bool, priority uint16, prog *ebpf.Program) (*Filter, error) {
	f := &Filter{Parent: netlink.HANDLE_MIN_EGRESS, Priority: priority, Handle: legacyHandle}
	if ingress {
		f.Parent = netlink.HANDLE_MIN_INGRESS
	}
	has, err := hasClsact(ifindex)
	if err != nil {
		return nil, err
	}
	if !has {
		if err := netlink.QdiscAdd(clsact(ifindex)); err != nil {
			return nil, fmt.Errorf("add clsact qdisc: %w", err)
		}
		f.QdiscCreated = true
	}
	if err := netlink.FilterAdd(f.bpf(ifindex, prog)); err != nil {
		if f.QdiscCreated {
			netlink.QdiscDel(clsact(ifindex))
		}
		return nil, fmt.Errorf("add cls_bpf filter (prio %d handle %d): %w", f.Priority, f.Handle, err)
	}
	return f, nil
}

func clsact(ifindex int) *netlink.GenericQdisc {
	return &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
}

func hasClsact(ifindex int) (bool, error) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return false, err
	}
	qs, err := netlink.QdiscList(l)
	if err != nil {
		return false, err
	}
	for _, q := range qs {
		if q.Type() == "clsact" {
			return true, nil
		}
	}
	return false, nil
}

// bpf is the netlink filter of f running prog (nil: for deletion).
func (f *Filter) bpf(ifindex int, prog *ebpf.Program) *netlink.BpfFilter {
	bf := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex, Parent: f.Parent, Priority: f.Priority, Handle: f.Handle,
			Protocol: unix.ETH_P_ALL,
		},
		DirectAction: true,
	}
	if prog != nil {
		bf.Fd, bf.Name = prog.FD(), "re6st"
	}
	return bf
}

// program returns the id of the program f runs on ifindex; false when f
// is not installed.
func (f *Filter) program(ifindex int) (uint32, bool) {
	l, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return 0, false
	}
	fs, err := netlink.FilterList(l, f.Parent)
	if err != nil {
		return 0, false
	}
	for _, x := range fs {
		if a := x.Attrs(); a.Priority == f.Priority && a.Handle == f.Handle {
			bf, _ := x.(*netlink.BpfFilter)
			if bf == nil {
				return 0, true
			}
			return uint32(bf.Id), true
		}
	}
	return 0, false
}

// replaceProgram swaps the program behind attachment a for prog, in place:
// a link's Update or a filter's replace keep the hook occupied throughout.
// Runs inside the namespace.
func replaceProgram(instance string, a *Attachment, prog *ebpf.Program) error {
	if a.Filter != nil {
		l, err := netlink.LinkByName(a.Interface)
		if err != nil {
			return fmt.Errorf("unknown interface %q", a.Interface)
		}
		if err := netlink.FilterReplace(a.Filter.bpf(l.Attrs().Index, prog)); err != nil {
			return fmt.Errorf("replace the filter of %s at %s: %w", a.Interface, a.Hook, err)
		}
		return nil
	}
	lk, err := link.LoadPinnedLink(linkPin(instance, a.Interface), nil)
	if err != nil {
		return fmt.Errorf("link of %s: %w", a.Interface, err)
	}
	defer lk.Close()
	if err := lk.Update(prog); err != nil {
		return fmt.Errorf("replace the program of %s at %s: %w", a.Interface, a.Hook, err)
	}
	return nil
}

// detachFilter deletes a legacy filter, and the clsact qdisc if `up` added
// it, and says what it removed. A missing interface or filter is no error.
// Runs inside the namespace.
func detachFilter(a *Attachment) ([]string, error) {
	l, err := netlink.LinkByName(a.Interface)
	if err != nil {
		return nil, nil
	}
	var removed []string
	ifindex := l.Attrs().Index
	if _, ok := a.Filter.program(ifindex); ok {
		if err := netlink.FilterDel(a.Filter.bpf(ifindex, nil)); err != nil && !errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("delete the filter of %s at %s: %w", a.Interface, a.Hook, err)
		}
		removed = append(removed, fmt.Sprintf("%s filter on %s", a.Hook, a.Interface))
	}
	if has, _ := hasClsact(ifindex); a.Filter.QdiscCreated && has {
		if err := netlink.QdiscDel(clsact(ifindex)); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
			return removed, fmt.Errorf("delete the clsact qdisc of %s: %w", a.Interface, err)
		}
		removed = append(removed, "clsact qdisc on "+a.Interface)
	}
	return removed, nil
}

// inspect fills a.Attached and a.ProgramID: whether a is in place (its
// interface exists and its link is pinned and attached, or its filter
// installed) and the program it runs. Runs inside the namespace.
func inspect(instance string, a *Attachment) {
	a.Attached, a.ProgramID = false, 0
	l, err := netlink.LinkByName(a.Interface)
	if err != nil {
		return
	}
	if a.Filter != nil {
		a.ProgramID, a.Attached = a.Filter.program(l.Attrs().Index)
		return
	}
	lk, err := link.LoadPinnedLink(linkPin(instance, a.Interface), nil)
	if err != nil {
		return
	}
	defer lk.Close()
	info, err := lk.Info()
	if err != nil {
		return
	}
	// A link whose interface went away is defunct: it has no program.
	a.Attached, a.ProgramID = info.Program != 0, uint32(info.Program)
}
