package loader

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/safchain/ethtool"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

// Hook names the attach point of the underlay ingress program.
type Hook string

const (
	HookTC   Hook = "tc"
	HookXDP  Hook = "xdp"
	HookAuto Hook = "auto"
)

// Defaults.
const (
	DefaultOverlay = "re6st0"
	DefaultFOUPort = 5555
)

// Options describe the data plane `up` builds.
type Options struct {
	Instance  string
	Netns     string // named network namespace; "" for the caller's
	Overlay   string
	Address   netip.Prefix // node address / network prefix length
	Underlays []string
	Hook      Hook
	Attach    AttachMode // how tc programs attach: tcx, legacy (clsact + cls_bpf) or auto
	FOUPort   uint16
	MTU       int // overlay MTU; 0: smallest underlay MTU - 28
	// Rates (packets per second, per CPU) of what the data plane passes
	// from unknown endpoints and of the ICMPv6 errors it generates.
	UnknownPeerPPS uint32
	ICMPPPS        uint32
}

func (o *Options) defaults() {
	if o.Overlay == "" {
		o.Overlay = DefaultOverlay
	}
	if o.Hook == "" {
		o.Hook = HookAuto
	}
	if o.Attach == "" {
		o.Attach = AttachAuto
	}
	if o.FOUPort == 0 {
		o.FOUPort = DefaultFOUPort
	}
	if o.UnknownPeerPPS == 0 {
		o.UnknownPeerPPS = 100
	}
	if o.ICMPPPS == 0 {
		o.ICMPPPS = 100
	}
}

// InNetns runs fn inside the named namespace, or in place when name is "".
func InNetns(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	h, err := vnetns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("network namespace %q: %w", name, err)
	}
	defer h.Close()
	return netns.Do(h, fn)
}

func writeState(st *State) error {
	if err := os.MkdirAll(StateRoot, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(st.Instance) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(st.Instance))
}

type overlayDevice struct {
	ifindex, peerIfindex int
	mac                  [6]byte
}

// overlayMTU is opts.MTU, or the smallest underlay MTU less the largest
// encapsulation (28); peer is the MTU of the overlay peer, which receives
// whole tunnel packets as well (the segmented transit detour, §4 of
// docs/architecture.md): the largest underlay MTU. Runs inside the
// namespace.
func overlayMTU(opts Options) (mtu, peer int, err error) {
	mtu = opts.MTU
	for _, name := range opts.Underlays {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return 0, 0, fmt.Errorf("unknown underlay interface %q", name)
		}
		if m := l.Attrs().MTU - 28; opts.MTU == 0 && (mtu == 0 || m < mtu) {
			mtu = m
		}
		peer = max(peer, l.Attrs().MTU)
	}
	if mtu < 1280 {
		return 0, 0, fmt.Errorf("overlay MTU %d is below the IPv6 minimum of 1280", mtu)
	}
	return mtu, max(mtu, peer), nil
}

// createOverlay makes the NOARP veth pair overlay/overlay+"p", gives the
// overlay end the node address (whose prefix length yields the kernel route
// for the whole network) and enables IPv6 forwarding, which the slow path
// needs. Once the names are known to be free it records them in st and
// calls record before creating the pair, so that a crash leaves a state that
// names them. Runs inside the namespace.
func createOverlay(st *State, opts Options, record func() error) error {
	mtu, peerMTU, err := overlayMTU(opts)
	if err != nil {
		return err
	}
	peer := opts.Overlay + "p"
	for _, name := range []string{opts.Overlay, peer} {
		if _, err := netlink.LinkByName(name); err == nil {
			return fmt.Errorf("interface %q already exists", name)
		}
	}
	st.MTU, st.Overlay, st.OverlayPeer = mtu, opts.Overlay, peer
	if err := record(); err != nil {
		return err
	}
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: opts.Overlay, MTU: mtu},
		PeerName:  peer,
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create %s: %w", opts.Overlay, err)
	}
	for _, kv := range [][2]string{
		{"net/ipv6/conf/" + peer + "/disable_ipv6", "1"},
		{"net/ipv6/conf/" + opts.Overlay + "/accept_ra", "0"},
		// No link-local address: nothing but routed traffic leaves
		// the overlay device.
		{"net/ipv6/conf/" + opts.Overlay + "/addr_gen_mode", "1"},
		{"net/ipv6/conf/all/forwarding", "1"},
	} {
		if err := os.WriteFile(filepath.Join("/proc/sys", kv[0]), []byte(kv[1]), 0); err != nil {
			return fmt.Errorf("sysctl %s: %w", kv[0], err)
		}
	}
	for _, name := range []string{opts.Overlay, peer} {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		// No neighbour discovery: the overlay is point-to-multipoint
		// through BPF.
		if err := netlink.LinkSetARPOff(l); err != nil {
			return err
		}
		m := mtu
		if name == peer {
			m = peerMTU
		}
		if err := netlink.LinkSetMTU(l, m); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
	}
	if err := withoutTunnelGSO(opts.Overlay); err != nil {
		return err
	}
	l, err := netlink.LinkByName(opts.Overlay)
	if err != nil {
		return err
	}
	addr := &netlink.Addr{IPNet: prefixIPNet(opts.Address), Flags: unix.IFA_F_NODAD}
	if err := netlink.AddrAdd(l, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", opts.Address, opts.Overlay, err)
	}
	return nil
}

