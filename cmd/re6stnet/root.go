package main

import (
	"fmt"
	"os"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/re6st-bpf/re6st-bpf/internal/logging"
	"github.com/re6st-bpf/re6st-bpf/internal/version"
)

func rootCommand() *cobra.Command {
	var level, format string
	var verbose int
	var nf nodeFlags
	root := &cobra.Command{
		Use:   "re6stnet [@OPTIONS_FILE] --registry URL --ca CA --cert CERT --key KEY [flags]",
		Short: "re6st-bpf node: resilient IPv6 overlay with an eBPF data plane",
		Long: `re6stnet is the node of a re6st-bpf network. Without a subcommand it runs
the node daemon: it checks its certificate (from re6st-conf), loads the
network parameters (cached, or from the registry), brings the eBPF data plane
up, runs Babel on its tunnels and -i interfaces, and keeps a random mesh of
tunnels to other nodes. It keeps working when the registry is down. Stopping
it retracts its routes and leaves the data plane forwarding; started again,
it takes over its tunnels.

Options may come from files: "@FILE" reads one option per line, "name value",
with shell quoting, as re6st writes them; re6st's options that have no meaning
here (--pp, --dh, -O, -B, --ovpnlog, --client, ...: see docs/node.md) are
accepted with a warning.

The status subcommand shows a running node; the babel subcommand runs the
Babel routing protocol alone, on real interfaces, which is how Babel is
tested on its own and how a host can stand in for babeld on a LAN.`,
		Args:          cobra.NoArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return runNode(cmd, &nf) },
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			l, err := zerolog.ParseLevel(level)
			if err != nil {
				return fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", level)
			}
			if cmd.Flags().Changed("verbose") {
				if l, err = verbosity(verbose); err != nil {
					return err
				}
			}
			zerolog.SetGlobalLevel(l)
			log, err = logging.New(os.Stderr, format, l)
			return err
		},
	}
	root.PersistentFlags().StringVar(&level, "log-level", "info", "log level: trace, debug, info, warn, error")
	root.PersistentFlags().StringVar(&format, "log-format", logging.Auto, logging.FlagUsage)
	root.PersistentFlags().IntVarP(&verbose, "verbose", "v", 2, "re6st's log level, instead of --log-level: 0 off, 1 warnings, 2 info, 3 debug, 4 trace")
	version.AddFlag(root)
	addNodeFlags(root, &nf)
	root.AddCommand(babelCommand(), statusCommand(), wireguardCommand())
	return root
}

// verbosity is the log level of re6st's -v LEVEL.
func verbosity(v int) (zerolog.Level, error) {
	levels := []zerolog.Level{zerolog.Disabled, zerolog.WarnLevel, zerolog.InfoLevel, zerolog.DebugLevel, zerolog.TraceLevel}
	if v < 0 || v >= len(levels) {
		return zerolog.NoLevel, fmt.Errorf("--verbose %d: want 0 to 4", v)
	}
	return levels[v], nil
}

// log is the logger --log-format and --log-level chose.
var log zerolog.Logger

func logger() zerolog.Logger { return log }
