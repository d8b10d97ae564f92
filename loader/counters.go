package loader

import (
	"fmt"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// reasonNames come from the BTF of enum reason, so that C stays the only
// place that names them.
var reasonNames = sync.OnceValue(func() map[uint32]string {
	names := map[uint32]string{}
	spec, err := loadDatapath()
	if err != nil {
		return names
	}
	var e *btf.Enum
	if err := spec.Types.TypeByName("reason", &e); err != nil {
		return names
	}
	for _, v := range e.Values {
		names[uint32(v.Value)] = strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(v.Name, "REASON_")), "_", "-")
	}
	return names
})

// ReasonName is the name of a reason counter as status prints it, e.g.
// "drop-unknown-peer".
func ReasonName(r uint32) string {
	if n, ok := reasonNames()[r]; ok {
		return n
	}
	return fmt.Sprintf("reason-%d", r)
}

// NumReasons is the number of reason counters.
const NumReasons = uint32(datapathReasonREASON_MAX)

// Reasons returns every per-reason packet counter, summed over CPUs.
func (d *Datapath) Reasons() (map[string]uint64, error) {
	out := make(map[string]uint64, NumReasons)
	for r := uint32(0); r < NumReasons; r++ {
		var per []uint64
		if err := d.maps.ReasonCounters.Lookup(&r, &per); err != nil {
			return nil, err
		}
		var sum uint64
		for _, v := range per {
			sum += v
		}
		out[ReasonName(r)] = sum
	}
	return out, nil
}

// TunnelStats are a tunnel's inner packets and bytes, summed over CPUs.
type TunnelStats struct {
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
}

// TunnelCounters returns the counters of tunnel id.
func (d *Datapath) TunnelCounters(id uint32) (TunnelStats, error) {
	var per []datapathTunnelStats
	if err := d.maps.TunnelCounters.Lookup(&id, &per); err != nil {
		return TunnelStats{}, err
	}
	return sumStats(per), nil
}

// sumStats adds up the per-CPU values of a counter.
func sumStats(per []datapathTunnelStats) TunnelStats {
	var s TunnelStats
	for _, v := range per {
		s.RxPackets += v.RxPackets
		s.RxBytes += v.RxBytes
		s.TxPackets += v.TxPackets
		s.TxBytes += v.TxBytes
	}
	return s
}

// MapFill is the occupancy of one map.
type MapFill struct {
	Name       string `json:"name"`
	Entries    int    `json:"entries"`
	MaxEntries uint32 `json:"max_entries"`
}

// Fill counts the entries of the maps userspace writes.
func (d *Datapath) Fill() ([]MapFill, error) {
	var out []MapFill
	for _, m := range []struct {
		name string
		m    *ebpf.Map
	}{{"routes", d.maps.Routes}, {"source_routes", d.maps.SourceRoutes}, {"native_routes", d.maps.NativeRoutes}, {"tunnels", d.maps.Tunnels}, {"endpoints", d.maps.Endpoints}} {
		n, err := countEntries(m.m)
		if err != nil {
			return nil, err
		}
		out = append(out, MapFill{Name: m.name, Entries: n, MaxEntries: m.m.MaxEntries()})
	}
	return out, nil
}

func countEntries(m *ebpf.Map) (int, error) {
	n := 0
	key := make([]byte, m.KeySize())
	it := m.Iterate()
	var val []byte
	for it.Next(&key, &val) {
		n++
	}
	return n, it.Err()
}
