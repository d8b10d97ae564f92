package trafficload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

// DatagramSize is the UDP payload of the paced flows.
const DatagramSize = 1000

// PaceUDP writes DatagramSize-byte datagrams on c at rate bits per second
// until ctx ends. A write that blocked (the socket buffer full) is not made
// up for later beyond a tenth of a second.
func PaceUDP(ctx context.Context, c *net.UDPConn, rate uint64) error {
	buf := make([]byte, DatagramSize)
	start := time.Now()
	var sent uint64
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		due := uint64(time.Since(start).Seconds() * float64(rate) / 8)
		sent = max(sent, due-min(due, rate/8/10))
		for ; sent < due && ctx.Err() == nil; sent += DatagramSize {
			if _, err := c.Write(buf); err != nil {
				return err
			}
		}
	}
}

// UDPFlows sends, from a, len(rates) UDP flows to addr on b (ports 7001
// and up), flow i at rates[i] bits per second, for d; while they run it
// calls during. It returns the bytes b received on each flow, counted
// until a second after the senders stopped (what queues held drains).
// Each flow sends its first datagram before the next flow starts, so that
// the flows reach the data plane as new flows one after the other.
func UDPFlows(a, b *netns.NS, addr netip.Addr, rates []uint64, d time.Duration, during func() error) ([]uint64, error) {
	n := len(rates)
	rx := make([]*net.UDPConn, n)
	tx := make([]*net.UDPConn, n)
	defer func() {
		for i := range n {
			for _, c := range []*net.UDPConn{rx[i], tx[i]} {
				if c != nil {
					c.Close()
				}
			}
		}
	}()
	for i := range n {
		if err := b.Do(func() (err error) {
			rx[i], err = net.ListenUDP("udp6", &net.UDPAddr{IP: addr.AsSlice(), Port: 7001 + i})
			return err
		}); err != nil {
			return nil, err
		}
		if err := a.Do(func() (err error) {
			tx[i], err = net.DialUDP("udp6", nil, rx[i].LocalAddr().(*net.UDPAddr))
			return err
		}); err != nil {
			return nil, err
		}
		if _, err := tx[i].Write(make([]byte, DatagramSize)); err != nil {
			return nil, err
		}
	}
	got := make([]uint64, n)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*n+1)
	for i := range n {
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, 2*DatagramSize)
			for {
				k, err := rx[i].Read(buf)
				if err != nil {
					if !isTimeout(err) {
						errs <- err
					}
					return
				}
				got[i] += uint64(k)
			}
		}()
		go func() {
			defer wg.Done()
			if err := PaceUDP(ctx, tx[i], rates[i]); err != nil {
				errs <- err
			}
		}()
	}
	if during != nil {
		if err := during(); err != nil {
			errs <- err
		}
	}
	<-ctx.Done()
	for i := range rx {
		rx[i].SetReadDeadline(time.Now().Add(time.Second))
	}
	wg.Wait()
	close(errs)
	return got, errors.Join(collect(errs)...)
}

func collect(errs <-chan error) []error {
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TCPBulk sends as fast as TCP goes from a to addr on b until ctx ends,
// and returns the bytes b received.
func TCPBulk(ctx context.Context, a, b *netns.NS, addr netip.Addr) (uint64, error) {
	var ln net.Listener
	if err := b.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
		return err
	}); err != nil {
		return 0, err
	}
	defer ln.Close()
	received := make(chan uint64, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			received <- 0
			return
		}
		defer conn.Close()
		n, _ := io.Copy(io.Discard, conn)
		received <- uint64(n)
	}()
	var conn net.Conn
	if err := a.Do(func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		conn, err = d.Dial("tcp", ln.Addr().String())
		return err
	}); err != nil {
		ln.Close()
		<-received
		return 0, err
	}
	buf := make([]byte, 64<<10)
	var err error
	for ctx.Err() == nil {
		conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err = conn.Write(buf); err != nil && !isTimeout(err) {
			break
		}
		err = nil
	}
	conn.Close()
	return <-received, err
}

var pingTime = regexp.MustCompile(`time=([0-9.]+) ms`)

// PingRTTs pings addr from ns count times, interval apart, and returns
// the round trips; a lost reply is an error.
func PingRTTs(ns *netns.NS, addr netip.Addr, count int, interval time.Duration) ([]time.Duration, error) {
	out, err := ns.Run("ping", "-6", "-n", "-c", strconv.Itoa(count), "-i", strconv.FormatFloat(interval.Seconds(), 'f', 3, 64), "-W", "2", addr.String())
	if err != nil {
		return nil, fmt.Errorf("ping %s: %w: %s", addr, err, out)
	}
	var rtts []time.Duration
	for _, m := range pingTime.FindAllStringSubmatch(out, -1) {
		ms, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			return nil, err
		}
		rtts = append(rtts, time.Duration(ms*float64(time.Millisecond)))
	}
	if len(rtts) != count {
		return nil, fmt.Errorf("ping %s: %d replies of %d: %s", addr, len(rtts), count, out)
	}
	return rtts, nil
}

// Percentile is the p-quantile (0..1) of d, nearest rank.
func Percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// Jain is Jain's fairness index of xs: 1 when all are equal, 1/n when one
// takes everything.
func Jain(xs []uint64) float64 {
	var sum, sq float64
	for _, x := range xs {
		sum += float64(x)
		sq += float64(x) * float64(x)
	}
	if sq == 0 {
		return 0
	}
	return sum * sum / (float64(len(xs)) * sq)
}
