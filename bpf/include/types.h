/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Every structure shared between the BPF programs and Go. bpf2go generates
 * the Go types from these definitions: never mirror them by hand. All
 * addresses, ports and keys are in network byte order. */
#pragma once

#include <linux/types.h>

/* LPM trie key: prefixlen counts the bits of addr that matter. */
struct route_key {
	__u32 prefixlen;
	__u8 addr[16];
};

enum route_flags {
	ROUTE_F_LOCAL = 1, /* deliver to this node's overlay device */
};

struct route {
	__u32 tunnel; /* next-hop tunnel id, unless ROUTE_F_LOCAL */
	__u8 flags;   /* enum route_flags */
	__u8 class;   /* traffic class (TSN queue mapping) */
	__u16 pad;
};

enum tunnel_type {
	TUNNEL_FOU = 1, /* IPv6 in UDP in IPv4 */
	TUNNEL_GRE = 2, /* IPv6 in GRE in IPv4 */
	TUNNEL_DEVICE = 3, /* a network device (bpf/include/device.h) */
};

enum tunnel_flags {
	TUNNEL_F_KEY = 1,          /* GRE key present */
	TUNNEL_F_FIXED_SPORT = 2, /* FOU source port = our FOU port (NAT-friendly) */
	TUNNEL_F_NEIGH = 4,       /* DEVICE on a layer-2 device (TAP): its IPv6 next hop is in device_nexthops */
};

struct tunnel {
	__u32 local;   /* outer IPv4 source */
	__u32 remote;  /* outer IPv4 destination */
	__u32 key;     /* GRE key, when TUNNEL_F_KEY */
	__u32 ifindex; /* underlay interface towards remote */
	__u32 nexthop; /* IPv4 next hop on ifindex: remote itself, or its gateway */
	__u16 port;    /* FOU destination port */
	__u16 mtu;     /* largest inner IPv6 packet the tunnel carries */
	__u8 type;     /* enum tunnel_type */
	__u8 flags;    /* enum tunnel_flags */
	__u16 pad;
};

/* Identifies the tunnel an encapsulated packet arrived on. */
struct endpoint_key {
	__u32 remote; /* outer IPv4 source of received packets */
	__u32 key;    /* GRE key, 0 for FOU and for GRE without key */
	__u8 type;    /* enum tunnel_type */
	__u8 pad[3];
};

/* A layer-2 device tunnel's neighbour: its IPv6 next hop on the device
 * (Babel's, a link-local address). */
struct device_neighbour {
	__u32 ifindex;
	__u8 addr[16];
};

/* A layer-2 device tunnel's neighbour by the Ethernet source of its
 * packets, learnt from its control traffic. */
struct device_mac {
	__u32 ifindex;
	__u8 mac[6];
	__u8 pad[2];
};

struct device_nexthop {
	__u8 addr[16];
};

/* Link-layer addresses towards a tunnel's remote, learnt by the XDP program
 * from the packets that arrive on the tunnel (XDP has no neighbour
 * resolution of its own). */
struct tunnel_l2 {
	__u8 smac[6]; /* our address on the underlay */
	__u8 dmac[6]; /* the remote's, or its gateway's */
	__u32 ifindex;
};

struct tunnel_stats {
	__u64 rx_packets;
	__u64 rx_bytes;
	__u64 tx_packets;
	__u64 tx_bytes;
};

/* Why a packet ended where it did; one per-CPU counter each. */
enum reason {
	REASON_ENCAP,              /* overlay packet encapsulated into a tunnel */
	REASON_DECAP,              /* tunnel packet delivered to this node */
	REASON_TRANSIT,            /* tunnel packet forwarded into another tunnel */
	REASON_PASS_CONTROL,       /* Babel/node protocol, passed still encapsulated */
	REASON_PASS_NOT_TUNNEL,    /* not a tunnel packet, left to the stack */
	REASON_PASS_UNKNOWN_PEER,  /* from an unknown endpoint, within rate */
	REASON_DROP_UNKNOWN_PEER,  /* from an unknown endpoint, over rate */
	REASON_DROP_MALFORMED,     /* truncated or invalid headers */
	REASON_NO_ROUTE,           /* no route for the inner destination */
	REASON_HOP_LIMIT,          /* inner hop limit ran out */
	REASON_TOO_BIG,            /* larger than the next tunnel's MTU */
	REASON_SLOW_PATH,          /* decapsulated and handed to the overlay stack */
	REASON_ICMP_SENT,          /* ICMPv6 error generated */
	REASON_ICMP_RATE_LIMITED,  /* ICMPv6 error suppressed by the rate limit */
	REASON_DROP_NOT_ROUTABLE,  /* multicast or link-local leaving the overlay */
	REASON_OUTER_FRAGMENT,     /* fragmented outer IPv4, left to the stack */
	REASON_NO_NEIGH,           /* XDP: next tunnel's link layer not learnt yet */
	REASON_SEGMENT,            /* tcx: GSO packet cut by the kernel before a tunnel-type change or a native route */
	REASON_DEVICE_OUT,         /* packet sent into a device tunnel */
	REASON_DEVICE_SLOW,        /* transit into a device tunnel the hook cannot reach: slow path */
	REASON_NATIVE_OUT,         /* decapsulated and sent upstream along a native route (gateway) */
	REASON_NATIVE_IN,          /* from the upstream, encapsulated into a tunnel (gateway) */
	REASON_NATIVE_SLOW,        /* native traffic the hook cannot finish, left to the kernel */
	REASON_MAX,
};

/* Slots of the reason counter array: room for reasons to come, so that a
 * newer object reuses the pinned counters of an older one. */
#define REASON_SLOTS 64

/* UDP ports of the control traffic the data plane passes up to the daemon
 * still encapsulated. Go reads them from the object's BTF (bpf2go). */
enum control_port {
	CONTROL_PORT_BABEL = 6696,
};

/* Indexes of the rate limiters. */
enum limiter {
	LIMIT_UNKNOWN_PEER,
	LIMIT_ICMP,
	LIMIT_MAX,
};

struct token_bucket {
	__u64 last_ns;
	__u64 tokens;
};

/* LPM trie key of the inner IPv4 routes (ipv4.h). */
struct route4_key {
	__u32 prefixlen;
	__u8 addr[4];
};

/* A border gateway's native route (native.h): a destination outside the
 * overlay, learned from BGP, and its upstream next hop. */
struct native_route {
	__u8 nexthop[16]; /* IPv6 next hop on ifindex */
	__u32 ifindex;    /* the upstream interface */
	__u16 mtu;        /* its MTU: the largest packet sent there */
	__u16 pad;
};
