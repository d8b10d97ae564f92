package main

import (
	"fmt"
	"os"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/re6st-bpf/re6st-bpf/internal/logging"
)

func rootCommand() *cobra.Command {
	var level, format string
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

Options may come from files: "@FILE" reads one option per line, "name value".

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
			zerolog.SetGlobalLevel(l)
			log, err = logging.New(os.Stderr, format, l)
			return err
		},
	}
	root.PersistentFlags().StringVar(&level, "log-level", "info", "log level: trace, debug, info, warn, error")
	root.PersistentFlags().StringVar(&format, "log-format", logging.Auto, logging.FlagUsage)
	addNodeFlags(root, &nf)
	root.AddCommand(babelCommand(), statusCommand())
	return root
}

// log is the logger --log-format and --log-level chose.
var log zerolog.Logger

func logger() zerolog.Logger { return log }
