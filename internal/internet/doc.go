// Package internet builds a small simulated IPv4 internet in network
// namespaces, from a declarative Spec: ISP routers joined by a core router,
// hosts attached to an ISP, and sites (a router with a bridged LAN behind
// it) that are either routed to their ISP or hidden behind a masquerading
// NAT (nftables) that lets nobody from outside open a connection in.
//
// Addressing: every ISP has an IPv4 /16. Its link to the core is the /24
// number 0 (core .1, ISP .2); its k-th attachment, a host or a site router,
// gets the /24 number k (ISP .1, attachment .2) and a default route through
// the ISP. A site's LAN is its own prefix: router .1 on a bridge, its hosts
// .2, .3, ... in the order of the Spec. Every host has one interface, eth0.
//
// Hosts may also have an IPv6 upstream (Spec.Upstream), for re6st
// gateways: a namespace "upstream" linked by a veth to each of them, the
// i-th by 2001:db8:ffff:i::/64 (the upstream ::1, the host ::2 on its
// interface "upstream"), which is the host's default IPv6 route. The
// upstream routes back what UpstreamLink.Route gives it. Behind it, an
// exterior host (Spec.Exterior) has native IPv6 only (2001:db8:fffe::2).
//
// Tests use ForTest (torn down by the test's cleanup); programs use Build
// and Close. Namespace names are a prefix followed by the element's name, so
// a program can find and delete what it left running with DeleteNamespaces.
package internet
