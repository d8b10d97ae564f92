package loader

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/rs/zerolog/log"
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

// Up creates the overlay device, loads the programs, attaches them and pins
// everything for opts.Instance. On error nothing is left behind.
func Up(opts Options) (d *Datapath, err error) {
	opts.defaults()
	if err := CheckInstance(opts.Instance); err != nil {
		return nil, err
	}
	if !opts.Address.IsValid() || !opts.Address.Addr().Is6() || opts.Address.Addr().Is4In6() {
		return nil, fmt.Errorf("--address must be an IPv6 address with the network prefix length, e.g. 2001:db8:1::1/32")
	}
	if len(opts.Underlays) == 0 {
		return nil, errors.New("at least one underlay interface is needed")
	}
	if opts.Hook != HookTC && opts.Hook != HookXDP && opts.Hook != HookAuto {
		return nil, fmt.Errorf("unknown hook %q (want tc, xdp or auto)", opts.Hook)
	}
	if _, err := os.Stat(statePath(opts.Instance)); err == nil {
		return nil, fmt.Errorf("instance %q is already up (run `re6st-bpf down` first)", opts.Instance)
	}
	if err := ensureBPFFS(); err != nil {
		return nil, err
	}
	st := State{
		Instance: opts.Instance, Netns: opts.Netns, Overlay: opts.Overlay,
		OverlayPeer: opts.Overlay + "p", Address: opts.Address,
		FOUPort: opts.FOUPort,
	}
	var dev overlayDevice
	if err := InNetns(opts.Netns, func() error {
		var err error
		dev, err = createOverlay(&st, opts)
		return err
	}); err != nil {
		return nil, err
	}
	d = &Datapath{State: st}
	defer func() {
		if err != nil {
			d.teardown()
		}
	}()

	spec, err := loadDatapath()
	if err != nil {
		return nil, err
	}
	nodeAddr := opts.Address.Addr().As16()
	for name, v := range map[string]any{
		"cfg_fou_port":             htons(opts.FOUPort),
		"cfg_overlay_ifindex":      uint32(dev.ifindex),
		"cfg_overlay_peer_ifindex": uint32(dev.peerIfindex),
		"cfg_overlay_mac":          dev.mac,
		"cfg_node_addr":            nodeAddr,
		"cfg_unknown_peer_pps":     opts.UnknownPeerPPS,
		"cfg_icmp_pps":             opts.ICMPPPS,
	} {
		if err := spec.Variables[name].Set(v); err != nil {
			return nil, fmt.Errorf("configure %s: %w", name, err)
		}
	}
	if err := os.MkdirAll(pinDir(opts.Instance), 0o700); err != nil {
		return nil, err
	}
	// Every map is pinned by its name in the object (LIBBPF_PIN_BY_NAME).
	var objs datapathObjects
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pinDir(opts.Instance)}}); err != nil {
		return nil, fmt.Errorf("load BPF programs: %w", err)
	}
	defer objs.datapathPrograms.Close()
	d.maps = objs.datapathMaps
	if err := InNetns(opts.Netns, func() error { return attachAll(d, &objs.datapathPrograms, opts) }); err != nil {
		return nil, err
	}
	if err := writeState(&d.State); err != nil {
		return nil, err
	}
	return d, nil
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

