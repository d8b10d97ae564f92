package babel

import (
	"errors"
	"net/netip"
	"time"
)

// Delays before buffered messages are sent: urgent ones (retractions,
// router-id switches, requests) go out within a few milliseconds, the others
// are batched for up to a quarter of the Hello interval (at most 0.5 s).
const (
	urgentDelay  = 5 * time.Millisecond
	maxBatchWait = 2 * time.Second
)

// outBuffer collects what is to be sent to one destination address.
type outBuffer struct {
	dst      netip.Addr
	hello    bool
	ihus     bool
	msgs     []Message
	updates  []uint32 // key ids, each once
	queued   []uint64 // bit set of the key ids in updates
	fullDump bool
}

func newOutBuffer(dst netip.Addr) *outBuffer { return &outBuffer{dst: dst} }

func (b *outBuffer) addUpdate(id uint32) {
	w, bit := int(id/64), uint64(1)<<(id%64)
	if w >= len(b.queued) {
		b.queued = append(b.queued, make([]uint64, w+1-len(b.queued))...)
	}
	if b.queued[w]&bit == 0 {
		b.queued[w] |= bit
		b.updates = append(b.updates, id)
	}
}

func (b *outBuffer) empty() bool {
	return !b.hello && !b.ihus && !b.fullDump && len(b.msgs) == 0 && len(b.updates) == 0
}

// maxKeptUpdates bounds the capacity of the update list kept between
// flushes, so that the burst of a cold start is not held for ever.
const maxKeptUpdates = 256

func (b *outBuffer) reset() {
	b.hello, b.ihus, b.fullDump = false, false, false
	for _, id := range b.updates {
		b.queued[id/64] = 0
	}
	b.msgs, b.updates = b.msgs[:0], b.updates[:0]
	if cap(b.updates) > maxKeptUpdates {
		b.updates = nil
	}
}

func (i *iface) unicastBuffer(addr netip.Addr) *outBuffer {
	b := i.ucast[addr]
	if b == nil {
		b = newOutBuffer(addr)
		i.ucast[addr] = b
	}
	return b
}

func (r *Router) batchDelay(i *iface, urgent bool) time.Duration {
	if urgent {
		return r.jitter(urgentDelay, 0.5)
	}
	return r.jitter(min(i.cfg.HelloInterval, maxBatchWait)/4, 0.25)
}

// queueUpdate schedules an update for key id on interface i.
func (r *Router) queueUpdate(i *iface, id uint32, urgent bool) {
	i.mcast.addUpdate(id)
	r.scheduleFlush(i, r.batchDelay(i, urgent))
}

// queueUpdateAll schedules an update for key id on every interface.
func (r *Router) queueUpdateAll(id uint32, urgent bool) {
	for _, i := range r.ifaces {
		r.queueUpdate(i, id, urgent)
	}
}

// scheduleFlush makes sure the interface's buffers are sent within delay.
func (r *Router) scheduleFlush(i *iface, delay time.Duration) {
	at := r.clock.Now() + delay
	if i.flushTimer != nil {
		if i.flushAt <= at {
			return
		}
		i.flushTimer.Stop()
	}
	i.flushAt = at
	i.flushTimer = r.clock.AfterFunc(delay, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if i.removed {
			return
		}
		i.flushTimer = nil
		r.flush(i)
	})
}

// scheduleHello (re)arms the Hello timer of i.
func (r *Router) scheduleHello(i *iface, delay time.Duration) {
	if i.helloTimer != nil {
		i.helloTimer.Stop()
	}
	i.helloTimer = r.clock.AfterFunc(delay, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if i.removed {
			return
		}
		r.sendHello(i)
		r.scheduleHello(i, r.jitter(i.cfg.HelloInterval*19/20, 0.05))
	})
}

// sendHello sends a multicast Hello now, with IHUs every third Hello (every
// Hello on wireless links), as babeld does, and a unicast Hello to every
// neighbour if the interface is configured for it.
func (r *Router) sendHello(i *iface) {
	i.helloSeqno++
	i.hellosSent++
	i.triggeredHello = false
	i.mcast.hello = true
	if i.cfg.UnicastHello {
		for _, n := range i.neighbours {
			n.uhelloSeqno++
			i.unicastBuffer(n.addr).hello = true
		}
	}
	if i.cfg.Type == LinkWireless || i.hellosSent%3 == 0 {
		i.mcast.ihus = true
	}
	r.flush(i)
}

// scheduleUpdate (re)arms the periodic full dump of i.
func (r *Router) scheduleUpdate(i *iface, delay time.Duration) {
	i.updateTimer = r.clock.AfterFunc(delay, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if i.removed {
			return
		}
		i.mcast.fullDump = true
		i.lastFullDump = r.clock.Now()
		r.flush(i)
		r.scheduleUpdate(i, r.jitter(i.cfg.UpdateInterval, 0.1))
	})
}

