package loader

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// attachedProgram returns the program named program ("overlay_egress",
// "underlay_tc" or "underlay_xdp") that the kernel runs for this data
// plane, found through the pinned link of its (first) attachment.
func (d *Datapath) attachedProgram(program string) (*ebpf.Program, error) {
	for _, a := range d.State.Attachments {
		if a.Program != program {
			continue
		}
		l, err := link.LoadPinnedLink(filepath.Join(pinDir(d.State.Instance), "link_"+a.Interface), nil)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", program, a.Interface, err)
		}
		defer l.Close()
		info, err := l.Info()
		if err != nil {
			return nil, fmt.Errorf("%s on %s: link info: %w", program, a.Interface, err)
		}
		p, err := ebpf.NewProgramFromID(info.Program)
		if err != nil {
			return nil, fmt.Errorf("%s on %s: %w", program, a.Interface, err)
		}
		return p, nil
	}
	return nil, fmt.Errorf("program %s is not attached in instance %s", program, d.State.Instance)
}

// ProgramCost runs the attached program named program on frame with
// BPF_PROG_RUN, in the data plane's namespace and with its live maps (see
// TimedRuns).
//
// The underlay programs learn link-layer state from the frames they see:
// measure after the traffic whose state matters.
func (d *Datapath) ProgramCost(program string, frame []byte, runs int) (map[uint32]int, time.Duration, error) {
	p, err := d.attachedProgram(program)
	if err != nil {
		return nil, 0, err
	}
	defer p.Close()
	var verdicts map[uint32]int
	var mean time.Duration
	err = InNetns(d.State.Netns, func() error {
		var err error
		verdicts, mean, err = TimedRuns(p, frame, runs)
		return err
	})
	return verdicts, mean, err
}

// ProgramStats returns the kernel's run count and cumulated run time of
// the attached program named program. They only grow while statistics
// are enabled (ebpf.EnableStats or the kernel.bpf_stats_enabled sysctl).
func (d *Datapath) ProgramStats(program string) (*ebpf.ProgramStats, error) {
	p, err := d.attachedProgram(program)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return p.Stats()
}

// TimedRuns runs p on frame runs times, one BPF_PROG_RUN each, and returns
// how often each verdict came and the mean of the kernel's timing of each
// run (which includes the kernel timer's own cost). One run per call
// because a repeated run feeds the program its own output: after an
// encapsulation, a rewrite or a decapsulation, the later runs would time
// another path.
func TimedRuns(p *ebpf.Program, frame []byte, runs int) (map[uint32]int, time.Duration, error) {
	verdicts := map[uint32]int{}
	var total time.Duration
	for range runs {
		v, d, err := p.Benchmark(frame, 1, nil)
		if err != nil {
			return nil, 0, err
		}
		verdicts[v]++
		total += d
	}
	return verdicts, total / time.Duration(max(runs, 1)), nil
}

// RouteMapMemory is the kernel's account of the memory the destination
// route map uses (its memlock figure, which for the LPM trie grows with
// the entries).
func (d *Datapath) RouteMapMemory() (uint64, error) {
	info, err := d.maps.Routes.Info()
	if err != nil {
		return 0, err
	}
	m, ok := info.Memlock()
	if !ok {
		return 0, errors.New("the kernel reports no memlock for the route map")
	}
	return m, nil
}
