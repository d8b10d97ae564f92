package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/re6st-bpf/re6st-bpf/internal/logging"
	"github.com/re6st-bpf/re6st-bpf/internal/version"
	"github.com/re6st-bpf/re6st-bpf/registry/alloc"
	"github.com/re6st-bpf/re6st-bpf/registry/atfile"
	"github.com/re6st-bpf/re6st-bpf/registry/ca"
	"github.com/re6st-bpf/re6st-bpf/registry/geoip"
	"github.com/re6st-bpf/re6st-bpf/registry/mail"
	"github.com/re6st-bpf/re6st-bpf/registry/netparams"
	"github.com/re6st-bpf/re6st-bpf/registry/relay"
	"github.com/re6st-bpf/re6st-bpf/registry/server"
	"github.com/re6st-bpf/re6st-bpf/registry/store"
	"github.com/re6st-bpf/re6st-bpf/registry/wire"
)

type options struct {
	port                    int
	bind4, bind6            string
	db, dh, caPath, keyPath string
	mailhost, smtpUser      string
	smtpPassword            string
	smtpStartTLS            bool
	prefixLength            int
	anonymousPrefixLength   int
	ipv4                    string
	logfile                 string
	logFormat               string
	verbose                 int
	minProtocol             int
	authorizedOrigins       []string
	trustedProxies          []string
	community, geoipPath    string
	gracePeriod             int
	hello, clientCount      int
	maxClients              int
	tunnelRefresh           int
	encrypt                 bool
	sameCountry             []string
	trafficClasses          []string
	tlsPort                 int
	tlsCert, tlsKey         string
	relayAddress            string
	cleanupInterval         time.Duration
	certDuration            time.Duration
	limits                  server.Limits
	conns                   connLimits
	flags                   *pflag.FlagSet // to warn about the ignored options given
}

// ignoredOptions are re6st's registry options that have no meaning here.
var ignoredOptions = []atfile.Ignored{
	{Name: "run", Shorthand: "r", Values: 1, Why: "the local node's relay is reached at --relay, not through babeld's socket"},
}

func main() {
	root := rootCommand()
	args, err := atfile.Expand(os.Args[1:], atfile.Spec{Flags: []*pflag.FlagSet{root.Flags()}, Arity: map[string]int{"ipv4": 2}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "re6st-registry:", err)
		os.Exit(2)
	}
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "re6st-registry:", err)
		os.Exit(1)
	}
}

