package wireguard

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// errUnsupportedKind is what the kernel answers a link of a kind it has
// no module for.
const errUnsupportedKind = syscall.EOPNOTSUPP

// IPv4Overhead is what WireGuard adds to a packet it carries over IPv4:
// the outer IPv4 and UDP headers, its header and its tag (20 + 8 + 16 + 16).
const IPv4Overhead = 60

// MTUOver is the MTU of a device whose WireGuard packets cross, over IPv4,
// an underlay of MTU underlayMTU: its largest WireGuard packet fills the
// underlay's MTU exactly.
func MTUOver(underlayMTU int) int { return underlayMTU - IPv4Overhead }

// Config describes a Device.
type Config struct {
	Name       string // interface name
	ListenPort uint16 // UDP port on the underlay; 0: one the kernel picks
	PrivateKey Key
	MTU        int
	// Enter runs fn where the device and its UDP sockets must be made
	// (a network namespace); nil runs fn in place.
	Enter func(fn func() error) error
	// Userspace runs wireguard-go even where the kernel has WireGuard.
	Userspace bool
	Logger    zerolog.Logger
}

// Device is one WireGuard tunnel with one peer: the kernel's WireGuard
// where it exists, otherwise wireguard-go over a TUN device.
type Device struct {
	name   string
	kind   Kind
	engine engine
	log    zerolog.Logger
	pub    Key
	port   uint16
}

// engine is the implementation a Device runs on.
type engine interface {
	configure(wgtypes.Config) error
	status() (Status, error)
	close()
}

