package node

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/re6st-bpf/re6st-bpf/loader"
	"github.com/re6st-bpf/re6st-bpf/tunnels/nodeproto"
	"github.com/rs/zerolog"
)

// Config is what re6stnet's command line sets.
type Config struct {
	Registry string // registry URL
	CA       string // CA certificate (PEM)
	Cert     string // node certificate (PEM); renewed in place
	Key      string // node key (PEM)
	StateDir string // peer cache, cached network parameters, tunnel state
	RunDir   string // control socket

	Instance  string       // data-plane instance
	Netns     string       // named network namespace the node runs in ("" when none): recorded in the data plane's state
	Underlays []string     // underlay interfaces; empty: every IPv4 interface but lo
	IPs       []netip.Addr // advertised underlay addresses; empty: the underlays'
	// IPv6 are the IPv6 underlay addresses advertised for the OpenVPN
	// servers (re6st's --ipv6: its tcp6 and udp6 items); empty: the
	// underlays' global IPv6 addresses, found at each use (ipv6Underlay).
	IPv6 []netip.Addr
	// NoIPv6 (--ipv6 none): no OpenVPN over IPv6, neither servers nor
	// items.
	NoIPv6     bool
	Encap      loader.TunnelType
	FOUPort    uint16
	Hook       loader.Hook
	Attach     loader.AttachMode
	LANs       []string // -i: interfaces where Babel runs natively
	Neighbours []string // --neighbour: prefixes (CN "n/len") preferred for tunnels
	// ClassPeers (--class-peer NAME=PEER,…) names, per traffic class, the
	// peers (CN "n/len" or subnet bits) whose tunnels are the class's own:
	// Babel routes the class over them first (docs/traffic-classes.md).
	ClassPeers map[string][]string

	ClientCount int // outgoing tunnels; < 0: the registry's
	MaxClients  int // incoming tunnels; < 0: the registry's
	Gateway     bool
	Up          []string // commands run once the node is up
	Daemons     []string // commands run and killed at exit
	Metrics     string   // Prometheus listen address; empty: none
	Country     string   // --country: advertised with our addresses; empty: the registry's GeoIP answer

	// TunnelTypes is the preference list of tunnel types (--tunnel-types):
	// the tunnel manager tries them in order per peer and falls back;
	// empty: Encap alone.
	TunnelTypes []string
	// WireGuardPort is the first of the WireGuard ports (the port of our
	// `ip,port,wireguard` items); tunnel id listens on WireGuardPort + id.
	WireGuardPort uint16
	// WireGuardRotate is how often the node replaces its WireGuard key
	// while it runs (--wireguard-rotate); 0: never (a new key at each
	// start only).
	WireGuardRotate time.Duration
	// OpenVPNPort is the port of the OpenVPN servers, TCP and UDP (the
	// port of our `ip,port,tcp` and `ip,port,udp` items).
	OpenVPNPort uint16

	// BGP is a border gateway's BGP (--bgp-*, docs/gateway.md).
	BGP BGPConfig

	// TickInterval is the tunnel manager's period (re6st: 5 s).
	TickInterval time.Duration
	Logger       zerolog.Logger
}

// Check checks a configuration as Run would, and the certificate against
// the CA, without starting anything (re6stnet --test).
func Check(cfg Config) error {
	if err := cfg.check(); err != nil {
		return err
	}
	_, err := loadIdentity(&cfg, time.Now())
	return err
}

func isCountryCode(s string) bool {
	if len(s) != 2 {
		return false
	}
	for _, r := range strings.ToUpper(s) {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// Defaults of the directories, as re6st's.
const (
	DefaultStateDir = "/var/lib/re6stnet"
	DefaultRunDir   = "/run/re6stnet"
	SocketName      = "re6stnet.sock"
)

// SocketPath is the control socket in runDir.
func SocketPath(runDir string) string { return filepath.Join(runDir, SocketName) }

func (c *Config) check() error {
	switch {
	case c.Registry == "":
		return errors.New("--registry is required")
	case c.CA == "" || c.Cert == "" || c.Key == "":
		return errors.New("--ca, --cert and --key are required")
	case c.Encap != loader.FOU && c.Encap != loader.GRE:
		return fmt.Errorf("--encap: want fou or gre")
	}
	for _, t := range c.TunnelTypes {
		if _, ovpn := openvpnTypes[t]; !ovpn && t != nodeproto.ProtoFOU && t != nodeproto.ProtoGRE && t != nodeproto.ProtoWireGuard {
			return fmt.Errorf("--tunnel-types: %q is not a tunnel type this node runs (fou, gre, wireguard, openvpn-tcp, openvpn-udp)", t)
		}
	}
	if c.Country != "" && !isCountryCode(c.Country) {
		return fmt.Errorf("--country %q: want a two-letter ISO 3166 code, e.g. FR", c.Country)
	}
	c.Country = strings.ToUpper(c.Country)
	if err := c.BGP.check(c.Gateway); err != nil {
		return err
	}
	for _, ip := range c.IPs {
		if !ip.Is4() {
			return fmt.Errorf("--ip %s: the underlay is IPv4 (IPv6 addresses of the OpenVPN servers: --ipv6)", ip)
		}
	}
	for _, ip := range c.IPv6 {
		if !ip.Is6() || ip.Is4In6() || !ip.IsGlobalUnicast() || ip.Zone() != "" {
			return fmt.Errorf("--ipv6 %s: want a global IPv6 address", ip)
		}
	}
	if c.NoIPv6 && len(c.IPv6) > 0 {
		return errors.New("--ipv6 none with --ipv6 addresses")
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.RunDir == "" {
		c.RunDir = DefaultRunDir
	}
	if c.Instance == "" {
		c.Instance = "re6st"
	}
	if c.FOUPort == 0 {
		c.FOUPort = loader.DefaultFOUPort
	}
	if c.WireGuardPort == 0 {
		c.WireGuardPort = DefaultWireGuardPort
	}
	if c.OpenVPNPort == 0 {
		c.OpenVPNPort = DefaultOpenVPNPort
	}
	if c.Attach == "" {
		c.Attach = loader.AttachAuto
	}
	if c.Hook == "" {
		c.Hook = loader.HookAuto
	}
	if c.TickInterval == 0 {
		c.TickInterval = 5 * time.Second
	}
	return nil
}
