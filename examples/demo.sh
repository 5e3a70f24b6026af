#!/bin/sh
# demo.sh - `make demo`: build the bundled example with XRay instrumentation,
# record it, show a short excerpt of the dump, the time per function and
# the calling-context tree, and write a flame graph and a Perfetto trace.
set -e
B=build/demo
mkdir -p $B
clang -O2 -g -fxray-instrument -fxray-instruction-threshold=1 -pthread \
    examples/demo.c -o $B/demo
echo "== sftrace record -o $B/sf.log -- $B/demo"
build/sftrace record -o $B/sf.log -- $B/demo
echo
echo "== sftrace dump $B/sf.log | head -n 12"
build/sftrace dump $B/sf.log | head -n 12
echo "   ... ($(build/sftrace dump $B/sf.log | wc -l) lines)"
echo
echo "== sftrace report $B/sf.log --limit 8"
build/sftrace report -q --limit 8 $B/sf.log
echo
echo "== sftrace graph $B/sf.log -D 3"
build/sftrace graph -q -D 3 $B/sf.log | head -n 16
echo
build/sftrace flame -q $B/sf.log -o $B/flame.svg
echo "== flame graph: $B/flame.svg (open it in a browser: click to zoom, Ctrl-F to search)"
if build/sftrace convert $B/sf.log -o $B/sf.pb.gz -q 2>/dev/null; then
    echo "== Perfetto trace: $B/sf.pb.gz"
    echo "   open it at https://ui.perfetto.dev (Open trace file), or:"
    echo "   vizviewer --use_external_processor $B/sf.pb.gz"
fi
echo "== log: $B/sf.log"