// New creates the device, starts WireGuard on it and opens its UDP port:
// a link of kind wireguard where the kernel makes one, otherwise
// wireguard-go (the reason is logged at debug level). The device is up
// once New returns; it has no peer yet.
func New(cfg Config) (*Device, error) {
	enter := cfg.Enter
	if enter == nil {
		enter = inPlace
	}
	d := &Device{name: cfg.Name, log: cfg.Logger.With().Str("wireguard", cfg.Name).Logger(), pub: cfg.PrivateKey.Public()}
	port := int(cfg.ListenPort)
	priv := wgtypes.Key(cfg.PrivateKey)
	err := enter(func() error {
		if !cfg.Userspace {
			client, err := kernelLink(cfg.Name, cfg.MTU)
			if err == nil {
				d.kind, d.engine = KindKernel, &kernelEngine{name: cfg.Name, client: client}
				return d.configureOrClose(wgtypes.Config{PrivateKey: &priv, ListenPort: &port})
			}
			if !errors.Is(err, errNoKernel) {
				return err
			}
			d.log.Debug().Err(err).Msg("wireguard-go instead")
		}
		td, err := tun.CreateTUN(cfg.Name, cfg.MTU)
		if err != nil {
			return fmt.Errorf("wireguard %s: TUN device: %w", cfg.Name, err)
		}
		u := &userspaceEngine{dev: device.NewDevice(td, conn.NewDefaultBind(), d.logger())}
		d.kind, d.engine = KindUserspace, u
		// The UDP sockets are opened here, inside enter, by Up.
		if err := d.configureOrClose(wgtypes.Config{PrivateKey: &priv, ListenPort: &port}); err != nil {
			return err
		}
		if err := u.dev.Up(); err != nil {
			u.close()
			return fmt.Errorf("wireguard %s: up: %w", cfg.Name, err)
		}
		l, err := netlink.LinkByName(cfg.Name)
		if err == nil {
			err = netlink.LinkSetUp(l)
		}
		if err != nil {
			u.close()
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

func (d *Device) configureOrClose(c wgtypes.Config) error {
	if err := d.engine.configure(c); err != nil {
		d.engine.close()
		return fmt.Errorf("wireguard %s: %w", d.name, err)
	}
	return nil
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

// Kind is the implementation the device runs on.
func (d *Device) Kind() Kind { return d.kind }

// Port is the UDP port the device listens on.
func (d *Device) Port() uint16 { return d.port }

// PublicKey is the device's current public key.
func (d *Device) PublicKey() Key { return d.pub }

// SetPeer makes pub at endpoint the device's one peer, replacing any other
// (and its sessions): everything the data plane routes into the device goes
// to it. With an endpoint, the device at once sends a keepalive, which makes
// the first handshake with the new key (a tunnel set-up, or the peer's key
// rotation) instead of waiting for traffic; without one, it leaves the peer
// to make the first handshake.
func (d *Device) SetPeer(pub Key, endpoint netip.AddrPort) error {
	if err := d.engine.configure(peerConfig(pub, endpoint)); err != nil {
		return fmt.Errorf("wireguard %s: peer: %w", d.name, err)
	}
	if !endpoint.IsValid() {
		return nil
	}
	// Turning a persistent keepalive on sends one at once (both
	// implementations); it goes off again after.
	for _, interval := range []time.Duration{time.Second, 0} {
		c := wgtypes.Config{Peers: []wgtypes.PeerConfig{{PublicKey: wgtypes.Key(pub), UpdateOnly: true, PersistentKeepaliveInterval: &interval}}}
		if err := d.engine.configure(c); err != nil {
			return fmt.Errorf("wireguard %s: peer: handshake: %w", d.name, err)
		}
	}
	return nil
}

// Rotate replaces the device's private key; the device, and so the
// tunnel, stays. The sessions made with the old key end here; the peer
// makes the next handshake once it has the new public key (a newer
// Binding, its SetPeer with an endpoint), so that it must learn it after
// the rotation, not before (its first initiation would fail, and the next
// come 5 s later).
func (d *Device) Rotate(priv Key) error {
	k := wgtypes.Key(priv)
	if err := d.engine.configure(wgtypes.Config{PrivateKey: &k}); err != nil {
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
func (d *Device) Status() (Status, error) { return d.engine.status() }

// Close stops WireGuard and removes the device.
func (d *Device) Close() error {
	d.engine.close()
	return nil
}

// userspaceEngine runs a Device on wireguard-go, configured with its
// configuration protocol's text.
type userspaceEngine struct {
	dev *device.Device
}

func (u *userspaceEngine) configure(c wgtypes.Config) error {
	var b strings.Builder
	if c.PrivateKey != nil {
		fmt.Fprintf(&b, "private_key=%s\n", Key(*c.PrivateKey).hex())
	}
	if c.ListenPort != nil {
		fmt.Fprintf(&b, "listen_port=%d\n", *c.ListenPort)
	}
	if c.ReplacePeers {
		b.WriteString("replace_peers=true\n")
	}
	for _, p := range c.Peers {
		fmt.Fprintf(&b, "public_key=%s\n", Key(p.PublicKey).hex())
		if p.UpdateOnly {
			b.WriteString("update_only=true\n")
		}
		if p.PersistentKeepaliveInterval != nil {
			fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", int(*p.PersistentKeepaliveInterval/time.Second))
		}
		if p.Endpoint != nil {
			fmt.Fprintf(&b, "endpoint=%s\n", p.Endpoint.AddrPort())
		}
		if p.ReplaceAllowedIPs {
			b.WriteString("replace_allowed_ips=true\n")
		}
		for _, ip := range p.AllowedIPs {
			fmt.Fprintf(&b, "allowed_ip=%s\n", ip.String())
		}
	}
	return u.dev.IpcSet(b.String())
}

func (u *userspaceEngine) status() (Status, error) {
	var s Status
	text, err := u.dev.IpcGet()
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
			return s, fmt.Errorf("status %s: %w", k, perr)
		}
	}
	if sec != 0 || nsec != 0 {
		s.LastHandshake = time.Unix(sec, nsec)
	}
	return s, nil
}

func (u *userspaceEngine) close() { u.dev.Close() }

func parseHexKey(s string, k *Key) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(k) {
		return fmt.Errorf("bad key %q", s)
	}
	copy(k[:], b)
	return nil
}
