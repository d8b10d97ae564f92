package server

import (
	"math"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token bucket: Burst events at once, then one every Every.
// The zero Rate (Burst 0) is unlimited.
type Rate struct {
	Every time.Duration
	Burst int
}

func (r Rate) unlimited() bool { return r.Burst <= 0 }

func (r Rate) limiter() *rate.Limiter {
	return rate.NewLimiter(rate.Every(r.Every), r.Burst)
}

// Limits are the registry's rate limits. A source is a client address
// (resolved through --trusted-proxy), an IPv4 address or an IPv6 /64.
type Limits struct {
	// HelloPerSource bounds the hello secrets a source makes the registry
	// sign (a hello answered with a secret still pending costs nothing).
	HelloPerSource Rate
	// EnrolPerSource bounds requestCertificate and requestToken per source.
	EnrolPerSource Rate
	// EnrolGlobal bounds them for all sources together.
	EnrolGlobal Rate
}

// DefaultLimits never hurt a legitimate network of a few thousand nodes:
// a node makes a new hello secret only when its session is lost (restart
// of either side), and enrols once.
func DefaultLimits() Limits {
	return Limits{
		HelloPerSource: Rate{Every: 100 * time.Millisecond, Burst: 100},
		EnrolPerSource: Rate{Every: 10 * time.Second, Burst: 20},
	}
}

// maxLimitedSources bounds the memory of a keyed limiter. Beyond it, the
// sources whose bucket is full again are forgotten, then, if there are
// still too many (a client with many addresses), arbitrary ones, down to
// three quarters of the bound: a client with that many addresses gets
// fresh buckets anyway (the global budget is the answer to it).
const maxLimitedSources = 1 << 16

// keyedLimiter is one token bucket per source.
type keyedLimiter struct {
	rate    Rate
	mu      sync.Mutex
	buckets map[netip.Prefix]*rate.Limiter
}

func newKeyedLimiter(r Rate) *keyedLimiter {
	return &keyedLimiter{rate: r, buckets: map[netip.Prefix]*rate.Limiter{}}
}

// sourceKey is the unit a limit applies to: an IPv4 address or an IPv6
// /64 (one host usually holds a whole /64).
func sourceKey(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap()
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	prefix, _ := addr.Prefix(bits)
	return prefix
}

// allow takes one token of source's bucket, or says how long to wait.
func (k *keyedLimiter) allow(source netip.Addr, now time.Time) (bool, time.Duration) {
	if k.rate.unlimited() {
		return true, 0
	}
	key := sourceKey(source)
	k.mu.Lock()
	defer k.mu.Unlock()
	bucket := k.buckets[key]
	if bucket == nil {
		if len(k.buckets) >= maxLimitedSources {
			k.forget(now)
		}
		bucket = k.rate.limiter()
		k.buckets[key] = bucket
	}
	return take(bucket, now)
}

// forget drops the buckets that refilled (forgetting them changes
// nothing), then arbitrary ones down to 3/4 of maxLimitedSources.
func (k *keyedLimiter) forget(now time.Time) {
	for key, bucket := range k.buckets {
		if bucket.TokensAt(now) >= float64(k.rate.Burst) {
			delete(k.buckets, key)
		}
	}
	for key := range k.buckets {
		if len(k.buckets) <= maxLimitedSources*3/4 {
			break
		}
		delete(k.buckets, key)
	}
}

// take takes one token at now, or says how long to wait for one.
func take(bucket *rate.Limiter, now time.Time) (bool, time.Duration) {
	reservation := bucket.ReserveN(now, 1)
	delay := reservation.DelayFrom(now)
	if delay == 0 {
		return true, 0
	}
	reservation.CancelAt(now)
	return false, delay
}

// errTooMany is the 429 refusal of a rate limit, with a Retry-After.
func errTooMany(wait time.Duration, format string, args ...any) error {
	err := refuse(http.StatusTooManyRequests, format, args...).(*httpError)
	err.retryAfter = int(math.Ceil(wait.Seconds()))
	return err
}
