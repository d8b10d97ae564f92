package fib

import (
	"net/netip"
	"sync"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/rs/zerolog"
)

// Route is one forwarding entry: packets to Dst (and, for a
// source-specific route, from Src) leave through Interface towards NextHop.
type Route struct {
	Dst       netip.Prefix
	Src       netip.Prefix // zero when not source-specific
	Interface string
	NextHop   netip.Addr
	Metric    uint16
}

// Backend is a forwarding table.
type Backend interface {
	// Replace installs r, atomically replacing any route for (Dst, Src).
	Replace(r Route) error
	// Delete removes the route for (dst, src); a missing route is not an
	// error.
	Delete(dst, src netip.Prefix) error
}

// Writer applies the selected routes of a babel.Router to a Backend.
type Writer struct {
	backend Backend
	log     zerolog.Logger

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []babel.RouteChange
	stopped bool
	done    chan struct{}
	errors  int
}

// Follow starts applying r's route changes to backend, beginning with the
// routes already selected. Changes are queued by the router's callback and
// applied in order by one goroutine. Call Stop to end.
func Follow(r *babel.Router, backend Backend, log zerolog.Logger) *Writer {
	w := &Writer{backend: backend, log: log, done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	cancel := r.Subscribe(w.enqueue)
	go func() {
		defer close(w.done)
		defer cancel()
		w.run()
	}()
	return w
}

func (w *Writer) enqueue(c babel.RouteChange) {
	w.mu.Lock()
	w.queue = append(w.queue, c)
	w.mu.Unlock()
	w.cond.Signal()
}

func (w *Writer) run() {
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.stopped {
			w.cond.Wait()
		}
		if w.stopped {
			w.mu.Unlock()
			return
		}
		batch := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, c := range batch {
			w.apply(c)
		}
	}
}

func (w *Writer) apply(c babel.RouteChange) {
	var err error
	if c.Route == nil {
		err = w.backend.Delete(c.Key.Prefix, c.Key.Source)
	} else {
		err = w.backend.Replace(Route{
			Dst: c.Key.Prefix, Src: c.Key.Source,
			Interface: c.Route.Interface, NextHop: c.Route.NextHop, Metric: c.Route.Metric,
		})
	}
	if err != nil {
		w.mu.Lock()
		w.errors++
		w.mu.Unlock()
		w.log.Warn().Err(err).Stringer("route", c.Key).Msg("fib: cannot apply route")
		return
	}
	w.log.Debug().Stringer("route", c.Key).Bool("withdrawn", c.Route == nil).Msg("fib: route applied")
}

// Errors counts changes the backend refused.
func (w *Writer) Errors() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errors
}

// Stop ends the writer. Changes still queued are dropped; the routes
// stay as they are in the backend.
func (w *Writer) Stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.cond.Signal()
	<-w.done
}
