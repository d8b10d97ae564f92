/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Device tunnels: a tunnel that is a network device instead of outer
 * headers written here. Its tunnel entry has type TUNNEL_DEVICE and the
 * device's ifindex.
 *   - A layer-3 device (TUN, WireGuard): a route into it redirects the
 *     inner packet to the device, from the overlay egress program, and
 *     from an underlay (transit) after the outer headers are stripped.
 *   - A layer-2 device (an OpenVPN TAP) has flag TUNNEL_F_NEIGH and one
 *     tunnel per neighbour on it (an OpenVPN server's TAP device has one
 *     per client): its IPv6 next hop (Babel's, link-local) is in
 *     device_nexthops, and the packet goes with bpf_redirect_neigh, the
 *     kernel resolving the neighbour's MAC.
 *   - What comes out of the device is routed by device_ingress (tc ingress
 *     of a layer-3 device) or device_l2_ingress (of a layer-2 one) like
 *     decapsulated traffic: local delivery into the overlay device's
 *     ingress, transit into another device directly, or into a BPF tunnel
 *     through the overlay device's egress program, which encapsulates it;
 *     the slow path goes to the overlay device's ingress, as for the other
 *     tunnels. On a layer-2 device the tunnel a packet came from is the
 *     one whose neighbour has its Ethernet source (device_macs, learnt
 *     from the neighbour's control traffic, Babel's Hellos). */
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

/* Layer-2 device tunnel id -> its neighbour's IPv6 address. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, MAX_TUNNELS);
	__type(key, __u32);
	__type(value, struct device_nexthop);
} device_nexthops SEC(".maps");

/* (layer-2 device, neighbour's IPv6 address) -> tunnel id, written with
 * the tunnel. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, MAX_TUNNELS);
	__type(key, struct device_neighbour);
	__type(value, __u32);
} device_neighbours SEC(".maps");

/* (layer-2 device, neighbour's MAC) -> tunnel id, learnt by
 * device_l2_ingress from the neighbour's control traffic. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, MAX_TUNNELS);
	__type(key, struct device_mac);
	__type(value, __u32);
} device_macs SEC(".maps");

/* Sends an inner packet into device tunnel t. For a layer-3 device the
 * kernel strips the Ethernet header itself (bpf_redirect to a device
 * without link layer). */
static __always_inline long device_xmit(const struct tunnel *t)
{
	return bpf_redirect(t->ifindex, 0);
}

/* Sends an inner packet, with an Ethernet header whose destination is
 * unicast, into device tunnel t of id: a layer-3 device's as device_xmit,
 * a layer-2 one's to its neighbour, whose MAC the kernel resolves. */
static __always_inline long device_send(const struct tunnel *t, __u32 id)
{
	if (!(t->flags & TUNNEL_F_NEIGH))
		return device_xmit(t);
	struct device_nexthop *n = bpf_map_lookup_elem(&device_nexthops, &id);
	if (!n)
		return TC_ACT_SHOT;
	struct bpf_redir_neigh nh = { .nh_family = 10 /* AF_INET6 */ };
	__builtin_memcpy(nh.ipv6_nh, n->addr, sizeof(nh.ipv6_nh));
	return bpf_redirect_neigh(t->ifindex, &nh, sizeof(nh), 0);
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
	return device_send(&c->next, c->out_tunnel);
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

/* Gives a packet from a layer-2 device the overlay device's Ethernet
 * addresses in place of its own. */
static __always_inline int device_set_eth(struct __sk_buff *skb)
{
	struct ethhdr eth;

	overlay_eth(&eth);
	return bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0);
}

/* Routes an IPv6 packet (not control traffic) that came out of device
 * tunnel in (0: not known yet), len bytes from its IPv6 header on: l2 says
 * whether it has an Ethernet header already (a layer-2 device's). */
static __always_inline int device_route(struct __sk_buff *skb, struct ipv6hdr *ip6, __u32 in, __u32 len, const bool l2)
{
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
			/* bpf_redirect_neigh wants an Ethernet header. */
			if (!l2 && (t->flags & TUNNEL_F_NEIGH) && device_add_eth(skb) < 0) {
				count(REASON_DROP_MALFORMED);
				return TC_ACT_SHOT;
			}
			count(REASON_DEVICE_OUT);
			count_tunnel(out, len, 1);
			return device_send(t, out);
		}
		if ((l2 ? device_set_eth(skb) : device_add_eth(skb)) < 0) {
			count(REASON_DROP_MALFORMED);
			return TC_ACT_SHOT;
		}
		return bpf_redirect(cfg_overlay_ifindex, 0);
	}
	/* Local delivery, or the slow path: the overlay device's ingress. */
	if ((l2 ? device_set_eth(skb) : device_add_eth(skb)) < 0) {
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
	return device_route(skb, ip6, in, len, false);
}

