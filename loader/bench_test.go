package loader_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/internal/chain"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

// iperf3 result, the fields we read.
type iperfResult struct {
	End struct {
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
		Sum struct {
			Packets     int64   `json:"packets"`
			LostPackets int64   `json:"lost_packets"`
			Seconds     float64 `json:"seconds"`
		} `json:"sum"`
	} `json:"end"`
}

// iperf runs iperf3 from the first node of c to dst on the last node.
func iperf(b *testing.B, c *chain.Chain, dst string, args ...string) iperfResult {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := c.Last().NS.Command(ctx, "iperf3", "-s", "-1", "-B", dst)
	require.NoError(b, srv.Start())
	defer srv.Wait()
	time.Sleep(300 * time.Millisecond)
	out, err := c.First().NS.Run(append([]string{"iperf3", "-J", "-c", dst}, args...)...)
	require.NoError(b, err, out)
	var r iperfResult
	require.NoError(b, json.Unmarshal([]byte(out), &r))
	return r
}

type variant struct {
	name    string
	overlay bool
	encap   loader.TunnelType
	hook    loader.Hook
}

var variants = []variant{
	{"plain-kernel-forwarding", false, 0, ""},
	{"fou-tc", true, loader.FOU, loader.HookTC},
	{"fou-xdp", true, loader.FOU, loader.HookXDP},
	{"gre-tc", true, loader.GRE, loader.HookTC},
	{"gre-xdp", true, loader.GRE, loader.HookXDP},
}

func build(b *testing.B, v variant) (*chain.Chain, string) {
	c := chain.Build(b, chain.Options{Nodes: 3, Overlay: v.overlay, Encap: v.encap, Hook: v.hook})
	dst := c.Last().Plain
	if v.overlay {
		dst = c.Last().Overlay
	}
	return c, dst.String()
}

// BenchmarkTransitTCP: TCP throughput A→C through B, one stream, 5 s, for
// plain IPv6 with B's kernel forwarding and for the overlay.
func BenchmarkTransitTCP(b *testing.B) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			c, dst := build(b, v)
			var gbps float64
			for i := 0; i < b.N; i++ {
				r := iperf(b, c, dst, "-t", "5")
				gbps = r.End.SumReceived.BitsPerSecond / 1e9
			}
			b.ReportMetric(gbps, "Gbit/s")
		})
	}
}

// BenchmarkTransitSmallUDP: 64-byte UDP payloads A→C through B, unlimited
// rate for 5 s; the packet rate C receives and the loss.
func BenchmarkTransitSmallUDP(b *testing.B) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			c, dst := build(b, v)
			var pps, loss float64
			for i := 0; i < b.N; i++ {
				r := iperf(b, c, dst, "-u", "-b", "0", "-l", "64", "-t", "5")
				s := r.End.Sum
				pps = float64(s.Packets-s.LostPackets) / s.Seconds
				loss = 100 * float64(s.LostPackets) / float64(max(s.Packets, 1))
			}
			b.ReportMetric(pps, "pkt/s")
			b.ReportMetric(loss, "%loss")
			fmt.Printf("%s: %.0f pkt/s received, %.1f%% lost\n", v.name, pps, loss)
		})
	}
}
