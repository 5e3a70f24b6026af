"""t_memory.py - tests of `sftrace memory`: a C program (mem_stages.c, made-up
addresses through sftrace_alloc_event) and a Rust one (mem_rust, the in-repo
sftrace-setup crate's SftraceAllocator) with known allocation patterns in
stages: every figure exact (peak, live at each stage's end, leaked by call
path), folded stacks line by line, the SVG parsed; frees of unknown blocks,
double frees and reallocs of unknown blocks counted apart; threads' chunks
out of time order (a synthetic log) replayed in time order; the heap model
in its own thread (-j 2) giving the same output as in one (-j 1) when
either side of its queue is the busier (mem_many.c), and its memory bound;
selections and bad arguments."""
import json
import os
import subprocess
import xml.etree.ElementTree as ET

import logsynth as ls
import tl

SVG = "{http://www.w3.org/2000/svg}"
RUST_PROG = os.path.join(tl.PROGS, "mem_rust")


def _dir():
    return tl.outdir("memory")


def _tools():
    return [tl.SFTRACE] + ([tl.SFTRACE_ASAN] if os.path.exists(tl.SFTRACE_ASAN) else [])


def _c_log(name="stages", args=()):
    inc = os.path.join(tl.ROOT, "include")
    prog = tl.build_c("mem_stages.c", flags=tl.WARN_CFLAGS + ["-I" + inc],
                      libs=["-L" + tl.BUILD, "-lsftrace", "-Wl,-rpath," + tl.BUILD, "-lpthread"])
    log = os.path.join(_dir(), name + ".log")
    p = tl.record([prog] + list(args), log)
    assert p.stdout == "done\n", p.stdout
    return log


def memory(log, args=(), sftrace=None, check=True):
    return tl.run([sftrace or tl.SFTRACE, "memory", "-q"] + list(args) + [log], check=check)


def mjson(log, args=(), sftrace=None):
    p = memory(log, ["--format", "json", "--top", "0"] + list(args), sftrace)
    return json.loads(p.stdout)


def folded(log, args=(), sftrace=None):
    p = memory(log, ["--format", "folded", "-o", "-"] + list(args), sftrace)
    out = {}
    for ln in p.stdout.splitlines():
        stack, w = ln.rsplit(" ", 1)
        assert stack not in out, ln
        out[stack] = int(w)
    return out


def _paths(items, key="bytes"):
    return {";".join(x["path"]): x[key] for x in items}


def _no_negative(j):
    """No figure anywhere is negative (or wrapped around to near 2^64)."""
    def walk(x):
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        elif isinstance(x, int) and not isinstance(x, bool):
            assert 0 <= x < 2**62, x
    walk(j)


# ---- the C program ------------------------------------------------------------------

M = "main"
A = M + ";stage_a;alloc_a"
GB = M + ";stage_b;grow_b"
LB = M + ";stage_b;leak_b"
W = "worker;worker_alloc"
TC = M + ";stage_c;temp_c"
LC = M + ";stage_c;leak_c"
BC = M + ";stage_c;bad_c"


