/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Load-time configuration, written by the loader before the programs are
 * loaded (cilium/ebpf VariableSpec.Set). */
#pragma once

#include <linux/types.h>

volatile const __u16 cfg_fou_port = 0;           /* network order */
volatile const __u32 cfg_overlay_ifindex = 0;    /* re6st0 */
volatile const __u32 cfg_overlay_peer_ifindex = 0; /* re6st0p, XDP decap target */
volatile const __u8 cfg_overlay_mac[6] = {};
volatile const __u8 cfg_node_addr[16] = {};       /* source of ICMPv6 errors */
volatile const __u32 cfg_unknown_peer_pps = 100;
volatile const __u32 cfg_icmp_pps = 100;
/* Tests only: tc_native_out decapsulates as on kernels before 6.3, which
 * refuse adjust_room's DECAP_L3_IPV6 flag (this one has it). */
volatile const __u8 cfg_decap_compat = 0;

