package node

import (
	"context"
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
	"github.com/re6st-bpf/re6st-bpf/routing/fib"
	"github.com/re6st-bpf/re6st-bpf/tunnels/control"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
)

// Status is what `re6stnet status` shows.
type Status struct {
	Prefix  netip.Prefix `json:"prefix"`
	Address netip.Addr   `json:"address"`
	Network netip.Prefix `json:"network"`
	// IPv4 is the node's IPv4 address with the IPv4 network's length and
	// IPv4Subnet its subnet, when the network has an IPv4 payload.
	IPv4        netip.Prefix   `json:"ipv4,omitzero"`
	IPv4Subnet  netip.Prefix   `json:"ipv4_subnet,omitzero"`
	Uptime      Duration       `json:"uptime"`
	Gateway     bool           `json:"gateway"`
	Certificate CertStatus     `json:"certificate"`
	Registry    RegistryStatus `json:"registry"`
	Params      ParamsStatus   `json:"network_parameters"`
	ClientCount int            `json:"client_count"`
	MaxClients  int            `json:"max_clients"`
	Tunnels     []TunnelStatus `json:"tunnels"`
	// WireGuardRotations counts the WireGuard key rotations made while
	// running (--wireguard-rotate).
	WireGuardRotations int64 `json:"wireguard_key_rotations,omitempty"`
	// OpenVPNServers are the node's OpenVPN servers, whose clients are
	// not in Tunnels (they have no entry in the tunnel table).
	OpenVPNServers []OpenVPNServerStatus `json:"openvpn_servers,omitempty"`
	Neighbours     []babel.NeighbourInfo `json:"neighbours"`
	Routes         []RouteStatus         `json:"routes"`
	Control        ControlStatus         `json:"control"`
	FIB            fib.Stats             `json:"fib"`
	// Classes are the network's traffic classes (none: left out).
	Classes []ClassStatus `json:"traffic_classes,omitempty"`
	BGP     *BGPStatus    `json:"bgp,omitempty"`
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
	Serial      string    `json:"serial"`
	Expires     time.Time `json:"expires"`
	Days        int       `json:"days_left"`
	RenewAt     time.Time `json:"renew_at"`              // when renewal is due (node/renewal.go)
	LastAttempt time.Time `json:"last_attempt,omitzero"` // last renewal attempt
	LastRenewed time.Time `json:"last_renewed,omitzero"` // last successful renewal
	LastError   string    `json:"last_error,omitempty"`  // of the last attempt
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
	Encap     loader.TunnelType  `json:"encap"` // the data plane's kind: fou, gre, or device (WireGuard, OpenVPN)
	Type      string             `json:"type"`  // the tunnel type: fou, gre, wireguard, openvpn-tcp, openvpn-udp
	Encrypted bool               `json:"encrypted"`
	Local     netip.Addr         `json:"local"`
	Remote    netip.AddrPort     `json:"remote"`
	NAT       bool               `json:"nat,omitempty"`
	Age       Duration           `json:"age"`
	RTTMicros uint32             `json:"rtt_us,omitempty"`
	Cost      uint16             `json:"cost,omitempty"`
	Routes    int                `json:"routes"`
	Traffic   loader.TunnelStats `json:"traffic"`
}

// OpenVPNServerStatus is one OpenVPN server: its device, type, underlay
// family and port, whether openvpn runs, and its clients Babel hears
// (neighbours on the device).
type OpenVPNServerStatus struct {
	Device  string `json:"device"`
	Type    string `json:"type"`
	IPv6    bool   `json:"ipv6,omitempty"` // over IPv6 (re6st's tcp6, udp6); otherwise IPv4
	Port    uint16 `json:"port"`
	Running bool   `json:"running"`
	Clients int    `json:"clients"`
}

// RouteStatus is a route Babel selected; Installed once the fib wrote it
// into the data plane (or the kernel).
type RouteStatus struct {
	Prefix    string `json:"prefix"`
	Via       string `json:"via"`
	Metric    uint16 `json:"metric"`
	RouterID  string `json:"router_id"`
	Installed bool   `json:"installed"`
}

// ControlStatus counts control traffic.
type ControlStatus struct {
	NodeProtocol nodeproto.Stats `json:"node_protocol"`
	control.Drops
}

