#!/usr/bin/env python3
"""syms.py - the symbolizer benchmark (issue 10), run by bench/syms.sh.

Builds, under build/bench/syms/ (cached by generator content and size):
  - C programs of N functions in ONE compile unit (bench/gen_syms.py c),
    clang -O2 -g -fxray-instrument -fxray-instruction-threshold=1;
  - a Rust cdylib of 100k #[inline(never)] functions (gen_syms.py rust),
    RUSTC_BOOTSTRAP=1 rustc -Zinstrument-xray=always -C opt-level=1 -g, with
    the default codegen units (16) and with -C codegen-units=1; and one of
    10k functions with one codegen unit for the old code, which needs
    minutes for more;
  - bench/symsbench.c twice: with lib/symbols.c (new) and with the
    lib/symbols.c of commit cdafdde (old), the anchor.
Then it times, interleaved round-robin, symbolizing every XRay function of
each object (name, then file:line) with both, and `sftrace convert` and
`sftrace dump -l` of a log with an entry and an exit of every function.
Prints a markdown table (medians, [min..max]) and writes it to
build/bench/syms/results.md.

SYMS_REPS=N runs (default 5; the old code 3 at most, and once for objects
where one run takes a minute); SYMS_QUICK=1 small sizes only.
"""
import hashlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B = os.path.join(ROOT, "build", "bench", "syms")
GEN = os.path.join(ROOT, "bench", "gen_syms.py")
SFTRACE = os.path.join(ROOT, "build", "sftrace")
OLD_COMMIT = "cdafdde"
sys.path.insert(0, os.path.join(ROOT, "tests"))
import logsynth as ls  # noqa: E402

