package main

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/stretchr/testify/require"
)

// delayedTransport holds every outgoing packet for a fixed delay, standing
// in for a slow link (tc netem is not available everywhere).
type delayedTransport struct {
	babel.Transport
	delay time.Duration
	wg    sync.WaitGroup
}

func (d *delayedTransport) Send(dst netip.Addr, pkt []byte) error {
	data := append([]byte{}, pkt...)
	d.wg.Add(1)
	time.AfterFunc(d.delay, func() {
		defer d.wg.Done()
		_ = d.Transport.Send(dst, data)
	})
	return nil
}

func (d *delayedTransport) Close() error {
	d.wg.Wait()
	return d.Transport.Close()
}

// TestBabeldRTTMetric runs our router against babeld on a link where our
// packets take 60 ms, both configured with re6st's RTT parameters
// (max-rtt-penalty 5000, rtt-max 500 ms, rtt-decay 125). babeld's penalty
// must be exactly our formula applied to babeld's RTT, and the two costs of
// the link, each measured from its own RTT samples, must agree closely.
func TestBabeldRTTMetric(t *testing.T) {
	a, r := netns.ForTest(t, "rta"), netns.ForTest(t, "rtr")
	require.NoError(t, netns.Veth(a, "va", r, "ra"))
	dir := t.TempDir()
	sockA := startBabeld(t, a, dir, "va", "", "max-rtt-penalty 5000 rtt-max 500 rtt-decay 125")

	rtt := babel.Re6stRTT
	cfg := babel.DefaultInterfaceConfig(babel.LinkTunnel)
	cfg.HelloInterval, cfg.RTT = interopHello, rtt
	router, err := babel.NewRouter(babel.Config{RouterID: babel.RandomRouterID()})
	require.NoError(t, err)
	t.Cleanup(func() { router.Close() })
	var udp *babel.UDPTransport
	require.Eventually(t, func() bool {
		err = r.Do(func() error {
			var err error
			udp, err = babel.ListenUDP("ra")
			return err
		})
		return err == nil
	}, 10*time.Second, 100*time.Millisecond)
	require.NoError(t, router.AddInterface("ra", cfg, &delayedTransport{Transport: udp, delay: 60 * time.Millisecond}))

	ourAddr, theirAddr := linkLocal(t, r, "ra"), linkLocal(t, a, "va")
	var theirs babeldNeighbour
	var ours babel.NeighbourInfo
	require.Eventually(t, func() bool {
		lines, err := babeldDump(sockA)
		if err != nil {
			return false
		}
		var ok bool
		if theirs, ok = parseBabeldNeighbour(lines, ourAddr); !ok || !theirs.hasRTT {
			return false
		}
		for _, n := range router.Dump().Neighbours {
			if n.Address == theirAddr && n.RTTValid {
				ours = n
				diff := int(ours.Cost) - theirs.cost
				return theirs.rttcost > 0 && theirs.cost < babel.Infinity && ours.Cost < babel.Infinity && diff*diff <= 25*25
			}
		}
		return false
	}, 45*time.Second, 250*time.Millisecond, "costs with RTT converge")
	t.Logf("babeld: rtt %dus rttcost %d cost %d; ours: rtt %dus rttcost %d cost %d",
		theirs.rttUs, theirs.rttcost, theirs.cost, ours.RTTMicros, ours.RTTCost, ours.Cost)
	require.Equal(t, theirs.rttcost, int(rtt.Penalty(theirs.rttUs)), "babeld's penalty is our formula at its RTT")
	require.Equal(t, theirs.cost, theirs.txcost+theirs.rttcost)
	require.Equal(t, ours.Cost, ours.Txcost+ours.RTTCost)
	require.Equal(t, ours.RTTCost, rtt.Penalty(ours.RTTMicros))
}
