package simnet

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path"
	"reflect"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
)

var (
	benchNodes     = flag.String("babel.nodes", "1000", "network size for BenchmarkScale (e.g. 1000 or 10000)")
	benchExporters = flag.Int("babel.exporters", 0, "BenchmarkScale: only this many random nodes export their prefix (0: every node); per-prefix figures are extrapolated to every node")
	benchHeapOut   = flag.String("babel.heapprofile", "", "write a heap profile at steady state to this file")
)

// scaleSeed seeds the topology, the sample of exporters and the victims.
const scaleSeed = 11

// scaleProfileRate is the memory profile's sampling rate (one sample per
// this many octets allocated) during BenchmarkScale, fine enough to
// measure the route table's heap to within a percent.
const scaleProfileRate = 4096

// BenchmarkScale simulates a re6st-like network (every node opens 5
// tunnels to random nodes, so the mean degree is 10; babeld's default
// timers on tunnel interfaces: Hello 4 s, update 16 s) and reports:
//
//	converge-s           simulated time from cold start until every node reaches every exported prefix
//	bytes/node/s         Babel traffic per node at steady state
//	fixed-bytes/node/s   the part of it that does not depend on the prefixes (Hello, IHU, their packets)
//	bytes/node/s/prefix  the rest (Updates and the TLVs and packets that carry them), per prefix
//	MB/node              heap per node (router state) at steady state
//	bytes/route          heap of the route table (destinations, routes, feasibility distances) per route
//	reconverge-s         simulated time until the survivors reach each other after 10 % die
//	settle-s             the same, until in addition no survivor has a route to a dead node's prefix
//
// With -babel.exporters=K only K random nodes export their prefix: every
// node, link, Hello and IHU is still simulated, but only K prefixes. Since
// Babel keeps and computes routes for each prefix independently, traffic is
// extrapolated as the fixed part plus the per-prefix part times the number
// of nodes, and memory as the heap outside the route table per node plus
// the heap per route times the routes a node would hold; bytes/node/s and
// MB/node are then these extrapolations.
//
// Run with -benchtime=1x; choose sizes with -babel.nodes=N.
func BenchmarkScale(b *testing.B) {
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = scaleProfileRate
	var n int
	if _, err := fmt.Sscan(*benchNodes, &n); err != nil || n < 10 {
		b.Fatalf("-babel.nodes %q: want a size of at least 10", *benchNodes)
	}
	k := *benchExporters
	if k < 0 || k > n {
		b.Fatalf("-babel.exporters %d: want 0 (every node) to %d", k, n)
	}
	name := fmt.Sprintf("nodes=%d", n)
	if k > 0 {
		name += fmt.Sprintf("/exporters=%d", k)
	}
	b.Run(name, func(b *testing.B) {
		for range b.N {
			scale(b, n, k)
		}
	})
}

// scaleRun is what one run of the scale simulation measured.
type scaleRun struct {
	converge   time.Duration
	steady     steadyState
	reconverge time.Duration
	settle     time.Duration
}

// steadyState is what a network sends and holds at steady state.
type steadyState struct {
	fixed     float64 // Babel octets per node per second not about prefixes
	prefix    float64 // Babel octets per node per second about prefixes
	heap      float64 // live heap of the simulation, octets
	routeHeap float64 // the part of heap in routers' route tables
	routes    int     // routes held
}

// scale runs the network of n nodes, k of them exporting (0: all), and
// reports its figures, extrapolated to every node exporting when k > 0.
func scale(b *testing.B, n, k int) {
	var export func(int) bool
	exporters := n
	if k > 0 {
		export, exporters = RandomExporters(n, k, scaleSeed), k
	}
	r := simulate(b, n, export)
	st := r.steady
	perPrefix := st.prefix / float64(exporters)
	bytes := st.fixed + perPrefix*float64(n)
	perRoute := st.routeHeap / float64(st.routes)
	routesPerNode := float64(st.routes) / float64(exporters) // with n prefixes
	otherHeap := (st.heap - st.routeHeap) / float64(n)
	mem := otherHeap + perRoute*routesPerNode
	if k > 0 {
		b.Logf("measured with %d exporters: %.0f fixed + %.2f bytes/node/s per prefix; %d routes, %.1f bytes each; %.0f bytes/node outside route tables",
			k, st.fixed, perPrefix, st.routes, perRoute, otherHeap)
		b.Logf("extrapolated to %d exporters: %.0f + %.2f × %d = %.0f bytes/node/s; %.0f + %.1f × %.0f routes = %.2f MB/node",
			n, st.fixed, perPrefix, n, bytes, otherHeap, perRoute, routesPerNode, mem/(1<<20))
	} else {
		// Measured directly; the split shows what sampling extrapolates.
		mem = st.heap / float64(n)
		b.Logf("%d routes, %.1f bytes each, %.0f bytes/node outside route tables", st.routes, perRoute, otherHeap)
	}
	b.ReportMetric(r.converge.Seconds(), "converge-s")
	b.ReportMetric(bytes, "bytes/node/s")
	b.ReportMetric(st.fixed, "fixed-bytes/node/s")
	b.ReportMetric(perPrefix, "bytes/node/s/prefix")
	b.ReportMetric(mem/(1<<20), "MB/node")
	b.ReportMetric(perRoute, "bytes/route")
	b.ReportMetric(r.reconverge.Seconds(), "reconverge-s")
	b.ReportMetric(r.settle.Seconds(), "settle-s")
}

