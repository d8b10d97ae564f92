package fib

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ProtoBGP is the routing protocol number of BGP routes (RTPROT_BGP);
// `ip route` shows it as "proto bgp".
const ProtoBGP = 186

// NativeMap is the data plane's native route map; *loader.Datapath
// implements it.
type NativeMap interface {
	SetNativeRoute(r loader.NativeRoute) error
	DeleteNativeRoute(dst netip.Prefix) error
	NativeRoutes() ([]loader.NativeRoute, error)
}

// Native writes a border gateway's native routes (learned from BGP, with
// their upstream next hop) into a kernel routing table and, when it has
// one, into the data plane's native route map, which forwards the
// overlay's traffic to the internet (the kernel's routes serve the
// gateway's own traffic and the slow path). Sync makes both hold exactly
// the routes it is given, writing only what changed since the last call. A
// refused write is counted and retried at the next Sync. The interface of
// each route is the one the kernel uses to reach its next hop.
type Native struct {
	Kernel *Kernel
	Map    NativeMap // nil: the kernel only
	log    zerolog.Logger

	mu        sync.Mutex // held through a Sync, which may take seconds for a full table
	installed map[netip.Prefix]nativeNexthop
	stopped   bool
	handle    *netlink.Handle // one rtnetlink socket for every write, opened by the first call

	// The counts, apart so that Stats answers during a Sync.
	statsMu sync.Mutex
	count   int // len(installed)
	errors  uint64
	lastErr string
}

// nativeNexthop is where an installed route goes: its next hop and the
// interface that reaches it.
type nativeNexthop struct {
	addr netip.Addr
	link upstream
}

// upstream is an interface that reaches a next hop.
type upstream struct {
	index int
	name  string
	mtu   int
}

// NewNative writes routes with k's table, metric and protocol (which should
// be ProtoBGP), over one rtnetlink socket of its own, and into m unless it
// is nil.
func NewNative(k *Kernel, m NativeMap, log zerolog.Logger) *Native {
	return &Native{Kernel: k, Map: m, log: log, installed: map[netip.Prefix]nativeNexthop{}}
}

// Sync installs routes (prefix → next hop) and removes the others it
// installed. After Stop it does nothing.
func (n *Native) Sync(routes map[netip.Prefix]netip.Addr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.stopped {
		n.syncLocked(routes)
	}
}

// handleLocked opens the rtnetlink socket, in the calling thread's network
// namespace.
func (n *Native) handleLocked() (*netlink.Handle, error) {
	if n.handle == nil {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return nil, fmt.Errorf("fib: rtnetlink: %w", err)
		}
		n.handle = h
	}
	return n.handle, nil
}

// route is dst as the kernel keeps it (next hop and interface aside).
func (n *Native) route(dst netip.Prefix) *netlink.Route {
	return &netlink.Route{Family: netlink.FAMILY_V6, Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), 128)},
		Protocol: netlink.RouteProtocol(n.Kernel.protocol()), Priority: n.Kernel.priority(), Table: n.Kernel.table()}
}

// Prune removes the routes of its protocol and metric that a previous run
// left in its table (killed, it could not remove them), and returns how
// many.
func (n *Native) Prune() (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h, err := n.handleLocked()
	if err != nil {
		return 0, err
	}
	filter := &netlink.Route{Protocol: netlink.RouteProtocol(n.Kernel.protocol()), Table: n.Kernel.table(), Priority: n.Kernel.priority()}
	routes, err := h.RouteListFiltered(netlink.FAMILY_V6, filter, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PRIORITY)
	if err != nil {
		return 0, fmt.Errorf("fib: list native routes: %w", err)
	}
	pruned := 0
	for _, r := range routes {
		if err := h.RouteDel(&r); err != nil {
			return pruned, fmt.Errorf("fib: prune %s: %w", r.Dst, err)
		}
		pruned++
	}
	if n.Map == nil {
		return pruned, nil
	}
	// The data plane's outlive the process too; counted once with the
	// kernel's.
	left, err := n.Map.NativeRoutes()
	if err != nil {
		return pruned, fmt.Errorf("fib: list native routes of the data plane: %w", err)
	}
	for _, r := range left {
		if err := n.Map.DeleteNativeRoute(r.Dst); err != nil && !errors.Is(err, loader.ErrNotFound) {
			return pruned, fmt.Errorf("fib: prune %s: %w", r.Dst, err)
		}
	}
	return max(pruned, len(left)), nil
}

