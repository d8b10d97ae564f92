package bench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Iperf is what we read from an iperf3 -J client report.
type Iperf struct {
	BitsPerSecond float64 // received
	Bytes         float64 // received
	Retransmits   int64
}

// ParseIperf reads an iperf3 -J report; an "error" field is an error.
func ParseIperf(out []byte) (Iperf, error) {
	var r struct {
		Error string `json:"error"`
		End   struct {
			SumSent struct {
				Retransmits int64 `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				Bytes         float64 `json:"bytes"`
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return Iperf{}, fmt.Errorf("iperf3 report: %w", err)
	}
	if r.Error != "" {
		return Iperf{}, fmt.Errorf("iperf3: %s", r.Error)
	}
	s := r.End.SumReceived
	if s.Bytes == 0 {
		return Iperf{}, errors.New("iperf3: nothing received")
	}
	return Iperf{BitsPerSecond: s.BitsPerSecond, Bytes: s.Bytes, Retransmits: r.End.SumSent.Retransmits}, nil
}

var pingTime = regexp.MustCompile(`time=([0-9.]+) ms`)

// ParsePing returns the RTT of every reply in ping's output, in µs.
func ParsePing(out string) []float64 {
	var rtts []float64
	for _, m := range pingTime.FindAllStringSubmatch(out, -1) {
		if ms, err := strconv.ParseFloat(m[1], 64); err == nil {
			rtts = append(rtts, ms*1000)
		}
	}
	return rtts
}

// Percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of xs; NaN
// for no samples.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

// ParseSnmp6 returns counter name of a /proc/net/snmp6 dump.
func ParseSnmp6(dump, name string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(dump))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			return strconv.ParseUint(f[1], 10, 64)
		}
	}
	return 0, fmt.Errorf("snmp6: no counter %s", name)
}

// ParseSnmp returns a counter of /proc/net/snmp, whose groups are pairs
// of lines: "Udp: InDatagrams NoPorts …" then "Udp: 0 300064 …".
func ParseSnmp(dump, group, name string) (uint64, error) {
	var names []string
	sc := bufio.NewScanner(strings.NewReader(dump))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != group+":" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		if i := slices.Index(names, name); i > 0 && i < len(f) {
			return strconv.ParseUint(f[i], 10, 64)
		}
		break
	}
	return 0, fmt.Errorf("snmp: no counter %s %s", group, name)
}

// ParseProcStat returns the busy and total jiffies of all CPUs from
// /proc/stat (busy: everything but idle and iowait).
func ParseProcStat(stat string) (busy, total uint64, err error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	for i, s := range f[1:9] { // user nice system idle iowait irq softirq steal
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += v
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy, total, nil
}
