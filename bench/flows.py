#!/usr/bin/env python3
"""flows.py - what recording flows costs: the rayon and tokio programs of
tests/programs/flows_rs (release build) recorded with flows (the default)
and with --no-flows, interleaved, medians of BENCH_REPS runs (default 9).

    python3 bench/flows.py          (after make all)

Prints, per program: median wall seconds of `sftrace record` with and
without flows, the ratio, the key records and flows the log holds, and
the spread (min..max). The machine may be shared: interleaving and medians
are there so that load changes hit both sides alike.
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SFTRACE = os.path.join(ROOT, "build", "sftrace")
SRC = os.path.join(ROOT, "tests", "programs", "flows_rs")
OUT = os.path.join(ROOT, "build", "bench", "flows_rs")
sys.path.insert(0, os.path.join(ROOT, "tests"))
from t_flows import CARGO_CONFIG  # noqa: E402  (one source replacement for both)


def build(release=True):
    os.makedirs(os.path.join(OUT, ".cargo"), exist_ok=True)
    shutil.copy(os.path.join(SRC, "Cargo.toml"), OUT)
    if os.path.isdir(os.path.join(OUT, "src")):
        shutil.rmtree(os.path.join(OUT, "src"))
    shutil.copytree(os.path.join(SRC, "src"), os.path.join(OUT, "src"))
    with open(os.path.join(OUT, ".cargo", "config.toml"), "w") as f:
        f.write(CARGO_CONFIG)
    env = dict(os.environ, RUSTC_BOOTSTRAP="1", RUSTFLAGS="-Zinstrument-xray=always -g")
    subprocess.run(["cargo", "build", "--offline", "-q"] + (["--release"] if release else []),
                   cwd=OUT, env=env, check=True)
    return os.path.join(OUT, "target", "release" if release else "debug")


def once(cmd, log, flows):
    extra = [] if flows else ["--no-flows"]
    t = time.monotonic()
    p = subprocess.run([SFTRACE, "record", "-o", log] + extra + ["--"] + cmd,
                       capture_output=True, text=True, env=dict(os.environ, FLOWS_WORK="1"))
    dt = time.monotonic() - t
    if p.returncode:
        sys.exit(p.stderr)
    return dt


def count(log):
    p = subprocess.run([SFTRACE, "dump", log], capture_output=True, text=True, check=True)
    keys = len(re.findall(r"\tkey\t", p.stdout))
    flows = len(re.findall(r"\tflow-in ", p.stdout))
    events = len(re.findall(r"\t(entry|exit|tailcall)\t", p.stdout))
    return events, keys, flows


def main():
    reps = int(os.environ.get("BENCH_REPS", "9"))
    rel = build()
    dbg = build(release=False)
    d = os.path.join(ROOT, "build", "bench")
    # release: what users run (rayon's pushes are inlined there, so only the
    # execute functions record keys); debug: every push records one too
    progs = [("rayon pfib(30) release", [os.path.join(rel, "rayon_flows"), "work", "30"]),
             ("rayon pfib(21) debug", [os.path.join(dbg, "rayon_flows"), "work", "21"]),
             ("rayon par_iter debug", [os.path.join(dbg, "rayon_flows"), "iter", "64"]),
             ("tokio 20000x50 release", [os.path.join(rel, "tokio_flows"), "20000", "50"]),
             ("tokio 2000x50 debug", [os.path.join(dbg, "tokio_flows"), "2000", "50"])]
    print("%-26s %9s %9s %7s %10s %7s %7s  spread on / off" % (
        "program", "flows s", "off s", "ratio", "events", "keys", "flows"))
    for name, cmd in progs:
        on, off = [], []
        log = os.path.join(d, "flows.log")
        for i in range(reps):
            # alternate which goes first, so drifting load hits both sides
            for fl in ((True, False) if i % 2 == 0 else (False, True)):
                (on if fl else off).append(once(cmd, log, fl))
        once(cmd, log, True)
        ev, keys, flows = count(log)
        mon, moff = statistics.median(on), statistics.median(off)
        print("%-26s %9.3f %9.3f %7.3f %10d %7d %7d  %.3f..%.3f / %.3f..%.3f" % (
            name, mon, moff, mon / moff, ev, keys, flows, min(on), max(on), min(off), max(off)))


if __name__ == "__main__":
    main()
