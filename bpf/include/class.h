/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Traffic classes (TSN, docs/traffic-classes.md): a route names a class;
 * the egress program, and the tcx transit, give the class's packets their
 * priority (or their leaf of the shaper), one of the class's TX queues (by
 * flow hash, so that a flow keeps its queue) and the class's DSCP on the
 * outer IPv4 header. The inner packet, with its own traffic class, is left
 * as it is. Class 0 is "no class": packets go out as they did before
 * classes. */
#pragma once

#include "common.h"

#define MAX_CLASSES 256
/* Queue counters: queues past the last slot are steered but not counted. */
#define MAX_CLASS_QUEUES 64

enum class_flags {
	CLASS_F_SET = 1,    /* the class is configured */
	CLASS_F_SHAPED = 2, /* the underlay has our HTB: priority is its class handle */
};

/* HTB class handles of the shaper (loader/shaper.go): class id's node is
 * 1:(id << 8); its flow leaves 1:(id << 8 | 1 + bucket); unclassed traffic
 * 1:ffff. HTB takes a packet whose skb->priority is one of its leaf handles
 * straight into that leaf. Go reads these from BTF (bpf2go). */
enum shaper {
	SHAPER_MAJOR = 1,
	SHAPER_DEFAULT_MINOR = 0xffff,
};
#define SHAPER_HANDLE(id, leaf) ((SHAPER_MAJOR << 16) | ((id) << 8) | (leaf))
#define MAX_CLASS_FLOWS 65536

struct traffic_class {
	__u32 priority;    /* skb->priority: qdiscs (HTB, mqprio) classify on it */
	__u16 queue_first; /* first TX queue of the underlay device */
	__u16 queue_count; /* 0: leave the queue to the kernel */
	__u8 dscp;         /* outer IPv4 DSCP (0..63) */
	__u8 flags;        /* enum class_flags */
	__u16 pad;
	__u64 rate;        /* bits per second, for the shaper; 0: no limit */
	__u16 buckets;     /* shaper leaves that share the class equally; 0: one */
	__u16 pad2[3];
};

/* A flow of a class, by its hash. */
struct class_flow_key {
	__u32 hash;
	__u32 class;
};

/* Packets and bytes (inner) the egress program classified into a class, and
 * how many of them it then refused (too big for the tunnel, failed
 * encapsulation). */
struct class_stats {
	__u64 packets;
	__u64 bytes;
	__u64 drops;
};

/* Packets and bytes the egress program steered to a TX queue. */
struct queue_stats {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, MAX_CLASSES);
	__type(key, __u32);
	__type(value, struct traffic_class);
} classes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, MAX_CLASSES);
	__type(key, __u32);
	__type(value, struct class_stats);
} class_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, MAX_CLASS_QUEUES);
	__type(key, __u32);
	__type(value, struct queue_stats);
} queue_counters SEC(".maps");

/* Flow -> shaper bucket: each new flow of a class takes the next bucket in
 * turn, so that up to buckets concurrent flows never share one (a hash
 * modulo would pair flows by chance, and a pair gets half a share each). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, MAX_CLASS_FLOWS);
	__type(key, struct class_flow_key);
	__type(value, __u32);
} class_flows SEC(".maps");

/* The next bucket each class gives to a new flow. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__uint(max_entries, MAX_CLASSES);
	__type(key, __u32);
	__type(value, __u32);
} class_next_bucket SEC(".maps");

static __always_inline __u32 class_bucket(__u32 id, __u32 hash, __u32 buckets)
{
	struct class_flow_key k = { .hash = hash, .class = id };
	__u32 *b = bpf_map_lookup_elem(&class_flows, &k);
	if (b)
		return *b % buckets;
	__u32 *next = bpf_map_lookup_elem(&class_next_bucket, &id);
	if (!next)
		return hash % buckets;
	/* Not atomic (the object targets BPF v1, which has no fetch-and-add):
	 * two flows that start at once on two CPUs may share a bucket. */
	__u32 n = (*next)++ % buckets;
	bpf_map_update_elem(&class_flows, &k, &n, BPF_NOEXIST);
	return n;
}

