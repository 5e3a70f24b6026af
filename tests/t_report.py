"""t_report.py - tests of `sftrace report`.

Programs of known structure (tests/programs/an_calls.c: recursion, mutual
recursion, a tail call, threads; recursion.c, tailcall.c, exceptions.cpp,
setjmp.c) are recorded; their calls, total, self, min and max times are
checked exactly against a reference computed here from `sftrace dump` (its
times), with the engine's stack rules (calls.h) written out in Python.

The reference (also used by t_graph.py and t_flame.py):
  entry pushes; an exit or tail call of the top pops it; one of a function
  deeper in the stack first ends every call above it (unfinished, at that
  time); one of a function not on the stack is dropped; calls still open at
  the end end at the thread's last event (unfinished). A call's self time is
  its duration minus its callees' durations; a function's total counts only
  its outermost active call on a thread.
"""
import collections
import json
import os
import struct

import logsynth as ls
import tl

Call = collections.namedtuple("Call", "func start end self depth unfinished path thread")


def _dir():
    return tl.outdir("report")


def build(src, compiler="clang"):
    flags = ["-lpthread"] if compiler == "clang" else []
    out = os.path.join(tl.outdir("bin"), os.path.splitext(src)[0].replace(".", "_"))
    return tl.build_c(src, out=out, compiler=compiler, libs=flags)


def record(name, cmd):
    log = os.path.join(_dir(), name + ".log")
    tl.record(cmd, log)
    return log


def calls_from_dump(log):
    """Every call of the log (list of Call), from `sftrace dump`'s events."""
    events, _ = tl.dump(log)
    stacks = collections.defaultdict(list)
    last = {}
    out = []

    def pop(th, t, unfinished, dumped=None):
        st = stacks[th]
        func, start, child, path = st.pop()
        dur = t - start
        if dumped is not None:  # dump's duration column agrees
            assert dumped.extra and int(dumped.extra[-1]) == dur, (dumped, dur)
        if st:
            st[-1][2] += dur
        out.append(Call(func, start, t, dur - child, len(st), unfinished, path, th))

    for e in events:
        if e.kind not in ("entry", "exit", "tailcall"):
            continue
        th = (e.pid, e.tid)
        last[th] = e.time
        st = stacks[th]
        if e.kind == "entry":
            path = (st[-1][3] if st else ()) + (e.func,)
            st.append([e.func, e.time, 0, path])
            continue
        idx = None
        for i in range(len(st) - 1, -1, -1):
            if st[i][0] == e.func:
                idx = i
                break
        if idx is None:
            continue  # exit without entry: dropped
        while len(st) > idx + 1:
            pop(th, e.time, True)
        pop(th, e.time, False, e)
    for th, st in stacks.items():
        while st:
            pop(th, last[th], True)
    return out


def calls_from_dump_calls(log):
    """Every call as the engine delimits it (`sftrace dump --calls`): the
    reference for programs that unwind (exceptions, longjmp), where where a
    call ends depends on the engine's rule from the code (calls.h)."""
    p = tl.run([tl.SFTRACE, "dump", "-q", "--calls", log])
    rows = {}
    order = []
    for line in p.stdout.splitlines():
        if line.startswith("#"):
            continue
        f = line.split("\t")
        start, pid, tid, depth, dur, self_, cid, parent = (int(x) for x in f[:8])
        rows[cid] = (start, pid, tid, depth, dur, self_, parent, f[8], f[9])
        order.append(cid)
    paths = {}

    def path(cid):
        chain = []
        while cid and cid not in paths:
            chain.append(cid)
            cid = rows[cid][6]
        p = paths.get(cid, ())
        for c in reversed(chain):
            p = p + (rows[c][8],)
            paths[c] = p
        return p

    out = []
    for cid in order:
        start, pid, tid, depth, dur, self_, parent, flags, func = rows[cid]
        out.append(Call(func, start, start + dur, self_, depth, int("u" in flags), path(cid),
                        (pid, tid)))
    return out


def reference(calls, key=lambda c: None):
    """{group: {func: stats}} with report's definitions."""
    groups = collections.defaultdict(dict)
    # outermost: a call with no call of the same function among its ancestors
    for c in calls:
        g = groups[key(c)]
        s = g.setdefault(c.func, dict(calls=0, total_ns=0, self_ns=0, min_ns=None, max_ns=0,
                                      sum=0, unfinished=0))
        dur = c.end - c.start
        s["calls"] += 1
        s["self_ns"] += c.self
        s["sum"] += dur
        s["min_ns"] = dur if s["min_ns"] is None else min(s["min_ns"], dur)
        s["max_ns"] = max(s["max_ns"], dur)
        s["unfinished"] += c.unfinished
        if c.func not in c.path[:-1]:
            s["total_ns"] += dur
    for g in groups.values():
        for s in g.values():
            s["avg_ns"] = s.pop("sum") // s["calls"]
    return groups


