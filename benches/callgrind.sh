#!/bin/sh
# Instructions per message of meshtalk's workloads (64-byte text) under
# callgrind: stable on a noisy machine, unlike time. Needs valgrind
# (apt-get install -y valgrind).
#
# Usage: benches/callgrind.sh [N] [WORKLOAD ...]
#   N         messages per workload (default: 100000, 10000 for node_broadcast)
#   WORKLOAD  any of those below (default: all of them, in this order)
#
#   decode                     chat frames, meshtalk's decoder, 4 KiB chunks
#   decode_bytes               the same, fed one byte at a time
#   encode                     chat frames, meshtalk's encoder
#   decode_postcard            chat frames, bodies by postcard (core::str UTF-8)
#   decode_broadcast           room messages (name alice, 64-bit origin), meshtalk's decoder
#   decode_broadcast_postcard  the same, bodies by postcard
#   node_unicast               the host's node: a native peer's chat, shown and acked
#   node_broadcast             the node: a room message from one of 100 native peers, relayed to 99
#   node_hub_text              a hub: a text peer's line relayed to 8 native peers and 1 text peer
#
# Each workload is described in benches/benches/insns.rs; only its measured
# function (`<workload>_all`) is counted, not building its input.
set -eu
n=
case ${1:-} in
[0-9]*) n=$1; shift ;;
esac
[ $# -gt 0 ] || set -- decode decode_bytes encode decode_postcard decode_broadcast \
    decode_broadcast_postcard node_unicast node_broadcast node_hub_text
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install -y valgrind" >&2; exit 1; }
exe=$(cargo bench -p meshtalk-benches --bench insns --no-run 2>&1 |
    sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -n 1)
[ -x "$exe" ] || { echo "could not build the insns bench" >&2; exit 1; }
# Count memcpy as the CPU would run it with the usual thresholds, not as a
# `rep movsb` that callgrind counts as one instruction.
export GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=1000000000
for what in "$@"; do
    count=${n:-100000}
    [ -n "$n" ] || [ "$what" != node_broadcast ] || count=10000
    log=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        --toggle-collect="*::${what}_all" "$exe" "$what" "$count" 2>&1) ||
        { echo "$log" >&2; echo "the $what run failed" >&2; exit 1; }
    insns=$(echo "$log" | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p')
    msgs=$(echo "$log" | sed -n "s/^$what: \([0-9]*\) messages$/\1/p")
    [ -n "$insns" ] && [ "$insns" -gt 0 ] || { echo "callgrind gave no count for $what" >&2; exit 1; }
    [ -n "$msgs" ] || { echo "$log" >&2; echo "insns did not say how many messages $what did" >&2; exit 1; }
    echo "$what: $insns instructions for $msgs messages: $((insns / msgs)) per message"
done