/* The configured class id, counting one packet of inner_len bytes in it;
 * NULL for no class. */
static __always_inline struct traffic_class *class_get(__u8 id, __u32 inner_len)
{
	__u32 key = id;
	if (!id)
		return NULL;
	struct traffic_class *c = bpf_map_lookup_elem(&classes, &key);
	if (!c || !(c->flags & CLASS_F_SET))
		return NULL;
	struct class_stats *s = bpf_map_lookup_elem(&class_counters, &key);
	if (s) {
		s->packets++;
		s->bytes += inner_len;
	}
	return c;
}

/* Applies class id to a packet about to be encapsulated (inner_len bytes of
 * IPv6): priority and TX queue on the skb, counters. Returns the outer TOS byte (DSCP, ECN 0) for
 * class_outer_tos.
 *
 * The queue survives the redirect this way: bpf_redirect_neigh hands the
 * packet to the underlay device's dev_queue_xmit, which picks the TX queue
 * after its own egress hook. With no XPS map and no ndo_select_queue (veth,
 * and NICs whose driver sets no XPS), the pick (skb_tx_hash) takes a
 * recorded queue_mapping as "received on queue_mapping - 1" and maps it to
 * that TX queue, so the program records queue + 1. A socket that the pick
 * then remembers the queue for keeps the same one, as its flow hashes the
 * same. Where XPS is configured (xps_cpus or xps_rxqs of the underlay's TX
 * queues) or the driver selects queues itself, the kernel's choice wins:
 * docs/traffic-classes.md says how to check and clear it. */
static __always_inline __u8 class_steer(struct __sk_buff *skb, __u8 id, __u32 inner_len)
{
	__u32 key = id;
	struct traffic_class *c = class_get(id, inner_len);
	if (!c)
		return 0;
	__u32 hash = bpf_get_hash_recalc(skb);
	if (c->flags & CLASS_F_SHAPED)
		skb->priority = SHAPER_HANDLE(key, c->buckets ? 1 + class_bucket(key, hash, c->buckets) : 0);
	else
		skb->priority = c->priority;
	if (c->queue_count) {
		__u32 q = c->queue_first + hash % c->queue_count;
		skb->queue_mapping = q + 1;
		struct queue_stats *qs = bpf_map_lookup_elem(&queue_counters, &q);
		if (qs) {
			qs->packets++;
			qs->bytes += inner_len;
		}
	}
	return c->dscp << 2;
}

/* Counts a packet of class id that the egress program refused after
 * class_steer. */
static __always_inline void class_drop(__u8 id)
{
	__u32 key = id;
	struct class_stats *s;

	if (id && (s = bpf_map_lookup_elem(&class_counters, &key)))
		s->drops++;
}

/* Writes the class's TOS byte into the outer IPv4 header outer_build made. */
static __always_inline void class_outer_tos(struct iphdr *ip, __u8 tos)
{
	if (!tos)
		return;
	ip->tos = tos;
	ipv4_set_csum(ip);
}

/* Applies class id to a transit packet whose outer headers the tcx transit
 * has just rewritten for the next tunnel: the same as for an encapsulated
 * one (priority, queue, counters, outer DSCP). */
static __always_inline void class_transit(struct __sk_buff *skb, __u8 id, __u32 inner_len)
{
	__u8 tos = class_steer(skb, id, inner_len);
	struct iphdr *ip = (void *)(long)skb->data + ETH_HLEN;

	if ((void *)(ip + 1) <= (void *)(long)skb->data_end)
		class_outer_tos(ip, tos);
}

/* The XDP transit's part of class id: counters and the outer DSCP of the
 * frame whose outer headers it has just rewritten. XDP has no skb to carry
 * a priority or a queue. */
static __always_inline void class_xdp_transit(void *data, void *end, __u8 id, __u32 inner_len)
{
	struct traffic_class *c = class_get(id, inner_len);
	struct iphdr *ip = data + ETH_HLEN;

	if (c && (void *)(ip + 1) <= end)
		class_outer_tos(ip, c->dscp << 2);
}
