#!/bin/bash
# A static three-node overlay built with re6st-bpf and ip alone:
#
#   A (10.41.1.1) --- (10.41.1.2) B (10.41.2.1) --- (10.41.2.2) C
#   2001:db8:a::1      2001:db8:b::1                2001:db8:c::1
#   10.42.1.1          10.42.2.1                    10.42.3.1   (IPv4 overlay)
#
# IPv4-only veth links; tunnels A<->B and B<->C; A reaches C through B, whose
# data plane forwards the tunnel packets without its kernel's IPv6 stack.
#
# Usage: static-overlay.sh [fou|gre] [tc|xdp|auto]   (root)
# DEMO_KEEP=1 leaves the namespaces up; `static-overlay.sh clean` removes them.
set -euo pipefail
ENCAP=${1:-fou}
HOOK=${2:-auto}
BIN=${RE6ST_BPF:-$(dirname "$0")/../../bin/re6st-bpf}
P=${DEMO_PREFIX:-demo}

clean() {
	for n in a b c; do
		"$BIN" -n "$P$n" down 2>/dev/null || true
		ip netns del "$P$n" 2>/dev/null || true
	done
}
if [ "$ENCAP" = clean ]; then clean; exit 0; fi
clean
[ -n "${DEMO_KEEP:-}" ] || trap clean EXIT

for n in a b c; do ip netns add "$P$n"; ip -n "$P$n" link set lo up; done
ip link add a0 netns "${P}a" type veth peer name b0 netns "${P}b"
ip link add b1 netns "${P}b" type veth peer name c0 netns "${P}c"
ip -n "${P}a" addr add 10.41.1.1/24 dev a0; ip -n "${P}a" link set a0 up
ip -n "${P}b" addr add 10.41.1.2/24 dev b0; ip -n "${P}b" link set b0 up
ip -n "${P}b" addr add 10.41.2.1/24 dev b1; ip -n "${P}b" link set b1 up
ip -n "${P}c" addr add 10.41.2.2/24 dev c0; ip -n "${P}c" link set c0 up

# One data plane per node; the address's /32 is the whole overlay network,
# the IPv4 address's /16 the whole IPv4 overlay.
"$BIN" -n "${P}a" up --underlay a0 --address 2001:db8:a::1/32 --ipv4 10.42.1.1/16 --hook "$HOOK"
"$BIN" -n "${P}b" up --underlay b0 --underlay b1 --address 2001:db8:b::1/32 --ipv4 10.42.2.1/16 --hook "$HOOK"
"$BIN" -n "${P}c" up --underlay c0 --address 2001:db8:c::1/32 --ipv4 10.42.3.1/16 --hook "$HOOK"

KEY=()
[ "$ENCAP" = gre ] && KEY=(--key 7)
"$BIN" -n "${P}a" tunnel add 1 --type "$ENCAP" --local 10.41.1.1 --remote 10.41.1.2 "${KEY[@]}"
"$BIN" -n "${P}b" tunnel add 1 --type "$ENCAP" --local 10.41.1.2 --remote 10.41.1.1 "${KEY[@]}"
"$BIN" -n "${P}b" tunnel add 2 --type "$ENCAP" --local 10.41.2.1 --remote 10.41.2.2 "${KEY[@]}"
"$BIN" -n "${P}c" tunnel add 2 --type "$ENCAP" --local 10.41.2.2 --remote 10.41.2.1 "${KEY[@]}"

"$BIN" -n "${P}a" route add 2001:db8:a::/48 --local
"$BIN" -n "${P}a" route add 2001:db8::/32 --tunnel 1
"$BIN" -n "${P}b" route add 2001:db8:b::/48 --local
"$BIN" -n "${P}b" route add 2001:db8:a::/48 --tunnel 1
"$BIN" -n "${P}b" route add 2001:db8:c::/48 --tunnel 2
"$BIN" -n "${P}c" route add 2001:db8:c::/48 --local
"$BIN" -n "${P}c" route add 2001:db8::/32 --tunnel 2

"$BIN" -n "${P}a" route add 10.42.1.0/24 --local
"$BIN" -n "${P}a" route add 10.42.0.0/16 --tunnel 1
"$BIN" -n "${P}b" route add 10.42.2.0/24 --local
"$BIN" -n "${P}b" route add 10.42.1.0/24 --tunnel 1
"$BIN" -n "${P}b" route add 10.42.3.0/24 --tunnel 2
"$BIN" -n "${P}c" route add 10.42.3.0/24 --local
"$BIN" -n "${P}c" route add 10.42.0.0/16 --tunnel 2

echo "== A pings C over the overlay ($ENCAP, hook $HOOK)"
ip netns exec "${P}a" ping -c 3 -i 0.2 2001:db8:c::1
echo "== traceroute6 from A to C"
ip netns exec "${P}a" traceroute6 -n -q1 -w1 2001:db8:c::1
echo "== A pings C over the IPv4 overlay"
ip netns exec "${P}a" ping -c 3 -i 0.2 10.42.3.1
echo "== traceroute from A to C"
ip netns exec "${P}a" traceroute -n -q1 -w1 10.42.3.1
echo "== B's data plane"
"$BIN" -n "${P}b" status
