// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* The re6st-bpf data plane: one object, so that every program shares the
 * same maps.
 *   overlay_egress   tcx egress of the overlay device: route, encapsulate
 *   underlay_tc      tcx ingress of an underlay interface: decap / transit
 *   underlay_xdp     the same at XDP, for native-XDP NICs
 */
#include "include/common.h"
#include "include/underlay.h"
#include "include/icmp6.h"

char __license[] SEC("license") = "Dual BSD/GPL";

static __always_inline int ensure_linear(struct __sk_buff *skb, __u32 want)
{
	if ((void *)(long)skb->data + want <= (void *)(long)skb->data_end)
		return 0;
	return bpf_skb_pull_data(skb, skb->len < want ? skb->len : want);
}

static __always_inline __u32 skb_gso_size(struct __sk_buff *skb)
{
	return skb->gso_segs > 1 ? skb->gso_size : 0;
}

SEC("tcx/egress")
int overlay_egress(struct __sk_buff *skb)
{
	if (ensure_linear(skb, ETH_HLEN + sizeof(struct ipv6hdr)) < 0) {
		count(REASON_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);

	if ((void *)(ip6 + 1) > end || eth->h_proto != bpf_htons(ETH_P_IPV6) || ip6->version != 6) {
		count(REASON_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	if (ipv6_not_routable(&ip6->daddr)) {
		count(REASON_DROP_NOT_ROUTABLE);
		return TC_ACT_SHOT;
	}
	struct route *r = route_lookup(ip6);
	if (!r) {
		count(REASON_NO_ROUTE);
		return icmp6_send_error(skb, ICMPV6_DEST_UNREACH, ICMPV6_NOROUTE, 0);
	}
	if (r->flags & ROUTE_F_LOCAL) {
		/* Our own prefix, but the stack has no such address. */
		count(REASON_NO_ROUTE);
		return icmp6_send_error(skb, ICMPV6_DEST_UNREACH, ICMPV6_ADDR_UNREACH, 0);
	}
	__u32 id = r->tunnel;
	struct tunnel *tp = bpf_map_lookup_elem(&tunnels, &id);
	if (!tp) {
		count(REASON_NO_ROUTE);
		return icmp6_send_error(skb, ICMPV6_DEST_UNREACH, ICMPV6_NOROUTE, 0);
	}
	struct tunnel t = *tp;
	if (inner_seg_len(skb->len - ETH_HLEN, skb_gso_size(skb)) > t.mtu) {
		count(REASON_TOO_BIG);
		return icmp6_send_error(skb, ICMPV6_PKT_TOOBIG, 0, t.mtu);
	}

	__u16 sport = (__u16)bpf_get_hash_recalc(skb);
	__u32 inner_len = skb->len - ETH_HLEN;
	__u32 olen = outer_len(&t);
	__u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 |
		      (t.type == TUNNEL_FOU ? BPF_F_ADJ_ROOM_ENCAP_L4_UDP : BPF_F_ADJ_ROOM_ENCAP_L4_GRE);
	if (bpf_skb_adjust_room(skb, olen, BPF_ADJ_ROOM_MAC, flags) < 0) {
		count(REASON_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	struct outer_hdr o = {};
	outer_build(&o, &t, inner_len, sport);
	__be16 proto = bpf_htons(ETH_P_IP);
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &o, olen, BPF_F_INVALIDATE_HASH) < 0 ||
	    bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0) < 0) {
		count(REASON_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	count(REASON_ENCAP);
	count_tunnel(id, inner_len, 1);
	return tunnel_xmit(&t);
}

static __always_inline int rate_limited_pass(__u32 pass_verdict, __u32 drop_verdict)
{
	if (rate_allow(LIMIT_UNKNOWN_PEER, cfg_unknown_peer_pps)) {
		count(REASON_PASS_UNKNOWN_PEER);
		return pass_verdict;
	}
	count(REASON_DROP_UNKNOWN_PEER);
	return drop_verdict;
}

SEC("tcx/ingress")
int underlay_tc(struct __sk_buff *skb)
{
	struct underlay_ctx c = {};

	if (ensure_linear(skb, UNDERLAY_PARSE_LEN) < 0)
		return TCX_NEXT;
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	enum verdict v = underlay_classify(data, end, skb->len, skb_gso_size(skb), &c);
	__u32 inner_len = skb->len - ETH_HLEN - c.olen;

	switch (v) {
	case V_NOT_TUNNEL:
		if (c.reason)
			count(c.reason);
		count(REASON_PASS_NOT_TUNNEL);
		return TCX_NEXT;
	case V_CONTROL:
		count(REASON_PASS_CONTROL);
		count_tunnel(c.in_tunnel, skb->len, 0);
		return TCX_NEXT;
	case V_UNKNOWN:
		return rate_limited_pass(TCX_NEXT, TC_ACT_SHOT);
	case V_MALFORMED:
		count(REASON_DROP_MALFORMED);
		return TC_ACT_SHOT;
	case V_TRANSIT:
		count_tunnel(c.in_tunnel, inner_len, 0);
		if (transit_rewrite(end, &c) < 0) {
			count(REASON_DROP_MALFORMED);
			return TC_ACT_SHOT;
		}
		count(REASON_TRANSIT);
		count_tunnel(c.out_tunnel, inner_len, 1);
		return tunnel_xmit(&c.next);
	case V_LOCAL:
	case V_SLOW_PATH:
		break;
	}

	/* Decapsulate into the overlay device. */
	count_tunnel(c.in_tunnel, inner_len, 0);
	if (bpf_skb_adjust_room(skb, -(__s32)c.olen, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_DECAP_L3_IPV6) < 0) {
		count(REASON_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	struct ethhdr eth;
	overlay_eth(&eth);
	if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) < 0) {
		count(REASON_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	if (v == V_SLOW_PATH) {
		count(c.reason);
		count(REASON_SLOW_PATH);
	} else {
		count(REASON_DECAP);
	}
	return bpf_redirect(cfg_overlay_ifindex, BPF_F_INGRESS);
}

static __always_inline int mac_eq(const __u8 *a, const __u8 *b)
{
	return *(__u32 *)a == *(__u32 *)b && *(__u16 *)(a + 4) == *(__u16 *)(b + 4);
}

/* Remembers the link-layer path of a tunnel from a packet that came in on
 * it; written only when it changed. */
static __always_inline void learn_l2(struct xdp_md *ctx, struct ethhdr *eth, __u32 tunnel)
{
	struct tunnel_l2 *l = bpf_map_lookup_elem(&tunnel_l2s, &tunnel);
	if (l && l->ifindex == ctx->ingress_ifindex && mac_eq(l->dmac, eth->h_source) &&
	    mac_eq(l->smac, eth->h_dest))
		return;
	struct tunnel_l2 n = { .ifindex = ctx->ingress_ifindex };
	__builtin_memcpy(n.smac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(n.dmac, eth->h_source, ETH_ALEN);
	bpf_map_update_elem(&tunnel_l2s, &tunnel, &n, BPF_ANY);
}

SEC("xdp")
int underlay_xdp(struct xdp_md *ctx)
{
	struct underlay_ctx c = {};
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u32 len = end - data;
	enum verdict v = underlay_classify(data, end, len, 0, &c);
	__u32 inner_len = len - ETH_HLEN - c.olen;

	if (c.in_tunnel && (void *)((struct ethhdr *)data + 1) <= end)
		learn_l2(ctx, data, c.in_tunnel);

	switch (v) {
	case V_NOT_TUNNEL:
		if (c.reason)
			count(c.reason);
		count(REASON_PASS_NOT_TUNNEL);
		return XDP_PASS;
	case V_CONTROL:
		count(REASON_PASS_CONTROL);
		count_tunnel(c.in_tunnel, inner_len, 0);
		return XDP_PASS;
	case V_UNKNOWN:
		return rate_limited_pass(XDP_PASS, XDP_DROP);
	case V_MALFORMED:
		count(REASON_DROP_MALFORMED);
		return XDP_DROP;
	case V_TRANSIT: {
		struct tunnel_l2 *l2 = bpf_map_lookup_elem(&tunnel_l2s, &c.out_tunnel);
		if (l2) {
			count_tunnel(c.in_tunnel, inner_len, 0);
			if (transit_rewrite(end, &c) < 0) {
				count(REASON_DROP_MALFORMED);
				return XDP_DROP;
			}
			struct ethhdr *eth = data;
			__builtin_memcpy(eth->h_dest, l2->dmac, ETH_ALEN);
			__builtin_memcpy(eth->h_source, l2->smac, ETH_ALEN);
			count(REASON_TRANSIT);
			count_tunnel(c.out_tunnel, inner_len, 1);
			return bpf_redirect(l2->ifindex, 0);
		}
		/* Nothing came from that tunnel yet: the slow path's egress
		 * program resolves the neighbour. */
		count(REASON_SLOW_PATH);
		break;
	}
	case V_LOCAL:
		count(REASON_DECAP);
		break;
	case V_SLOW_PATH:
		count(c.reason);
		count(REASON_SLOW_PATH);
		break;
	}

	/* Decapsulate: a new Ethernet header addressed to the overlay device,
	 * sent through its peer so that it arrives on the overlay device. */
	count_tunnel(c.in_tunnel, inner_len, 0);
	if (bpf_xdp_adjust_head(ctx, c.olen) < 0) {
		count(REASON_DROP_MALFORMED);
		return XDP_DROP;
	}
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	overlay_eth(eth);
	return bpf_redirect(cfg_overlay_peer_ifindex, 0);
}

/* Anchors that put the enums into BTF, so that bpf2go generates their Go
 * constants (they are otherwise only used as plain integers). */
const enum reason *btf_reason __attribute__((unused));
const enum tunnel_type *btf_tunnel_type __attribute__((unused));
const enum route_flags *btf_route_flags __attribute__((unused));
const enum tunnel_flags *btf_tunnel_flags __attribute__((unused));
