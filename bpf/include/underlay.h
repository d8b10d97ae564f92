/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Classification of packets arriving on an underlay interface. It works on
 * plain packet pointers so that the tcx and the XDP programs share it; each
 * hook then carries out the verdict with its own helpers. */
#pragma once

#include "common.h"
#include "native.h"

enum verdict {
	V_NOT_TUNNEL, /* leave to the stack */
	V_CONTROL,    /* ours, but for the daemon: pass still encapsulated */
	V_UNKNOWN,    /* tunnel packet from an endpoint we have no tunnel with */
	V_MALFORMED,
	V_LOCAL,      /* decapsulate, deliver to this node */
	V_SLOW_PATH,  /* decapsulate, let the overlay stack finish it */
	V_TRANSIT,    /* rewrite the outer headers for the next tunnel */
	V_NATIVE,     /* decapsulate, send upstream along a native route (native.h) */
};

struct underlay_ctx {
	__u32 olen;       /* outer header bytes after Ethernet */
	__u32 in_tunnel;  /* tunnel the packet arrived on; ids start at 1 */
	__u32 out_tunnel; /* next tunnel, for V_TRANSIT */
	__u32 reason;     /* counter for V_SLOW_PATH and drops */
	union {
		struct tunnel next;          /* V_TRANSIT */
		struct native_route native; /* V_NATIVE */
	};
	struct iphdr *outer;   /* packet pointers, valid until the packet */
	struct ipv6hdr *inner; /* is resized */
	__be16 inner_proto;    /* ETH_P_IPV6 or ETH_P_IP, network order */
	__u8 class;            /* traffic class of the route, for V_TRANSIT */
};

/* The verdict for an inner packet whose route is r (NULL: none), with hops
 * its hop limit or TTL and seg the length of its largest segment: local,
 * slow path (no route, hop limit, MTU), or transit into the route's tunnel,
 * whose entry and traffic class it records in c. Both inner families. */
static __always_inline enum verdict route_verdict(struct underlay_ctx *c, const struct route *r, __u8 hops, __u32 seg)
{
	if (!r) {
		c->reason = REASON_NO_ROUTE;
		return V_SLOW_PATH;
	}
	if (r->flags & ROUTE_F_LOCAL)
		return V_LOCAL;
	if (hops <= 1) {
		c->reason = REASON_HOP_LIMIT;
		return V_SLOW_PATH;
	}
	c->out_tunnel = r->tunnel;
	struct tunnel *t = bpf_map_lookup_elem(&tunnels, &c->out_tunnel);
	if (!t) {
		c->reason = REASON_NO_ROUTE;
		return V_SLOW_PATH;
	}
	if (seg > t->mtu) {
		c->reason = REASON_TOO_BIG;
		return V_SLOW_PATH;
	}
	c->next = *t;
	c->class = r->class;
	return V_TRANSIT;
}

/* The verdict for an inner IPv6 packet whose destination has native route
 * n (a border gateway, native.h): the slow path when its hop limit runs out
 * or it is larger than the upstream MTU, else V_NATIVE with the route
 * recorded in c. */
static __always_inline enum verdict native_verdict(struct underlay_ctx *c, const struct native_route *n, __u8 hops,
						   __u32 seg)
{
	if (hops <= 1) {
		c->reason = REASON_HOP_LIMIT;
		return V_SLOW_PATH;
	}
	if (seg > n->mtu) {
		c->reason = REASON_TOO_BIG;
		return V_SLOW_PATH;
	}
	c->native = *n;
	return V_NATIVE;
}

/* Inner IPv4 (ipv4.h). */
static __always_inline enum verdict underlay_classify4(void *end, __u32 pkt_len, __u32 gso_size,
						       struct underlay_ctx *c);
static __always_inline __u16 transit_sport4(const struct iphdr *ip, void *end);
static __always_inline int transit_write4(struct outer_hdr *o, const struct tunnel *next, void *end);

/* Largest header span the classifier reads: Ethernet, the longest outer
 * header, IPv6, UDP. */
#define UNDERLAY_PARSE_LEN (ETH_HLEN + GRE_KEY_OVERHEAD + sizeof(struct ipv6hdr) + sizeof(struct udphdr))

/* Control traffic for the daemon, passed still encapsulated: link-local and
 * multicast destinations (Babel, the node protocol between tunnel ends) and
 * Babel. The node protocol to a node address is ordinary overlay traffic. */
static __always_inline int is_control(const struct ipv6hdr *ip6, void *end)
{
	if (ipv6_not_routable(&ip6->daddr))
		return 1;
	if (ip6->nexthdr != IPPROTO_UDP)
		return 0;
	struct udphdr *udp = (void *)(ip6 + 1);
	if ((void *)(udp + 1) > end)
		return 0;
	return udp->dest == bpf_htons(CONTROL_PORT_BABEL);
}

/* pkt_len is the frame's length; gso_size is non-zero for GSO super-packets,
 * whose inner packets are checked against the MTU segment by segment. */
