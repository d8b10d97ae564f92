package simnet

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
)

var (
	benchNodes   = flag.String("babel.nodes", "1000", "network size for BenchmarkScale (e.g. 1000 or 10000)")
	benchHeapOut = flag.String("babel.heapprofile", "", "write a heap profile at steady state to this file")
)

// BenchmarkScale simulates a re6st-like network (every node opens 5
// tunnels to random nodes, so the mean degree is 10; babeld's default
// timers on tunnel interfaces: Hello 4 s, update 16 s) and reports:
//
//	converge-s         simulated time from cold start until every node reaches every other
//	bytes/node/s       Babel traffic per node at steady state
//	MB/node            heap per node (router state) at steady state
//	reconverge-s       simulated time until the survivors reach each other after 10 % die
//
// Run with -benchtime=1x; choose sizes with -babel.nodes=N.
func BenchmarkScale(b *testing.B) {
	var n int
	if _, err := fmt.Sscan(*benchNodes, &n); err != nil || n < 10 {
		b.Fatalf("-babel.nodes %q: want a size of at least 10", *benchNodes)
	}
	b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
		for range b.N {
			scale(b, n)
		}
	})
}

func scale(b *testing.B, n int) {
	cfg := babel.DefaultInterfaceConfig(babel.LinkTunnel)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	s, err := New(n, Options{Seed: 11, Interface: cfg, Delay: 5 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	edges := randomEdges(s, n, 5)
	for _, e := range edges {
		if _, err := s.Connect(e[0], e[1]); err != nil {
			b.Fatal(err)
		}
	}
	converge, ok := s.RunUntilConverged(10*time.Minute, time.Second)
	if !ok {
		b.Fatalf("%d nodes did not converge in %s: %d pairs unreachable", n, converge, s.Unreachable())
	}
	b.Logf("%d nodes, %d links (mean degree %.1f): converged in %s simulated (%s real)",
		n, len(edges), 2*float64(len(edges))/float64(n), converge, time.Since(start).Round(time.Millisecond))

	// Steady state over two full update intervals.
	s.Run(cfg.HelloInterval * 4)
	window := 2 * 4 * cfg.HelloInterval
	bytes0 := s.Net.BytesSent
	s.Run(window)
	perNode := float64(s.Net.BytesSent-bytes0) / window.Seconds() / float64(n)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	mem := float64(after.HeapAlloc-before.HeapAlloc) / float64(n) / (1 << 20)
	b.Logf("steady state: %.0f bytes/node/s, %.2f MB/node (heap %.2f GB, from the OS %.2f GB)",
		perNode, mem, float64(after.HeapAlloc)/(1<<30), float64(after.Sys)/(1<<30))
	if *benchHeapOut != "" {
		writeHeapProfile(b, *benchHeapOut)
	}

	// 10 % of the nodes die at once.
	for range n / 10 {
		s.Kill(s.Rand().IntN(n))
	}
	reconverge, ok := s.RunUntilConverged(10*time.Minute, time.Second)
	if !ok {
		b.Fatalf("survivors did not reconverge in %s: %d pairs unreachable", reconverge, s.Unreachable())
	}
	b.Logf("after 10%% died: reconverged in %s simulated", reconverge)
	b.ReportMetric(converge.Seconds(), "converge-s")
	b.ReportMetric(perNode, "bytes/node/s")
	b.ReportMetric(mem, "MB/node")
	b.ReportMetric(reconverge.Seconds(), "reconverge-s")
}

func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}