def report_json(log, args=(), sftrace=None):
    p = tl.run([sftrace or tl.SFTRACE, "report", "-q", "--format", "json", "--limit", "0"]
               + list(args) + [log])
    return json.loads(p.stdout)


def check_against_reference(log, args=(), by=None, calls=None):
    calls = calls if calls is not None else calls_from_dump(log)
    key = {None: lambda c: None, "thread": lambda c: c.thread,
           "process": lambda c: c.thread[0]}[by]
    ref = reference(calls, key)
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        for jobs in ("1", "2"):
            rep = report_json(log, list(args) + ["-j", jobs] + (["--by", by] if by else []),
                              sftrace=sftrace)
            got = {}
            for g in rep["groups"]:
                k = None if by is None else (g["pid"], g["tid"]) if by == "thread" else g["pid"]
                got[k] = {f["name"]: {x: f[x] for x in ("calls", "total_ns", "self_ns", "min_ns",
                                                        "max_ns", "avg_ns", "unfinished")}
                          for f in g["functions"]}
            assert got.keys() == ref.keys(), (sorted(got), sorted(ref))
            for k in ref:
                for name in set(ref[k]) | set(got[k]):
                    assert got[k].get(name) == ref[k].get(name), \
                        "%s %s: report %s, dump %s (-j %s, %s)" % (
                            k, name, got[k].get(name), ref[k].get(name), jobs, sftrace)
    return ref, calls


def sum_self_equals_roots(log, calls=None):
    rep = report_json(log)
    calls = calls if calls is not None else calls_from_dump(log)
    roots = sum(c.end - c.start for c in calls if c.depth == 0)
    selfs = sum(f["self_ns"] for g in rep["groups"] for f in g["functions"])
    assert selfs == roots, "sum of self times %d != sum of root totals %d" % (selfs, roots)


# ---- programs of known structure ------------------------------------------------

def test_report_an_calls_threads():
    exe = build("an_calls.c")
    log = record("an_calls_threads", [exe, "threads"])
    ref, calls = check_against_reference(log)
    assert reference(calls_from_dump_calls(log)) == ref  # the engine's own dump agrees
    r = ref[None]
    per = {"top": 1, "mid": 2, "leaf": 7, "rec": 5, "tail_a": 1, "tail_b": 1, "ping": 3,
           "pong": 3}
    for name, n in per.items():
        assert r[name]["calls"] == 30 * n, (name, r[name])
    assert r["slow"]["calls"] == 15 and r["worker"]["calls"] == 2 and r["main"]["calls"] == 1
    # recursion: rec's total is its outermost calls only
    outer = sum(c.end - c.start for c in calls if c.func == "rec" and c.path.count("rec") == 1)
    assert r["rec"]["total_ns"] == outer
    assert all(s["unfinished"] == 0 for s in r.values()), r
    sum_self_equals_roots(log)


def test_report_by_thread_and_process():
    exe = build("an_calls.c")
    log = record("an_calls_threads", [exe, "threads"])
    ref, _ = check_against_reference(log, by="thread")
    assert len(ref) == 3
    for th, funcs in ref.items():
        assert funcs["top"]["calls"] == 10, (th, funcs["top"])
    check_against_reference(log, by="process")
    p = tl.run([tl.SFTRACE, "report", "-q", "--by", "thread", log])
    assert p.stdout.count("\nthread ") == 3 and "an-w0" in p.stdout and "an-w1" in p.stdout, \
        p.stdout


def test_report_recursion():
    exe = build("recursion.c")
    log = record("recursion", [exe, "15", "300"])
    ref, calls = check_against_reference(log)
    r = ref[None]
    assert r["fib"]["calls"] == 2 * 987 - 1, r["fib"]  # 2*F(16)-1
    assert r["descend"]["calls"] == 301
    fib = [c for c in calls if c.func == "fib" and c.depth == 1]
    assert len(fib) == 1 and r["fib"]["total_ns"] == fib[0].end - fib[0].start
    assert r["fib"]["max_ns"] == fib[0].end - fib[0].start
    sum_self_equals_roots(log)


def test_report_tailcall():
    exe = build("tailcall.c")
    log = record("tailcall", [exe])
    ref, _ = check_against_reference(log)
    r = ref[None]
    assert r["mid"]["calls"] == 500 and r["leaf"]["calls"] == 500
    assert r["is_even"]["calls"] + r["is_odd"]["calls"] == 500 * 10
    sum_self_equals_roots(log)


