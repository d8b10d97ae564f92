package loader

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

// Keep-alive on queues 0-1 (DSCP 46), bulk on 2-7 (DSCP 10: 4 of its 6
// queues, a power of two, take its FOU flows), a class without DSCP and
// one without queues get no rule.
func TestRXRules(t *testing.T) {
	rules, skipped := rxRules([]Class{
		{ID: 1, DSCP: 46, QueueFirst: 0, QueueCount: 2},
		{ID: 2, DSCP: 10, QueueFirst: 2, QueueCount: 6},
		{ID: 3, QueueFirst: 0, QueueCount: 2},
		{ID: 4, DSCP: 12},
	}, 6715)
	require.Len(t, skipped, 2)
	require.Equal(t, []RXRule{
		{Class: 1, Flow: "udp4", DSCP: 46, Port: 6715, SportMask: 1, Sport: 0, Queue: 0},
		{Class: 1, Flow: "udp4", DSCP: 46, Port: 6715, SportMask: 1, Sport: 1, Queue: 1},
		{Class: 1, Flow: "ip4", DSCP: 46, Queue: 0},
		{Class: 2, Flow: "udp4", DSCP: 10, Port: 6715, SportMask: 3, Sport: 0, Queue: 2},
		{Class: 2, Flow: "udp4", DSCP: 10, Port: 6715, SportMask: 3, Sport: 1, Queue: 3},
		{Class: 2, Flow: "udp4", DSCP: 10, Port: 6715, SportMask: 3, Sport: 2, Queue: 4},
		{Class: 2, Flow: "udp4", DSCP: 10, Port: 6715, SportMask: 3, Sport: 3, Queue: 5},
		{Class: 2, Flow: "ip4", DSCP: 10, Queue: 2},
	}, rules)
	require.Equal(t, "ethtool -N eth0 flow-type udp4 dst-port 6715 src-port 1 m 0xfffe tos 0xb8 m 0x3 action 1", rules[1].Ethtool("eth0"))
	require.Equal(t, "ethtool -N eth0 flow-type ip4 l4proto 47 tos 0x28 m 0x3 action 2", rules[7].Ethtool("eth0"))
}

// The rules' struct ethtool_rxnfc, field by field (linux/ethtool.h).
func TestRXRuleLayout(t *testing.T) {
	ne := binary.NativeEndian
	b := RXRule{Class: 1, Flow: "udp4", DSCP: 46, Port: 6715, SportMask: 1, Sport: 1, Queue: 1}.rxnfc()
	require.Equal(t, uint32(0x32), ne.Uint32(b[0:]), "cmd ETHTOOL_SRXCLSRLINS")
	fs := b[16:]
	require.Equal(t, uint32(2), ne.Uint32(fs[0:]), "fs.flow_type UDP_V4_FLOW")
	require.Equal(t, []byte{0, 1, 0x1a, 0x3b, 0xb8}, fs[4+8:4+13], "h_u.tcp_ip4_spec psrc, pdst (big endian), tos")
	require.Equal(t, []byte{0, 1, 0xff, 0xff, 0xfc}, fs[76+8:76+13], "m_u: the source port's low bit, the port, the DSCP bits")
	require.Equal(t, uint64(1), ne.Uint64(fs[152:]), "ring_cookie: the queue")
	require.Equal(t, uint32(0xffffffff), ne.Uint32(fs[160:]), "location RX_CLS_LOC_ANY")

	g := RXRule{Class: 1, Flow: "ip4", DSCP: 46, Queue: 3}.rxnfc()
	fs = g[16:]
	require.Equal(t, uint32(0x0d), ne.Uint32(fs[0:]), "IP_USER_FLOW")
	require.Equal(t, []byte{0xb8, 1, 47}, fs[4+12:4+15], "h_u.usr_ip4_spec tos, ip_ver, proto GRE")
	require.Equal(t, []byte{0xfc, 0, 0xff}, fs[76+12:76+15])
	require.Equal(t, uint64(3), ne.Uint64(fs[152:]))
}

// veth has no ntuple filters: the check says so, naming the driver.
func TestNtupleStateOnVeth(t *testing.T) {
	ns := netns.ForTest(t, "ntp")
	require.NoError(t, netns.VethQueues(ns, "na", ns, "nb", 4))
	err := ns.Do(func() error { return ntupleState("na") })
	require.ErrorIs(t, err, ErrNoNtuple)
	require.Contains(t, err.Error(), "driver veth")
	require.False(t, errors.Is(ns.Do(func() error { return ntupleState("nothere") }), ErrNoNtuple))
}
