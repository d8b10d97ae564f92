package main

import (
	"fmt"
	"net/netip"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/re6st-bpf/re6st-bpf/loader"
)

func routeCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "route", Short: "Add, delete and list data-plane routes"}
	cmd.AddCommand(routeAddCmd(g), routeDelCmd(g), routeListCmd(g))
	return cmd
}

func parseRoute(dst, from string) (netip.Prefix, netip.Prefix, error) {
	d, err := netip.ParsePrefix(dst)
	if err != nil {
		return d, d, fmt.Errorf("prefix %q: want an IPv6 or IPv4 prefix such as 2001:db8:1::/48 or 10.42.1.0/24", dst)
	}
	var s netip.Prefix
	if from != "" {
		if s, err = netip.ParsePrefix(from); err != nil {
			return d, s, fmt.Errorf("--from %q: want an IPv6 prefix", from)
		}
	}
	return d, s, nil
}

func routeAddCmd(g *globals) *cobra.Command {
	var tunnel uint32
	var local bool
	var from string
	var class uint8
	cmd := &cobra.Command{
		Use:   "add PREFIX (--tunnel ID | --local) [--from SRC]",
		Short: "Route an IPv6 or IPv4 prefix into a tunnel, or to this node",
		Long: `Adds a route. Longest prefix wins. --from makes a source-specific default
route (PREFIX must be ::/0), as gateways announce: "::/0 --from 2001:db8::/32".
IPv4 prefixes (e.g. 10.42.2.0/24) route inner IPv4 (see 'up --ipv4'); they
take no --from. Adding a prefix that already has a route fails; delete it
first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if local == (tunnel != 0) {
				return fmt.Errorf("give exactly one of --tunnel ID and --local")
			}
			dst, src, err := parseRoute(args[0], from)
			if err != nil {
				return err
			}
			return g.with(func(d *loader.Datapath) error {
				return d.AddRoute(dst, src, loader.Nexthop{Tunnel: tunnel, Local: local, Class: class})
			})
		},
	}
	f := cmd.Flags()
	f.Uint32Var(&tunnel, "tunnel", 0, "next-hop tunnel id")
	f.BoolVar(&local, "local", false, "deliver to this node")
	f.StringVar(&from, "from", "", "source prefix (source-specific default route)")
	f.Uint8Var(&class, "class", 0, "traffic class id")
	return cmd
}

func routeDelCmd(g *globals) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "del PREFIX [--from SRC]",
		Short: "Delete a route",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dst, src, err := parseRoute(args[0], from)
			if err != nil {
				return err
			}
			return g.with(func(d *loader.Datapath) error { return d.DeleteRoute(dst, src) })
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "source prefix")
	return cmd
}

func printRoutes(routes []loader.Route) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PREFIX\tFROM\tNEXT HOP\tCLASS")
	for _, r := range routes {
		nh := fmt.Sprintf("tunnel %d", r.Tunnel)
		if r.Local {
			nh = "local"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", r.Dst, r.Src, nh, r.Class)
	}
	w.Flush()
}

func routeListCmd(g *globals) *cobra.Command {
	return readCmd(g, "list", "List routes", (*loader.Datapath).Routes, printRoutes)
}