def _unwinding_checks(log, outer, counts):
    """Exceptions / longjmp: the engine ends unwound calls at the first entry
    only an outer frame can call (calls.h), which the plain rule of
    calls_from_dump cannot know: everything is checked exactly against
    `dump --calls`; against the plain rule, the counts of all functions and
    the times of the outer ones (which no unwinding ends)."""
    dcalls = calls_from_dump_calls(log)
    check_against_reference(log, calls=dcalls)
    calls = calls_from_dump(log)
    ref = reference(calls)[None]
    rep = report_json(log)
    got = {f["name"]: f for f in rep["groups"][0]["functions"]}
    for name, n in counts.items():
        assert got[name]["calls"] == n, (name, got[name], n)
        assert ref[name]["calls"] == n, (name, ref[name], n)
    for name in outer:
        for k in ("calls", "total_ns", "min_ns", "max_ns"):
            assert got[name][k] == ref[name][k], (name, k, got[name], ref[name])
    sum_self_equals_roots(log, dcalls)
    return got


def test_report_cxx_exceptions():
    exe = tl.build_c("exceptions.cpp", compiler="clang++",
                     out=os.path.join(tl.outdir("bin"), "an_exceptions"))
    log = record("exceptions", [exe])
    got = _unwinding_checks(log, ["main", "sfx::catcher[abi:cxx11](int)"],
                            {"sfx::catcher[abi:cxx11](int)": 40, "sfx::middle(int)": 40,
                             "sfx::thrower(int)": 40 * 13, "sfx::on_catch(char const*)": 40,
                             "sfx::guard_dtor(int)": 40 * 13})
    assert got["sfx::middle(int)"]["unfinished"] == 40, got["sfx::middle(int)"]
    assert got["sfx::thrower(int)"]["unfinished"] == 40 * 13, got["sfx::thrower(int)"]


def test_report_longjmp():
    exe = build("setjmp.c")
    log = record("setjmp", [exe])
    p = tl.run([exe])
    words = p.stdout.split()
    k = dict(zip(words[::2], (int(w) for w in words[1::2])))
    got = _unwinding_checks(log, ["main"], {
        "dive": k["dive_calls"], "after_jump": k["after_calls"],
        "sig_dive": k["sig_dive_calls"], "handler_work": k["handler_calls"],
        "on_usr1": k["handler_calls"]})
    assert k["dive_calls"] == k["rounds"] * (k["depth"] + 1)
    assert got["dive"]["unfinished"] == k["dive_calls"], got["dive"]
    assert got["sig_dive"]["unfinished"] == k["sig_dive_calls"], got["sig_dive"]


# ---- diff -------------------------------------------------------------------------

def test_report_diff_with_itself_is_zero():
    exe = build("an_calls.c")
    log = record("an_calls_threads", [exe, "threads"])
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = tl.run([sftrace, "report", "-q", "--diff", "--format", "json", "--limit", "0",
                    log, log])
        d = json.loads(p.stdout)
        assert len(d["functions"]) == 11, d
        for f in d["functions"]:
            assert f["change"] == {"calls": 0, "total_ns": 0, "self_ns": 0}, f
            assert f["base"] == f["new"], f
    p = tl.run([tl.SFTRACE, "report", "-q", "--diff", log, log])
    assert "+" not in p.stdout.split("function", 1)[1].replace("+0", ""), p.stdout


def test_report_diff_two_runs():
    exe = build("an_calls.c")
    a = record("an_calls_one", [exe])
    b = record("an_calls_threads", [exe, "threads"])
    p = tl.run([tl.SFTRACE, "report", "-q", "--diff", "--format", "json", "--limit", "0", a, b])
    d = json.loads(p.stdout)
    by = {f["name"]: f for f in d["functions"]}
    assert by["top"]["change"]["calls"] == 20 and by["top"]["base"]["calls"] == 10
    assert by["worker"]["base"]["calls"] == 0 and by["worker"]["new"]["calls"] == 2
    ch = [abs(f["change"]["total_ns"]) for f in d["functions"]]
    assert ch == sorted(ch, reverse=True), ch
    ra, rb = report_json(a), report_json(b)
    fa = {f["name"]: f for f in ra["groups"][0]["functions"]}
    fb = {f["name"]: f for f in rb["groups"][0]["functions"]}
    for name, f in by.items():
        assert f["base"]["total_ns"] == fa.get(name, {}).get("total_ns", 0)
        assert f["new"]["self_ns"] == fb.get(name, {}).get("self_ns", 0)


