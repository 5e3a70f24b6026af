#!/bin/sh
# fetch_xray_arm64.sh DIR - unpack Debian's arm64 build of compiler-rt's XRay
# runtime (libclang-rt-14-dev:arm64) into DIR, once. It is the oracle that
# tests/t_aarch64_oracle.py compares sftrace against: nothing is installed,
# the .deb is only downloaded (apt verifies it against the signed index) and
# unpacked. apt needs the arm64 architecture in its index for that; it is
# added when missing (as root), as the cross tool chain of scripts/deps.sh
# already requires.
set -e
DIR=$1
[ -n "$DIR" ] || { echo "usage: fetch_xray_arm64.sh DIR" >&2; exit 2; }
lib() { find "$DIR" -name libclang_rt.xray-basic-aarch64.a 2>/dev/null | head -n 1; }
[ -n "$(lib)" ] && { dirname "$(lib)"; exit 0; }
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $SUDO dpkg --add-architecture arm64
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
fi
tmp="$DIR/tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
# apt's sandbox user must be able to write where it downloads
chmod 777 "$tmp"
if ! (cd "$tmp" && apt-get download -qq libclang-rt-14-dev:arm64 >/dev/null 2>&1); then
    $SUDO apt-get update -qq >/dev/null 2>&1 || true
    (cd "$tmp" && apt-get download -qq libclang-rt-14-dev:arm64 >/dev/null 2>&1) || {
        echo "fetch_xray_arm64: apt-get download libclang-rt-14-dev:arm64 failed" >&2
        rm -rf "$tmp"
        exit 1
    }
fi
dpkg-deb -x "$tmp"/libclang-rt-14-dev_*_arm64.deb "$DIR"
rm -rf "$tmp"
[ -n "$(lib)" ] || { echo "fetch_xray_arm64: no libclang_rt.xray-basic-aarch64.a in the package" >&2; exit 1; }
dirname "$(lib)"
