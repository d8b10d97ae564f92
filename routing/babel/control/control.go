package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/rs/zerolog"
)

// Serve answers requests on the UNIX socket at path until ctx ends. A stale
// socket file is replaced.
func Serve(ctx context.Context, path string, r *babel.Router, log zerolog.Logger) error {
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	defer os.Remove(path)
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("control socket: %w", err)
		}
		go handle(c, r, log)
	}
}

func handle(c net.Conn, r *babel.Router, log zerolog.Logger) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return
	}
	enc := json.NewEncoder(c)
	switch cmd := strings.TrimSpace(line); cmd {
	case "dump":
		err = enc.Encode(r.Dump())
	default:
		err = enc.Encode(map[string]string{"error": fmt.Sprintf("unknown command %q (want dump)", cmd)})
	}
	if err != nil {
		log.Debug().Err(err).Msg("control: reply")
	}
}

// Dump asks the router serving path for its state.
func Dump(path string) (babel.Dump, error) {
	var d babel.Dump
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return d, fmt.Errorf("control socket %s: %w (is re6stnet babel running?)", path, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "dump\n"); err != nil {
		return d, fmt.Errorf("control socket %s: %w", path, err)
	}
	raw, err := io.ReadAll(c)
	if err != nil {
		return d, fmt.Errorf("control socket %s: %w", path, err)
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Error != "" {
		return d, errors.New(e.Error)
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return d, fmt.Errorf("control socket %s: bad reply: %w", path, err)
	}
	return d, nil
}

// WriteText prints a dump with one line per object, in the spirit of
// babeld's "dump" (times in ms, costs as integers).
func WriteText(w io.Writer, d babel.Dump) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "my-id %s seqno %d\n", d.RouterID, d.Seqno)
	for _, i := range d.Interfaces {
		fmt.Fprintf(b, "interface %s type %s ipv6 %s hello %s auth %t sent %d/%dB received %d/%dB dropped %d\n",
			i.Name, i.Type, i.Local, i.HelloInterval, i.Authenticated,
			i.Stats.PacketsSent, i.Stats.BytesSent, i.Stats.PacketsReceived, i.Stats.BytesReceived, i.Stats.Dropped)
	}
	for _, n := range d.Neighbours {
		fmt.Fprintf(b, "neighbour %s if %s reach %04x ureach %04x rxcost %d txcost %d", n.Address, n.Interface, n.Reach, n.UReach, n.Rxcost, n.Txcost)
		if n.RTTValid {
			fmt.Fprintf(b, " rtt %.3f rttcost %d", float64(n.RTTMicros)/1000, n.RTTCost)
		}
		fmt.Fprintf(b, " multiplier %d cost %d\n", n.Multiplier, n.Cost)
	}
	for _, x := range d.Exported {
		fmt.Fprintf(b, "xroute %s from %s metric %d\n", x.Prefix, source(x.Source, x.Prefix), x.Metric)
	}
	// babeld's dump says "installed" for the route it selected.
	for _, r := range d.Routes {
		fmt.Fprintf(b, "route %s from %s installed %s id %s metric %d refmetric %d seqno %d feasible %s via %s nexthop %s if %s\n",
			r.Prefix, source(r.Source, r.Prefix), yesNo(r.Selected), r.RouterID, r.Metric, r.Refmetric, r.Seqno,
			yesNo(r.Feasible), r.Neighbour, r.NextHop, r.Interface)
	}
	return b.Flush()
}

// source prints a missing source prefix as babeld does (::/0 or 0.0.0.0/0).
func source(src, dst netip.Prefix) string {
	if src.IsValid() {
		return src.String()
	}
	if dst.Addr().Is4() {
		return "0.0.0.0/0"
	}
	return "::/0"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
