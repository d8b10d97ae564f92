package standalone

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/re6st-bpf/re6st-bpf/routing/babel/control"
	"github.com/re6st-bpf/re6st-bpf/routing/fib"
	"github.com/rs/zerolog"
)

// Export is a prefix to announce, optionally source-specific.
type Export struct {
	Prefix netip.Prefix
	Source netip.Prefix
}

// ParseExport parses "PREFIX" or "PREFIX from SOURCE".
func ParseExport(s string) (Export, error) {
	dst, src, hasSrc := strings.Cut(strings.TrimSpace(s), " from ")
	p, err := netip.ParsePrefix(strings.TrimSpace(dst))
	if err != nil {
		return Export{}, fmt.Errorf("export %q: %w", s, err)
	}
	e := Export{Prefix: p.Masked()}
	if hasSrc {
		if e.Source, err = netip.ParsePrefix(strings.TrimSpace(src)); err != nil {
			return Export{}, fmt.Errorf("export %q: source: %w", s, err)
		}
		if e.Source.Addr().Is4() != p.Addr().Is4() {
			return Export{}, fmt.Errorf("export %q: prefix and source differ in address family", s)
		}
	}
	return e, nil
}

// Options configure Run.
type Options struct {
	Interfaces []string
	// Interface is the configuration of every interface.
	Interface babel.InterfaceConfig
	Exports   []Export
	// RouterID is random when zero.
	RouterID babel.RouterID
	// Control is the path of the control socket; empty means none.
	Control string
	// Install puts learned routes into the kernel table Table (0: main).
	Install bool
	Table   int
	Logger  zerolog.Logger
}

// linkLocalWait is how long Run waits for an interface's link-local
// address to appear (a link that just came up).
const linkLocalWait = 10 * time.Second

// Run runs the router until ctx ends. Installed routes are removed on exit.
func Run(ctx context.Context, o Options) error {
	if len(o.Interfaces) == 0 {
		return errors.New("no interface: give at least one --interface")
	}
	id := o.RouterID
	if id == (babel.RouterID{}) {
		id = babel.RandomRouterID()
	}
	log := o.Logger
	r, err := babel.NewRouter(babel.Config{RouterID: id, Logger: &log})
	if err != nil {
		return err
	}
	defer r.Close()
	for _, name := range o.Interfaces {
		t, err := listen(ctx, name)
		if err != nil {
			return err
		}
		if err := r.AddInterface(name, o.Interface, t); err != nil {
			t.Close()
			return err
		}
	}
	for _, e := range o.Exports {
		if err := r.Export(e.Prefix, e.Source, 0); err != nil {
			return err
		}
	}
	log.Info().Stringer("router_id", id).Strs("interfaces", o.Interfaces).Msg("babel: running")
	if o.Install {
		k := &fib.Kernel{Table: o.Table}
		w := fib.Follow(r, k, log)
		defer func() {
			w.Stop()
			for _, sel := range r.SelectedRoutes() {
				if err := k.Delete(sel.Key.Prefix, sel.Key.Source); err != nil {
					log.Warn().Err(err).Msg("babel: cleanup")
				}
			}
		}()
	}
	if o.Control == "" {
		<-ctx.Done()
		return nil
	}
	return control.Serve(ctx, o.Control, r, log)
}

// listen opens the interface's socket, waiting a little for its link-local
// address if the link just came up.
func listen(ctx context.Context, name string) (*babel.UDPTransport, error) {
	deadline := time.Now().Add(linkLocalWait)
	for {
		t, err := babel.ListenUDP(name)
		if err == nil || time.Now().After(deadline) || !errors.Is(err, babel.ErrNoLinkLocal) {
			return t, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
