/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#pragma once

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "types.h"

_Static_assert(REASON_MAX <= REASON_SLOTS, "more reasons than counter slots");

#ifndef MAX_ROUTES
#define MAX_ROUTES (1 << 20)
#endif
#ifndef MAX_TUNNELS
#define MAX_TUNNELS 4096
#endif

/* Inner destination prefix -> next hop. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_ROUTES);
	__type(key, struct route_key);
	__type(value, struct route);
} routes SEC(".maps");

/* Source-specific default routes (::/0 from <prefix>): inner source prefix
 * -> next hop, consulted when no destination route matches. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, struct route_key);
	__type(value, struct route);
} source_routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, MAX_TUNNELS);
	__type(key, __u32);
	__type(value, struct tunnel);
} tunnels SEC(".maps");

/* Outer source (+ GRE key) of received packets -> tunnel id. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, MAX_TUNNELS);
	__type(key, struct endpoint_key);
	__type(value, __u32);
} endpoints SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, MAX_TUNNELS);
	__type(key, __u32);
	__type(value, struct tunnel_l2);
} tunnel_l2s SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, MAX_TUNNELS);
	__type(key, __u32);
	__type(value, struct tunnel_stats);
} tunnel_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, REASON_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} reason_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, LIMIT_MAX);
	__type(key, __u32);
	__type(value, struct token_bucket);
} limiters SEC(".maps");

/* Inner IPv4 destination prefix -> next hop (ipv4.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_ROUTES);
	__type(key, struct route4_key);
	__type(value, struct route);
} routes4 SEC(".maps");

/* The node's IPv4 address on the overlay (network order), source of the
 * ICMPv4 errors the data plane sends; 0 until userspace sets one. A map,
 * not a load-time constant, so that it changes with the network parameters
 * without reloading the programs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} ipv4_self SEC(".maps");
