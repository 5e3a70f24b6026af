"""t_calls.py - the call engine (lib/calls.c): exact nesting, durations and
self times of recorded programs (recursion, tail calls, threads, C++
exceptions, Rust panics caught by catch_unwind, longjmp and siglongjmp out of
a signal handler), seen through `sftrace dump --calls`, and the pieces of
convert that moved onto it (Chrome end names, process names, the summary,
the heap counter's arithmetic).

`dump --calls` prints one line per call when it ends:
    start_ns pid tid depth duration_ns self_ns id parent_id flags function
"""
import collections
import json
import os
import re

import logsynth as ls
import tl
import t_convert as tc

Call = collections.namedtuple("Call", "start pid tid depth dur self id parent flags name end")


def _dir(*parts):
    return tl.outdir("calls", *parts)


def _build(src, **kw):
    kw.setdefault("flags", tl.WARN_CFLAGS)
    kw.setdefault("libs", ["-lpthread"])
    return tl.build_c(src, **kw)


def _record(args, name, env=None):
    log = os.path.join(_dir(), name + ".log")
    p = tl.record(args, log, env=env)
    return log, p


def _calls(log, opts=(), sftrace=None):
    p = tl.run([sftrace or tl.SFTRACE, "dump", "--calls"] + list(opts) + [log])
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    out = []
    for line in p.stdout.splitlines():
        if line.startswith("#"):
            continue
        f = line.split("\t")
        s, d = int(f[0]), int(f[4])
        out.append(Call(s, int(f[1]), int(f[2]), int(f[3]), d, int(f[5]), int(f[6]), int(f[7]),
                        f[8], f[9], s + d))
    return out


def _check_tree(calls):
    """Parents contain their children, depths follow parents, self times are
    durations minus the children's, and the self times add up to the roots'
    totals. Returns {id: Call}."""
    by_id = {c.id: c for c in calls}
    assert len(by_id) == len(calls)
    kids = collections.defaultdict(int)
    for c in calls:
        assert c.dur >= 0 and c.self >= 0, c
        if c.parent:
            p = by_id[c.parent]
            assert (p.pid, p.tid) == (c.pid, c.tid), (p, c)
            assert p.start <= c.start and c.end <= p.end, (p, c)
            assert c.depth == p.depth + 1, (p, c)
            kids[c.parent] += c.dur
        else:
            assert c.depth == 0, c
    for c in calls:
        assert c.self == c.dur - kids[c.id], (c, kids[c.id])
    assert sum(c.self for c in calls) == sum(c.dur for c in calls if not c.parent)
    return by_id


def _children(by_id, c):
    return sorted((x for x in by_id.values() if x.parent == c.id), key=lambda x: x.start)


def test_recursion_nesting_and_self_times():
    prog = _build("recursion.c")
    log, p = _record([prog, "10", "20"], "recursion")
    calls = _calls(log)
    by_id = _check_tree(calls)
    names = collections.Counter(c.name for c in calls)
    assert names == {"main": 1, "fib": 177, "descend": 21}, names
    assert not [c for c in calls if c.flags != "-"]
    main = [c for c in calls if c.name == "main"][0]
    # fib(10): the call tree of fib, exactly: each fib(n) has fib(n-1), fib(n-2) for n >= 2
    top = [c for c in _children(by_id, main) if c.name == "fib"]
    assert len(top) == 1

    def size(c):
        ks = _children(by_id, c)
        assert all(k.name == "fib" for k in ks)
        assert len(ks) in (0, 2), c
        return 1 + sum(size(k) for k in ks)

    assert size(top[0]) == 177
    # descend(20): a chain of 21 frames at depths 1..21
    d = sorted(c.depth for c in calls if c.name == "descend")
    assert d == list(range(1, 22)), d
    # the ASan build agrees
    assert sorted(_calls(log, sftrace=tl.SFTRACE_ASAN)) == sorted(calls)


