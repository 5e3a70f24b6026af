#!/bin/sh
# pack.sh - the packer benchmark (not part of `make bench`): bytes per event
# and packing instructions per event, encoding 1 (old) against encoding 2,
# on three workloads recorded with SFTRACE_RAW=1 (so their EVENTS chunks are
# the trampoline's raw buffers), packed by bench/packbench.c:
#   few     bench/workload.c, 2 threads x 2000 iterations (4 functions)
#   many    4,096 functions in a pseudo-random order, 2 threads x 1.5M steps
#   rspack  100k functions, skewed call trees (bench/gen_calls.py), 2 x 150k
# Instructions come from callgrind (deterministic, unlike time on a shared
# machine), counting only pack_chunk(). Needs `make all` and valgrind.
# Prints one line per workload and encoding; results in build/bench/pack/.
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh valgrind bc
D=build/bench/pack
mkdir -p $D
XRAY="-fxray-instrument -fxray-instruction-threshold=1"
[ -x $D/workload ] || clang -O2 -g $XRAY -pthread bench/workload.c -o $D/workload
if [ ! -x $D/many ]; then
    python3 bench/gen_calls.py many $D
    clang -O2 -g $XRAY -pthread $D/many.c -o $D/many
fi
if [ ! -x $D/rspack ]; then
    python3 bench/gen_calls.py rspack $D
    for f in $D/rspack_*.c; do echo "$f"; done |
        xargs -P2 -I{} sh -c 'clang -O1 '"$XRAY"' -c {} -o ${0%.c}.o' {}
    clang $XRAY -pthread $D/rspack_*.o -o $D/rspack
fi
cc -std=gnu11 -O2 -g -Icommon bench/packbench.c -o $D/packbench
rec() { [ -s $D/$1.raw.sft ] || SFTRACE_RAW=1 build/sftrace record -o $D/$1.raw.sft -- $D/$2 $3 $4 >/dev/null; }
rec few workload 2 2000
rec many many 2 1500000
rec rspack rspack 2 150000
for w in few many rspack; do
    for e in 1 2; do
        line=$($D/packbench -e $e $D/$w.raw.sft)
        valgrind --tool=callgrind --toggle-collect=pack_chunk --callgrind-out-file=$D/cg.$w.$e \
            $D/packbench -e $e $D/$w.raw.sft >/dev/null 2>&1
        ir=$(callgrind_annotate $D/cg.$w.$e 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
        ev=$(echo "$line" | sed 's/.*events=\([0-9]*\).*/\1/')
        echo "$w $line instructions=$ir instructions_per_event=$(echo "scale=2; $ir / $ev" | bc)"
    done
done
