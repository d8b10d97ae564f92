package loader

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The shaper's HTB tree on an underlay device (handles as SHAPER_HANDLE in
// bpf/include/class.h):
//
//	1:     htb, unclassed packets to 1:ffff
//	1:1    the link's rate
//	1:ID00 class ID: its rate (or an equal part of what the rated classes
//	       leave), ceiling the link; a leaf unless the class has Flows
//	1:IDnn one leaf per flow bucket (nn = 1..Flows): equal rates, so that
//	       HTB's round robin gives the flows of a congested class equal
//	       shares of what the class gets
//	1:ffff unclassed traffic
//
// Every class and leaf may borrow up to the link's rate. A class's HTB
// priority is 7 - Priority (Priority 0..7, higher first, as TC_PRIO and
// 802.1p): a class under its rate and with a higher Priority is dequeued
// first, which gives keep-alive and safety classes strict priority over
// bulk as long as they stay within their rate.
const (
	shaperMajor   = uint16(datapathShaperSHAPER_MAJOR)
	shaperDefault = uint16(datapathShaperSHAPER_DEFAULT_MINOR)
	shaperLeafMTU = 1600
	minHTBRate    = 8000 // bits per second
)

func shaperHandle(minor uint16) uint32 { return netlink.MakeHandle(shaperMajor, minor) }

// htbPrio is the HTB priority of a class (0 first, 7 last).
func htbPrio(priority uint32) uint32 {
	if priority > 7 {
		return 7
	}
	return 7 - priority
}

// ShapeReport says what Shape installed.
type ShapeReport struct {
	Device string `json:"device"`
	Rate   uint64 `json:"rate"`
	// Root is the root qdisc Shape chose, mqprio or htb; RootWhy says why
	// not mqprio; Qdiscs is what the kernel has (ProbeQdiscs).
	Root    string         `json:"root"`
	RootWhy string         `json:"root_why,omitempty"`
	Qdiscs  []QdiscSupport `json:"qdiscs"`
	// TCs are mqprio's traffic classes (Root mqprio).
	TCs []MqprioTC `json:"tcs,omitempty"`
	// LeafQdisc is the qdisc under each HTB leaf: fq_codel when the kernel
	// has it, else HTB's default (pfifo); Why says why not fq_codel.
	LeafQdisc string        `json:"leaf_qdisc"`
	Why       string        `json:"why,omitempty"`
	Classes   []ShapedClass `json:"classes"`
}

// ShapedClass is one class's place in the HTB tree.
type ShapedClass struct {
	ID      uint8  `json:"id"`
	Handle  string `json:"handle"`
	Rate    uint64 `json:"rate"`
	HTBPrio uint32 `json:"htb_prio"`
	Leaves  int    `json:"leaves"`
}

// classRates gives each class, and the unclassed traffic (key 0), its HTB
// rate: its own Rate, or an equal part of what the rated classes leave of
// linkRate.
func classRates(classes []Class, linkRate uint64) (map[uint8]uint64, error) {
	var rated uint64
	unrated := 1 // the unclassed traffic
	for _, c := range classes {
		if c.Rate == 0 {
			unrated++
		}
		rated += c.Rate
	}
	if rated > linkRate {
		return nil, fmt.Errorf("the classes' rates add up to %d bit/s, more than the link's %d", rated, linkRate)
	}
	share := max((linkRate-rated)/uint64(unrated), minHTBRate)
	out := map[uint8]uint64{0: share}
	for _, c := range classes {
		out[c.ID] = c.Rate
		if c.Rate == 0 {
			out[c.ID] = share
		}
	}
	return out, nil
}

// chooseRoot picks the shaper's root qdisc: mqprio, which gives each class
// its hardware TX queues, when the kernel has it, the device has several TX
// queues, no class asks for software shaping (a rate or flows, which only
// HTB enforces) and the classes' queues map onto mqprio's traffic classes
// (mqprioPlan); else htb, with why not mqprio.
func chooseRoot(probes []QdiscSupport, txQueues int, classes []Class) (opts mqprioOptions, tcs []MqprioTC, why string) {
	if !qdiscAvailable(probes, "mqprio") {
		return opts, nil, "mqprio: not in this kernel"
	}
	if txQueues < 2 {
		return opts, nil, "mqprio: the device has one TX queue"
	}
	for _, c := range classes {
		if c.Rate != 0 || c.Flows != 0 {
			return opts, nil, fmt.Sprintf("mqprio: class %d has a rate or flows, which only the HTB shaper enforces", c.ID)
		}
	}
	opts, tcs, err := mqprioPlan(classes, txQueues)
	if err != nil {
		return opts, nil, "mqprio: " + err.Error()
	}
	return opts, tcs, ""
}

