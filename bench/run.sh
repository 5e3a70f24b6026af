#!/bin/sh
# run.sh - `make bench` (after `make deps all`): install the anchors'
# packages when missing (uftrace; dpkg-dev for `apt-get source`; nodejs, node
# and its headers, for the rspack section's addon; llvm for
# llvm-xray is in scripts/deps.sh already), then run the suite. Never in CI.
# Results: build/bench/results.json and build/bench/results.md.
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh uftrace dpkg-dev binutils time nodejs
exec python3 bench/bench.py "$@"
