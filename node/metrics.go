package node

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// collector exports the node's status as Prometheus metrics, computed at
// each scrape.
type collector struct{ n *Node }

var (
	descTunnels    = prometheus.NewDesc("re6st_tunnels", "Tunnels by direction.", []string{"direction"}, nil)
	descRoutes     = prometheus.NewDesc("re6st_routes", "Routes Babel selected.", nil, nil)
	descNeighbours = prometheus.NewDesc("re6st_babel_neighbours", "Babel neighbours.", nil, nil)
	descTunnelRx   = prometheus.NewDesc("re6st_tunnel_receive_bytes_total", "Bytes received on a tunnel by the data plane.", []string{"tunnel", "peer"}, nil)
	descTunnelTx   = prometheus.NewDesc("re6st_tunnel_transmit_bytes_total", "Bytes sent on a tunnel by the data plane.", []string{"tunnel", "peer"}, nil)
	descRTT        = prometheus.NewDesc("re6st_tunnel_rtt_seconds", "Babel's smoothed RTT of a tunnel.", []string{"tunnel", "peer"}, nil)
	descReasons    = prometheus.NewDesc("re6st_datapath_packets_total", "Data-plane packets by verdict or reason.", []string{"reason"}, nil)
	descRegistry   = prometheus.NewDesc("re6st_registry_reachable", "1 if the last registry call succeeded.", nil, nil)
	descCertExpiry = prometheus.NewDesc("re6st_certificate_expiry_timestamp_seconds", "When the node certificate expires.", nil, nil)
	descCertRenew  = prometheus.NewDesc("re6st_certificate_renewal_timestamp_seconds", "When the node certificate is due for renewal.", nil, nil)
	descRenewFail  = prometheus.NewDesc("re6st_certificate_renewal_failing", "1 if the last renewal attempt failed (it is retried).", nil, nil)
	descDropped    = prometheus.NewDesc("re6st_control_dropped_total", "Control packets dropped by the daemon.", []string{"reason"}, nil)
	descFIBErrors  = prometheus.NewDesc("re6st_fib_errors_total", "Route writes the data plane or the kernel refused.", nil, nil)
	descFIBRetry   = prometheus.NewDesc("re6st_fib_retrying_routes", "Routes waiting for a retry of a refused write.", nil, nil)
	descFIBLast    = prometheus.NewDesc("re6st_fib_last_error_info", "The last refused route write.", []string{"error"}, nil)
	descInstalled  = prometheus.NewDesc("re6st_routes_installed", "Selected routes written into the data plane or the kernel.", nil, nil)

	descClassPackets = prometheus.NewDesc("re6st_class_packets_total", "Packets the data plane classified into a traffic class.", []string{"class"}, nil)
	descClassBytes   = prometheus.NewDesc("re6st_class_bytes_total", "Inner bytes the data plane classified into a traffic class.", []string{"class"}, nil)
	descClassDrops   = prometheus.NewDesc("re6st_class_drops_total", "Packets of a traffic class the data plane refused.", []string{"class"}, nil)
	descClassRoutes  = prometheus.NewDesc("re6st_class_routes", "Selected routes into a traffic class's range.", []string{"class"}, nil)
)

func (c collector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.n.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	in, out := 0, 0
	for _, t := range s.Tunnels {
		if t.Outgoing {
			out++
		} else {
			in++
		}
		id, peer := strconv.FormatUint(uint64(t.ID), 10), t.Peer.String()
		counter(descTunnelRx, t.Traffic.RxBytes, id, peer)
		counter(descTunnelTx, t.Traffic.TxBytes, id, peer)
		gauge(descRTT, float64(t.RTTMicros)/1e6, id, peer)
	}
	gauge(descTunnels, float64(out), "outgoing")
	gauge(descTunnels, float64(in), "incoming")
	gauge(descRoutes, float64(len(s.Routes)))
	gauge(descNeighbours, float64(len(s.Neighbours)))
	reachable := 0.0
	if s.Registry.Reachable {
		reachable = 1
	}
	gauge(descRegistry, reachable)
	gauge(descCertExpiry, float64(s.Certificate.Expires.Unix()))
	gauge(descCertRenew, float64(s.Certificate.RenewAt.Unix()))
	failing := 0.0
	if s.Certificate.LastError != "" {
		failing = 1
	}
	gauge(descRenewFail, failing)
	if reasons, err := c.n.dp.Reasons(); err == nil {
		for name, v := range reasons {
			counter(descReasons, v, name)
		}
	}
	counter(descDropped, s.Control.NotDatagram, "not_datagram")
	counter(descDropped, s.Control.UnknownTunnel, "unknown_tunnel")
	counter(descDropped, s.Control.UnknownPort, "unknown_port")
	counter(descFIBErrors, s.FIB.Errors)
	gauge(descFIBRetry, float64(s.FIB.Retrying))
	if s.FIB.LastError != "" {
		gauge(descFIBLast, 1, s.FIB.LastError)
	}
	installed := 0
	for _, r := range s.Routes {
		if r.Installed {
			installed++
		}
	}
	gauge(descInstalled, float64(installed))
	for _, cl := range s.Classes {
		counter(descClassPackets, cl.Traffic.Packets, cl.Name)
		counter(descClassBytes, cl.Traffic.Bytes, cl.Name)
		counter(descClassDrops, cl.Traffic.Drops, cl.Name)
		gauge(descClassRoutes, float64(len(cl.Routes)), cl.Name)
	}
	if s.BGP != nil {
		collectBGP(s.BGP, ch)
	}
}

// serveMetrics serves /metrics on --metrics until ctx ends.
func (n *Node) serveMetrics(ctx context.Context) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{n})
	l, err := net.Listen("tcp", n.cfg.Metrics)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	n.serveHTTP(ctx, srv, l, "metrics", func() {})
	return nil
}
