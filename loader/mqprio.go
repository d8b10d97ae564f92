package loader

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// mqprio maps skb->priority to traffic classes of the device (tc), each a
// range of TX queues (tc-mqprio(8)). The shaper uses it, when the kernel
// has it, to give each class its hardware queues: the egress program puts
// a class's packets on one of its queues with the class's priority, and
// the priority's tc is the range holding that queue, so the kernel's queue
// pick (skb_tx_hash within the tc's range) keeps the program's choice.

// mqprioOptions is the kernel's struct tc_mqprio_qopt.
type mqprioOptions struct {
	NumTC     uint8
	PrioTCMap [16]uint8 // skb->priority & 15 → tc
	HW        uint8     // 0: the kernel's software mapping
	Count     [16]uint16
	Offset    [16]uint16
}

// encode lays the options out as struct tc_mqprio_qopt (82 bytes, host
// order).
func (o mqprioOptions) encode() []byte {
	b := make([]byte, 0, 82)
	b = append(b, o.NumTC)
	b = append(b, o.PrioTCMap[:]...)
	b = append(b, o.HW)
	for _, v := range o.Count {
		b = binary.NativeEndian.AppendUint16(b, v)
	}
	for _, v := range o.Offset {
		b = binary.NativeEndian.AppendUint16(b, v)
	}
	return b
}

// MqprioTC is one mqprio traffic class of the shaper: its TX queues, the
// priorities mapped to it and the re6st classes it serves (none: the
// unclassed traffic).
type MqprioTC struct {
	TC         int    `json:"tc"`
	Queues     string `json:"queues"`
	Priorities []int  `json:"priorities"`
	Classes    []int  `json:"classes"`
}

// mqprioPlan maps classes onto the txQueues of a device: one tc per
// distinct queue range of a class, and one for unclassed traffic on the
// first queues no class uses; priority p goes to the tc of the classes of
// priority p, every other priority to the unclassed tc. The kernel wants
// tcs in queue order without overlap, so the plan fails, saying why, when
// a class has no queues or a tc class handle as priority, two classes
// share a priority but not their queues, ranges overlap without being
// equal, or every queue is a class's.
func mqprioPlan(classes []Class, txQueues int) (mqprioOptions, []MqprioTC, error) {
	var o mqprioOptions
	type span struct{ first, count uint16 }
	used := make([]bool, txQueues)
	var spans []span
	prioSpan := map[uint32]span{}
	for _, c := range classes {
		switch {
		case c.QueueCount == 0:
			return o, nil, fmt.Errorf("class %d has no TX queues (class set --queues)", c.ID)
		case c.Priority > 15:
			return o, nil, fmt.Errorf("class %d's priority is a tc class handle, which mqprio cannot map", c.ID)
		case int(c.QueueFirst)+int(c.QueueCount) > txQueues:
			return o, nil, fmt.Errorf("class %d's queues %s are beyond the device's %d", c.ID, c.Queues(), txQueues)
		}
		s := span{c.QueueFirst, c.QueueCount}
		if p, ok := prioSpan[c.Priority]; ok && p != s {
			return o, nil, fmt.Errorf("classes of priority %d have different queues", c.Priority)
		}
		prioSpan[c.Priority] = s
		if !slices.Contains(spans, s) {
			for _, t := range spans {
				if s.first < t.first+t.count && t.first < s.first+s.count {
					return o, nil, fmt.Errorf("class %d's queues %s overlap another class's", c.ID, c.Queues())
				}
			}
			spans = append(spans, s)
		}
		for q := s.first; q < s.first+s.count; q++ {
			used[q] = true
		}
	}
	// The unclassed traffic: the first run of queues no class uses.
	free := slices.Index(used, false)
	if free < 0 {
		return o, nil, fmt.Errorf("every TX queue belongs to a class: none left for unclassed traffic")
	}
	n := 0
	for free+n < txQueues && !used[free+n] {
		n++
	}
	unclassed := span{uint16(free), uint16(n)}
	spans = append(spans, unclassed)
	slices.SortFunc(spans, func(a, b span) int { return int(a.first) - int(b.first) })
	if len(spans) > 16 {
		return o, nil, fmt.Errorf("%d queue ranges: mqprio has 16 tcs at most", len(spans))
	}
	o.NumTC = uint8(len(spans))
	tcs := make([]MqprioTC, len(spans))
	tcOf := map[span]int{}
	for i, s := range spans {
		o.Offset[i], o.Count[i] = s.first, s.count
		tcOf[s] = i
		tcs[i] = MqprioTC{TC: i, Queues: fmt.Sprintf("%d-%d", s.first, s.first+s.count-1), Priorities: []int{}, Classes: []int{}}
	}
	for p := range o.PrioTCMap {
		tc := tcOf[unclassed]
		if s, ok := prioSpan[uint32(p)]; ok {
			tc = tcOf[s]
		}
		o.PrioTCMap[p] = uint8(tc)
		tcs[tc].Priorities = append(tcs[tc].Priorities, p)
	}
	for _, c := range classes {
		tc := tcOf[span{c.QueueFirst, c.QueueCount}]
		tcs[tc].Classes = append(tcs[tc].Classes, int(c.ID))
	}
	return o, tcs, nil
}

// addMqprio makes mqprio with options o the root qdisc (handle 1:) of
// device idx.
func addMqprio(idx int, o mqprioOptions) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWQDISC, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(&nl.TcMsg{Family: nl.FAMILY_ALL, Ifindex: int32(idx), Handle: shaperHandle(0), Parent: netlink.HANDLE_ROOT})
	req.AddData(nl.NewRtAttr(nl.TCA_KIND, nl.ZeroTerminated("mqprio")))
	req.AddData(nl.NewRtAttr(nl.TCA_OPTIONS, o.encode()))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}
