package loader

import (
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
	featXDP           = "XDP"
	featTCX           = "tcx"
)

// ProbeKernel probes every feature the programs and their attachment need.
// The probes load tiny programs; their results are cached.
var ProbeKernel = sync.OnceValue(func() []Feature {
	fs := []Feature{
		{Name: featRedirectNeigh, Since: "5.10", Needed: "required",
			Err: features.HaveProgramHelper(ebpf.SchedCLS, asm.FnRedirectNeigh)},
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
