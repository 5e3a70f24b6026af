#!/bin/sh
# version.sh - print sftrace's version: the VERSION file, plus where the
# sources stand in git when they are a git checkout (`git describe`), e.g.
# 0.1.0 (a tarball), 0.1.0-gcdafdde (no release tag), 0.1.0-3-gcdafdde-dirty
# (3 commits after tag v0.1.0, with uncommitted changes). The Makefile writes
# it into build/gen/version.h; record and the runtime compare it exactly.
cd "$(dirname "$0")/.." || exit 1
here=$(pwd -P)
base=$(cat VERSION 2>/dev/null || echo 0.0.0)
# Only this tree's own git history (not that of a repository it was unpacked
# into). Naming the git directory also keeps `sudo make install` in a tree
# of another user working: git refuses to discover such a repository
# ("dubious ownership"), and the version, so the build, would change.
if [ -d .git ]; then
    gitdir=.git
elif [ -f .git ]; then
    gitdir=$(sed -n 's/^gitdir: //p' .git) # a worktree
else
    echo "$base"
    exit 0
fi
case $gitdir in /*) ;; *) gitdir="$here/$gitdir" ;; esac
# --dirty refreshes the index; never write it (or hold its lock).
g() { GIT_DIR="$gitdir" GIT_WORK_TREE="$here" GIT_OPTIONAL_LOCKS=0 git "$@"; }
desc=$(g describe --tags --match "v$base" --dirty 2>/dev/null)
if [ -n "$desc" ]; then
    # v0.1.0 or v0.1.0-3-gHASH[-dirty]
    echo "$base${desc#v$base}"
    exit 0
fi
hash=$(g describe --always --dirty --abbrev=7 2>/dev/null)
if [ -n "$hash" ]; then
    echo "$base-g$hash"
else
    echo "$base"
fi
