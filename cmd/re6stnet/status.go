package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/re6st-bpf/re6st-bpf/node"
	"github.com/spf13/cobra"
)

func statusCommand() *cobra.Command {
	var runDir, stateDir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a running node: tunnels, neighbours, routes, registry, certificate",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := fetchStatus(runDir)
			if err != nil {
				if r, rerr := node.ReadRevocation(stateDir); rerr == nil {
					return fmt.Errorf("%w: the node stopped on %s: certificate serial %s revoked (%s)",
						err, r.Time.Format(time.DateTime), r.Serial, r.Reason)
				}
				return err
			}
			if asJSON {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			var s node.Status
			if err := json.Unmarshal(body, &s); err != nil {
				return err
			}
			printStatus(cmd.OutOrStdout(), &s)
			return nil
		},
	}
	cmd.Flags().StringVarP(&runDir, "run", "r", node.DefaultRunDir, "runtime directory of the node (its control socket)")
	cmd.Flags().StringVarP(&stateDir, "state", "s", node.DefaultStateDir, "state directory of the node (where a revocation is recorded)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func fetchStatus(runDir string) ([]byte, error) {
	body, code, err := askControl(runDir, http.MethodGet, "/status")
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("control socket: %s", http.StatusText(code))
	}
	return body, err
}

// askControl sends a request to the control socket of the node whose
// runtime directory is runDir, and returns the answer's body and status.
func askControl(runDir, method, path string) ([]byte, int, error) {
	socket := node.SocketPath(runDir)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}}}
	req, err := http.NewRequest(method, "http://re6stnet"+path, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("no node answers on %s (is re6stnet running with -r %s?)", socket, runDir)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return body, resp.StatusCode, err
}

func printStatus(w io.Writer, s *node.Status) {
	fmt.Fprintf(w, "node %s (address %s) in %s, up %s\n", s.Prefix, s.Address, s.Network, time.Duration(s.Uptime).Round(time.Second))
	if s.IPv4.IsValid() {
		fmt.Fprintf(w, "IPv4 subnet %s (address %s)\n", s.IPv4Subnet, s.IPv4)
	}
	reach := "reachable"
	if !s.Registry.Reachable {
		reach = "UNREACHABLE: " + s.Registry.LastError
	}
	fmt.Fprintf(w, "registry %s: %s\n", s.Registry.URL, reach)
	fmt.Fprintf(w, "certificate serial %s expires %s (%d days), renewed from %s\n", s.Certificate.Serial,
		s.Certificate.Expires.Format(time.DateTime), s.Certificate.Days, s.Certificate.RenewAt.Format(time.DateTime))
	if c := s.Certificate; !c.LastAttempt.IsZero() {
		result := "ok"
		if c.LastError != "" {
			result = "FAILED: " + c.LastError
		}
		fmt.Fprintf(w, "  last renewal attempt %s: %s\n", c.LastAttempt.Format(time.DateTime), result)
	}
	fmt.Fprintf(w, "network parameters version %d, hello %ds, tunnels: %d out / %d in allowed\n\n",
		s.Params.Version, s.Params.Hello, s.ClientCount, s.MaxClients)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TUNNEL\tPEER\tDIR\tTYPE\tENCRYPTED\tREMOTE\tRTT\tCOST\tROUTES\tRX\tTX")
	for _, t := range s.Tunnels {
		dir := "in"
		if t.Outgoing {
			dir = "out"
		}
		if t.NAT {
			dir += "/nat"
		}
		encrypted := "no"
		if t.Encrypted {
			encrypted = "yes"
		}
		remote := "-" // an OpenVPN server's client: openvpn does not say from where
		if t.Remote.IsValid() {
			remote = t.Remote.String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%.1fms\t%d\t%d\t%s\t%s\n", t.ID, t.Peer, dir, t.Type, encrypted, remote,
			float64(t.RTTMicros)/1000, t.Cost, t.Routes, bytes(t.Traffic.RxBytes), bytes(t.Traffic.TxBytes))
	}
	tw.Flush()
	for _, o := range s.OpenVPNServers {
		state := "running"
		if !o.Running {
			state = "NOT RUNNING"
		}
		family := "IPv4"
		if o.IPv6 {
			family = "IPv6"
		}
		fmt.Fprintf(w, "openvpn server %s (%s over %s, port %d): %s, %d clients\n", o.Device, o.Type, family, o.Port, state, o.Clients)
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tVIA\tMETRIC\tROUTER-ID\tINSTALLED")
	for _, r := range s.Routes {
		installed := "yes"
		if !r.Installed {
			installed = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", r.Prefix, r.Via, r.Metric, r.RouterID, installed)
	}
	tw.Flush()
	if len(s.Classes) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CLASS\tRANGE\tADDRESS\tDSCP\tPRIORITY\tMETRIC\tOWN TUNNELS\tROUTES\tPACKETS\tBYTES\tDROPS")
		for _, c := range s.Classes {
			own := "all"
			if len(c.Peers) > 0 {
				own = "to " + strings.Join(c.Peers, ",")
			}
			fmt.Fprintf(tw, "%d %s\t%s\t%s\t%d\t%d\t%s\t%s\t%d\t%d\t%s\t%d\n", c.ID, c.Name, c.Range, c.Address, c.DSCP, c.Priority,
				c.Metric, own, len(c.Routes), c.Traffic.Packets, bytes(c.Traffic.Bytes), c.Traffic.Drops)
		}
		tw.Flush()
	}
	if s.FIB.Errors > 0 {
		fmt.Fprintf(w, "\nroute writes refused: %d, %d waiting for a retry; last: %s\n", s.FIB.Errors, s.FIB.Retrying, s.FIB.LastError)
	}
}

func bytes(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%dB", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(b)/float64(div), "KMGTPE"[exp])
}
