// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* The benchmark's transit-ceiling sink: attached at XDP on the last node's
 * underlay interface, it counts every frame and drops it, so that the rate
 * measured is what the nodes before it forward, not what the last node's
 * stack can take in. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "Dual BSD/GPL";

/* Frames seen, per CPU (no atomic on the hot path). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sink_count SEC(".maps");

SEC("xdp")
int sink_drop(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *n = bpf_map_lookup_elem(&sink_count, &key);

	if (n)
		(*n)++;
	return XDP_DROP;
}
