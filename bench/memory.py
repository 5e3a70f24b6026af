#!/usr/bin/env python3
"""memory.py - the speed and memory of `sftrace memory` (docs/benchmarks.md,
section "sftrace memory").

Builds bench/mem_workload.c (two threads reporting allocation events through
sftrace_alloc_event from two instrumented functions: every allocation event
comes with one function entry and one exit), records N allocation events
with a small live set (a ring of 4,096 blocks per thread: the blocks stay in
the cache) and a large one (65,536 per thread: 131,072 live blocks, a table
of 16 MB, every lookup a cache miss), and runs `sftrace memory -q` on each
log REPS times; and a third log where the events come straight from the
threads' loops (no call per event: the heap model's own speed shows). Each
log is read with the heap model in its own thread (`-j 2`, the default on
a machine with 2 or more CPUs) and in the reader's (`-j 1`), the two runs
interleaved. Prints, per log and variant: the median wall time, the median
CPU time (user + sys of the child, both threads), allocation events per
second of each, and the peak RSS. On a shared machine the CPU-time rate is
the steadier figure, but the goal is wall time: the 1-minute load average
is printed before and after each log (above 1, the second thread competes
for a core). No assertions on timing.

    python3 bench/memory.py [N] [REPS]      (default 10,000,000 and 5)
"""
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "build", "bench", "memory")
SFTRACE = os.path.join(ROOT, "build", "sftrace")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def measure(cmd):
    """Wall time, CPU time (user + sys) and peak RSS (KB) of one run of cmd."""
    t = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        sys.exit("%s failed (%d)" % (" ".join(cmd), p.returncode))
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    os.makedirs(OUT, exist_ok=True)
    exe = os.path.join(OUT, "mem_workload")
    run(["clang", "-O2", "-g", "-fxray-instrument", "-fxray-instruction-threshold=1",
         "-I" + os.path.join(ROOT, "include"), os.path.join(ROOT, "bench", "mem_workload.c"),
         "-o", exe, "-L" + os.path.join(ROOT, "build"), "-lsftrace",
         "-Wl,-rpath," + os.path.join(ROOT, "build"), "-lpthread"])
    print("machine: %s, %d CPUs, %s; %s" % (platform.processor() or platform.machine(),
                                             os.cpu_count(), platform.node(),
                                             time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    for ring, direct in ((4096, 0), (65536, 0), (4096, 1)):
        log = os.path.join(OUT, "mem_%d_%d.log" % (ring, direct))
        if os.path.exists(log):
            os.unlink(log)
        run([SFTRACE, "record", "-o", log, "--", exe, str(n), str(ring), str(direct)])
        p = run([SFTRACE, "memory", "-q", "--format", "csv", log])
        alloc_events = sum(int(r.split(",")[-1]) for r in p.stdout.splitlines()
                           if r.startswith("total,") and r.split(",")[5] in ("allocs", "frees"))
        size = os.path.getsize(log)
        variants = (("-j 2", ["-j", "2"]), ("-j 1", ["-j", "1"]))
        walls = {v: [] for v, _ in variants}
        cpus = {v: [] for v, _ in variants}
        rss = {v: 0 for v, _ in variants}
        load0 = os.getloadavg()[0]
        for _ in range(reps):
            for v, args in variants:
                w, c, r = measure([SFTRACE, "memory", "-q"] + args + [log])
                walls[v].append(w)
                cpus[v].append(c)
                rss[v] = max(rss[v], r)
        print("live set %6d blocks/thread, %s: %s alloc events, log %.0f MB; load %.2f .. %.2f"
              % (ring, "no call per event" if direct else "a call (entry + exit) per event",
                 f"{alloc_events:,}", size / 1e6, load0, os.getloadavg()[0]))
        for v, _ in variants:
            mw, mc = statistics.median(walls[v]), statistics.median(cpus[v])
            print("  %s: wall %.2f s (min %.2f max %.2f) = %.1fM alloc events/s; CPU %.2f s "
                  "(min %.2f max %.2f) = %.1fM/s; peak RSS %.0f MB"
                  % (v, mw, min(walls[v]), max(walls[v]), alloc_events / mw / 1e6, mc,
                     min(cpus[v]), max(cpus[v]), alloc_events / mc / 1e6, rss[v] / 1024))
        os.unlink(log)


if __name__ == "__main__":
    main()
