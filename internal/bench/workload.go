package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

const iperfPort = "5201"

// withIperfServer runs a one-test iperf3 server on the last node, pinned
// to the receiver's CPU, waits until it listens, and runs fn; the server is
// stopped and reaped when fn returns (fn's ctx is cancelled then).
func (t *topology) withIperfServer(fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	last := t.chain.Last().NS
	srv := last.Command(ctx, on(t.cpus.receiver, "iperf3", "-s", "-1", "-B", t.dst.String(), "-p", iperfPort)...)
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { cancel(); srv.Wait() }()
	if !waitFor(2*time.Second, func() bool {
		out, err := last.Run("ss", "-Hltn", "sport = :"+iperfPort)
		return err == nil && len(out) > 0
	}) {
		return errors.New("iperf3 server does not listen")
	}
	return fn(ctx)
}

// waitFor polls cond every 10 ms until it holds (true) or timeout passes
// (false).
func waitFor(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// iperfSlack bounds what an iperf3 client may take beyond its test: the
// connection and the exchange of results. A chain that loses the traffic
// makes the test fail by then instead of hanging.
const iperfSlack = 10 * time.Second

// iperf runs a TCP test of streams streams for seconds from the first
// node, pinned to the sender's CPU.
func (t *topology) iperf(seconds, streams int) (r Iperf, err error) {
	err = t.withIperfServer(func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+iperfSlack)
		defer cancel()
		cmd := t.chain.First().NS.Command(ctx, on(t.cpus.sender, "iperf3", "-J", "-c", t.dst.String(), "-p", iperfPort,
			"--connect-timeout", "3000", "-t", strconv.Itoa(seconds), "-P", strconv.Itoa(streams))...)
		out, err := cmd.Output()
		var perr error
		if r, perr = ParseIperf(out); perr != nil {
			return errors.Join(perr, err)
		}
		return nil
	})
	return r, err
}

// ping sends count echo requests 1 ms apart from the sender's CPU and
// returns the RTTs (µs); fewer than half the replies is an error.
func (t *topology) ping(count int) ([]float64, error) {
	out, err := t.chain.First().NS.Run(on(t.cpus.sender, "ping", "-n", "-i", "0.001", "-W", "1",
		"-w", strconv.Itoa(count/1000+5), "-c", strconv.Itoa(count), t.dst.String())...)
	rtts := ParsePing(out)
	if len(rtts) < count/2 {
		return nil, fmt.Errorf("ping: %d of %d replies (%s)", len(rtts), count, pingSummary(out, err))
	}
	return rtts, nil
}

// pingLoaded pings while one TCP stream runs, once the stream's data
// connection is established.
func (t *topology) pingLoaded(count int) (rtts []float64, err error) {
	err = t.withIperfServer(func(ctx context.Context) error {
		ctx, stop := context.WithCancel(ctx)
		defer stop()
		secs := count/1000 + 3 // outlasts the pings; killed when they end
		client := t.chain.First().NS.Command(ctx, on(t.cpus.sender, "iperf3", "-c", t.dst.String(), "-p", iperfPort,
			"--connect-timeout", "3000", "-t", strconv.Itoa(secs))...)
		if err := client.Start(); err != nil {
			return err
		}
		defer func() { stop(); client.Wait() }()
		if err := t.streaming(5 * time.Second); err != nil {
			return err
		}
		var err error
		rtts, err = t.ping(count)
		return err
	})
	return rtts, err
}

// streaming waits until the first node has iperf3's control and data
// connections established: the stream runs.
func (t *topology) streaming(timeout time.Duration) error {
	if !waitFor(timeout, func() bool {
		out, err := t.chain.First().NS.Run("ss", "-Htn", "state", "established", "dport = :"+iperfPort)
		return err == nil && strings.Count(out, "\n") >= 2
	}) {
		return fmt.Errorf("no iperf3 stream established after %s", timeout)
	}
	return nil
}

// clockTicks is USER_HZ, the unit of /proc/stat (100 on Linux).
const clockTicks = 100

func cpuBusy() (uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	busy, _, err := ParseProcStat(string(b))
	return busy, err
}

// cpuTime runs fn and returns the CPU time (all CPUs, system-wide) spent
// meanwhile.
func cpuTime(fn func() error) (time.Duration, error) {
	before, err := cpuBusy()
	if err != nil {
		return 0, err
	}
	if err := fn(); err != nil {
		return 0, err
	}
	after, err := cpuBusy()
	return time.Duration(after-before) * time.Second / clockTicks, err
}

// Live frames: BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES runs an XDP
// program on frames from a page pool and carries out its verdict; XDP_TX
// transmits through the sending interface's XDP transmit (for veth:
// straight into the peer's NAPI ring; for TAP: into the reader's queue).
// Pages are recycled with whatever the receivers wrote into them (a
// forwarding router rewrites the Ethernet header in place, the data plane
// the outer headers), so the program copies the frame from a map into the
// packet on every run before returning XDP_TX.

// maxFrame bounds the frames the generator sends.
const maxFrame = 256

// xdpMd is struct xdp_md, the context of a live-frame run.
type xdpMd struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// genChunk bounds one BPF_PROG_RUN call.
const genChunk = 100_000

