package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/re6st-bpf/re6st-bpf/registry/client"
)

// adminCommands are the subcommands that call a running registry's
// private API.
func adminCommands() []*cobra.Command {
	var registryURL string
	var asJSON bool
	connect := func() (*client.Client, error) { return client.New(registryURL, nil) }
	withRegistry := func(cmd *cobra.Command) *cobra.Command {
		cmd.Flags().StringVar(&registryURL, "registry", "http://localhost/", "URL of the running registry")
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		return cmd
	}
	listing := func(cmd *cobra.Command) *cobra.Command {
		cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		return withRegistry(cmd)
	}

	token := &cobra.Command{Use: "token", Short: "Manage registration tokens"}
	token.AddCommand(
		withRegistry(&cobra.Command{
			Use:   "add EMAIL [TOKEN]",
			Short: "Add a token for EMAIL (a random one if TOKEN is not given) and print it",
			Args:  cobra.RangeArgs(1, 2),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := connect()
				if err != nil {
					return err
				}
				wanted := ""
				if len(args) == 2 {
					wanted = args[1]
				}
				made, err := c.AddToken(cmd.Context(), args[0], wanted)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), made)
				return nil
			},
		}),
		withRegistry(&cobra.Command{
			Use:   "delete TOKEN",
			Short: "Delete a token",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := connect()
				if err != nil {
					return err
				}
				return c.DeleteToken(cmd.Context(), args[0])
			},
		}),
		listing(&cobra.Command{
			Use:   "list",
			Short: "List pending tokens",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := connect()
				if err != nil {
					return err
				}
				tokens, err := c.ListTokens(cmd.Context())
				if err != nil {
					return err
				}
				return print(cmd.OutOrStdout(), asJSON, tokens, "TOKEN\tEMAIL\tPREFIX LENGTH\tCREATED", func(w io.Writer) {
					for _, t := range tokens {
						fmt.Fprintf(w, "%s\t%s\t%d\t%s\n", t.Token, t.Email, t.PrefixLen, time.Unix(t.Date, 0).UTC().Format(time.RFC3339))
					}
				})
			},
		}),
	)
	revoke := withRegistry(&cobra.Command{
		Use:   "revoke CN_OR_SERIAL",
		Short: "Revoke a certificate by serial (the node keeps its prefix and may renew) or by CN n/len (the prefix is freed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			return c.Revoke(cmd.Context(), args[0])
		},
	})
	updateHMAC := withRegistry(&cobra.Command{
		Use:   "update-hmac",
		Short: "Advance the Babel key rotation by one step (run it three times, an hour apart, for a full rotation)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			return c.UpdateHMAC(cmd.Context())
		},
	})
	var filter nodeFilter
	prefixes := func(use, short string, filter *nodeFilter) *cobra.Command {
		return listing(&cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return listPrefixes(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), connect, asJSON, filter)
			},
		})
	}
	nodes := prefixes("nodes", "List the nodes: certificates issued, with CN, subnet, serial, expiry, revocation, enrolment source", &filter)
	nodes.Long = `List the nodes. The filters select a flood of enrolments, and --revoke
revokes every node listed (by CN: their prefixes are freed), except the
registry's own node. E.g.:
  re6st-registry nodes --anonymous --since 1h --source 192.0.2.9 --revoke`
	f := nodes.Flags()
	f.DurationVar(&filter.since, "since", 0, "only certificates issued (or renewed) within this duration, e.g. 30m")
	f.StringVar(&filter.source, "source", "", "only nodes enrolled from this address or network (known for enrolments since the registry started)")
	f.BoolVar(&filter.anonymous, "anonymous", false, "only anonymous nodes (no e-mail)")
	f.BoolVar(&filter.revoke, "revoke", false, "revoke every node listed (by CN), except the registry's own node")
	return []*cobra.Command{
		token, revoke, updateHMAC, nodes,
		prefixes("prefixes", "List every block of the network: issued, free or reserved", nil),
	}
}

// nodeFilter selects nodes for "nodes", and maybe revokes them.
type nodeFilter struct {
	since             time.Duration
	source            string
	anonymous, revoke bool
}

// match says whether the filter selects p, issued at most since ago.
func (f *nodeFilter) match(p client.Prefix, source netip.Prefix, now time.Time) bool {
	if p.State != "issued" || (f.anonymous && p.Email != "") || (f.since > 0 && now.Sub(p.NotBefore) > f.since) {
		return false
	}
	if !source.IsValid() {
		return true
	}
	addr, err := netip.ParseAddr(p.Source)
	return err == nil && source.Contains(addr)
}

// listPrefixes prints the blocks, only the nodes filter selects if it is
// not nil, and revokes them if it says so.
func listPrefixes(ctx context.Context, out, errOut io.Writer, connect func() (*client.Client, error), asJSON bool, filter *nodeFilter) error {
	var source netip.Prefix
	if filter != nil && filter.source != "" {
		networks, err := parseNetworks("--source", []string{filter.source})
		if err != nil {
			return err
		}
		source = networks[0]
	}
	c, err := connect()
	if err != nil {
		return err
	}
	all, err := c.ListPrefixes(ctx)
	if err != nil {
		return err
	}
	list := []client.Prefix{}
	now := time.Now()
	for _, p := range all {
		if filter == nil || filter.match(p, source, now) {
			list = append(list, p)
		}
	}
	if err := printPrefixes(out, asJSON, list); err != nil || filter == nil || !filter.revoke {
		return err
	}
	revoked := 0
	for _, p := range list {
		if p.Registry {
			fmt.Fprintf(errOut, "%s is the registry's own node: not revoked\n", p.CN)
			continue
		}
		if err := c.Revoke(ctx, p.CN); err != nil {
			return fmt.Errorf("revoking %s (%d revoked before): %w", p.CN, revoked, err)
		}
		revoked++
	}
	fmt.Fprintf(errOut, "%d certificates revoked, their prefixes freed\n", revoked)
	return nil
}

func printPrefixes(out io.Writer, asJSON bool, list []client.Prefix) error {
	return print(out, asJSON, list, "SUBNET\tSTATE\tCN\tSERIAL\tEXPIRES\tEMAIL\tSOURCE\tFLAGS", func(w io.Writer) {
		for _, p := range list {
			expires, flags := "", ""
			if !p.NotAfter.IsZero() {
				expires = p.NotAfter.UTC().Format(time.RFC3339)
			}
			if p.Registry {
				flags += "registry "
			}
			if p.Revoked {
				flags += "revoked"
			}
			serial := ""
			if p.Serial != 0 {
				serial = fmt.Sprint(p.Serial)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Subnet, p.State, p.CN, serial, expires, p.Email, p.Source, flags)
		}
	})
}

func print(out io.Writer, asJSON bool, value any, header string, rows func(io.Writer)) error {
	if asJSON {
		encoder := json.NewEncoder(out)
		encoder.SetIndent("", "  ")
		return encoder.Encode(value)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, header)
	rows(w)
	return w.Flush()
}
