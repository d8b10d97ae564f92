package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
)

// Feature is one kernel feature the data plane uses, as probed on this
// kernel.
type Feature struct {
	Name  string `json:"name"`
	Since string `json:"since"` // first Linux version that has it
	// Needed says what needs it: "required", or the option that does
	// without it.
	Needed string `json:"needed"`
	Err    error  `json:"-"`
	Have   bool   `json:"have"`
}

// Names of the probed features.
const (
	featRedirectNeigh = "bpf_redirect_neigh"
	featDecapL3       = "bpf_skb_adjust_room with BPF_F_ADJ_ROOM_DECAP_L3_IPV6"
	featXDP           = "XDP"
	featTCX           = "tcx"
)

// ProbeKernel probes every feature the programs and their attachment need.
// The probes load tiny programs; their results are cached.
var ProbeKernel = sync.OnceValue(func() []Feature {
	fs := []Feature{
		{Name: featRedirectNeigh, Since: "5.10", Needed: "required",
			Err: features.HaveProgramHelper(ebpf.SchedCLS, asm.FnRedirectNeigh)},
		{Name: featDecapL3, Since: "6.3", Needed: "--hook tc (decapsulation at tc; --hook xdp does without)",
			Err: probeAdjustRoomDecap()},
		{Name: featXDP, Since: "4.8", Needed: "--hook xdp",
			Err: features.HaveProgramType(ebpf.XDP)},
		{Name: featTCX, Since: "6.6", Needed: "--attach tcx (legacy clsact + cls_bpf otherwise)",
			Err: probeTCX()},
	}
	for i := range fs {
		fs[i].Have = fs[i].Err == nil
	}
	return fs
})

// haveTCX reports whether the kernel has tcx; tests replace it to exercise
// the legacy fallback.
var haveTCX = func() error { return feature(featTCX) }

// feature returns the probe result of the named feature.
func feature(name string) error {
	for _, f := range ProbeKernel() {
		if f.Name == name {
			return f.Err
		}
	}
	return fmt.Errorf("unknown feature %q", name)
}

// MissingFeatures says in one line what this kernel lacks, and what each
// missing feature costs; "" when nothing is missing.
func MissingFeatures() string {
	var out []string
	for _, f := range ProbeKernel() {
		if !f.Have {
			out = append(out, fmt.Sprintf("%s (Linux %s, needed: %s)", f.Name, f.Since, f.Needed))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return "this kernel lacks " + strings.Join(out, ", ")
}

// checkRequired fails when the kernel lacks a feature every data plane
// needs.
func checkRequired() error {
	var missing []string
	for _, f := range ProbeKernel() {
		if !f.Have && strings.HasPrefix(f.Needed, "required") {
			missing = append(missing, fmt.Sprintf("%s (Linux %s)", f.Name, f.Since))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("this kernel lacks %s: the data plane needs a newer kernel (see docs/architecture.md, Kernels)", strings.Join(missing, ", "))
	}
	return nil
}

// probeTCX attaches a trivial program to a nonexistent interface: a kernel
// with tcx answers ENODEV, cilium/ebpf turns the other answers into
// ErrNotSupported.
func probeTCX() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
	})
	if err != nil {
		return err
	}
	defer prog.Close()
	l, err := link.AttachTCX(link.TCXOptions{Interface: 0x7fffffff, Program: prog, Attach: ebpf.AttachTCXIngress})
	if err == nil {
		l.Close()
		return nil
	}
	if errors.Is(err, ebpf.ErrNotSupported) {
		return err
	}
	return nil
}

// Arguments of the adjust_room probe (uapi/linux/bpf.h).
const (
	adjRoomMAC         = 1
	adjRoomFixedGSO    = 1 << 0
	adjRoomDecapL3IPv6 = 1 << 8
)

// probeAdjustRoomDecap runs bpf_skb_adjust_room(-28, MAC, FIXED_GSO |
// DECAP_L3_IPV6) on an IPv4/UDP/IPv6 test frame, as the tc decapsulation
// does: kernels before the flag answer -EINVAL.
func probeAdjustRoomDecap() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R2, -28),
			asm.Mov.Imm(asm.R3, adjRoomMAC),
			asm.LoadImm(asm.R4, adjRoomFixedGSO|adjRoomDecapL3IPv6, asm.DWord),
			asm.FnSkbAdjustRoom.Call(),
			asm.Return(),
		},
	})
	if err != nil {
		return fmt.Errorf("load probe: %w", err)
	}
	defer prog.Close()
	frame := make([]byte, 14+20+8+40+8)
	binary.BigEndian.PutUint16(frame[12:], 0x0800)
	ip := frame[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	frame[14+28] = 0x60
	ret, err := prog.Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		return fmt.Errorf("run probe: %w", err)
	}
	if ret != 0 {
		return fmt.Errorf("bpf_skb_adjust_room: %w (errno %d)", ebpf.ErrNotSupported, -int32(ret))
	}
	return nil
}
