package main

import (
	"fmt"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/re6st-bpf/re6st-bpf/loader"
)

func upCmd(g *globals) *cobra.Command {
	var (
		opts    loader.Options
		address string
		ipv4    string
		hook    string
		attach  string
	)
	cmd := &cobra.Command{
		Use:   "up --underlay IF [--underlay IF ...] --address ADDR/LEN",
		Short: "Create the overlay device, load and attach the data plane",
		Long: `Creates the overlay device (a NOARP veth pair, default re6st0/re6st0p) with ADDR,
whose prefix length LEN is the whole overlay network's (the kernel route for
the network points at the overlay device), enables IPv6 forwarding (the slow
path relies on it), loads the BPF programs and attaches them: tc egress on the
overlay device, and on every underlay either tc ingress or XDP (--hook; auto
chooses tc for virtual drivers such as veth and XDP for NICs with native XDP).

The tc programs attach as tcx links (Linux 6.6) or, on older kernels, as
cls_bpf direct-action filters on a clsact qdisc (--attach; auto picks tcx
where the kernel has it). A failure at any step removes what the earlier
steps made.

--ipv4 ADDR/LEN also carries IPv4 over the overlay: the overlay device gets
the IPv4 address with the IPv4 overlay's prefix length (its connected route
covers the IPv4 network), IPv4 forwarding is enabled for packets arriving on
the overlay device only, and the data plane sources its ICMPv4 errors from it.
IPv4 routes are then added with 'route add A.B.C.D/LEN'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := netip.ParsePrefix(address)
			if err != nil {
				return fmt.Errorf("--address %q: want ADDR/LEN, e.g. 2001:db8:1::1/32", address)
			}
			opts.Address, opts.Hook, opts.Instance, opts.Netns = p, loader.Hook(hook), g.instance, g.netns
			opts.Attach = loader.AttachMode(attach)
			var v4 netip.Prefix
			if ipv4 != "" {
				if v4, err = netip.ParsePrefix(ipv4); err != nil || !v4.Addr().Is4() {
					return fmt.Errorf("--ipv4 %q: want an IPv4 ADDR/LEN, e.g. 10.42.1.1/16", ipv4)
				}
			}
			d, err := loader.Up(opts)
			if err != nil {
				return err
			}
			defer d.Close()
			if v4.IsValid() {
				if err := d.SetIPv4(v4); err != nil {
					return fmt.Errorf("%w (the instance is up without IPv4: run `re6st-bpf --instance %s down`, then up again)", err, g.instance)
				}
			}
			if g.json {
				return g.printJSON(d.State)
			}
			printAttach(&d.State)
			for _, a := range d.State.Attachments {
				fmt.Printf("%s: %s at %s", a.Interface, a.Program, a.Hook)
				if a.Why != "" && a.Why != "requested" {
					fmt.Printf(" (%s)", a.Why)
				}
				fmt.Println()
			}
			fmt.Printf("%s up: %s, MTU %d, FOU port %d\n", d.State.Overlay, d.State.Address, d.State.MTU, d.State.FOUPort)
			if d.State.IPv4.IsValid() {
				fmt.Printf("%s IPv4: %s\n", d.State.Overlay, d.State.IPv4)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&opts.Underlays, "underlay", nil, "underlay interface (repeatable)")
	f.StringVar(&address, "address", "", "node address with the network prefix length, e.g. 2001:db8:1::1/32")
	f.StringVar(&ipv4, "ipv4", "", "node IPv4 address with the IPv4 overlay's prefix length, e.g. 10.42.1.1/16 (carry IPv4 too)")
	f.StringVar(&hook, "hook", "auto", "underlay ingress hook: tc, xdp or auto")
	f.StringVar(&attach, "attach", string(loader.AttachAuto), "how tc programs attach: tcx, legacy (clsact qdisc + cls_bpf) or auto")
	f.StringVar(&opts.Overlay, "overlay", loader.DefaultOverlay, "overlay device name")
	f.Uint16Var(&opts.FOUPort, "fou-port", loader.DefaultFOUPort, "UDP port of incoming FOU tunnels")
	f.IntVar(&opts.MTU, "mtu", 0, "overlay MTU (default: smallest underlay MTU - 28)")
	cmd.MarkFlagRequired("underlay")
	cmd.MarkFlagRequired("address")
	return cmd
}

// printAttach says how the tc programs are attached and why, and what the
// kernel lacks.
func printAttach(st *loader.State) {
	fmt.Printf("attachment: %s (%s)\n", st.Attach, st.AttachWhy)
	if m := loader.MissingFeatures(); m != "" {
		fmt.Println("kernel:", m)
	}
}

func downCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Remove whatever exists of the instance: attachments, overlay device, pins and state",
		Long: `Removes whatever exists of the instance, even after a failed or interrupted
'up', a deleted network namespace or a remounted BPF file system: legacy tc
filters (and the clsact qdiscs 'up' added), the overlay device, the pins
(removing a link's pin detaches its program) and the state file. It says what
it removed; with nothing to remove it says so and succeeds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			removed, err := loader.Remove(g.instance)
			if g.json {
				if jerr := g.printJSON(map[string]any{"instance": g.instance, "removed": removed}); err == nil {
					err = jerr
				}
			} else if len(removed) == 0 && err == nil {
				fmt.Printf("instance %s: nothing to remove\n", g.instance)
			} else {
				for _, r := range removed {
					fmt.Printf("instance %s: removed %s\n", g.instance, r)
				}
			}
			return err
		},
	}
}
