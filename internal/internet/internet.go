package internet

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"

	"github.com/re6st-bpf/re6st-bpf/internal/netns"
)

// HostInterface is the one interface of every host.
const HostInterface = "eth0"

// Host is a host of the internet.
type Host struct {
	Name string
	NS   *netns.NS
	// Interface is the host's only interface (HostInterface).
	Interface string
	// Addr is its IPv4 address on Interface, in Subnet; Gateway its
	// default route.
	Addr    netip.Addr
	Subnet  netip.Prefix
	Gateway netip.Addr
	// Site is the site the host is on ("" when directly on an ISP), ISP the
	// ISP it reaches the internet through.
	Site, ISP string
	// NAT: the host is behind a NAT, its Addr is private and nobody outside
	// can open a connection to it.
	NAT bool
	// LAN is the interface on the segment the host shares with the other
	// hosts of its site ("" when directly on an ISP).
	LAN string
}

// Internet is a built Spec.
type Internet struct {
	// Prefix starts the name of every namespace.
	Prefix string
	spec   Spec
	ns     map[string]*netns.NS // routers and hosts by name
	order  []string             // creation order, for Close
	hosts  map[string]*Host
	links  []link
	routes map[string][]route // static routes by namespace, put back by RestoreLink

	upstream *Upstream // nil without Spec.Upstream
}

// link is a veth between two elements, for CutLink and RestoreLink.
type link struct {
	a, aIf, b, bIf string
}

// Build creates spec's namespaces, named prefix+name. On error, what was
// built is deleted.
func Build(spec Spec, prefix string) (*Internet, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	in := &Internet{Prefix: prefix, spec: spec, ns: map[string]*netns.NS{}, hosts: map[string]*Host{}, routes: map[string][]route{}}
	if err := in.build(); err != nil {
		return nil, errors.Join(err, in.Close())
	}
	return in, nil
}

// ForTest builds spec with a unique prefix and deletes it when the test
// ends. Not root: the test is skipped.
func ForTest(tb testing.TB, spec Spec) *Internet {
	tb.Helper()
	netns.RequireRoot(tb)
	in, err := Build(spec, netns.UniqueName("in")+"-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := in.Close(); err != nil {
			tb.Error(err)
		}
	})
	return in
}

// Close deletes every namespace. Processes still running in them keep them
// alive until they exit.
func (in *Internet) Close() error {
	var errs []error
	for _, name := range slices.Backward(in.order) {
		errs = append(errs, in.ns[name].Close())
	}
	in.order = nil
	return errors.Join(errs...)
}

// DeleteNamespaces deletes every named namespace whose name starts with
// prefix: what a program that left an internet running built.
func DeleteNamespaces(prefix string) error {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			errs = append(errs, vnetns.DeleteNamed(e.Name()))
		}
	}
	return errors.Join(errs...)
}

// Host returns the named host, or nil.
func (in *Internet) Host(name string) *Host { return in.hosts[name] }

// Hosts returns every host in the order of the Spec.
func (in *Internet) Hosts() []*Host {
	hosts := make([]*Host, 0, len(in.spec.Hosts))
	for _, h := range in.spec.Hosts {
		hosts = append(hosts, in.hosts[h.Name])
	}
	return hosts
}

// NS returns the namespace of a host or router (an ISP, a site or Core),
// or nil.
func (in *Internet) NS(name string) *netns.NS { return in.ns[name] }

// CutLink sets down both ends of the link between a and b (host, site,
// ISP or Core names, in either order).
func (in *Internet) CutLink(a, b string) error { return in.setLink(a, b, false) }

// RestoreLink sets both ends of the link between a and b up again.
// Addresses stay; routes through it come back with it.
func (in *Internet) RestoreLink(a, b string) error { return in.setLink(a, b, true) }

func (in *Internet) setLink(a, b string, up bool) error {
	for _, l := range in.links {
		if (l.a == a && l.b == b) || (l.a == b && l.b == a) {
			return errors.Join(in.setLinkEnd(l.a, l.aIf, up), in.setLinkEnd(l.b, l.bIf, up))
		}
	}
	return fmt.Errorf("internet: no link between %s and %s", a, b)
}

func (in *Internet) setLinkEnd(name, ifname string, up bool) error {
	if up {
		if err := in.ns[name].LinkUp(ifname); err != nil {
			return err
		}
		// Routes through a link that went down are gone: put them back.
		return in.restoreRoutes(name, ifname)
	}
	return in.ns[name].Do(func() error {
		l, err := netlink.LinkByName(ifname)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", name, ifname, err)
		}
		return netlink.LinkSetDown(l)
	})
}
