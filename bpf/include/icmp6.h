/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ICMPv6 errors built in place from the offending packet (tc only). The
 * error is sourced from the node's overlay address and injected into the
 * overlay device's ingress: the stack delivers it when the offender is
 * local, and forwards it back out of the overlay device (where the egress
 * program encapsulates it) when the offender is remote. */
#pragma once

#include "common.h"

#define ICMP6_ERR_HDR (sizeof(struct ipv6hdr) + sizeof(struct icmp6hdr))
/* RFC 4443: as much of the invoking packet as fits in the minimum MTU. */
#define ICMP6_MAX_QUOTE (1280 - ICMP6_ERR_HDR)
#define CSUM_CHUNK 256

struct csum_scratch {
	__u8 buf[CSUM_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct csum_scratch);
} csum_scratch SEC(".maps");

struct icmp6_err {
	struct ipv6hdr ip6;
	struct icmp6hdr icmp;
};

struct pseudo_hdr6 {
	struct in6_addr saddr;
	struct in6_addr daddr;
	__be32 len;
	__u8 zero[3];
	__u8 nexthdr;
};

/* Checksum of len (at most ICMP6_MAX_QUOTE) bytes of the packet from off,
 * added to sum. bpf_csum_diff sums whole 32-bit words, so a trailing
 * partial word is zero-padded. */
static __always_inline __s64 skb_csum(struct __sk_buff *skb, __u32 off, __u32 len, __s64 sum)
{
	__u32 zero = 0;
	struct csum_scratch *s = bpf_map_lookup_elem(&csum_scratch, &zero);
	if (!s)
		return -1;
	for (int i = 0; i < ICMP6_MAX_QUOTE / CSUM_CHUNK; i++) {
		if (len < CSUM_CHUNK)
			break;
		if (bpf_skb_load_bytes(skb, off, s->buf, CSUM_CHUNK) < 0)
			return -1;
		sum = bpf_csum_diff(NULL, 0, (__be32 *)s->buf, CSUM_CHUNK, sum);
		off += CSUM_CHUNK;
		len -= CSUM_CHUNK;
	}
	if (len >= CSUM_CHUNK)
		return -1;
	/* The remainder: its whole words, then its last 1-3 bytes. */
	__u32 words = len & (CSUM_CHUNK - 4);
	if (words) {
		if (bpf_skb_load_bytes(skb, off, s->buf, words) < 0)
			return -1;
		sum = bpf_csum_diff(NULL, 0, (__be32 *)s->buf, words, sum);
	}
	__u32 tail = 0;
	int err = 0;
	switch (len & 3) {
	case 1:
		err = bpf_skb_load_bytes(skb, off + words, &tail, 1);
		break;
	case 2:
		err = bpf_skb_load_bytes(skb, off + words, &tail, 2);
		break;
	case 3:
		err = bpf_skb_load_bytes(skb, off + words, &tail, 3);
		break;
	default:
		return sum;
	}
	if (err < 0)
		return -1;
	return bpf_csum_diff(NULL, 0, &tail, sizeof(tail), sum);
}

static __always_inline int is_icmp6_error(struct __sk_buff *skb, const struct ipv6hdr *ip6)
{
	__u8 type;

	if (ip6->nexthdr != IPPROTO_ICMPV6)
		return 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN + sizeof(*ip6), &type, 1) < 0)
		return 1;
	return type < 128;
}

/* Turns the IPv6 packet in skb into an ICMPv6 error about it and redirects
 * it into the overlay device. Returns the tc verdict. */
static __always_inline int icmp6_send_error(struct __sk_buff *skb, __u8 type, __u8 code, __u32 info)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct icmp6_err err = {};
	struct pseudo_hdr6 ph = {};

	if ((void *)(ip6 + 1) > end)
		return TC_ACT_SHOT;
	/* Never answer errors, or packets whose source cannot receive one. */
	if (ipv6_not_routable(&ip6->saddr) || is_icmp6_error(skb, ip6))
		return TC_ACT_SHOT;
	if (!rate_allow(LIMIT_ICMP, cfg_icmp_pps)) {
		count(REASON_ICMP_RATE_LIMITED);
		return TC_ACT_SHOT;
	}
	__builtin_memcpy(&err.ip6.daddr, &ip6->saddr, sizeof(err.ip6.daddr));

	__u32 quote = skb->len - ETH_HLEN;
	if (quote > ICMP6_MAX_QUOTE) {
		quote = ICMP6_MAX_QUOTE;
		if (bpf_skb_change_tail(skb, ETH_HLEN + quote, 0) < 0)
			return TC_ACT_SHOT;
	}
	if (bpf_skb_adjust_room(skb, ICMP6_ERR_HDR, BPF_ADJ_ROOM_MAC, 0) < 0)
		return TC_ACT_SHOT;

	err.ip6.version = 6;
	err.ip6.payload_len = bpf_htons(sizeof(err.icmp) + quote);
	err.ip6.nexthdr = IPPROTO_ICMPV6;
	err.ip6.hop_limit = 64;
	node_addr(&err.ip6.saddr);
	err.icmp.icmp6_type = type;
	err.icmp.icmp6_code = code;
	err.icmp.icmp6_dataun.un_data32[0] = bpf_htonl(info);

	ph.saddr = err.ip6.saddr;
	ph.daddr = err.ip6.daddr;
	ph.len = bpf_htonl(sizeof(err.icmp) + quote);
	ph.nexthdr = IPPROTO_ICMPV6;
	__s64 sum = bpf_csum_diff(NULL, 0, (__be32 *)&ph, sizeof(ph), 0);
	sum = bpf_csum_diff(NULL, 0, (__be32 *)&err.icmp, sizeof(err.icmp), sum);
	sum = skb_csum(skb, ETH_HLEN + ICMP6_ERR_HDR, quote, sum);
	if (sum < 0)
		return TC_ACT_SHOT;
	err.icmp.icmp6_cksum = csum_fold((__u32)sum);

	if (bpf_skb_store_bytes(skb, ETH_HLEN, &err, sizeof(err), 0) < 0)
		return TC_ACT_SHOT;
	struct ethhdr eth;
	overlay_eth(&eth);
	if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) < 0)
		return TC_ACT_SHOT;
	count(REASON_ICMP_SENT);
	return bpf_redirect(cfg_overlay_ifindex, BPF_F_INGRESS);
}
