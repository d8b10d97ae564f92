package main

import (
	"fmt"
	"os"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
)

func rootCommand() *cobra.Command {
	var level string
	root := &cobra.Command{
		Use:   "re6stnet",
		Short: "re6st-bpf node: resilient IPv6 overlay with an eBPF data plane",
		Long: `re6stnet is the node of a re6st-bpf network.

The babel subcommand runs the Babel routing protocol alone, on real
interfaces, which is how Babel is tested on its own and how a host can stand
in for babeld on a LAN.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			l, err := zerolog.ParseLevel(level)
			if err != nil {
				return fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", level)
			}
			zerolog.SetGlobalLevel(l)
			return nil
		},
	}
	root.PersistentFlags().StringVar(&level, "log-level", "info", "log level: trace, debug, info, warn, error")
	root.AddCommand(babelCommand())
	return root
}

func logger() zerolog.Logger {
	return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000"}).With().Timestamp().Logger()
}
