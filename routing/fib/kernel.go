package fib

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ProtoBabel is the routing protocol number babeld uses (RTPROT_BABEL);
// `ip route` shows it as "proto babel".
const ProtoBabel = 42

// Kernel writes routes into a kernel routing table over rtnetlink.
// Source-specific routes use the route's source prefix (RTA_SRC), as
// `ip -6 route add ::/0 from NET` does; they need CONFIG_IPV6_SUBTREES.
type Kernel struct {
	// Table is the routing table (default main).
	Table int
	// Priority is the route metric in the kernel (default 1024, as babeld).
	Priority int
	// Protocol is the routes' rtm_protocol (default ProtoBabel).
	Protocol uint8
}

// Replace implements Backend.
func (k *Kernel) Replace(r Route) error {
	ifi, err := net.InterfaceByName(r.Interface)
	if err != nil {
		return fmt.Errorf("fib: %s: %w", r.Interface, err)
	}
	req := nl.NewNetlinkRequest(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK)
	msg, err := k.message(r.Dst, r.Src)
	if err != nil {
		return err
	}
	req.AddData(msg)
	k.addKeyAttrs(req, r.Dst, r.Src)
	switch {
	case !r.NextHop.IsValid():
	case r.NextHop.Is4() == r.Dst.Addr().Is4():
		req.AddData(nl.NewRtAttr(unix.RTA_GATEWAY, r.NextHop.WithZone("").AsSlice()))
	case r.Dst.Addr().Is4():
		// v4-via-v6 (RFC 9229): an IPv6 gateway for an IPv4 route,
		// struct rtvia (Linux 5.2).
		via := binary.NativeEndian.AppendUint16(nil, unix.AF_INET6)
		req.AddData(nl.NewRtAttr(unix.RTA_VIA, append(via, r.NextHop.WithZone("").AsSlice()...)))
	default:
		return fmt.Errorf("fib: next hop %s for %s", r.NextHop, r.Dst)
	}
	req.AddData(nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(ifi.Index))))
	req.AddData(nl.NewRtAttr(unix.RTA_PRIORITY, nl.Uint32Attr(uint32(k.priority()))))
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return fmt.Errorf("fib: replace %s: %w", describe(r.Dst, r.Src), err)
	}
	return nil
}

// Delete implements Backend.
func (k *Kernel) Delete(dst, src netip.Prefix) error {
	req := nl.NewNetlinkRequest(unix.RTM_DELROUTE, unix.NLM_F_ACK)
	msg, err := k.message(dst, src)
	if err != nil {
		return err
	}
	req.AddData(msg)
	k.addKeyAttrs(req, dst, src)
	req.AddData(nl.NewRtAttr(unix.RTA_PRIORITY, nl.Uint32Attr(uint32(k.priority()))))
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("fib: delete %s: %w", describe(dst, src), err)
	}
	return nil
}

func (k *Kernel) protocol() uint8 {
	if k.Protocol == 0 {
		return ProtoBabel
	}
	return k.Protocol
}

func (k *Kernel) priority() int {
	if k.Priority == 0 {
		return 1024
	}
	return k.Priority
}

func (k *Kernel) message(dst, src netip.Prefix) (*nl.RtMsg, error) {
	if !dst.IsValid() {
		return nil, errors.New("fib: route without destination")
	}
	msg := nl.NewRtMsg()
	msg.Family = unix.AF_INET6
	if dst.Addr().Is4() {
		msg.Family = unix.AF_INET
	}
	msg.Table = unix.RT_TABLE_UNSPEC
	msg.Protocol = k.protocol()
	msg.Type = unix.RTN_UNICAST
	msg.Scope = unix.RT_SCOPE_UNIVERSE
	msg.Dst_len = uint8(dst.Bits())
	if src.IsValid() {
		if src.Addr().Is4() != dst.Addr().Is4() {
			return nil, fmt.Errorf("fib: source %s for %s", src, dst)
		}
		msg.Src_len = uint8(src.Bits())
	}
	if t := k.table(); t < 256 {
		msg.Table = uint8(t)
	}
	return msg, nil
}

func (k *Kernel) table() int {
	if k.Table == 0 {
		return unix.RT_TABLE_MAIN
	}
	return k.Table
}

// addKeyAttrs adds what identifies a route: RTA_DST, RTA_SRC, RTA_TABLE.
func (k *Kernel) addKeyAttrs(req *nl.NetlinkRequest, dst, src netip.Prefix) {
	req.AddData(nl.NewRtAttr(unix.RTA_DST, dst.Masked().Addr().AsSlice()))
	if src.IsValid() {
		req.AddData(nl.NewRtAttr(unix.RTA_SRC, src.Masked().Addr().AsSlice()))
	}
	req.AddData(nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(uint32(k.table()))))
}

func describe(dst, src netip.Prefix) string {
	if src.IsValid() {
		return dst.String() + " from " + src.String()
	}
	return dst.String()
}
