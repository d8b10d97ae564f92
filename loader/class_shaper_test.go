package loader_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// shapedPair is A — B with, on A, class 1 (keep-alive: rank 7, 1 Mbit/s)
// for B's 2001:db8:2:1::/64 and class 2 (bulk: rank 0, 15 Mbit/s, 8 flow
// leaves) for the rest of B's prefix, shaped at 16 Mbit/s on A's underlay.
type shapedPair struct {
	a, b      *chain.Node
	keepAlive netip.Addr
	report    *loader.ShapeReport
}

const shapedLinkRate = 16_000_000

func buildShapedPair(t *testing.T) *shapedPair {
	netns.RequireRoot(t)
	c := chain.Build(t, chain.Options{Nodes: 2, Overlay: true, Encap: loader.FOU, Hook: loader.HookTC})
	p := &shapedPair{a: c.Nodes[0], b: c.Nodes[1]}
	d := p.a.Datapath
	require.NoError(t, d.SetClass(loader.Class{ID: 1, DSCP: 46, Priority: 7, Rate: 1_000_000}))
	require.NoError(t, d.SetClass(loader.Class{ID: 2, DSCP: 10, Priority: 0, Rate: 15_000_000, Flows: 8}))
	keepAliveNet := netip.MustParsePrefix("2001:db8:2:1::/64")
	p.keepAlive = keepAliveNet.Addr().Next()
	require.NoError(t, d.AddRoute(keepAliveNet, netip.Prefix{}, loader.Nexthop{Tunnel: 2, Class: 1}))
	require.NoError(t, d.SetRoute(chain.OverlayPrefix(1), netip.Prefix{}, loader.Nexthop{Tunnel: 2, Class: 2}))
	require.NoError(t, p.b.NS.AddrAdd(p.b.Datapath.State.Overlay, netip.PrefixFrom(p.keepAlive, 64)))
	var err error
	p.report, err = d.Shape(p.a.Right, shapedLinkRate)
	require.NoError(t, err)
	t.Cleanup(func() { d.Unshape(p.a.Right) })
	return p
}

// The shaper's tree and the switch of the classes to it; unshape restores
// the classes' own priority.
func TestClassShaperTree(t *testing.T) {
	p := buildShapedPair(t)
	t.Logf("shaper: %+v", p.report)
	require.Len(t, p.report.Classes, 2)
	require.Equal(t, loader.ShapedClass{ID: 1, Handle: "1:100", Rate: 1_000_000, HTBPrio: 0, Leaves: 1}, p.report.Classes[0])
	require.Equal(t, loader.ShapedClass{ID: 2, Handle: "1:200", Rate: 15_000_000, HTBPrio: 7, Leaves: 8}, p.report.Classes[1])
	out, err := p.a.NS.Run("tc", "class", "show", "dev", p.a.Right)
	require.NoError(t, err)
	for _, h := range []string{"1:1 ", "1:ffff", "1:100", "1:200", "1:201", "1:208"} {
		require.Contains(t, out, "class htb "+h, out)
	}
	cs, err := p.a.Datapath.Classes()
	require.NoError(t, err)
	for _, c := range cs {
		require.True(t, c.Shaped, "class %d", c.ID)
	}
	require.NoError(t, p.a.Datapath.Unshape(p.a.Right))
	out, err = p.a.NS.Run("tc", "qdisc", "show", "dev", p.a.Right)
	require.NoError(t, err)
	require.NotContains(t, out, "htb")
	cs, err = p.a.Datapath.Classes()
	require.NoError(t, err)
	for _, c := range cs {
		require.False(t, c.Shaped, "class %d", c.ID)
	}
}

