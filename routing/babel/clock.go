package babel

import "time"

// Clock drives a Router. Time is a duration since an arbitrary origin, so
// that simulations can run on a virtual clock.
type Clock interface {
	Now() time.Duration
	// AfterFunc runs f once d has elapsed, on its own goroutine or, for a
	// virtual clock, from the simulation loop.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop cancels the call; it reports whether the call was still pending.
	Stop() bool
}

// RealClock is the wall clock, measured from its creation (monotonic).
type RealClock struct{ origin time.Time }

// NewRealClock returns a clock whose origin is now.
func NewRealClock() *RealClock { return &RealClock{origin: time.Now()} }

// Now returns the time elapsed since the clock was created.
func (c *RealClock) Now() time.Duration { return time.Since(c.origin) }

// AfterFunc wraps time.AfterFunc.
func (c *RealClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// micros is the RFC 9616 timestamp of t: microseconds modulo 2^32.
func micros(t time.Duration) uint32 { return uint32(t / time.Microsecond) }