def test_c_stages_every_figure():
    log = _c_log()
    for sftrace in _tools():
        j = mjson(log, ["--milestone", "^stage_"], sftrace)
        _no_negative(j)
        assert j["order"]["exact"] and j["order"]["late_events"] == 0
        t = j["totals"]
        # allocs: A1 A2 A3, leak_b, worker, temp_c, leak_c; reallocs: grow_b, bad_c's
        assert (t["allocs"], t["frees"], t["reallocs"]) == (7, 4, 2), t
        assert t["bytes_allocated"] == 6000 + 6000 + 500 + 700 + 4096 + 100 + 48, t
        assert t["bytes_freed"] == 1000 + 700 + 3000 + 4096, t
        assert t["peak_bytes"] == 8000 + 500 + 4096, t
        assert (t["live_bytes"], t["live_blocks"]) == (8648, 4), t
        assert (t["unknown_frees"], t["unknown_free_bytes"]) == (1, 64), t
        assert t["double_frees"] == 1, t
        assert (t["unknown_reallocs"], t["unknown_realloc_bytes"]) == (1, 32), t
        assert t["unpaired_reallocs"] == t["live_address_allocs"] == t["null_allocs"] == 0, t
        # leaked by call path: the realloc moved A2 (alloc_a's) to its new address
        assert _paths(t["leaks"]) == {A: 8000, LB: 500, LC: 100, BC: 48}, t["leaks"]
        assert _paths(t["leaks"], "blocks") == {A: 1, LB: 1, LC: 1, BC: 1}
        [p] = j["processes"]
        assert p["peak_bytes"] == 12596 and p["live_bytes"] == 8648
        assert _paths(p["peak_paths"]) == {A: 8000, LB: 500, TC: 4096}, p["peak_paths"]
        assert _paths(p["allocated_paths"]) == {A: 12000, LB: 500, W: 700, TC: 4096, LC: 100,
                                                BC: 48}, p["allocated_paths"]
        # threads: the worker's block was freed by main, so it owns nothing at exit
        th = {x["tid"]: x for x in j["threads"]}
        assert len(th) == 2
        main = th[p["pid"]]
        [wk] = [x for x in th.values() if x is not main]
        assert (wk["allocs"], wk["frees"], wk["bytes_allocated"], wk["live_bytes"]) == \
            (1, 0, 700, 0), wk
        assert (main["allocs"], main["frees"], main["reallocs"], main["live_bytes"]) == \
            (6, 4, 2, 8648), main
        # stages
        st = j["stages"]
        assert [s["milestone"] for s in st] == [None, "stage_a", "stage_b", "stage_c"]
        want = [  # allocated, freed, live at end, peak, left at end, left at exit
            (0, 0, 0, 0, 0, 0),
            (6000, 1000, 5000, 6000, 5000, 8000),
            (6000 + 500 + 700, 700 + 3000, 8500, 12200, 500, 500),
            (4096 + 100 + 48, 4096, 8648, 12596, 148, 148),
        ]
        got = [(s["bytes_allocated"], s["bytes_freed"], s["live_end"], s["peak_bytes"],
                s["left_end_bytes"], s["left_exit_bytes"]) for s in st]
        assert got == want, got
        assert [s["live_start"] for s in st] == [0, 0, 5000, 8500]
        assert all(st[i]["end_ns"] == st[i + 1]["start_ns"] for i in range(3)), st
        left = {s["index"]: {";".join(x["path"]): (x["bytes_end"], x["blocks_end"],
                                                    x["bytes_exit"], x["blocks_exit"])
                             for x in s["left"]} for s in st}
        assert left == {0: {}, 1: {A: (5000, 2, 8000, 1)}, 2: {LB: (500, 1, 500, 1)},
                        3: {LC: (100, 1, 100, 1), BC: (48, 1, 48, 1)}}, left
        big = [(b["bytes"], ";".join(b["path"]), b["stage"]) for b in j["largest"]]
        assert big[:3] == [(8000, A, 2), (4096, TC, 3), (3000, A, 1)], big


def test_c_folded_line_by_line():
    log = _c_log()
    ms = ["--milestone", "^stage_"]
    for sftrace in _tools():
        assert folded(log, ms + ["--flame", "leak"], sftrace) == \
            {A: 8000, LB: 500, LC: 100, BC: 48}
        assert folded(log, ms + ["--flame", "peak"], sftrace) == {A: 8000, LB: 500, TC: 4096}
        assert folded(log, ms + ["--flame", "alloc"], sftrace) == \
            {A: 12000, LB: 500, W: 700, TC: 4096, LC: 100, BC: 48}
        # one stage: its allocations / its blocks live at exit / its own peak
        assert folded(log, ms + ["--flame", "alloc", "--stage", "1"], sftrace) == {A: 6000}
        assert folded(log, ms + ["--flame", "alloc", "--stage", "2"], sftrace) == \
            {A: 6000, LB: 500, W: 700}
        assert folded(log, ms + ["--flame", "leak", "--stage", "1"], sftrace) == {A: 8000}
        assert folded(log, ms + ["--flame", "leak", "--stage", "3"], sftrace) == \
            {LC: 100, BC: 48}
        got = folded(log, ms + ["--flame", "peak", "--stage", "2"], sftrace)
        # stage 2's peak (12200): A2 grown to 8000, A3's 3000 not freed yet, 500, 700
        assert got == {A: 11000, LB: 500, W: 700}, got
        assert folded(log, ms + ["--flame", "peak", "--stage", "1"], sftrace) == {A: 6000}
    # folded without milestones: the same whole-run figures
    assert folded(log, ["--flame", "leak"]) == {A: 8000, LB: 500, LC: 100, BC: 48}


