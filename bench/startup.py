#!/usr/bin/env python3
"""startup.py - what `sftrace record` adds to the wall time of every process
it starts: the cost a build (`make`, `pnpm build`) pays thousands of times.

  python3 bench/startup.py [--base BUILD_DIR] [--reps R] [--n N]

Workloads (each run starts N processes one after the other):
  fork /bin/true    spawnloop (bench/spawnloop.c, not instrumented): fork,
                    exec /bin/true, wait; the per-process median is measured
                    inside the loop
  vfork /bin/true   the same with vfork (posix_spawn's and make's way)
  fork tinyprog     an instrumented program (bench/tinyprog.c): start,
                    patching, a few events, exit
  sh loop           sh -c 'for i in $(seq N); do /bin/true; done': the
                    total wall time divided by N
Variants: untraced; LD_PRELOAD of libsftrace.so without SFTRACE_OUTPUT_FILE
(the runtime loaded, recording off); `sftrace record` of this build; and,
with --base, `sftrace record` of another build (a directory holding sftrace
and libsftrace.so), for an A/B comparison. Runs are interleaved round robin
(R rounds); figures are medians over the rounds. "added" is the variant's
per-process wall time minus the untraced one's; "cpu" is the CPU time of
the whole process tree (helpers included, bench/treecpu.c) per process,
minus the untraced one's. The load average is printed before and after:
on a busy machine every wait for another process costs a scheduling
latency, so compare runs made at the same load.

The record variants check the log's process and image counts (a mismatch is
printed); nothing is asserted on timing. Results: build/bench/startup.json
and build/bench/startup.md.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
B = os.path.join(ROOT, "build", "bench")
D = os.path.join(B, "startup-procs")


def sh(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        sys.exit("startup.py: build step failed: %s\n%s" % (" ".join(cmd), r.stdout[-2000:]))


def build():
    os.makedirs(D, exist_ok=True)
    tools = {}
    for name, flags in (("spawnloop", ["-O2"]), ("treecpu", ["-O2"]),
                        ("tinyprog", ["-O1", "-fxray-instrument",
                                      "-fxray-instruction-threshold=1"])):
        out = os.path.join(D, name)
        src = os.path.join(BENCH, name + ".c")
        if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
            sh(["clang", "-Wall", "-Werror", *flags, src, "-o", out])
        tools[name] = out
    return tools


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("SFTRACE_") or k.startswith("XRAY_") or k == "LD_PRELOAD")}
    env.update(extra or {})
    return env


def tree_cpu(treecpu, cmd, env=None):
    """Wall and CPU (user+sys of the whole tree) of one run."""
    t0 = time.perf_counter()
    p = subprocess.Popen([treecpu, *cmd], env=clean_env(env), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    out = p.stdout.read().decode(errors="replace")
    err = p.stderr.read().decode(errors="replace")
    _, status, ru = os.wait4(p.pid, 0)
    t1 = time.perf_counter()
    return os.waitstatus_to_exitcode(status), t1 - t0, ru.ru_utime + ru.ru_stime, out, err


def measure(reps, n, base=None):
    """Run the workloads; returns (results dict, markdown table)."""
    t = build()
    log = os.path.join(D, "sf.log")
    builds = [("record", os.path.join(ROOT, "build"))]
    if base:
        builds.append(("record (base)", os.path.abspath(base)))
    workloads = {
        "fork /bin/true": [t["spawnloop"], str(n), "fork", "/bin/true"],
        "vfork /bin/true": [t["spawnloop"], str(n), "vfork", "/bin/true"],
        "fork tinyprog": [t["spawnloop"], str(n), "fork", t["tinyprog"]],
        "sh loop /bin/true": ["/bin/sh", "-c", "for i in $(seq %d); do /bin/true; done" % n],
    }
    # images each record run must log: the driver (or sh, and seq) plus one per start
    images = {"fork /bin/true": n + 1, "vfork /bin/true": n + 1, "fork tinyprog": n + 1,
              "sh loop /bin/true": n + 2}
    variants = [("untraced", None, {}),
                ("preload, not recording", None,
                 {"LD_PRELOAD": os.path.join(ROOT, "build", "libsftrace.so")})]
    variants += [(name, d, {}) for name, d in builds]
    load0 = os.getloadavg()
    res = {w: {v[0]: [] for v in variants} for w in workloads}
    problems = []
    for rep in range(reps):
        for w, cmd in workloads.items():
            for vname, bdir, env in variants:
                full = cmd if bdir is None else [os.path.join(bdir, "sftrace"), "record", "-o",
                                                 log, "--", *cmd]
                if os.path.exists(log):
                    os.unlink(log)
                rc, wall, cpu, out, err = tree_cpu(t["treecpu"], full, env)
                if rc != 0:
                    problems.append("%s, %s: exit %d: %s" % (w, vname, rc, err.strip()[-300:]))
                m = re.search(r"median_us=([\d.]+)", out)
                per = float(m.group(1)) if m else wall * 1e6 / n
                if bdir is not None:
                    s = re.search(r"(\d+) process(?:es)?, (\d+) images?", err)
                    if not s or int(s.group(2)) != images[w]:
                        problems.append("%s, %s: the log has %s images, not %d" % (
                            w, vname, s.group(2) if s else "?", images[w]))
                res[w][vname].append({"per_us": per, "wall_s": wall, "cpu_s": cpu})
    load1 = os.getloadavg()
    summary = {}
    for w in workloads:
        base = statistics.median(r["per_us"] for r in res[w]["untraced"])
        bcpu = statistics.median(r["cpu_s"] for r in res[w]["untraced"])
        summary[w] = {}
        for vname, _, _ in variants:
            rs = res[w][vname]
            per = statistics.median(r["per_us"] for r in rs)
            cpu = statistics.median(r["cpu_s"] for r in rs)
            summary[w][vname] = {
                "per_process_ms": per / 1e3,
                "added_ms": (per - base) / 1e3,
                "added_min_ms": (min(r["per_us"] for r in rs) - base) / 1e3,
                "added_max_ms": (max(r["per_us"] for r in rs) - base) / 1e3,
                "cpu_added_ms": (cpu - bcpu) * 1e3 / n,
            }
    head = "| workload | variant | per process | added wall (min..max) | added CPU |"
    lines = ["load average %.2f %.2f %.2f before, %.2f %.2f %.2f after; %d cores; "
             "%d rounds of %d processes" % (*load0, *load1, os.cpu_count() or 0, reps, n),
             "", head, "|---|---|---:|---:|---:|"]
    for w in workloads:
        for vname, _, _ in variants:
            s = summary[w][vname]
            added = "-" if vname == "untraced" else "%.2f ms (%.2f..%.2f)" % (
                s["added_ms"], s["added_min_ms"], s["added_max_ms"])
            cpu = "-" if vname == "untraced" else "%.2f ms" % s["cpu_added_ms"]
            lines.append("| %s | %s | %.2f ms | %s | %s |" % (w, vname, s["per_process_ms"],
                                                             added, cpu))
    md = "\n".join(lines) + "\n"
    return {"load_before": load0, "load_after": load1, "n": n, "reps": reps, "runs": res,
            "summary": summary, "problems": problems}, md


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", help="another build directory (sftrace, libsftrace.so) to compare")
    ap.add_argument("--reps", type=int, default=int(os.environ.get("BENCH_REPS", "5")))
    ap.add_argument("--n", type=int, default=200, help="processes per run")
    a = ap.parse_args()
    res, md = measure(a.reps, a.n, a.base)
    print(md)
    for p in res["problems"]:
        print("problem: " + p)
    os.makedirs(B, exist_ok=True)
    with open(os.path.join(B, "startup.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(B, "startup.md"), "w") as f:
        f.write(md)
    return 1 if res["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
