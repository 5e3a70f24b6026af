#!/usr/bin/env python3
"""analysis.py - speed and memory of `sftrace report` (and graph, flame,
info) against `llvm-xray account` and `uftrace report` on the same program.

    python3 bench/analysis.py            (after `make all`; BENCH_REPS=N, default 5)

bench/workload.c (2 threads) is recorded once per tool: sftrace record;
compiler-rt's XRay basic mode (XRAY_OPTIONS="patch_premain=true
xray_mode=xray-basic" and func_duration_threshold_us=0, the runtime linked
by -fxray-instrument); uftrace
record of the -pg build. Then each reader runs REPS times, interleaved; the
median wall time, events/s and peak RSS (wait4) are printed as a Markdown
table (docs/benchmarks.md quotes it). A bigger sftrace log measures
sftrace's own throughput with 1 and 2 worker threads. Only event counts are
checked; nothing asserts a time.
"""
import datetime
import glob
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.path.join(ROOT, "build", "bench", "analysis")
SF = os.path.join(ROOT, "build", "sftrace")
REPS = int(os.environ.get("BENCH_REPS", "5"))
CFLAGS = ["-O2", "-g", "-pthread"]
XRAY = ["-fxray-instrument", "-fxray-instruction-threshold=1"]
PER_ITER = 714  # calls per iteration of workload.c
SMALL = (2, 2000)   # threads, iterations: 5.7M events, for all three tools
BIG = (2, 40000)    # 114M events, sftrace only


