package loader

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// MaxClasses is the number of class ids; 0 is "no class".
const MaxClasses = 256

// MaxFlowLeaves is the largest Flows: a class's HTB leaves are minor
// numbers id<<8 | 1..254.
const MaxFlowLeaves = 254

// MaxCountedQueues is the number of TX queues with their own counters.
const MaxCountedQueues = 64

// Class is a traffic class as the data plane applies it to the packets of
// the routes that name it (see docs/traffic-classes.md).
type Class struct {
	ID uint8 `json:"id"`
	// QueueFirst and QueueCount are the underlay TX queues the class's
	// flows are spread over by flow hash; QueueCount 0 leaves the queue to
	// the kernel.
	QueueFirst uint16 `json:"queue_first"`
	QueueCount uint16 `json:"queue_count"`
	DSCP       uint8  `json:"dscp"`
	// Priority is the packets' skb->priority, which qdiscs classify on.
	Priority uint32 `json:"priority"`
	// Rate is the class's shaping rate in bits per second, 0 for none.
	Rate uint64 `json:"rate,omitempty"`
	// Flows is the number of shaper leaves that share the class's rate
	// equally, one flow each (0: the class is one leaf).
	Flows uint16 `json:"flows,omitempty"`
	// Shaped is set by Shape: the packets' priority is then the class's
	// HTB leaf, not Priority. SetClass clears it: shape again.
	Shaped bool `json:"shaped,omitempty"`
}

// Validate checks the fields.
func (c *Class) Validate() error {
	if c.ID == 0 {
		return errors.New("class id 0 is reserved (\"no class\")")
	}
	if c.DSCP > 63 {
		return fmt.Errorf("class %d: DSCP %d is not in 0..63", c.ID, c.DSCP)
	}
	if c.Flows > MaxFlowLeaves {
		return fmt.Errorf("class %d: at most %d flow leaves", c.ID, MaxFlowLeaves)
	}
	if int(c.QueueFirst)+int(c.QueueCount) > 0xffff {
		return fmt.Errorf("class %d: queues %d+%d out of range", c.ID, c.QueueFirst, c.QueueCount)
	}
	return nil
}

// Queues is the class's queue range as "FIRST-LAST", or "-" for none.
func (c *Class) Queues() string {
	if c.QueueCount == 0 {
		return "-"
	}
	return fmt.Sprintf("%d-%d", c.QueueFirst, int(c.QueueFirst)+int(c.QueueCount)-1)
}

// SetClass adds or replaces a class; routes naming it use it at once.
// c.Shaped is ignored: a changed class is unshaped until Shape runs again.
func (d *Datapath) SetClass(c Class) error {
	c.Shaped = false
	return d.putClass(c)
}

func (d *Datapath) putClass(c Class) error {
	if err := c.Validate(); err != nil {
		return err
	}
	key := uint32(c.ID)
	v := datapathTrafficClass{Priority: c.Priority, QueueFirst: c.QueueFirst, QueueCount: c.QueueCount,
		Dscp: c.DSCP, Flags: uint8(datapathClassFlagsCLASS_F_SET), Rate: c.Rate, Buckets: c.Flows}
	if c.Shaped {
		v.Flags |= uint8(datapathClassFlagsCLASS_F_SHAPED)
	}
	return d.maps.Classes.Put(&key, &v)
}

// DeleteClass removes a class: the packets of its routes go out unclassed.
func (d *Datapath) DeleteClass(id uint8) error {
	key := uint32(id)
	var v datapathTrafficClass
	if err := d.maps.Classes.Lookup(&key, &v); err != nil {
		return err
	}
	if v.Flags&uint8(datapathClassFlagsCLASS_F_SET) == 0 {
		return fmt.Errorf("class %d: %w", id, ErrNotFound)
	}
	return d.maps.Classes.Put(&key, &datapathTrafficClass{})
}

// Classes lists the configured classes by id.
func (d *Datapath) Classes() ([]Class, error) {
	var out []Class
	var v datapathTrafficClass
	for id := uint32(1); id < MaxClasses; id++ {
		if err := d.maps.Classes.Lookup(&id, &v); err != nil {
			return nil, err
		}
		if v.Flags&uint8(datapathClassFlagsCLASS_F_SET) == 0 {
			continue
		}
		out = append(out, Class{ID: uint8(id), QueueFirst: v.QueueFirst, QueueCount: v.QueueCount,
			DSCP: v.Dscp, Priority: v.Priority, Rate: v.Rate, Flows: v.Buckets,
			Shaped: v.Flags&uint8(datapathClassFlagsCLASS_F_SHAPED) != 0})
	}
	return out, nil
}

