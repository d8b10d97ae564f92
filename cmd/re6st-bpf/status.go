package main

import (
	"fmt"
	"os"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/re6st-bpf/re6st-bpf/loader"
)

type status struct {
	loader.State
	Maps    []loader.MapFill  `json:"maps"`
	Reasons map[string]uint64 `json:"reasons"`
	Tunnels []tunnelRow       `json:"tunnels"`
	Routes  []loader.Route    `json:"routes"`
	// Native are a border gateway's native routes and the traffic of
	// each upstream interface.
	Native         []loader.NativeRoute    `json:"native_routes"`
	NativeCounters []loader.NativeCounters `json:"native_counters"`
	Kernel         []loader.Feature        `json:"kernel"`
	Classes        []loader.ClassStatus    `json:"classes"`
	Queues         []loader.QueueStats     `json:"queues"`
	// RX says, per underlay, whether RX queues can be pinned per class.
	RX []loader.RXPinning `json:"rx_pinning"`
	// Shaping says which qdiscs the kernel has and which shaper each
	// underlay has (mqprio or htb).
	Shaping loader.Shaping `json:"shaping"`
	// Shaper holds the HTB counters of each underlay that has the shaper.
	Shaper map[string][]loader.ShaperClassStats `json:"shaper,omitempty"`
}

func statusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show what is attached where, map fill, tunnels, routes and counters",
		Long: `Shows the instance: how its programs are attached and why, map fill, counters,
tunnels and routes. On a half-present instance (a failed 'up', a deleted
namespace, pins gone) it says what is missing and the command that fixes it,
and exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			h, err := loader.Inspect(g.instance)
			if err != nil {
				return err
			}
			if !h.OK() {
				if g.json {
					g.printJSON(h)
				}
				return h.Err()
			}
			return g.with(func(d *loader.Datapath) error {
				s, err := readStatus(d, h)
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(s)
				}
				printStatus(s)
				return nil
			})
		},
	}
}

func readStatus(d *loader.Datapath, h *loader.Health) (*status, error) {
	s := &status{State: *h.State, Kernel: loader.ProbeKernel()}
	var err error
	if s.Maps, err = d.Fill(); err != nil {
		return nil, err
	}
	if s.Reasons, err = d.Reasons(); err != nil {
		return nil, err
	}
	if s.Tunnels, err = tunnelRows(d); err != nil {
		return nil, err
	}
	if s.Classes, err = d.ClassStatuses(); err != nil {
		return nil, err
	}
	if s.Queues, err = d.QueueCounters(); err != nil {
		return nil, err
	}
	if s.RX, err = d.RXPinning(); err != nil {
		return nil, err
	}
	if s.Shaping, err = d.Shaping(); err != nil {
		return nil, err
	}
	for _, u := range s.Underlays() {
		st, err := d.ShaperStats(u)
		if err != nil {
			return nil, err
		}
		if len(st) > 0 {
			if s.Shaper == nil {
				s.Shaper = map[string][]loader.ShaperClassStats{}
			}
			s.Shaper[u] = st
		}
	}
	if s.Native, err = d.NativeRoutes(); err != nil {
		return nil, err
	}
	if s.NativeCounters, err = d.NativeCounters(); err != nil {
		return nil, err
	}
	s.Routes, err = d.Routes()
	return s, err
}

// nativeShown is how many native routes the text status lists (a gateway
// may hold a full table; --json lists them all).
const nativeShown = 20

func printNative(routes []loader.NativeRoute, counters []loader.NativeCounters) {
	if len(routes) == 0 && len(counters) == 0 {
		return
	}
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NATIVE ROUTE\tNEXT HOP\tIFINDEX\tMTU")
	sort.Slice(routes, func(i, j int) bool { return routes[i].Dst.String() < routes[j].Dst.String() })
	for _, r := range routes[:min(len(routes), nativeShown)] {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\n", r.Dst, r.NextHop, r.Ifindex, r.MTU)
	}
	if len(routes) > nativeShown {
		fmt.Fprintf(w, "(%d more: --json lists them all)\t\t\t\n", len(routes)-nativeShown)
	}
	fmt.Fprintln(w, "\nUPSTREAM\tIFINDEX\tIN PACKETS\tIN BYTES\tOUT PACKETS\tOUT BYTES")
	for _, c := range counters {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\n", c.Interface, c.Ifindex, c.RxPackets, c.RxBytes, c.TxPackets, c.TxBytes)
	}
	w.Flush()
}

func printStatus(s *status) {
	fmt.Printf("instance %s", s.Instance)
	if s.Netns != "" {
		fmt.Printf(" (netns %s)", s.Netns)
	}
	fmt.Printf(": %s %s, MTU %d, FOU port %d\n", s.Overlay, s.Address, s.MTU, s.FOUPort)
	if s.IPv4.IsValid() {
		fmt.Printf("IPv4: %s\n", s.IPv4)
	}
	printAttach(&s.State)
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "INTERFACE\tPROGRAM\tID\tHOOK\tATTACHED\tWHY")
	for _, a := range s.Attachments {
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%v\t%s\n", a.Interface, a.Program, a.ProgramID, a.Hook, a.Attached, a.Why)
	}
	fmt.Fprintln(w, "\nMAP\tENTRIES\tMAX")
	for _, m := range s.Maps {
		fmt.Fprintf(w, "%s\t%d\t%d\n", m.Name, m.Entries, m.MaxEntries)
	}
	fmt.Fprintln(w, "\nREASON\tPACKETS")
	names := make([]string, 0, len(s.Reasons))
	for n := range s.Reasons {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "%s\t%d\n", n, s.Reasons[n])
	}
	w.Flush()
	fmt.Println()
	printTunnels(s.Tunnels)
	fmt.Println()
	printRoutes(s.Routes)
	printNative(s.Native, s.NativeCounters)
	if len(s.Classes) > 0 || len(s.Queues) > 0 {
		fmt.Println()
		printClasses(s.Classes)
		fmt.Println()
		printQueues(s.Queues)
		for _, r := range s.RX {
			fmt.Printf("RX pinning on %s (%s, %d RX queues): %s\n", r.Interface, r.Driver, r.RXQueues, r.Why)
		}
		fmt.Print(s.Shaping)
	}
	for u, st := range s.Shaper {
		fmt.Printf("\nshaper on %s\n", u)
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "HTB CLASS\tPACKETS\tBYTES\tDROPS\tBACKLOG")
		for _, c := range st {
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\n", c.Handle, c.Packets, c.Bytes, c.Drops, c.Backlog)
		}
		w.Flush()
	}
}