def test_c_svg_parses():
    log = _c_log()
    out = os.path.join(_dir(), "mem.svg")
    for kind in ("leak", "peak", "alloc"):
        if os.path.exists(out):
            os.unlink(out)
        p = tl.run([tl.SFTRACE, "memory", "--flame", kind, "-o", out, log])
        assert "frames -> " + out in p.stderr, p.stderr
        root = ET.parse(out).getroot()
        assert root.tag == SVG + "svg"
        titles = [t.text for t in root.iter(SVG + "title")]
        assert any(t and t.startswith("leak_b") for t in titles), titles[:5]
        # temp_c's block is freed: at the peak and allocated, not leaked
        assert any(t and t.startswith("temp_c") for t in titles) == (kind != "leak"), titles


def test_c_table_and_csv():
    log = _c_log()
    p = memory(log, ["--milestone", "^stage_"])
    out = p.stdout
    assert "7 allocations, 4 frees, 2 reallocs" in out, out
    assert "peak: 12.3 kB live at" in out and "8.4 kB live in 4 blocks (leaked)" in out, out
    assert "1 frees of blocks not seen allocated (64 B" in out, out
    assert "1 double frees" in out and "1 reallocs of blocks not seen allocated (32 B)" in out
    assert "main > stage_a > alloc_a" in out and "stage 2 left behind" in out, out
    stage_rows = [ln.split() for ln in out.splitlines() if ln.endswith(("(start)", "stage_a",
                                                                          "stage_b", "stage_c"))]
    assert [r[0] for r in stage_rows] == ["0", "1", "2", "3"], stage_rows
    p = memory(log, ["--milestone", "^stage_", "--format", "csv", "--top", "0"])
    rows = [ln.split(",") for ln in p.stdout.splitlines()]
    assert rows[0] == ["section", "pid", "tid", "stage", "path", "metric", "value"]
    vals = {(r[0], r[3], r[4], r[5]): int(r[6]) for r in rows[1:] if r[0] in ("total", "stage",
                                                                             "stage_left")}
    assert vals[("total", "", "", "peak_bytes")] == 12596
    assert vals[("total", "", "", "live_bytes")] == 8648
    assert vals[("stage", "2", "", "live_end")] == 8500
    assert vals[("stage_left", "1", A, "bytes_end")] == 5000
    assert vals[("stage_left", "1", A, "bytes_exit")] == 8000


def test_c_bad_events_never_negative():
    """free(NULL) ignored; an allocation at a live address replaces the block
    (a free not seen); a realloc's new block without its old one is a new
    block. Nothing is negative; ASan finds nothing."""
    log = _c_log("bad", ["bad"])
    for sftrace in _tools():
        j = mjson(log, ["--milestone", "^stage_"], sftrace)
        _no_negative(j)
        t = j["totals"]
        assert (t["live_address_allocs"], t["live_address_bytes"]) == (1, 100), t
        assert t["unpaired_reallocs"] == 1 and t["null_allocs"] == 0, t
        assert (t["unknown_frees"], t["double_frees"], t["unknown_reallocs"]) == (1, 1, 1), t
        assert t["live_bytes"] == 8648 - 100 + 10 + 20, t
        assert _paths(t["leaks"]) == {A: 8000, LB: 500, BC: 48, M + ";worse": 30}, t["leaks"]


def test_fork_has_its_own_heap():
    """A forked child's heap starts empty: its free of a parent's block is an
    unknown free there, and the parent's figures are untouched."""
    log = _c_log("fork", ["fork"])
    for sftrace in _tools():
        j = mjson(log, [], sftrace)
        _no_negative(j)
        procs = j["processes"]
        assert len(procs) == 2, procs
        parent = [p for p in procs if p["allocs"] == 7][0]
        [child] = [p for p in procs if p is not parent]
        assert (parent["live_bytes"], parent["peak_bytes"], parent["unknown_frees"]) == \
            (8648, 12596, 1), parent
        assert (child["allocs"], child["live_bytes"], child["unknown_frees"],
                child["unknown_free_bytes"]) == (1, 300, 1, 8000), child
        # the child's stream starts inside main, which it inherits from its
        # parent at the fork (clipped), so child_work is under main
        assert _paths(child["leaks"]) == {"main;child_work": 300}, child["leaks"]
        t = j["totals"]
        assert t["live_bytes"] == 8648 + 300 and t["unknown_frees"] == 2, t


