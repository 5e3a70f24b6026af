#!/bin/sh
# demo.sh - `make demo`: build the bundled example with XRay instrumentation,
# record it, show a short excerpt of the dump, and convert it for Perfetto.
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
if build/sftrace convert $B/sf.log -o $B/sf.pb.gz -q 2>/dev/null; then
    echo "== Perfetto trace: $B/sf.pb.gz"
    echo "   open it at https://ui.perfetto.dev (Open trace file), or:"
    echo "   vizviewer --use_external_processor $B/sf.pb.gz"
fi
echo "== log: $B/sf.log"