// simulate builds the network, runs it from cold start until it settles,
// measures its steady state, then kills 10 % of the nodes and runs it
// until it settles again.
func simulate(b *testing.B, n int, export func(int) bool) scaleRun {
	var r scaleRun
	start := time.Now()
	heap0 := liveHeap().HeapAlloc
	s := scaleNetwork(b, n, export)
	var ok bool
	r.converge, ok = s.RunUntil(10*time.Minute, time.Second, s.Settled)
	if !ok {
		b.Fatalf("%d nodes did not converge in %s: %d pairs unreachable, %d stray routes",
			n, r.converge, s.Unreachable(), s.Stray())
	}
	b.Logf("converged in %s simulated (%s real)", r.converge, time.Since(start).Round(time.Millisecond))

	r.steady = measureSteady(b, s, heap0)
	if *benchHeapOut != "" {
		writeHeapProfile(b, *benchHeapOut)
	}

	// 10 % of the nodes die at once (n/10 draws; a node drawn twice dies once).
	for range n / 10 {
		s.Kill(s.Rand().IntN(n))
	}
	dead, deadExporters := 0, 0
	for _, node := range s.Nodes {
		if !node.Alive {
			dead++
			if node.Exported {
				deadExporters++
			}
		}
	}
	r.reconverge, ok = s.RunUntilConverged(10*time.Minute, time.Second)
	if !ok {
		b.Fatalf("survivors did not reconverge in %s: %d pairs unreachable", r.reconverge, s.Unreachable())
	}
	rest, ok := s.RunUntil(10*time.Minute, time.Second, s.Settled)
	if !ok {
		b.Fatalf("survivors still select %d routes to dead prefixes %s after reconverging", s.Stray(), rest)
	}
	r.settle = r.reconverge + rest
	b.Logf("after %d nodes died (%d exporters): reconverged in %s, settled in %s simulated (%s real in all)",
		dead, deadExporters, r.reconverge, r.settle, time.Since(start).Round(time.Millisecond))
	return r
}

// scaleNetwork builds the benchmark's network of n nodes.
func scaleNetwork(b *testing.B, n int, export func(int) bool) *Sim {
	s, err := New(n, Options{Seed: scaleSeed, Interface: scaleInterface(), Delay: 5 * time.Millisecond, Export: export})
	if err != nil {
		b.Fatal(err)
	}
	edges := randomEdges(s, n, 5)
	for _, e := range edges {
		if _, err := s.Connect(e[0], e[1]); err != nil {
			b.Fatal(err)
		}
	}
	exporters := 0
	for _, node := range s.Nodes {
		if node.Exported {
			exporters++
		}
	}
	b.Logf("%d nodes, %d links (mean degree %.1f), %d exporting",
		n, len(edges), 2*float64(len(edges))/float64(n), exporters)
	return s
}

// scaleInterface is the configuration of the benchmark's tunnels.
func scaleInterface() babel.InterfaceConfig { return babel.DefaultInterfaceConfig(babel.LinkTunnel) }

// measureSteady lets s settle for one update interval, then measures its
// traffic over two, its live heap above heap0 and its route tables.
func measureSteady(b *testing.B, s *Sim, heap0 uint64) steadyState {
	hello := scaleInterface().HelloInterval
	s.Run(hello * 4)
	window := 2 * 4 * hello
	bytes0, prefix0 := s.Net.BytesSent, s.Net.PrefixBytes
	s.Run(window)
	perNode := func(octets uint64) float64 { return float64(octets) / window.Seconds() / float64(len(s.Nodes)) }
	prefix := s.Net.PrefixBytes - prefix0
	st := steadyState{
		fixed:  perNode(s.Net.BytesSent - bytes0 - prefix),
		prefix: perNode(prefix),
	}
	m := liveHeap()
	st.heap = float64(m.HeapAlloc - heap0)
	st.routeHeap = routeTableHeap()
	st.routes = s.Routes()
	if st.routes == 0 || st.routeHeap == 0 {
		b.Fatalf("%d routes in %.0f octets of route tables", st.routes, st.routeHeap)
	}
	b.Logf("steady state: %.0f bytes/node/s (%.0f fixed), %.2f MB/node (heap %.2f GB, from the OS %.2f GB)",
		st.fixed+st.prefix, st.fixed, st.heap/float64(len(s.Nodes))/(1<<20),
		float64(m.HeapAlloc)/(1<<30), float64(m.Sys)/(1<<30))
	return st
}

// routeTableHeap returns the live heap that routers' route tables hold:
// what the memory profile says was allocated from routing/babel's
// route.go (destinations, their routes and feasibility distances, the
// slice of destinations), scaled up for sampling as pprof does.
func routeTableHeap() float64 {
	runtime.GC()
	var records []runtime.MemProfileRecord
	for n, ok := runtime.MemProfile(nil, false); !ok; {
		records = make([]runtime.MemProfileRecord, n+n/8+16)
		if n, ok = runtime.MemProfile(records, false); ok {
			records = records[:n]
		}
	}
	pkg := reflect.TypeFor[babel.Router]().PkgPath() + "."
	total := 0.0
	for _, rec := range records {
		objects, octets := rec.InUseObjects(), rec.InUseBytes()
		if objects <= 0 || !allocatedIn(rec.Stack(), pkg, "route.go") {
			continue
		}
		mean := float64(octets) / float64(objects)
		total += float64(octets) / (1 - math.Exp(-mean/float64(runtime.MemProfileRate)))
	}
	return total
}

// allocatedIn reports whether the innermost frame of stack in the package
// whose functions start with pkg is in a file named file.
func allocatedIn(stack []uintptr, pkg, file string) bool {
	frames := runtime.CallersFrames(stack)
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, pkg) {
			return path.Base(f.File) == file
		}
		if !more {
			return false
		}
	}
}

// liveHeap collects garbage and returns the memory statistics.
func liveHeap() runtime.MemStats {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
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
