package loader

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// Keep-alive (priority 7) on queues 0-1, two bulk classes of priority 0 on
// 4-7, 8 TX queues: tc 0 = 0-1 (priority 7), tc 1 = 2-3 (unclassed: every
// priority but 0 and 7), tc 2 = 4-7 (priority 0, classes 2 and 3).
func TestMqprioPlan(t *testing.T) {
	classes := []Class{
		{ID: 1, Priority: 7, QueueFirst: 0, QueueCount: 2},
		{ID: 2, Priority: 0, QueueFirst: 4, QueueCount: 4},
		{ID: 3, Priority: 0, QueueFirst: 4, QueueCount: 4},
	}
	o, tcs, err := mqprioPlan(classes, 8)
	require.NoError(t, err)
	require.Equal(t, uint8(3), o.NumTC)
	require.Equal(t, [16]uint16{2, 2, 4}, o.Count)
	require.Equal(t, [16]uint16{0, 2, 4}, o.Offset)
	require.Equal(t, [16]uint8{2, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1}, o.PrioTCMap)
	require.Equal(t, []MqprioTC{
		{TC: 0, Queues: "0-1", Priorities: []int{7}, Classes: []int{1}},
		{TC: 1, Queues: "2-3", Priorities: []int{1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15}, Classes: []int{}},
		{TC: 2, Queues: "4-7", Priorities: []int{0}, Classes: []int{2, 3}},
	}, tcs)

	// struct tc_mqprio_qopt: num_tc, prio_tc_map[16], hw, count[16], offset[16].
	b := o.encode()
	require.Len(t, b, 82)
	require.Equal(t, byte(3), b[0])
	require.Equal(t, byte(2), b[1], "priority 0 → tc 2")
	require.Equal(t, byte(0), b[17], "hw 0")
	require.Equal(t, uint16(4), binary.NativeEndian.Uint16(b[18+2*2:]), "count[2]")
	require.Equal(t, uint16(4), binary.NativeEndian.Uint16(b[50+2*2:]), "offset[2]")
}

func TestMqprioPlanRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		classes []Class
		queues  int
	}{
		"no queues":          {[]Class{{ID: 1, Priority: 7}}, 8},
		"tc handle priority": {[]Class{{ID: 1, Priority: 0x10100, QueueCount: 2}}, 8},
		"beyond the device":  {[]Class{{ID: 1, Priority: 7, QueueFirst: 6, QueueCount: 4}}, 8},
		"same priority, other queues": {[]Class{{ID: 1, Priority: 7, QueueCount: 2},
			{ID: 2, Priority: 7, QueueFirst: 2, QueueCount: 2}}, 8},
		"overlap": {[]Class{{ID: 1, Priority: 7, QueueCount: 4},
			{ID: 2, Priority: 0, QueueFirst: 2, QueueCount: 2}}, 8},
		"no queue left": {[]Class{{ID: 1, Priority: 7, QueueCount: 2},
			{ID: 2, Priority: 0, QueueFirst: 2, QueueCount: 6}}, 8},
	} {
		_, _, err := mqprioPlan(c.classes, c.queues)
		require.Error(t, err, name)
		t.Logf("%s: %v", name, err)
	}
}

// chooseRoot takes mqprio only when the kernel has it, the device is
// multi-queue, no class needs software shaping and the plan holds.
func TestChooseRoot(t *testing.T) {
	with := []QdiscSupport{{Name: "mqprio", Available: true}, {Name: "htb", Available: true}}
	without := []QdiscSupport{{Name: "mqprio", Why: "not in this kernel"}, {Name: "htb", Available: true}}
	queued := []Class{{ID: 1, Priority: 7, QueueCount: 2}, {ID: 2, Priority: 0, QueueFirst: 4, QueueCount: 4}}
	_, tcs, why := chooseRoot(with, 8, queued)
	require.Empty(t, why)
	require.Len(t, tcs, 3)
	for name, c := range map[string]struct {
		probes  []QdiscSupport
		queues  int
		classes []Class
		want    string
	}{
		"kernel":    {without, 8, queued, "mqprio: not in this kernel"},
		"one queue": {with, 1, queued, "mqprio: the device has one TX queue"},
		"rate": {with, 8, []Class{{ID: 1, Priority: 7, QueueCount: 2, Rate: 1e6}},
			"mqprio: class 1 has a rate or flows, which only the HTB shaper enforces"},
		"plan": {with, 8, []Class{{ID: 1, Priority: 7}}, "mqprio: class 1 has no TX queues (class set --queues)"},
	} {
		_, _, why := chooseRoot(c.probes, c.queues, c.classes)
		require.Equal(t, c.want, why, name)
	}
}
