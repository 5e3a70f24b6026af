"""t_select.py - the selection options (lib/select.c, applied by lib/calls.c)
on dump and convert: --pid, --tid, --thread-name, --time-range (with chunks
skipped undecoded), -F, -N, -D, --min-duration, alone and composed, and
their bad arguments.

Exact expectations come from synthetic logs (logsynth.py) with known times;
recorded logs check the thread selections and that skipping chunks for a
time range gives the same output as decoding every chunk (SFTRACE_NO_SKIP).
Every Perfetto file made here passes check_perfetto.py --strict.
"""
import collections
import json
import os
import re

import logsynth as ls
import tl
import t_convert as tc
import t_dump

CREATE = 5_000_000_000


def _dir(*parts):
    return tl.outdir("select", *parts)


def _names_bin():
    return tl.build_c("dump_names.c")


def _fids(exe):
    return t_dump._fids(exe, ["main", "alpha", "beta", "gamma_local", "delta_recursive"])


def _calls(log, opts=(), sftrace=None, env=None, base=CREATE):
    """Chrome JSON of convert with opts -> ({tid: [(name, start, end, depth,
    flags)]} in begin order, relative to CREATE, convert's stderr)."""
    out = os.path.join(_dir(), "out.json")
    p = tl.run([sftrace or tl.SFTRACE, "convert", log, "-o", out, "--format", "chrome"] +
               list(opts), env=env)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    with open(out) as f:
        evs = json.load(f)["traceEvents"]
    res = collections.defaultdict(list)
    stacks = collections.defaultdict(list)
    for e in evs:
        if e["ph"] == "B":
            st = stacks[e["tid"]]
            st.append(len(res[e["tid"]]))
            res[e["tid"]].append([e["name"], round(e["ts"] * 1000) - base, None, len(st) - 1, ""])
        elif e["ph"] == "E":
            i = stacks[e["tid"]].pop()
            c = res[e["tid"]][i]
            assert e["name"] == c[0], (e, c)  # the end names its slice
            c[2] = round(e["ts"] * 1000) - base
            a = e.get("args", {})
            c[4] = "".join(k[0] for k in ("unfinished", "clipped", "unwound") if a.get(k))
    assert not any(stacks.values())
    return {t: [tuple(c) for c in v] for t, v in res.items()}, p.stderr


def _perfetto_ok(log, opts, env=None):
    out = os.path.join(_dir(), "out.pb")
    tl.run([tl.SFTRACE, "convert", "-q", log, "-o", out] + list(opts), env=env)
    tc._check(out)
    return tc.Trace(out)


def _synth():
    """Thread 11 of pid 10, three chunks (MONO clock, ns after CREATE):
        1000 main { 1010 alpha { 1020 beta 1030 } { 1040 gamma_local { 1050 beta 1060 } 1070 }
                    1100 }  1200 delta { 1210 delta 1220 } 1300 } 2000
    thread 12 ("worker"): 1500 beta 1600.  Returns (path, fid names)."""
    exe = _names_bin()
    funcs, fid = _fids(exe)
    M, A, B, G, D = (fid[n] for n in ("main", "alpha", "beta", "gamma_local", "delta_recursive"))
    log = ls.Log(create_mono_ns=CREATE)
    log.process(10, clock=ls.MONO, tsc=CREATE, mono_ns=CREATE, name="synth")
    log.object(10, 1, funcs, exe, ls.build_id(exe))
    log.thread(10, 11, "main")
    c = CREATE
    chunks = [
        [("entry", 1000, M), ("entry", 1010, A), ("entry", 1020, B), ("exit", 1030, B),
         ("entry", 1040, G), ("entry", 1050, B), ("exit", 1060, B), ("exit", 1070, G)],
        [("exit", 1100, A), ("entry", 1200, D), ("entry", 1210, D), ("exit", 1220, D),
         ("exit", 1300, D)],
        [("exit", 2000, M)],
    ]
    for seq, evs in enumerate(chunks):
        hi, recs = ls.encode([(k, c + t, f) for k, t, f in evs])
        last = c + evs[-1][1]
        log.events(10, 11, recs, tsc_hi=hi, seq=seq, flush_tsc=last + 5, flush_mono_ns=last + 5)
        if seq == 0:
            hi, recs = ls.encode([("entry", c + 1500, B), ("exit", c + 1600, B)])
            log.events(10, 12, recs, tsc_hi=hi, flush_tsc=c + 1605, flush_mono_ns=c + 1605)
    log.thread(10, 12, "worker", tsc=c + 1700)
    log.thread(10, 11, "main", tsc=c + 2050, flags=ls.THREAD_EXITED)  # after its last chunk
    log.end(10, tsc=c + 2100, mono_ns=c + 2100)
    return log.write(os.path.join(_dir(), "synth.log"))


