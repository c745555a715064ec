#!/bin/sh
# Instructions per message of meshtalk's frame codec (64-byte chat text:
# decode from 4 KiB chunks, decode_bytes fed one byte at a time, encode) under
# callgrind: stable on a noisy machine, unlike time. Needs valgrind
# (apt-get install -y valgrind). Usage: benches/callgrind.sh [N]
set -eu
n=${1:-100000}
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install -y valgrind" >&2; exit 1; }
exe=$(cargo bench -p meshtalk-benches --bench insns --no-run 2>&1 |
    sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -n 1)
[ -x "$exe" ] || { echo "could not build the insns bench" >&2; exit 1; }
# Count memcpy as the CPU would run it with the usual thresholds, not as a
# `rep movsb` that callgrind counts as one instruction.
export GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=1000000000
for what in decode decode_bytes encode; do
    log=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        --toggle-collect="*${what}_all*" "$exe" "$what" "$n" 2>&1) ||
        { echo "$log" >&2; echo "the $what run failed" >&2; exit 1; }
    insns=$(echo "$log" | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p')
    [ -n "$insns" ] || { echo "callgrind gave no count for $what" >&2; exit 1; }
    echo "$what: $insns instructions for $n messages: $((insns / n)) per message"
done