def test_selection_tid():
    """--tid: only the worker's events: its block is never freed there."""
    log = _c_log()
    j = mjson(log)
    wtid = [x["tid"] for x in j["threads"] if x["tid"] != j["processes"][0]["pid"]][0]
    j = mjson(log, ["--tid", str(wtid)])
    t = j["totals"]
    assert (t["allocs"], t["frees"], t["live_bytes"]) == (1, 0, 700), t
    assert _paths(t["leaks"]) == {W: 700}


# ---- time order across threads (a synthetic log) ---------------------------------------

def _synth_bin():
    return tl.build_c(os.path.join(tl.PROGS, "mem_stages.c"),
                      flags=["-I" + os.path.join(tl.ROOT, "include")],
                      libs=["-L" + tl.BUILD, "-lsftrace", "-Wl,-rpath," + tl.BUILD, "-lpthread"])


def test_threads_out_of_file_order():
    """Thread 11's chunk comes first in the file but its events are later than
    some of thread 12's, which frees a block of thread 11's. In file order the
    live total would reach 3500; in time order the peak is 3000."""
    exe = _synth_bin()
    funcs = ls.xray_functions(exe)
    log = ls.Log(create_mono_ns=5 * 10**9)
    log.process(10, clock=ls.MONO, mono_ns=5 * 10**9, name="synth")
    log.object(10, 1, funcs, exe, ls.build_id(exe))
    t = 6 * 10**9
    hi, recs = ls.encode([("entry", t + 90, 1), ("alloc", t + 100, ls.ALLOC, 1000, 16, 0x1000),
                          ("alloc", t + 300, ls.ALLOC, 500, 16, 0x2000), ("exit", t + 310, 1)])
    log.events(10, 11, recs, tsc_hi=hi)
    hi, recs = ls.encode([("entry", t + 40, 2), ("alloc", t + 50, ls.ALLOC, 2000, 16, 0x3000),
                          ("alloc", t + 200, ls.FREE, 2000, 16, 0x3000),
                          ("alloc", t + 400, ls.FREE, 1000, 16, 0x1000), ("exit", t + 410, 2)])
    log.events(10, 12, recs, tsc_hi=hi)
    path = log.write(os.path.join(_dir(), "order.log"))
    for sftrace in _tools():
        j = mjson(path, [], sftrace)
        t_ = j["totals"]
        assert j["order"]["exact"]
        assert t_["peak_bytes"] == 3000 and t_["peak_ns"] == 60, t_  # t+100; the first event t+40
        assert t_["live_bytes"] == 500 and t_["unknown_frees"] == 0, t_
        th = {x["tid"]: x for x in j["threads"]}
        assert th[11]["live_bytes"] == 500 and th[12]["live_bytes"] == 0, th
        assert th[12]["frees"] == 2 and th[12]["bytes_freed"] == 3000, th


def test_realloc_moves_ownership_synthetic():
    """A block allocated by thread 11, realloc'd (grown) by thread 12: still
    thread 11's, at its new address; a later free of the old address is a
    double free; a free of the new one gives back the new size."""
    exe = _synth_bin()
    funcs = ls.xray_functions(exe)
    log = ls.Log(create_mono_ns=5 * 10**9)
    log.process(10, clock=ls.MONO, mono_ns=5 * 10**9, name="synth")
    log.object(10, 1, funcs, exe, ls.build_id(exe))
    t = 6 * 10**9
    hi, recs = ls.encode([("entry", t + 5, 1), ("alloc", t + 10, ls.ALLOC, 100, 16, 0x1000),
                          ("exit", t + 15, 1)])
    log.events(10, 11, recs, tsc_hi=hi)
    hi, recs = ls.encode([("entry", t + 18, 2),
                          ("alloc", t + 20, ls.REALLOC_FREE, 100, 16, 0x1000),
                          ("alloc", t + 21, ls.REALLOC_ALLOC, 300, 16, 0x5000),
                          ("alloc", t + 30, ls.FREE, 100, 16, 0x1000), ("exit", t + 35, 2)])
    log.events(10, 12, recs, tsc_hi=hi)
    path = log.write(os.path.join(_dir(), "realloc.log"))
    j = mjson(path)
    t_ = j["totals"]
    assert (t_["allocs"], t_["reallocs"], t_["double_frees"], t_["live_bytes"]) == \
        (1, 1, 1, 300), t_
    assert t_["bytes_allocated"] == 300 and t_["peak_bytes"] == 300, t_
    th = {x["tid"]: x for x in j["threads"]}
    assert th[11]["live_bytes"] == 300 and th[12]["live_bytes"] == 0, th