ALL = {11: [("main", 1000, 2000, 0, ""), ("alpha", 1010, 1100, 1, ""),
            ("beta", 1020, 1030, 2, ""), ("gamma_local", 1040, 1070, 2, ""),
            ("beta", 1050, 1060, 3, ""), ("delta_recursive", 1200, 1300, 1, ""),
            ("delta_recursive", 1210, 1220, 2, "")],
       12: [("beta", 1500, 1600, 0, "")]}


def test_no_selection():
    log = _synth()
    got, _ = _calls(log)
    assert got == ALL, got


def test_call_selections_alone_and_composed():
    log = _synth()
    cases = {
        ("-F", "^alpha$"): {11: [("alpha", 1010, 1100, 0, ""), ("beta", 1020, 1030, 1, ""),
                                 ("gamma_local", 1040, 1070, 1, ""), ("beta", 1050, 1060, 2, "")]},
        ("-F", "alpha|delta"): {11: [("alpha", 1010, 1100, 0, ""), ("beta", 1020, 1030, 1, ""),
                                     ("gamma_local", 1040, 1070, 1, ""),
                                     ("beta", 1050, 1060, 2, ""),
                                     ("delta_recursive", 1200, 1300, 0, ""),
                                     ("delta_recursive", 1210, 1220, 1, "")]},
        ("-N", "gamma"): {11: [c for c in ALL[11] if c[1] not in (1040, 1050)], 12: ALL[12]},
        ("-N", "^beta$"): {11: [c for c in ALL[11] if c[0] != "beta"]},
        ("-D", "1"): {11: [c for c in ALL[11] if c[3] <= 1], 12: ALL[12]},
        ("-D", "0"): {11: [ALL[11][0]], 12: ALL[12]},
        ("--min-duration", "50"): {11: [ALL[11][0], ALL[11][1], ALL[11][5]], 12: ALL[12]},
        ("--min-duration", "0.03us"): {11: [c for c in ALL[11] if c[2] - c[1] >= 30],
                                       12: ALL[12]},
        ("-F", "alpha", "-D", "1"): {11: [("alpha", 1010, 1100, 0, ""),
                                          ("beta", 1020, 1030, 1, ""),
                                          ("gamma_local", 1040, 1070, 1, "")]},
        ("-F", "alpha", "-N", "gamma"): {11: [("alpha", 1010, 1100, 0, ""),
                                              ("beta", 1020, 1030, 1, "")]},
        ("-F", "main", "-F", "nothing", "--min-duration", "30", "-D", "1"):
            {11: [("main", 1000, 2000, 0, ""), ("alpha", 1010, 1100, 1, ""),
                  ("delta_recursive", 1200, 1300, 1, "")]},
        ("--tid", "12"): {12: ALL[12]},
        ("--pid", "10", "--tid", "11,99"): {11: ALL[11]},
        ("--pid", "7"): {},
        ("--thread-name", "^work"): {12: ALL[12]},  # named after its events: any name counts
        ("--thread-name", "main", "-N", "delta"): {11: ALL[11][:5]},
    }
    for opts, want in cases.items():
        got, _ = _calls(log, opts)
        assert got == want, (opts, got, want)
        _perfetto_ok(log, opts)
    # the ASan build agrees on the composed ones
    for opts in list(cases)[-7:]:
        assert _calls(log, opts, sftrace=tl.SFTRACE_ASAN)[0] == cases[opts], opts


