#!/usr/bin/env python3
"""run.py - the sftrace test runner.

First checks that build/ holds the tools and runtime, of one version.
Imports every tests/t_*.py, runs each function named test_* in it, and ends
with one line: `N passed, N failed` (`, N skipped` when a test was skipped,
after a line per skip saying why). Arguments filter tests by substring.
A test fails by raising; it skips by raising tl.Skip("reason").
"""
import importlib
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tl  # noqa: E402


def preflight():
    """The suite tests the build in build/: say what to do when it is missing
    or when its parts are of different versions (one was rebuilt without the
    other), instead of failing tests one by one."""
    import subprocess
    hint = "build first: make -j2 all build/asan/sftrace (make test does both)"
    for path in (tl.SFTRACE, tl.RUNTIME):
        if not os.path.exists(path):
            return "%s is missing; %s" % (path, hint)
    versions = {}
    for path in (tl.SFTRACE, tl.SFTRACE_ASAN):
        if os.path.exists(path):
            p = subprocess.run([path, "--version"], capture_output=True, text=True)
            versions[path] = p.stdout.split("\n", 1)[0]
    if len(set(versions.values())) > 1:
        return "the builds differ (%s); %s" % (
            ", ".join("%s: %s" % kv for kv in sorted(versions.items())), hint)
    # record's own check of the runtime's version note
    p = subprocess.run([tl.SFTRACE, "record", "--solib", tl.RUNTIME, "--print-solib"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return "%s%s" % (p.stderr, hint)
    return None


def main():
    filters = sys.argv[1:]
    why = preflight()
    if why:
        print("run.py: " + why)
        return 2
    mods = sorted(f[:-3] for f in os.listdir(HERE) if f.startswith("t_") and f.endswith(".py"))
    passed = failed = 0
    skips = []
    failures = []
    for name in mods:
        mod = importlib.import_module(name)
        for attr in sorted(dir(mod)):
            fn = getattr(mod, attr)
            if not (attr.startswith("test_") and callable(fn)):
                continue
            full = "%s.%s" % (name, attr)
            if filters and not any(f in full for f in filters):
                continue
            t0 = time.time()
            try:
                fn()
            except tl.Skip as e:
                skips.append((full, str(e)))
                print("SKIP %s: %s" % (full, e), flush=True)
                continue
            except Exception:
                failed += 1
                failures.append(full)
                print("FAIL %s (%.1fs)" % (full, time.time() - t0))
                print("    " + traceback.format_exc().replace("\n", "\n    "), flush=True)
                continue
            passed += 1
            print("ok   %s (%.1fs)" % (full, time.time() - t0), flush=True)
    if failures:
        print("failed: " + " ".join(failures))
    for full, why in skips:
        print("skipped %s: %s" % (full, why))
    line = "%d passed, %d failed" % (passed, failed)
    if skips:
        line += ", %d skipped" % len(skips)
    print(line)
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