def sh(cmd, env=None, out=None):
    e = dict(os.environ)
    e.update(env or {})
    subprocess.run(cmd, check=True, env=e, stdout=out or subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def timed(cmd, env=None):
    """(wall seconds, peak RSS MB, CPU seconds) of one run, output discarded.
    Peak RSS from /usr/bin/time (wait4's ru_maxrss would count the forked
    Python before the exec)."""
    e = dict(os.environ)
    e.update(env or {})
    t0 = time.monotonic()
    p = subprocess.Popen(["/usr/bin/time", "-f", "@@rss %M", *cmd], env=e,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = p.communicate()
    status = p.returncode
    dt = time.monotonic() - t0
    if status != 0:
        raise SystemExit("failed: %s\n%s" % (" ".join(cmd), err[-2000:]))
    rss = [int(ln.split()[1]) for ln in err.splitlines() if ln.startswith("@@rss ")][0]
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru.ru_utime + ru.ru_stime - timed.cpu
    timed.cpu = ru.ru_utime + ru.ru_stime
    return dt, rss / 1024.0, cpu


timed.cpu = 0.0


def build():
    os.makedirs(B, exist_ok=True)
    src = os.path.join(ROOT, "bench", "workload.c")
    xray, pg = os.path.join(B, "wl_xray"), os.path.join(B, "wl_pg")
    sh(["clang", *CFLAGS, *XRAY, src, "-o", xray])
    if shutil.which("uftrace"):
        sh(["clang", *CFLAGS, "-pg", src, "-o", pg])
    return xray, pg


def record(xray, pg):
    logs = {}
    for name, (th, it) in (("small", SMALL), ("big", BIG)):
        log = os.path.join(B, "sf-%s.log" % name)
        if os.path.exists(log):
            os.unlink(log)
        sh([SF, "record", "-o", log, "--", xray, str(th), str(it)])
        logs["sf-" + name] = log
    d = os.path.join(B, "basic")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    sh([xray, str(SMALL[0]), str(SMALL[1])],
       env={"XRAY_OPTIONS": "patch_premain=true xray_mode=xray-basic verbosity=0 "
                            "xray_logfile_base=%s/basic-" % d,
            # keep every call (the default drops those under 5 us)
            "XRAY_BASIC_OPTIONS": "func_duration_threshold_us=0"})
    logs["basic"] = glob.glob(os.path.join(d, "basic-*"))[0]
    if pg and shutil.which("uftrace"):
        d = os.path.join(B, "uftrace.data")
        shutil.rmtree(d, ignore_errors=True)
        sh(["uftrace", "record", "--no-libcall", "-d", d, pg, str(SMALL[0]), str(SMALL[1])])
        logs["uftrace"] = d
    return logs


LOAD0 = 0.0


def main():
    global LOAD0
    LOAD0 = os.getloadavg()[0]
    if not os.path.exists(SF):
        raise SystemExit("build first: make all")
    xray, pg = build()
    logs = record(xray, pg)
    small_ev = 2 * PER_ITER * SMALL[0] * SMALL[1]
    big_ev = 2 * PER_ITER * BIG[0] * BIG[1]
    cases = [
        ("sftrace report -j 2, %.1fM events" % (small_ev / 1e6),
         [SF, "report", "-q", "-j", "2", logs["sf-small"]], small_ev),
        ("sftrace report -j 1, %.1fM events" % (small_ev / 1e6),
         [SF, "report", "-q", "-j", "1", logs["sf-small"]], small_ev),
        ("llvm-xray account (XRay basic log), %.1fM events" % (small_ev / 1e6),
         ["llvm-xray", "account", "-instr_map=" + xray, "-sort=sum", "-top=30", logs["basic"]],
         small_ev),
    ]
    if "uftrace" in logs:
        cases.append(("uftrace report, %.1fM events" % (small_ev / 1e6),
                      ["uftrace", "report", "-d", logs["uftrace"]], small_ev))
    for j in ("2", "1"):
        cases.append(("sftrace report -j %s, %.0fM events" % (j, big_ev / 1e6),
                      [SF, "report", "-q", "-j", j, logs["sf-big"]], big_ev))
    for cmd in ("graph", "flame"):
        cases.append(("sftrace %s -j 2, %.0fM events" % (cmd, big_ev / 1e6),
                      [SF, cmd, "-q", "-j", "2", logs["sf-big"]] +
                      (["-o", os.path.join(B, "f.svg")] if cmd == "flame" else []), big_ev))
    cases.append(("sftrace info, %.0fM events (%d MB)" % (big_ev / 1e6,
                                                           os.path.getsize(logs["sf-big"]) >> 20),
                  [SF, "info", "-q", logs["sf-big"]], big_ev))
    res = {name: [] for name, _, _ in cases}
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    timed.cpu = ru.ru_utime + ru.ru_stime  # what the builds and recordings used
    for _ in range(REPS):
        for name, cmd, _ in cases:
            res[name].append(timed(cmd))
    load = os.getloadavg()[0]
    load0 = LOAD0
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print("machine: %s, %d CPUs, %s; date %s UTC; 1-minute load %.2f at the start, %.2f at "
          "the end; %d runs each, interleaved, median [min..max]" % (
              cpu, os.cpu_count(), platform.release(),
              datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), load0, load, REPS))
    print()
    print("| reader | wall s | events/s (median; best run) | CPU s | events per CPU-second |"
          " peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for name, _, ev in cases:
        ts = [r[0] for r in res[name]]
        ms = [r[1] for r in res[name]]
        cs = [r[2] for r in res[name]]
        med, cpu = statistics.median(ts), statistics.median(cs)
        print("| %s | %.3f [%.3f..%.3f] | %.1fM; %.1fM | %.3f | %.1fM | %.0f |" % (
            name, med, min(ts), max(ts), ev / med / 1e6, ev / min(ts) / 1e6, cpu,
            ev / cpu / 1e6, statistics.median(ms)))
    print()
    print("log sizes: sftrace %.1f MB (small), %.1f MB (big); XRay basic %.1f MB" % (
        os.path.getsize(logs["sf-small"]) / 2**20, os.path.getsize(logs["sf-big"]) / 2**20,
        os.path.getsize(logs["basic"]) / 2**20))
    return 0


if __name__ == "__main__":
    sys.exit(main())
