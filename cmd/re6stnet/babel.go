package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/re6st-bpf/re6st-bpf/routing/babel/control"
	"github.com/re6st-bpf/re6st-bpf/routing/babel/standalone"
	"github.com/spf13/cobra"
)

const defaultControl = "/run/re6stnet-babel.sock"

func babelCommand() *cobra.Command {
	var (
		ifaces, exports, keys []string
		linkType, routerID    string
		permissive, noInstall bool
		hello, update         time.Duration
		rttMin, rttMax        time.Duration
		maxPenalty, decay     int
		rxcost                int
		table                 int
		controlPath           string
	)
	cmd := &cobra.Command{
		Use:   "babel --interface IF [--interface IF ...] [flags]",
		Short: "Run a standalone Babel router (RFC 8966, RTT, MAC, source-specific)",
		Long: `Run Babel on the given interfaces: discover neighbours, announce the
--export prefixes, install the learned routes in the kernel (proto babel,
as babeld does) and serve the router's state on --control.

It interoperates with babeld: use --type tunnel and the rtt flags on links
where babeld says "type tunnel", and the same --mac-key as babeld's "key"
statements. IPv6 forwarding is left as the host has it.

Examples:
  re6stnet babel -i eth0 --export 2001:db8:1::/48
  re6stnet babel -i tap0 -i tap1 --type tunnel \
      --max-rtt-penalty 5000 --rtt-max 500ms --rtt-decay 125 \
      --mac-key blake2s128:00112233445566778899aabbccddeeff \
      --export '::/0 from 2001:db8::/32'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := babel.ParseLinkType(linkType)
			if err != nil {
				return fmt.Errorf("--type: %w", err)
			}
			cfg := babel.DefaultInterfaceConfig(t)
			cfg.HelloInterval, cfg.UpdateInterval = hello, update
			if rxcost < 0 || rxcost >= babel.Infinity {
				return fmt.Errorf("--rxcost %d out of range 1..65534", rxcost)
			}
			cfg.Rxcost = uint16(rxcost)
			f := cmd.Flags()
			if f.Changed("rtt-min") || f.Changed("rtt-max") || f.Changed("max-rtt-penalty") || f.Changed("rtt-decay") {
				cfg.Timestamps = true
				if cfg.RTT == (babel.RTTConfig{}) {
					cfg.RTT = babel.DefaultTunnelRTT
				}
			}
			if f.Changed("rtt-min") {
				cfg.RTT.Min = rttMin
			}
			if f.Changed("rtt-max") {
				cfg.RTT.Max = rttMax
			}
			if f.Changed("max-rtt-penalty") {
				if maxPenalty < 0 || maxPenalty >= babel.Infinity {
					return fmt.Errorf("--max-rtt-penalty %d out of range 0..65534", maxPenalty)
				}
				cfg.RTT.MaxPenalty = uint16(maxPenalty)
			}
			if f.Changed("rtt-decay") {
				cfg.RTT.Decay = decay
			}
			if len(keys) > 0 || permissive {
				auth := &babel.Auth{Permissive: permissive}
				for j, s := range keys {
					k, err := babel.ParseKey(s)
					if err != nil {
						return fmt.Errorf("--mac-key: %w", err)
					}
					if j == 0 {
						auth.Sign = append(auth.Sign, k)
					} else {
						auth.Accept = append(auth.Accept, k)
					}
				}
				cfg.Auth = auth
			}
			o := standalone.Options{
				Interfaces: ifaces, Interface: cfg, Control: controlPath,
				Install: !noInstall, Table: table, Logger: logger(),
			}
			for _, s := range exports {
				e, err := standalone.ParseExport(s)
				if err != nil {
					return fmt.Errorf("--export: %w", err)
				}
				o.Exports = append(o.Exports, e)
			}
			if routerID != "" {
				if o.RouterID, err = babel.ParseRouterID(routerID); err != nil {
					return fmt.Errorf("--router-id: %w", err)
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return standalone.Run(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&ifaces, "interface", "i", nil, "interface to run Babel on (repeatable)")
	f.StringArrayVar(&exports, "export", nil, "prefix to announce, `PREFIX` or 'PREFIX from SOURCE' for a source-specific route (repeatable)")
	f.StringVar(&linkType, "type", "wired", "link type of the interfaces: wired (2-out-of-3), tunnel (2-out-of-3 with timestamps and RTT penalty), wireless (ETX)")
	f.StringArrayVar(&keys, "mac-key", nil, "RFC 8967 MAC key, blake2s128:HEX or hmac-sha256:HEX; the first signs, the others are also accepted (repeatable)")
	f.BoolVar(&permissive, "mac-permissive", false, "accept packets without a valid MAC (migrating a network to MAC)")
	f.DurationVar(&hello, "hello-interval", 4*time.Second, "multicast Hello interval")
	f.DurationVar(&update, "update-interval", 0, "full route dump interval (default 4 × hello interval)")
	f.IntVar(&rxcost, "rxcost", 0, "nominal link cost (default 96, 256 on wireless links)")
	f.DurationVar(&rttMin, "rtt-min", babel.DefaultTunnelRTT.Min, "RTT below which no penalty applies (enables timestamps)")
	f.DurationVar(&rttMax, "rtt-max", babel.DefaultTunnelRTT.Max, "RTT at which the full penalty applies (enables timestamps)")
	f.IntVar(&maxPenalty, "max-rtt-penalty", int(babel.DefaultTunnelRTT.MaxPenalty), "metric added at rtt-max; 0 disables the RTT metric")
	f.IntVar(&decay, "rtt-decay", babel.DefaultTunnelRTT.Decay, "weight of a new RTT sample in the average, out of 256")
	f.StringVar(&routerID, "router-id", "", "router-id as 16 hex digits (default random)")
	f.StringVar(&controlPath, "control", defaultControl, "path of the control socket (empty: none)")
	f.BoolVar(&noInstall, "no-install", false, "do not install learned routes in the kernel")
	f.IntVar(&table, "table", 0, "kernel routing table for learned routes (default main)")
	_ = cmd.MarkFlagRequired("interface")
	cmd.AddCommand(babelDumpCommand())
	return cmd
}

func babelDumpCommand() *cobra.Command {
	var (
		controlPath string
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "dump",
		Short: "Print a running router's interfaces, neighbours and routes",
		Long: `Print the state of a running "re6stnet babel": interfaces with traffic
counters, neighbours (reach, rxcost, txcost, RTT, cost), exported prefixes and
routes (prefix, source prefix, metric, seqno, router-id, next hop, whether
installed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := control.Dump(controlPath)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(d)
			}
			return control.WriteText(cmd.OutOrStdout(), d)
		},
	}
	cmd.Flags().StringVar(&controlPath, "control", defaultControl, "path of the router's control socket")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