def test_tail_calls():
    prog = _build("tailcall.c")
    log, p = _record([prog], "tailcall")
    calls = _calls(log)
    by_id = _check_tree(calls)
    c = collections.Counter(x.name for x in calls)
    assert (c["top"], c["mid"], c["leaf"], c["is_even"], c["is_odd"], c["to_libc"]) == \
        (500, 500, 500, 2500, 2500, 500), c
    for x in calls:
        if x.name == "mid":
            assert x.flags == "t", x  # left by its tail call to leaf
            assert by_id[x.parent].name == "top"
        if x.name == "leaf":
            p = by_id[x.parent]
            assert p.name == "top" and x.depth == p.depth + 1, (x, p)
            sib = [m for m in _children(by_id, p) if m.name == "mid"][0]
            assert sib.end <= x.start  # leaf begins after mid's tail call
        if x.name in ("is_even", "is_odd"):
            assert by_id[x.parent].name == "main" and x.depth == 1
        if x.name == "to_libc":
            assert x.flags == "t"
    # is_even(9): 9 tail calls then one exit, per round
    flags = collections.Counter(x.flags for x in calls if x.name in ("is_even", "is_odd"))
    assert flags == {"t": 4500, "-": 500}, flags


def test_threads():
    prog = _build("threads.c")
    log, p = _record([prog], "threads")
    calls = _calls(log)
    _check_tree(calls)
    pid = tl.kv(p.stdout, "pid")
    workers = {int(t): int(n) for i, t, n, _ in
               re.findall(r"^thread (\d+) tid (\d+) calls (\d+) name (\S+)$", p.stdout, re.M)}
    per = collections.defaultdict(collections.Counter)
    for c in calls:
        assert c.pid == pid
        per[c.tid][(c.name, c.depth)] += 1
    for tid, n in workers.items():
        assert per[tid] == {("thread_main", 0): 1, ("worker", 1): n, ("work_leaf", 2): n}, per[tid]
    assert per[pid] == {("main", 0): 1, ("worker", 1): 3333, ("work_leaf", 2): 3333}


def _rounds(calls, root_name):
    """Calls grouped by the root-level call of root_name that contains them."""
    roots = sorted((c for c in calls if c.name == root_name), key=lambda c: c.start)
    return [(r, sorted((c for c in calls if r.start <= c.start and c.end <= r.end and c is not r),
                       key=lambda c: (c.start, c.depth))) for r in roots]


def test_cxx_exceptions():
    prog = _build("exceptions.cpp", compiler="clang++", libs=())
    log, p = _record([prog], "exceptions")
    calls = _calls(log)
    by_id = _check_tree(calls)
    rounds = _rounds(calls, "sfx::catcher[abi:cxx11](int)")
    assert len(rounds) == 40
    for catcher, inside in rounds:
        assert catcher.flags == "-" and catcher.depth == 1
        mid = [c for c in inside if c.name == "sfx::middle(int)"]
        assert len(mid) == 1 and mid[0].parent == catcher.id and mid[0].flags == "uw"
        thr = [c for c in inside if c.name == "sfx::thrower(int)"]
        assert [c.depth for c in thr] == list(range(3, 16)), [c.depth for c in thr]
        assert all(c.flags == "uw" for c in thr)
        # the throwers end where middle's handler calls on_catch, all at once
        oc = [c for c in inside if c.name == "sfx::on_catch(char const*)"]
        assert len(oc) == 1 and oc[0].parent == mid[0].id and oc[0].flags == "-"
        assert {c.end for c in thr} == {oc[0].start}
        # middle ends where catcher's handler makes its first call (not at
        # catcher's return): the calls after it are catcher's own
        after = [c for c in inside if c.start >= mid[0].end and c.parent == catcher.id]
        assert after and mid[0].end == after[0].start
        assert all(by_id[c.parent].name != "sfx::middle(int)" for c in after)
        # destructors run by the unwinder: shown in the deepest thrower (the
        # log cannot tell which of the unwound frames ran them)
        g = [c for c in inside if c.name == "sfx::guard_dtor(int)"]
        assert len(g) == 13 and {by_id[c.parent].depth for c in g} == {15}