// Status gathers the node's state.
func (n *Node) Status() Status {
	p := n.params.get()
	clientCount, maxClients := n.params.Counts()
	_, v4 := n.payload.get()
	s := Status{
		Prefix: n.id.prefix, Address: n.id.addr, Network: n.id.network, IPv4: v4.addr, IPv4Subnet: v4.subnet,
		Uptime: Duration(time.Since(n.started)), Gateway: n.cfg.Gateway,
		Certificate: n.cert.status(),
		Params:      ParamsStatus{Version: p.Version, Hello: p.Hello, TunnelRefresh: p.TunnelRefresh, Revoked: len(p.CRL)},
		ClientCount: clientCount, MaxClients: maxClients,
		Control: ControlStatus{NodeProtocol: n.proto.Stats(), Drops: n.conn.Drops()},
		FIB:     n.fibw.Stats(),
		BGP:     n.gw.status(),
	}
	if n.backend != nil && n.backend.wg != nil {
		s.WireGuardRotations = n.backend.wg.rotations.Load()
	}
	r := &n.registry
	r.mu.Lock()
	s.Registry = RegistryStatus{URL: n.cfg.Registry, Reachable: r.ok, LastOK: r.lastOK, LastError: r.lastErr}
	r.mu.Unlock()
	dump := n.router.Dump()
	s.Neighbours = dump.Neighbours
	routesVia := map[string]int{}
	for _, rt := range dump.Routes {
		if !rt.Selected {
			continue
		}
		routesVia[rt.Interface]++
		key := babel.KeyOf(rt.Prefix, rt.Source)
		s.Routes = append(s.Routes, RouteStatus{Prefix: key.String(), Via: rt.Interface, Metric: rt.Metric,
			RouterID: rt.RouterID, Installed: n.fibw.Installed(key)})
	}
	sort.Slice(s.Routes, func(i, j int) bool { return s.Routes[i].Prefix < s.Routes[j].Prefix })
	s.OpenVPNServers = n.backend.ovpn.serverStatuses(dump.Neighbours)
	s.Classes = n.classStatuses(s.Routes)
	for _, t := range n.tunnels.Tunnels() {
		ep := t.Endpoint
		encap, _ := loader.ParseTunnelType(ep.Encap)
		if _, ovpn := openvpnTypes[ep.Encap]; ovpn || ep.Encap == nodeproto.ProtoWireGuard {
			encap = loader.DEVICE
		}
		ts := TunnelStatus{ID: t.ID, Peer: t.Peer, Outgoing: t.Outgoing, Draining: t.Draining,
			Encap: encap, Type: ep.Encap, Encrypted: n.tunnelEncrypted(t.ID, ep.Encap, p.Encrypt), Local: ep.Local, Remote: ep.Remote, NAT: ep.NAT,
			Age: Duration(time.Since(t.Created)), Routes: routesVia[t.Interface()]}
		for _, nb := range dump.Neighbours {
			if nb.Interface == t.Interface() {
				ts.RTTMicros, ts.Cost = nb.RTTMicros, nb.Cost
			}
		}
		ts.Traffic, _ = n.dp.TunnelCounters(t.ID)
		s.Tunnels = append(s.Tunnels, ts)
	}
	s.Tunnels = append(s.Tunnels, n.taps.serverClients(dump, p.Encrypt)...)
	return s
}

// serveControl answers GET /status and POST /wireguard/rotate on the
// control socket until ctx ends.
func (n *Node) serveControl(ctx context.Context) error {
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
	mux.HandleFunc("POST /wireguard/rotate", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		rot, err := n.RotateWireGuardKey(r.Context())
		if err != nil {
			w.WriteHeader(http.StatusConflict)
			rot.Error = err.Error()
		}
		json.NewEncoder(w).Encode(rot)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	n.serveHTTP(ctx, srv, l, "control socket", func() { os.Remove(path) })
	return nil
}

// serveHTTP serves srv on l in n.run until ctx ends, then closes it and
// runs cleanup.
func (n *Node) serveHTTP(ctx context.Context, srv *http.Server, l net.Listener, what string, cleanup func()) {
	n.run.Go(func() error {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Warn().Err(err).Msg(what)
		}
		return nil
	})
	n.run.Go(func() error {
		<-ctx.Done()
		srv.Close()
		cleanup()
		return nil
	})
}
