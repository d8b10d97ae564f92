package netns

import (
	"golang.org/x/sys/unix"
)

// Capture is a packet socket on one interface of a namespace (what tcpdump
// opens): it queues every frame the interface sends or receives from its
// opening on.
type Capture struct{ fd int }

// Capture opens a packet socket on ifname, with an 8 MiB buffer.
func (ns *NS) Capture(ifname string) (*Capture, error) {
	ifindex, err := ns.Ifindex(ifname)
	if err != nil {
		return nil, err
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd := -1
	err = ns.Do(func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifindex})
	})
	if err == nil {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
	}
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return nil, err
	}
	return &Capture{fd: fd}, nil
}

// Collect reads every frame queued so far, concatenated, and closes the
// socket.
func (c *Capture) Collect() []byte {
	defer unix.Close(c.fd)
	var all []byte
	buf := make([]byte, 65536)
	for {
		n, _, err := unix.Recvfrom(c.fd, buf, unix.MSG_DONTWAIT)
		if err != nil {
			return all
		}
		all = append(all, buf[:n]...)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