static __always_inline enum verdict underlay_classify(void *data, void *end, __u32 pkt_len,
						      __u32 gso_size, struct underlay_ctx *c)
{
	struct ethhdr *eth = data;
	struct endpoint_key ek = {};

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return V_NOT_TUNNEL;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return V_NOT_TUNNEL;
	if (ip->ihl != 5 || ip->version != 4)
		return V_NOT_TUNNEL; /* we never send IPv4 options */

	c->outer = ip;
	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);
		if ((void *)(udp + 1) > end)
			return V_NOT_TUNNEL;
		if (!cfg_fou_port || udp->dest != cfg_fou_port)
			return V_NOT_TUNNEL;
		ek.type = TUNNEL_FOU;
		c->olen = FOU_OVERHEAD;
		c->inner = (void *)(udp + 1);
	} else if (ip->protocol == IPPROTO_GRE_) {
		struct gre_hdr *gre = (void *)(ip + 1);
		if ((void *)(gre + 1) > end)
			return V_MALFORMED;
		__u16 flags = bpf_ntohs(gre->flags);
		if ((gre->proto != bpf_htons(ETH_P_IPV6) && gre->proto != bpf_htons(ETH_P_IP)) ||
		    (flags & (GRE_FLAG_CSUM | GRE_FLAG_SEQ | GRE_VERSION_MASK)))
			return V_NOT_TUNNEL;
		c->inner_proto = gre->proto;
		ek.type = TUNNEL_GRE;
		c->olen = GRE_OVERHEAD;
		c->inner = (void *)(gre + 1);
		if (flags & GRE_FLAG_KEY) {
			__be32 *key = (void *)(gre + 1);
			if ((void *)(key + 1) > end)
				return V_MALFORMED;
			ek.key = *key;
			c->olen = GRE_KEY_OVERHEAD;
			c->inner = (void *)(key + 1);
		}
	} else {
		return V_NOT_TUNNEL;
	}
	if (ip->frag_off & bpf_htons(IPV4_MF | IPV4_OFFSET)) {
		c->reason = REASON_OUTER_FRAGMENT;
		return V_NOT_TUNNEL;
	}

	ek.remote = ip->saddr;
	__u32 *id = bpf_map_lookup_elem(&endpoints, &ek);
	if (!id) /* IPv4 in GRE from elsewhere: the host's own GRE tunnels */
		return c->inner_proto == bpf_htons(ETH_P_IP) ? V_NOT_TUNNEL : V_UNKNOWN;
	c->in_tunnel = *id;

	/* FOU: the inner version says which (GUE variant 1). */
	__u8 *version = (void *)c->inner;
	if ((void *)(version + 1) > end)
		return V_MALFORMED;
	if (!c->inner_proto)
		c->inner_proto = *version >> 4 == 4 ? bpf_htons(ETH_P_IP) : bpf_htons(ETH_P_IPV6);
	if (c->inner_proto == bpf_htons(ETH_P_IP))
		return underlay_classify4(end, pkt_len, gso_size, c);

	struct ipv6hdr *ip6 = c->inner;
	if ((void *)(ip6 + 1) > end)
		return V_MALFORMED;
	if (ip6->version != 6)
		return V_MALFORMED;
	if (is_control(ip6, end))
		return V_CONTROL;

	/* An overlay destination first, then a native one (a gateway's
	 * routes to the internet), then the source-specific defaults. */
	__u32 seg = inner_seg_len(pkt_len - ETH_HLEN - c->olen, gso_size);
	struct route *r = route_dst(ip6);
	if (!r) {
		struct native_route *n = native_lookup(ip6);
		if (n)
			return native_verdict(c, n, ip6->hop_limit, seg);
		r = route_src(ip6);
	}
	return route_verdict(c, r, ip6->hop_limit, seg);
}

/* The FOU source port a transit packet leaves with: the one it came in
 * with (the first hop hashed the flow into it), or, from GRE, a hash of the
 * inner addresses and flow label, so that a flow keeps one port. Host
 * order; outer_build sets the top bits. */
static __always_inline __u16 transit_sport(const struct underlay_ctx *c, void *end)
{
	struct iphdr *ip = c->outer;
	struct ipv6hdr *ip6 = c->inner;

	if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(ip + 1);
		if ((void *)(udp + 1) <= end)
			return bpf_ntohs(udp->source);
	}
	if (c->inner_proto == bpf_htons(ETH_P_IP))
		return transit_sport4((void *)ip6, end);
	if ((void *)(ip6 + 1) > end)
		return 0;
	__u32 h = *(__u32 *)ip6; /* version, traffic class, flow label */
#pragma unroll
	for (int i = 0; i < 4; i++)
		h ^= ip6->saddr.s6_addr32[i] ^ ip6->daddr.s6_addr32[i];
	h *= 0x9e3779b1;
	return h >> 16;
}

/* Outer size change of a transit packet: next tunnel's outer headers minus
 * the received ones (FOU 28, GRE 24, GRE with key 28). */
static __always_inline __s32 transit_delta(const struct underlay_ctx *c)
{
	return (__s32)outer_len(&c->next) - (__s32)c->olen;
}

/* Writes the next tunnel's outer headers over the first bytes after the
 * Ethernet header of a transit packet already resized by transit_delta, and
 * decrements the inner hop limit. */
static __always_inline int transit_write(void *data, void *end, const struct underlay_ctx *c,
					 __u32 inner_len, __u16 sport)
{
	struct outer_hdr *o = data + ETH_HLEN;
	if ((void *)(o + 1) > end)
		return -1;
	outer_build(o, &c->next, inner_len, sport);
	if (c->inner_proto == bpf_htons(ETH_P_IP))
		return transit_write4(o, &c->next, end);
	struct ipv6hdr *ip6 = (void *)o + outer_len(&c->next);
	if ((void *)(ip6 + 1) > end)
		return -1;
	ip6->hop_limit--;
	return 0;
}
