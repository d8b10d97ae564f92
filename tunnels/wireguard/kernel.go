package wireguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Kind is which implementation runs a Device.
type Kind string

const (
	// KindKernel is the kernel's module (a link of kind wireguard,
	// configured over generic netlink).
	KindKernel Kind = "kernel"
	// KindUserspace is wireguard-go over a TUN device, in the node's
	// process: the fallback where the kernel has no WireGuard.
	KindUserspace Kind = "userspace"
)

// errNoKernel: the kernel cannot make a link of kind wireguard (no module,
// or not loadable).
var errNoKernel = errors.New("the kernel has no WireGuard")

// kernelLink creates (or re-creates) the link name of kind wireguard with mtu, up, and a
// WireGuard netlink client for it: the calling thread must be in the
// namespace where the device goes (the client's socket stays there). It
// returns errNoKernel (wrapped) when the kernel does not know the kind.
func kernelLink(name string, mtu int) (*wgctrl.Client, error) {
	// A device of a node that was killed outlives it (wireguard-go's dies
	// with the process): the name is reused.
	if old, err := netlink.LinkByName(name); err == nil && old.Type() == "wireguard" {
		if err := netlink.LinkDel(old); err != nil {
			return nil, fmt.Errorf("wireguard %s: old link: %w", name, err)
		}
	}
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU = name, mtu
	l := &netlink.Wireguard{LinkAttrs: la}
	if err := netlink.LinkAdd(l); err != nil {
		// EOPNOTSUPP: the kernel has no module for the kind (and could
		// not load one).
		if errors.Is(err, errUnsupportedKind) {
			return nil, fmt.Errorf("%w: %v", errNoKernel, err)
		}
		return nil, fmt.Errorf("wireguard %s: link: %w", name, err)
	}
	c, err := wgctrl.New()
	if err == nil {
		err = netlink.LinkSetUp(l)
	}
	if err != nil {
		if c != nil {
			c.Close()
		}
		netlink.LinkDel(l)
		return nil, fmt.Errorf("wireguard %s: %w", name, err)
	}
	return c, nil
}

// KernelSupported says whether the kernel can make WireGuard links where
// enter runs (nil: here), by making one and removing it.
func KernelSupported(enter func(func() error) error) (bool, error) {
	if enter == nil {
		enter = inPlace
	}
	ok := false
	err := enter(func() error {
		const probe = "re6stwgprobe"
		c, err := kernelLink(probe, 1420)
		if errors.Is(err, errNoKernel) {
			return nil
		}
		if err != nil {
			return err
		}
		c.Close()
		ok = true
		l, err := netlink.LinkByName(probe)
		if err != nil {
			return err
		}
		return netlink.LinkDel(l)
	})
	return ok, err
}

func inPlace(fn func() error) error { return fn() }

// kernelEngine runs a Device on the kernel's WireGuard.
type kernelEngine struct {
	name   string
	client *wgctrl.Client
}

func (k *kernelEngine) configure(c wgtypes.Config) error {
	return k.client.ConfigureDevice(k.name, c)
}

func (k *kernelEngine) status() (Status, error) {
	d, err := k.client.Device(k.name)
	if err != nil {
		return Status{}, err
	}
	s := Status{ListenPort: uint16(d.ListenPort)}
	if len(d.Peers) > 0 {
		p := d.Peers[0]
		s.Peer = Key(p.PublicKey)
		if p.Endpoint != nil {
			s.Endpoint = p.Endpoint.String()
		}
		s.LastHandshake, s.RxBytes, s.TxBytes = p.LastHandshakeTime, uint64(p.ReceiveBytes), uint64(p.TransmitBytes)
	}
	return s, nil
}

func (k *kernelEngine) close() {
	k.client.Close()
	if l, err := netlink.LinkByName(k.name); err == nil {
		netlink.LinkDel(l)
	}
}

// peerConfig is the one peer pub at endpoint (invalid: none known), every
// address allowed, replacing any other.
func peerConfig(pub Key, endpoint netip.AddrPort) wgtypes.Config {
	p := wgtypes.PeerConfig{PublicKey: wgtypes.Key(pub), ReplaceAllowedIPs: true,
		AllowedIPs: []net.IPNet{{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}, {IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}}}
	if endpoint.IsValid() {
		p.Endpoint = net.UDPAddrFromAddrPort(endpoint)
	}
	return wgtypes.Config{ReplacePeers: true, Peers: []wgtypes.PeerConfig{p}}
}
