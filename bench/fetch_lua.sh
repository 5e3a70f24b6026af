#!/bin/sh
# fetch_lua.sh DIR - unpack Debian's lua5.4 source package into DIR/lua5.4
# (once: a cached tree is reused). `apt-get source` needs a deb-src entry;
# on Debian 12 one is added in /etc/apt/sources.list.d/ when missing.
set -e
DIR=$1
[ -n "$DIR" ] || { echo "usage: fetch_lua.sh DIR" >&2; exit 2; }
if [ -f "$DIR/lua5.4/src/lvm.c" ]; then
    exit 0
fi
mkdir -p "$DIR"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
if ! apt-cache showsrc lua5.4 >/dev/null 2>&1 ||
   [ -z "$(apt-cache showsrc lua5.4 2>/dev/null)" ]; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    if ! grep -rqs '^deb-src\|^Types:.*deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/ ||
       [ -f /etc/apt/sources.list.d/sftrace-bench-deb-src.list ]; then
        # The same Signed-By as the deb entry, or apt refuses the pair.
        key=/usr/share/keyrings/debian-archive-keyring.gpg
        opt=""
        [ -f $key ] && opt="[signed-by=$key] "
        echo "bench: adding deb-src ${opt}http://deb.debian.org/debian $codename main" >&2
        echo "deb-src ${opt}http://deb.debian.org/debian $codename main" |
            $SUDO tee /etc/apt/sources.list.d/sftrace-bench-deb-src.list >/dev/null
    fi
    $SUDO apt-get update -qq >/dev/null
fi
tmp="$DIR/tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
(cd "$tmp" && apt-get source -qq lua5.4 >/dev/null 2>&1) || {
    echo "bench: apt-get source lua5.4 failed" >&2
    rm -rf "$tmp"
    exit 1
}
src=$(ls -d "$tmp"/lua5.4-*/ | head -n 1)
rm -rf "$DIR/lua5.4"
mv "$src" "$DIR/lua5.4"
rm -rf "$tmp"