// Shape installs the shaper of the instance's classes on the underlay
// device ifname, replacing its root qdisc: mqprio when chooseRoot allows
// it (the classes keep their priority, which picks their queues), else the
// HTB tree, to which the classes are switched. Run it again after
// changing classes.
func (d *Datapath) Shape(ifname string, linkRate uint64) (*ShapeReport, error) {
	if linkRate < minHTBRate {
		return nil, fmt.Errorf("link rate %d bit/s: too low", linkRate)
	}
	classes, err := d.Classes()
	if err != nil {
		return nil, err
	}
	rates, err := classRates(classes, linkRate)
	if err != nil {
		return nil, err
	}
	probes, err := ProbeQdiscs()
	if err != nil {
		return nil, err
	}
	rep := &ShapeReport{Device: ifname, Rate: linkRate, Qdiscs: probes}
	err = InNetns(d.State.Netns, func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("shaper: %s: %w", ifname, err)
		}
		opts, tcs, why := chooseRoot(probes, l.Attrs().NumTxQueues, classes)
		if why == "" {
			rep.Root, rep.TCs = "mqprio", tcs
			if err := deleteRootQdisc(l.Attrs().Index); err != nil {
				return fmt.Errorf("shaper: remove the root qdisc of %s: %w", ifname, err)
			}
			if err := addMqprio(l.Attrs().Index, opts); err != nil {
				return fmt.Errorf("shaper: mqprio on %s: %w", ifname, err)
			}
			return nil
		}
		rep.Root, rep.RootWhy = "htb", why
		if err := buildShaper(l, classes, rates, linkRate, rep); err != nil {
			// No half tree: the device goes back to its default qdisc.
			deleteRootQdisc(l.Attrs().Index)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, c := range classes {
		if rep.Root == "mqprio" {
			break // the classes keep their priority
		}
		c.Shaped = true
		if err := d.putClass(c); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

func buildShaper(l netlink.Link, classes []Class, rates map[uint8]uint64, linkRate uint64, rep *ShapeReport) error {
	idx := l.Attrs().Index
	root := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: idx, Handle: shaperHandle(0), Parent: netlink.HANDLE_ROOT})
	root.Defcls = uint32(shaperDefault)
	// Start from an empty tree: remove the root qdisc there is (ours from
	// an earlier shape, or another), if any.
	if err := deleteRootQdisc(idx); err != nil {
		return fmt.Errorf("shaper: remove the root qdisc of %s: %w", l.Attrs().Name, err)
	}
	if err := netlink.QdiscAdd(root); err != nil {
		return fmt.Errorf("shaper: htb on %s: %w", l.Attrs().Name, err)
	}
	addClass := func(parent, handle uint32, rate uint64, prio uint32) error {
		c := netlink.NewHtbClass(netlink.ClassAttrs{LinkIndex: idx, Parent: parent, Handle: handle},
			netlink.HtbClassAttrs{Rate: rate, Ceil: linkRate, Prio: prio, Quantum: shaperLeafMTU})
		if err := netlink.ClassAdd(c); err != nil {
			return fmt.Errorf("shaper: class %s: %w", netlink.HandleStr(handle), err)
		}
		return nil
	}
	top := shaperHandle(1)
	if err := addClass(shaperHandle(0), top, linkRate, 0); err != nil {
		return err
	}
	var leaves []uint32
	addLeaf := func(parent, handle uint32, rate uint64, prio uint32) error {
		leaves = append(leaves, handle)
		return addClass(parent, handle, rate, prio)
	}
	if err := addLeaf(top, shaperHandle(shaperDefault), rates[0], 7); err != nil {
		return err
	}
	for _, c := range classes {
		node := shaperHandle(uint16(c.ID) << 8)
		prio := htbPrio(c.Priority)
		sc := ShapedClass{ID: c.ID, Handle: netlink.HandleStr(node), Rate: rates[c.ID], HTBPrio: prio, Leaves: 1}
		if c.Flows == 0 {
			if err := addLeaf(top, node, rates[c.ID], prio); err != nil {
				return err
			}
		} else {
			if err := addClass(top, node, rates[c.ID], prio); err != nil {
				return err
			}
			leafRate := max(rates[c.ID]/uint64(c.Flows), minHTBRate)
			for b := uint16(1); b <= c.Flows; b++ {
				if err := addLeaf(node, node|uint32(b), leafRate, prio); err != nil {
					return err
				}
			}
			sc.Leaves = int(c.Flows)
		}
		rep.Classes = append(rep.Classes, sc)
	}
	rep.LeafQdisc, rep.Why = "fq_codel", ""
	for i, leaf := range leaves {
		q := netlink.NewFqCodel(netlink.QdiscAttrs{LinkIndex: idx, Parent: leaf, Handle: netlink.MakeHandle(uint16(0x100+i), 0)})
		if err := netlink.QdiscAdd(q); err != nil {
			if i == 0 && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)) {
				rep.LeafQdisc, rep.Why = "pfifo", "fq_codel: "+err.Error()+" (not in this kernel)"
				return nil
			}
			return fmt.Errorf("shaper: fq_codel under %s: %w", netlink.HandleStr(leaf), err)
		}
	}
	return nil
}