func rootCommand() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "re6st-registry [@OPTIONS_FILE] [flags]",
		Short: "Run the registry of a re6st network",
		Long: `re6st-registry is the registry of a re6st network: it is the CA that binds IPv6
prefixes to nodes in their certificates, allocates the prefixes, publishes the
signed network parameters and gives bootstrap peers. It speaks re6st protocol 10
over HTTP (GET /<method>?<args>), and over TLS with --tls-port.

Options may come from files: "@FILE" reads one option per line, "name value".
The CA certificate's serial number encodes the network prefix, e.g.
  openssl req -x509 -set_serial 0x120010db80042 ...   for 2001:db8:42::/48.

Subcommands talk to a running registry through its private API (allowed only
from --authorized-origin addresses).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.flags = cmd.Flags()
			return run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.port, "port", 80, "HTTP port")
	f.StringVarP(&o.bind4, "4", "4", "0.0.0.0", "IPv4 address to listen on (empty: none)")
	f.StringVarP(&o.bind6, "6", "6", "::", "IPv6 address to listen on (empty: none)")
	f.StringVar(&o.db, "db", "/var/lib/re6stnet/registry.db", "SQLite database (re6st's schema)")
	f.StringVar(&o.dh, "dh", "", "file of DH parameters handed out by getDh (optional)")
	f.StringVar(&o.caPath, "ca", "", "CA certificate; its serial number encodes the network prefix (required)")
	f.StringVar(&o.keyPath, "key", "", "CA private key (required)")
	f.StringVar(&o.mailhost, "mailhost", "", "SMTP host[:port] for token mails, or a path to an mbox file; unset disables e-mail registration")
	f.StringVar(&o.smtpUser, "smtp-user", "", "SMTP login")
	f.StringVar(&o.smtpPassword, "smtp-pwd", "", "SMTP password")
	f.BoolVar(&o.smtpStartTLS, "smtp-starttls", false, "use STARTTLS with the SMTP server")
	f.IntVar(&o.prefixLength, "prefix-length", 16, "prefix length of token registrations (0 disables tokens)")
	f.IntVar(&o.anonymousPrefixLength, "anonymous-prefix-length", 0, "prefix length of anonymous registrations (0 disables them)")
	f.StringVar(&o.ipv4, "ipv4", "", `IPv4 payload "IP/N PLEN": network and per-node subnet length`)
	f.StringVarP(&o.logfile, "logfile", "l", "", "log file (default: standard error)")
	f.IntVarP(&o.verbose, "verbose", "v", 1, "log level: 0 off, 1 warnings, 2 info, 3 debug, 4 trace")
	f.StringVar(&o.logFormat, "log-format", logging.Auto, logging.FlagUsage)
	f.IntVar(&o.minProtocol, "min-protocol", 1, "reject nodes of an older protocol")
	f.StringArrayVar(&o.authorizedOrigins, "authorized-origin", nil, "address allowed to make private calls, in addition to 127.0.0.1 and ::1 (repeatable)")
	f.StringArrayVar(&o.trustedProxies, "trusted-proxy", nil, "address or network of a reverse proxy whose X-Forwarded-For is believed (repeatable; none by default)")
	f.StringVar(&o.community, "community", "", `community file: lines "<bits> <location>..." (location: *, CC or @CONTINENT)`)
	f.StringVar(&o.geoipPath, "geoip", os.Getenv("GEOIP2_MMDB"), `GeoIP database for communities, getCountry and --same-country: a GeoIP2/GeoLite2 Country .mmdb (re6st's GEOIP2_MMDB, the default), or a CSV file of "network,country,continent" lines`)
	f.IntVar(&o.gracePeriod, "grace-period", 8640000, "seconds before an expired certificate's prefix, or a token, is freed")
	f.IntVar(&o.hello, "hello", 15, "Babel hello interval, seconds")
	f.BoolVar(&o.encrypt, "encrypt", false, "tell nodes to encrypt tunnel payload")
	f.IntVar(&o.clientCount, "client-count", 10, "outgoing tunnels per node")
	f.IntVar(&o.maxClients, "max-clients", 0, "incoming tunnels per node (default 2 × client-count)")
	f.IntVar(&o.tunnelRefresh, "tunnel-refresh", 300, "seconds between replacements of the least useful tunnel")
	f.StringArrayVar(&o.sameCountry, "same-country", nil, "country whose nodes only tunnel inside it (repeatable)")
	f.StringArrayVar(&o.trafficClasses, "traffic-class", nil, `traffic class "NAME,RANGE/LEN,dscp=N,priority=P[,rate=R][,metric=latency|default]", published to the nodes (repeatable, in class id order; docs/traffic-classes.md)`)
	f.IntVar(&o.tlsPort, "tls-port", 0, "also serve HTTPS on this port (needs --tls-cert and --tls-key)")
	f.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate (PEM) for --tls-port")
	f.StringVar(&o.tlsKey, "tls-key", "", "TLS key (PEM) for --tls-port")
	f.StringVar(&o.relayAddress, "relay", "[::1]:326", "UDP address of the local node that relays versions/topology/address queries (empty: none)")
	f.DurationVar(&o.cleanupInterval, "cleanup-interval", time.Hour, "how often expired tokens and certificates are cleaned up")
	f.DurationVar(&o.certDuration, "cert-duration", server.DefaultCertDuration, "lifetime of the certificates issued (re6st: a year); nodes renew them when 30 days, or half their life, are left")
	addLimitFlags(f, &o.limits, &o.conns)
	atfile.AddIgnored(f, ignoredOptions)
	version.AddFlag(cmd)
	cmd.MarkFlagRequired("ca")
	cmd.MarkFlagRequired("key")
	cmd.AddCommand(adminCommands()...)
	return cmd
}

