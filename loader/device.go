package loader

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

// IngressAttachment is a program the daemon attaches at the tc ingress of
// an interface it owns the use of: device_ingress on a device tunnel's
// device (bpf/include/device.h), native_ingress on a border gateway's
// upstream interface (bpf/include/native.h). It is not pinned: a device
// tunnel's device belongs to the process that made it (a userspace
// WireGuard or OpenVPN dies with its process), and the native routes to the
// gateway that learned them; Close detaches it.
type IngressAttachment struct {
	netns     string
	link      link.Link
	legacy    *Attachment
	Interface string     `json:"interface"`
	Program   string     `json:"program"`
	Hook      string     `json:"hook"`
	Mode      AttachMode `json:"mode"`
}

// AttachDevice attaches the device tunnels' ingress program to the device
// ifname, in the data plane's namespace and attachment mode (tcx or legacy,
// as `up` chose): device_ingress on a layer-3 device, device_l2_ingress on
// an Ethernet one (a TAP). Packets coming out of the device are then routed
// like decapsulated traffic once a device tunnel names the device (AddTunnel
// with Type DEVICE; on a layer-2 device with the neighbour's NextHop, and
// from the neighbour's first control packet, which gives its MAC).
func (d *Datapath) AttachDevice(ifname string) (*IngressAttachment, error) {
	prog := datapathProgDeviceIngress
	err := InNetns(d.State.Netns, func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("%s: unknown interface %q", prog, ifname)
		}
		if layer2(l) {
			prog = datapathProgDeviceL2Ingress
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d.attachIngress(ifname, prog, legacyPriority)
}

// layer2 reports whether l has an Ethernet header (a TAP, a veth) rather
// than none (TUN, WireGuard).
func layer2(l netlink.Link) bool {
	return l.Attrs().EncapType == "ether" || len(l.Attrs().HardwareAddr) == 6
}

// AttachNative attaches the border gateway's upstream ingress program to
// ifname: packets from the internet to the overlay are then encapsulated
// into the tunnel of their route. On an underlay interface it runs after
// the underlay program (which passes what is not a tunnel packet on).
func (d *Datapath) AttachNative(ifname string) (*IngressAttachment, error) {
	return d.attachIngress(ifname, datapathProgNativeIngress, nativePriority)
}

// attachIngress attaches the program named prog at the tc ingress of
// ifname, with priority in the legacy mode.
func (d *Datapath) attachIngress(ifname, prog string, priority uint16) (*IngressAttachment, error) {
	st := &d.State
	a := &IngressAttachment{netns: st.Netns, Interface: ifname, Program: prog, Mode: st.Attach}
	a.Hook = tcPoint(st.Attach, true)
	err := InNetns(st.Netns, func() error {
		dev, err := readOverlay(st)
		if err != nil {
			return err
		}
		p, err := loadIngressProgram(st, dev, prog)
		if err != nil {
			return err
		}
		defer p.Close() // the link or the filter holds it
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("%s: unknown interface %q", prog, ifname)
		}
		if a.Hook == pointTCIngress {
			f, err := attachFilter(l.Attrs().Index, true, priority, p)
			if err != nil {
				return fmt.Errorf("attach %s to %s: %w", prog, ifname, err)
			}
			a.legacy = &Attachment{Interface: ifname, Program: prog, Hook: a.Hook, Filter: f}
			return nil
		}
		a.link, err = link.AttachTCX(link.TCXOptions{Interface: l.Attrs().Index, Program: p, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			return fmt.Errorf("attach %s to %s: %w", prog, ifname, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Close detaches the program; an interface that is gone already is no
// error.
func (a *IngressAttachment) Close() error {
	if a.link != nil {
		err := a.link.Close()
		a.link = nil
		return err
	}
	if a.legacy != nil {
		l := a.legacy
		a.legacy = nil
		return InNetns(a.netns, func() error {
			_, err := detachFilter(l)
			return err
		})
	}
	return nil
}

// loadIngressProgram loads the program named name alone, configured like
// the instance's other programs, with the instance's pinned maps.
func loadIngressProgram(st *State, dev overlayDevice, name string) (*ebpf.Program, error) {
	spec, err := loadDatapath()
	if err != nil {
		return nil, err
	}
	// The rates are not read by these programs.
	cfg := config{fouPort: st.FOUPort, overlayIfindex: uint32(dev.ifindex), peerIfindex: uint32(dev.peerIfindex),
		overlayMAC: dev.mac, nodeAddr: st.Address.Addr()}
	if err := cfg.apply(spec); err != nil {
		return nil, err
	}
	prog := spec.Programs[name]
	if st.Attach == AttachLegacy {
		prog.AttachType = ebpf.AttachNone
	}
	spec.Programs = map[string]*ebpf.ProgramSpec{name: prog}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pinDir(st.Instance)}})
	if err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("load %s: %w: run `%s`, then `up` again", name, err, downCommand(st.Instance))
		}
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	defer coll.Close()
	return coll.DetachProgram(name), nil
}

// validateDevice checks a DEVICE tunnel: a device, an MTU, and none of the
// fields of the encapsulations.
func (t *Tunnel) validateDevice() error {
	if t.Ifindex == 0 {
		return fmt.Errorf("tunnel %d: a device tunnel needs the device's ifindex", t.ID)
	}
	if t.Local.IsValid() || t.Remote.IsValid() || t.Port != 0 || t.HasKey || t.FixedSourcePort {
		return fmt.Errorf("tunnel %d: a device tunnel has no addresses, port or key: the device carries it", t.ID)
	}
	if t.NextHop.IsValid() && (!t.NextHop.Is6() || t.NextHop.Is4In6() || t.NextHop.Zone() != "") {
		return fmt.Errorf("tunnel %d: a device tunnel's next hop is the neighbour's IPv6 address on a layer-2 device, without zone (got %s)", t.ID, t.NextHop)
	}
	if t.MTU < 1280 {
		return fmt.Errorf("tunnel %d: MTU %d is below the IPv6 minimum of 1280", t.ID, t.MTU)
	}
	return nil
}

// claimNeighbour records layer-2 device tunnel t: its neighbour's next hop
// for the way out, and the neighbour by its address on the device, by
// which device_l2_ingress learns its MAC. ErrExists when another tunnel
// has that neighbour.
func (d *Datapath) claimNeighbour(t *Tunnel) error {
	id := t.ID
	nk := datapathDeviceNeighbour{Ifindex: t.Ifindex, Addr: t.NextHop.As16()}
	if err := d.maps.DeviceNeighbours.Update(&nk, &id, ebpf.UpdateNoExist); err != nil {
		if errors.Is(err, ebpf.ErrKeyExist) {
			return fmt.Errorf("tunnel %d: a tunnel to %s on device %d %w", t.ID, t.NextHop, t.Ifindex, ErrExists)
		}
		return err
	}
	nh := datapathDeviceNexthop{Addr: t.NextHop.As16()}
	if err := d.maps.DeviceNexthops.Update(&id, &nh, ebpf.UpdateAny); err != nil {
		return errors.Join(err, d.maps.DeviceNeighbours.Delete(&nk))
	}
	return nil
}

// releaseNeighbour undoes claimNeighbour, and forgets the MACs learnt for
// the tunnel.
func (d *Datapath) releaseNeighbour(t *Tunnel) error {
	id := t.ID
	nk := datapathDeviceNeighbour{Ifindex: t.Ifindex, Addr: t.NextHop.As16()}
	errs := []error{d.maps.DeviceNeighbours.Delete(&nk), d.maps.DeviceNexthops.Delete(&id)}
	var mk datapathDeviceMac
	var owner uint32
	var learnt []datapathDeviceMac
	it := d.maps.DeviceMacs.Iterate()
	for it.Next(&mk, &owner) {
		if owner == id && mk.Ifindex == t.Ifindex {
			learnt = append(learnt, mk)
		}
	}
	errs = append(errs, it.Err())
	for _, k := range learnt {
		if err := d.maps.DeviceMacs.Delete(&k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tunnelFromValue is the package's tunnelFromValue with a layer-2 device
// tunnel's next hop.
func (d *Datapath) tunnelFromValue(id uint32, v *datapathTunnel) Tunnel {
	t := tunnelFromValue(id, v)
	if t.Type != DEVICE || v.Flags&uint8(datapathTunnelFlagsTUNNEL_F_NEIGH) == 0 {
		return t
	}
	var nh datapathDeviceNexthop
	if err := d.maps.DeviceNexthops.Lookup(&id, &nh); err == nil {
		t.NextHop = netip.AddrFrom16(nh.Addr)
	}
	return t
}