// deleteRootQdisc removes the root qdisc of device idx, if it has one of
// its own (not the default one, which the kernel refuses to delete).
func deleteRootQdisc(idx int) error {
	kind, err := rootQdisc(idx)
	if err != nil || kind == "" {
		return err
	}
	q := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: idx, Parent: netlink.HANDLE_ROOT}, QdiscType: kind}
	if err := netlink.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}

// rootQdisc is the kind of device idx's root qdisc, "" for none of its own
// (the kernel's default, handle 0:).
func rootQdisc(idx int) (string, error) {
	qs, err := netlink.QdiscList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: idx}})
	if err != nil {
		return "", err
	}
	for _, q := range qs {
		if a := q.Attrs(); a.Parent == netlink.HANDLE_ROOT && a.Handle != 0 {
			return q.Type(), nil
		}
	}
	return "", nil
}

// ShaperRoot says which shaper ifname has: "htb" or "mqprio" when its
// root qdisc is the shaper's (handle 1:), "" otherwise.
func (d *Datapath) ShaperRoot(ifname string) (string, error) {
	var kind string
	err := InNetns(d.State.Netns, func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		kind, err = shaperRoot(l)
		return err
	})
	return kind, err
}

func shaperRoot(l netlink.Link) (string, error) {
	qs, err := netlink.QdiscList(l)
	if err != nil {
		return "", err
	}
	for _, q := range qs {
		if a := q.Attrs(); a.Parent == netlink.HANDLE_ROOT && a.Handle == shaperHandle(0) &&
			(q.Type() == "htb" || q.Type() == "mqprio") {
			return q.Type(), nil
		}
	}
	return "", nil
}

// Unshape removes the shaper from ifname and switches the classes back to
// their own priority.
func (d *Datapath) Unshape(ifname string) error {
	err := InNetns(d.State.Netns, func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("shaper: %s: %w", ifname, err)
		}
		kind, err := shaperRoot(l)
		if err != nil || kind == "" {
			return err
		}
		root := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: shaperHandle(0), Parent: netlink.HANDLE_ROOT}, QdiscType: kind}
		if err := netlink.QdiscDel(root); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("shaper: remove %s from %s: %w", kind, ifname, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	classes, err := d.Classes()
	if err != nil {
		return err
	}
	for _, c := range classes {
		if err := d.SetClass(c); err != nil {
			return err
		}
	}
	return nil
}

// ShaperClassStats are the counters of one HTB class of the shaper.
type ShaperClassStats struct {
	Handle  string `json:"handle"`
	Packets uint32 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	Drops   uint32 `json:"drops"`
	Backlog uint32 `json:"backlog"`
}

// ShaperStats reads the counters of the shaper's classes on ifname (empty
// when it has no shaper).
func (d *Datapath) ShaperStats(ifname string) ([]ShaperClassStats, error) {
	var out []ShaperClassStats
	err := InNetns(d.State.Netns, func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return err
		}
		cs, err := netlink.ClassList(l, netlink.HANDLE_NONE)
		if err != nil {
			return err
		}
		for _, c := range cs {
			a := c.Attrs()
			if a.Statistics == nil || a.Statistics.Basic == nil || a.Statistics.Queue == nil {
				continue
			}
			out = append(out, ShaperClassStats{Handle: netlink.HandleStr(a.Handle), Packets: a.Statistics.Basic.Packets,
				Bytes: a.Statistics.Basic.Bytes, Drops: a.Statistics.Queue.Drops, Backlog: a.Statistics.Queue.Backlog})
		}
		return nil
	})
	return out, err
}
