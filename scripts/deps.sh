#!/bin/sh
# deps.sh - install the Debian packages sftrace needs to build and test.
#
# Checks first with dpkg and calls apt-get only when something is missing, so
# it is silent and instant on a machine that has everything. `make demo`,
# `make test` and `make bench` run it; pass extra package names as arguments.
set -e
PKGS="make gcc gdb clang libclang-rt-14-dev llvm python3 pkg-config \
      libelf-dev libdw-dev zlib1g-dev libpcre2-dev libiberty-dev libsqlite3-dev sqlite3 $*"
missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
echo "deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
