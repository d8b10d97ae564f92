package node

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"time"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/routing/babel"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// Status is what `re6stnet status` shows.
type Status struct {
	Prefix      netip.Prefix          `json:"prefix"`
	Address     netip.Addr            `json:"address"`
	Network     netip.Prefix          `json:"network"`
	Uptime      Duration              `json:"uptime"`
	Gateway     bool                  `json:"gateway"`
	Certificate CertStatus            `json:"certificate"`
	Registry    RegistryStatus        `json:"registry"`
	Params      ParamsStatus          `json:"network_parameters"`
	ClientCount int                   `json:"client_count"`
	MaxClients  int                   `json:"max_clients"`
	Tunnels     []TunnelStatus        `json:"tunnels"`
	Neighbours  []babel.NeighbourInfo `json:"neighbours"`
	Routes      []RouteStatus         `json:"routes"`
	Control     ControlStatus         `json:"control"`
}

// Duration prints as Go durations do, in JSON too.
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).Round(time.Second).String()), nil
}

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

type CertStatus struct {
	Serial  string    `json:"serial"`
	Expires time.Time `json:"expires"`
	Days    int       `json:"days_left"`
}

type RegistryStatus struct {
	URL       string    `json:"url"`
	Reachable bool      `json:"reachable"`
	LastOK    time.Time `json:"last_ok,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

type ParamsStatus struct {
	Version       uint64 `json:"version"`
	Hello         int    `json:"hello"`
	TunnelRefresh int    `json:"tunnel_refresh"`
	Revoked       int    `json:"revoked_certificates"`
}

// TunnelStatus is one tunnel with its Babel neighbour and counters.
type TunnelStatus struct {
	ID        uint32             `json:"id"`
	Peer      netip.Prefix       `json:"peer"`
	Outgoing  bool               `json:"outgoing"`
	Draining  bool               `json:"draining,omitempty"`
	Encap     loader.TunnelType  `json:"encap"`
	Local     netip.Addr         `json:"local"`
	Remote    netip.AddrPort     `json:"remote"`
	NAT       bool               `json:"nat,omitempty"`
	Age       Duration           `json:"age"`
	RTTMicros uint32             `json:"rtt_us,omitempty"`
	Cost      uint16             `json:"cost,omitempty"`
	Routes    int                `json:"routes"`
	Traffic   loader.TunnelStats `json:"traffic"`
}

// RouteStatus is a selected route.
type RouteStatus struct {
	Prefix   string `json:"prefix"`
	Via      string `json:"via"`
	Metric   uint16 `json:"metric"`
	RouterID string `json:"router_id"`
}

// ControlStatus counts control traffic.
type ControlStatus struct {
	NodeProtocol  nodeproto.Stats `json:"node_protocol"`
	NotDatagram   uint64          `json:"dropped_not_datagram"`
	UnknownTunnel uint64          `json:"dropped_unknown_tunnel"`
	UnknownPort   uint64          `json:"dropped_unknown_port"`
}

// Status gathers the node's state.
func (n *Node) Status() Status {
	p := n.params()
	s := Status{
		Prefix: n.id.prefix, Address: n.id.addr, Network: n.id.network,
		Uptime: Duration(time.Since(n.started)), Gateway: n.cfg.Gateway,
		Certificate: CertStatus{Serial: n.id.Cert.SerialNumber.String(), Expires: n.id.Cert.NotAfter,
			Days: int(time.Until(n.id.Cert.NotAfter).Hours() / 24)},
		Params:      ParamsStatus{Version: p.Version, Hello: p.Hello, TunnelRefresh: p.TunnelRefresh, Revoked: len(p.CRL)},
		ClientCount: n.clientCount, MaxClients: n.maxClients,
		Control: ControlStatus{NodeProtocol: n.proto.Stats(), NotDatagram: n.drops.notDatagram.Load(),
			UnknownTunnel: n.drops.unknownTunnel.Load(), UnknownPort: n.drops.unknownPort.Load()},
	}
	r := &n.registry
	r.mu.Lock()
	s.Registry = RegistryStatus{URL: n.cfg.Registry, Reachable: r.ok, LastOK: r.lastOK, LastError: r.lastErr}
	r.mu.Unlock()
	dump := n.router.Dump()
	s.Neighbours = dump.Neighbours
	routesVia := map[string]int{}
	for _, rt := range dump.Routes {
		if !rt.Installed {
			continue
		}
		routesVia[rt.Interface]++
		s.Routes = append(s.Routes, RouteStatus{Prefix: babel.KeyOf(rt.Prefix, rt.Source).String(),
			Via: rt.Interface, Metric: rt.Metric, RouterID: rt.RouterID})
	}
	sort.Slice(s.Routes, func(i, j int) bool { return s.Routes[i].Prefix < s.Routes[j].Prefix })
	for _, t := range n.tunnelList() {
		ts := TunnelStatus{ID: t.ID, Peer: t.Peer, Outgoing: t.Outgoing, Draining: t.draining,
			Encap: t.lt.Type, Local: t.lt.Local, Remote: netip.AddrPortFrom(t.lt.Remote, t.lt.Port),
			NAT: t.lt.FixedSourcePort, Age: Duration(time.Since(t.Created)), Routes: routesVia[t.ifname()]}
		for _, nb := range dump.Neighbours {
			if nb.Interface == t.ifname() {
				ts.RTTMicros, ts.Cost = nb.RTTMicros, nb.Cost
			}
		}
		ts.Traffic, _ = n.dp.TunnelCounters(t.ID)
		s.Tunnels = append(s.Tunnels, ts)
	}
	sort.Slice(s.Tunnels, func(i, j int) bool { return s.Tunnels[i].ID < s.Tunnels[j].ID })
	return s
}

// serveControl answers GET /status on the control socket.
func (n *Node) serveControl() error {
	path := SocketPath(n.cfg.RunDir)
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(n.Status())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Warn().Err(err).Msg("control socket")
		}
	}()
	go func() {
		<-n.ctx.Done()
		srv.Close()
		os.Remove(path)
	}()
	return nil
}
