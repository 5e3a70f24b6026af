"""t_report_objs.py - report, graph and flame over a program of two objects
(tests/programs/an_twoobj.c and its shared object) and three threads, with
one, two and three workers: the same output whatever the number of workers
(the threads are split between them; one symbolizer, shared, names the
functions of both objects once), figures checked against the dump, and a
function of the same name in both objects shown as one. Also --symbols with
several workers (the symbol file is read by the shared symbolizer)."""
import json
import os
import shutil

import t_report as tr
import tl

NAMES = {"main", "worker", "rec", "main_leaf", "twice", "lib_leaf", "lib_work"}
ITERS, THREADS = 200, 3


def _dir():
    return tl.outdir("report_objs")


def _bins():
    lib = tl.build_c("an_twoobj_lib.c", out=os.path.join(tl.outdir("bin"), "libantwoobj.so"),
                     shared=True)
    exe = tl.build_c("an_twoobj.c", libs=[lib, "-Wl,-rpath," + os.path.dirname(lib),
                                          "-lpthread"])
    return exe, lib


def _log():
    exe, _ = _bins()
    log = os.path.join(_dir(), "twoobj.log")
    tl.record([exe], log)
    return log


def _outputs(log, jobs, sftrace):
    """Every output of the three commands that the workers could change."""
    runs = [["report", "--limit", "0"], ["report", "--format", "csv", "-s", "name"],
            ["report", "--format", "json", "--by", "thread", "--limit", "0"],
            ["report", "-s", "calls", "--limit", "3"],
            ["graph"], ["graph", "--format", "json"], ["graph", "LOG", "^rec$"],
            ["flame", "--format", "folded", "-o", "-"],
            ["flame", "--format", "folded", "--by", "thread", "--weight", "calls", "-o", "-"]]
    out = []
    for args in runs:
        rest = args[1:] + [log] if "LOG" not in args else [log if a == "LOG" else a
                                                             for a in args[1:]]
        p = tl.run([sftrace, args[0], "-q", "-j", jobs] + rest)
        assert not p.stderr.strip(), (args, p.stderr)
        out.append(p.stdout)
    return out


def test_report_two_objects_any_workers():
    log = _log()
    info = json.loads(tl.run([tl.SFTRACE, "info", "--format", "json", log]).stdout)
    paths = [os.path.basename(o["path"]) for o in info["objects"]]
    assert sorted(paths) == ["an_twoobj", "libantwoobj.so"], paths
    # exact figures against the dump, with one and two workers, both builds
    ref, calls = tr.check_against_reference(log)
    r = ref[None]
    assert set(r) == NAMES, sorted(r)
    per = {"rec": 4, "main_leaf": 3, "lib_work": 2, "lib_leaf": 5, "twice": 8}
    for name, n in per.items():
        assert r[name]["calls"] == THREADS * ITERS * n, (name, r[name])
    assert r["worker"]["calls"] == THREADS and r["main"]["calls"] == 1
    # twice: the two objects' copies are one row, with both copies' calls
    under = {c.path[-2] for c in calls if c.func == "twice"}
    assert under == {"main_leaf", "lib_leaf"}, under
    tr.sum_self_equals_roots(log, calls)
    # the same text whatever the number of workers
    want = _outputs(log, "1", tl.SFTRACE)
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        for jobs in ("1", "2", "3"):
            assert _outputs(log, jobs, sftrace) == want, (sftrace, jobs)


def test_report_symbols_file_with_workers():
    """A stripped program, its symbols from --symbols: names of both
    objects right with any number of workers, and without --symbols one
    warning for the stripped object (its functions shown as addresses)."""
    exe, _ = _bins()
    d = os.path.join(_dir(), "stripped")
    os.makedirs(d, exist_ok=True)
    bare = os.path.join(d, os.path.basename(exe))  # same name: matched by build-id or name
    shutil.copy(exe, bare)
    tl.run(["strip", "-s", bare])
    log = os.path.join(_dir(), "stripped.log")
    tl.record([bare], log)
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        outs = []
        for jobs in ("1", "2"):
            p = tl.run([sftrace, "report", "-q", "-j", jobs, "--format", "json", "--limit", "0",
                        "--symbols", exe, log])
            assert not p.stderr.strip(), p.stderr
            rep = json.loads(p.stdout)
            names = {f["name"] for g in rep["groups"] for f in g["functions"]}
            assert names == NAMES, sorted(names)
            outs.append(p.stdout)
            p = tl.run([sftrace, "report", "-q", "-j", jobs, "--format", "csv", log])
            warn = [ln for ln in p.stderr.splitlines() if "warning" in ln]
            assert len(warn) == 1 and bare in warn[0], p.stderr
            names = {ln.split(",")[0] for ln in p.stdout.splitlines()[1:]}
            assert {"lib_leaf", "lib_work", "twice"} <= names, sorted(names)
            assert any(n.startswith("0x") for n in names), sorted(names)
        assert outs[0] == outs[1]
