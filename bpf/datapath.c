// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* The re6st-bpf data plane: one object, so that every program shares the
 * same maps.
 *   overlay_egress   tcx egress of the overlay device: route, encapsulate
 *   underlay_tc      tcx ingress of an underlay interface: decap / transit
 *                    (and, on a border gateway, out to the internet)
 *   underlay_xdp     the same at XDP, for native-XDP NICs
 *   native_ingress   tcx ingress of a gateway's upstream interface: from
 *                    the internet into the overlay (native.h)
 *   device_ingress   tcx ingress of a layer-3 device tunnel (device.h)
 *   device_l2_ingress  the same on a layer-2 device (an OpenVPN TAP)
 */
#include "include/common.h"
#include "include/underlay.h"
#include "include/icmp6.h"
#include "include/ipv4.h"
#include "include/class.h"
#include "include/device.h"

char __license[] SEC("license") = "Dual BSD/GPL";

static __always_inline int ensure_linear(struct __sk_buff *skb, __u32 want)
{
	if ((void *)(long)skb->data + want <= (void *)(long)skb->data_end)
		return 0;
	return bpf_skb_pull_data(skb, skb->len < want ? skb->len : want);
}

/* A GSO packet's segment size, 0 for others. A packet from an untrusted
 * source (a TUN device with a virtio-net header: wireguard-go writes its
 * coalesced TCP segments so) has its segment count unset (0) until the
 * kernel segments it. */
static __always_inline __u32 skb_gso_size(struct __sk_buff *skb)
{
	return skb->gso_segs != 1 ? skb->gso_size : 0;
}

/* Makes room for the outer headers and marks the packet IPv4. Only a GSO
 * packet gets the kernel's encapsulation mark, which its segmentation
 * follows: the mark stays on the packet through a tcx decapsulation at the
 * other end, which cannot clear it, and there it stops the kernel from
 * trimming the packet into an ICMPv6 error or encapsulating it again. A
 * packet without it is marked IPv4 by a protocol change, which takes 20
 * bytes off the room. A packet that already carries the mark (one the slow
 * path forwards) is only given room. */
static __always_inline int encap_room(struct __sk_buff *skb, const struct tunnel *t, __u32 olen)
{
	if (skb_gso_size(skb)) {
		__u64 flags = BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 |
			      (t->type == TUNNEL_FOU ? BPF_F_ADJ_ROOM_ENCAP_L4_UDP : BPF_F_ADJ_ROOM_ENCAP_L4_GRE);
		if (bpf_skb_adjust_room(skb, olen, BPF_ADJ_ROOM_MAC, flags) == 0)
			return 0;
		return bpf_skb_adjust_room(skb, olen, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO);
	}
	if (skb->protocol == bpf_htons(ETH_P_IP)) /* inner IPv4: already IPv4 */
		return bpf_skb_adjust_room(skb, olen, BPF_ADJ_ROOM_MAC, 0);
	const __u32 v6_to_v4 = sizeof(struct ipv6hdr) - sizeof(struct iphdr);
	if (bpf_skb_adjust_room(skb, olen + v6_to_v4, BPF_ADJ_ROOM_MAC, 0) < 0)
		return -1;
	return bpf_skb_change_proto(skb, bpf_htons(ETH_P_IP), 0);
}

/* Encapsulates the inner packet (IPv6, or IPv4 by its protocol) into
 * tunnel t and sends it, or hands it to t's device (a device tunnel); class_id is the route's traffic class (0: none),
 * tos the outer TOS byte class_steer returned for it. */
