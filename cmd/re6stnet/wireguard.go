package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/re6st-bpf/re6st-bpf/node"
	"github.com/spf13/cobra"
)

func wireguardCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "wireguard",
		Short: "Act on a running node's WireGuard tunnels",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(wireguardRotateCommand())
	return cmd
}

func wireguardRotateCommand() *cobra.Command {
	var runDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Replace the node's WireGuard key now, without dropping its tunnels",
		Long: `Replace the running node's WireGuard key now, as --wireguard-rotate does at
each tick: a new key bound to the node's certificate with the next
generation, set on every WireGuard device, its binding sent to each tunnel's
peer. Exits non-zero if a peer did not acknowledge it (its tunnel goes
silent and is replaced) or the node offers no WireGuard.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, code, err := askControl(runDir, "POST", "/wireguard/rotate")
			if err != nil {
				return err
			}
			var r node.WireGuardRotation
			if err := json.Unmarshal(body, &r); err != nil {
				return fmt.Errorf("control socket answered %d: %s", code, body)
			}
			if asJSON {
				if _, err := cmd.OutOrStdout().Write(body); err != nil {
					return err
				}
			} else if r.Generation > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "WireGuard key rotated: generation %d, on %d tunnels\n", r.Generation, r.Tunnels)
			}
			if r.Error != "" {
				return errors.New(r.Error)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&runDir, "run", "r", node.DefaultRunDir, "runtime directory of the node (its control socket)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