// generatorProgram copies n bytes of tmpl's single value into the packet,
// adds one to count's and transmits it. The count is exact where the
// repeat is not: the syscall restarts a run that a signal interrupts.
func generatorProgram(tmpl, count *ebpf.Map, n int) (*ebpf.Program, error) {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, tmpl.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word), // data
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word), // data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, int32(n)),
		asm.JGT.Reg(asm.R4, asm.R3, "drop"),
	}
	for off := 0; off < n; {
		size, w := asm.DWord, 8
		for n-off < w {
			size, w = map[int]asm.Size{4: asm.Word, 2: asm.Half, 1: asm.Byte}[w/2], w/2
		}
		insns = append(insns, asm.LoadMem(asm.R5, asm.R0, int16(off), size), asm.StoreMem(asm.R2, int16(off), asm.R5, size))
		off += w
	}
	insns = append(insns,
		asm.LoadMapPtr(asm.R1, count.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 3), // XDP_TX
		asm.Return(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("drop"), // XDP_DROP
		asm.Return(),
	)
	return ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL", Instructions: insns})
}

// sendFrames transmits about n copies of frame on dev in ns at the
// kernel's speed, from a thread pinned to cpu, and returns how many it
// sent.
func sendFrames(ns *netns.NS, dev string, cpu int, frame []byte, n int) (uint64, error) {
	if len(frame) > maxFrame {
		return 0, fmt.Errorf("generator: frame of %d bytes (at most %d)", len(frame), maxFrame)
	}
	tmpl, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: maxFrame, MaxEntries: 1})
	if err != nil {
		return 0, fmt.Errorf("generator map: %w", err)
	}
	defer tmpl.Close()
	count, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		return 0, fmt.Errorf("generator map: %w", err)
	}
	defer count.Close()
	var value [maxFrame]byte
	copy(value[:], frame)
	if err := tmpl.Put(uint32(0), value); err != nil {
		return 0, err
	}
	prog, err := generatorProgram(tmpl, count, len(frame))
	if err != nil {
		return 0, fmt.Errorf("generator program: %w", err)
	}
	defer prog.Close()
	idx, _, err := linkInfo(ns, dev)
	if err != nil {
		return 0, err
	}
	err = ns.Do(func() error {
		return onCPU(cpu, func() error {
			for done := 0; done < n; done += genChunk {
				_, err := prog.Run(&ebpf.RunOptions{
					Data: frame, Repeat: uint32(min(genChunk, n-done)), Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES,
					Context: &xdpMd{DataEnd: uint32(len(frame)), IngressIfindex: uint32(idx)},
				})
				if err != nil {
					return fmt.Errorf("live frames on %s: %w", dev, err)
				}
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	var sent uint64
	err = count.Lookup(uint32(0), &sent)
	return sent, err
}

// udpNoPorts reads Udp6NoPorts (IPv4 variants: Udp NoPorts) on the last
// node: the generator's datagrams that reached its stack (nothing listens
// on their port).
func (t *topology) udpNoPorts() (uint64, error) {
	var n uint64
	err := t.chain.Last().NS.Do(func() error {
		if t.v.ipv4 {
			b, err := os.ReadFile("/proc/thread-self/net/snmp")
			if err != nil {
				return err
			}
			n, err = ParseSnmp(string(b), "Udp", "NoPorts")
			return err
		}
		b, err := os.ReadFile("/proc/thread-self/net/snmp6")
		if err != nil {
			return err
		}
		n, err = ParseSnmp6(string(b), "Udp6NoPorts")
		return err
	})
	return n, err
}

// withGRO runs fn with GRO on dev in ns, and restores the setting after.
func withGRO(ns *netns.NS, dev string, fn func() error) error {
	out, err := ns.Run("ethtool", "-k", dev)
	if err != nil {
		return err
	}
	was := "off"
	if strings.Contains(out, "generic-receive-offload: on") {
		was = "on"
	}
	if _, err := ns.Run("ethtool", "-K", dev, "gro", "on"); err != nil {
		return err
	}
	err = fn()
	if _, rerr := ns.Run("ethtool", "-K", dev, "gro", was); rerr != nil {
		err = errors.Join(err, rerr)
	}
	return err
}

// smallUDP sends about n generator frames and returns the rate at which
// received counted them (until it stops moving) and the loss.
//
// The XDP transmit into a veth needs NAPI on the receiver, which an XDP
// program provides and, without one, GRO: on the plain and tcx variants
// GRO is on on the second node's receiving veth for the test, and off
// again after it (the TCP tests of the next rounds run as the first did).
func (t *topology) smallUDP(n int, received func() (uint64, error)) (pps, loss float64, err error) {
	if t.v.kind == kindPlain || t.v.hook == loader.HookTC {
		second := t.chain.Nodes[1]
		err = withGRO(second.NS, second.Left, func() (err error) {
			pps, loss, err = t.generate(n, received)
			return err
		})
		return pps, loss, err
	}
	return t.generate(n, received)
}

// generate sends about n generator frames and returns the rate at which
// received counted them (until it stops moving) and the loss.
func (t *topology) generate(n int, received func() (uint64, error)) (pps, loss float64, err error) {
	before, err := received()
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	sent, err := sendFrames(t.chain.First().NS, t.genDev, t.cpus.sender, t.genFrame, n)
	if err != nil {
		return 0, 0, err
	}
	end, got := time.Now(), before
	for {
		time.Sleep(20 * time.Millisecond)
		now, err := received()
		if err != nil {
			return 0, 0, err
		}
		if now == got {
			break
		}
		end, got = time.Now(), now
	}
	rx := float64(got - before)
	return rx / end.Sub(start).Seconds(), lossPercent(float64(sent), rx), nil
}

// lossPercent is the share of sent frames not received, in %. The ceiling's
// sink counts every frame on its interface, the odd neighbour discovery
// or ARP one included, so a count above the frames sent is no loss.
func lossPercent(sent, received float64) float64 {
	return max(0, 100*(1-received/sent))
}