static __always_inline int encap_xmit(struct __sk_buff *skb, const struct tunnel *t, __u32 id, __u8 class_id,
				      __u8 tos)
{
	if (t->type == TUNNEL_DEVICE) {
		count(REASON_DEVICE_OUT);
		count_tunnel(id, skb->len - ETH_HLEN, 1);
		return device_send(t, id);
	}
	bool inner4 = skb->protocol == bpf_htons(ETH_P_IP);
	__u16 sport = (__u16)bpf_get_hash_recalc(skb);
	__u32 inner_len = skb->len - ETH_HLEN;
	__u32 olen = outer_len(t);
	if (encap_room(skb, t, olen) < 0) {
		class_drop(class_id);
		count(REASON_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	struct outer_hdr o = {};
	outer_build(&o, t, inner_len, sport);
	if (inner4)
		outer_set_inner4(&o, t);
	class_outer_tos(&o.ip, tos);
	__be16 proto = bpf_htons(ETH_P_IP);
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &o, olen, BPF_F_INVALIDATE_HASH) < 0 ||
	    bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_proto), &proto, sizeof(proto), 0) < 0) {
		class_drop(class_id);
		count(REASON_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	count(REASON_ENCAP);
	count_tunnel(id, inner_len, 1);
	return tunnel_xmit(t);
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

	/* IPv4: inner packets of the stack (ipv4.h), or tunnel packets sent
	 * out of here to be segmented (HOOK_SEGMENT), which go on to the peer
	 * device. */
	if ((void *)(eth + 1) <= end && eth->h_proto == bpf_htons(ETH_P_IP)) {
		if (!sent_by_overlay_stack(eth))
			return TCX_NEXT;
		struct tunnel t4;
		__u32 id4;
		int v = overlay_route4(skb, skb_gso_size(skb), &t4, &id4);
		return v == EGRESS_ENCAP ? encap_xmit(skb, &t4, id4, 0, 0) : v;
	}
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
	__u8 class_id = r->class, tos = class_steer(skb, class_id, skb->len - ETH_HLEN);
	if (inner_seg_len(skb->len - ETH_HLEN, skb_gso_size(skb)) > t.mtu) {
		class_drop(class_id);
		count(REASON_TOO_BIG);
		return icmp6_send_error(skb, ICMPV6_PKT_TOOBIG, 0, t.mtu);
	}
	return encap_xmit(skb, &t, id, class_id, tos);
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

/* What each hook does to carry out a verdict. They return the hook's
 * verdict (a redirect) or HOOK_FAILED; the XDP transit returns
 * HOOK_NO_NEIGH when it cannot address the next hop, the tcx transit
 * HOOK_SEGMENT when the kernel must cut a GSO packet first. */
#define HOOK_FAILED (-2)
#define HOOK_NO_NEIGH (-3)
#define HOOK_SEGMENT (-4)
#define HOOK_NATIVE_SLOW (-6) /* device.h's HOOK_DEVICE_SLOW is -5 */

/* tcx: resize the outer headers in place when the shape changes (GSO size
 * kept), write them, and let the kernel address the next hop. */
static __always_inline long tc_transit(struct __sk_buff *skb, struct underlay_ctx *c, __u32 inner_len)
{
	if (c->next.type == TUNNEL_DEVICE)
		return tc_device_transit(skb, c);
	/* A GSO packet is marked with its tunnel type (UDP or GRE), and only
	 * the kernel may change the mark (it refuses to encapsulate again).
	 * When the type changes, the kernel cuts the packet first. */
	if (skb_gso_size(skb) && c->outer->protocol != outer_protocol(&c->next))
		return HOOK_SEGMENT;
	__u16 sport = transit_sport(c, (void *)(long)skb->data_end);
	__s32 delta = transit_delta(c);

	if (delta && bpf_skb_adjust_room(skb, delta, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return HOOK_FAILED;
	if (transit_write((void *)(long)skb->data, (void *)(long)skb->data_end, c, inner_len, sport) < 0)
		return HOOK_FAILED;
	class_transit(skb, c->class, inner_len);
	return tunnel_xmit(&c->next);
}

/* XDP: the same with the link layer learnt from the next tunnel. */
static __always_inline long xdp_transit(struct xdp_md *ctx, struct underlay_ctx *c, __u32 inner_len)
{
	if (c->next.type == TUNNEL_DEVICE)
		return HOOK_DEVICE_SLOW;
	struct tunnel_l2 *l2 = bpf_map_lookup_elem(&tunnel_l2s, &c->out_tunnel);
	if (!l2)
		return HOOK_NO_NEIGH;
	__u16 sport = transit_sport(c, (void *)(long)ctx->data_end);
	__s32 delta = transit_delta(c);

	if (delta && bpf_xdp_adjust_head(ctx, -delta) < 0)
		return HOOK_FAILED;
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return HOOK_FAILED;
	__builtin_memcpy(eth->h_dest, l2->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, l2->smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);
	if (transit_write(data, end, c, inner_len, sport) < 0)
		return HOOK_FAILED;
	class_xdp_transit(data, end, c->class, inner_len);
	return bpf_redirect(l2->ifindex, 0);
}

/* tcx, native route (a border gateway): strip the outer headers, decrement
 * the hop limit and send the inner packet to the upstream next hop. From
 * Linux 6.3, adjust_room strips them and marks the packet IPv6; a GSO
 * packet then keeps the kernel's tunnel mark, as it does when the kernel
 * forwards the same packet out of the overlay device (the slow path).
 * Before 6.3, a protocol change turns the packet IPv6 instead: the outer
 * headers and 20 bytes more go, the change gives the 20 back, and the
 * inner header, saved first, is written over them; it refuses GSO packets,
 * which the kernel cuts first (HOOK_SEGMENT), each segment coming back
 * here. */
static __always_inline long tc_native_out(struct __sk_buff *skb, struct underlay_ctx *c)
{
	const __s32 v4_to_v6 = sizeof(struct ipv6hdr) - sizeof(struct iphdr);
	__be16 proto = bpf_htons(ETH_P_IPV6);
	struct ipv6hdr saved;

	if (cfg_decap_compat || decap_l3_ipv6(skb, c->olen) < 0) {
		if (skb_gso_size(skb))
			return HOOK_SEGMENT;
		if (bpf_skb_load_bytes(skb, ETH_HLEN + c->olen, &saved, sizeof(saved)) < 0 ||
		    bpf_skb_adjust_room(skb, -((__s32)c->olen + v4_to_v6), BPF_ADJ_ROOM_MAC, 0) < 0 ||
		    bpf_skb_change_proto(skb, proto, 0) < 0 ||
		    bpf_skb_store_bytes(skb, ETH_HLEN, &saved, sizeof(saved), 0) < 0)
			return HOOK_FAILED;
	}
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > end)
		return HOOK_FAILED;
	eth->h_proto = proto;
	ip6->hop_limit--;
	struct bpf_redir_neigh nh = { .nh_family = 10 /* AF_INET6 */ };
	__builtin_memcpy(nh.ipv6_nh, c->native.nexthop, sizeof(nh.ipv6_nh));
	return bpf_redirect_neigh(c->native.ifindex, &nh, sizeof(nh), 0);
}

/* tcx: strip the outer headers (GSO size kept) and hand the inner packet to
 * the overlay device's ingress. */
static __always_inline long tc_decap(struct __sk_buff *skb, __u32 olen, __be16 proto)
{
	if (bpf_skb_adjust_room(skb, -(__s32)olen, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO) < 0)
		return HOOK_FAILED;
	struct ethhdr eth;
	overlay_eth(&eth);
	eth.h_proto = proto;
	if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) < 0)
		return HOOK_FAILED;
	return bpf_redirect(cfg_overlay_ifindex, BPF_F_INGRESS);
}

/* XDP: the same through the overlay device's peer (an XDP redirect into a
 * veth arrives on its other end). */
static __always_inline long xdp_decap(struct xdp_md *ctx, __u32 olen, __be16 proto)
{
	if (bpf_xdp_adjust_head(ctx, olen) < 0)
		return HOOK_FAILED;
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > end)
		return HOOK_FAILED;
	overlay_eth(eth);
	eth->h_proto = proto;
	return bpf_redirect(cfg_overlay_peer_ifindex, 0);
}

