package server

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Connection limits and timeouts of the registry's HTTP server.
const (
	// DefaultConnsPerSource bounds the open connections of one source (an
	// IPv4 address or an IPv6 /64; a trusted proxy is not bounded): a
	// node holds one at a time, and keeps it idle for at most IdleTimeout.
	DefaultConnsPerSource = 64
	// DefaultConnsTotal bounds all open connections, below common file
	// descriptor limits.
	DefaultConnsTotal = 1024
	// DefaultWriteTimeout bounds the time to read a request and write its
	// answer: a client that does not read its answers loses its connection.
	DefaultWriteTimeout = 30 * time.Second
	// ReadHeaderTimeout, ReadTimeout and IdleTimeout bound a slow or
	// silent client; every request fits in one line.
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	IdleTimeout       = 30 * time.Second
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes = 64 << 10
)

// NewHTTPServer returns the HTTP server of handler, with the timeouts
// above and writeTimeout.
func NewHTTPServer(handler http.Handler, writeTimeout time.Duration) *http.Server {
	return &http.Server{
		Handler:           handler,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       IdleTimeout,
	}
}

// ConnLimiter bounds the connections of one or more listeners together:
// at most perSource from one source (an IPv4 address or an IPv6 /64) other
// than the exempt networks (trusted proxies), and at most total; 0 is
// unlimited.
type ConnLimiter struct {
	perSource, total int
	exempt           []netip.Prefix

	mu       sync.Mutex
	open     int
	bySource map[netip.Prefix]int
}

// NewConnLimiter returns a limiter of perSource and total connections.
func NewConnLimiter(perSource, total int, exempt []netip.Prefix) *ConnLimiter {
	return &ConnLimiter{perSource: perSource, total: total, exempt: exempt, bySource: map[netip.Prefix]int{}}
}

// Listener returns l limited: the connections beyond the limits are closed
// as soon as they are accepted, so that they hold no file descriptor.
func (c *ConnLimiter) Listener(l net.Listener) net.Listener {
	return &limitListener{Listener: l, limiter: c}
}

type limitListener struct {
	net.Listener
	limiter *ConnLimiter
}

// Accept returns the next connection within the limits.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, counted := l.limiter.sourceOf(conn)
		if l.limiter.take(key, counted) {
			return &limitedConn{Conn: conn, release: func() { l.limiter.release(key, counted) }}, nil
		}
		conn.Close()
	}
}

// sourceOf returns the source key of conn and whether the per-source limit
// applies to it.
func (c *ConnLimiter) sourceOf(conn net.Conn) (netip.Prefix, bool) {
	addrPort, err := netip.ParseAddrPort(conn.RemoteAddr().String())
	if err != nil || c.perSource <= 0 {
		return netip.Prefix{}, false
	}
	addr := addrPort.Addr().Unmap()
	for _, proxy := range c.exempt {
		if proxy.Contains(addr) {
			return netip.Prefix{}, false
		}
	}
	return sourceKey(addr), true
}

func (c *ConnLimiter) take(key netip.Prefix, counted bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if (c.total > 0 && c.open >= c.total) || (counted && c.bySource[key] >= c.perSource) {
		return false
	}
	c.open++
	if counted {
		c.bySource[key]++
	}
	return true
}

func (c *ConnLimiter) release(key netip.Prefix, counted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open--
	if counted {
		if c.bySource[key]--; c.bySource[key] == 0 {
			delete(c.bySource, key)
		}
	}
}

// limitedConn gives its place back once closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}