def test_rust_panic_catch_unwind():
    if not tl.have("rustc"):
        raise tl.Skip("rustc not found")
    src = os.path.join(tl.PROGS, "calls_panic.rs")
    exe = os.path.join(tl.outdir("bin"), "calls_panic")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        tl.run(["rustc", "-O", "-g", "-Zinstrument-xray=always", src, "-o", exe],
               env={"RUSTC_BOOTSTRAP": "1"}, timeout=300)
    log, p = _record([exe], "panic")
    assert re.search(r"^rounds 30 depth 6 panics 10 ", p.stdout, re.M), p.stdout
    calls = _calls(log)
    by_id = _check_tree(calls)
    main = [c for c in calls if c.name == "calls_panic::main"]
    assert len(main) == 1
    after = sorted((c for c in calls if c.name == "calls_panic::after_catch"),
                   key=lambda c: c.start)
    assert len(after) == 30 and all(c.parent == main[0].id for c in after), after[:2]
    dives = [c for c in calls if c.name == "calls_panic::dive"]
    leaves = [c for c in calls if c.name == "calls_panic::leaf"]
    assert len(dives) == 30 * 7 and len(leaves) == 30
    for i, a in enumerate(after):
        prev = after[i - 1].end if i else main[0].start
        rd = [c for c in dives if prev <= c.start < a.start]
        lf = [c for c in leaves if prev <= c.start < a.start]
        assert len(rd) == 7 and len(lf) == 1, (i, rd, lf)
        assert sorted(c.depth for c in rd) == list(range(main[0].depth + 1, main[0].depth + 8))
        outer = min(rd, key=lambda c: c.depth)
        assert by_id[outer.parent].depth <= main[0].depth  # under main (through catch_unwind)
        if i % 3 == 0:  # panicked: every frame it passed ends where main goes on
            assert all("w" in c.flags for c in rd if c.depth < max(x.depth for x in rd)), rd
            assert "w" in lf[0].flags
            assert max(c.end for c in rd + lf) == a.start
            assert {c.end for c in rd if "w" in c.flags} == {a.start}
        else:
            assert not [c for c in rd + lf if "w" in c.flags or "u" in c.flags], (i, rd, lf)
            assert all(c.end <= a.start for c in rd + lf)


def test_longjmp_and_siglongjmp():
    prog = _build("setjmp.c", libs=())
    log, p = _record([prog], "setjmp")
    calls = _calls(log)
    by_id = _check_tree(calls)
    main = [c for c in calls if c.name == "main"][0]
    after = sorted((c for c in calls if c.name == "after_jump"), key=lambda c: c.start)
    assert len(after) == 150 and all(c.parent == main.id for c in after)
    dives = [c for c in calls if c.name == "dive"]
    assert sorted(collections.Counter(c.depth for c in dives).items()) == \
        [(d, 100) for d in range(1, 22)]
    assert all(c.flags == "uw" for c in dives)
    # each round's dives end where main calls after_jump
    ends = collections.Counter(c.end for c in dives)
    assert sorted(ends.values()) == [21] * 100 and set(ends) <= {a.start for a in after[:100]}
    sig = [c for c in calls if c.name == "sig_dive"]
    assert sorted(collections.Counter(c.depth for c in sig).items()) == \
        [(d, 50) for d in range(1, 9)]
    h = [c for c in calls if c.name == "on_usr1"]
    assert len(h) == 50
    for c in h:  # the handler runs on top of the frame the signal interrupted
        assert by_id[c.parent].name == "sig_dive" and c.depth == 9 and c.flags == "uw"
        w = _children(by_id, c)
        assert [(x.name, x.flags) for x in w] == [("handler_work", "-")]
    ends = collections.Counter(c.end for c in sig + h)
    assert sorted(ends.values()) == [9] * 50 and set(ends) <= {a.start for a in after[100:]}


