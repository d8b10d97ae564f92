package server

import (
	"math/rand/v2"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
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

// MaxAddressesPerNode bounds the items of one node's address list.
const MaxAddressesPerNode = 8

// addressFamilies are the protocols a node may report, with the address
// family each needs (0: either) and whether it has a port: re6st's OpenVPN
// ones and re6st-bpf's FOU, GRE (no port) and WireGuard.
var addressFamilies = map[string]struct {
	family  int
	hasPort bool
}{
	"udp": {4, true}, "tcp": {4, true}, "udp6": {6, true}, "tcp6": {6, true},
	"fou": {0, true}, "gre": {0, false}, "wireguard": {0, true},
}

// unroutable are the unicast networks no peer can reach a node at.
var unroutable = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("240.0.0.0/4"), netip.MustParsePrefix("100::/64")}

type addressItem struct {
	ip   netip.Addr
	text string
}

// parseAddressItem checks one "ip,port,proto[,country]" item and returns it
// in canonical form.
func (s *Server) parseAddressItem(item string) (addressItem, error) {
	fields := strings.Split(item, ",")
	if len(fields) < 3 || len(fields) > 4 {
		return addressItem{}, errBadRequest("address %q is not \"ip,port,proto[,country]\"", item)
	}
	ip, err := netip.ParseAddr(fields[0])
	if err != nil || ip.Zone() != "" {
		return addressItem{}, errBadRequest("address %q: %q is not an IP address", item, fields[0])
	}
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || s.network.Contains(ip) || slices.ContainsFunc(unroutable, func(p netip.Prefix) bool { return p.Contains(ip) }) {
		return addressItem{}, errBadRequest("address %q: %s is not a routable unicast address outside the network", item, ip)
	}
	proto, known := addressFamilies[fields[2]]
	if !known {
		return addressItem{}, errBadRequest("address %q: unknown protocol %q (udp, tcp, udp6, tcp6, fou, gre, wireguard)", item, fields[2])
	}
	if (proto.family == 4 && !ip.Is4()) || (proto.family == 6 && !ip.Is6()) {
		return addressItem{}, errBadRequest("address %q: %s needs an IPv%d address", item, fields[2], proto.family)
	}
	port, err := strconv.Atoi(fields[1])
	switch {
	case err != nil || port < 0 || port > 65535:
		return addressItem{}, errBadRequest("address %q: port %q is not 1 to 65535", item, fields[1])
	case proto.hasPort && port == 0:
		return addressItem{}, errBadRequest("address %q: %s needs a port (1 to 65535)", item, fields[2])
	case !proto.hasPort && port != 0:
		return addressItem{}, errBadRequest("address %q: %s has no port (0)", item, fields[2])
	}
	text := ip.String() + "," + strconv.Itoa(port) + "," + fields[2]
	if len(fields) == 4 {
		if !countryCode.MatchString(fields[3]) {
			return addressItem{}, errBadRequest("address %q: country %q is not two capital letters", item, fields[3])
		}
		text += "," + fields[3]
	}
	return addressItem{ip, text}, nil
}

var countryCode = regexp.MustCompile(`^[A-Z]{2}$`)

// sameHost says whether a reported address is the observed one: the same
// IPv4 address, or the same IPv6 /64.
func sameHost(reported, observed netip.Addr) bool {
	if reported.Is4() {
		return reported == observed
	}
	prefix, _ := observed.Prefix(64)
	return observed.Is6() && prefix.Contains(reported)
}

// addressList checks a node's "ip,port,proto[,country];..." list and
// returns it in canonical form: at most MaxAddressesPerNode items, without
// duplicates, the observed address (the client's, as the registry sees it)
// first. When the observed address is public, the other public addresses
// of its family are dropped: a node cannot make the registry send peers to
// a third party's address (e.g. 8.8.8.8,53,fou).
func (s *Server) addressList(list string, observed netip.Addr) (string, error) {
	if list == "" || len(list) > MaxAddressLength {
		return "", errBadRequest("address list of %d bytes: must be 1 to %d", len(list), MaxAddressLength)
	}
	items := strings.Split(list, ";")
	if len(items) > MaxAddressesPerNode {
		return "", errBadRequest("%d addresses: at most %d", len(items), MaxAddressesPerNode)
	}
	public := observed.IsGlobalUnicast() && !observed.IsPrivate() && !s.network.Contains(observed)
	var own, others []string
	for _, item := range items {
		parsed, err := s.parseAddressItem(item)
		if err != nil {
			return "", err
		}
		switch {
		case slices.Contains(own, parsed.text) || slices.Contains(others, parsed.text):
		case public && sameHost(parsed.ip, observed):
			own = append(own, parsed.text)
		case public && parsed.ip.Is4() == observed.Is4() && !parsed.ip.IsPrivate():
			s.cfg.Logger.Info().Str("address", parsed.text).Str("observed", observed.String()).Msg("reported public address that is not the node's dropped")
		default:
			others = append(others, parsed.text)
		}
	}
	if len(own)+len(others) == 0 {
		return "", errBadRequest("no address left: the public addresses of the node's family must be its own (%s)", observed)
	}
	return strings.Join(append(own, others...), ";"), nil
}

// reportAddress records the addresses a node can be reached at (a
// re6st-bpf extension: re6st's registry asks its local node instead).
func (s *Server) reportAddress(c *call) ([]byte, error) {
	addresses, err := s.addressList(c.arg("address"), c.client)
	if err != nil {
		return nil, err
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

// nextCandidate pops a bootstrap candidate other than caller that still
// holds a valid certificate, and returns it with its addresses; the
// report of a node revoked or expired since it reported is dropped.
func (s *Server) nextCandidate(caller string) (string, string, bool) {
	for {
		prefix, addresses, ok := s.popCandidate(caller)
		if !ok || s.certified(prefix) {
			return prefix, addresses, ok
		}
		b := &s.bootstrap
		b.mu.Lock()
		delete(b.reports, prefix)
		b.mu.Unlock()
	}
}

// certified: prefix holds a certificate that has not expired (revoking
// one frees its prefix).
func (s *Server) certified(prefix string) bool {
	cert, err := s.issuedCertificate(prefix)
	return err == nil && cert.NotAfter.After(s.cfg.Now())
}

// popCandidate pops a bootstrap candidate other than caller and returns it
// with its addresses.
func (s *Server) popCandidate(caller string) (string, string, bool) {
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
