package bgp

import (
	"context"
	"net/netip"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// Session is one BGP session's state, for status and metrics.
type Session struct {
	Peer       netip.Addr    `json:"peer"`
	ASN        uint32        `json:"asn"`
	State      string        `json:"state"` // idle, connect, active, opensent, openconfirm, established
	Uptime     time.Duration `json:"uptime_ns"`
	Received   uint64        `json:"prefixes_received"`
	Accepted   uint64        `json:"prefixes_accepted"` // received less those the import policy rejects
	Advertised uint64        `json:"prefixes_advertised"`
}

// Established tells whether the session is up.
func (s Session) Established() bool { return s.State == "established" }

// Sessions lists every session.
func (s *Speaker) Sessions() []Session {
	var out []Session
	err := s.srv.ListPeer(context.Background(), &api.ListPeerRequest{EnableAdvertised: true}, func(p *api.Peer) {
		st := p.GetState()
		addr, err := netip.ParseAddr(st.GetNeighborAddress())
		if err != nil {
			addr, _ = netip.ParseAddr(p.GetConf().GetNeighborAddress())
		}
		sess := Session{Peer: addr.Unmap(), ASN: st.GetPeerAsn(),
			State: strings.ToLower(st.GetSessionState().String())}
		if sess.ASN == 0 {
			sess.ASN = p.GetConf().GetPeerAsn()
		}
		if up := p.GetTimers().GetState().GetUptime(); sess.Established() && up != nil {
			sess.Uptime = time.Since(up.AsTime()).Round(time.Second)
		}
		for _, a := range p.GetAfiSafis() {
			sess.Received += a.GetState().GetReceived()
			sess.Accepted += a.GetState().GetAccepted()
			sess.Advertised += a.GetState().GetAdvertised()
		}
		// GoBGP counts as accepted what its Adj-RIB-In holds, before
		// the import policy.
		sess.Accepted -= min(sess.Accepted, s.rejectedBy(sess.Peer))
		out = append(out, sess)
	})
	if err != nil {
		s.log.Debug().Err(err).Msg("list peers")
	}
	return out
}
