#!/bin/sh
# viewer-deps.sh - what the viewer checks (tests/t_viewers.py) need: Debian's
# chromium, and from the npm registry speedscope and playwright-core at the
# versions pinned in tests/viewers/package.json, installed into
# build/viewers/node_modules (never the source tree).
#
# Optional and cached: `make test` runs it; it is silent when everything is
# there. When something cannot be had (no apt, no npm, no network) it says so
# on stderr, writes the reason to build/viewers/unavailable and exits 0, so
# the rest of the suite runs and t_viewers.py skips with that reason.
# SFTRACE_NO_VIEWERS=1 skips the viewer checks on purpose.
cd "$(dirname "$0")/.." || exit 0
B=${BUILD:-build}/viewers
mkdir -p "$B"
rm -f "$B/unavailable"
unavailable() {
    echo "viewer-deps: $*; the viewer checks will be skipped" >&2
    echo "$*" >"$B/unavailable"
    exit 0
}
[ -n "$SFTRACE_NO_VIEWERS" ] && unavailable "SFTRACE_NO_VIEWERS is set"

if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "viewer-deps: installing chromium" >&2
    export DEBIAN_FRONTEND=noninteractive
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium; } \
        >"$B/apt.log" 2>&1 || unavailable "apt-get install chromium failed (see $B/apt.log)"
fi

command -v npm >/dev/null 2>&1 || unavailable "npm not found (Debian package npm)"
# Reinstall only when the pinned versions change.
if ! cmp -s tests/viewers/package.json "$B/package.json" ||
    [ ! -f "$B/node_modules/speedscope/package.json" ] ||
    [ ! -f "$B/node_modules/playwright-core/package.json" ]; then
    echo "viewer-deps: npm install speedscope playwright-core into $B" >&2
    cp tests/viewers/package.json "$B/package.json"
    (cd "$B" && npm install --no-audit --no-fund --no-package-lock --ignore-scripts \
        --loglevel=error) >"$B/npm.log" 2>&1 ||
        { rm -f "$B/package.json"; unavailable "npm install failed (see $B/npm.log)"; }
fi
exit 0
