package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/relay"
	"github.com/re6st-bpf/re6st-bpf/registry/store"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

func (s *Server) needRelay() error {
	if s.cfg.Relay == nil {
		return refuse(http.StatusServiceUnavailable, "no local node to relay the query (--relay)")
	}
	return nil
}

func (s *Server) relayQuery(prefixes []string, code byte) (map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Relay.Timeout)
	defer cancel()
	return s.cfg.Relay.Query(ctx, prefixes, code)
}

// knownPrefixes are the nodes the registry knows to be alive: those that
// reported an address, and the registry node.
func (s *Server) knownPrefixes() []string {
	prefixes := s.liveReports()
	if own := s.published.Load().registryPrefix; own != "" {
		found := false
		for _, p := range prefixes {
			found = found || p == own
		}
		if !found {
			prefixes = append(prefixes, own)
		}
	}
	return prefixes
}

// versions asks every known node its version: {prefix: "version, platform"
// or null}.
func (s *Server) versions(*call) ([]byte, error) {
	if err := s.needRelay(); err != nil {
		return nil, err
	}
	prefixes := s.knownPrefixes()
	answers, err := s.relayQuery(prefixes, relay.CodeVersion)
	if err != nil {
		return nil, err
	}
	result := map[string]*string{}
	for _, prefix := range prefixes {
		result[prefix] = nil
		if answer, ok := answers[prefix]; ok {
			text := string(answer)
			result[prefix] = &text
		}
	}
	return json.Marshal(result)
}

// topology walks the tunnel graph from the nodes the registry knows, as
// re6st does: {CN: [CNs of the peers it connects to as a client], "":
// [CNs that answered]}. A node answers "<n> cn1 cn2 ...": its n client
// peers, then the peers connected to it, which are asked in turn.
func (s *Server) topology(*call) ([]byte, error) {
	if err := s.needRelay(); err != nil {
		return nil, err
	}
	graph := map[string][]string{"": {}}
	seen := map[string]bool{}
	frontier := s.knownPrefixes()
	for _, p := range frontier {
		seen[p] = true
	}
	for len(frontier) > 0 {
		answers, err := s.relayQuery(frontier, relay.CodeTopology)
		if err != nil {
			return nil, err
		}
		var next []string
		for _, prefix := range frontier {
			answer, ok := answers[prefix]
			if !ok {
				continue
			}
			cn := wire.CommonName(prefix)
			graph[""] = append(graph[""], cn)
			fields := strings.Fields(string(answer))
			clients := 0
			if len(fields) > 0 {
				clients, _ = strconv.Atoi(fields[0])
				fields = fields[1:]
			}
			clients = min(max(clients, 0), len(fields))
			graph[cn] = append([]string{}, fields[:clients]...)
			for _, peer := range fields {
				bits, err := wire.PrefixFromCommonName(peer)
				if err == nil && !seen[bits] {
					seen[bits] = true
					next = append(next, bits)
				}
			}
		}
		frontier = next
	}
	return json.Marshal(graph)
}

// getIPv4Information asks the node of email for its addresses and returns
// the first IP.
func (s *Server) getIPv4Information(c *call) ([]byte, error) {
	if err := s.needRelay(); err != nil {
		return nil, err
	}
	block, found, err := s.blockByEmail(c.arg("email"))
	if err != nil || !found {
		return nil, err
	}
	answers, err := s.relayQuery([]string{block.Prefix}, relay.CodeAddress)
	if err != nil {
		return nil, err
	}
	ip, _, _ := strings.Cut(string(answers[block.Prefix]), ",")
	return []byte(ip), nil
}

func (s *Server) listTokens(*call) ([]byte, error) {
	var tokens []store.Token
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		var err error
		tokens, err = tx.Tokens()
		return err
	})
	if err != nil {
		return nil, err
	}
	if tokens == nil {
		tokens = []store.Token{}
	}
	return json.Marshal(tokens)
}

// PrefixInfo describes one block of the network for listPrefixes.
type PrefixInfo struct {
	Prefix    string    `json:"prefix"`
	Subnet    string    `json:"subnet"`
	State     string    `json:"state"` // free, reserved or issued
	CN        string    `json:"cn,omitempty"`
	Email     string    `json:"email,omitempty"`
	Serial    uint64    `json:"serial,omitempty"`
	NotBefore time.Time `json:"not_before,omitzero"` // issued or last renewed
	NotAfter  time.Time `json:"not_after,omitzero"`
	Revoked   bool      `json:"revoked,omitempty"`
	Registry  bool      `json:"registry,omitempty"`
	Reachable string    `json:"addresses,omitempty"`
	Source    string    `json:"source,omitempty"` // client address of the enrolment, if since the registry started
}

func (s *Server) listPrefixes(*call) ([]byte, error) {
	var blocks []store.Block
	err := s.cfg.Store.View(func(tx *store.Tx) error {
		var err error
		blocks, err = tx.Blocks()
		return err
	})
	if err != nil {
		return nil, err
	}
	p := s.published.Load()
	s.bootstrap.mu.Lock()
	defer s.bootstrap.mu.Unlock()
	s.enrolSourcesMu.Lock()
	defer s.enrolSourcesMu.Unlock()
	list := make([]PrefixInfo, 0, len(blocks))
	for _, block := range blocks {
		subnet, err := wire.Subnet(s.cfg.Authority.Network, block.Prefix)
		if err != nil {
			return nil, err
		}
		info := PrefixInfo{Prefix: block.Prefix, Subnet: subnet.String(), State: "free", Email: block.Email}
		switch {
		case block.Cert == store.Reserved:
			info.State = "reserved"
		case block.Issued():
			info.State = "issued"
			info.CN = wire.CommonName(block.Prefix)
			info.Registry = block.Prefix == p.registryPrefix
			info.Reachable = s.bootstrap.reports[block.Prefix].addresses
			if source, ok := s.enrolSources[block.Prefix]; ok {
				info.Source = source.String()
			}
			if cert, err := ca.ParseCertificate([]byte(block.Cert)); err == nil {
				info.Serial, _ = ca.SerialUint64(cert)
				info.NotBefore, info.NotAfter = cert.NotBefore, cert.NotAfter
				info.Revoked = p.crl[info.Serial]
			}
		}
		list = append(list, info)
	}
	return json.Marshal(list)
}