def test_sum_of_self_times_with_selections():
    prog = _build("recursion.c")
    log, p = _record([prog, "12", "30"], "selfsum")
    full = _calls(log)
    for opts in (["--min-duration", "200ns"], ["-F", "^fib$"], ["-N", "descend"], ["-D", "3"],
                 ["-F", "fib", "-D", "2", "--min-duration", "50"]):
        calls = _calls(log, opts)
        _check_tree(calls)
        assert len(calls) < len(full), opts
    # --min-duration: a dropped call's time stays in its parent's self time
    md = _calls(log, ["--min-duration", "300ns"])
    kept = {c.id for c in md}
    by_full = {c.id: c for c in full}
    for c in md:
        dropped = sum(x.dur for x in full if x.parent == c.id and x.id not in kept)
        assert c.self == by_full[c.id].self + dropped, c
    assert all(c.dur >= 300 for c in md)
    assert {c.id for c in full if c.dur >= 300} == kept


# ---- convert's pieces ------------------------------------------------------------


def test_chrome_end_names_and_process_names():
    a = _build("exec_a.c", libs=())
    b = _build("exec_b.c", libs=())
    log, p = _record([a, b], "exec")
    out = os.path.join(_dir(), "exec.json")
    cp = tl.run([tl.SFTRACE, "convert", log, "-o", out, "--format", "chrome"])
    assert "1 process, 2 images" in cp.stderr, cp.stderr
    with open(out) as f:
        evs = json.load(f)["traceEvents"]
    names = [e for e in evs if e["ph"] == "M" and e["name"] == "process_name"]
    assert len(names) == 1, names  # one per process, though it exec'd
    assert names[0]["args"]["name"] == "exec_b" and names[0]["args"]["cmdline"].startswith(b)
    stacks = collections.defaultdict(list)
    for e in evs:
        if e["ph"] == "B":
            stacks[e["tid"]].append(e["name"])
        elif e["ph"] == "E":
            assert e["name"] == stacks[e["tid"]].pop(), e
    # fork: two processes, two images
    f = _build("fork.c", libs=())
    log, p = _record([f], "fork")
    cp = tl.run([tl.SFTRACE, "convert", log, "-o", os.path.join(_dir(), "fork.pb")])
    assert "2 processes, 2 images" in cp.stderr, cp.stderr
    tc._check(os.path.join(_dir(), "fork.pb"))


def test_heap_counter_saturates():
    """Sizes near 2^63 would overflow the signed sum (UBSan): it saturates."""
    exe = _build("recursion.c")
    funcs = ls.xray_functions(exe)
    log = ls.Log(create_mono_ns=1000)
    log.process(3, clock=ls.MONO, mono_ns=1000)
    log.object(3, 1, funcs, exe, ls.build_id(exe))
    big = 2**63 - 5
    hi, recs = ls.encode([("entry", 2000, 1), ("alloc", 2001, ls.ALLOC, big, 16, 0x10),
                          ("alloc", 2002, ls.ALLOC, big, 16, 0x20),
                          ("alloc", 2003, ls.ALLOC, 2**64 - 1, 16, 0x30),
                          ("alloc", 2004, ls.FREE, 2**64 - 1, 16, 0x30),
                          ("alloc", 2005, ls.FREE, big, 16, 0x10),
                          ("exit", 2006, 1)])
    log.events(3, 3, recs, tsc_hi=hi)
    path = log.write(os.path.join(_dir(), "heap.log"))
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        out = os.path.join(_dir(), "heap.json")
        p = tl.run([sftrace, "convert", path, "-o", out, "--format", "chrome"])
        assert "runtime error" not in p.stderr and "Sanitizer" not in p.stderr, p.stderr
        with open(out) as f:
            vals = [e["args"]["bytes"] for e in json.load(f)["traceEvents"] if e["ph"] == "C"]
        m = 2**63 - 1
        assert vals == [big, m, m, 0, -big], vals
        pb = os.path.join(_dir(), "heap.pb")
        tl.run([sftrace, "convert", "-q", path, "-o", pb])
        tc._check(pb)
