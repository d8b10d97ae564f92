package bench

import (
	"errors"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/re6st-bpf/re6st-bpf/internal/bench/sink"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// ceiling is the transit-ceiling case: the small-UDP test with the last
// node's stack replaced by an XDP sink at its underlay ingress (see
// attachSink), so that the rate is what the nodes before it forward. It
// returns the rate at which the sink counted the frames and the loss.
func (t *topology) ceiling(n int) (pps, loss float64, err error) {
	s, err := sink.Load()
	if err != nil {
		return 0, 0, err
	}
	defer s.Close()
	detach, err := t.attachSink(s)
	if err != nil {
		return 0, 0, err
	}
	defer func() { err = errors.Join(err, detach()) }()
	return t.smallUDP(n, s.Count)
}

// attachSink puts the sink at XDP on the last node's underlay interface
// for the duration of one test, and returns what undoes it.
//
// XDP runs before tcx, so on the plain and tcx variants the sink is simply
// attached in front: the data plane's tcx program stays where it is but
// sees nothing. On the XDP variants the interface already has the data
// plane's XDP link (one XDP program per interface): the sink replaces the
// program of that pinned link (BPF_LINK_UPDATE, atomic), and the data
// plane's program is put back after.
func (t *topology) attachSink(s *sink.Sink) (detach func() error, err error) {
	last := t.chain.Last()
	if d := last.Datapath; d != nil {
		for _, a := range d.State.Attachments {
			if a.Interface == last.Left && a.Hook == "xdp" {
				return swapXDP(filepath.Join(loader.PinRoot, d.State.Instance, "link_"+a.Interface), s.Program())
			}
		}
	}
	idx, _, err := linkInfo(last.NS, last.Left)
	if err != nil {
		return nil, err
	}
	var l link.Link
	if err := last.NS.Do(func() (err error) {
		l, err = s.Attach(idx)
		return err
	}); err != nil {
		return nil, err
	}
	return l.Close, nil
}

// swapXDP replaces the program of the pinned XDP link at path with prog,
// and returns what puts the original program back.
func swapXDP(path string, prog *ebpf.Program) (restore func() error, err error) {
	l, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	info, err := l.Info()
	if err != nil {
		return nil, err
	}
	orig, err := ebpf.NewProgramFromID(info.Program)
	if err != nil {
		return nil, err
	}
	if err := l.Update(prog); err != nil {
		orig.Close()
		return nil, err
	}
	return func() error {
		err := l.Update(orig)
		return errors.Join(err, orig.Close(), l.Close())
	}, nil
}
