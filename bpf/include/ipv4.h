/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Inner IPv4: the overlay carries IPv4 packets as it carries IPv6 ones.
 *   GRE:  protocol 0x0800 (IPv6 is 0x86dd);
 *   FOU:  the same port as IPv6, told apart by the inner version nibble
 *         (GUE variant 1, "direct IP encapsulation": no extra header, and
 *         one port, so one NAT mapping, per node);
 * routed by the routes4 map (destination only), with the TTL as the hop
 * limit and ICMPv4 errors built at egress like the ICMPv6 ones (icmp6.h),
 * under the same rate limit. */
#pragma once

#include "common.h"
#include "underlay.h"
#include "icmp6.h"

#define IPV4_DF 0x4000

/* ICMPv4 (RFC 792; <linux/icmp.h> pulls in libc headers). */
#define ICMP4_DEST_UNREACH 3
#define ICMP4_SOURCE_QUENCH 4
#define ICMP4_REDIRECT 5
#define ICMP4_TIME_EXCEEDED 11
#define ICMP4_PARAMETERPROB 12
#define ICMP4_MAX_TYPE 18
#define ICMP4_NET_UNREACH 0
#define ICMP4_HOST_UNREACH 1
#define ICMP4_FRAG_NEEDED 4

struct icmp4_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 unused;
	__be16 mtu; /* next-hop MTU of "fragmentation needed" (RFC 1191) */
};

/* What overlay_route4 returns when the packet is to be encapsulated. */
#define EGRESS_ENCAP (-16)

#define ICMP4_ERR_HDR (sizeof(struct iphdr) + sizeof(struct icmp4_hdr))
/* RFC 1812 4.3.2.3: as much of the invoking packet as fits in 576 bytes. */
#define ICMP4_MAX_QUOTE (576 - ICMP4_ERR_HDR)

struct icmp4_err {
	struct iphdr ip;
	struct icmp4_hdr icmp;
};

static __always_inline struct route *route4_lookup(__be32 daddr)
{
	struct route4_key k = { .prefixlen = 32 };

	__builtin_memcpy(k.addr, &daddr, sizeof(daddr));
	return bpf_map_lookup_elem(&routes4, &k);
}

/* 0/8, loopback 127/8, link-local 169.254/16, multicast 224/4, reserved
 * 240/4 and broadcast: never routed through the overlay, never the source
 * of a packet that may get an error. */
static __always_inline int ipv4_not_routable(__be32 a)
{
	__u32 h = bpf_ntohl(a);
	__u8 first = h >> 24;

	return first == 0 || first == 127 || first >= 224 || (h >> 16) == 0xa9fe;
}

/* Size of one inner IPv4 packet on the wire; for GSO, the segment size
 * (see inner_seg_len). */
static __always_inline __u32 inner4_seg_len(__u32 len, __u32 gso_size, const struct iphdr *ip)
{
	if (gso_size)
		return gso_size + ip->ihl * 4 + 20;
	return len;
}

/* Marks outer headers built by outer_build as carrying IPv4. */
static __always_inline void outer_set_inner4(struct outer_hdr *o, const struct tunnel *t)
{
	if (t->type == TUNNEL_GRE)
		o->gre.proto = bpf_htons(ETH_P_IP);
}

/* Decrements the TTL, updating the header checksum (RFC 1624). */
static __always_inline void ipv4_dec_ttl(struct iphdr *ip)
{
	__u32 check = ip->check;

	check += bpf_htons(0x0100);
	ip->check = (__sum16)(check + (check >= 0xffff));
	ip->ttl--;
}

/* The frames the overlay stack sends out of the overlay device carry the
 * device's own address as source (it is NOARP: the destination is that
 * address too, or a multicast one); the tunnel packets underlay_tc sends
 * out of it to be segmented keep the underlay's Ethernet header. */
static __always_inline int sent_by_overlay_stack(const struct ethhdr *eth)
{
#pragma unroll
	for (int i = 0; i < ETH_ALEN; i++)
		if (eth->h_source[i] != cfg_overlay_mac[i])
			return 0;
	return 1;
}

static __always_inline int is_icmp4_error(struct __sk_buff *skb, const struct iphdr *ip)
{
	__u8 type;

	if (ip->protocol != IPPROTO_ICMP)
		return 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + ip->ihl * 4, &type, 1) < 0)
		return 1;
	/* As the kernel: the error types, and types it does not know. */
	return type == ICMP4_DEST_UNREACH || type == ICMP4_SOURCE_QUENCH || type == ICMP4_REDIRECT ||
	       type == ICMP4_TIME_EXCEEDED || type == ICMP4_PARAMETERPROB || type > ICMP4_MAX_TYPE;
}

/* Turns the IPv4 packet in skb into an ICMPv4 error about it, sourced from
 * the node's overlay IPv4 address, and injects it into the overlay device,
 * as icmp6_send_error does. mtu is the next-hop MTU of "fragmentation
 * needed". Returns the tc verdict. */