// flush sends everything buffered on i.
func (r *Router) flush(i *iface) {
	now := r.clock.Now()
	if i.flushTimer != nil {
		i.flushTimer.Stop()
		i.flushTimer = nil
	}
	r.flushBuffer(i, i.mcast, now)
	for addr, b := range i.ucast {
		r.flushBuffer(i, b, now)
		delete(i.ucast, addr)
	}
}

// packetWriter fills packets for one destination, sending each when full.
type packetWriter struct {
	r          *Router
	i          *iface
	dst        netip.Addr
	hasContent bool
}

func (w *packetWriter) start() {
	e := w.r.enc
	e.Reset()
	limit := w.i.cfg.MTU - 40 - 8
	if a := w.i.auth; a != nil {
		for _, k := range a.cfg.Sign {
			limit -= 2 + k.newHash().Size()
		}
		_ = e.Append(a.nextPC())
	}
	e.limit = limit
	w.hasContent = false
}

func (w *packetWriter) add(m Message) {
	err := w.r.enc.Append(m)
	if errors.Is(err, ErrPacketFull) && w.hasContent {
		w.send()
		w.start()
		err = w.r.enc.Append(m)
	}
	if err != nil {
		w.r.log.Error().Err(err).Str("interface", w.i.name).Msg("babel: cannot encode message")
		return
	}
	w.hasContent = true
}

func (w *packetWriter) send() {
	if !w.hasContent {
		return
	}
	pkt := w.r.enc.Bytes()
	if w.i.auth != nil {
		pkt = w.i.auth.sign(w.i.local, w.dst, pkt)
	}
	w.i.stats.PacketsSent++
	w.i.stats.BytesSent += uint64(len(pkt))
	if err := w.i.t.Send(w.dst, pkt); err != nil {
		w.r.log.Debug().Err(err).Str("interface", w.i.name).Stringer("dst", w.dst).Msg("babel: send")
	}
	w.hasContent = false
}

func (r *Router) flushBuffer(i *iface, b *outBuffer, now time.Duration) {
	if b.empty() {
		return
	}
	w := &packetWriter{r: r, i: i, dst: b.dst}
	w.start()
	if b.hello {
		h := Hello{Seqno: i.helloSeqno, Interval: CentisOf(i.cfg.HelloInterval), HasTimestamp: i.cfg.Timestamps, Timestamp: micros(now)}
		if b != i.mcast {
			h.Unicast, h.Seqno = true, i.neighbours[b.dst].uhelloSeqno
		}
		w.add(h)
	}
	if b.ihus {
		for _, n := range i.neighbours {
			w.add(r.ihuFor(n, now))
		}
	}
	for _, m := range b.msgs {
		w.add(m)
	}
	if b.fullDump {
		for id := range r.exported {
			r.addUpdate(w, id, now)
		}
		for _, d := range r.dests {
			if d != nil && d.selNeigh != nil {
				r.addRouteUpdate(w, d, now)
			}
		}
	} else {
		for _, id := range b.updates {
			r.addUpdate(w, id, now)
		}
	}
	w.send()
	b.reset()
}

// addUpdate writes the update we currently advertise for key: our own
// prefix, our selected route (noting the feasibility distance), or a
// retraction.
func (r *Router) addUpdate(w *packetWriter, id uint32, now time.Duration) {
	key := r.intern.key(id)
	if metric, ok := r.exported[id]; ok {
		w.add(Update{Prefix: key.Prefix, Source: key.Source, Interval: CentisOf(w.i.cfg.UpdateInterval),
			RouterID: r.id, Seqno: r.seqno, Metric: metric})
	} else if d := r.dest(id); d != nil && d.selNeigh != nil {
		r.addRouteUpdate(w, d, now)
	} else {
		w.add(retraction(w.i, key))
	}
}

// retraction is the update that retracts key on i.
func retraction(i *iface, key RouteKey) Update {
	return Update{Prefix: key.Prefix, Source: key.Source, Interval: CentisOf(i.cfg.UpdateInterval), Metric: Infinity}
}

// addRouteUpdate writes the update for d's selected route.
func (r *Router) addRouteUpdate(w *packetWriter, d *destination, now time.Duration) {
	rt := d.selected()
	if w.i.cfg.SplitHorizon && d.selNeigh.iface == w.i {
		return
	}
	key := r.intern.key(d.id)
	u := Update{Prefix: key.Prefix, Source: key.Source, Interval: CentisOf(w.i.cfg.UpdateInterval),
		RouterID: rt.routerID, Seqno: rt.seqno, Metric: r.metric(d, rt)}
	r.noteAdvertised(d, u.RouterID, u.Seqno, u.Metric, now)
	w.add(u)
}