// createOverlay makes the NOARP veth pair overlay/overlay+"p", gives the
// overlay end the node address (whose prefix length yields the kernel route
// for the whole network) and enables IPv6 forwarding, which the slow path
// needs. Runs inside the namespace.
func createOverlay(st *State, opts Options) (overlayDevice, error) {
	var dev overlayDevice
	mtu, peerMTU := opts.MTU, 0
	for _, name := range opts.Underlays {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return dev, fmt.Errorf("unknown underlay interface %q", name)
		}
		if m := l.Attrs().MTU - 28; opts.MTU == 0 && (mtu == 0 || m < mtu) {
			mtu = m
		}
		peerMTU = max(peerMTU, l.Attrs().MTU)
	}
	if mtu < 1280 {
		return dev, fmt.Errorf("overlay MTU %d is below the IPv6 minimum of 1280", mtu)
	}
	st.MTU = mtu
	if _, err := netlink.LinkByName(opts.Overlay); err == nil {
		return dev, fmt.Errorf("interface %q already exists", opts.Overlay)
	}
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: opts.Overlay, MTU: mtu},
		PeerName:  st.OverlayPeer,
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return dev, fmt.Errorf("create %s: %w", opts.Overlay, err)
	}
	err := func() error {
		for _, kv := range [][2]string{
			{"net/ipv6/conf/" + st.OverlayPeer + "/disable_ipv6", "1"},
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
		for _, name := range []string{opts.Overlay, st.OverlayPeer} {
			l, err := netlink.LinkByName(name)
			if err != nil {
				return err
			}
			// No link-local address and no neighbour discovery: the
			// overlay is point-to-multipoint through BPF.
			if err := netlink.LinkSetARPOff(l); err != nil {
				return err
			}
			// The peer receives whole tunnel packets as well (the
			// segmented transit detour): the underlay's MTU.
			m := mtu
			if name == st.OverlayPeer {
				m = max(mtu, peerMTU)
			}
			if err := netlink.LinkSetMTU(l, m); err != nil {
				return err
			}
			if err := netlink.LinkSetUp(l); err != nil {
				return err
			}
			if name == opts.Overlay {
				dev.ifindex = l.Attrs().Index
				copy(dev.mac[:], l.Attrs().HardwareAddr)
			} else {
				dev.peerIfindex = l.Attrs().Index
			}
		}
		l, _ := netlink.LinkByIndex(dev.ifindex)
		addr := &netlink.Addr{IPNet: prefixIPNet(opts.Address), Flags: unix.IFA_F_NODAD}
		if err := netlink.AddrAdd(l, addr); err != nil {
			return fmt.Errorf("address %s on %s: %w", opts.Address, opts.Overlay, err)
		}
		return nil
	}()
	if err != nil {
		netlink.LinkDel(veth)
	}
	return dev, err
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

// attachAll attaches the egress program to the overlay device and the
// ingress program to every underlay, pinning each link. Runs inside the
// namespace (XDP and tcx resolve interface indexes there).
func attachAll(d *Datapath, progs *datapathPrograms, opts Options) error {
	st := &d.State
	ov, err := netlink.LinkByName(st.Overlay)
	if err != nil {
		return err
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ov.Attrs().Index, Program: progs.OverlayEgress, Attach: ebpf.AttachTCXEgress})
	if err != nil {
		return fmt.Errorf("attach tcx egress to %s: %w", st.Overlay, err)
	}
	if err := pinLink(st.Instance, "link_"+st.Overlay, l); err != nil {
		return err
	}
	st.Attachments = append(st.Attachments, Attachment{Interface: st.Overlay, Program: "overlay_egress", Hook: "tcx-egress"})
	if err := attachSegmentation(st, progs); err != nil {
		return err
	}

	for _, name := range opts.Underlays {
		ul, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("unknown underlay interface %q", name)
		}
		hook, why := chooseHook(opts.Hook, name)
		a := Attachment{Interface: name, Why: why}
		switch hook {
		case HookTC:
			l, err = link.AttachTCX(link.TCXOptions{Interface: ul.Attrs().Index, Program: progs.UnderlayTc, Attach: ebpf.AttachTCXIngress})
			a.Program, a.Hook = "underlay_tc", "tcx-ingress"
		case HookXDP:
			if err := prepareXDP(st, name); err != nil {
				return err
			}
			l, err = link.AttachXDP(link.XDPOptions{Interface: ul.Attrs().Index, Program: progs.UnderlayXdp})
			a.Program, a.Hook = "underlay_xdp", "xdp"
		}
		if err != nil {
			return fmt.Errorf("attach %s to %s: %w", a.Program, name, err)
		}
		if err := pinLink(st.Instance, "link_"+name, l); err != nil {
			return err
		}
		log.Info().Str("interface", name).Str("hook", a.Hook).Str("why", why).Msg("underlay attached")
		st.Attachments = append(st.Attachments, a)
	}
	return nil
}

// tunnelGSOFeatures are the offloads that let a device carry tunnel GSO
// packets whole; without them, the kernel segments such packets on their way
// out of the device.
var tunnelGSOFeatures = map[string]bool{
	"tx-udp_tnl-segmentation": false, "tx-udp_tnl-csum-segmentation": false,
	"tx-gre-segmentation": false, "tx-gre-csum-segmentation": false,
}

// attachSegmentation sets up the detour of a tunnel GSO packet whose tunnel
// type changes in transit at tcx, which only the kernel can re-mark: sent out
// of the overlay device without tunnel GSO offloads, it is segmented by the
// kernel, and the segments, arriving on the overlay peer, go through the
// underlay program one by one (docs/architecture.md §4).
func attachSegmentation(st *State, progs *datapathPrograms) error {
	et, err := ethtool.NewEthtool()
	if err != nil {
		return fmt.Errorf("ethtool: %w", err)
	}
	defer et.Close()
	if err := et.Change(st.Overlay, tunnelGSOFeatures); err != nil {
		return fmt.Errorf("turn tunnel segmentation offloads off on %s: %w", st.Overlay, err)
	}
	peer, err := netlink.LinkByName(st.OverlayPeer)
	if err != nil {
		return err
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: peer.Attrs().Index, Program: progs.UnderlayTc, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return fmt.Errorf("attach tcx ingress to %s: %w", st.OverlayPeer, err)
	}
	if err := pinLink(st.Instance, "link_"+st.OverlayPeer, l); err != nil {
		return err
	}
	st.Attachments = append(st.Attachments, Attachment{Interface: st.OverlayPeer, Program: "underlay_tc", Hook: "tcx-ingress", Why: "segmented transit"})
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

func pinLink(instance, name string, l link.Link) error {
	defer l.Close()
	if err := l.Pin(filepath.Join(pinDir(instance), name)); err != nil {
		return fmt.Errorf("pin %s: %w", name, err)
	}
	return nil
}

// Down removes everything Up made for instance: links (which detaches the
// programs), maps, the overlay device and the state.
func Down(instance string) error {
	d, err := Open(instance)
	if err != nil {
		return err
	}
	return d.teardown()
}

func (d *Datapath) teardown() error {
	d.maps.Close()
	var errs []error
	// A deleted namespace took the overlay device with it.
	if err := InNetns(d.State.Netns, func() error {
		if l, err := netlink.LinkByName(d.State.Overlay); err == nil {
			return netlink.LinkDel(l)
		}
		return nil
	}); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	// Removing a link's last pin detaches it; map pins go with the directory.
	errs = append(errs, os.RemoveAll(pinDir(d.State.Instance)))
	if err := os.Remove(statePath(d.State.Instance)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