// While 8 UDP flows of the bulk class offer 1, 2, … 8 times their fair
// share of the link, (1) they get equal shares (Jain's index), (2) the
// keep-alive class's round trips stay short: it is dequeued before the
// bulk backlog, which holds far more than the keep-alive delay.
func TestClassShaperPriorityAndFairness(t *testing.T) {
	p := buildShapedPair(t)
	const flows = 8
	fair := uint64(shapedLinkRate / flows)
	res := runBulkFlows(t, p.a.NS, p.b.NS, p.b.Overlay, flows, fair, 3*time.Second, func() {
		rtts := pingRTTs(t, p.a.NS, p.keepAlive, 50)
		p99 := percentile(rtts, 0.99)
		t.Logf("keep-alive RTT p50 %v p99 %v", percentile(rtts, 0.5), p99)
		st, err := p.a.Datapath.ShaperStats(p.a.Right)
		require.NoError(t, err)
		var backlog uint32
		for _, s := range st {
			backlog += s.Backlog
		}
		bulkDelay := time.Duration(float64(backlog) * 8 / shapedLinkRate * float64(time.Second))
		t.Logf("bulk backlog %d bytes = %v at the link rate", backlog, bulkDelay)
		require.Greater(t, bulkDelay, 100*time.Millisecond, "the bulk class is not congested")
		require.Less(t, p99, 30*time.Millisecond, "keep-alive waited behind the bulk class")
	})
	t.Logf("bulk flows received %v bytes", res)
	j := jain(res)
	t.Logf("Jain's index %.4f", j)
	require.GreaterOrEqual(t, j, 0.9)
}

// runBulkFlows sends, from a, flows UDP flows to addr on b, flow i at
// (i+1) × fair bits per second, for d; during sends, it calls during. It
// returns the bytes b received per flow.
func runBulkFlows(t *testing.T, a, b *netns.NS, addr netip.Addr, flows int, fair uint64, d time.Duration, during func()) []uint64 {
	const size = 1000
	rx := make([]*net.UDPConn, flows)
	tx := make([]*net.UDPConn, flows)
	for i := range rx {
		require.NoError(t, b.Do(func() (err error) {
			rx[i], err = net.ListenUDP("udp6", &net.UDPAddr{IP: addr.AsSlice(), Port: 7001 + i})
			return err
		}))
		defer rx[i].Close()
		require.NoError(t, a.Do(func() (err error) {
			tx[i], err = net.DialUDP("udp6", nil, rx[i].LocalAddr().(*net.UDPAddr))
			return err
		}))
		defer tx[i].Close()
		// One packet each, in turn, so that each flow takes its own
		// shaper leaf.
		_, err := tx[i].Write(make([]byte, size))
		require.NoError(t, err)
	}
	got := make([]uint64, flows)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*flows)
	for i := range flows {
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, 2*size)
			for {
				n, err := rx[i].Read(buf)
				if err != nil {
					if !errors.Is(err, net.ErrClosed) && !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
						errs <- err
					}
					return
				}
				got[i] += uint64(n)
			}
		}()
		go func() {
			defer wg.Done()
			errs <- paceUDP(ctx, tx[i], size, uint64(i+1)*fair)
		}()
	}
	during()
	<-ctx.Done()
	// Let what the shaper holds drain, then stop the readers.
	for i := range rx {
		rx[i].SetReadDeadline(time.Now().Add(time.Second))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	return got
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// paceUDP writes size-byte datagrams at rate bits per second until ctx
// ends.
func paceUDP(ctx context.Context, c *net.UDPConn, size int, rate uint64) error {
	buf := make([]byte, size)
	start := time.Now()
	var sent uint64
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		due := uint64(time.Since(start).Seconds() * float64(rate) / 8)
		// A write that blocked (the socket's buffer full) is not made
		// up for later.
		sent = max(sent, due-min(due, rate/8/10))
		for ; sent < due && ctx.Err() == nil; sent += uint64(size) {
			if _, err := c.Write(buf); err != nil {
				return err
			}
		}
	}
}

var pingTime = regexp.MustCompile(`time=([0-9.]+) ms`)

// pingRTTs pings addr from ns n times, 20 ms apart, and returns the round
// trips of the replies.
func pingRTTs(t *testing.T, ns *netns.NS, addr netip.Addr, n int) []time.Duration {
	out, err := ns.Run("ping", "-6", "-n", "-c", strconv.Itoa(n), "-i", "0.02", "-W", "2", addr.String())
	require.NoError(t, err, out)
	var rtts []time.Duration
	for _, m := range pingTime.FindAllStringSubmatch(out, -1) {
		ms, err := strconv.ParseFloat(m[1], 64)
		require.NoError(t, err)
		rtts = append(rtts, time.Duration(ms*float64(time.Millisecond)))
	}
	require.Len(t, rtts, n, "lost keep-alive replies: %s", out)
	return rtts
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// jain is Jain's fairness index of xs: 1 when all are equal, 1/n when one
// takes everything.
func jain(xs []uint64) float64 {
	var sum, sq float64
	for _, x := range xs {
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	if sq == 0 {
		return 0
	}
	return sum * sum / (float64(len(xs)) * sq)
}