def test_dump_selections():
    log = _synth()

    def dump(*opts):
        p = tl.run([tl.SFTRACE, "dump"] + list(opts) + [log])
        return [(e.time, e.tid, e.kind, e.func, e.extra) for e in tl.parse_dump(p.stdout)]

    full = dump()
    assert len(full) == 16 and full[1] == (1010, 11, "entry", "alpha", [])
    assert (1100, 11, "exit", "alpha", ["90"]) in full
    assert dump("-F", "^gamma") == [(1040, 11, "entry", "gamma_local", []),
                                    (1050, 11, "entry", "beta", []),
                                    (1060, 11, "exit", "beta", ["10"]),
                                    (1070, 11, "exit", "gamma_local", ["30"])]
    assert dump("--tid", "12") == [(1500, 12, "entry", "beta", []),
                                   (1600, 12, "exit", "beta", ["100"])]
    # min-duration: an entry line comes when its call is known to be kept,
    # still in time order within the thread
    got = dump("--min-duration", "90", "--tid", "11")
    assert got == [(1000, 11, "entry", "main", []), (1010, 11, "entry", "alpha", []),
                   (1100, 11, "exit", "alpha", ["90"]),
                   (1200, 11, "entry", "delta_recursive", []),
                   (1300, 11, "exit", "delta_recursive", ["100"]),
                   (2000, 11, "exit", "main", ["1000"])], got
    # the window: events in it only
    assert [x[0] for x in dump("--time-range", "45,250")] == [1050, 1060, 1070, 1100, 1200,
                                                               1210, 1220]
    # --sorted: one time order across threads
    s = dump("--sorted")
    assert [x[0] for x in s] == sorted(x[0] for x in full) and sorted(s) == sorted(full)


def test_time_range_exact():
    log = _synth()
    # [1045, 1250]: beta and the two delta calls begin inside; alpha and
    # gamma_local were open at the start (known from their exits in the
    # window, nested in exit order); main has no event inside: not shown
    want = {11: [("alpha", 1045, 1100, 0, "c"), ("gamma_local", 1045, 1070, 1, "c"),
                 ("beta", 1050, 1060, 2, ""), ("delta_recursive", 1200, 1250, 0, "c"),
                 ("delta_recursive", 1210, 1220, 1, "")]}
    for r in ("45,250", "45ns,0.25us", "0.045us,250"):
        got, err = _calls(log, ["--time-range", r])
        assert got == want, (r, got)
    assert "1 chunks outside the selection skipped" in err, err
    # a window after the first chunk: that chunk is skipped, alpha still comes out
    got, err = _calls(log, ["--time-range", "80,"])
    assert got == {11: [("main", 1080, 2000, 0, "c"), ("alpha", 1080, 1100, 1, "c"),
                        ("delta_recursive", 1200, 1300, 1, ""),
                        ("delta_recursive", 1210, 1220, 2, "")],
                   12: ALL[12]}, got
    assert "1 chunks outside the selection skipped" in err, err
    got, _ = _calls(log, ["--time-range", ",15"])
    assert got == {11: [("main", 1000, 1015, 0, "c"), ("alpha", 1010, 1015, 1, "c")]}, got
    # composed with a call selection
    got, _ = _calls(log, ["--time-range", "45,250", "-N", "beta", "-D", "1"])
    assert got == {11: [("alpha", 1045, 1100, 0, "c"), ("gamma_local", 1045, 1070, 1, "c"),
                        ("delta_recursive", 1200, 1250, 0, "c"),
                        ("delta_recursive", 1210, 1220, 1, "")]}, got
    # skipping changes nothing but the cost
    for r in ("45,250", "80,", ",15", "500,700", "1us,2us"):
        a, ea = _calls(log, ["--time-range", r])
        b, eb = _calls(log, ["--time-range", r], env={"SFTRACE_NO_SKIP": "1"})
        assert a == b, (r, a, b)
        assert "skipped" not in eb
        _perfetto_ok(log, ["--time-range", r])


