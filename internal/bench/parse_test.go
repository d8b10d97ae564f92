package bench

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseIperf(t *testing.T) {
	r, err := ParseIperf([]byte(`{"start":{},"end":{"sum_sent":{"bytes":2000,"retransmits":3},
		"sum_received":{"bytes":1000000,"bits_per_second":1.5e9}}}`))
	require.NoError(t, err)
	require.Equal(t, Iperf{BitsPerSecond: 1.5e9, Bytes: 1e6, Retransmits: 3}, r)

	_, err = ParseIperf([]byte(`{"start":{},"end":{},"error":"unable to connect to server: Connection refused"}`))
	require.ErrorContains(t, err, "Connection refused")
	_, err = ParseIperf([]byte(`{"end":{"sum_received":{"bytes":0}}}`))
	require.ErrorContains(t, err, "nothing received")
	_, err = ParseIperf([]byte("iperf3: error"))
	require.Error(t, err)
}

func TestParsePing(t *testing.T) {
	out := `PING fd41:2::2(fd41:2::2) 56 data bytes
64 bytes from fd41:2::2: icmp_seq=1 ttl=63 time=0.045 ms
64 bytes from fd41:2::2: icmp_seq=2 ttl=63 time=1.20 ms
From fd41:1::2 icmp_seq=3 Destination unreachable: No route

--- fd41:2::2 ping statistics ---
3 packets transmitted, 2 received, 33% packet loss, time 2ms
rtt min/avg/max/mdev = 0.045/0.622/1.200/0.577 ms`
	require.Equal(t, []float64{45, 1200}, ParsePing(out))
	require.Empty(t, ParsePing("connect: Network is unreachable"))
}

func TestPercentile(t *testing.T) {
	xs := []float64{9, 1, 5, 3, 7, 2, 8, 4, 6, 10}
	require.Equal(t, 5.0, Percentile(xs, 50))
	require.Equal(t, 10.0, Percentile(xs, 99))
	require.Equal(t, 1.0, Percentile(xs, 1))
	require.Equal(t, []float64{9, 1, 5, 3, 7, 2, 8, 4, 6, 10}, xs, "input left unsorted")
	require.True(t, math.IsNaN(Percentile(nil, 50)))
}

func TestParseSnmp6(t *testing.T) {
	dump := "Ip6InReceives                   \t96\nUdp6InDatagrams                 \t0\nUdp6NoPorts                     \t300064\n"
	n, err := ParseSnmp6(dump, "Udp6NoPorts")
	require.NoError(t, err)
	require.Equal(t, uint64(300064), n)
	_, err = ParseSnmp6(dump, "Udp6InErrors")
	require.Error(t, err)
}

func TestParseProcStat(t *testing.T) {
	busy, total, err := ParseProcStat("cpu  100 5 50 1000 20 3 7 2 0 0\ncpu0 50 2 25 500 10 1 3 1 0 0\n")
	require.NoError(t, err)
	require.Equal(t, uint64(100+5+50+3+7+2), busy)
	require.Equal(t, uint64(100+5+50+1000+20+3+7+2), total)
	_, _, err = ParseProcStat("intr 1 2 3\n")
	require.Error(t, err)
}

func TestParseSnmp(t *testing.T) {
	dump := "Ip: Forwarding DefaultTTL\nIp: 2 64\nUdp: InDatagrams NoPorts InErrors\nUdp: 5 300064 0\nUdpLite: InDatagrams NoPorts\nUdpLite: 0 0\n"
	n, err := ParseSnmp(dump, "Udp", "NoPorts")
	require.NoError(t, err)
	require.Equal(t, uint64(300064), n)
	_, err = ParseSnmp(dump, "Udp", "Missing")
	require.Error(t, err)
}
