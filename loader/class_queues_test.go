package loader_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

const (
	rxQueues   = 8
	dscpValues = 64
)

// rxCounter is an XDP program that counts the IPv4 frames an interface
// receives by RX queue and outer DSCP: counts[queue*64 + dscp].
type rxCounter struct {
	counts *ebpf.Map
}

func attachRXCounter(t *testing.T, ns *netns.NS, ifname string) *rxCounter {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: rxQueues * dscpValues})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 16),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Byte), // EtherType 0x0800
		asm.JNE.Imm(asm.R5, 0x08, "pass"),
		asm.LoadMem(asm.R5, asm.R2, 13, asm.Byte),
		asm.JNE.Imm(asm.R5, 0x00, "pass"),
		asm.LoadMem(asm.R5, asm.R2, 15, asm.Byte), // TOS
		asm.RSh.Imm(asm.R5, 2),
		asm.LoadMem(asm.R7, asm.R6, 16, asm.Word), // rx_queue_index
		asm.LSh.Imm(asm.R7, 6),
		asm.Add.Reg(asm.R7, asm.R5),
		asm.StoreMem(asm.RFP, -4, asm.R7, asm.Word),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 2).WithSymbol("pass"), // XDP_PASS
		asm.Return(),
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, Instructions: insns, License: "GPL"})
	require.NoError(t, err)
	t.Cleanup(func() { prog.Close() })
	idx, err := ns.Ifindex(ifname)
	require.NoError(t, err)
	var l link.Link
	require.NoError(t, ns.Do(func() (err error) {
		l, err = link.AttachXDP(link.XDPOptions{Program: prog, Interface: idx, Flags: link.XDPDriverMode})
		return err
	}))
	t.Cleanup(func() { l.Close() })
	return &rxCounter{counts: m}
}

// byQueue returns the frames counted per RX queue with the given DSCP.
func (c *rxCounter) byQueue(t *testing.T, dscp uint8) map[int]uint64 {
	out := map[int]uint64{}
	for q := 0; q < rxQueues; q++ {
		var v uint64
		require.NoError(t, c.counts.Lookup(uint32(q*dscpValues+int(dscp)), &v))
		if v > 0 {
			out[q] = v
		}
	}
	return out
}

// A — B over a veth with 8 TX and 8 RX queues. On A, class 1 (keep-alive:
// queues 0-1, EF) covers B's 2001:db8:2:1::/64 and class 2 (bulk: queues
// 2-7, AF11) the rest of B's prefix. While TCP flows of class 2 saturate
// the link, UDP flows of class 1 arrive on B only on RX queues 0 and 1
// with DSCP EF, none lost; the bulk only on queues 2-7 with AF11.
func TestClassQueuesOnVeth(t *testing.T) {
	const maxBulkFlows = 12
	netns.RequireRoot(t)
	c := chain.Build(t, chain.Options{Nodes: 2, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC, Queues: rxQueues})
	a, b := c.Nodes[0], c.Nodes[1]
	const keepAliveDSCP, bulkDSCP = 46, 10
	require.NoError(t, a.Datapath.SetClass(loader.Class{ID: 1, QueueFirst: 0, QueueCount: 2, DSCP: keepAliveDSCP, Priority: 6}))
	require.NoError(t, a.Datapath.SetClass(loader.Class{ID: 2, QueueFirst: 2, QueueCount: 6, DSCP: bulkDSCP}))
	keepAliveNet := netip.MustParsePrefix("2001:db8:2:1::/64")
	keepAliveAddr := keepAliveNet.Addr().Next()
	require.NoError(t, a.Datapath.AddRoute(keepAliveNet, netip.Prefix{}, loader.Nexthop{Tunnel: 2, Class: 1}))
	require.NoError(t, a.Datapath.SetRoute(chain.OverlayPrefix(1), netip.Prefix{}, loader.Nexthop{Tunnel: 2, Class: 2}))
	require.NoError(t, b.NS.AddrAdd(b.Datapath.State.Overlay, netip.PrefixFrom(keepAliveAddr, 64)))

	rx := attachRXCounter(t, b.NS, b.Left)

	// Keep-alives go on until the bulk transfers are done.
	const flows = 32
	stop := make(chan struct{})
	sent := make(chan keepAliveResult, 1)
	go func() { sent <- sendKeepAlives(a.NS, keepAliveAddr, flows, stop) }()
	// Four bulk transfers, each a flow whose queue the flow hash picks
	// among the class's 6; more (up to 12) while they all took the same
	// queue, which 4 flows do once in 216 runs: 12, once in 3.6e8.
	for i := 0; i < 4 || i < maxBulkFlows && len(rx.byQueue(t, bulkDSCP)) < 2; i++ {
		tcpTransfer(t, a.NS, b.NS, b.Overlay, 16<<20)
	}
	close(stop)
	res := <-sent
	require.NoError(t, res.err)
	require.Greater(t, res.sent, uint64(flows))

	ka := rx.byQueue(t, keepAliveDSCP)
	bulk := rx.byQueue(t, bulkDSCP)
	t.Logf("keep-alive frames by RX queue %v, bulk %v", ka, bulk)
	var kaTotal uint64
	for q, n := range ka {
		require.Contains(t, []int{0, 1}, q, "keep-alive frames on queue %d", q)
		kaTotal += n
	}
	require.Len(t, ka, 2, "%d keep-alive flows use both of the class's queues", flows)
	require.Equal(t, res.sent, kaTotal, "every keep-alive frame arrived")
	for q := range bulk {
		require.GreaterOrEqual(t, q, 2, "bulk frames on queue %d", q)
	}
	require.Greater(t, len(bulk), 1, "up to %d bulk flows over 6 queues", maxBulkFlows)
	require.Empty(t, rx.byQueue(t, 0), "no frame from A left without a class")

	rxp, err := b.Datapath.RXPinning()
	require.NoError(t, err)
	require.Equal(t, []loader.RXPinning{{Interface: b.Left, Driver: "veth", RXQueues: rxQueues, Ntuple: false, Why: rxp[0].Why}}, rxp)
	require.Contains(t, rxp[0].Why, "no ntuple filters")

	classes, err := a.Datapath.ClassStatuses()
	require.NoError(t, err)
	require.Len(t, classes, 2)
	require.Equal(t, res.sent, classes[0].Packets)
	require.Greater(t, classes[1].Packets, uint64(1000))
}

type keepAliveResult struct {
	sent uint64
	err  error
}

// sendKeepAlives sends datagrams from ns to addr (port 9, nobody listens) on
// flows UDP flows in turn until stop is closed, at least one round.
func sendKeepAlives(ns *netns.NS, addr netip.Addr, flows int, stop <-chan struct{}) keepAliveResult {
	var res keepAliveResult
	conns := make([]*net.UDPConn, flows)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	for i := range conns {
		if res.err = ns.Do(func() (err error) {
			conns[i], err = net.ListenUDP("udp6", nil)
			return err
		}); res.err != nil {
			return res
		}
	}
	// Unconnected sockets: the port unreachable errors do not stop them.
	dst := &net.UDPAddr{IP: addr.AsSlice(), Port: 9}
	for round := 0; ; round++ {
		for f, c := range conns {
			if _, res.err = c.WriteToUDP([]byte(fmt.Sprintf("keep-alive %d/%d", f, round)), dst); res.err != nil {
				return res
			}
			res.sent++
		}
		select {
		case <-stop:
			return res
		case <-time.After(time.Millisecond):
		}
	}
}