// readOverlay returns what the programs are configured with about the
// overlay pair. Runs inside the namespace.
func readOverlay(st *State) (overlayDevice, error) {
	var dev overlayDevice
	ov, err := netlink.LinkByName(st.Overlay)
	if err != nil {
		return dev, fmt.Errorf("overlay device %s: %w", st.Overlay, err)
	}
	peer, err := netlink.LinkByName(st.OverlayPeer)
	if err != nil {
		return dev, fmt.Errorf("overlay device %s: %w", st.OverlayPeer, err)
	}
	dev.ifindex, dev.peerIfindex = ov.Attrs().Index, peer.Attrs().Index
	copy(dev.mac[:], ov.Attrs().HardwareAddr)
	return dev, nil
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// virtualDrivers are drivers whose XDP costs more than it gains: XDP on
// veth disables TSO on the peer and copies every frame, while tcx keeps GSO
// super-packets (see docs/architecture.md).
var virtualDrivers = map[string]bool{"veth": true, "bridge": true, "macvlan": true, "vxlan": true, "tun": true, "dummy": true, "netkit": true}

// chooseHook resolves auto for one interface and says why.
func chooseHook(h Hook, ifname string) (Hook, string) {
	if h != HookAuto {
		return h, "requested"
	}
	et, err := ethtool.NewEthtool()
	if err != nil {
		return HookTC, "driver unknown (ethtool: " + err.Error() + ")"
	}
	defer et.Close()
	drv, err := et.DriverName(ifname)
	if err != nil {
		return HookTC, "driver unknown"
	}
	if virtualDrivers[drv] {
		return HookTC, "driver " + drv + ": tcx keeps GSO and checksum offload"
	}
	return HookXDP, "driver " + drv + ": native XDP"
}

// tunnelGSOFeatures are the offloads that let a device carry tunnel GSO
// packets whole; without them, the kernel segments such packets on their way
// out of the device.
var tunnelGSOFeatures = map[string]bool{
	"tx-udp_tnl-segmentation": false, "tx-udp_tnl-csum-segmentation": false,
	"tx-gre-segmentation": false, "tx-gre-csum-segmentation": false,
}

// withoutTunnelGSO turns the tunnel segmentation offloads off on the overlay
// device, so that a tunnel GSO packet sent out of it to change its tunnel
// type in transit is segmented by the kernel (docs/architecture.md §4).
func withoutTunnelGSO(overlay string) error {
	et, err := ethtool.NewEthtool()
	if err != nil {
		return fmt.Errorf("ethtool: %w", err)
	}
	defer et.Close()
	if err := et.Change(overlay, tunnelGSOFeatures); err != nil {
		return fmt.Errorf("turn tunnel segmentation offloads off on %s: %w", overlay, err)
	}
	return nil
}

// prepareXDP sets what XDP redirects need on veth: NAPI (GRO) on the overlay
// device, which receives the decapsulated frames, and software checksums on
// a veth underlay, because an XDP redirect loses the checksum state.
func prepareXDP(st *State, underlay string) error {
	et, err := ethtool.NewEthtool()
	if err != nil {
		return fmt.Errorf("ethtool: %w", err)
	}
	defer et.Close()
	if err := et.Change(st.Overlay, map[string]bool{"rx-gro": true}); err != nil {
		return fmt.Errorf("enable GRO on %s: %w", st.Overlay, err)
	}
	if drv, _ := et.DriverName(underlay); drv == "veth" {
		if err := et.Change(underlay, map[string]bool{"tx-checksum-ip-generic": false}); err != nil {
			return fmt.Errorf("disable tx checksum offload on %s: %w", underlay, err)
		}
	}
	return nil
}