# ---- the heap model's thread and its memory bound (mem_many.c) -------------------------

RING, RARE_RING, EVERY = 1024, 16, 64


def _size(i):
    return 16 + (i % 13) * 8


def _ring_figures(n, ring):
    """allocs, frees, bytes allocated, bytes freed, peak, live at exit of a
    ring of `ring` blocks over n allocations (mem_many.c's churn)."""
    live = peak = 0
    for i in range(n):
        if i >= ring:
            live -= _size(i - ring)
        live += _size(i)
        peak = max(peak, live)
    alloc = sum(_size(i) for i in range(n))
    freed = sum(_size(i) for i in range(max(0, n - ring)))
    return n, max(0, n - ring), alloc, freed, peak, alloc - freed


def _many_log(mode, n):
    prog = tl.build_c("mem_many.c", flags=tl.WARN_CFLAGS + ["-I" + os.path.join(tl.ROOT, "include")],
                      libs=["-L" + tl.BUILD, "-lsftrace", "-Wl,-rpath," + tl.BUILD, "-lpthread"])
    log = os.path.join(_dir(), "many_%s_%d.log" % (mode, n))
    p = tl.record([prog, mode, str(n)], log)
    assert p.stdout == "done\n", p.stdout
    return log


def _same_threaded(log, tools=None):
    """The report with the heap model in its own thread (-j 2, also the
    default here) and in the reader's (-j 1): byte for byte the same. The
    JSON, parsed."""
    outs = []
    for sftrace in tools or _tools():
        for j in ("1", "2"):
            outs.append(memory(log, ["-j", j, "--format", "json", "--top", "0"], sftrace).stdout)
        for j in ("1", "2"):
            outs.append(memory(log, ["-j", j, "--format", "folded", "-o", "-", "--flame", "peak"],
                               sftrace).stdout)
    n = len(outs) // 4
    for i in range(n):
        assert outs[4 * i] == outs[0], "JSON differs (tool %d)" % i
        assert outs[4 * i + 1] == outs[0], "JSON differs, -j 2 (tool %d)" % i
        assert outs[4 * i + 2] == outs[2] and outs[4 * i + 3] == outs[2], "folded differs"
    return json.loads(outs[0])


def _check_ring(t, n, ring):
    allocs, frees, alloc, freed, peak, live = _ring_figures(n, ring)
    assert (t["allocs"], t["frees"], t["bytes_allocated"], t["bytes_freed"]) == \
        (allocs, frees, alloc, freed), t
    assert (t["peak_bytes"], t["live_bytes"], t["live_blocks"]) == (peak, live, ring), t


def test_queue_many_allocations_few_calls():
    """600,000 allocation events in one call: the heap model's side of the
    queue is the busy one (the ring of batches fills and the reader waits);
    every figure exact, the same with the model in its own thread or not."""
    n = 300000
    log = _many_log("lone", n)
    j = _same_threaded(log)
    assert j["order"]["exact"] and j["order"]["forced"] == 0, j["order"]
    _check_ring(j["totals"], n, RING)
    assert _paths(j["totals"]["leaks"]) == {"main;churn": _ring_figures(n, RING)[5]}
    assert j["function_events"] == 4, j["function_events"]


