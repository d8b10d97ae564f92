package wireguard

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

// Config describes a Device.
type Config struct {
	Name       string // interface name
	ListenPort uint16 // UDP port on the underlay; 0: one the kernel picks
	PrivateKey Key
	MTU        int
	// Enter runs fn where the device and its UDP sockets must be made
	// (a network namespace); nil runs fn in place.
	Enter  func(fn func() error) error
	Logger zerolog.Logger
}

// Device is one WireGuard tunnel: wireguard-go over a TUN device, with one
// peer.
type Device struct {
	name string
	dev  *device.Device
	log  zerolog.Logger
	pub  Key
	port uint16
}

// New creates the TUN device, starts WireGuard on it and opens its UDP
// port. The device is up once New returns; it has no peer yet.
func New(cfg Config) (*Device, error) {
	enter := cfg.Enter
	if enter == nil {
		enter = func(fn func() error) error { return fn() }
	}
	d := &Device{name: cfg.Name, log: cfg.Logger.With().Str("wireguard", cfg.Name).Logger(), pub: cfg.PrivateKey.Public()}
	err := enter(func() error {
		td, err := tun.CreateTUN(cfg.Name, cfg.MTU)
		if err != nil {
			return fmt.Errorf("wireguard %s: TUN device: %w", cfg.Name, err)
		}
		d.dev = device.NewDevice(td, conn.NewDefaultBind(), d.logger())
		// The UDP sockets are opened here, inside enter, by Up.
		if err := d.dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=%d\n", cfg.PrivateKey.hex(), cfg.ListenPort)); err != nil {
			d.dev.Close()
			return fmt.Errorf("wireguard %s: %w", cfg.Name, err)
		}
		if err := d.dev.Up(); err != nil {
			d.dev.Close()
			return fmt.Errorf("wireguard %s: up: %w", cfg.Name, err)
		}
		l, err := netlink.LinkByName(cfg.Name)
		if err == nil {
			err = netlink.LinkSetUp(l)
		}
		if err != nil {
			d.dev.Close()
			return fmt.Errorf("wireguard %s: link up: %w", cfg.Name, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	st, err := d.Status()
	if err != nil {
		d.Close()
		return nil, err
	}
	d.port = st.ListenPort
	return d, nil
}

// logger sends wireguard-go's messages to zerolog (its verbose ones at
// debug level).
func (d *Device) logger() *device.Logger {
	return &device.Logger{
		Verbosef: func(format string, args ...any) { d.log.Debug().Msgf(format, args...) },
		Errorf:   func(format string, args ...any) { d.log.Warn().Msgf(format, args...) },
	}
}

// Name is the interface name.
func (d *Device) Name() string { return d.name }

// Port is the UDP port the device listens on.
func (d *Device) Port() uint16 { return d.port }

// PublicKey is the device's current public key.
func (d *Device) PublicKey() Key { return d.pub }

// SetPeer makes pub at endpoint the device's one peer, replacing any other
// (and its sessions): everything the data plane routes into the device goes
// to it. An invalid endpoint leaves the peer to make the first handshake.
func (d *Device) SetPeer(pub Key, endpoint netip.AddrPort) error {
	var b strings.Builder
	fmt.Fprintf(&b, "replace_peers=true\npublic_key=%s\n", pub.hex())
	if endpoint.IsValid() {
		fmt.Fprintf(&b, "endpoint=%s\n", endpoint)
	}
	b.WriteString("replace_allowed_ips=true\nallowed_ip=::/0\nallowed_ip=0.0.0.0/0\n")
	if err := d.dev.IpcSet(b.String()); err != nil {
		return fmt.Errorf("wireguard %s: peer: %w", d.name, err)
	}
	return nil
}

// Rotate replaces the device's private key. The peer must learn the new
// public key (a newer Binding) to make the next handshake; the device, and
// so the tunnel, stays.
func (d *Device) Rotate(priv Key) error {
	if err := d.dev.IpcSet("private_key=" + priv.hex() + "\n"); err != nil {
		return fmt.Errorf("wireguard %s: rotate: %w", d.name, err)
	}
	d.pub = priv.Public()
	return nil
}

// Status is what WireGuard says of the device and its peer.
type Status struct {
	ListenPort    uint16    `json:"listen_port"`
	Peer          Key       `json:"peer"`
	Endpoint      string    `json:"endpoint,omitempty"`
	LastHandshake time.Time `json:"last_handshake,omitzero"`
	RxBytes       uint64    `json:"rx_bytes"`
	TxBytes       uint64    `json:"tx_bytes"`
}

// Status reads the device's state.
func (d *Device) Status() (Status, error) {
	var s Status
	text, err := d.dev.IpcGet()
	if err != nil {
		return s, err
	}
	var sec, nsec int64
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		var perr error
		switch k {
		case "listen_port":
			var p uint64
			p, perr = strconv.ParseUint(v, 10, 16)
			s.ListenPort = uint16(p)
		case "public_key":
			perr = parseHexKey(v, &s.Peer)
		case "endpoint":
			s.Endpoint = v
		case "last_handshake_time_sec":
			sec, perr = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			nsec, perr = strconv.ParseInt(v, 10, 64)
		case "rx_bytes":
			s.RxBytes, perr = strconv.ParseUint(v, 10, 64)
		case "tx_bytes":
			s.TxBytes, perr = strconv.ParseUint(v, 10, 64)
		}
		if perr != nil {
			return s, fmt.Errorf("wireguard %s: status %s: %w", d.name, k, perr)
		}
	}
	if sec != 0 || nsec != 0 {
		s.LastHandshake = time.Unix(sec, nsec)
	}
	return s, nil
}

func parseHexKey(s string, k *Key) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(k) {
		return fmt.Errorf("bad key %q", s)
	}
	copy(k[:], b)
	return nil
}

// Close stops WireGuard and removes the device.
func (d *Device) Close() error {
	d.dev.Close()
	return nil
}
