/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Device tunnels: a tunnel that is a layer-3 network device (TUN,
 * WireGuard) instead of outer headers written here. Its tunnel entry has
 * type TUNNEL_DEVICE and the device's ifindex.
 *   - A route into it redirects the inner packet to the device: from the
 *     overlay egress program, and from an underlay (transit) after the
 *     outer headers are stripped.
 *   - What comes out of the device is routed by device_ingress (tc ingress
 *     of the device) like decapsulated traffic: local delivery into the
 *     overlay device's ingress, transit into another device directly, or
 *     into a BPF tunnel through the overlay device's egress program, which
 *     encapsulates it; the slow path goes to the overlay device's ingress,
 *     as for the other tunnels. */
#pragma once

#include "common.h"
#include "underlay.h"

/* A hook helper's answer (beside datapath.c's HOOK_* values): the next
 * tunnel is a device the hook cannot reach directly, let the slow path
 * carry the packet there. */
#define HOOK_DEVICE_SLOW (-5)
/* datapath.c's HOOK_FAILED, which this header is included before. */
#define DEVICE_HOOK_FAILED (-2)

/* Device ifindex -> the id of the device tunnel, for device_ingress. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, MAX_TUNNELS);
	__type(key, __u32);
	__type(value, __u32);
} device_tunnels SEC(".maps");

/* Sends an inner packet into device tunnel t. For a layer-3 device the
 * kernel strips the Ethernet header itself (bpf_redirect to a device
 * without link layer). */
static __always_inline long device_xmit(const struct tunnel *t)
{
	return bpf_redirect(t->ifindex, 0);
}

/* tcx underlay ingress, transit into a device tunnel: strip the outer
 * headers, mark the packet IPv6 (the flag that does it exists since Linux
 * 6.3), decrement the hop limit, send. A GSO packet keeps the kernel's
 * tunnel mark, which the device's segmentation would follow: the slow
 * path takes it. */
static __always_inline long tc_device_transit(struct __sk_buff *skb, const struct underlay_ctx *c)
{
	if (decap_l3_ipv6(skb, c->olen) < 0)
		return HOOK_DEVICE_SLOW;
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > end)
		return DEVICE_HOOK_FAILED;
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	ip6->hop_limit--;
	count(REASON_DEVICE_OUT);
	return device_xmit(&c->next);
}

/* Gives a packet from a layer-3 device an Ethernet header addressed to the
 * overlay device. */
static __always_inline int device_add_eth(struct __sk_buff *skb)
{
	struct ethhdr eth;

	if (bpf_skb_change_head(skb, ETH_HLEN, 0) < 0)
		return -1;
	overlay_eth(&eth);
	return bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0);
}

/* tc ingress of a device tunnel. Control traffic (link-local, multicast,
 * Babel) and what is not IPv6 go on to the stack: Babel runs on the device
 * itself. */
SEC("tcx/ingress")
int device_ingress(struct __sk_buff *skb)
{
	__u32 ifindex = skb->ifindex;
	__u32 *idp = bpf_map_lookup_elem(&device_tunnels, &ifindex);
	if (!idp || skb->protocol != bpf_htons(ETH_P_IPV6))
		return TCX_NEXT;
	__u32 in = *idp, len = skb->len;
	__u32 want = sizeof(struct ipv6hdr) + sizeof(struct udphdr);
	if ((void *)(long)skb->data + want > (void *)(long)skb->data_end &&
	    bpf_skb_pull_data(skb, len < want ? len : want) < 0)
		return TCX_NEXT;
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ipv6hdr *ip6 = data;
	if ((void *)(ip6 + 1) > end || ip6->version != 6) {
		count(REASON_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	if (is_control(ip6, end)) {
		count(REASON_PASS_CONTROL);
		count_tunnel(in, len, 0);
		return TCX_NEXT;
	}
	count_tunnel(in, len, 0);

	__u32 reason = 0, out = 0;
	struct tunnel *t = 0;
	struct route *r = route_lookup(ip6);
	if (!r) {
		reason = REASON_NO_ROUTE;
	} else if (!(r->flags & ROUTE_F_LOCAL)) {
		out = r->tunnel;
		if (ip6->hop_limit <= 1)
			reason = REASON_HOP_LIMIT;
		else if (!(t = bpf_map_lookup_elem(&tunnels, &out)))
			reason = REASON_NO_ROUTE;
	}

	if (t) {
		/* Transit. The overlay egress program checks the next BPF
		 * tunnel's MTU (and answers Packet Too Big); a device checks
		 * its own. */
		ip6->hop_limit--;
		count(REASON_TRANSIT);
		if (t->type == TUNNEL_DEVICE) {
			count(REASON_DEVICE_OUT);
			count_tunnel(out, len, 1);
			return device_xmit(t);
		}
		if (device_add_eth(skb) < 0) {
			count(REASON_DROP_MALFORMED);
			return TC_ACT_SHOT;
		}
		return bpf_redirect(cfg_overlay_ifindex, 0);
	}
	/* Local delivery, or the slow path: the overlay device's ingress. */
	if (device_add_eth(skb) < 0) {
		count(REASON_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	if (reason) {
		count(reason);
		count(REASON_SLOW_PATH);
	} else {
		count(REASON_DECAP);
	}
	return bpf_redirect(cfg_overlay_ifindex, BPF_F_INGRESS);
}
