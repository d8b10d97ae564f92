package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

// DeviceAttachment is the device tunnels' ingress program (device_ingress,
// bpf/include/device.h) attached to one device. It is not pinned: a device
// tunnel's device belongs to the process that made it (a userspace
// WireGuard or OpenVPN dies with its process), and so does its attachment;
// Close detaches it.
type DeviceAttachment struct {
	netns     string
	ifname    string
	link      link.Link
	legacy    *Attachment
	Interface string     `json:"interface"`
	Hook      string     `json:"hook"`
	Mode      AttachMode `json:"mode"`
}

// AttachDevice attaches the device tunnels' ingress program to the
// layer-3 device ifname, in the data plane's namespace and attachment mode
// (tcx or legacy, as `up` chose). Packets coming out of the device are then
// routed like decapsulated traffic once a device tunnel names the device
// (AddTunnel with Type DEVICE).
func (d *Datapath) AttachDevice(ifname string) (*DeviceAttachment, error) {
	st := &d.State
	a := &DeviceAttachment{netns: st.Netns, ifname: ifname, Interface: ifname, Mode: st.Attach}
	a.Hook = tcPoint(st.Attach, true)
	err := InNetns(st.Netns, func() error {
		dev, err := readOverlay(st)
		if err != nil {
			return err
		}
		prog, err := loadDeviceProgram(st, dev)
		if err != nil {
			return err
		}
		defer prog.Close() // the link or the filter holds it
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("device tunnel: unknown interface %q", ifname)
		}
		if a.Hook == pointTCIngress {
			f, err := attachFilter(l.Attrs().Index, true, prog)
			if err != nil {
				return fmt.Errorf("attach device_ingress to %s: %w", ifname, err)
			}
			a.legacy = &Attachment{Interface: ifname, Program: "device_ingress", Hook: a.Hook, Filter: f}
			return nil
		}
		a.link, err = link.AttachTCX(link.TCXOptions{Interface: l.Attrs().Index, Program: prog, Attach: ebpf.AttachTCXIngress})
		if err != nil {
			return fmt.Errorf("attach device_ingress to %s: %w", ifname, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Close detaches the program; a device that is gone already is no error.
func (a *DeviceAttachment) Close() error {
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

// loadDeviceProgram loads device_ingress alone, configured like the
// instance's other programs, with the instance's pinned maps.
func loadDeviceProgram(st *State, dev overlayDevice) (*ebpf.Program, error) {
	spec, err := loadDatapath()
	if err != nil {
		return nil, err
	}
	// The rates are not read by device_ingress.
	cfg := config{fouPort: st.FOUPort, overlayIfindex: uint32(dev.ifindex), peerIfindex: uint32(dev.peerIfindex),
		overlayMAC: dev.mac, nodeAddr: st.Address.Addr()}
	if err := cfg.apply(spec); err != nil {
		return nil, err
	}
	if st.Attach == AttachLegacy {
		spec.Programs[datapathProgDeviceIngress].AttachType = ebpf.AttachNone
	}
	var objs struct {
		Prog *ebpf.Program `ebpf:"device_ingress"`
	}
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pinDir(st.Instance)}}); err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("load device_ingress: %w: run `%s`, then `up` again", err, downCommand(st.Instance))
		}
		return nil, fmt.Errorf("load device_ingress: %w", err)
	}
	return objs.Prog, nil
}

// validateDevice checks a DEVICE tunnel: a device, an MTU, and none of the
// fields of the encapsulations.
func (t *Tunnel) validateDevice() error {
	if t.Ifindex == 0 {
		return fmt.Errorf("tunnel %d: a device tunnel needs the device's ifindex", t.ID)
	}
	if t.Local.IsValid() || t.Remote.IsValid() || t.NextHop.IsValid() || t.Port != 0 || t.HasKey || t.FixedSourcePort {
		return fmt.Errorf("tunnel %d: a device tunnel has no addresses, port or key: the device carries it", t.ID)
	}
	if t.MTU < 1280 {
		return fmt.Errorf("tunnel %d: MTU %d is below the IPv6 minimum of 1280", t.ID, t.MTU)
	}
	return nil
}
