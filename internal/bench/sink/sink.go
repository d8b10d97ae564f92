package sink

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Sink is a loaded sink program and its counter.
type Sink struct {
	objs sinkObjects
}

// Load loads the program and its counter; Close releases them.
func Load() (*Sink, error) {
	s := &Sink{}
	if err := loadSinkObjects(&s.objs, nil); err != nil {
		return nil, fmt.Errorf("load the XDP sink: %w", err)
	}
	return s, nil
}

// Program is the XDP program, to attach or to swap in for another.
func (s *Sink) Program() *ebpf.Program { return s.objs.SinkDrop }

// Attach attaches the sink at XDP on the interface of index ifindex (in
// the caller's network namespace); closing the link detaches it.
func (s *Sink) Attach(ifindex int) (link.Link, error) {
	l, err := link.AttachXDP(link.XDPOptions{Interface: ifindex, Program: s.objs.SinkDrop})
	if err != nil {
		return nil, fmt.Errorf("attach the XDP sink: %w", err)
	}
	return l, nil
}

// Count is the number of frames the sink has dropped, over all CPUs.
func (s *Sink) Count() (uint64, error) {
	var perCPU []uint64
	if err := s.objs.SinkCount.Lookup(uint32(0), &perCPU); err != nil {
		return 0, fmt.Errorf("read the sink's counter: %w", err)
	}
	var n uint64
	for _, c := range perCPU {
		n += c
	}
	return n, nil
}

// Close releases the program and its counter (an attached link keeps the
// program in the kernel until it is closed).
func (s *Sink) Close() error { return s.objs.Close() }
