package server

import (
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

const (
	// AddressLifetime is how long a reported address stays a bootstrap
	// candidate; nodes report again well before.
	AddressLifetime = 2 * time.Hour
	// candidateLifetime is how long a shuffled candidate list is used
	// before it is rebuilt (re6st: 60 s).
	candidateLifetime = time.Minute
	// MaxAddressLength bounds a reported address list, so that the
	// bootstrap answer still fits in one RSA block of a 2048-bit key.
	MaxAddressLength = 200
)

type reportedAddress struct {
	addresses string
	at        time.Time
}

type bootstrapState struct {
	mu         sync.Mutex
	reports    map[string]reportedAddress
	candidates []string
	built      time.Time
}

// validAddressList checks "ip,port,proto[,country];..." as nodes write it.
func validAddressList(list string) bool {
	if list == "" || len(list) > MaxAddressLength {
		return false
	}
	for item := range strings.SplitSeq(list, ";") {
		fields := strings.Split(item, ",")
		if len(fields) < 3 || len(fields) > 4 || fields[0] == "" || fields[1] == "" || fields[2] == "" {
			return false
		}
		if strings.ContainsAny(item, " \t\r\n") {
			return false
		}
	}
	return true
}

// reportAddress records the addresses a node can be reached at (a
// re6st-bpf extension: re6st's registry asks its local node instead).
func (s *Server) reportAddress(c *call) ([]byte, error) {
	addresses := c.arg("address")
	if !validAddressList(addresses) {
		return nil, errBadRequest("address %q is not \"ip,port,proto[,country];...\" of at most %d bytes", addresses, MaxAddressLength)
	}
	b := &s.bootstrap
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reports == nil {
		b.reports = map[string]reportedAddress{}
	}
	b.reports[c.arg("cn")] = reportedAddress{addresses, s.cfg.Now()}
	return nil, nil
}

// liveReports returns the prefixes with a fresh address, sorted.
func (s *Server) liveReports() []string {
	b := &s.bootstrap
	b.mu.Lock()
	defer b.mu.Unlock()
	var prefixes []string
	for prefix, report := range b.reports {
		if s.cfg.Now().Sub(report.at) < AddressLifetime {
			prefixes = append(prefixes, prefix)
		}
	}
	sort.Strings(prefixes)
	return prefixes
}

// nextCandidate pops a bootstrap candidate other than caller and returns
// it with its addresses.
func (s *Server) nextCandidate(caller string) (string, string, bool) {
	b := &s.bootstrap
	b.mu.Lock()
	defer b.mu.Unlock()
	now := s.cfg.Now()
	if len(b.candidates) == 0 || now.Sub(b.built) > candidateLifetime {
		b.candidates = b.candidates[:0]
		for prefix, report := range b.reports {
			if now.Sub(report.at) < AddressLifetime {
				b.candidates = append(b.candidates, prefix)
			} else {
				delete(b.reports, prefix)
			}
		}
		rand.Shuffle(len(b.candidates), func(i, j int) { b.candidates[i], b.candidates[j] = b.candidates[j], b.candidates[i] })
		b.built = now
	}
	for len(b.candidates) > 0 {
		prefix := b.candidates[len(b.candidates)-1]
		b.candidates = b.candidates[:len(b.candidates)-1]
		if prefix == caller {
			prefix = s.published.Load().registryPrefix
		}
		if report, ok := b.reports[prefix]; ok && prefix != caller {
			return prefix, report.addresses, true
		}
	}
	return "", "", false
}

// withoutCountry drops the country field protocol < 7 nodes do not know.
func withoutCountry(list string) string {
	items := strings.Split(list, ";")
	for i, item := range items {
		if fields := strings.Split(item, ","); len(fields) == 4 {
			items[i] = strings.Join(fields[:3], ",")
		}
	}
	return strings.Join(items, ";")
}

func (s *Server) getBootstrapPeer(c *call) ([]byte, error) {
	caller := c.arg("cn")
	key, err := s.nodeKey(caller)
	if err != nil {
		return nil, err
	}
	prefix, addresses, ok := s.nextCandidate(caller)
	if !ok {
		return nil, nil
	}
	if c.protocol < 7 {
		addresses = withoutCountry(addresses)
	}
	answer, err := wire.Encrypt(key, []byte(prefix+" "+addresses))
	if err != nil {
		return nil, refuse(http.StatusInternalServerError, "bootstrap answer does not fit the node's key: %s", err.Error())
	}
	return answer, nil
}
