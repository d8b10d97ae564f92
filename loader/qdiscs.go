package loader

import (
	"errors"
	"fmt"
	"runtime"
	"slices"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ProbedQdiscs are the queueing disciplines the traffic classes can use,
// best first: mqprio (one set of hardware TX queues per class), taprio
// (TSN time gates, not used yet: it needs a schedule), fq_codel and fq
// (fair queueing among flows), htb (the shaper this kernel has).
var ProbedQdiscs = []string{"mqprio", "taprio", "fq_codel", "fq", "htb"}

// QdiscSupport says whether the running kernel has a queueing discipline.
type QdiscSupport struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	Why       string `json:"why,omitempty"`
}

// ProbeQdiscs asks the kernel for each of ProbedQdiscs: it adds the qdisc,
// without options, as the root of a veth device with two TX queues in a
// network namespace of its own, dropped afterwards. The kernel answers
// ENOENT ("Specified qdisc kind is unknown") for a qdisc it has neither
// built in nor as a module it could load; any other answer (success, or
// options refused) means it has it.
func ProbeQdiscs() ([]QdiscSupport, error) {
	type result struct {
		out []QdiscSupport
		err error
	}
	done := make(chan result, 1)
	go func() {
		// A dedicated goroutine, as netns.Do: if the thread cannot return
		// to its namespace it stays locked and dies with the goroutine.
		runtime.LockOSThread()
		orig, err := vnetns.Get()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer orig.Close()
		scratch, err := vnetns.New() // switches this thread into it
		if err != nil {
			if serr := vnetns.Set(orig); serr != nil {
				done <- result{err: err}
				return
			}
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("qdisc probe: new network namespace: %w", err)}
			return
		}
		out, err := probeQdiscsHere()
		scratch.Close()
		if serr := vnetns.Set(orig); serr != nil {
			done <- result{out, err}
			return
		}
		runtime.UnlockOSThread()
		done <- result{out, err}
	}()
	r := <-done
	return r.out, r.err
}

// probeQdiscsHere runs the probes in the current (scratch) namespace.
func probeQdiscsHere() ([]QdiscSupport, error) {
	// A veth pair: re6st-bpf needs veth anyway (the overlay device), while
	// dummy may be missing.
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "qprobe0", NumTxQueues: 2, NumRxQueues: 2}, PeerName: "qprobe1"}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("qdisc probe: veth device: %w", err)
	}
	l, err := netlink.LinkByName(veth.Name)
	if err != nil {
		return nil, err
	}
	out := make([]QdiscSupport, 0, len(ProbedQdiscs))
	for _, name := range ProbedQdiscs {
		q := &netlink.GenericQdisc{QdiscType: name, QdiscAttrs: netlink.QdiscAttrs{
			LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_ROOT, Handle: netlink.MakeHandle(1, 0)}}
		out = append(out, qdiscSupport(name, netlink.QdiscAdd(q)))
		_ = netlink.QdiscDel(q)
	}
	return out, nil
}

// qdiscSupport reads the kernel's answer to adding qdisc name.
func qdiscSupport(name string, err error) QdiscSupport {
	if errors.Is(err, unix.ENOENT) {
		return QdiscSupport{Name: name, Why: "not in this kernel (neither built in nor a loadable module)"}
	}
	return QdiscSupport{Name: name, Available: true}
}

// qdiscAvailable tells whether name is among the available ones of probes.
func qdiscAvailable(probes []QdiscSupport, name string) bool {
	for _, p := range probes {
		if p.Name == name {
			return p.Available
		}
	}
	return false
}

// Shaping is what the classes' queueing can use and uses: the qdiscs the
// kernel has, and the shaper's root qdisc on each underlay ("htb",
// "mqprio", or "" without the shaper).
type Shaping struct {
	Qdiscs []QdiscSupport    `json:"qdiscs"`
	Roots  map[string]string `json:"roots"`
}

// Shaping probes the kernel's qdiscs and reads each underlay's shaper.
func (d *Datapath) Shaping() (Shaping, error) {
	s := Shaping{Roots: map[string]string{}}
	var err error
	if s.Qdiscs, err = ProbeQdiscs(); err != nil {
		return s, err
	}
	for _, u := range d.State.Underlays() {
		if s.Roots[u], err = d.ShaperRoot(u); err != nil {
			return s, err
		}
	}
	return s, nil
}

// String says it in one line per underlay, e.g. "shaper on eth0: htb
// (qdiscs: mqprio no, taprio no, fq_codel no, fq no, htb yes)".
func (s Shaping) String() string {
	have := ""
	for i, q := range s.Qdiscs {
		if i > 0 {
			have += ", "
		}
		have += q.Name + map[bool]string{true: " yes", false: " no"}[q.Available]
	}
	names := make([]string, 0, len(s.Roots))
	for u := range s.Roots {
		names = append(names, u)
	}
	slices.Sort(names)
	out := ""
	for _, u := range names {
		root := s.Roots[u]
		if root == "" {
			root = "none (class shape " + u + ")"
		}
		out += fmt.Sprintf("shaper on %s: %s (qdiscs: %s)\n", u, root, have)
	}
	return out
}
