#!/bin/sh
# version.sh - print sftrace's version: the VERSION file, plus where the
# sources stand in git when they are a git checkout (`git describe`), e.g.
# 0.1.0 (a tarball), 0.1.0-gcdafdde (no release tag), 0.1.0-3-gcdafdde-dirty
# (3 commits after tag v0.1.0, with uncommitted changes). The Makefile writes
# it into build/gen/version.h; record and the runtime compare it exactly.
cd "$(dirname "$0")/.." || exit 1
# --dirty refreshes the index; never hold its lock against a concurrent git.
export GIT_OPTIONAL_LOCKS=0
base=$(cat VERSION 2>/dev/null || echo 0.0.0)
# Only this tree's own git history (not that of a repository it was
# unpacked into).
top=$(git rev-parse --show-toplevel 2>/dev/null)
if [ "$top" != "$(pwd -P)" ]; then
    echo "$base"
    exit 0
fi
desc=$(git describe --tags --match "v$base" --dirty 2>/dev/null)
if [ -n "$desc" ]; then
    # v0.1.0 or v0.1.0-3-gHASH[-dirty]
    echo "$base${desc#v$base}"
    exit 0
fi
hash=$(git describe --always --dirty --abbrev=7 2>/dev/null)
if [ -n "$hash" ]; then
    echo "$base-g$hash"
else
    echo "$base"
fi
