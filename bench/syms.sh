#!/bin/sh
# syms.sh - the symbolizer benchmark (issue 10): names and source lines of
# every function of one-CU C programs (2k..32k functions) and 100k-function
# Rust objects, new code against the old (commit cdafdde). Never in CI.
# Results: build/bench/syms/results.md (see bench/syms.py, docs/benchmarks.md).
set -e
cd "$(dirname "$0")/.."
make -s all
exec python3 bench/syms.py "$@"
