package main

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/re6st-bpf/re6st-bpf/loader"
)

func tunnelCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "tunnel", Short: "Add, delete and list tunnels"}
	cmd.AddCommand(tunnelAddCmd(g), tunnelDelCmd(g), tunnelListCmd(g))
	return cmd
}

func parseID(s string) (uint32, error) {
	id, err := strconv.ParseUint(s, 10, 32)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("tunnel id %q: want a number from 1 to 4294967295", s)
	}
	return uint32(id), nil
}

func tunnelAddCmd(g *globals) *cobra.Command {
	var typ, local, remote string
	var port uint16
	var key int64
	var mtu int
	cmd := &cobra.Command{
		Use:   "add ID --type fou|gre --local A.B.C.D --remote A.B.C.D",
		Short: "Add a tunnel to a remote endpoint",
		Long: `Adds tunnel ID. Packets from --remote (and, for GRE, with --key) are accepted on
this tunnel; routes pointing at ID are encapsulated from --local to --remote.
The underlay interface is the one the kernel routes --remote through, resolved
now. The MTU defaults to the overlay device's.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			t := loader.Tunnel{ID: id, Port: port}
			if t.Type, err = loader.ParseTunnelType(typ); err != nil {
				return err
			}
			if t.Type == loader.DEVICE {
				return fmt.Errorf("--type device: a device tunnel is made by the process that owns the device (its attachment lives with it), not here")
			}
			if t.Local, err = netip.ParseAddr(local); err != nil || !t.Local.Is4() {
				return fmt.Errorf("--local %q is not an IPv4 address", local)
			}
			if t.Remote, err = netip.ParseAddr(remote); err != nil || !t.Remote.Is4() {
				return fmt.Errorf("--remote %q is not an IPv4 address", remote)
			}
			if key >= 0 {
				if t.Type != loader.GRE || key > 0xffffffff {
					return fmt.Errorf("--key: only GRE tunnels have a key, from 0 to 4294967295")
				}
				t.HasKey, t.Key = true, uint32(key)
			}
			if t.Type == loader.GRE {
				t.Port = 0
			}
			return g.with(func(d *loader.Datapath) error {
				if mtu == 0 {
					mtu = d.State.MTU
				}
				if mtu > 0xffff {
					return fmt.Errorf("--mtu %d is too large", mtu)
				}
				t.MTU = uint16(mtu)
				if err := t.Validate(); err != nil {
					return err
				}
				if err := loader.InNetns(d.State.Netns, func() error { return loader.ResolveUnderlay(&t) }); err != nil {
					return err
				}
				return d.AddTunnel(t)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&typ, "type", "fou", "encapsulation: fou or gre")
	f.StringVar(&local, "local", "", "outer IPv4 source (an address of this host)")
	f.StringVar(&remote, "remote", "", "outer IPv4 address of the other end")
	f.Uint16Var(&port, "port", loader.DefaultFOUPort, "FOU: the remote's FOU port")
	f.Int64Var(&key, "key", -1, "GRE: 32-bit key")
	f.IntVar(&mtu, "mtu", 0, "largest inner packet (default: the overlay MTU)")
	cmd.MarkFlagRequired("local")
	cmd.MarkFlagRequired("remote")
	return cmd
}

func tunnelDelCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "del ID",
		Short: "Delete a tunnel (no route may use it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return g.with(func(d *loader.Datapath) error { return d.DeleteTunnel(id) })
		},
	}
}

type tunnelRow struct {
	loader.Tunnel
	Counters loader.TunnelStats `json:"counters"`
}

func tunnelRows(d *loader.Datapath) ([]tunnelRow, error) {
	ts, err := d.Tunnels()
	if err != nil {
		return nil, err
	}
	rows := make([]tunnelRow, 0, len(ts))
	for _, t := range ts {
		c, err := d.TunnelCounters(t.ID)
		if err != nil {
			return nil, err
		}
		rows = append(rows, tunnelRow{t, c})
	}
	return rows, nil
}

func printTunnels(rows []tunnelRow) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tTYPE\tLOCAL\tREMOTE\tPORT/KEY\tMTU\tRX PKTS\tRX BYTES\tTX PKTS\tTX BYTES")
	for _, r := range rows {
		pk := strconv.Itoa(int(r.Port))
		if r.Type == loader.GRE {
			pk = "-"
			if r.HasKey {
				pk = "key " + strconv.FormatUint(uint64(r.Key), 10)
			}
		}
		local, remote := r.Local.String(), r.Remote.String()
		if r.Type == loader.DEVICE {
			local, remote, pk = "-", "ifindex "+strconv.FormatUint(uint64(r.Ifindex), 10), "-"
			if r.NextHop.IsValid() { // a layer-2 device: the neighbour behind it
				remote += " via " + r.NextHop.String()
			}
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\n", r.ID, r.Type, local, remote, pk, r.MTU,
			r.Counters.RxPackets, r.Counters.RxBytes, r.Counters.TxPackets, r.Counters.TxBytes)
	}
	w.Flush()
}

func tunnelListCmd(g *globals) *cobra.Command {
	return readCmd(g, "list", "List tunnels with their counters", tunnelRows, printTunnels)
}