/* The underlay program of both hooks: classify, then carry out the verdict
 * with the hook's helpers. xdp is a constant, so each program keeps only
 * its own branch; every verdict is counted here and only here. */
static __always_inline int underlay_run(void *ctx, const bool xdp)
{
	struct underlay_ctx c = {};
	struct __sk_buff *skb = ctx;
	struct xdp_md *xctx = ctx;
	const int pass = xdp ? XDP_PASS : TCX_NEXT;
	const int drop = xdp ? XDP_DROP : TC_ACT_SHOT;
	void *data, *end;
	__u32 len, gso_size = 0;

	if (xdp) {
		data = (void *)(long)xctx->data;
		end = (void *)(long)xctx->data_end;
		len = end - data;
	} else {
		if (ensure_linear(skb, UNDERLAY_PARSE_LEN) < 0)
			return pass;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		len = skb->len;
		gso_size = skb_gso_size(skb);
	}
	enum verdict v = underlay_classify(data, end, len, gso_size, &c);
	__u32 inner_len = len - ETH_HLEN - c.olen;
	long ret;

	if (xdp && c.in_tunnel && data + sizeof(struct ethhdr) <= end)
		learn_l2(xctx, data, c.in_tunnel);

	switch (v) {
	case V_NOT_TUNNEL:
		if (c.reason)
			count(c.reason);
		count(REASON_PASS_NOT_TUNNEL);
		return pass;
	case V_CONTROL:
		count(REASON_PASS_CONTROL);
		count_tunnel(c.in_tunnel, inner_len, 0);
		return pass;
	case V_UNKNOWN:
		return rate_limited_pass(pass, drop);
	case V_MALFORMED:
		count(REASON_DROP_MALFORMED);
		return drop;
	case V_NATIVE:
	case V_TRANSIT:
		if (v == V_NATIVE) /* XDP has no neighbour resolution: the kernel's */
			ret = xdp ? HOOK_NATIVE_SLOW : tc_native_out(skb, &c);
		else
			ret = xdp ? xdp_transit(xctx, &c, inner_len) : tc_transit(skb, &c, inner_len);
		if (ret == HOOK_NATIVE_SLOW) {
			v = V_SLOW_PATH;
			c.reason = REASON_NATIVE_SLOW;
			break;
		}
		if (ret == HOOK_NO_NEIGH) {
			/* The slow path's egress program resolves the
			 * neighbour; the next packets learn it. */
			v = V_SLOW_PATH;
			c.reason = REASON_NO_NEIGH;
			break;
		}
		if (ret == HOOK_DEVICE_SLOW) {
			v = V_SLOW_PATH;
			c.reason = REASON_DEVICE_SLOW;
			break;
		}
		if (ret == HOOK_SEGMENT) {
			/* Out of the overlay device, which cannot carry
			 * tunnel GSO, so the kernel segments the packet; the
			 * segments come back on its peer's ingress, where
			 * this program carries each through. */
			count(REASON_SEGMENT);
			return bpf_redirect(cfg_overlay_ifindex, 0);
		}
		if (ret == HOOK_FAILED) {
			count(REASON_DROP_MALFORMED);
			return drop;
		}
		count_tunnel(c.in_tunnel, inner_len, 0);
		if (v == V_NATIVE) {
			count(REASON_NATIVE_OUT);
			count_native(c.native.ifindex, inner_len, 1);
			return ret;
		}
		count(REASON_TRANSIT);
		count_tunnel(c.out_tunnel, inner_len, 1);
		return ret;
	case V_LOCAL:
	case V_SLOW_PATH:
		break;
	}

	ret = xdp ? xdp_decap(xctx, c.olen, c.inner_proto) : tc_decap(skb, c.olen, c.inner_proto);
	if (ret == HOOK_FAILED) {
		count(REASON_DROP_MALFORMED);
		return drop;
	}
	count_tunnel(c.in_tunnel, inner_len, 0);
	if (v == V_SLOW_PATH) {
		count(c.reason);
		count(REASON_SLOW_PATH);
	} else {
		count(REASON_DECAP);
	}
	return ret;
}