REPS = int(os.environ.get("SYMS_REPS", "5"))
QUICK = os.environ.get("SYMS_QUICK") == "1"


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def digest(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
    return h.hexdigest()[:12]


def gen_hash():
    with open(GEN, "rb") as f:
        return f.read()


def build_c(n):
    out = os.path.join(B, "c%d_%s" % (n, digest(gen_hash(), n)))
    if not os.path.exists(out):
        src = out + ".c"
        run(["python3", GEN, "c", src, str(n)])
        run(["clang", "-O2", "-g", "-fxray-instrument", "-fxray-instruction-threshold=1",
             src, "-o", out + ".tmp"])
        os.replace(out + ".tmp", out)
    return out


def build_rust(n, cgus):
    tag = "cgu%d" % cgus if cgus else "cgudef"
    out = os.path.join(B, "r%d_%s_%s.so" % (n, tag, digest(gen_hash(), n)))
    if not os.path.exists(out):
        src = os.path.join(B, "r%d_%s.rs" % (n, digest(gen_hash(), n)))
        run(["python3", GEN, "rust", src, str(n)])
        cmd = ["rustc", "--crate-type", "cdylib", "-Zinstrument-xray=always", "-C", "opt-level=1",
               "-g", src, "-o", out + ".tmp"]
        if cgus:
            cmd[1:1] = ["-C", "codegen-units=%d" % cgus]
        print("building %s (a minute or two)" % os.path.basename(out), flush=True)
        run(cmd, env=dict(os.environ, RUSTC_BOOTSTRAP="1"))
        os.replace(out + ".tmp", out)
    return out


def build_drivers():
    flags = ["-D_GNU_SOURCE", "-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror"]
    libs = ["-lelf", "-ldw", "-lz", "-liberty"]
    inc = ["-I" + os.path.join(ROOT, d) for d in ("common", "include", "lib")]
    drv = os.path.join(ROOT, "bench", "symsbench.c")
    lib = [os.path.join(ROOT, "lib", f) for f in ("logread.c", "xraymap.c")]
    new = os.path.join(B, "symsbench_new")
    run(["cc"] + flags + inc + [drv, os.path.join(ROOT, "lib", "symbols.c")] + lib +
        ["-o", new] + libs)
    old_dir = os.path.join(B, "old")
    os.makedirs(old_dir, exist_ok=True)
    for f in ("symbols.c", "symbols.h"):
        text = run(["git", "-C", ROOT, "show", "%s:lib/%s" % (OLD_COMMIT, f)]).stdout
        with open(os.path.join(old_dir, f), "w") as fh:
            fh.write(text)
    old = os.path.join(B, "symsbench_old")
    run(["cc"] + flags + ["-DSYMS_OLD", "-I" + old_dir] + inc +
        [drv, os.path.join(old_dir, "symbols.c")] + lib + ["-o", old] + libs)
    return new, old


def make_log(obj):
    path = obj + ".sft"
    if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(obj):
        funcs = ls.xray_functions(obj)
        log = ls.Log(create_mono_ns=0)
        log.process(1, clock=ls.MONO)
        log.object(1, 1, funcs, obj, ls.build_id(obj))
        evs = []
        for i in range(len(funcs)):
            evs += [("entry", 2 * i + 1, i + 1), ("exit", 2 * i + 2, i + 1)]
        _, r = ls.encode(evs)
        log.events(1, 1, r)
        log.write(path)
    return path


def time_driver(drv, obj):
    p = run([drv, obj])
    f = p.stdout.split()
    d = {f[i]: f[i + 1] for i in range(1, len(f) - 1, 2)}
    return {"total": float(d["total_s"]), "lines": float(d["lines_s"]),
            "names": float(d["names_s"]), "funcs": int(d["funcs"]), "linesum": d["linesum"]}


def time_cmd(cmd):
    t0 = time.monotonic()
    run(cmd)
    return {"total": time.monotonic() - t0}


def fmt(xs):
    if not xs:
        return "-"
    med = statistics.median(xs)
    if len(xs) == 1:
        return "%.3f (1 run)" % med if med < 10 else "%.1f (1 run)" % med
    f = "%.3f" if med < 10 else "%.1f"
    return (f + " [" + f + ".." + f + "]") % (med, min(xs), max(xs))


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            model = m.group(1) if m else ""
    except OSError:
        pass
    return "%s, %d CPUs, Linux %s" % (model, os.cpu_count(), platform.release())


def main():
    os.makedirs(B, exist_ok=True)
    new, old = build_drivers()
    cs = [2000, 4000] if QUICK else [2000, 4000, 8000, 16000, 32000]
    objs = [("C, 1 CU, %dk functions" % (n // 1000), build_c(n), n) for n in cs]
    if not QUICK:
        objs += [("Rust, 16 CGUs, 100k functions", build_rust(100000, 0), 100000),
                 ("Rust, 1 CGU, 100k functions", build_rust(100000, 1), 100000),
                 ("Rust, 1 CGU, 10k functions", build_rust(10000, 1), 10000)]
    # The old code: quadratic in the functions of a CU. Run it where one run
    # takes under about a minute; where it takes longer, once or not at all.
    old_reps = {}
    for label, obj, n in objs:
        if label.startswith("C") and n <= 16000:
            old_reps[obj] = min(REPS, 3)
        elif label.startswith("C") or "16 CGUs" in label:
            old_reps[obj] = 1
        elif n <= 10000:
            old_reps[obj] = min(REPS, 3)
    res = {}
    load0 = os.getloadavg()[0]
    for rep in range(REPS):
        for label, obj, n in objs:
            r = res.setdefault(obj, {"new": [], "old": [], "convert": [], "dump": []})
            r["new"].append(time_driver(new, obj))
            log = make_log(obj)
            r["convert"].append(time_cmd([SFTRACE, "convert", log, "-o", obj + ".pb.gz"]))
            r["dump"].append(time_cmd([SFTRACE, "dump", "-l", log]))
            if rep < old_reps.get(obj, 0):
                print("old code on %s (run %d)" % (label, rep + 1), flush=True)
                r["old"].append(time_driver(old, obj))
    load1 = os.getloadavg()[0]
    # Both must give the same answers (the sum of all line numbers).
    for label, obj, n in objs:
        r = res[obj]
        if r["old"] and r["old"][0]["linesum"] != r["new"][0]["linesum"]:
            print("WARNING: %s: old and new lines differ" % label)
    rows = ["| object | functions | new: names+lines (s) | old (cdafdde) (s) | old/new | "
            "`sftrace convert` (s) | `sftrace dump -l` (s) |",
            "|---|---|---|---|---|---|---|"]
    for label, obj, n in objs:
        r = res[obj]
        nt = [x["total"] for x in r["new"]]
        ot = [x["total"] for x in r["old"]]
        ratio = "%.0f×" % (statistics.median(ot) / statistics.median(nt)) if ot else "-"
        rows.append("| %s | %d | %s | %s | %s | %s | %s |" % (
            label, r["new"][0]["funcs"], fmt(nt), fmt(ot), ratio,
            fmt([x["total"] for x in r["convert"]]), fmt([x["total"] for x in r["dump"]])))
    c4 = [o for lbl, o, n in objs if n == 4000 and lbl.startswith("C")]
    c32 = [o for lbl, o, n in objs if n == 32000 and lbl.startswith("C")]
    notes = []
    if c4 and c32:
        for what in ("new", "convert"):
            a = statistics.median(x["total"] for x in res[c4[0]][what])
            b = statistics.median(x["total"] for x in res[c32[0]][what])
            notes.append("32k/4k functions, %s: %.1f× (goal < 12×)" %
                         ("symbolizer" if what == "new" else "`sftrace convert`", b / a))
    head = ["machine: %s" % machine(),
            "date: %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "sftrace: %s" % run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).stdout.strip(),
            "runs: %d (old code: as noted), interleaved; median [min..max]" % REPS,
            "load average: %.2f at the start, %.2f at the end" % (load0, load1)]
    text = "\n".join(["- " + h for h in head] + [""] + rows + [""] + ["- " + n for n in notes])
    print(text)
    with open(os.path.join(B, "results.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(B, "results.json"), "w") as f:
        json.dump({o: res[o] for _, o, _ in objs}, f, indent=1)


if __name__ == "__main__":
    main()
