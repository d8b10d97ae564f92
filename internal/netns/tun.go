package netns

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TUN creates a layer-3 TUN device (no packet information header) in the
// namespace, with the given MTU, up. Reading the returned file gives the
// IPv6/IPv4 packets the namespace sends into the device, writing injects
// packets as received on it. The file is non-blocking, so closing it ends a
// pending Read; the device disappears with the file.
func (ns *NS) TUN(name string, mtu int) (*os.File, error) {
	var f *os.File
	err := ns.Do(func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open /dev/net/tun: %w", err)
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETIFF, uintptr(unsafe.Pointer(ifr))); errno != 0 {
			unix.Close(fd)
			return fmt.Errorf("%s: TUNSETIFF %s: %w", ns.Name, name, errno)
		}
		f = os.NewFile(uintptr(fd), "/dev/net/tun:"+name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, err := ns.Run("ip", "link", "set", name, "mtu", fmt.Sprint(mtu), "up"); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
