#!/bin/sh
# deps.sh - install the Debian packages sftrace needs to build and test.
#
# Checks first with one dpkg-query and calls apt-get only when something is
# missing, so it is silent and instant on a machine that has everything.
# `make` (every build), `make demo`, `make test` and `make bench` run it;
# pass extra package names as arguments. `make NODEPS=1` skips it (for
# packagers and non-Debian systems, which get the list of what to install).
set -e
PKGS="make gcc gdb clang libclang-rt-14-dev llvm python3 pkg-config \
      libelf-dev libdw-dev zlib1g-dev libpcre2-dev libiberty-dev libsqlite3-dev sqlite3 \
      librust-rayon-dev librust-tokio-dev $*"

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps: not a Debian system; install the equivalents of:" $PKGS >&2
    echo "deps: (then build with make NODEPS=1 to skip this check)" >&2
    exit 0
fi
# Missing packages are listed too (status "unknown ok not-installed" or an
# error line on stderr), so compare with the list of installed ones.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' $PKGS 2>/dev/null |
            awk '/ install ok installed$/ {print $1}')
missing=""
for p in $PKGS; do
    case " $(echo $installed) " in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
# The aarch64 part of the tests (tests/t_aarch64*.py, under qemu-user; gdb-multiarch
# for t_aarch64_unwind): wanted,
# not required; where they cannot be had the test says so and skips.
CROSS="gcc-aarch64-linux-gnu libc6-dev-arm64-cross libstdc++-12-dev-arm64-cross qemu-user-static gdb-multiarch"
if [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ]; then
    for p in $CROSS; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q ' installed$' ||
            optional="$optional $p"
    done
fi
[ -z "$missing" ] && [ -z "$optional" ] && exit 0
echo "deps: installing:$missing$optional" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "deps: not root and no sudo; as root, run: apt-get install$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
if [ -n "$missing" ] && ! { $SUDO apt-get update -qq >/dev/null &&
       $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null; }; then
    echo "deps: could not install the packages; run: apt-get install$missing" >&2
    exit 1
fi
if [ -n "$optional" ]; then
    { [ -n "$missing" ] || $SUDO apt-get update -qq >/dev/null; } &&
        $SUDO apt-get install -y -qq --no-install-recommends $optional >/dev/null ||
        echo "deps: could not install$optional (the aarch64 tests will be skipped)" >&2
fi
