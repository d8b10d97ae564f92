package netns

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// Veth creates a veth pair with end aName in a and end bName in b, both up.
func Veth(a *NS, aName string, b *NS, bName string) error {
	return VethQueues(a, aName, b, bName, 0)
}

// VethQueues is Veth with queues TX and RX queues on each end (0: the
// kernel's default, one).
func VethQueues(a *NS, aName string, b *NS, bName string, queues int) error {
	la := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: aName, Namespace: netlink.NsFd(a.handle),
			NumTxQueues: queues, NumRxQueues: queues},
		PeerName:        bName,
		PeerNamespace:   netlink.NsFd(b.handle),
		PeerNumTxQueues: uint32(queues),
		PeerNumRxQueues: uint32(queues),
	}
	if err := netlink.LinkAdd(la); err != nil {
		return fmt.Errorf("veth %s/%s - %s/%s: %w", a.Name, aName, b.Name, bName, err)
	}
	if err := a.LinkUp(aName); err != nil {
		return err
	}
	return b.LinkUp(bName)
}

// LinkUp sets the interface up.
func (ns *NS) LinkUp(name string) error {
	return ns.Do(func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", ns.Name, name, err)
		}
		return netlink.LinkSetUp(l)
	})
}

// AddrAdd assigns prefix (address/length) to the interface. IPv6 addresses
// are added with nodad so that they are usable at once.
func (ns *NS) AddrAdd(name string, prefix netip.Prefix) error {
	return ns.Do(func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", ns.Name, name, err)
		}
		a, err := netlink.ParseAddr(prefix.String())
		if err != nil {
			return err
		}
		if prefix.Addr().Is6() {
			a.Flags |= 0x02 // IFA_F_NODAD
		}
		if err := netlink.AddrAdd(l, a); err != nil {
			return fmt.Errorf("%s: addr add %s dev %s: %w", ns.Name, prefix, name, err)
		}
		return nil
	})
}

// Ifindex returns the index of the interface inside the namespace.
func (ns *NS) Ifindex(name string) (int, error) {
	var idx int
	err := ns.Do(func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", ns.Name, name, err)
		}
		idx = l.Attrs().Index
		return nil
	})
	return idx, err
}