func newLogger(o options) (zerolog.Logger, error) {
	out := os.Stderr
	if o.logfile != "" {
		f, err := os.OpenFile(o.logfile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
		if err != nil {
			return zerolog.Logger{}, err
		}
		out = f
	}
	levels := []zerolog.Level{zerolog.Disabled, zerolog.WarnLevel, zerolog.InfoLevel, zerolog.DebugLevel, zerolog.TraceLevel}
	if o.verbose < 0 || o.verbose >= len(levels) {
		return zerolog.Logger{}, fmt.Errorf("--verbose %d: must be 0 to 4", o.verbose)
	}
	return logging.New(out, o.logFormat, levels[o.verbose])
}

func parseIPv4(value string) (string, int, error) {
	network, lengthText, ok := strings.Cut(value, " ")
	if !ok {
		return "", 0, fmt.Errorf(`--ipv4 %q: expected "IP/N PLEN"`, value)
	}
	prefix, err := netip.ParsePrefix(network)
	length, err2 := strconv.Atoi(lengthText)
	if err != nil || !prefix.Addr().Is4() || err2 != nil || length < 1 || length > 16 || prefix.Bits()+length > 32 {
		return "", 0, fmt.Errorf(`--ipv4 %q: expected an IPv4 network and a subnet length of 1 to 16 bits that fits in it`, value)
	}
	return prefix.Masked().String(), length, nil
}

// parseTrafficClasses reads the --traffic-class options and checks them
// against each other and the network.
func parseTrafficClasses(authority *ca.Authority, values []string) ([]netparams.TrafficClass, error) {
	var classes []netparams.TrafficClass
	for _, v := range values {
		c, err := netparams.ParseTrafficClass(v)
		if err != nil {
			return nil, err
		}
		classes = append(classes, c)
	}
	network, err := wire.Subnet("", authority.Network)
	if err != nil {
		return nil, err
	}
	if err := netparams.ValidateClasses(network, classes); err != nil {
		return nil, fmt.Errorf("--traffic-class: %w", err)
	}
	return classes, nil
}

func buildConfig(o options, logger zerolog.Logger) (server.Config, error) {
	authority, err := ca.LoadAuthority(o.caPath, o.keyPath)
	if err != nil {
		return server.Config{}, err
	}
	cfg := server.Config{
		Authority:             authority,
		PrefixLength:          o.prefixLength,
		AnonymousPrefixLength: o.anonymousPrefixLength,
		GracePeriod:           time.Duration(o.gracePeriod) * time.Second,
		CertDuration:          o.certDuration,
		Logger:                logger,
		Limits:                o.limits,
		Settings: netparams.Settings{
			ClientCount: o.clientCount, MaxClients: o.maxClients, TunnelRefresh: o.tunnelRefresh,
			Hello: o.hello, Encrypt: o.encrypt, MinProtocol: o.minProtocol, SameCountry: o.sameCountry,
		},
	}
	if cfg.Settings.MaxClients == 0 {
		cfg.Settings.MaxClients = 2 * o.clientCount
	}
	if cfg.Settings.TrafficClasses, err = parseTrafficClasses(authority, o.trafficClasses); err != nil {
		return cfg, err
	}
	if o.ipv4 != "" {
		if cfg.Settings.IPv4, cfg.Settings.IPv4Sublen, err = parseIPv4(o.ipv4); err != nil {
			return cfg, err
		}
	}
	for _, origin := range append([]string{"127.0.0.1", "::1"}, o.authorizedOrigins...) {
		addr, err := netip.ParseAddr(origin)
		if err != nil {
			return cfg, fmt.Errorf("--authorized-origin %q: not an IP address", origin)
		}
		cfg.AuthorizedOrigins = append(cfg.AuthorizedOrigins, addr)
	}
	if cfg.TrustedProxies, err = parseNetworks("--trusted-proxy", o.trustedProxies); err != nil {
		return cfg, err
	}
	if o.community != "" {
		if cfg.Communities, err = alloc.LoadCommunities(o.community); err != nil {
			return cfg, err
		}
	}
	if o.geoipPath != "" {
		if cfg.GeoIP, err = geoip.Load(o.geoipPath); err != nil {
			return cfg, err
		}
	}
	if len(o.sameCountry) > 0 && cfg.GeoIP == nil {
		return cfg, errors.New("--same-country needs a GeoIP database (--geoip)")
	}
	if o.mailhost != "" {
		// Token mails come from the CA subject's emailAddress, as in re6st.
		from := ""
		for _, name := range authority.Cert.Subject.Names {
			if name.Type.String() == "1.2.840.113549.1.9.1" {
				from, _ = name.Value.(string)
			}
		}
		cfg.Mailer = mail.New(o.mailhost, from, o.smtpUser, o.smtpPassword, o.smtpStartTLS)
	}
	if o.dh != "" {
		if cfg.DHParams, err = os.ReadFile(o.dh); err != nil {
			return cfg, err
		}
	}
	if o.relayAddress != "" {
		cfg.Relay = &relay.Relay{Address: o.relayAddress, Timeout: 3 * time.Second}
	}
	return cfg, nil
}

func run(ctx context.Context, o options) error {
	logger, err := newLogger(o)
	if err != nil {
		return err
	}
	if o.flags != nil {
		atfile.WarnIgnored(o.flags, ignoredOptions, logger)
	}
	if o.tlsPort != 0 && (o.tlsCert == "" || o.tlsKey == "") {
		return errors.New("--tls-port needs --tls-cert and --tls-key")
	}
	cfg, err := buildConfig(o, logger)
	if err != nil {
		return err
	}
	db, err := store.Open(o.db)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, warning := range db.Tightened() {
		logger.Warn().Msg(warning)
	}
	cfg.Store = db
	registry, err := server.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	var listeners []net.Listener
	var tlsListeners []net.Listener
	conns := server.NewConnLimiter(o.conns.perSource, fitFileLimit(o.conns.total, logger), cfg.TrustedProxies) // shared by all listeners
	listen := func(host string, port int, network string) (net.Listener, error) {
		l, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return nil, err
		}
		return conns.Listener(l), nil
	}
	for _, bind := range []struct{ host, network string }{{o.bind4, "tcp4"}, {o.bind6, "tcp6"}} {
		if bind.host == "" {
			continue
		}
		l, err := listen(bind.host, o.port, bind.network)
		if err != nil {
			return err
		}
		listeners = append(listeners, l)
		if o.tlsPort != 0 {
			l, err := listen(bind.host, o.tlsPort, bind.network)
			if err != nil {
				return err
			}
			tlsListeners = append(tlsListeners, l)
		}
	}
	if len(listeners) == 0 {
		return errors.New("nothing to listen on: both -4 and -6 are empty")
	}
	httpServer := server.NewHTTPServer(registry, o.conns.writeTimeout)
	errs := make(chan error, len(listeners)+len(tlsListeners)+1)
	for _, l := range listeners {
		logger.Warn().Str("address", l.Addr().String()).Uint64("version", registry.Version()).Msg("registry listening")
		go func() { errs <- httpServer.Serve(l) }()
	}
	for _, l := range tlsListeners {
		logger.Warn().Str("address", l.Addr().String()).Msg("registry listening (TLS)")
		go func() { errs <- httpServer.ServeTLS(l, o.tlsCert, o.tlsKey) }()
	}
	go func() { errs <- registry.RunCleanup(ctx, o.cleanupInterval) }()
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	httpServer.Shutdown(shutdown)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
