package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"unsafe"

	"github.com/safchain/ethtool"
	"golang.org/x/sys/unix"
)

// RX queue pinning: a class's incoming tunnel packets carry its DSCP in
// their outer IPv4 header (the sender's egress program writes it), so an
// ntuple rule of the NIC (ethtool -N) matching that DSCP steers them to
// the class's RX queues. FOU packets also carry the flow hash in their
// source port (hash | 0xc000): one rule per queue, matching the low bits
// of the source port, spreads the class's flows over its queues as the
// sender spread them over its TX queues. GRE has no port: one rule, to
// the class's first queue.

// RXRule is one ntuple rule of a class.
type RXRule struct {
	Class uint8  `json:"class"`
	Flow  string `json:"flow"` // "udp4" (FOU) or "ip4" (GRE, protocol 47)
	DSCP  uint8  `json:"dscp"`
	// Port is the FOU port (udp4): the rule's destination port.
	Port uint16 `json:"port,omitempty"`
	// SportMask and Sport select the flows (udp4): source port & mask.
	SportMask uint16 `json:"sport_mask,omitempty"`
	Sport     uint16 `json:"sport,omitempty"`
	Queue     uint16 `json:"queue"`
	// Location is where the NIC put the rule (after PinRX).
	Location uint32 `json:"location,omitempty"`
}

// Ethtool is the equivalent ethtool command.
func (r RXRule) Ethtool(dev string) string {
	s := fmt.Sprintf("ethtool -N %s flow-type %s", dev, r.Flow)
	if r.Flow == "ip4" {
		s += " l4proto 47"
	} else {
		s += fmt.Sprintf(" dst-port %d", r.Port)
		if r.SportMask != 0 {
			// ethtool's m is the bits to ignore.
			s += fmt.Sprintf(" src-port %d m 0x%x", r.Sport, ^r.SportMask)
		}
	}
	return s + fmt.Sprintf(" tos 0x%x m 0x3 action %d", r.DSCP<<2, r.Queue)
}

// rxRules are the rules that pin the classes' incoming traffic to their
// RX queues, FOU on fouPort and GRE; skipped says why a class has none.
func rxRules(classes []Class, fouPort uint16) (rules []RXRule, skipped []string) {
	for _, c := range classes {
		switch {
		case c.QueueCount == 0:
			skipped = append(skipped, fmt.Sprintf("class %d: no queues", c.ID))
			continue
		case c.DSCP == 0:
			skipped = append(skipped, fmt.Sprintf("class %d: DSCP 0 does not tell its packets from unclassed ones", c.ID))
			continue
		}
		// The largest power of two of the class's queues: one rule per
		// value of that many low bits of the source port.
		n := uint16(1) << (bits.Len16(c.QueueCount) - 1)
		for i := range n {
			rules = append(rules, RXRule{Class: c.ID, Flow: "udp4", DSCP: c.DSCP, Port: fouPort,
				SportMask: n - 1, Sport: i, Queue: c.QueueFirst + i})
		}
		rules = append(rules, RXRule{Class: c.ID, Flow: "ip4", DSCP: c.DSCP, Queue: c.QueueFirst})
	}
	return rules, skipped
}

// ethtool ABI (linux/ethtool.h).
const (
	ethtoolSRXCLSRLDEL = 0x31
	ethtoolSRXCLSRLINS = 0x32
	flowTypeUDP4       = 0x02 // UDP_V4_FLOW
	flowTypeIP4User    = 0x0d // IP_USER_FLOW
	rxClsLocAny        = 0xffffffff
	// struct ethtool_rxnfc: cmd, flow_type, data (u64), fs (struct
	// ethtool_rx_flow_spec, 168 bytes), rule_cnt, padding.
	rxnfcSize = 192
	fsOffset  = 16
)

