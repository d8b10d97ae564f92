/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A border gateway's native routes: destinations outside the overlay,
 * learned from BGP (routing/bgp, written by routing/fib), each with its
 * upstream next hop and interface.
 *   - overlay -> internet: an underlay packet whose inner destination has
 *     no overlay route but a native one is decapsulated, its hop limit
 *     decremented, and sent to the upstream next hop (underlay_run's
 *     V_NATIVE, tc_native_out in datapath.c);
 *   - internet -> overlay: native_ingress (datapath.c), at the tc ingress
 *     of an upstream interface, encapsulates a packet for an overlay
 *     destination into the tunnel of its route.
 * What the fast path cannot finish (hop limit, MTU, no tunnel) is left to
 * the kernel, as the slow path of the tunnels is. */
#pragma once

#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_ROUTES);
	__type(key, struct route_key);
	__type(value, struct native_route);
} native_routes SEC(".maps");

/* Upstream interface -> packets and bytes: rx from the internet into the
 * overlay, tx from the overlay to the internet. Made by the first packet. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct tunnel_stats);
} native_counters SEC(".maps");

static __always_inline struct native_route *native_lookup(const struct ipv6hdr *ip6)
{
	struct route_key k = { .prefixlen = 128 };

	__builtin_memcpy(k.addr, &ip6->daddr, 16);
	return bpf_map_lookup_elem(&native_routes, &k);
}

static __always_inline void count_native(__u32 ifindex, __u64 bytes, int tx)
{
	struct tunnel_stats *s = bpf_map_lookup_elem(&native_counters, &ifindex);
	if (!s) {
		struct tunnel_stats zero = {};
		bpf_map_update_elem(&native_counters, &ifindex, &zero, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&native_counters, &ifindex);
		if (!s)
			return;
	}
	stats_add(s, bytes, tx);
}