def test_queue_many_calls_few_allocations():
    """400,000 calls, one allocation in 64: the reader's side is the busy one
    (the model's thread waits for batches); every figure exact, the same
    either way."""
    n = 400000
    log = _many_log("calls", n)
    j = _same_threaded(log)
    assert j["order"]["exact"], j["order"]
    rare = (n + EVERY - 1) // EVERY
    _check_ring(j["totals"], rare, RARE_RING)
    assert _paths(j["totals"]["leaks"]) == {"main;step;rare_alloc": _ring_figures(rare, RARE_RING)[5]}


def test_queue_two_threads():
    """Two threads' rings (syncs of the reorder window at every switch of
    thread): the same with the model in its own thread or not; the figures
    that do not depend on the threads' interleaving exact."""
    n = 200000
    log = _many_log("two", n)
    j = _same_threaded(log)
    assert j["order"]["exact"], j["order"]
    t = j["totals"]
    a, f, ab, fb, peak, live = _ring_figures(n, RING)
    assert (t["allocs"], t["frees"], t["bytes_allocated"], t["live_bytes"]) == \
        (2 * a, 2 * f, 2 * ab, 2 * live), t
    assert peak < t["peak_bytes"] <= 2 * peak, t
    assert _paths(t["leaks"]) == {"main;churn": live, "thread_main;churn": live}
    for th in j["threads"]:
        assert (th["allocs"], th["live_bytes"]) == (a, live), th


def _maxrss_kb(cmd):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, p.stderr.read()
    return ru.ru_maxrss


def test_memory_bound_one_long_run():
    """One thread's events come in one run (nothing syncs the reorder window
    between threads): the window must not hold them all. 2.4M and 4.8M
    allocation events need the same memory (before the bound, every event
    of the run stayed pending: 32 bytes each, 77 MB more for the longer
    log); figures exact (a lone thread brings nothing late)."""
    rss = []
    for n in (1200000, 2400000):
        log = _many_log("lone", n)
        j = _same_threaded(log, [tl.SFTRACE])
        assert j["order"]["exact"] and j["order"]["forced"] > 0, j["order"]
        _check_ring(j["totals"], n, RING)
        rss.append(_maxrss_kb([tl.SFTRACE, "memory", "-q", log]))
        os.unlink(log)
    assert rss[1] < rss[0] + 16 * 1024, rss


# ---- Rust -----------------------------------------------------------------------------

def _rust_prog():
    for tool in ("cargo", "rustc"):
        if not tl.have(tool):
            raise tl.Skip("%s not found (the Rust toolchain is not installed)" % tool)
    target = tl.outdir("memory", "rust-target")
    env = dict(os.environ, CARGO_TARGET_DIR=target, RUSTFLAGS="-Zinstrument-xray=always",
               RUSTC_BOOTSTRAP="1", SFTRACE_DYLIB_DIR=tl.BUILD)
    for k in ("CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS"):
        env.pop(k, None)
    p = subprocess.run(["cargo", "build", "--offline", "--release"], cwd=RUST_PROG, env=env,
                       capture_output=True, text=True, timeout=600, errors="replace")
    assert p.returncode == 0, p.stderr[-3000:]
    return os.path.join(target, "release", "mem_rust")


def _mine(paths, stage):
    """Bytes of the paths made by `make` called from stage (our pattern only:
    the standard library allocates for itself too)."""
    return sum(v for k, v in paths.items()
               if k.endswith("mem_rust::%s;mem_rust::make" % stage))