// ClassStats are the packets and bytes the egress program classified into
// a class, and how many of them it refused; summed over CPUs.
type ClassStats struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	Drops   uint64 `json:"drops"`
}

// ClassCounters returns the counters of class id.
func (d *Datapath) ClassCounters(id uint8) (ClassStats, error) {
	key := uint32(id)
	var per []datapathClassStats
	var s ClassStats
	if err := d.maps.ClassCounters.Lookup(&key, &per); err != nil {
		return s, err
	}
	for _, v := range per {
		s.Packets += v.Packets
		s.Bytes += v.Bytes
		s.Drops += v.Drops
	}
	return s, nil
}

// QueueStats are the packets and bytes the egress program steered to one
// TX queue, summed over CPUs.
type QueueStats struct {
	Queue   uint16 `json:"queue"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// QueueCounters returns the counters of the queues that were steered to.
func (d *Datapath) QueueCounters() ([]QueueStats, error) {
	var out []QueueStats
	var per []datapathQueueStats
	for q := uint32(0); q < MaxCountedQueues; q++ {
		if err := d.maps.QueueCounters.Lookup(&q, &per); err != nil {
			return nil, err
		}
		s := QueueStats{Queue: uint16(q)}
		for _, v := range per {
			s.Packets += v.Packets
			s.Bytes += v.Bytes
		}
		if s.Packets > 0 {
			out = append(out, s)
		}
	}
	return out, nil
}

// ClassStatus is a class with its counters, as status shows it.
type ClassStatus struct {
	Class
	Queues string `json:"queues"`
	ClassStats
}

// ClassStatuses lists the classes with their counters.
func (d *Datapath) ClassStatuses() ([]ClassStatus, error) {
	cs, err := d.Classes()
	if err != nil {
		return nil, err
	}
	out := make([]ClassStatus, 0, len(cs))
	for _, c := range cs {
		s, err := d.ClassCounters(c.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, ClassStatus{Class: c, Queues: c.Queues(), ClassStats: s})
	}
	return out, nil
}

// AddOverlayAddress puts one more address (a traffic class's) on the
// overlay device, usable at once (no DAD); an address already there is
// kept.
func (d *Datapath) AddOverlayAddress(p netip.Prefix) error {
	return InNetns(d.State.Netns, func() error {
		l, err := netlink.LinkByName(d.State.Overlay)
		if err != nil {
			return err
		}
		addr := &netlink.Addr{IPNet: prefixIPNet(p), Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrReplace(l, addr); err != nil {
			return fmt.Errorf("address %s on %s: %w", p, d.State.Overlay, err)
		}
		return nil
	})
}

// RemoveOverlayAddress removes an address AddOverlayAddress put (a
// traffic class gone from the network); one already gone is not an error.
func (d *Datapath) RemoveOverlayAddress(p netip.Prefix) error {
	return InNetns(d.State.Netns, func() error {
		l, err := netlink.LinkByName(d.State.Overlay)
		if err != nil {
			return err
		}
		err = netlink.AddrDel(l, &netlink.Addr{IPNet: prefixIPNet(p)})
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("remove %s from %s: %w", p, d.State.Overlay, err)
		}
		return nil
	})
}

// RXPinning says whether an underlay can pin the classes' incoming tunnel
// traffic to RX queues: that needs the NIC's ntuple filters (ethtool -N),
// which `re6st-bpf class pin-rx` programs (PinRX).
type RXPinning struct {
	Interface string `json:"interface"`
	Driver    string `json:"driver"`
	RXQueues  int    `json:"rx_queues"`
	Ntuple    bool   `json:"ntuple"`
	Why       string `json:"why"`
}

// RXPinning reports, for each underlay, what RX queue pinning it allows.
func (d *Datapath) RXPinning() ([]RXPinning, error) {
	var out []RXPinning
	err := InNetns(d.State.Netns, func() error {
		et, err := ethtool.NewEthtool()
		if err != nil {
			return fmt.Errorf("ethtool: %w", err)
		}
		defer et.Close()
		for _, u := range d.State.Underlays() {
			r := RXPinning{Interface: u}
			l, err := netlink.LinkByName(u)
			if err != nil {
				return err
			}
			r.RXQueues = l.Attrs().NumRxQueues
			r.Driver, _ = et.DriverName(u)
			features, err := et.FeaturesWithState(u)
			state, known := features["rx-ntuple-filter"]
			switch {
			case err != nil:
				r.Why = "ethtool features: " + err.Error()
			case !known || !state.Available:
				r.Why = "the NIC has no ntuple filters: incoming traffic lands on the queue RSS (veth: the sender's TX queue) gives it"
			default:
				r.Ntuple = true
				r.Why = "ntuple filters available (active: " + fmt.Sprint(state.Active) + "): re6st-bpf class pin-rx " + u
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}
