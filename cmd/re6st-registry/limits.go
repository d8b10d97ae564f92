package main

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/re6st-bpf/re6st-bpf/registry/server"
)

// rateValue is a server.Rate flag written "BURST/INTERVAL" (BURST events
// at once, then one every INTERVAL), or "0" for unlimited.
type rateValue struct{ rate *server.Rate }

func (v rateValue) String() string {
	if v.rate == nil || v.rate.Burst <= 0 {
		return "0"
	}
	return fmt.Sprintf("%d/%s", v.rate.Burst, v.rate.Every)
}

func (v rateValue) Set(text string) error {
	if text == "0" {
		*v.rate = server.Rate{}
		return nil
	}
	burstText, everyText, ok := strings.Cut(text, "/")
	burst, err := strconv.Atoi(burstText)
	every, err2 := time.ParseDuration(everyText)
	if !ok || err != nil || err2 != nil || burst < 1 || every <= 0 {
		return fmt.Errorf(`%q: expected "BURST/INTERVAL", e.g. 20/10s, or 0 for unlimited`, text)
	}
	*v.rate = server.Rate{Every: every, Burst: burst}
	return nil
}

func (rateValue) Type() string { return "BURST/INTERVAL" }

// connLimits are the HTTP server's connection limits.
type connLimits struct {
	perSource, total int
	writeTimeout     time.Duration
}

// addLimitFlags declares the rate and connection limit flags, with their
// defaults.
func addLimitFlags(f *pflag.FlagSet, limits *server.Limits, conns *connLimits) {
	f.IntVar(&conns.perSource, "max-connections-per-source", server.DefaultConnsPerSource, "open connections per source address (IPv4 or IPv6 /64; --trusted-proxy excepted); 0: unlimited")
	f.IntVar(&conns.total, "max-connections", server.DefaultConnsTotal, "open connections in all (at most the file limit - 64); 0: unlimited")
	f.DurationVar(&conns.writeTimeout, "write-timeout", server.DefaultWriteTimeout, "time to read a request and write its answer, after which the connection is closed")
	*limits = server.DefaultLimits()
	f.Var(rateValue{&limits.HelloPerSource}, "hello-limit", "new hello secrets (one CA signature each) per source address (IPv4 or IPv6 /64); 0: unlimited")
	f.Var(rateValue{&limits.EnrolPerSource}, "enrol-limit", "requestCertificate and requestToken calls per source address; 0: unlimited")
	f.Var(rateValue{&limits.EnrolGlobal}, "enrol-global-limit", "requestCertificate and requestToken calls for all sources together; 0: unlimited")
}

// parseNetworks parses the values of flag: addresses (one-address networks)
// or networks.
func parseNetworks(flag string, values []string) ([]netip.Prefix, error) {
	var networks []netip.Prefix
	for _, value := range values {
		network, err := netip.ParsePrefix(value)
		if addr, err2 := netip.ParseAddr(value); err2 == nil {
			network, err = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()), nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s %q: not an address or a network", flag, value)
		}
		networks = append(networks, network.Masked())
	}
	return networks, nil
}

// spareFiles are the file descriptors kept for the database, logs,
// listeners and relay beside the connections.
const spareFiles = 64

// fitFileLimit lowers a total connection limit (0: unlimited) to the
// process's file limit minus spareFiles, with a warning: beyond it the
// registry could not accept even the connections it allows.
func fitFileLimit(total int, logger zerolog.Logger) int {
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &limit); err != nil || limit.Cur <= 2*spareFiles || limit.Cur > math.MaxInt32 {
		return total
	}
	if fit := int(limit.Cur) - spareFiles; total == 0 || total > fit {
		logger.Warn().Int("max_connections", fit).Uint64("file_limit", limit.Cur).Msg("--max-connections lowered to fit the file limit (ulimit -n)")
		return fit
	}
	return total
}