SEC("tcx/ingress")
int underlay_tc(struct __sk_buff *skb)
{
	return underlay_run(skb, false);
}

SEC("xdp")
int underlay_xdp(struct xdp_md *ctx)
{
	return underlay_run(ctx, true);
}

/* tcx ingress of a border gateway's upstream interface (native.h): a packet
 * from the internet to an overlay destination is encapsulated into the
 * tunnel of its route, its hop limit decremented. Everything else goes on
 * to the stack: the gateway's own traffic, and what the fast path cannot
 * finish (hop limit, larger than the tunnel's MTU, no tunnel), which the
 * kernel forwards and answers as it does the slow path of the tunnels. */
SEC("tcx/ingress")
int native_ingress(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IPV6) || ensure_linear(skb, ETH_HLEN + sizeof(struct ipv6hdr)) < 0)
		return TCX_NEXT;
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	if ((void *)(ip6 + 1) > end || ip6->version != 6)
		return TCX_NEXT;
	struct route *r = ipv6_not_routable(&ip6->daddr) ? 0 : route_dst(ip6);
	if (!r || (r->flags & ROUTE_F_LOCAL)) {
		count(REASON_PASS_NOT_TUNNEL);
		return TCX_NEXT;
	}
	__u32 id = r->tunnel, len = skb->len - ETH_HLEN, reason = 0, ifindex = skb->ifindex;
	struct tunnel *tp = bpf_map_lookup_elem(&tunnels, &id);
	if (ip6->hop_limit <= 1)
		reason = REASON_HOP_LIMIT;
	else if (!tp)
		reason = REASON_NO_ROUTE;
	else if (inner_seg_len(len, skb_gso_size(skb)) > tp->mtu)
		reason = REASON_TOO_BIG;
	if (reason) {
		count(reason);
		count(REASON_NATIVE_SLOW);
		return TCX_NEXT;
	}
	struct tunnel t = *tp;
	ip6->hop_limit--;
	__u8 class_id = r->class, tos = class_steer(skb, class_id, len);
	int ret = encap_xmit(skb, &t, id, class_id, tos);
	if (ret != TC_ACT_SHOT) {
		count(REASON_NATIVE_IN);
		count_native(ifindex, len, 0);
	}
	return ret;
}

/* Anchors that put the enums into BTF, so that bpf2go generates their Go
 * constants (they are otherwise only used as plain integers). */
const enum reason *btf_reason __attribute__((unused));
const enum tunnel_type *btf_tunnel_type __attribute__((unused));
const enum route_flags *btf_route_flags __attribute__((unused));
const enum tunnel_flags *btf_tunnel_flags __attribute__((unused));
const enum control_port *btf_control_port __attribute__((unused));
const enum class_flags *btf_class_flags __attribute__((unused));
const enum shaper *btf_shaper __attribute__((unused));
