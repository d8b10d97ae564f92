package loader

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// SetIPv4 gives the node the IPv4 address addr on the overlay device, with
// the IPv4 overlay's prefix length (so that the kernel's only IPv4 overlay
// route is the connected route of the whole IPv4 network to the device, as
// for IPv6), replacing any IPv4 address it had; the zero Prefix removes it.
// The address is also the source of the ICMPv4 errors the data plane sends.
// It turns IPv4 forwarding on for packets that arrive on the overlay device
// only (the slow path of inner IPv4, docs/architecture.md §4): the node does
// not become an IPv4 router between its underlay interfaces.
func (d *Datapath) SetIPv4(addr netip.Prefix) error {
	if addr.IsValid() && !addr.Addr().Is4() {
		return fmt.Errorf("IPv4 address %s: want an IPv4 address with the IPv4 overlay's prefix length, e.g. 10.42.1.1/16", addr)
	}
	st := &d.State
	err := InNetns(st.Netns, func() error {
		l, err := netlink.LinkByName(st.Overlay)
		if err != nil {
			return fmt.Errorf("overlay device %s: %w", st.Overlay, err)
		}
		have, err := netlink.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, a := range have {
			if addr.IsValid() && a.IPNet.String() == prefixIPNet(addr).String() {
				continue
			}
			if err := netlink.AddrDel(l, &a); err != nil {
				return fmt.Errorf("remove %s from %s: %w", a.IPNet, st.Overlay, err)
			}
		}
		if !addr.IsValid() {
			return nil
		}
		if err := ipv4Sysctls(st.Overlay); err != nil {
			return err
		}
		err = netlink.AddrAdd(l, &netlink.Addr{IPNet: prefixIPNet(addr)})
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("address %s on %s: %w", addr, st.Overlay, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var self uint32
	if addr.IsValid() {
		self = be32(addr.Addr())
	}
	if err := d.maps.Ipv4Self.Put(uint32(0), self); err != nil {
		return fmt.Errorf("ICMPv4 source: %w", err)
	}
	if st.IPv4 == addr {
		return nil
	}
	st.IPv4 = addr
	return writeState(st)
}

// ipv4Sysctls prepare the overlay device for inner IPv4:
//   - forwarding: the slow path (packets arrive on the device and leave by
//     it; other interfaces keep theirs);
//   - accept_local: the data plane's ICMPv4 errors about the node's own
//     packets arrive on the device from the node's own address;
//   - no redirects: a slow-path packet leaves by the device it came in by,
//     which would make the kernel send ICMPv4 redirects into the overlay;
//     the kernel sends them if "all" or the device says so, so both are
//     turned off (the node routes nothing else).
func ipv4Sysctls(overlay string) error {
	for _, kv := range [][2]string{
		{overlay + "/forwarding", "1"},
		{overlay + "/accept_local", "1"},
		{overlay + "/accept_redirects", "0"},
		{overlay + "/send_redirects", "0"},
		{"all/send_redirects", "0"},
	} {
		path := filepath.Join("/proc/sys/net/ipv4/conf", kv[0])
		if err := os.WriteFile(path, []byte(kv[1]), 0); err != nil {
			return fmt.Errorf("sysctl %s: %w", path, err)
		}
	}
	return nil
}
