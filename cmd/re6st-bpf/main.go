package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/rs/zerolog"
	"github.com/rs/zerolog/log"
	"github.com/spf13/cobra"

	"github.com/re6st-bpf/re6st-bpf/internal/logging"
	"github.com/re6st-bpf/re6st-bpf/internal/version"
	"github.com/re6st-bpf/re6st-bpf/loader"
)

type globals struct {
	netns    string
	instance string
	json     bool
	logLevel string
	logFmt   string
}

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "re6st-bpf:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "re6st-bpf",
		Short: "Inspect and program the re6st-bpf data plane",
		Long: `re6st-bpf sets up, inspects and programs the eBPF data plane of a re6st-bpf node:
the overlay device, FOU/GRE tunnels, the route map and the counters.

The data plane stays loaded (pinned under /sys/fs/bpf/re6st/<instance>/) after
the command exits. With --netns, the command acts in that named network
namespace while staying in the caller's mount namespace; under 'ip netns exec',
whose private /sys hides /sys/fs/bpf, it refuses to run.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			lvl, err := zerolog.ParseLevel(g.logLevel)
			if err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			if log.Logger, err = logging.New(os.Stderr, g.logFmt, lvl); err != nil {
				return err
			}
			if g.instance == "" {
				g.instance = g.netns
			}
			if g.instance == "" {
				g.instance = "default"
			}
			if os.Geteuid() != 0 {
				return errors.New("needs root (CAP_BPF and CAP_NET_ADMIN)")
			}
			return loader.CheckHostNamespaces(g.netns)
		},
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.netns, "netns", "n", "", "named network namespace to act in")
	pf.StringVar(&g.instance, "instance", "", "data plane instance name (default: the netns name, or \"default\")")
	pf.BoolVar(&g.json, "json", false, "print machine-readable JSON")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&g.logFmt, "log-format", logging.Auto, logging.FlagUsage)
	version.AddFlag(root)
	root.AddCommand(upCmd(g), downCmd(g), tunnelCmd(g), routeCmd(g), statusCmd(g), classCmd(g))
	return root
}

// with runs fn on the instance's loaded data plane.
func (g *globals) with(fn func(*loader.Datapath) error) error {
	d, err := loader.Open(g.instance)
	if err != nil {
		return err
	}
	defer d.Close()
	return fn(d)
}

// readCmd is a command that reads something from the data plane and prints
// it as a table, or as JSON with --json.
func readCmd[T any](g *globals, use, short string, read func(*loader.Datapath) (T, error), print func(T)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.with(func(d *loader.Datapath) error {
				v, err := read(d)
				if err != nil {
					return err
				}
				if g.json {
					return g.printJSON(v)
				}
				print(v)
				return nil
			})
		},
	}
}

func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
