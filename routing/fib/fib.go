package fib

import (
	"net/netip"
	"sync"
	"time"

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

// Sweeper is a Backend that can list its routes: the Writer then removes
// the routes into a tunnel that goes (Forget) and those Babel did not
// select again after a restart (PruneAfter).
type Sweeper interface {
	// DeleteVia deletes the routes into tunnel id.
	DeleteVia(tunnel uint32) ([]babel.RouteKey, error)
	// DeleteExcept deletes the routes for which keep is false, local ones
	// aside.
	DeleteExcept(keep func(babel.RouteKey) bool) ([]babel.RouteKey, error)
}

// Stats are the Writer's failures.
type Stats struct {
	Errors    uint64 `json:"errors"`               // writes the backend refused
	LastError string `json:"last_error,omitempty"` // the latest of them
	Retrying  int    `json:"retrying"`             // routes waiting for a retry
}

// Retries of a failed write back off from retryMin to retryMax.
const (
	retryMin = time.Second
	retryMax = time.Minute
)

// Writer applies the selected routes of a babel.Router to a Backend: it
// is the only writer of that backend. A write the backend refuses is
// retried with a back-off until it succeeds or Babel changes the route.
type Writer struct {
	backend            Backend
	log                zerolog.Logger
	retryMin, retryMax time.Duration

	mu      sync.Mutex
	queue   []func()
	written map[babel.RouteKey]bool // routes as Babel selected them, in the backend
	stats   Stats

	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	// Owned by the writer's goroutine.
	desired map[babel.RouteKey]Route // what Babel selected
	failed  map[babel.RouteKey]*retry
	pruneAt time.Time
}

type retry struct {
	delay time.Duration
	at    time.Time
}

// Follow starts applying r's route changes to backend, beginning with the
// routes already selected. Changes are queued by the router's callback and
// applied in order by one goroutine. Call Stop to end.
func Follow(r *babel.Router, backend Backend, log zerolog.Logger) *Writer {
	return follow(r, backend, log, retryMin, retryMax)
}

func follow(r *babel.Router, backend Backend, log zerolog.Logger, minDelay, maxDelay time.Duration) *Writer {
	w := &Writer{
		backend: backend, log: log, retryMin: minDelay, retryMax: maxDelay,
		written: map[babel.RouteKey]bool{}, desired: map[babel.RouteKey]Route{}, failed: map[babel.RouteKey]*retry{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	cancel := r.Subscribe(func(c babel.RouteChange) { w.enqueue(func() { w.apply(c) }) })
	go func() {
		defer close(w.done)
		defer cancel()
		w.run()
	}()
	return w
}

func (w *Writer) enqueue(f func()) {
	w.mu.Lock()
	w.queue = append(w.queue, f)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// call runs f on the writer's goroutine and waits for it.
func (w *Writer) call(f func()) {
	ran := make(chan struct{})
	w.enqueue(func() { f(); close(ran) })
	select {
	case <-ran:
	case <-w.done:
	}
}

func (w *Writer) run() {
	for {
		timer := time.NewTimer(time.Hour)
		if next := w.nextDeadline(); !next.IsZero() {
			timer.Reset(time.Until(next))
		}
		select {
		case <-w.stop:
			timer.Stop()
			return
		case <-w.wake:
		case <-timer.C:
		}
		timer.Stop()
		w.mu.Lock()
		batch := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, f := range batch {
			f()
		}
		w.retryDue(time.Now())
	}
}

// nextDeadline is when the next retry or prune is due; zero if none.
func (w *Writer) nextDeadline() time.Time {
	next := w.pruneAt
	for _, r := range w.failed {
		if next.IsZero() || r.at.Before(next) {
			next = r.at
		}
	}
	return next
}

func (w *Writer) apply(c babel.RouteChange) {
	if c.Route == nil {
		delete(w.desired, c.Key)
	} else {
		w.desired[c.Key] = Route{Dst: c.Key.Prefix, Src: c.Key.Source,
			Interface: c.Route.Interface, NextHop: c.Route.NextHop, Metric: c.Route.Metric}
	}
	delete(w.failed, c.Key)
	w.write(c.Key, 0)
}

// write brings the backend's route for key to what Babel selected.
func (w *Writer) write(key babel.RouteKey, lastDelay time.Duration) {
	r, selected := w.desired[key]
	var err error
	if selected {
		err = w.backend.Replace(r)
	} else {
		err = w.backend.Delete(key.Prefix, key.Source)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.written, key)
	if err != nil {
		delay := min(max(2*lastDelay, w.retryMin), w.retryMax)
		w.failed[key] = &retry{delay: delay, at: time.Now().Add(delay)}
		w.noteLocked(err)
		w.log.Warn().Err(err).Stringer("route", key).Dur("retry_in", delay).Msg("fib: cannot apply route")
		return
	}
	if selected {
		w.written[key] = true
	}
	w.stats.Retrying = len(w.failed)
	w.log.Debug().Stringer("route", key).Bool("withdrawn", !selected).Msg("fib: route applied")
}

func (w *Writer) noteLocked(err error) {
	w.stats.Errors++
	w.stats.LastError = err.Error()
	w.stats.Retrying = len(w.failed)
}

func (w *Writer) retryDue(now time.Time) {
	for key, r := range w.failed {
		if !now.Before(r.at) {
			delete(w.failed, key)
			w.write(key, r.delay)
		}
	}
	if !w.pruneAt.IsZero() && !now.Before(w.pruneAt) {
		w.pruneAt = time.Time{}
		w.prune()
	}
}

// Forget removes, before tunnel id goes, the routes still pointing into
// it (Babel reselects asynchronously). It returns once they are gone.
func (w *Writer) Forget(tunnel uint32) {
	s, ok := w.backend.(Sweeper)
	if !ok {
		return
	}
	w.call(func() {
		keys, err := s.DeleteVia(tunnel)
		w.swept(keys, err)
	})
}

// Rewrite writes again the selected routes whose key match selects, so
// that the backend recomputes what it derives from them (the traffic class
// Dataplane.Class gives each route, when the network's classes change);
// it returns, once they are written, how many there were.
func (w *Writer) Rewrite(match func(babel.RouteKey) bool) int {
	var count int
	w.call(func() {
		for key := range w.desired {
			if match(key) {
				delete(w.failed, key)
				w.write(key, 0)
				count++
			}
		}
	})
	return count
}

// PruneAfter removes, once Babel had time to reconverge after a restart,
// the routes a previous run left that Babel did not select again.
func (w *Writer) PruneAfter(d time.Duration) {
	at := time.Now().Add(d)
	w.enqueue(func() { w.pruneAt = at })
}

func (w *Writer) prune() {
	s, ok := w.backend.(Sweeper)
	if !ok {
		return
	}
	keys, err := s.DeleteExcept(func(k babel.RouteKey) bool {
		_, selected := w.desired[k]
		return selected
	})
	for _, k := range keys {
		w.log.Debug().Stringer("route", k).Msg("stale route removed")
	}
	w.swept(keys, err)
}

func (w *Writer) swept(keys []babel.RouteKey, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range keys {
		delete(w.written, k)
	}
	if err != nil {
		w.noteLocked(err)
		w.log.Warn().Err(err).Msg("fib: cannot sweep routes")
	}
}

// Installed reports whether Babel's selected route for key is in the
// backend.
func (w *Writer) Installed(key babel.RouteKey) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written[key]
}

// Stats returns the failures so far.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Stop ends the writer. Changes still queued are dropped; the routes
// stay as they are in the backend.
func (w *Writer) Stop() {
	close(w.stop)
	<-w.done
}