// Stop removes every route it installed; later Syncs do nothing.
func (n *Native) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.syncLocked(nil)
	n.stopped = true
	if n.handle != nil {
		n.handle.Close()
		n.handle = nil
	}
}

func (n *Native) syncLocked(routes map[netip.Prefix]netip.Addr) {
	h, err := n.handleLocked()
	if err != nil {
		n.noteLocked(netip.Prefix{}, netip.Addr{}, err)
		return
	}
	links := map[netip.Addr]upstream{}
	for dst, nh := range routes {
		if old, ok := n.installed[dst]; ok && old.addr == nh {
			continue
		}
		link, ok := links[nh]
		if !ok {
			link = upstreamTo(h, nh)
			links[nh] = link
		}
		if link.index == 0 {
			n.noteLocked(dst, nh, errors.New("no route to the next hop"))
			continue
		}
		if err := n.installLocked(h, dst, nh, link); err != nil {
			n.noteLocked(dst, nh, err)
			continue
		}
		n.installed[dst] = nativeNexthop{addr: nh, link: link}
		n.counted()
	}
	for dst, old := range n.installed {
		if _, keep := routes[dst]; keep {
			continue
		}
		if err := n.removeLocked(h, dst); err != nil {
			n.noteLocked(dst, old.addr, err)
			continue
		}
		delete(n.installed, dst)
		n.counted()
	}
}

// installLocked writes dst via nh on link into the kernel and the map.
func (n *Native) installLocked(h *netlink.Handle, dst netip.Prefix, nh netip.Addr, link upstream) error {
	r := n.route(dst)
	r.Gw, r.LinkIndex = nh.AsSlice(), link.index
	if err := h.RouteReplace(r); err != nil {
		return err
	}
	if n.Map == nil {
		return nil
	}
	return n.Map.SetNativeRoute(loader.NativeRoute{Dst: dst, NextHop: nh, Ifindex: uint32(link.index), MTU: uint16(min(link.mtu, 65535))})
}

// removeLocked removes dst from the kernel and the map; what is gone
// already is no error.
func (n *Native) removeLocked(h *netlink.Handle, dst netip.Prefix) error {
	if err := h.RouteDel(n.route(dst)); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	if n.Map == nil {
		return nil
	}
	if err := n.Map.DeleteNativeRoute(dst); err != nil && !errors.Is(err, loader.ErrNotFound) {
		return err
	}
	return nil
}

// Upstreams are the names of the interfaces the installed routes go out
// of, sorted: where the data plane's upstream ingress program belongs.
func (n *Native) Upstreams() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, r := range n.installed {
		if !slices.Contains(out, r.link.name) {
			out = append(out, r.link.name)
		}
	}
	slices.Sort(out)
	return out
}

// counted publishes the number of installed routes.
func (n *Native) counted() {
	n.statsMu.Lock()
	n.count = len(n.installed)
	n.statsMu.Unlock()
}

// upstreamTo is the interface of the kernel's route to nh (index 0 if
// none).
func upstreamTo(h *netlink.Handle, nh netip.Addr) upstream {
	rs, err := h.RouteGet(net.IP(nh.AsSlice()))
	if err != nil || len(rs) == 0 {
		return upstream{}
	}
	l, err := h.LinkByIndex(rs[0].LinkIndex)
	if err != nil {
		return upstream{}
	}
	return upstream{index: l.Attrs().Index, name: l.Attrs().Name, mtu: l.Attrs().MTU}
}

func (n *Native) noteLocked(dst netip.Prefix, nh netip.Addr, err error) {
	n.statsMu.Lock()
	n.errors++
	n.lastErr = fmt.Sprintf("%s via %s: %v", dst, nh, err)
	n.statsMu.Unlock()
	n.log.Warn().Err(err).Stringer("prefix", dst).Stringer("nexthop", nh).Msg("native route")
}

// NativeStats counts the native routes.
type NativeStats struct {
	Installed int    `json:"installed"`
	Errors    uint64 `json:"errors"`
	LastError string `json:"last_error,omitempty"`
}

// Stats reads the counts.
func (n *Native) Stats() NativeStats {
	n.statsMu.Lock()
	defer n.statsMu.Unlock()
	return NativeStats{Installed: n.count, Errors: n.errors, LastError: n.lastErr}
}
