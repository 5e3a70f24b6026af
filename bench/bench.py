#!/usr/bin/env python3
"""bench.py - sftrace's benchmark suite, run by `make bench` (bench/run.sh).

Measures, in one run on one machine, sftrace against its anchors (untraced,
XRay sleds not patched, XRay FDR and basic modes, uftrace, llvm-xray):

  floor       the cost of rdtsc / rdtscp / a minimal call+rdtsc+store
  record      recording overhead (ns/event, wall and CPU) and bytes/event on
              bench/workload.c, 4 threads and 1 thread
  busy        issue 13's shape: every core busy, calls spread over 4,096
              functions in a pseudo-random order (bench/gen_calls.py many),
              sftrace beside XRay FDR; CPU time per event is the headline
  filter      sftrace filters: a few functions selected, and --descendants
  convert     events/s and peak RSS of sftrace convert (Perfetto, Chrome),
              llvm-xray convert (FDR log) and uftrace dump --chrome
  startup     patching a generated program with 1M+ sleds, and dlopen of it;
              then bench/startup.py: the wall and CPU time `sftrace record`
              adds to every process of a build (fork, vfork, an instrumented
              one, a shell loop)
  lua         Debian's lua5.4 built with sleds, running bench/workload.lua
  rspack      issue 10's shape: a node addon of 100,000 generated functions
              (bench/gen_calls.py rspack, bench/rspack_addon.c) run by node on
              several native threads, recorded, then info, report, convert
              (Perfetto, SQLite) and the symbolizer on it (one CU and eight);
              beside it, in the same run, its Rust variant: the same calls
              in a Rust cdylib (gen_calls.py rspack-rust, rspack_addon.rs;
              16 codegen units and one), skipped without rustc

Everything is built under build/bench/. Results: build/bench/results.json
(every run), build/bench/results.md (the tables docs/benchmarks.md quotes),
and a table on stdout. Every figure is the median of REPS runs (default 5)
with min and max; runs of the variants being compared are interleaved
(round robin) so drift hits them alike. No assertion on timing anywhere:
only the event counts are checked (a mismatch is printed and recorded).

Environment: BENCH_REPS=N (default 5), BENCH_QUICK=1 (small sizes, for
developing the suite), BENCH_ONLY=a,b (run only these sections).
"""
import concurrent.futures
import datetime
import glob
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
B = os.path.join(ROOT, "build", "bench")
SF = os.path.join(ROOT, "build", "sftrace")
LIB = os.path.join(ROOT, "build", "libsftrace.so")
REPS = int(os.environ.get("BENCH_REPS", "5"))
QUICK = os.environ.get("BENCH_QUICK") == "1"
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))
NCPU = os.cpu_count() or 2

# workload.c: calls per iteration = iteration + fib(12) calls + 16 leaf_mix
FIB_CALLS = 697
PER_ITER = 1 + FIB_CALLS + 16
SIZES = {
    # (threads, iterations per thread)
    "mt": (4, 300 if QUICK else 4200),      # 23,990,400 events
    "st": (1, 600 if QUICK else 10000),     # 14,280,000 events
    "conv": (4, 50 if QUICK else 250),      # 1,428,000 events
}
# the busy shape: one thread per core, 4 events per step, 16M events in all
BUSY_THREADS = NCPU
BUSY_STEPS = (100000 if QUICK else 4000000) // NCPU
SLED_FUNCS = 20000 if QUICK else 210000    # 5 sleds each
SLED_FILES = 8 if QUICK else 42

T_START = time.time()
WARN = []


def log(msg):
    print(f"[{time.time() - T_START:6.1f}s] {msg}", flush=True)


def warn(msg):
    WARN.append(msg)
    print(f"WARNING: {msg}", flush=True)


def events_of(threads, iters, per_iter=PER_ITER):
    return 2 * per_iter * iters * threads


# ---------------------------------------------------------------- running

def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("SFTRACE_") or k.startswith("XRAY_") or k == "LD_PRELOAD")}
    env.update(extra or {})
    return env


TIME = "/usr/bin/time"
TREECPU = os.path.join(B, "treecpu")


