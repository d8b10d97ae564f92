/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Headers, constants and small helpers used by every program. */
#pragma once

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/icmpv6.h>
#include <linux/pkt_cls.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "types.h"
#include "config.h"
#include "maps.h"

#define TCX_NEXT (-1)
#define IPPROTO_GRE_ 47
#define GRE_FLAG_CSUM 0x8000
#define GRE_FLAG_KEY 0x2000
#define GRE_FLAG_SEQ 0x1000
#define GRE_VERSION_MASK 0x0007
#define IPV4_MF 0x2000
#define IPV4_OFFSET 0x1fff
#define OUTER_TTL 64

#define FOU_OVERHEAD (sizeof(struct iphdr) + sizeof(struct udphdr))
#define GRE_OVERHEAD (sizeof(struct iphdr) + 4)
#define GRE_KEY_OVERHEAD (GRE_OVERHEAD + 4)

struct gre_hdr {
	__be16 flags;
	__be16 proto;
};

/* The outer headers this data plane writes and reads, after Ethernet. */
struct outer_hdr {
	struct iphdr ip;
	union {
		struct udphdr udp;
		struct {
			struct gre_hdr gre;
			__be32 key;
		};
	};
};

/* An Ethernet header addressed to the overlay device, so that the stack
 * takes the frame as its own. The configuration is read element by element:
 * a memcpy would let the compiler fold the volatile array to its initial
 * zeroes. */
static __always_inline void overlay_eth(struct ethhdr *eth)
{
#pragma unroll
	for (int i = 0; i < ETH_ALEN; i++) {
		eth->h_dest[i] = cfg_overlay_mac[i];
		eth->h_source[i] = cfg_overlay_mac[i];
	}
	eth->h_proto = bpf_htons(ETH_P_IPV6);
}

static __always_inline void node_addr(struct in6_addr *a)
{
#pragma unroll
	for (int i = 0; i < 16; i++)
		a->s6_addr[i] = cfg_node_addr[i];
}

static __always_inline void count(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&reason_counters, &reason);
	if (c)
		*c += 1;
}

static __always_inline void stats_add(struct tunnel_stats *s, __u64 bytes, int tx)
{
	if (tx) {
		s->tx_packets++;
		s->tx_bytes += bytes;
	} else {
		s->rx_packets++;
		s->rx_bytes += bytes;
	}
}

static __always_inline void count_tunnel(__u32 id, __u64 bytes, int tx)
{
	struct tunnel_stats *s = bpf_map_lookup_elem(&tunnel_counters, &id);
	if (s)
		stats_add(s, bytes, tx);
}

/* Per-CPU token bucket: rate tokens per second, burst of one second. */
static __always_inline int rate_allow(__u32 limiter, __u32 rate)
{
	struct token_bucket *b = bpf_map_lookup_elem(&limiters, &limiter);
	if (!b)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__u64 elapsed = now - b->last_ns;
	__u64 add = elapsed / 1000000000ULL * rate + (elapsed % 1000000000ULL) * rate / 1000000000ULL;
	if (add > 0) {
		b->tokens += add;
		if (b->tokens > rate)
			b->tokens = rate;
		b->last_ns = now;
	}
	if (b->tokens == 0)
		return 0;
	b->tokens--;
	return 1;
}

/* The overlay route of an inner destination: the longest match. */
static __always_inline struct route *route_dst(const struct ipv6hdr *ip6)
{
	struct route_key k = { .prefixlen = 128 };

	__builtin_memcpy(k.addr, &ip6->daddr, 16);
	return bpf_map_lookup_elem(&routes, &k);
}

/* The source-specific default routes (::/0 from <prefix>), longest source
 * match first. */
static __always_inline struct route *route_src(const struct ipv6hdr *ip6)
{
	struct route_key k = { .prefixlen = 128 };

	__builtin_memcpy(k.addr, &ip6->saddr, 16);
	return bpf_map_lookup_elem(&source_routes, &k);
}

/* Route of an inner packet: the longest destination match; failing that,
 * the source-specific default routes. */
static __always_inline struct route *route_lookup(const struct ipv6hdr *ip6)
{
	struct route *r = route_dst(ip6);

	return r ? r : route_src(ip6);
}

static __always_inline int ipv6_not_routable(const struct in6_addr *a)
{
	/* multicast ff00::/8, link-local fe80::/10, unspecified :: */
	if (a->s6_addr[0] == 0xff)
		return 1;
	if (a->s6_addr[0] == 0xfe && (a->s6_addr[1] & 0xc0) == 0x80)
		return 1;
	return !(a->s6_addr32[0] | a->s6_addr32[1] | a->s6_addr32[2] | a->s6_addr32[3]);
}

static __always_inline __u16 csum_fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

static __always_inline void ipv4_set_csum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u64 sum = 0;

	ip->check = 0;
#pragma unroll
	for (int i = 0; i < (int)sizeof(*ip) / 2; i++)
		sum += w[i];
	ip->check = csum_fold(sum);
}

/* Size of one inner packet on the wire. GSO super-packets are cut into
 * segments of gso_size payload bytes after the headers; this is a lower
 * bound for TCP (20-byte header): options only make a segment larger, and
 * the sender sized gso_size from the same MTU. */
static __always_inline __u32 inner_seg_len(__u32 len, __u32 gso_size)
{
	if (gso_size)
		return gso_size + sizeof(struct ipv6hdr) + 20;
	return len;
}

static __always_inline __u8 outer_protocol(const struct tunnel *t)
{
	return t->type == TUNNEL_FOU ? IPPROTO_UDP : IPPROTO_GRE_;
}

static __always_inline __u32 outer_len(const struct tunnel *t)
{
	if (t->type == TUNNEL_FOU)
		return FOU_OVERHEAD;
	return (t->flags & TUNNEL_F_KEY) ? GRE_KEY_OVERHEAD : GRE_OVERHEAD;
}

/* Fills the outer headers for tunnel t around an inner packet of inner_len
 * bytes; it writes outer_len(t) bytes of o and no more. sport is the FOU source port (a hash of the inner flow), unless
 * the tunnel asks for a fixed one: a NAT keeps one mapping for our FOU port,
 * so both directions must use it. */
static __always_inline void outer_build(struct outer_hdr *o, const struct tunnel *t,
					__u32 inner_len, __u16 sport)
{
	__u32 olen = outer_len(t);

	o->ip.version = 4;
	o->ip.ihl = 5;
	o->ip.tos = 0;
	o->ip.tot_len = bpf_htons(inner_len + olen);
	o->ip.id = 0;
	o->ip.frag_off = 0;
	o->ip.ttl = OUTER_TTL;
	o->ip.saddr = t->local;
	o->ip.daddr = t->remote;
	o->ip.protocol = outer_protocol(t);
	if (t->type == TUNNEL_FOU) {
		o->udp.source = (t->flags & TUNNEL_F_FIXED_SPORT) ? cfg_fou_port
								   : bpf_htons(sport | 0xc000);
		o->udp.dest = t->port;
		o->udp.len = bpf_htons(inner_len + sizeof(struct udphdr));
		o->udp.check = 0;
	} else {
		o->gre.proto = bpf_htons(ETH_P_IPV6);
		o->gre.flags = 0;
		if (t->flags & TUNNEL_F_KEY) {
			/* Only then: o may be the packet itself, where a
			 * keyless GRE header is followed by the inner packet. */
			o->gre.flags = bpf_htons(GRE_FLAG_KEY);
			o->key = t->key;
		}
	}
	ipv4_set_csum(&o->ip);
}

/* From Linux 6.3's uapi, which the build's headers may predate; older
 * kernels refuse the flag (-EINVAL). */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV6
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

/* tc: strips olen bytes of outer headers after Ethernet and marks the
 * packet IPv6 (GSO size kept), as Linux 6.3 and later can; a GSO packet
 * keeps the kernel's tunnel mark, as it does when the kernel forwards a
 * packet decapsulated into the overlay device. < 0 on older kernels. */
static __always_inline long decap_l3_ipv6(struct __sk_buff *skb, __u32 olen)
{
	return bpf_skb_adjust_room(skb, -(__s32)olen, BPF_ADJ_ROOM_MAC,
				   BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_DECAP_L3_IPV6);
}

/* Sends a packet with its outer headers into tunnel t: the kernel fills in
 * the link-layer addresses for t's next hop (resolving ARP when needed),
 * without a route lookup per packet: userspace resolved the interface and
 * the next hop when it added the tunnel. */
static __always_inline long tunnel_xmit(const struct tunnel *t)
{
	struct bpf_redir_neigh nh = { .nh_family = 2 /* AF_INET */, .ipv4_nh = t->nexthop };

	return bpf_redirect_neigh(t->ifindex, &nh, sizeof(nh), 0);
}
