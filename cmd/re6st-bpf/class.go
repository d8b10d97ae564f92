package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
)

func classCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "class",
		Short: "Set, delete and list traffic classes",
		Long: `A traffic class gives the packets of the routes that name it (route add
--class ID) a TX queue of the underlay device chosen by flow hash among the
class's queues, an skb priority and the DSCP of the outer IPv4 header; the
inner packet is left as it is. Changes take effect at once. See
docs/traffic-classes.md.`,
	}
	cmd.AddCommand(classSetCmd(g), classDelCmd(g), classListCmd(g), classShapeCmd(g), classUnshapeCmd(g), classPinRXCmd(g), classUnpinRXCmd(g))
	return cmd
}

// parseQueues reads "FIRST-LAST" or a single queue "N".
func parseQueues(s string) (first, count uint16, err error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		hi = lo
	}
	a, err1 := strconv.ParseUint(lo, 10, 16)
	b, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || b < a {
		return 0, 0, fmt.Errorf("--queues %q: want FIRST-LAST, e.g. 0-3", s)
	}
	return uint16(a), uint16(b - a + 1), nil
}

// parsePriority reads a number or a tc class handle "MAJOR:MINOR" (hex),
// which HTB takes from skb->priority as the class of the packet.
func parsePriority(s string) (uint32, error) {
	if maj, min, ok := strings.Cut(s, ":"); ok {
		a, err1 := strconv.ParseUint(maj, 16, 16)
		b, err2 := strconv.ParseUint(min, 16, 16)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("--priority %q: want a number or a class handle such as 1:10", s)
		}
		return uint32(a)<<16 | uint32(b), nil
	}
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil {
		return 0, fmt.Errorf("--priority %q: want a number or a class handle such as 1:10", s)
	}
	return uint32(v), nil
}

func classSetCmd(g *globals) *cobra.Command {
	var queues, priority, rate string
	var dscp uint8
	var flows uint16
	cmd := &cobra.Command{
		Use:   "set ID --queues FIRST-LAST [--dscp N] [--priority P] [--rate R] [--flows N]",
		Short: "Add or replace a traffic class",
		Long: `Adds or replaces class ID (1-255). Its flows are spread over the TX queues
FIRST..LAST of the underlay device by flow hash (a flow keeps its queue).
--priority is the packets' skb priority: a number (0-7: also the class's
rank in the shaper, higher first), or a tc class handle MAJOR:MINOR that an
HTB of your own on the underlay takes as the packet's class.
--rate (bits per second: 100M, 1G) is the class's rate in the shaper and
--flows the number of its flows that get equal shares ('class shape').
Changing a shaped class unshapes it: run 'class shape' again.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 8)
			if err != nil || id == 0 {
				return fmt.Errorf("class id %q: want 1-255", args[0])
			}
			c := loader.Class{ID: uint8(id), DSCP: dscp, Flows: flows}
			if queues != "" {
				if c.QueueFirst, c.QueueCount, err = parseQueues(queues); err != nil {
					return err
				}
			}
			if priority != "" {
				if c.Priority, err = parsePriority(priority); err != nil {
					return err
				}
			}
			if rate != "" {
				if c.Rate, err = netparams.ParseRate(rate); err != nil {
					return fmt.Errorf("--rate: %w", err)
				}
			}
			return g.with(func(d *loader.Datapath) error { return d.SetClass(c) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&queues, "queues", "", "TX queues FIRST-LAST (empty: the kernel chooses)")
	f.Uint8Var(&dscp, "dscp", 0, "outer IPv4 DSCP, 0-63")
	f.StringVar(&priority, "priority", "", "skb priority: a number or a tc class handle MAJOR:MINOR")
	f.StringVar(&rate, "rate", "", "shaping rate in bits per second (100M, 1G)")
	f.Uint16Var(&flows, "flows", 0, "shaper leaves sharing the class's rate equally, one flow each")
	return cmd
}

func classShapeCmd(g *globals) *cobra.Command {
	var rate string
	cmd := &cobra.Command{
		Use:   "shape DEVICE --rate R",
		Short: "Install the shaper of the classes on an underlay device (mqprio or HTB)",
		Long: `Replaces DEVICE's root qdisc with mqprio when the kernel has it, DEVICE has
several TX queues and no class has a rate or flows: each class's priority is
mapped to its TX queues, unclassed traffic to the first queues no class uses.
Otherwise (said in the output, with why not mqprio) with an HTB tree of the classes: the link's rate
R, each class its --rate (or an equal part of what is left) and its
--priority rank (0-7, higher first), each of its --flows one leaf of equal
rate so that the flows of a congested class share it equally; unclassed
traffic gets the lowest rank. Under each leaf fq_codel when the kernel has
it, else pfifo (said in the output). The classes' packets are then put in
their leaves by the egress program.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := netparams.ParseRate(rate)
			if err != nil {
				return fmt.Errorf("--rate: %w", err)
			}
			return g.with(func(d *loader.Datapath) error {
				rep, err := d.Shape(args[0], r)
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(rep)
				}
				if rep.Root == "mqprio" {
					fmt.Printf("%s: mqprio, one set of TX queues per class\n", rep.Device)
					w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "TC\tQUEUES\tPRIORITIES\tCLASSES")
					for _, tc := range rep.TCs {
						fmt.Fprintf(w, "%d\t%s\t%v\t%v\n", tc.TC, tc.Queues, tc.Priorities, tc.Classes)
					}
					return w.Flush()
				}
				fmt.Printf("%s: HTB at %d bit/s (%s), leaf qdisc %s", rep.Device, rep.Rate, rep.RootWhy, rep.LeafQdisc)
				if rep.Why != "" {
					fmt.Printf(" (%s)", rep.Why)
				}
				fmt.Println()
				w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "CLASS\tHANDLE\tRATE\tHTB PRIO\tLEAVES")
				for _, c := range rep.Classes {
					fmt.Fprintf(w, "%d\t%s\t%d\t%d\t%d\n", c.ID, c.Handle, c.Rate, c.HTBPrio, c.Leaves)
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&rate, "rate", "", "the link's rate in bits per second (100M, 1G)")
	cmd.MarkFlagRequired("rate")
	return cmd
}

func classUnshapeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "unshape DEVICE",
		Short: "Remove the shaper (mqprio or HTB) from an underlay device",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.with(func(d *loader.Datapath) error { return d.Unshape(args[0]) })
		},
	}
}

func classDelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "del ID",
		Short: "Delete a traffic class (its routes' packets go out unclassed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 8)
			if err != nil || id == 0 {
				return fmt.Errorf("class id %q: want 1-255", args[0])
			}
			return g.with(func(d *loader.Datapath) error { return d.DeleteClass(uint8(id)) })
		},
	}
}

func formatPriority(p uint32) string {
	if p > 0xffff {
		return fmt.Sprintf("%x:%x", p>>16, p&0xffff)
	}
	return strconv.FormatUint(uint64(p), 10)
}

func printClasses(cs []loader.ClassStatus) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "CLASS\tQUEUES\tDSCP\tPRIORITY\tRATE\tFLOWS\tSHAPED\tPACKETS\tBYTES\tDROPS")
	for _, c := range cs {
		rate := "-"
		if c.Rate != 0 {
			rate = strconv.FormatUint(c.Rate, 10)
		}
		fmt.Fprintf(w, "%d\t%s\t%d\t%s\t%s\t%d\t%v\t%d\t%d\t%d\n", c.ID, c.Queues, c.DSCP, formatPriority(c.Priority), rate, c.Flows, c.Shaped, c.Packets, c.Bytes, c.Drops)
	}
	w.Flush()
}

func printQueues(qs []loader.QueueStats) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TX QUEUE\tPACKETS\tBYTES")
	for _, q := range qs {
		fmt.Fprintf(w, "%d\t%d\t%d\n", q.Queue, q.Packets, q.Bytes)
	}
	w.Flush()
}

func classListCmd(g *globals) *cobra.Command {
	cmd := readCmd(g, "list", "List traffic classes with their counters", (*loader.Datapath).ClassStatuses, printClasses)
	// The text ends with the shaper of each underlay; --json stays the
	// list of classes (status --json has the shaping).
	cmd.PostRunE = func(*cobra.Command, []string) error {
		if g.json {
			return nil
		}
		return g.with(func(d *loader.Datapath) error {
			s, err := d.Shaping()
			if err == nil {
				fmt.Print(s)
			}
			return err
		})
	}
	return cmd
}

func classPinRXCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pin-rx DEVICE",
		Short: "Pin each class's incoming tunnel traffic to its RX queues (NIC ntuple filters)",
		Long: `Programs DEVICE's ntuple filters (as ethtool -N) so that the tunnel packets
of each class, recognised by the outer DSCP its sender's data plane wrote,
land on the class's queues: for FOU one rule per queue matching the low bits
of the source port (the sender's flow hash), for GRE one rule to the class's
first queue. Prints each rule with its location (ethtool -N DEVICE delete
LOCATION removes it). Fails, saying so, on a device without ntuple filters
(veth, most virtual devices). Classes without queues or with DSCP 0 get no
rule.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.with(func(d *loader.Datapath) error {
				rules, skipped, err := d.PinRX(args[0])
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(struct {
						Rules   []loader.RXRule `json:"rules"`
						Skipped []string        `json:"skipped"`
					}{rules, skipped})
				}
				for _, r := range rules {
					fmt.Printf("class %d: location %d: %s\n", r.Class, r.Location, r.Ethtool(args[0]))
				}
				for _, s := range skipped {
					fmt.Println(s)
				}
				return nil
			})
		},
	}
}

func classUnpinRXCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "unpin-rx DEVICE LOCATION...",
		Short: "Remove ntuple rules that pin-rx made, by the locations it printed",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var locs []uint32
			for _, a := range args[1:] {
				l, err := strconv.ParseUint(a, 10, 32)
				if err != nil {
					return fmt.Errorf("location %q: want a number", a)
				}
				locs = append(locs, uint32(l))
			}
			return g.with(func(d *loader.Datapath) error { return d.UnpinRX(args[0], locs) })
		},
	}
}
