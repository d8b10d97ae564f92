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
}

func statusCmd(g *globals) *cobra.Command {
	return readCmd(g, "status", "Show what is attached where, map fill, tunnels, routes and counters", readStatus, printStatus)
}

func readStatus(d *loader.Datapath) (*status, error) {
	s := &status{State: d.State}
	var err error
	if s.Attachments, err = d.Attachments(); err != nil {
		return nil, err
	}
	if s.Maps, err = d.Fill(); err != nil {
		return nil, err
	}
	if s.Reasons, err = d.Reasons(); err != nil {
		return nil, err
	}
	if s.Tunnels, err = tunnelRows(d); err != nil {
		return nil, err
	}
	s.Routes, err = d.Routes()
	return s, err
}

func printStatus(s *status) {
	fmt.Printf("instance %s", s.Instance)
	if s.Netns != "" {
		fmt.Printf(" (netns %s)", s.Netns)
	}
	fmt.Printf(": %s %s, MTU %d, FOU port %d\n\n", s.Overlay, s.Address, s.MTU, s.FOUPort)
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "INTERFACE\tPROGRAM\tHOOK\tPINNED\tWHY")
	for _, a := range s.Attachments {
		fmt.Fprintf(w, "%s\t%s\t%s\t%v\t%s\n", a.Interface, a.Program, a.Hook, a.Pinned, a.Why)
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
}