def test_rust_allocator_stages():
    prog = _rust_prog()
    log = os.path.join(_dir(), "rust.log")
    tl.record([prog], log)
    ms = ["--milestone", r"^mem_rust::stage_"]
    for sftrace in _tools():
        j = mjson(log, ms, sftrace)
        _no_negative(j)
        assert j["order"]["exact"]
        t = j["totals"]
        leaks = _paths(t["leaks"])
        assert [_mine(leaks, s) for s in ("stage_one", "stage_two", "stage_three")] == \
            [2000, 1500, 0], leaks
        assert t["unknown_frees"] == t["double_frees"] == t["unknown_reallocs"] == 0, t
        [p] = j["processes"]
        peak = _paths(p["peak_paths"])
        assert [_mine(peak, s) for s in ("stage_one", "stage_two", "stage_three")] == \
            [3000, 1500, 4096], peak
        alloc = _paths(p["allocated_paths"])
        # stage_two: 100, grown to 1000 (+900), and 500
        assert [_mine(alloc, s) for s in ("stage_one", "stage_two", "stage_three")] == \
            [6000, 1500, 4096], alloc
        st = j["stages"]
        assert [s["milestone"] for s in st] == [None, "mem_rust::stage_one",
                                                 "mem_rust::stage_two", "mem_rust::stage_three"]
        lefts = [{";".join(x["path"]): (x["bytes_end"], x["bytes_exit"]) for x in s["left"]}
                 for s in st]
        for i, stage, end, exit_ in ((1, "stage_one", 3000, 2000), (2, "stage_two", 1500, 1500)):
            mine = [v for k, v in lefts[i].items() if k.endswith("%s;mem_rust::make" % stage)]
            assert mine == [(end, exit_)], lefts[i]
        assert not [k for k in lefts[3] if "stage_three" in k], lefts[3]
        # stage 3 freed 4096 + stage_one's 1000, and nothing of the pattern else
        assert st[3]["bytes_freed"] >= 5096 and st[1]["bytes_freed"] >= 3000
        assert st[2]["reallocs"] == 1
    got = folded(log, ms + ["--flame", "leak"])
    assert {k.split(";mem_rust::main;", 1)[1]: v for k, v in got.items()
            if ";mem_rust::main;" in k} == \
        {"mem_rust::stage_one;mem_rust::make": 2000, "mem_rust::stage_two;mem_rust::make": 1500}


# ---- arguments -------------------------------------------------------------------------

def test_bad_arguments():
    log = _c_log()
    for args, msg in ((["--flame", "heap"], "--flame"),
                      (["--format", "xml"], "--format"),
                      (["--stage", "1", "--flame", "leak"], "needs --milestone"),
                      (["--stage", "1"], "--stage goes with --flame"),
                      (["--milestone", "(", "--format", "json"], "--milestone"),
                      (["--min-duration", "1ms"], "not supported"),
                      (["--flame", "leak", "--format", "json"], "svg or folded"),
                      (["-o", "x.svg"], "-o goes with --flame"),
                      (["-j", "0"], "--jobs"), (["--jobs", "two"], "--jobs")):
        p = memory(log, args, check=False)
        assert p.returncode == 2 and msg in p.stderr and not p.stdout, (args, p.stderr)
    p = memory(log, ["--milestone", "^stage_", "--flame", "leak", "--stage", "9", "-o", "-"],
               check=False)
    assert p.returncode == 1 and "4 stages" in p.stderr, p.stderr
    p = memory(os.path.join(_dir(), "missing.log"), check=False)
    assert p.returncode == 1 and "missing.log" in p.stderr, p.stderr


def test_convert_milestone_markers():
    """convert --milestone draws one "stage: NAME" instant at every entry of a
    matching function, on the process (Perfetto, checked --strict) and in the
    Chrome JSON, so stages line up with the timeline."""
    log = _c_log("convert-ms")
    d = _dir()
    for sf in _tools():
        out = os.path.join(d, "ms.json")
        tl.run([sf, "convert", "-q", "--milestone", "^stage_", "--format", "chrome", log,
                "-o", out])
        with open(out) as f:
            ev = json.load(f)
        ev = ev["traceEvents"] if isinstance(ev, dict) else ev
        marks = [e["name"] for e in ev if e.get("ph") == "i" and e["name"].startswith("stage: ")]
        assert marks == ["stage: stage_a", "stage: stage_b", "stage: stage_c"], marks
        pb = os.path.join(d, "ms.pb.gz")
        tl.run([sf, "convert", "-q", "--milestone", "^stage_", log, "-o", pb])
        p = tl.run(["python3", tl.PERFETTO_CHECK, "--strict", "--json", pb], check=False)
        res = json.loads(p.stdout)
        assert p.returncode == 0 and res["errors"] == 0 and res["warnings"] == 0, p.stdout
        assert res["summary"]["instants"] == 3, res["summary"]["instants"]
        # without --milestone there is no marker
        tl.run([sf, "convert", "-q", log, "-o", pb])
        res = json.loads(tl.run(["python3", tl.PERFETTO_CHECK, "--strict", "--json", pb]).stdout)
        assert res["summary"]["instants"] == 0, res["summary"]["instants"]