# ---- output, options, selections ---------------------------------------------------

def test_report_sort_limit_csv_table():
    exe = build("an_calls.c")
    log = record("an_calls_threads", [exe, "threads"])
    ref = reference(calls_from_dump(log))[None]
    for key, field in (("total", "total_ns"), ("self", "self_ns"), ("calls", "calls"),
                       ("avg", "avg_ns"), ("max", "max_ns"), ("min", "min_ns")):
        p = tl.run([tl.SFTRACE, "report", "-q", "--format", "csv", "-s", key, "--limit", "4", log])
        lines = p.stdout.splitlines()
        assert lines[0] == "function,calls,total_ns,self_ns,avg_ns,min_ns,max_ns,unfinished"
        rows = [ln.split(",") for ln in lines[1:]]
        assert len(rows) == 4, lines
        col = lines[0].split(",").index(field)
        vals = [int(r[col]) for r in rows]
        assert vals == sorted(vals, reverse=True), (key, vals)
        want = sorted((s[field] for s in ref.values()), reverse=True)[:4]
        assert vals == want, (key, vals, want)
    p = tl.run([tl.SFTRACE, "report", "-q", "-s", "name", "--limit", "0", "--format", "csv", log])
    names = [ln.split(",")[0] for ln in p.stdout.splitlines()[1:]]
    assert names == sorted(ref), names
    p = tl.run([tl.SFTRACE, "report", "-q", log])
    head = p.stdout.splitlines()
    assert head[0].startswith("# %s: " % log) and "events" in head[0] and "3 threads" in head[0] \
        and "1 process" in head[0], head[0]
    assert head[1].split() == ["calls", "total", "self", "avg", "min", "max", "function"], head[1]
    assert head[2].split()[-1] == "main", head[2]