/* The tunnel of the neighbour whose control packet this is, learning its
 * Ethernet source; 0 when the packet is not from a neighbour of ours. */
static __always_inline __u32 device_learn(__u32 ifindex, const struct ethhdr *eth, const struct ipv6hdr *ip6)
{
	struct device_neighbour nk = { .ifindex = ifindex };
	__builtin_memcpy(nk.addr, &ip6->saddr, sizeof(nk.addr));
	__u32 *idp = bpf_map_lookup_elem(&device_neighbours, &nk);
	if (!idp)
		return 0;
	__u32 id = *idp;
	struct device_mac mk = { .ifindex = ifindex };
	__builtin_memcpy(mk.mac, eth->h_source, ETH_ALEN);
	__u32 *known = bpf_map_lookup_elem(&device_macs, &mk);
	if (!known || *known != id)
		bpf_map_update_elem(&device_macs, &mk, &id, BPF_ANY);
	return id;
}

/* tc ingress of a layer-2 device tunnel's device (an OpenVPN TAP). As
 * device_ingress, with the Ethernet header the device gave: control traffic
 * (link-local, multicast, Babel, neighbour discovery) and what is not IPv6
 * go on to the stack, where Babel runs on the device. A packet from a MAC
 * not learnt yet (no control packet from its neighbour so far) goes on to
 * the stack too, which routes it: the slow path. */
SEC("tcx/ingress")
int device_l2_ingress(struct __sk_buff *skb)
{
	/* Frames for another host, multicast ones: the stack's. */
	if (skb->protocol != bpf_htons(ETH_P_IPV6) || skb->pkt_type != 0 /* PACKET_HOST */)
		return TCX_NEXT;
	__u32 ifindex = skb->ifindex, len = skb->len;
	__u32 want = ETH_HLEN + sizeof(struct ipv6hdr) + sizeof(struct udphdr);
	if ((void *)(long)skb->data + want > (void *)(long)skb->data_end &&
	    bpf_skb_pull_data(skb, len < want ? len : want) < 0)
		return TCX_NEXT;
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = (void *)(eth + 1);
	if ((void *)(ip6 + 1) > end || ip6->version != 6) {
		count(REASON_DROP_MALFORMED);
		return TC_ACT_SHOT;
	}
	len -= ETH_HLEN;
	if (is_control(ip6, end)) {
		count(REASON_PASS_CONTROL);
		count_tunnel(device_learn(ifindex, eth, ip6), len, 0);
		return TCX_NEXT;
	}
	struct device_mac mk = { .ifindex = ifindex };
	__builtin_memcpy(mk.mac, eth->h_source, ETH_ALEN);
	__u32 *idp = bpf_map_lookup_elem(&device_macs, &mk);
	if (!idp) {
		count(REASON_PASS_UNKNOWN_PEER);
		return TCX_NEXT;
	}
	return device_route(skb, ip6, *idp, len, true);
}