def test_time_range_recorded_skips_and_matches():
    """A recorded multi-thread log: a narrow window decodes few chunks and
    gives exactly what decoding all of them gives; every slice lies in it."""
    prog = tl.build_c("recursion.c", flags=tl.WARN_CFLAGS)
    log = os.path.join(_dir(), "rec.log")
    tl.record([prog, "25", "50"], log)
    _, chunks = tl.read_log(log)
    nev = sum(1 for c in chunks if c["type"] == tl.CHUNK_EVENTS)
    assert nev >= 10, nev
    base = tl.read_log(log)[0]["create_mono_ns"]
    full, _ = _calls(log, ["-q"], base=base)
    (tid, calls), = full.items()
    t_first = calls[0][1]
    # a window holding 1% of the events (the recording may have gaps)
    times = sorted(e.time for e in tl.dump(log)[0])
    lo, hi = times[len(times) * 40 // 100], times[len(times) * 41 // 100]
    r = "%dns,%dns" % (lo - t_first, hi - t_first)
    for opts in (["--time-range", r], ["--time-range", r, "-F", "fib", "-D", "3"]):
        a, err = _calls(log, opts, base=base)
        b, _ = _calls(log, opts, env={"SFTRACE_NO_SKIP": "1"}, base=base)
        assert a == b
        assert "without entry" not in err, err  # the calls open at the start are known
        m = re.search(r"(\d+) chunks outside the selection skipped", err)
        assert m and int(m.group(1)) >= nev * 8 // 10, (err, nev)
        for c in a[tid]:
            assert lo <= c[1] <= c[2] <= hi, c
        _perfetto_ok(log, opts)
    a, _ = _calls(log, ["--time-range", r], base=base)
    # every call of the full conversion that begins and ends inside is there
    inside = [c for c in calls if lo <= c[1] and c[2] <= hi]
    got = collections.Counter((c[0], c[1], c[2]) for c in a[tid] if "c" not in c[4])
    assert got == collections.Counter((c[0], c[1], c[2]) for c in inside)


def test_thread_selections_recorded():
    prog = tl.build_c("threads.c", flags=tl.WARN_CFLAGS, libs=["-lpthread"])
    log = os.path.join(_dir(), "threads.log")
    p = tl.record([prog], log)
    pid = tl.kv(p.stdout, "pid")
    workers = {int(t): (int(c), n) for i, t, c, n in
               re.findall(r"^thread (\d+) tid (\d+) calls (\d+) name (\S+)$", p.stdout, re.M)}
    tid, (calls, name) = sorted(workers.items())[1]
    got, _ = _calls(log, ["--tid", str(tid)])
    assert list(got) == [tid] and len(got[tid]) == 1 + 2 * calls
    got, _ = _calls(log, ["--thread-name", "^%s$" % re.escape(name)])
    assert list(got) == [tid]
    got, _ = _calls(log, ["--pid", str(pid), "--tid", "%d,%d" % (pid, tid)])
    assert sorted(got) == sorted([pid, tid])
    d = tl.run([tl.SFTRACE, "dump", "--tid", str(tid), log]).stdout
    assert {e.tid for e in tl.parse_dump(d)} == {tid}


def test_bad_arguments():
    log = _synth()
    cases = [
        (["-F", "a(b"], r"-F 'a\(b': bad regular expression at offset 3"),
        (["-N", "[x"], r"-N '\[x': bad regular expression at offset 2"),
        (["--thread-name", "*x"], r"--thread-name '\*x': bad regular expression at offset 0"),
        (["--time-range", ","], r"--time-range ',': empty range"),
        (["--time-range", "2ms,1ms"], r"--time-range '2ms,1ms': the end is not after the start"),
        (["--time-range", "5ms,5ms"], r"the end is not after the start"),
        (["--time-range", "1ms"], r"--time-range '1ms': want START,END"),
        (["--time-range", "1xs,"], r"--time-range start '1xs': unknown unit 'xs'"),
        (["--time-range", ",abc"], r"--time-range end 'abc': not a duration"),
        (["--min-duration", "3 days"], r"--min-duration '3 days': unknown unit"),
        (["--min-duration", "-5"], r"--min-duration '-5': not a duration"),
        (["-D", "x"], r"-D 'x': want a depth"),
        (["-D", "-1"], r"-D '-1': want a depth"),
        (["--pid", "1,,2"], r"--pid '1,,2': bad list at offset 2"),
        (["--pid", ""], r"--pid: empty list"),
        (["--tid", "12a"], r"--tid '12a': bad list at offset 2"),
        (["--tid", "99999999999"], r"--tid '99999999999': id at offset 0 is too large"),
    ]
    for cmd in ("dump", "convert"):
        for opts, msg in cases:
            p = tl.run([tl.SFTRACE, cmd] + opts + [log, "-o", os.path.join(_dir(), "x.pb")]
                       if cmd == "convert" else [tl.SFTRACE, cmd] + opts + [log], check=False)
            assert p.returncode == 2, (cmd, opts, p.returncode, p.stderr)
            lines = p.stderr.strip().split("\n")
            assert len(lines) == 1 and re.search(msg, lines[0]), (cmd, opts, p.stderr)
            assert lines[0].startswith("sftrace %s: " % cmd), lines
    # --no-lines is accepted; with dump --lines it contradicts
    tl.run([tl.SFTRACE, "convert", "-q", "--no-lines", log, "-o", os.path.join(_dir(), "x.pb")])
    p = tl.run([tl.SFTRACE, "dump", "--lines", "--no-lines", log], check=False)
    assert p.returncode == 2 and "contradict" in p.stderr
