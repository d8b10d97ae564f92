package internet

import (
	"net/netip"
	"sync"
)

// Ping sends one echo request from h to dst (IPv4 or IPv6) and waits up to
// two seconds for the answer.
func (h *Host) Ping(dst netip.Addr) error {
	_, err := h.NS.Run("ping", "-n", "-q", "-c1", "-W2", dst.String())
	return err
}

// pingParallel bounds the pings in flight: each is two processes.
const pingParallel = 16

// PingAll pings every address of to from every host of from, in parallel:
// errs[i][j] is nil when to[j] answered from[i].
func PingAll(from []*Host, to []netip.Addr) [][]error {
	errs := make([][]error, len(from))
	var wg sync.WaitGroup
	sem := make(chan struct{}, pingParallel)
	for i, h := range from {
		errs[i] = make([]error, len(to))
		for j, dst := range to {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				errs[i][j] = h.Ping(dst)
			})
		}
	}
	wg.Wait()
	return errs
}