// rxnfc lays r out as the struct ethtool_rxnfc of ETHTOOL_SRXCLSRLINS.
// Masks are in the kernel's sense: set bits are compared.
func (r RXRule) rxnfc() [rxnfcSize]byte {
	var b [rxnfcSize]byte
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], ethtoolSRXCLSRLINS)
	fs := b[fsOffset:]
	hu, mu := fs[4:56], fs[76:128] // union ethtool_flow_union h_u, m_u
	switch r.Flow {
	case "udp4": // struct ethtool_tcpip4_spec: ip4src, ip4dst, psrc, pdst, tos
		ne.PutUint32(fs[0:], flowTypeUDP4)
		binary.BigEndian.PutUint16(hu[8:], r.Sport)
		binary.BigEndian.PutUint16(mu[8:], r.SportMask)
		binary.BigEndian.PutUint16(hu[10:], r.Port)
		binary.BigEndian.PutUint16(mu[10:], 0xffff)
		hu[12], mu[12] = r.DSCP<<2, 0xfc
	default: // struct ethtool_usrip4_spec: ip4src, ip4dst, l4_4_bytes, tos, ip_ver, proto
		ne.PutUint32(fs[0:], flowTypeIP4User)
		hu[12], mu[12] = r.DSCP<<2, 0xfc
		hu[13] = 1 // ip_ver ETH_RX_NFC_IP4, not masked
		hu[14], mu[14] = unix.IPPROTO_GRE, 0xff
	}
	ne.PutUint64(fs[152:], uint64(r.Queue)) // ring_cookie
	ne.PutUint32(fs[160:], rxClsLocAny)     // location
	return b
}

// ErrNoNtuple: the device has no ntuple filters (veth, most virtual
// devices, many NICs), so RX queues cannot be pinned per class.
var ErrNoNtuple = errors.New("no ntuple filters")

// ntupleState says whether ifname has ntuple filters, and if not why.
func ntupleState(ifname string) error {
	et, err := ethtool.NewEthtool()
	if err != nil {
		return fmt.Errorf("ethtool: %w", err)
	}
	defer et.Close()
	features, err := et.FeaturesWithState(ifname)
	if err != nil {
		return fmt.Errorf("%s: ethtool features: %w", ifname, err)
	}
	state, known := features["rx-ntuple-filter"]
	driver, _ := et.DriverName(ifname)
	switch {
	case !known || !state.Available:
		return fmt.Errorf("%s (driver %s): %w: incoming traffic lands on the queue RSS gives it (veth: the sender's TX queue)", ifname, driver, ErrNoNtuple)
	case !state.Active:
		return fmt.Errorf("%s (driver %s): ntuple filters are off: ethtool -K %s ntuple on", ifname, driver, ifname)
	}
	return nil
}

// PinRX programs on the underlay ifname the rules that pin each class's
// incoming tunnel traffic to its RX queues (rxRules) and returns them with
// their locations (ethtool -N ifname delete LOCATION removes one), and why
// classes have none. A device without ntuple filters gets nothing: the
// error wraps ErrNoNtuple.
func (d *Datapath) PinRX(ifname string) (rules []RXRule, skipped []string, err error) {
	classes, err := d.Classes()
	if err != nil {
		return nil, nil, err
	}
	rules, skipped = rxRules(classes, d.State.FOUPort)
	err = d.withEthtool(ifname, func(fd int) error {
		for i := range rules {
			nfc := rules[i].rxnfc()
			if err := ethtoolIoctl(fd, ifname, unsafe.Pointer(&nfc[0])); err != nil {
				return fmt.Errorf("%s: %s: %w", ifname, rules[i].Ethtool(ifname), err)
			}
			rules[i].Location = binary.NativeEndian.Uint32(nfc[fsOffset+160:])
		}
		return nil
	})
	return rules, skipped, err
}

// UnpinRX removes the ntuple rules at locations from ifname (the
// locations PinRX returned), as ethtool -N ifname delete LOCATION.
func (d *Datapath) UnpinRX(ifname string, locations []uint32) error {
	return d.withEthtool(ifname, func(fd int) error {
		for _, loc := range locations {
			var nfc [rxnfcSize]byte
			binary.NativeEndian.PutUint32(nfc[0:], ethtoolSRXCLSRLDEL)
			binary.NativeEndian.PutUint32(nfc[fsOffset+160:], loc)
			if err := ethtoolIoctl(fd, ifname, unsafe.Pointer(&nfc[0])); err != nil {
				return fmt.Errorf("%s: delete rule %d: %w", ifname, loc, err)
			}
		}
		return nil
	})
}

// withEthtool runs fn with an ioctl socket in the instance's namespace,
// once ifname is known to have ntuple filters on.
func (d *Datapath) withEthtool(ifname string, fn func(fd int) error) error {
	return InNetns(d.State.Netns, func() error {
		if err := ntupleState(ifname); err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return fn(fd)
	})
}

// ethtoolIoctl runs SIOCETHTOOL on ifname with the command at data.
func ethtoolIoctl(fd int, ifname string, data unsafe.Pointer) error {
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	copy(ifr.name[:unix.IFNAMSIZ-1], ifname)
	ifr.data = data
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		return errno
	}
	return nil
}