def test_report_selection():
    exe = build("an_calls.c")
    log = record("an_calls_threads", [exe, "threads"])
    calls = calls_from_dump(log)
    # -F: only calls inside rec
    rep = report_json(log, ["-F", "^rec$"])
    got = {f["name"]: f["calls"] for f in rep["groups"][0]["functions"]}
    assert got == {"rec": 150, "leaf": 30}, got
    # --tid: one thread, exactly its reference
    tid = [c.thread[1] for c in calls if c.func == "worker"][0]
    rep = report_json(log, ["--tid", str(tid)])
    ref = reference([c for c in calls if c.thread[1] == tid])[None]
    got = {f["name"]: f["total_ns"] for f in rep["groups"][0]["functions"]}
    assert got == {k: v["total_ns"] for k, v in ref.items()}, (got, ref)
    # --time-range: the window is relative to the log's first event whichever
    # worker reads which threads
    first = min(c.start for c in calls)
    tops = sorted(c.start for c in calls if c.func == "top")
    rng = "%dns,%dns" % (tops[len(tops) // 2] - first, tops[len(tops) // 2 + 3] - first)
    a, b = (report_json(log, ["--time-range", rng, "-j", j]) for j in ("1", "2"))
    assert a == b and a["groups"][0]["functions"], (a, b)


def _one_error(args, want):
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = tl.run([sftrace] + args, check=False)
        assert p.returncode != 0, p
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and want in lines[0], (args, p.stderr)
        assert "Sanitizer" not in p.stderr and not p.stdout, p


def empty_log():
    """A valid log with a process and no events."""
    path = os.path.join(_dir(), "empty.log")
    log = ls.Log()
    log.process(77, clock=ls.MONO, tsc=0, mono_ns=ls.Log().create_mono_ns, exe="/bin/true")
    log.end(77)
    log.write(path)
    return path


def test_report_errors():
    exe = build("an_calls.c")
    log = record("an_calls_one", [exe])
    _one_error(["report", "-s", "bogus", log], "unknown sort key 'bogus'")
    _one_error(["report", "-F", "(", log], "bad regular expression")
    _one_error(["report", "--limit", "-3", log], "--limit")
    _one_error(["report", "--by", "cpu", log], "--by")
    _one_error(["report", "--format", "xml", log], "unknown format")
    _one_error(["report", empty_log()], "no events")
    _one_error(["report", "--diff", log], "two logs")
    _one_error(["report", os.path.join(_dir(), "missing.log")], "missing.log")
    _one_error(["report", "--tid", "1", log], "no events in the selection")


def _analysis_outputs(log, cmd, jobs):
    """What report, graph and flame print of log (with the log's path
    replaced by LOG), their stderr lines and exit status."""
    args = {"report": ["--limit", "0"], "graph": [],
            "flame": ["--format", "folded", "-o", "-"]}[cmd]
    outs = []
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = tl.run([sftrace, cmd, "-q", "-j", jobs] + args + [log], check=False)
        assert "Sanitizer" not in p.stderr, p.stderr
        outs.append((p.returncode, p.stdout.replace(log, "LOG"),
                     [ln for ln in p.stderr.splitlines() if ln.strip()]))
    assert outs[0] == outs[1], outs
    return outs[0]


def test_report_damaged_logs():
    """A damaged log: report, graph and flame print exactly what they print
    of the log without the damage, each warning (file, offset, what) and the
    summary once, also with two workers, and exit 3."""
    # CLOCK_MONOTONIC timestamps: no clock fit, so dropping a chunk from
    # the reference log changes no time
    big = os.path.join(_dir(), "an_calls_threads_mono.log")
    tl.record([build("an_calls.c"), "threads"], big, env={"SFTRACE_CLOCK": "mono"})
    _, chunks = tl.read_log(big)
    data = open(big, "rb").read()
    evs = [c for c in chunks if c["type"] == tl.CHUNK_EVENTS]
    assert len({struct.unpack_from("<I", data, c["off"] + 16)[0] for c in evs}) >= 2
    # truncated inside the last EVENTS chunk; the same log cut before it
    ev = evs[-1]
    cut = os.path.join(_dir(), "truncated.log")
    ref = os.path.join(_dir(), "truncated-ref.log")
    open(cut, "wb").write(data[:ev["off"] + 24])
    open(ref, "wb").write(data[:ev["off"]])
    # garbage in the records of an EVENTS chunk in the middle; the log without it
    mid = evs[len(evs) // 2]
    bad = bytearray(data)
    for i in range(mid["off"] + 48, mid["off"] + mid["size"]):
        bad[i] = 0xff
    badp = os.path.join(_dir(), "garbage.log")
    refb = os.path.join(_dir(), "garbage-ref.log")
    open(badp, "wb").write(bytes(bad))
    open(refb, "wb").write(data[:mid["off"]] + data[mid["off"] + mid["size"]:])
    cases = [
        (cut, ref, "offset %d: EVENTS chunk of %d bytes runs past the end of the file, 24 bytes "
         "left: truncated (size); the log ends here" % (ev["off"], ev["size"]),
         "damaged log: truncated at offset %d (24 bytes of an incomplete chunk)" % ev["off"]),
        (badp, refb, "offset %d: bad packed record (tag 0xff)" % (mid["off"] + 48),
         "damaged log: 1 bad chunk skipped (%d bytes)" % mid["size"]),
    ]
    for log, reflog, warning, summary in cases:
        for cmd in ("report", "graph", "flame"):
            rc, out, err = _analysis_outputs(reflog, cmd, "1")
            assert rc == 0 and out and not err, (cmd, rc, err)
            for jobs in ("1", "2"):
                rc2, out2, err2 = _analysis_outputs(log, cmd, jobs)
                assert rc2 == 3 and out2 == out, (cmd, jobs, rc2, out2, out)
                assert len(err2) == 2, (cmd, jobs, err2)
                assert err2[0].startswith("sftrace %s: %s: " % (cmd, log)) and warning in err2[0], \
                    (cmd, jobs, err2)
                assert err2[1].startswith("sftrace %s: %s: %s; everything else was read"
                                          % (cmd, log, summary)), (cmd, jobs, err2)
    # --diff of a damaged log against itself: all zero, exit 3
    p = tl.run([tl.SFTRACE, "report", "-q", "--diff", cut, cut], check=False)
    assert p.returncode == 3 and p.stderr.count("damaged log") == 2, p


def test_report_missing_binary_warns_once():
    import shutil
    exe = build("an_calls.c")
    gone = os.path.join(_dir(), "an_calls_gone")
    shutil.copy(exe, gone)
    log = record("an_calls_gone", [gone, "threads"])
    os.unlink(gone)
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = tl.run([sftrace, "report", "-q", "-j", "2", "--format", "csv", log])
        warn = [ln for ln in p.stderr.splitlines() if "warning" in ln]
        assert len(warn) == 1 and "an_calls_gone" in warn[0], p.stderr
        names = [ln.split(",")[0] for ln in p.stdout.splitlines()[1:]]
        assert len(names) == 11 and all(n.startswith("0x") for n in names), names


def test_report_from_a_pipe():
    exe = build("an_calls.c")
    log = record("an_calls_threads", [exe, "threads"])
    want = report_json(log)
    p = tl.run_piped([tl.SFTRACE, "report", "-q", "--format", "json", "--limit", "0", "-j", "2",
                      "/dev/stdin"], log)
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    got["log"] = want["log"]
    assert got == want
