package server_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
)

// BenchmarkEnrolment measures anonymous enrolments over loopback HTTP
// (CSR check, allocation, signing, one durable transaction each), with as
// many concurrent clients as GOMAXPROCS. Each needs its own key (one key,
// one prefix), made before the timer starts: run it with -benchtime 200x.
func BenchmarkEnrolment(b *testing.B) {
	r := startRegistry(b, nil)
	csrs := make(chan []byte, b.N)
	for i := range b.N {
		csr, err := ca.NewRequest(nodeKey(b, 8+i), nil)
		require.NoError(b, err)
		csrs <- csr
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.client.RequestCertificate(ctx, "", <-csrs, ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "enrolments/s")
}

// BenchmarkNetworkConfig measures authenticated getNetworkConfig calls
// (HMAC chain check, per-node encryption of the Babel keys, answer MAC,
// client-side signature check and decryption), one session per goroutine.
func BenchmarkNetworkConfig(b *testing.B) {
	r := startRegistry(b, nil)
	var nodes []*node
	for i := range 8 {
		nodes = append(nodes, r.enrol(b, "", i))
	}
	next := make(chan *node, len(nodes))
	for _, n := range nodes {
		next <- n
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		n := <-next
		for pb.Next() {
			if _, err := n.session.NetworkConfig(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