def run(cmd, env=None, cwd=None, stdout_path=None):
    """Run cmd; return wall seconds, user+sys CPU seconds of it and every
    descendant it waited for (wait4), peak RSS (KiB), exit status, output.
    The command runs under /usr/bin/time, whose %M is the command's own peak
    RSS (wait4's ru_maxrss would count this Python process, which the child
    was forked from); time's own cost (a fork and an exec, about a
    millisecond) is the same in every variant. Below time runs treecpu
    (bench/treecpu.c), a child subreaper that waits for every process the
    command leaves behind: sftrace's helper process double-forks away from
    `record`, and without it the helper's CPU time would not be counted."""
    tmp = os.path.join(B, "tmp")
    os.makedirs(tmp, exist_ok=True)
    out_path = stdout_path or os.path.join(tmp, "stdout")
    err_path = os.path.join(tmp, "stderr")
    rss_path = os.path.join(tmp, "rss")
    rm(rss_path)
    cmd = [TREECPU, *cmd]
    full = [TIME, "-f", "%M", "-o", rss_path, *cmd] if os.path.exists(TIME) else list(cmd)
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        t0 = time.perf_counter()
        p = subprocess.Popen(full, env=clean_env(env), cwd=cwd, stdout=fo, stderr=fe,
                             stdin=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        t1 = time.perf_counter()
    p.returncode = os.waitstatus_to_exitcode(status)
    out = "" if stdout_path else open(out_path, errors="replace").read()
    err = open(err_path, errors="replace").read()
    rss = None
    try:
        rss = int(open(rss_path).read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        pass
    r = {"wall": t1 - t0, "cpu": ru.ru_utime + ru.ru_stime, "user": ru.ru_utime,
         "sys": ru.ru_stime, "maxrss_kb": rss, "rc": p.returncode}
    if p.returncode != 0:
        warn(f"{' '.join(map(str, cmd))}: exit {p.returncode}: {err.strip()[-400:]}")
    return r, out, err


def sh(cmd, **kw):
    """A build step: must succeed."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"bench: build step failed: {' '.join(cmd)}\n{r.stdout[-3000:]}")
    return r.stdout


def stats(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def du(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(f) for f in glob.glob(os.path.join(path, "*")) if os.path.isfile(f))


def rm(path):
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.unlink(path)


def sftrace_summary(err):
    m = re.search(r"sftrace record: (\d+) events, (\d+) threads?, (\d+) process(?:es)?,"
                  r"(?: \d+ images?,)? (\d+) bytes", err)
    if not m:
        return None
    lost = re.search(r"(\d+) records could not be written", err)
    return {"events": int(m.group(1)), "threads": int(m.group(2)), "bytes": int(m.group(4)),
            "lost": int(lost.group(1)) if lost else 0}


def interleave(variants, reps):
    """variants: list of (name, fn(rep) -> run dict). Round robin."""
    runs = {name: [] for name, _ in variants}
    for rep in range(reps):
        for name, fn in variants:
            runs[name].append(fn(rep))
    return runs


# ---------------------------------------------------------------- machine

def machine_info():
    info = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    try:
        ls = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
        for key in ("Model name", "CPU(s)", "Thread(s) per core", "Hypervisor vendor",
                    "CPU max MHz", "L2 cache", "L3 cache"):
            m = re.search(rf"^{re.escape(key)}:\s*(.+)$", ls, re.M)
            if m:
                info[key] = m.group(1).strip()
    except OSError:
        pass
    info["kernel"] = os.uname().release
    info["cores"] = NCPU
    try:
        info["mem_total_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                      / 2**30, 1)
    except (ValueError, OSError):
        pass
    try:
        info["clocksource"] = open(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource").read().strip()
    except OSError:
        pass
    info["loadavg_start"] = os.getloadavg()
    vers = {}
    for name, cmd in (("clang", ["clang", "--version"]), ("uftrace", ["uftrace", "--version"]),
                      ("llvm-xray", ["llvm-xray", "--version"])):
        try:
            o = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True).stdout
            vers[name] = next((l.strip() for l in o.splitlines() if "version" in l.lower()),
                              o.strip()[:80])
        except OSError:
            vers[name] = None
    try:
        vers["sftrace"] = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                         stdout=subprocess.PIPE, text=True).stdout.strip()
    except OSError:
        pass
    info["versions"] = vers
    return info


# ---------------------------------------------------------------- builds

CFLAGS = ["-O2", "-g", "-pthread"]
XRAY = ["-fxray-instrument", "-fxray-instruction-threshold=1"]


def build_workloads():
    d = os.path.join(B, "wl")
    os.makedirs(d, exist_ok=True)
    src = os.path.join(BENCH, "workload.c")
    w = {k: os.path.join(d, f"wl_{k}") for k in ("base", "xray", "fdr", "pg")}
    steps = [
        ["clang", *CFLAGS, src, "-o", w["base"]],
        ["clang", *CFLAGS, *XRAY, src, "-o", w["xray"]],
        ["clang", *CFLAGS, "-pg", src, "-o", w["pg"]],
        ["clang", *CFLAGS, *XRAY, "-fxray-modes=xray-fdr", "-DWITH_FDR", "-c", src,
         "-o", w["fdr"] + ".o"],
        ["clang++", "-O2", "-g", "-c", os.path.join(BENCH, "fdr_start.cc"),
         "-o", os.path.join(d, "fdr_start.o")],
    ]
    with concurrent.futures.ThreadPoolExecutor(NCPU) as ex:
        list(ex.map(sh, steps))
    sh(["clang++", "-pthread", "-fxray-instrument", "-fxray-modes=xray-fdr", w["fdr"] + ".o",
        os.path.join(d, "fdr_start.o"), "-o", w["fdr"]])
    for name in ("rdtsc", "fdrcount", "dlopen_main"):
        sh(["clang", "-O2", os.path.join(BENCH, name + ".c"), "-o", os.path.join(d, name),
            "-ldl"])
    w["rdtsc"] = os.path.join(d, "rdtsc")
    sh(["clang", "-O2", "-Wall", "-Werror", os.path.join(BENCH, "treecpu.c"), "-o", TREECPU])
    w["fdrcount"] = os.path.join(d, "fdrcount")
    w["dlopen_main"] = os.path.join(d, "dlopen_main")
    return w


# ---------------------------------------------------------------- floor

def bench_floor(w):
    vals = {"rdtsc_ns": [], "rdtscp_ns": [], "call_rdtsc_store_ns": []}
    for _ in range(REPS):
        _, out, _ = run([w["rdtsc"], "5000000" if QUICK else "20000000"])
        for k in vals:
            m = re.search(rf"{k}=([\d.]+)", out)
            vals[k].append(float(m.group(1)) if m else None)
    return {k: stats(v) for k, v in vals.items()}


# ---------------------------------------------------------------- record

DIAG_NOWRITER = "sftrace, SFTRACE_WRITER=0"
DIAG_RAW = "sftrace, SFTRACE_WRITER=0 SFTRACE_RAW=1"
FDR_ENV = {"XRAY_FDR_OPTIONS": "func_duration_threshold_us=0"}
BASIC_ENV = {"XRAY_BASIC_OPTIONS": "func_duration_threshold_us=0"}


def rec_tools(w, threads, iters, keep=None, exp=None):
    """The recording variants of one workload size, each a fn(rep) that runs
    once, checks the event count and returns a run dict with `bytes`.
    keep: a dict to receive the paths of the last logs (for convert).
    exp: the events the workload makes (default: workload.c's count)."""
    exp = exp or events_of(threads, iters)
    args = [str(threads), str(iters)]
    d = os.path.join(B, "rec")
    os.makedirs(d, exist_ok=True)

    def check(name, got, r):
        r["events"] = got
        if got != exp:
            warn(f"{name} {threads}x{iters}: {got} events recorded, {exp} expected")
        return r

    def plain(binary):
        def f(rep):
            r, out, _ = run([binary, *args])
            m = re.search(r"events=(\d+)", out)
            if not m or int(m.group(1)) != exp:
                warn(f"{binary}: workload says {out.strip()}, expected {exp} events")
            return r
        return f

    def sftrace_with(env, label, keep_it):
        def f(rep):
            slug = re.sub(r"[^A-Za-z0-9]+", "_", label)
            logf = os.path.join(d, f"{slug}-{os.path.basename(w['xray'])}-{threads}x{iters}.log")
            rm(logf)
            r, _, err = run([SF, "record", "-o", logf, "--", w["xray"], *args], env=env)
            s = sftrace_summary(err) or {"events": None, "bytes": None, "lost": None}
            r["bytes"] = os.path.getsize(logf) if os.path.exists(logf) else None
            r["lost"] = s["lost"]
            if s["lost"]:
                warn(f"{label} lost {s['lost']} records")
            if keep is not None and keep_it:
                keep["sftrace"] = logf
            else:
                rm(logf)
            return check(label, s["events"], r)
        return f

    def fdr(rep):
        dd = os.path.join(d, "fdr")
        rm(dd)
        os.makedirs(dd)
        r, _, _ = run([w["fdr"], *args], env={
            "XRAY_OPTIONS": f"patch_premain=false xray_mode=xray-fdr verbosity=0 "
                            f"xray_logfile_base={dd}/fdr-", **FDR_ENV})
        files = glob.glob(os.path.join(dd, "fdr-*"))
        got = None
        r["bytes"] = None
        if len(files) == 1:
            r["bytes"] = os.path.getsize(files[0])
            c = subprocess.run([w["fdrcount"], files[0]], stdout=subprocess.PIPE,
                               text=True).stdout
            m = re.search(r"events=(\d+)", c)
            got = int(m.group(1)) if m else None
            if keep is not None:
                dst = os.path.join(d, f"fdr-{threads}x{iters}.xray")
                os.replace(files[0], dst)
                keep["xray-fdr"] = dst
        rm(dd)
        return check("xray-fdr", got, r)

    def basic(rep):
        dd = os.path.join(d, "basic")
        rm(dd)
        os.makedirs(dd)
        r, _, _ = run([w["xray"], *args], env={
            "XRAY_OPTIONS": f"patch_premain=true xray_mode=xray-basic verbosity=0 "
                            f"xray_logfile_base={dd}/basic-", **BASIC_ENV})
        files = glob.glob(os.path.join(dd, "basic-*"))
        r["bytes"] = os.path.getsize(files[0]) if len(files) == 1 else None
        # a 32-byte header, then one 32-byte XRayRecord per event
        got = (r["bytes"] - 32) // 32 if r["bytes"] else None
        rm(dd)
        return check("xray-basic", got, r)

    def uftrace(rep):
        dd = os.path.join(d, f"uftrace-{threads}x{iters}")
        rm(dd)
        r, _, _ = run(["uftrace", "record", "--no-libcall", "-d", dd, w["pg"], *args])
        dats = glob.glob(os.path.join(dd, "*.dat"))
        task = [f for f in dats if not os.path.basename(f).startswith("perf-")]
        r["bytes"] = du(dd)
        r["bytes_dat"] = sum(os.path.getsize(f) for f in task)
        got = r["bytes_dat"] // 16  # one 16-byte uftrace_record per event
        if keep is not None:
            keep["uftrace"] = dd
        else:
            rm(dd)
        return check("uftrace", got, r)

    return exp, [("untraced", plain(w["base"])), ("xray-unpatched", plain(w["xray"])),
                 ("sftrace", sftrace_with({}, "sftrace", True)),
                 ("xray-fdr", fdr), ("xray-basic", basic), ("uftrace", uftrace),
                 # diagnostics: no writer thread (each thread packs and writes
                 # its own buffers), and that without packing (8 bytes/event)
                 (DIAG_NOWRITER, sftrace_with({"SFTRACE_WRITER": "0"}, DIAG_NOWRITER, False)),
                 (DIAG_RAW, sftrace_with({"SFTRACE_WRITER": "0", "SFTRACE_RAW": "1"}, DIAG_RAW,
                                         False))]


def overheads(runs, base, events):
    """Per-run overhead per event against the median of the baseline."""
    bw = statistics.median(r["wall"] for r in runs[base])
    bc = statistics.median(r["cpu"] for r in runs[base])
    res = {}
    for name, rs in runs.items():
        ev = [r.get("events") or events for r in rs]
        res[name] = {
            "wall_s": stats([r["wall"] for r in rs]),
            "cpu_s": stats([r["cpu"] for r in rs]),
            "ns_per_event_wall": stats([(r["wall"] - bw) / e * 1e9 for r, e in zip(rs, ev)]),
            "ns_per_event_cpu": stats([(r["cpu"] - bc) / e * 1e9 for r, e in zip(rs, ev)]),
            "bytes_per_event": stats([r["bytes"] / e for r, e in zip(rs, ev)
                                      if r.get("bytes")]),
            "events": stats([r.get("events") for r in rs]),
            "maxrss_mb": stats([r["maxrss_kb"] / 1024 for r in rs if r["maxrss_kb"]]),
        }
    return res


def bench_record(w, keep_mt):
    out = {}
    for key in ("mt", "st"):
        threads, iters = SIZES[key]
        exp, variants = rec_tools(w, threads, iters, keep=keep_mt if key == "mt" else None)
        log(f"record: {threads} thread(s) x {iters} iterations = {exp:,} events, "
            f"{len(variants)} variants x {REPS} runs")
        runs = interleave(variants, REPS)
        out[key] = {"threads": threads, "iters": iters, "events": exp, "runs": runs,
                    "summary": overheads(runs, "untraced", exp)}
    return out


def build_busy(w):
    """The busy shape's programs: bench/gen_calls.py many, built as the
    workload is (plain, sleds, sleds + FDR started from main)."""
    d = os.path.join(B, "busy")
    os.makedirs(d, exist_ok=True)
    src = os.path.join(d, "many.c")
    sh([sys.executable, os.path.join(BENCH, "gen_calls.py"), "many", d])
    m = {k: os.path.join(d, f"many_{k}") for k in ("base", "xray", "fdr")}
    steps = [
        ["clang", *CFLAGS, src, "-o", m["base"]],
        ["clang", *CFLAGS, *XRAY, src, "-o", m["xray"]],
        ["clang", *CFLAGS, *XRAY, "-fxray-modes=xray-fdr", "-DWITH_FDR", "-c", src,
         "-o", m["fdr"] + ".o"],
    ]
    with concurrent.futures.ThreadPoolExecutor(NCPU) as ex:
        list(ex.map(sh, steps))
    sh(["clang++", "-pthread", "-fxray-instrument", "-fxray-modes=xray-fdr", m["fdr"] + ".o",
        os.path.join(B, "wl", "fdr_start.o"), "-o", m["fdr"]])
    m["fdrcount"] = w["fdrcount"]
    return m


def bench_busy(w):
    """Issue 13: every core busy (one thread per core), every step a call
    through `step` to one of 4,096 functions in a pseudo-random order."""
    m = build_busy(w)
    threads, steps = BUSY_THREADS, BUSY_STEPS
    exp = 4 * threads * steps
    _, variants = rec_tools(m, threads, steps, exp=exp)
    keep = ("untraced", "xray-unpatched", "sftrace", "xray-fdr")
    variants = [v for v in variants if v[0] in keep]
    log(f"busy: {threads} threads x {steps} steps over 4,096 functions = {exp:,} events, "
        f"{len(variants)} variants x {REPS} runs")
    runs = interleave(variants, REPS)
    return {"threads": threads, "steps": steps, "events": exp, "runs": runs,
            "summary": overheads(runs, "untraced", exp)}


# ---------------------------------------------------------------- filters

def bench_filter(w):
    threads, iters = SIZES["mt"]
    exp_all = events_of(threads, iters)
    d = os.path.join(B, "filter")
    os.makedirs(d, exist_ok=True)
    # (name, sftrace filter args, expected events)
    cases = [
        ("selected ^iteration$", ["-r", "^iteration$"], events_of(threads, iters, 1)),
        # the scope is the selected call's return-address slot, so the
        # leaf_add that the outermost fib tail-calls is in it (since 206e005;
        # docs/filter-format.md): every call of fib's subtree
        ("descendants of fib", ["-r", "^fib$", "--descendants"],
         events_of(threads, iters, FIB_CALLS)),
        ("descendants of leaf_mix", ["-r", "^leaf_mix$", "--descendants"],
         events_of(threads, iters, 16)),
    ]
    variants = [("untraced", None, exp_all), ("all functions", None, exp_all)]
    flt = {}
    for i, (name, fargs, exp) in enumerate(cases):
        fp = os.path.join(d, f"f{i}.filter")
        sh([SF, "filter", "-p", w["xray"], *fargs, "-o", fp])
        flt[name] = fp
        variants.append((name, fp, exp))

    def mk(name, fp, exp):
        def f(rep):
            if name == "untraced":
                r, _, _ = run([w["base"], str(threads), str(iters)])
                r["events"] = exp
                return r
            logf = os.path.join(d, "f.log")
            rm(logf)
            cmd = [SF, "record", "-o", logf] + (["-f", fp] if fp else []) + \
                ["--", w["xray"], str(threads), str(iters)]
            r, _, err = run(cmd)
            s = sftrace_summary(err)
            r["events"] = s["events"] if s else None
            r["bytes"] = s["bytes"] if s else None
            if r["events"] != exp:
                warn(f"filter {name}: {r['events']} events, {exp} expected")
            rm(logf)
            return r
        return f

    log(f"filter: {len(variants)} variants x {REPS} runs, {exp_all:,} events unfiltered")
    runs = interleave([(n, mk(n, fp, e)) for n, fp, e in variants], REPS)
    bw = statistics.median(r["wall"] for r in runs["untraced"])
    bc = statistics.median(r["cpu"] for r in runs["untraced"])
    summ = {}
    for n, rs in runs.items():
        summ[n] = {
            "events": stats([r["events"] for r in rs]),
            "wall_s": stats([r["wall"] for r in rs]),
            "cpu_s": stats([r["cpu"] for r in rs]),
            "added_ms_wall": stats([(r["wall"] - bw) * 1e3 for r in rs]),
            "added_ms_cpu": stats([(r["cpu"] - bc) * 1e3 for r in rs]),
            # per event the workload could produce (every sled it runs)
            "ns_per_call_event_wall": stats([(r["wall"] - bw) / exp_all * 1e9 for r in rs]),
            "ns_per_recorded_event_wall": stats([(r["wall"] - bw) / r["events"] * 1e9
                                                 for r in rs if r["events"]]),
            "ns_per_recorded_event_cpu": stats([(r["cpu"] - bc) / r["events"] * 1e9
                                                for r in rs if r["events"]]),
        }
    return {"threads": threads, "iters": iters, "events_unfiltered": exp_all, "runs": runs,
            "summary": summ}


# ---------------------------------------------------------------- convert

def bench_convert(w, keep_mt):
    d = os.path.join(B, "conv")
    os.makedirs(d, exist_ok=True)
    threads, iters = SIZES["conv"]
    keep = {}
    exp, variants = rec_tools(w, threads, iters, keep=keep)
    vmap = dict(variants)
    log(f"convert: recording the {exp:,}-event logs")
    for name in ("sftrace", "xray-fdr", "uftrace"):
        vmap[name](0)
    if set(keep) != {"sftrace", "xray-fdr", "uftrace"}:
        warn(f"convert: missing logs: have {sorted(keep)}")
        return None
    small_ev = exp
    big_ev = events_of(*SIZES["mt"])
    outp = lambda ext: os.path.join(d, "out" + ext)

    def mk(cmd_fn, out, events, stdout_to=None):
        def f(rep):
            rm(out)
            r, _, _ = run(cmd_fn(), stdout_path=stdout_to)
            r["out_bytes"] = os.path.getsize(out) if os.path.exists(out) else None
            r["events"] = events
            rm(out)
            return r
        return f

    cases = [
        (f"sftrace convert (Perfetto .pb.gz), {small_ev/1e6:.1f}M",
         mk(lambda: [SF, "convert", "-q", keep["sftrace"], "-o", outp(".pb.gz")],
            outp(".pb.gz"), small_ev)),
        (f"sftrace convert --format chrome (.json.gz), {small_ev/1e6:.1f}M",
         mk(lambda: [SF, "convert", "-q", "--format", "chrome", keep["sftrace"], "-o",
                     outp(".json.gz")], outp(".json.gz"), small_ev)),
        (f"sftrace convert --format chrome (.json), {small_ev/1e6:.1f}M",
         mk(lambda: [SF, "convert", "-q", "--format", "chrome", keep["sftrace"], "-o",
                     outp(".json")], outp(".json"), small_ev)),
        (f"llvm-xray convert trace_event (FDR log), {small_ev/1e6:.1f}M",
         mk(lambda: ["llvm-xray", "convert", "--output-format=trace_event",
                     f"--instr_map={w['fdr']}", "--symbolize", keep["xray-fdr"], "-o",
                     outp(".xray.json")], outp(".xray.json"), small_ev)),
        (f"uftrace dump --chrome, {small_ev/1e6:.1f}M",
         mk(lambda: ["uftrace", "dump", "--chrome", "-d", keep["uftrace"]],
            outp(".uftrace.json"), small_ev, stdout_to=outp(".uftrace.json"))),
    ]
    if keep_mt.get("sftrace"):
        cases += [
            (f"sftrace convert (Perfetto .pb.gz), {big_ev/1e6:.1f}M",
             mk(lambda: [SF, "convert", "-q", keep_mt["sftrace"], "-o", outp(".pb.gz")],
                outp(".pb.gz"), big_ev)),
            (f"sftrace convert --format chrome (.json.gz), {big_ev/1e6:.1f}M",
             mk(lambda: [SF, "convert", "-q", "--format", "chrome", keep_mt["sftrace"], "-o",
                         outp(".json.gz")], outp(".json.gz"), big_ev)),
        ]
    log(f"convert: {len(cases)} conversions x {REPS} runs")
    runs = interleave(cases, REPS)
    summ = {}
    for n, rs in runs.items():
        rs = [r for r in rs if r["rc"] == 0 and r["out_bytes"]]
        if not rs:
            continue
        summ[n] = {
            "events": rs[0]["events"],
            "wall_s": stats([r["wall"] for r in rs]),
            "cpu_s": stats([r["cpu"] for r in rs]),
            "mev_per_s": stats([r["events"] / r["wall"] / 1e6 for r in rs]),
            "maxrss_mb": stats([r["maxrss_kb"] / 1024 for r in rs if r["maxrss_kb"]]),
            "out_mb": stats([r["out_bytes"] / 1e6 for r in rs if r["out_bytes"]]),
        }
    input_bytes = {k: du(v) for k, v in keep.items()}
    for v in keep.values():
        rm(v)
    return {"events_small": small_ev, "events_big": big_ev, "input_bytes_small": input_bytes,
            "runs": runs, "summary": summ}


# ---------------------------------------------------------------- startup

def xray_map(path):
    """Count the entries of an ELF file's xray_instr_map by kind: 32-byte
    entries (sled address, function, kind, always-instrument, version)."""
    out = sh(["readelf", "-SW", path])
    m = re.search(r"\]\s+xray_instr_map\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)", out)
    if not m:
        return {"sleds": 0, "functions": 0}
    off, size = int(m.group(1), 16), int(m.group(2), 16)
    with open(path, "rb") as f:
        f.seek(off)
        data = f.read(size)
    kinds = data[16::32]
    return {"sleds": size // 32, "functions": kinds.count(0), "entry": kinds.count(0),
            "exit": kinds.count(1), "tail": kinds.count(2)}


def build_sleds(w):
    gen = os.path.join(BENCH, "gen_sleds.py")
    flags = ["-O0", "-fPIC", "-fvisibility=hidden", *XRAY]
    clangv = subprocess.run(["clang", "--version"], stdout=subprocess.PIPE, text=True).stdout
    key = hashlib.sha256((open(gen).read() + f"{SLED_FUNCS} {SLED_FILES} {flags} {clangv}")
                         .encode()).hexdigest()[:12]
    root = os.path.join(B, "sleds")
    d = os.path.join(root, f"{SLED_FUNCS}-{key}")
    exe, so = os.path.join(d, "big"), os.path.join(d, "libbig.so")
    if os.path.exists(exe) and os.path.exists(so):
        log(f"startup: cached build {d}")
        return exe, so, {"cached": True}
    for old in glob.glob(os.path.join(root, f"{SLED_FUNCS}-*")):
        rm(old)
    os.makedirs(d)
    t0 = time.time()
    sh([sys.executable, gen, d, str(SLED_FUNCS), str(SLED_FILES)])
    srcs = sorted(glob.glob(os.path.join(d, "f*.c")))
    log(f"startup: compiling {SLED_FUNCS:,} functions in {len(srcs)} files "
        f"({NCPU} at a time; cached afterwards)")
    with concurrent.futures.ThreadPoolExecutor(NCPU) as ex:
        list(ex.map(lambda s: sh(["clang", *flags, "-c", s, "-o", s[:-2] + ".o"]), srcs))
    objs = [s[:-2] + ".o" for s in srcs]
    sh(["clang", "-O2", "-fxray-instrument", "-c", os.path.join(d, "main.c"), "-o",
        os.path.join(d, "main.o")])
    sh(["clang", "-fxray-instrument", "-o", exe + ".tmp", os.path.join(d, "main.o"), *objs])
    sh(["clang", "-shared", "-o", so + ".tmp", *objs])
    for o in objs:
        rm(o)
    for s in srcs:
        rm(s)
    os.replace(so + ".tmp", so)
    os.replace(exe + ".tmp", exe)
    return exe, so, {"cached": False, "build_s": time.time() - t0}


def bench_startup(w):
    exe, so, binfo = build_sleds(w)
    xm = xray_map(exe)
    nsleds, nfuncs = xm["sleds"], xm["functions"]
    so_sleds = xray_map(so)["sleds"]
    d = os.path.join(B, "startup")
    os.makedirs(d, exist_ok=True)
    logf = os.path.join(d, "sf.log")

    def plain(rep):
        return run([exe])[0]

    def rec(rep):
        rm(logf)
        r, _, err = run([SF, "record", "-o", logf, "--", exe])
        r["log_bytes"] = os.path.getsize(logf) if os.path.exists(logf) else None
        return r

    def preload(rep):
        rm(logf)
        r, _, _ = run([exe], env={"LD_PRELOAD": LIB, "SFTRACE_OUTPUT_FILE": logf,
                                  "SFTRACE_PATCH_ALL": "1"})
        return r

    def xray_rt(rep):
        dd = os.path.join(d, "xr")
        rm(dd)
        os.makedirs(dd)
        r, _, _ = run([exe], env={"XRAY_OPTIONS": f"patch_premain=true xray_mode=xray-basic "
                                                  f"verbosity=0 xray_logfile_base={dd}/x-"})
        rm(dd)
        return r

    def dl(traced):
        def f(rep):
            rm(logf)
            cmd = [w["dlopen_main"], so]
            if traced:
                cmd = [SF, "record", "-o", logf, "--"] + cmd
            r, out, _ = run(cmd)
            m = re.search(r"dlopen_ns=(\d+)", out)
            r["dlopen_ms"] = int(m.group(1)) / 1e6 if m else None
            return r
        return f

    log(f"startup: {nfuncs:,} functions, {nsleds:,} sleds; 6 variants x {REPS} runs")
    runs = interleave([("untraced", plain), ("sftrace record", rec),
                       ("sftrace runtime preloaded", preload),
                       ("compiler-rt XRay patch_premain", xray_rt),
                       ("dlopen untraced", dl(False)), ("dlopen sftrace record", dl(True))], REPS)
    rm(logf)
    bw = statistics.median(r["wall"] for r in runs["untraced"])
    summ = {n: {"wall_ms": stats([r["wall"] * 1e3 for r in rs]),
                "added_ms": stats([(r["wall"] - bw) * 1e3 for r in rs]),
                "cpu_ms": stats([r["cpu"] * 1e3 for r in rs]),
                "maxrss_mb": stats([r["maxrss_kb"] / 1024 for r in rs if r["maxrss_kb"]])}
            for n, rs in runs.items()}
    for n in ("dlopen untraced", "dlopen sftrace record"):
        summ[n]["dlopen_ms"] = stats([r["dlopen_ms"] for r in runs[n]])
    dbase = summ["dlopen untraced"]["dlopen_ms"]["median"]
    summ["dlopen sftrace record"]["dlopen_added_ms"] = stats(
        [r["dlopen_ms"] - dbase for r in runs["dlopen sftrace record"] if r["dlopen_ms"]])
    summ["sftrace record"]["log_bytes"] = runs["sftrace record"][-1].get("log_bytes")
    # what every process of a build pays: bench/startup.py (its own table)
    sys.path.insert(0, BENCH)
    import startup as procs
    pres, pmd = procs.measure(REPS, 50 if QUICK else 200)
    log("startup: added wall time per process\n" + pmd)
    for p in pres["problems"]:
        warn("startup: " + p)
    return {"functions": nfuncs, "sleds": nsleds, "sled_kinds": xm, "so_sleds": so_sleds,
            "build": binfo,
            "runs": runs, "summary": summ, "processes": pres}


# ---------------------------------------------------------------- lua

def bench_lua(w):
    srcroot = os.path.join(B, "src")
    r = subprocess.run(["sh", os.path.join(BENCH, "fetch_lua.sh"), srcroot])
    src = os.path.join(srcroot, "lua5.4", "src")
    if r.returncode != 0 or not os.path.exists(os.path.join(src, "lvm.c")):
        warn("lua: could not get Debian's lua5.4 source; section skipped")
        return None
    version = "?"
    try:
        version = open(os.path.join(srcroot, "lua5.4", "debian", "changelog")).readline().strip()
    except OSError:
        pass
    d = os.path.join(B, "lua")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "lua5.4-deb-multiarch.h"), "w") as f:
        f.write('#define DEB_HOST_MULTIARCH "x86_64-linux-gnu"\n')
    cfiles = sorted(c for c in glob.glob(os.path.join(src, "*.c"))
                    if os.path.basename(c) != "luac.c")
    base_flags = ["-O2", "-g", "-DLUA_USE_LINUX", "-w", "-I", d]
    bins = {}
    jobs = []
    for tag, flags in (("plain", base_flags), ("xray", base_flags + XRAY)):
        od = os.path.join(d, tag)
        os.makedirs(od, exist_ok=True)
        stamp = os.path.join(od, "flags")
        fresh = os.path.exists(stamp) and open(stamp).read() == " ".join(flags)
        objs = []
        for c in cfiles:
            o = os.path.join(od, os.path.basename(c)[:-2] + ".o")
            objs.append(o)
            if not (fresh and os.path.exists(o) and os.path.getmtime(o) > os.path.getmtime(c)):
                jobs.append(["clang", *flags, "-c", c, "-o", o])
        bins[tag] = (os.path.join(od, "lua"), objs, stamp, flags)
    if jobs:
        log(f"lua: compiling {len(jobs)} files")
        with concurrent.futures.ThreadPoolExecutor(NCPU) as ex:
            list(ex.map(sh, jobs))
    for tag, (exe, objs, stamp, flags) in bins.items():
        link = ["clang", *([x for x in flags if x.startswith("-fxray")]), "-o", exe, *objs,
                "-lm", "-ldl"]
        sh(link)
        with open(stamp, "w") as f:
            f.write(" ".join(flags))
    script = os.path.join(BENCH, "workload.lua")
    n = "22" if QUICK else "27"
    logf = os.path.join(d, "sf.log")

    def plain(exe):
        return lambda rep: run([exe, script, n])[0]

    def traced(rep):
        rm(logf)
        r, _, err = run([SF, "record", "-o", logf, "--", bins["xray"][0], script, n])
        s = sftrace_summary(err) or {}
        r["events"] = s.get("events")
        r["bytes"] = s.get("bytes")
        if s.get("lost"):
            warn(f"lua: sftrace lost {s['lost']} records")
        rm(logf)
        return r

    # Short runs (0.1-0.7 s) whose times on this VM jump between two levels
    # for seconds at a time: more runs than elsewhere, at little cost.
    reps = 2 * REPS - 1
    log(f"lua: 3 variants x {reps} runs (workload.lua {n})")
    runs = interleave([("untraced (plain -O2)", plain(bins["plain"][0])),
                       ("sleds, not patched", plain(bins["xray"][0])),
                       ("sftrace record", traced)], reps)
    bw = statistics.median(r["wall"] for r in runs["untraced (plain -O2)"])
    bc = statistics.median(r["cpu"] for r in runs["untraced (plain -O2)"])
    ev = [r["events"] for r in runs["sftrace record"] if r.get("events")]
    evm = statistics.median(ev) if ev else None
    summ = {nm: {"wall_s": stats([r["wall"] for r in rs]),
                 "cpu_s": stats([r["cpu"] for r in rs])} for nm, rs in runs.items()}
    t = summ["sftrace record"]
    t["events"] = stats(ev)
    if evm:
        t["ns_per_event_wall"] = stats([(r["wall"] - bw) / r["events"] * 1e9
                                        for r in runs["sftrace record"] if r.get("events")])
        t["ns_per_event_cpu"] = stats([(r["cpu"] - bc) / r["events"] * 1e9
                                       for r in runs["sftrace record"] if r.get("events")])
        t["bytes_per_event"] = stats([r["bytes"] / r["events"]
                                      for r in runs["sftrace record"] if r.get("events")])
        t["log_mb"] = stats([r["bytes"] / 1e6 for r in runs["sftrace record"] if r.get("bytes")])
    xm = xray_map(bins["xray"][0])
    return {"source": version, "script_arg": n, "sleds": xm["sleds"],
            "functions": xm["functions"], "runs": runs, "summary": summ}


# ---------------------------------------------------------------- rspack

RS_THREADS = max(4, NCPU)
RS_ROOTS = 20000 if QUICK else 150000     # per thread: about 20M events in all
RS_FLAGS = ["-O1", "-g", "-fPIC", *XRAY]


def build_rspack():
    """The rspack-shaped addon (in C, so that a -finstrument-functions build
    of the same code counts its events exactly: docs/benchmarks.md, section
    11), cached by content hash:
    rspack.node (8 compile units, as codegen units), rspack_1cu.node (the
    same functions in one compile unit, for the symbolizer) and rspack_count
    (the same code with -finstrument-functions counting every entry and
    exit: the exact events a run makes, bench/callcount.c)."""
    root = os.path.join(B, "rspack")
    gen_d = os.path.join(root, "gen")
    rm(gen_d)
    sh([sys.executable, os.path.join(BENCH, "gen_calls.py"), "rspack", gen_d])
    # the key: what is compiled (the generated code, not the generator's text)
    srcs = sorted(glob.glob(os.path.join(gen_d, "*.c"))) + \
        [os.path.join(BENCH, f) for f in ("rspack_addon.c", "rspack_addon.map", "callcount.c")]
    clangv = subprocess.run(["clang", "--version"], stdout=subprocess.PIPE, text=True).stdout
    key = hashlib.sha256(("".join(open(f).read() for f in srcs) + f"{RS_FLAGS} {clangv}")
                         .encode()).hexdigest()[:12]
    d = os.path.join(root, key)
    out = {k: os.path.join(d, n) for k, n in (("node", "rspack.node"),
                                              ("node1", "rspack_1cu.node"),
                                              ("count", "rspack_count"))}
    if all(os.path.exists(v) for v in out.values()):
        log(f"rspack: cached build {d}")
        rm(gen_d)
        return out
    for old in glob.glob(os.path.join(root, "*")):
        if os.path.isdir(old) and old not in (d, gen_d):
            rm(old)
    rm(d)
    os.rename(gen_d, d)
    gen = [os.path.join(d, f"rspack_{i}.c") for i in range(8)]
    with open(os.path.join(d, "rspack_1cu.c"), "w") as f:
        f.write("/* all of rspack_0..7.c in one compile unit */\n" +
                "".join(f'#include "rspack_{i}.c"\n' for i in range(8)))
    log(f"rspack: compiling 100,000 functions three times ({NCPU} at a time; cached afterwards)")
    t0 = time.time()
    main_c = os.path.join(d, "rspack_main.c")
    steps = [["clang", *RS_FLAGS, "-c", s, "-o", s[:-2] + ".o"] for s in gen]
    steps += [["clang", "-O1", "-finstrument-functions", "-c", s, "-o", s[:-2] + ".cnt.o"]
              for s in gen]
    steps += [["clang", *RS_FLAGS, "-c", os.path.join(d, "rspack_1cu.c"), "-o",
               os.path.join(d, "rspack_1cu.o")],
              ["clang", *RS_FLAGS, "-DGEN_NO_MAIN", "-c", main_c, "-o",
               os.path.join(d, "main.o")],
              ["clang", "-O1", "-finstrument-functions", "-DGEN_COUNT", "-c", main_c, "-o",
               os.path.join(d, "main.cnt.o")],
              ["clang", "-O2", "-g", "-fPIC", "-Wall", "-Wextra", "-Werror", "-I/usr/include/node",
               "-c", os.path.join(BENCH, "rspack_addon.c"), "-o", os.path.join(d, "addon.o")],
              ["clang", "-O2", "-c", os.path.join(BENCH, "callcount.c"), "-o",
               os.path.join(d, "callcount.o")]]
    # the one-CU file is the longest: start it first
    steps.sort(key=lambda c: "rspack_1cu.c" not in " ".join(c))
    with concurrent.futures.ThreadPoolExecutor(NCPU) as ex:
        list(ex.map(sh, steps))
    link = ["clang", "-shared", "-pthread",
            f"-Wl,--version-script={os.path.join(BENCH, 'rspack_addon.map')}"]
    sh([*link, "-o", out["node"], os.path.join(d, "addon.o"), os.path.join(d, "main.o"),
        *[s[:-2] + ".o" for s in gen]])
    sh([*link, "-o", out["node1"], os.path.join(d, "addon.o"), os.path.join(d, "main.o"),
        os.path.join(d, "rspack_1cu.o")])
    sh(["clang", "-pthread", "-o", out["count"], os.path.join(d, "main.cnt.o"),
        os.path.join(d, "callcount.o"), *[s[:-2] + ".cnt.o" for s in gen]])
    for f in glob.glob(os.path.join(d, "*.o")) + glob.glob(os.path.join(d, "*.c")):
        rm(f)
    log(f"rspack: built in {time.time() - t0:.0f} s")
    return out


RS_RUSTFLAGS = ["--edition", "2021", "-Zinstrument-xray=always", "-C", "opt-level=1", "-g"]
RS_CGUS = (16, 1)   # codegen units of the two builds: a release build's, and one


def timed_sh(cmd, env=None):
    """A build step; returns (wall s, peak RSS MB). Raises RuntimeError with
    the end of its output when it fails (the caller skips what needs it)."""
    rss = os.path.join(B, "tmp", f"rss-{os.getpid()}-{abs(hash(' '.join(cmd)))}")
    os.makedirs(os.path.dirname(rss), exist_ok=True)
    t0 = time.time()
    r = subprocess.run([TIME, "-f", "%M", "-o", rss, *cmd] if os.path.exists(TIME) else cmd,
                       env=dict(os.environ, **(env or {})), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        rm(rss)
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stdout[-1500:]}")
    wall = time.time() - t0
    try:
        mb = int(open(rss).read().split()[-1]) / 1024
    except (OSError, ValueError, IndexError):
        mb = None
    rm(rss)
    return wall, mb


def build_rspack_rust():
    """The Rust variant of the rspack shape (docs/benchmarks.md, section 11,
    Rust variant): bench/gen_calls.py rspack-rust writes the same 100,000
    functions, calls and arithmetic as the C (one model), as one crate
    `rsgen` (module mM: functions M*100..M*100+99), compiled to an rlib with
    XRay sleds; bench/rspack_addon.rs, the hand-written N-API glue (no
    sleds), links it into a cdylib node loads. Two builds: 16 codegen units
    (a release build's) and 1 (for the symbolizer). rustc only, no cargo:
    nothing is fetched. Cached by the generated code's hash and rustc's
    version; the build times and peak RSS are kept in build.json. Returns
    {"node": .., "node1": .., "build": {..}}, or None without rustc."""
    if not shutil.which("rustc"):
        warn("rspack rust: no rustc: the Rust variant is skipped")
        return None
    root = os.path.join(B, "rspack-rust")
    gen_d = os.path.join(root, "gen")
    rm(gen_d)
    sh([sys.executable, os.path.join(BENCH, "gen_calls.py"), "rspack-rust", gen_d])
    glue = os.path.join(BENCH, "rspack_addon.rs")
    rustv = subprocess.run(["rustc", "-vV"], stdout=subprocess.PIPE, text=True).stdout
    h = hashlib.sha256()
    for f in (os.path.join(gen_d, "rsgen.rs"), glue):
        h.update(open(f, "rb").read())
    h.update(f"{RS_RUSTFLAGS} {RS_CGUS} {rustv}".encode())
    d = os.path.join(root, h.hexdigest()[:12])
    out = {"node": os.path.join(d, "rspack_rs.node"),
           "node1": os.path.join(d, "rspack_rs_1cgu.node")}
    info = os.path.join(d, "build.json")
    if all(os.path.exists(v) for v in (*out.values(), info)):
        log(f"rspack rust: cached build {d}")
        rm(gen_d)
        out["build"] = dict(json.load(open(info)), cached=True)
        return out
    rm(d)
    os.rename(gen_d, d)
    src = os.path.join(d, "rsgen.rs")
    env = {"RUSTC_BOOTSTRAP": "1"}
    log(f"rspack rust: compiling 100,000 functions with rustc, {RS_CGUS[0]} codegen units "
        f"and {RS_CGUS[1]}, at once (cached afterwards)")

    def rlib(cgus):
        return timed_sh(["rustc", *RS_RUSTFLAGS, "--crate-type", "rlib", "--crate-name", "rsgen",
                         "-C", f"codegen-units={cgus}", src, "-o",
                         os.path.join(d, f"librsgen_{cgus}.rlib")], env)

    t0 = time.time()
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            built = dict(zip(RS_CGUS, ex.map(rlib, RS_CGUS)))
        build = {"rustc": rustv.splitlines()[0], "both_wall_s": time.time() - t0,
                 "loadavg": os.getloadavg()[0]}
        for cgus, node in zip(RS_CGUS, (out["node"], out["node1"])):
            # -C link-dead-code: keep the 84,000 functions nothing calls, as
            # the C build keeps them (the linker's --gc-sections drops them)
            lw, lm = timed_sh(["rustc", "--edition", "2021", "--crate-type", "cdylib",
                               "--crate-name", "rspack_rs", "-C", "opt-level=2", "-g",
                               "-C", "link-dead-code", "--extern",
                               f"rsgen={os.path.join(d, f'librsgen_{cgus}.rlib')}", glue,
                               "-o", node], env)
            build[f"cgu{cgus}"] = {"rlib_wall_s": built[cgus][0], "rlib_rss_mb": built[cgus][1],
                                   "link_wall_s": lw, "link_rss_mb": lm}
    except RuntimeError as ex_:
        warn(f"rspack rust: the build failed, the Rust variant is skipped: {ex_}")
        rm(d)
        return None
    for f in glob.glob(os.path.join(d, "*.rlib")) + [src]:
        rm(f)
    for old in glob.glob(os.path.join(root, "*")):  # older builds, once this one stands
        if os.path.isdir(old) and old != d:
            rm(old)
    with open(info, "w") as f:
        json.dump(build, f, indent=1)
    log(f"rspack rust: built in {build['both_wall_s']:.0f} s (" + ", ".join(
        f"{c} CGU{'s' if c > 1 else ''} {build[f'cgu{c}']['rlib_wall_s']:.0f} s, "
        f"{(build[f'cgu{c}']['rlib_rss_mb'] or 0) / 1024:.1f} GB" for c in RS_CGUS) + ")")
    out["build"] = build
    return out


def build_symsbench():
    exe = os.path.join(B, "symsbench")
    inc = ["-I" + os.path.join(ROOT, x) for x in ("common", "include", "lib")]
    sh(["cc", "-D_GNU_SOURCE", "-std=gnu11", "-O2", "-g", *inc,
        os.path.join(BENCH, "symsbench.c"),
        *[os.path.join(ROOT, "lib", f) for f in ("symbols.c", "logread.c", "xraymap.c")],
        "-o", exe, "-lelf", "-ldw", "-lz", "-liberty"])
    return exe


def bench_rspack(w):
    """Both shapes of the rspack workload in one run: the C addon and its Rust
    variant make the same calls (one model, bench/gen_calls.py), so the C
    counting build's count and checksum are both's. Recordings of both are
    interleaved, then the readers on both logs, then the symbolizer.
    Returns (C results, Rust results or None)."""
    if not shutil.which("node") or not os.path.exists("/usr/include/node/node_api.h"):
        warn("rspack: no node or no /usr/include/node/node_api.h (Debian package nodejs): skipped")
        return None, None
    rs = build_rspack()
    rr = build_rspack_rust()
    js = os.path.join(BENCH, "rspack.js")
    threads, roots = RS_THREADS, RS_ROOTS
    _, out, _ = run([rs["count"], str(threads), str(roots)])
    m = re.search(r"events=(\d+) checksum=(\w+)", out)
    if not m:
        warn(f"rspack: the counting build says {out.strip()!r}")
        return None, None
    exp, checksum = int(m.group(1)), m.group(2)
    d = os.path.join(B, "rspack", "run")
    os.makedirs(d, exist_ok=True)
    shapes = {"C": {"node": rs["node"], "log": os.path.join(d, "rspack.log"),
                    "syms": (("8 compile units", rs["node"]), ("1 compile unit", rs["node1"]))}}
    if rr:
        shapes["Rust"] = {"node": rr["node"], "log": os.path.join(d, "rspack_rs.log"),
                          "syms": ((f"{RS_CGUS[0]} codegen units", rr["node"]),
                                   (f"{RS_CGUS[1]} codegen unit", rr["node1"]))}

    def same_output(name, out):
        if f"checksum={checksum}" not in out:
            warn(f"rspack {name}: output {out.strip()!r}, expected checksum={checksum}")

    def untraced(shape):
        args = ["node", js, shapes[shape]["node"], str(threads), str(roots)]

        def f(rep):
            r, out, _ = run(args)
            same_output(f"{shape} untraced", out)
            r["events"] = exp
            return r
        return f

    def traced(shape):
        logf = shapes[shape]["log"]
        args = ["node", js, shapes[shape]["node"], str(threads), str(roots)]

        def f(rep):
            rm(logf)
            r, out, err = run([SF, "record", "-o", logf, "--", *args])
            same_output(f"{shape} sftrace", out)
            s = sftrace_summary(err) or {"events": None}
            r["events"] = s["events"]
            r["bytes"] = os.path.getsize(logf) if os.path.exists(logf) else None
            if s["events"] != exp:
                warn(f"rspack {shape} sftrace: {s['events']} events recorded, {exp} expected")
            return r
        return f

    variants = []
    for shape in shapes:
        variants += [((shape, "node, untraced"), untraced(shape)),
                     ((shape, "sftrace record"), traced(shape))]
    log(f"rspack: node + addon ({' and '.join(shapes)}), {threads} threads x {roots:,} roots = "
        f"{exp:,} events, {len(variants)} variants x {REPS} runs")
    allruns = interleave(variants, REPS)
    res = {}
    for shape in shapes:
        runs = {n: allruns[(sh_, n)] for sh_, n in allruns if sh_ == shape}
        res[shape] = {"threads": threads, "roots": roots, "events": exp, "calls": exp // 2,
                      "runs": runs, "record": overheads(runs, "node, untraced", exp)}
    if rr:
        # the object's sleds: every generated function, and only them (the
        # glue has none, so every event is a generated function's)
        o = subprocess.run([SF, "info", "--format", "json", shapes["Rust"]["log"]],
                           stdout=subprocess.PIPE, text=True).stdout
        try:
            objs = json.loads(o)["objects"]
            res["Rust"]["object"] = {"functions": objs[0]["functions"], "sleds": objs[0]["sleds"]}
            if len(objs) != 1 or objs[0]["functions"] != 100000:
                warn(f"rspack Rust: the log's objects: {objs}, expected 100,000 functions")
        except (ValueError, KeyError, IndexError):
            warn(f"rspack Rust: sftrace info says {o[-200:]!r}")
        res["Rust"]["build"] = rr["build"]
    # the readers, on each shape's last log
    calls = exp // 2

    def reader(cmd, out=None, env=None):
        def f(rep):
            if out:
                rm(out)
            r, o, e = run(cmd, env=env)
            r["stderr"] = e[-300:]
            if out:
                rm(out)
            return r
        return f

    readers = []
    for shape, sd in shapes.items():
        logf, tag = sd["log"], "" if shape == "C" else "_rs"
        db = os.path.join(d, f"rspack{tag}.db")
        pb = os.path.join(d, f"rspack{tag}.pb.gz")
        readers += [((shape, n), f) for n, f in (
            ("info", reader([SF, "info", logf])),
            ("report -j 2", reader([SF, "report", "-q", "-j", "2", logf])),
            ("report -j 1", reader([SF, "report", "-q", "-j", "1", logf])),
            ("report -j 2 --no-lines", reader([SF, "report", "-q", "-j", "2", "--no-lines",
                                               logf])),
            ("convert (Perfetto .pb.gz)", reader([SF, "convert", "-q", logf, "-o", pb], pb)),
            ("convert --format sqlite", reader([SF, "convert", "-q", "--format", "sqlite", logf,
                                                "-o", db], db)),
            ("convert --format sqlite --indexes",
             reader([SF, "convert", "-q", "--format", "sqlite", "--indexes", logf, "-o", db],
                    db)))]
        if shape == "Rust":
            # a diagnostic: the call engine's unwinding rule (a Rust object
            # can unwind, so every entry is checked) switched off, to show
            # its share of report's time; the C object never turns it on
            readers.append(((shape, "report -j 1, SFTRACE_NO_UNWIND_RULE=1"),
                            reader([SF, "report", "-q", "-j", "1", logf],
                                   env={"SFTRACE_NO_UNWIND_RULE": "1"})))
    log(f"rspack: {len(readers)} readers x {REPS} runs on the {exp:,}-event logs "
        f"({', '.join(shapes)})")
    allr = interleave(readers, REPS)
    sb = build_symsbench()
    for shape, sd in shapes.items():
        rruns = {n: allr[(sh_, n)] for sh_, n in allr if sh_ == shape}
        rsum = {}
        for n, rs_ in rruns.items():
            rsum[n] = {"wall_s": stats([r["wall"] for r in rs_]),
                       "cpu_s": stats([r["cpu"] for r in rs_]),
                       "mev_per_s": stats([exp / r["wall"] / 1e6 for r in rs_]),
                       "mev_per_cpu_s": stats([exp / r["cpu"] / 1e6 for r in rs_
                                               if r["cpu"] > 0]),
                       "mcalls_per_s": stats([calls / r["wall"] / 1e6 for r in rs_]),
                       "maxrss_mb": stats([r["maxrss_kb"] / 1024 for r in rs_
                                           if r["maxrss_kb"]])}
        logf = sd["log"]
        res[shape].update({"log_bytes": os.path.getsize(logf) if os.path.exists(logf) else None,
                           "reader_runs": rruns, "readers": rsum})
        rm(logf)
        # the symbolizer: names and lines of every function, many units and 1
        sym = {}
        for name, obj in sd["syms"]:
            vals = []
            for _ in range(REPS):
                _, o, _ = run([sb, obj])
                mm = re.search(r"funcs (\d+) resolve_s ([\d.]+) names_s ([\d.]+) "
                               r"lines_s ([\d.]+) total_s ([\d.]+)", o)
                if mm:
                    vals.append({"funcs": int(mm.group(1)), "total_s": float(mm.group(5)),
                                 "names_s": float(mm.group(3)), "lines_s": float(mm.group(4))})
                else:
                    warn(f"symsbench {obj}: {o.strip()[-200:]!r}")
            sym[name] = {"funcs": vals[0]["funcs"] if vals else None,
                         "total_s": stats([v["total_s"] for v in vals]),
                         "names_s": stats([v["names_s"] for v in vals]),
                         "lines_s": stats([v["lines_s"] for v in vals])}
        res[shape]["symbols"] = sym
    return res["C"], res.get("Rust")


# ---------------------------------------------------------------- report

def f1(x, nd=1):
    return "-" if x is None else f"{x:.{nd}f}"


def mmm(s, nd=1, scale=1.0):
    """median [min..max]"""
    if not s:
        return "-"
    return (f"{s['median'] * scale:.{nd}f} [{s['min'] * scale:.{nd}f}..{s['max'] * scale:.{nd}f}]")


def table(head, rows):
    w = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"
    return "\n".join([line(head), "|" + "|".join("-" * (x + 2) for x in w) + "|"] +
                     [line(r) for r in rows])


def record_table(s):
    """The table of a recording section's summary: one row per variant."""
    rows = []
    fdr = s.get("xray-fdr", {}).get("ns_per_event_cpu")
    for n, v in s.items():
        ratio = "-"
        if fdr and n not in ("untraced", "xray-unpatched") and fdr["median"] > 0:
            ratio = f"{v['ns_per_event_cpu']['median'] / fdr['median']:.2f}"
        rows.append([n, mmm(v["wall_s"], 3), mmm(v["cpu_s"], 3),
                     "-" if n == "untraced" else mmm(v["ns_per_event_wall"]),
                     "-" if n == "untraced" else mmm(v["ns_per_event_cpu"]),
                     ratio, mmm(v["bytes_per_event"], 2), f1((v["maxrss_mb"] or {}).get("median"), 0)])
    return table(["variant", "wall s", "CPU s (user+sys)", "ns/event wall", "ns/event CPU",
                  "CPU cost / FDR's", "bytes/event", "peak RSS MB"], rows)


def rspack_tables(rs, what):
    """The tables of one rspack shape: recording, readers, symbolizer."""
    md = [record_table(rs["record"])]
    md.append(f"\nLog: {(rs['log_bytes'] or 0) / 1e6:.1f} MB.\n")
    rows = []
    for n, v in rs["readers"].items():
        sql = "sqlite" in n
        rows.append([n, mmm(v["wall_s"], 3), mmm(v["cpu_s"], 3),
                     mmm(v["mcalls_per_s"] if sql else v["mev_per_s"], 1),
                     mmm(v["mev_per_cpu_s"], 1) if not sql else "-",
                     f1((v["maxrss_mb"] or {}).get("median"), 0)])
    md.append(table(["reader", "wall s", "CPU s", "M events/s (sqlite: M calls/s), wall",
                     "M events per CPU-s", "peak RSS MB"], rows))
    rows = [[n, f"{v['funcs']:,}" if v["funcs"] else "-", mmm(v["total_s"], 3),
             mmm(v["names_s"], 3), mmm(v["lines_s"], 3)] for n, v in rs["symbols"].items()]
    md.append(f"\nThe symbolizer on the {what} (bench/symsbench.c: names, then lines, of "
              "every function):\n")
    md.append(table(["object", "functions", "names + lines s", "names s", "lines s"], rows))
    return md


def report(res):
    md = []
    m = res["machine"]
    md.append(f"Machine: {m.get('Model name')}, {m.get('cores')} cores"
              f" ({m.get('Hypervisor vendor', 'no')} hypervisor), {m.get('mem_total_gib')} GiB,"
              f" Linux {m['kernel']}, clocksource {m.get('clocksource')}; {m['date']}; "
              f"load average at start {m['loadavg_start'][0]:.2f}, at end "
              f"{m.get('loadavg_end', [0])[0]:.2f}; {REPS} runs each; median [min..max].")
    if res.get("loadavg_at"):
        md.append("Load average (1 min) at the start of each section: " + ", ".join(
            f"{k} {v:.2f}" for k, v in res["loadavg_at"].items()) + ".")
    md.append("Versions: " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    fl = res.get("floor")
    if fl:
        md.append("\n### Floor\n")
        md.append(table(["what", "ns"], [
            ["rdtsc (tight loop)", mmm(fl["rdtsc_ns"], 2)],
            ["rdtscp (tight loop)", mmm(fl["rdtscp_ns"], 2)],
            ["call + rdtsc + 8-byte store + ret", mmm(fl["call_rdtsc_store_ns"], 2)]]))
    for key, title in (("mt", "4 threads"), ("st", "1 thread")):
        rr = res.get("record", {}).get(key)
        if not rr:
            continue
        md.append(f"\n### Recording: {title}, {rr['events']:,} events "
                  f"({rr['threads']} x {rr['iters']} iterations)\n")
        md.append(record_table(rr["summary"]))
    bz = res.get("busy")
    if bz:
        md.append(f"\n### Every core busy, 4,096 functions in a pseudo-random order: "
                  f"{bz['events']:,} events ({bz['threads']} threads x {bz['steps']:,} steps)\n")
        md.append(record_table(bz["summary"]))
    fr = res.get("filter")
    if fr:
        md.append(f"\n### Filters: {fr['threads']} threads, {fr['events_unfiltered']:,} "
                  f"events unfiltered\n")
        rows = []
        for n, v in fr["summary"].items():
            rows.append([n, f1(v["events"]["median"], 0), mmm(v["wall_s"], 3),
                         "-" if n == "untraced" else mmm(v["added_ms_wall"], 0),
                         "-" if n == "untraced" else mmm(v["ns_per_call_event_wall"], 2),
                         "-" if n == "untraced" else mmm(v["ns_per_recorded_event_wall"], 1),
                         "-" if n == "untraced" else mmm(v["ns_per_recorded_event_cpu"], 1)])
        md.append(table(["filter", "events recorded", "wall s", "added ms (wall)",
                         "ns per workload event (wall)", "ns per recorded event (wall)",
                         "ns per recorded event (CPU)"], rows))
    cv = res.get("convert")
    if cv:
        md.append(f"\n### Conversion\n")
        rows = []
        for n, v in cv["summary"].items():
            rows.append([n, mmm(v["wall_s"], 2), mmm(v["mev_per_s"], 2),
                         mmm(v["maxrss_mb"], 0), mmm(v["cpu_s"], 2), f1(v["out_mb"]["median"]
                                                                        if v["out_mb"] else None)])
        md.append(table(["conversion, events", "wall s", "M events/s", "peak RSS MB",
                         "CPU s", "output MB"], rows))
        md.append("\nInput sizes (small logs): " + ", ".join(
            f"{k} {v / 1e6:.1f} MB" for k, v in cv["input_bytes_small"].items()))
    st = res.get("startup")
    if st:
        md.append(f"\n### Start-up: {st['functions']:,} functions, {st['sleds']:,} sleds "
                  f"(shared object: {st['so_sleds']:,} sleds)\n")
        rows = []
        for n, v in st["summary"].items():
            extra = ""
            if "dlopen_ms" in v:
                extra = mmm(v["dlopen_ms"], 1)
            rows.append([n, mmm(v["wall_ms"], 1), "-" if n == "untraced" else
                         mmm(v["added_ms"], 1), extra, f1((v["maxrss_mb"] or {}).get("median"), 0)])
        md.append(table(["run", "wall ms", "added ms vs untraced", "dlopen() ms",
                         "peak RSS MB"], rows))
        da = st["summary"]["dlopen sftrace record"].get("dlopen_added_ms")
        md.append(f"\ndlopen() time added by sftrace (patching {st['so_sleds']:,} sleds): "
                  f"{mmm(da, 1)} ms")
    lu = res.get("lua")
    if lu:
        md.append(f"\n### Real program: Debian lua5.4 ({lu['source']}), {lu['functions']:,} "
                  f"functions, {lu['sleds']:,} sleds; workload.lua {lu['script_arg']}\n")
        rows = []
        for n, v in lu["summary"].items():
            rows.append([n, mmm(v["wall_s"], 3), mmm(v["cpu_s"], 3),
                         f1(v.get("events", {}).get("median") if v.get("events") else None, 0),
                         mmm(v.get("ns_per_event_wall")), mmm(v.get("ns_per_event_cpu")),
                         mmm(v.get("bytes_per_event"), 2), mmm(v.get("log_mb"), 1)])
        md.append(table(["run", "wall s", "CPU s", "events", "ns/event wall", "ns/event CPU",
                         "bytes/event", "log MB"], rows))
    rs = res.get("rspack")
    if rs:
        md.append(f"\n### rspack-shaped: a node addon of 100,000 functions, {rs['threads']} "
                  f"native threads x {rs['roots']:,} roots = {rs['events']:,} events "
                  f"({rs['calls']:,} calls)\n")
        md += rspack_tables(rs, "addon")
    rr = res.get("rspack_rust")
    if rr:
        md.append(f"\n### rspack-shaped, Rust variant: a Rust cdylib of 100,000 functions "
                  f"(the same calls), {rr['threads']} native threads x {rr['roots']:,} roots = "
                  f"{rr['events']:,} events ({rr['calls']:,} calls)\n")
        bd = rr["build"]
        md.append(f"Built with {bd['rustc']}: " + ", ".join(
            f"{c} codegen unit{'s' if c > 1 else ''} {bd[f'cgu{c}']['rlib_wall_s']:.0f} s "
            f"(peak RSS {f1((bd[f'cgu{c}']['rlib_rss_mb'] or 0) / 1024)} GB) + link "
            f"{bd[f'cgu{c}']['link_wall_s']:.1f} s" for c in RS_CGUS) +
            f"; both at once {bd['both_wall_s']:.0f} s wall, load {bd['loadavg']:.2f} at the end."
            f"{' (cached: built by an earlier run)' if bd.get('cached') else ''}\n")
        md += rspack_tables(rr, "cdylib")
    g = goals(res)
    if g:
        md.append("\n### Goals\n")
        md.append(table(["goal", "target", "measured", "status"],
                        [[x["goal"], x["target"], x["measured"], x["status"]] for x in g]))
    if WARN:
        md.append("\n### Warnings\n")
        md += [f"- {x}" for x in WARN]
    return "\n".join(md) + "\n"


def goals(res):
    g = []

    def add(goal, target, value, ok, fmt):
        g.append({"goal": goal, "target": target, "value": value,
                  "measured": fmt.format(value) if value is not None else "-",
                  "status": "-" if value is None else ("met" if ok else "missed")})

    rec = res.get("record", {})
    for key, label in (("mt", "4 threads"), ("st", "1 thread")):
        s = rec.get(key, {}).get("summary")
        if not s:
            continue
        sf = s["sftrace"]
        for kind in ("wall", "cpu"):
            v = sf[f"ns_per_event_{kind}"]["median"]
            add(f"sftrace ns/event ({label}, {kind})", "<= 12", v, v <= 12, "{:.1f}")
        for kind in ("wall", "cpu"):
            fdr = s["xray-fdr"][f"ns_per_event_{kind}"]["median"]
            v = sf[f"ns_per_event_{kind}"]["median"] / fdr if fdr > 0 else None
            add(f"sftrace cost / XRay FDR's ({label}, {kind})", "<= 0.20", v,
                v is not None and v <= 0.2, "{:.2f}")
        v = sf["bytes_per_event"]["median"]
        add(f"sftrace bytes/event ({label})", "<= 6", v, v <= 6, "{:.2f}")
    bz = res.get("busy")
    if bz:
        s = bz["summary"]
        v = s["sftrace"]["ns_per_event_cpu"]["median"]
        add("sftrace CPU ns/event, every core busy, 4,096 functions", "<= 15", v, v <= 15,
            "{:.1f}")
        v = s["sftrace"]["bytes_per_event"]["median"]
        add("sftrace bytes/event, every core busy, 4,096 functions", "<= 2.5", v, v <= 2.5,
            "{:.2f}")
        fdr = s["xray-fdr"]["ns_per_event_cpu"]["median"]
        v = s["sftrace"]["ns_per_event_cpu"]["median"] / fdr if fdr > 0 else None
        add("sftrace CPU cost / XRay FDR's, every core busy, 4,096 functions", "<= 0.20", v,
            v is not None and v <= 0.2, "{:.2f}")
    for key, label in (("rspack", "rspack-shaped"), ("rspack_rust", "rspack-shaped, Rust")):
        rs = res.get(key)
        if not rs:
            continue
        v = rs["record"]["sftrace record"]["bytes_per_event"]["median"]
        add(f"{label}: bytes/event", "<= 3", v, v <= 3, "{:.2f}")
        for n in ("report -j 2", "report -j 2 --no-lines"):
            v = rs["readers"][n]["mev_per_s"]["median"]
            add(f"{label}: {n}, M events/s (wall)", ">= 100", v, v >= 100, "{:.1f}")
        for n in ("convert --format sqlite", "convert --format sqlite --indexes"):
            if n not in rs["readers"]:  # results.json of an older run
                continue
            v = rs["readers"][n]["mcalls_per_s"]["median"]
            add(f"{label}: {n}, M calls/s (wall)", ">= 3", v, v >= 3, "{:.2f}")
        for n, x in rs["symbols"].items():
            if x["total_s"]:
                v = x["total_s"]["median"]
                add(f"{label}: names + lines, 100k functions, {n} (s)", "< 2", v, v < 2,
                    "{:.3f}")
    lu = res.get("lua")
    if lu and lu["summary"]["sftrace record"].get("ns_per_event_wall"):
        t = lu["summary"]["sftrace record"]
        v = t["ns_per_event_wall"]["median"]
        add("sftrace ns/event (lua5.4, wall)", "<= 12", v, v <= 12, "{:.1f}")
        v = t["bytes_per_event"]["median"]
        add("sftrace bytes/event (lua5.4)", "<= 6", v, v <= 6, "{:.2f}")
    cv = res.get("convert")
    if cv:
        for n, v in cv["summary"].items():
            if n.startswith("sftrace convert") and (".pb.gz" in n or ".json.gz" in n):
                x = v["mev_per_s"]["median"]
                add(f"{n}: M events/s", ">= 10", x, x >= 10, "{:.2f}")
                x = v["maxrss_mb"]["max"]
                add(f"{n}: peak RSS MB", "< 200", x, x < 200, "{:.0f}")
    st = res.get("startup")
    if st:
        x = st["summary"]["sftrace runtime preloaded"]["added_ms"]["median"]
        add(f"start-up + patching {st['sleds']:,} sleds (ms)", "< 100", x, x < 100, "{:.1f}")
        x = st["summary"]["dlopen sftrace record"]["dlopen_added_ms"]["median"]
        add(f"dlopen() added, {st['so_sleds']:,} sleds (ms)", "< 100", x, x < 100, "{:.1f}")
    return g


def main():
    os.makedirs(B, exist_ok=True)
    for p in (SF, LIB):
        if not os.path.exists(p):
            sys.exit(f"bench: {p} missing: run `make` first (make bench does)")
    res = {"machine": machine_info(), "reps": REPS, "quick": QUICK, "sizes": SIZES}
    la = res["machine"]["loadavg_start"][0]
    log(f"sftrace benchmarks: {REPS} runs each{' (QUICK sizes)' if QUICK else ''}; "
        f"load average {la:.2f}")
    if la > 1.0:
        warn(f"load average {la:.2f} at start: other work is running, figures will be noisy")
    res["loadavg_at"] = {}

    def want(sec):
        if ONLY and sec not in ONLY:
            return False
        res["loadavg_at"][sec] = os.getloadavg()[0]
        return True

    w = build_workloads()
    log("built the workloads")
    if want("floor"):
        res["floor"] = bench_floor(w)
    keep_mt = {}
    if want("record"):
        res["record"] = bench_record(w, keep_mt)
    if want("busy"):
        res["busy"] = bench_busy(w)
    if want("filter"):
        res["filter"] = bench_filter(w)
    if want("convert"):
        res["convert"] = bench_convert(w, keep_mt)
    for v in keep_mt.values():
        rm(v)
    if want("startup"):
        res["startup"] = bench_startup(w)
    if want("lua"):
        res["lua"] = bench_lua(w)
    if want("rspack"):
        res["rspack"], res["rspack_rust"] = bench_rspack(w)
    res["machine"]["loadavg_end"] = os.getloadavg()
    res["elapsed_s"] = time.time() - T_START
    res["goals"] = goals(res)
    res["warnings"] = WARN
    md = report(res)
    with open(os.path.join(B, "results.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(B, "results.md"), "w") as f:
        f.write(md)
    rm(os.path.join(B, "tmp"))
    print()
    print(md)
    log(f"done in {res['elapsed_s']:.0f} s: {os.path.join(B, 'results.json')}, "
        f"{os.path.join(B, 'results.md')}")


if __name__ == "__main__":
    main()
