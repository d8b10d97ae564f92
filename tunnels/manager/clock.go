package manager

import "time"

// Clock drives the manager's loop: tests use a virtual one.
type Clock interface {
	Now() time.Time
	// NewTimer returns a channel that receives once d has elapsed.
	NewTimer(d time.Duration) Timer
}

// Timer is a pending NewTimer.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// NewTimer wraps time.NewTimer.
func (RealClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }
