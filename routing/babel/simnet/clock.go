package simnet

import (
	"container/heap"
	"time"

	"github.com/re6st-bpf/re6st-bpf/routing/babel"
)

// Clock is a virtual clock and event queue. It implements babel.Clock. It
// is not safe for concurrent use: everything runs from Step.
type Clock struct {
	now   time.Duration
	seq   uint64
	queue eventQueue
	steps uint64
}

type event struct {
	at      time.Duration
	seq     uint64
	fn      func()
	stopped bool
	fired   bool
}

// Stop implements babel.Timer.
func (e *event) Stop() bool {
	pending := !e.stopped && !e.fired
	e.stopped = true
	return pending
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(a, b int) bool {
	if q[a].at != q[b].at {
		return q[a].at < q[b].at
	}
	return q[a].seq < q[b].seq
}
func (q eventQueue) Swap(a, b int) { q[a], q[b] = q[b], q[a] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return e
}

// NewClock returns a clock at time origin.
func NewClock(origin time.Duration) *Clock { return &Clock{now: origin} }

// Now implements babel.Clock.
func (c *Clock) Now() time.Duration { return c.now }

// AfterFunc implements babel.Clock: fn runs from Step once d has elapsed.
func (c *Clock) AfterFunc(d time.Duration, fn func()) babel.Timer {
	c.seq++
	e := &event{at: c.now + max(d, 0), seq: c.seq, fn: fn}
	heap.Push(&c.queue, e)
	return e
}

// Steps is the number of events run so far.
func (c *Clock) Steps() uint64 { return c.steps }

// Step runs the next event if it is due at or before limit and reports
// whether it ran one.
func (c *Clock) Step(limit time.Duration) bool {
	for c.queue.Len() > 0 {
		e := c.queue[0]
		if e.stopped {
			heap.Pop(&c.queue)
			continue
		}
		if e.at > limit {
			return false
		}
		heap.Pop(&c.queue)
		c.now = e.at
		e.fired = true
		c.steps++
		e.fn()
		return true
	}
	return false
}

// Advance runs every event due within d, calling after (when not nil)
// after each one, and leaves the clock at now+d.
func (c *Clock) Advance(d time.Duration, after func()) {
	limit := c.now + d
	for c.Step(limit) {
		if after != nil {
			after()
		}
	}
	c.now = limit
}