static __always_inline int icmp4_send_error(struct __sk_buff *skb, __u8 type, __u8 code, __u16 mtu)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;
	struct icmp4_err err = {};
	__u32 zero = 0;

	if ((void *)(ip + 1) > end)
		return TC_ACT_SHOT;
	__u32 *self = bpf_map_lookup_elem(&ipv4_self, &zero);
	if (!self || !*self)
		return TC_ACT_SHOT;
	/* Never about errors or later fragments, never to a source that
	 * cannot receive one (RFC 1812 4.3.2.7). */
	if (ipv4_not_routable(ip->saddr) || (ip->frag_off & bpf_htons(IPV4_OFFSET)) || is_icmp4_error(skb, ip))
		return TC_ACT_SHOT;
	if (!rate_allow(LIMIT_ICMP, cfg_icmp_pps)) {
		count(REASON_ICMP_RATE_LIMITED);
		return TC_ACT_SHOT;
	}
	err.ip.daddr = ip->saddr;
	err.ip.saddr = *self;

	__u32 quote = skb->len - ETH_HLEN;
	if (quote > ICMP4_MAX_QUOTE) {
		quote = ICMP4_MAX_QUOTE;
		if (bpf_skb_change_tail(skb, ETH_HLEN + quote, 0) < 0)
			return TC_ACT_SHOT;
	}
	if (bpf_skb_adjust_room(skb, ICMP4_ERR_HDR, BPF_ADJ_ROOM_MAC, 0) < 0)
		return TC_ACT_SHOT;

	err.ip.version = 4;
	err.ip.ihl = 5;
	err.ip.tot_len = bpf_htons(ICMP4_ERR_HDR + quote);
	err.ip.ttl = 64;
	err.ip.protocol = IPPROTO_ICMP;
	ipv4_set_csum(&err.ip);
	err.icmp.type = type;
	err.icmp.code = code;
	err.icmp.mtu = bpf_htons(mtu);
	__s64 sum = bpf_csum_diff(NULL, 0, (__be32 *)&err.icmp, sizeof(err.icmp), 0);
	sum = skb_csum(skb, ETH_HLEN + ICMP4_ERR_HDR, quote, sum);
	if (sum < 0)
		return TC_ACT_SHOT;
	err.icmp.checksum = csum_fold((__u32)sum);

	if (bpf_skb_store_bytes(skb, ETH_HLEN, &err, sizeof(err), 0) < 0)
		return TC_ACT_SHOT;
	struct ethhdr eth;
	overlay_eth(&eth);
	eth.h_proto = bpf_htons(ETH_P_IP);
	if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) < 0)
		return TC_ACT_SHOT;
	count(REASON_ICMP_SENT);
	return bpf_redirect(cfg_overlay_ifindex, BPF_F_INGRESS);
}

/* Routes an inner IPv4 packet leaving the overlay device: fills in the
 * tunnel it goes into and returns EGRESS_ENCAP, or returns the tc verdict
 * of its drop or ICMPv4 error. A packet larger than the tunnel's MTU gets
 * "fragmentation needed" when it forbids fragmentation; otherwise it is
 * dropped (the stack fragments to the overlay device's MTU, which no
 * tunnel's is below unless set so by hand). */
static __always_inline int overlay_route4(struct __sk_buff *skb, __u32 gso_size, struct tunnel *t, __u32 *id)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN;

	if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5) {
		count(REASON_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	if (ipv4_not_routable(ip->daddr)) {
		count(REASON_DROP_NOT_ROUTABLE);
		return TC_ACT_SHOT;
	}
	struct route *r = route4_lookup(ip->daddr);
	if (!r) {
		count(REASON_NO_ROUTE);
		return icmp4_send_error(skb, ICMP4_DEST_UNREACH, ICMP4_NET_UNREACH, 0);
	}
	if (r->flags & ROUTE_F_LOCAL) {
		/* Our own prefix, but the stack has no such address. */
		count(REASON_NO_ROUTE);
		return icmp4_send_error(skb, ICMP4_DEST_UNREACH, ICMP4_HOST_UNREACH, 0);
	}
	*id = r->tunnel;
	struct tunnel *tp = bpf_map_lookup_elem(&tunnels, id);
	if (!tp) {
		count(REASON_NO_ROUTE);
		return icmp4_send_error(skb, ICMP4_DEST_UNREACH, ICMP4_NET_UNREACH, 0);
	}
	*t = *tp;
	if (inner4_seg_len(skb->len - ETH_HLEN, gso_size, ip) > t->mtu) {
		count(REASON_TOO_BIG);
		if (ip->frag_off & bpf_htons(IPV4_DF))
			return icmp4_send_error(skb, ICMP4_DEST_UNREACH, ICMP4_FRAG_NEEDED, t->mtu);
		return TC_ACT_SHOT;
	}
	return EGRESS_ENCAP;
}

/* underlay_classify for an inner IPv4 packet, from its route on: local,
 * slow path (no route, TTL, MTU) or transit. */
static __always_inline enum verdict underlay_classify4(void *end, __u32 pkt_len, __u32 gso_size,
						       struct underlay_ctx *c)
{
	struct iphdr *ip = (void *)c->inner;

	if ((void *)(ip + 1) > end || ip->version != 4 || ip->ihl < 5)
		return V_MALFORMED;
	return route_verdict(c, route4_lookup(ip->daddr), ip->ttl, inner4_seg_len(pkt_len - ETH_HLEN - c->olen, gso_size, ip));
}

/* transit_sport from a GRE packet carrying IPv4: a hash of the inner
 * addresses, so that a flow keeps one port. */
static __always_inline __u16 transit_sport4(const struct iphdr *ip, void *end)
{
	if ((void *)(ip + 1) > end)
		return 0;
	__u32 h = (ip->saddr ^ ip->daddr ^ ip->protocol) * 0x9e3779b1;
	return h >> 16;
}

/* transit_write's end for IPv4: the GRE protocol, and the TTL. */
static __always_inline int transit_write4(struct outer_hdr *o, const struct tunnel *next, void *end)
{
	outer_set_inner4(o, next);
	struct iphdr *ip = (void *)o + outer_len(next);
	if ((void *)(ip + 1) > end)
		return -1;
	ipv4_dec_ttl(ip);
	return 0;
}
