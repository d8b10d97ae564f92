package babel

import "time"

// Urgent updates that a lost packet would leave unheard for a whole update
// interval (retractions, router-id switches, seqno bumps and the updates
// that answer a seqno request) are sent again, as babeld's
// send_update_resend does (RFC 8966 §3.7.2): twice, after half the
// shortest Hello interval (2 s at most), then after twice that.
const (
	updateResends        = 2
	maxUpdateResendDelay = 2 * time.Second
)

// pendingResend is an urgent update still to be repeated.
type pendingResend struct {
	iface *iface // nil for every interface
	left  int
	delay time.Duration
	next  time.Duration
}

// queueUrgentUpdate sends the update for key at once on i (every interface
// when i is nil) and schedules its resends.
func (r *Router) queueUrgentUpdate(i *iface, key uint32) {
	if i == nil {
		r.queueUpdateAll(key, true)
	} else {
		r.queueUpdate(i, key, true)
	}
	delay := maxUpdateResendDelay
	for _, x := range r.ifaces {
		delay = min(delay, x.cfg.HelloInterval/2)
	}
	p := r.resends[key]
	if p != nil && p.iface != i {
		i = nil
	}
	now := r.clock.Now()
	r.resends[key] = &pendingResend{iface: i, left: updateResends, delay: delay, next: now + delay}
}

// checkResends repeats the urgent updates that are due. What goes out is
// what we advertise at that time, which may have changed since.
func (r *Router) checkResends(now time.Duration) {
	for key, p := range r.resends {
		if now < p.next {
			continue
		}
		switch {
		case p.iface == nil:
			r.queueUpdateAll(key, true)
		case !p.iface.removed:
			r.queueUpdate(p.iface, key, true)
		}
		p.left--
		p.delay *= 2
		p.next = now + p.delay
		if p.left == 0 || (p.iface != nil && p.iface.removed) {
			delete(r.resends, key)
		}
	}
}
