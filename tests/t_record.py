"""t_record.py - end-to-end tests of `sftrace record` and the runtime.

Each test builds a C (or C++) program from tests/programs with XRay
instrumentation, records it, dumps the log and checks the trace exactly:
call counts, pids and tids against what the program printed about itself,
nesting, time order, and the log's own bookkeeping (tl.check_log_complete).
"""
import collections
import os
import re
import signal
import subprocess

import tl

LIBS = ["-lpthread", "-ldl"]


def _build(src, **kw):
    kw.setdefault("flags", tl.WARN_CFLAGS)
    kw.setdefault("libs", LIBS)
    return tl.build_c(src, **kw)


def _log(name):
    return os.path.join(tl.outdir("record"), name + ".log")


def _record(cmd, name, rc=0, env=None, complete=True, preexec=None):
    """Record cmd; check its exit status; return (proc, events, chunks)."""
    log = _log(name)
    p = tl.record(cmd, log, env=env, check=False, preexec=preexec)
    assert p.returncode == rc, "%s: record returned %d, expected %d\nstdout:\n%s\nstderr:\n%s" % (
        name, p.returncode, rc, p.stdout[-3000:], p.stderr[-3000:])
    events, _ = tl.dump(log)
    _, chunks = tl.read_log(log)
    if complete:
        tl.check_log_complete(chunks, events)
    tl.check_time_order(events)
    return p, events, chunks


def _pids(events):
    return set(e.pid for e in events)


def _tids(events, pid):
    return set(e.tid for e in events if e.pid == pid)


def _calls(events, func, pid=None, tid=None):
    """(entries, exits, tailcalls) of func."""
    return tuple(tl.counts(events, k, pid=pid, tid=tid)[func] for k in ("entry", "exit", "tailcall"))


def _signame(sig):
    return signal.Signals(sig).name


def _strip_pids(text):
    return re.sub(r"\b(pid|tid|ppid|child|helper_tid|crasher_tid|thread_tid|main_tid|"
                  r"blocker_tid|spinner_tid|sender_tid) \d+", r"\1 N", text)


# ---- recursion ----------------------------------------------------------------


def _check_recursion(n, depth, fib_calls, pie=True):
    if pie:
        prog = _build("recursion.c")
    else:
        prog = _build("recursion.c", out=os.path.join(tl.outdir("bin"), "recursion_nopie"),
                      flags=tl.WARN_CFLAGS + ["-fno-pie", "-no-pie"])
        assert "EXEC" in tl.run(["readelf", "-h", prog]).stdout
    p, ev, _ = _record([prog, str(n), str(depth)], "recursion-%d%s" % (n, "" if pie else "-nopie"))
    pid, tid = tl.kv(p.stdout, "pid"), tl.kv(p.stdout, "tid")
    assert tl.kv(p.stdout, "fib_calls") == fib_calls
    assert _pids(ev) == {pid}, _pids(ev)
    assert _tids(ev, pid) == {tid}
    assert _calls(ev, "fib") == (fib_calls, fib_calls, 0)
    assert _calls(ev, "descend") == (depth + 1, depth + 1, 0)
    assert _calls(ev, "main") == (1, 1, 0)
    names = set(e.func for e in ev)
    assert names == {"main", "fib", "descend"}, names
    stacks = tl.check_nesting(ev)
    assert all(not s for s in stacks.values()), "frames left open: %s" % {
        k: s[-3:] for k, s in stacks.items() if s}
    # the deepest nesting: main + descend(depth)..descend(0), or main + fib(n)..fib(1)
    st, deepest = [], 0
    for e in ev:
        if e.kind == "entry":
            st.append(e.func)
            deepest = max(deepest, len(st))
        else:
            st.pop()
    assert deepest == max(depth + 2, n + 1), deepest
    # fib's frames: fib(n) is entered first and exited last among fib events
    fibs = [e for e in ev if e.func == "fib"]
    assert fibs[0].kind == "entry" and fibs[-1].kind == "exit"


def test_recursion():
    _check_recursion(20, 3000, 21891)


def test_recursion_many_chunks():
    # 485k events: ~60 buffer flushes of one thread, every one kept
    _check_recursion(25, 10, 242785)


def test_recursion_no_pie():
    _check_recursion(20, 100, 21891, pie=False)


# ---- threads ----------------------------------------------------------------


def test_threads():
    prog = _build("threads.c")
    p, ev, chunks = _record([prog], "threads")
    out = p.stdout
    pid = tl.kv(out, "pid")
    threads = [tuple(m) for m in re.findall(r"^thread (\d+) tid (\d+) calls (\d+) name (\S+)$", out, re.M)]
    assert len(threads) == 5, out
    main_tid = int(re.search(r"^main tid (\d+) calls (\d+)$", out, re.M).group(1))
    main_calls = int(re.search(r"^main tid (\d+) calls (\d+)$", out, re.M).group(2))
    assert main_tid == pid
    worker_tids = {int(t[1]): (int(t[0]), int(t[2]), t[3]) for t in threads}
    assert len(worker_tids) == 5

    assert _pids(ev) == {pid}
    assert _tids(ev, pid) == set(worker_tids) | {main_tid}, (_tids(ev, pid), worker_tids, main_tid)
    for tid, (i, calls, name) in worker_tids.items():
        assert calls == 4000 * (i + 1) + i
        assert _calls(ev, "worker", tid=tid) == (calls, calls, 0), (i, _calls(ev, "worker", tid=tid))
        assert _calls(ev, "work_leaf", tid=tid) == (calls, calls, 0)
        assert _calls(ev, "thread_main", tid=tid) == (1, 1, 0)
        assert _calls(ev, "main", tid=tid) == (0, 0, 0)
    assert _calls(ev, "worker", tid=main_tid) == (main_calls, main_calls, 0)
    assert _calls(ev, "work_leaf", tid=main_tid) == (main_calls, main_calls, 0)
    assert _calls(ev, "main", tid=main_tid) == (1, 1, 0)
    assert _calls(ev, "thread_main", tid=main_tid) == (0, 0, 0)
    stacks = tl.check_nesting(ev)
    assert all(not s for s in stacks.values()), {k: s for k, s in stacks.items() if s}

    # one clock for all threads: every worker event lies inside main's frame
    main_ev = [e for e in ev if e.tid == main_tid and e.func == "main"]
    t0, t1 = main_ev[0].time, main_ev[-1].time
    for tid in worker_tids:
        tev = [e.time for e in ev if e.tid == tid]
        assert t0 <= tev[0] and tev[-1] <= t1, (tid, t0, tev[0], tev[-1], t1)

    # names as the threads set them; thread 4 named itself after starting work
    names = tl.thread_names(chunks, pid)
    for tid, (i, calls, name) in worker_tids.items():
        expect = "late-4" if i == 4 else "work-%d" % i
        assert name == expect
        assert names.get(tid) and names[tid][-1] == expect, (i, tid, names.get(tid))


def test_threads_two_processes_at_once():
    # two multi-threaded processes appending to one log at the same time
    prog = _build("threads.c")
    p, ev, _ = _record(["/bin/sh", "-c", "%s & %s & wait" % (prog, prog)], "threads-2proc")
    outs = p.stdout
    pids = [int(x) for x in re.findall(r"^pid (\d+)$", outs, re.M)]
    assert len(pids) == 2 and pids[0] != pids[1], outs
    assert _pids(ev) == set(pids)
    tids = [(int(t), int(c)) for t, c in re.findall(r"^thread \d+ tid (\d+) calls (\d+)", outs, re.M)]
    assert len(tids) == 10
    for pid in pids:
        assert _calls(ev, "main", pid=pid) == (1, 1, 0)
        assert _calls(ev, "worker", pid=pid, tid=pid) == (3333, 3333, 0)
    for tid, calls in tids:
        assert _calls(ev, "worker", tid=tid) == (calls, calls, 0), tid
    total = sum(c for _, c in tids) + 2 * 3333
    assert tl.counts(ev)["worker"] == total
    tl.check_nesting(ev)


# ---- tail calls -------------------------------------------------------------

TAIL_SLED = "eb09660f1f840000020000"


def _func_bytes(binary, func):
    p = tl.run(["objdump", "-d", "--disassemble=" + func, binary])
    hexs = []
    inside = False
    for line in p.stdout.splitlines():
        if re.match(r"^[0-9a-f]+ <%s>:$" % re.escape(func), line):
            inside = True
            continue
        if inside:
            m = re.match(r"^\s+[0-9a-f]+:\t((?:[0-9a-f]{2} )+)", line)
            if m:
                hexs.append(m.group(1).replace(" ", ""))
            elif line.strip() == "" and hexs:
                break
    assert hexs, "no disassembly of %s in %s" % (func, binary)
    return "".join(hexs)


def test_tailcall():
    prog = _build("tailcall.c")
    # the compiler really emitted tail jumps with a tail sled before each
    for func in ("mid", "is_even", "is_odd", "to_libc"):
        code = _func_bytes(prog, func)
        assert code.startswith(TAIL_SLED), "%s: no entry sled: %s" % (func, code[:40])
        assert TAIL_SLED + "e9" in code[22:], "%s: no tail sled before a jmp: %s" % (func, code)
    _check_tailcall(prog, "tailcall")


def _check_tailcall(prog, name):
    """tailcall.c's trace, exactly (t_aarch64 too); returns the events."""
    p, ev, _ = _record([prog], name)
    pid, tid = tl.kv(p.stdout, "pid"), tl.kv(p.stdout, "tid")
    rounds, n = tl.kv(p.stdout, "rounds"), tl.kv(p.stdout, "parity_n")
    assert (rounds, n) == (500, 9)
    assert _pids(ev) == {pid} and _tids(ev, pid) == {tid}
    assert _calls(ev, "top") == (rounds, rounds, 0)
    assert _calls(ev, "mid") == (rounds, 0, rounds)
    assert _calls(ev, "leaf") == (rounds, rounds, 0)
    # is_even(9) -> is_odd(8) -> ... -> is_odd(0): 5 + 5 entries, 9 tail calls
    assert _calls(ev, "is_even") == (5 * rounds, 0, 5 * rounds)
    assert _calls(ev, "is_odd") == (5 * rounds, rounds, 4 * rounds)
    assert _calls(ev, "to_libc") == (rounds, 0, rounds)
    # each tail call is followed at once by the callee's entry
    follows = {"mid": "leaf", "is_even": "is_odd", "is_odd": "is_even"}
    for a, b in zip(ev, ev[1:]):
        if a.kind == "tailcall" and a.func in follows:
            assert (b.kind, b.func) == ("entry", follows[a.func]), (a, b)
    # a tail call ends the caller's frame: nesting holds, nothing stays open
    stacks = tl.check_nesting(ev)
    assert all(not s for s in stacks.values()), stacks
    # and the exact shape of one round
    first = [(e.kind, e.func) for e in ev[1:1 + 6]]
    assert first == [("entry", "top"), ("entry", "mid"), ("tailcall", "mid"), ("entry", "leaf"),
                     ("exit", "leaf"), ("exit", "top")], first
    return ev


# ---- dlopen -------------------------------------------------------------------


def test_dlopen():
    plugin = _build("plugin.c", shared=True, libs=())
    plugin_b = _build("plugin_b.c", shared=True, libs=())
    prog = _build("dlopen.c")
    p, ev, chunks = _record([prog, plugin, plugin_b], "dlopen")
    out = p.stdout
    pid, tid = tl.kv(out, "pid"), tl.kv(out, "tid")
    assert re.search(r"^round 1 calls 100 acc 10200 unloaded 1 ", out, re.M), out
    assert re.search(r"^round 2 calls 30 acc 960 unloaded 1 ", out, re.M), out
    assert _pids(ev) == {pid} and _tids(ev, pid) == {tid}
    unknown = sorted(set(e.func for e in ev if e.func.startswith("0x")))
    assert not unknown, "unresolved functions: %s" % unknown
    assert _calls(ev, "plugin_work") == (130, 130, 0)
    assert _calls(ev, "plugin_helper") == (200, 200, 0)
    assert _calls(ev, "b_helper") == (60, 60, 0)
    assert _calls(ev, "b_pad_one") == (0, 0, 0) and _calls(ev, "b_pad_two") == (0, 0, 0)
    assert _calls(ev, "run_plugin") == (2, 2, 0)
    assert _calls(ev, "after_close") == (50, 50, 0)
    assert _calls(ev, "main") == (1, 1, 0)
    tl.check_nesting(ev)
    # order: plugin.so's calls, then plugin_b.so's, then after_close
    idx = collections.defaultdict(list)
    for i, e in enumerate(ev):
        idx[e.func].append(i)
    assert max(idx["plugin_helper"]) < min(idx["b_helper"]) < max(idx["b_helper"]) < min(idx["after_close"])
    # plugin_work from the first object calls plugin_helper, from the second b_helper
    st = []
    for e in ev:
        if e.kind == "entry":
            if e.func in ("plugin_helper", "b_helper"):
                assert st[-1] == "plugin_work", (e, st[-3:])
            st.append(e.func)
        else:
            st.pop()
    paths = [os.path.basename(c["path"]) for c in chunks if c["type"] == tl.CHUNK_OBJECT]
    assert "plugin.so" in paths and "plugin_b.so" in paths, paths


def test_linked_shared_library():
    # an instrumented library the program is linked against, loaded before main
    plugin = _build("plugin.c", shared=True, libs=())
    prog = _build("linked.c", libs=[plugin])
    p, ev, chunks = _record([prog], "linked")
    pid, tid, calls = tl.kv(p.stdout, "pid"), tl.kv(p.stdout, "tid"), tl.kv(p.stdout, "calls")
    assert calls == 250 and tl.kv(p.stdout, "acc") == 94125
    assert _pids(ev) == {pid} and _tids(ev, pid) == {tid}
    assert _calls(ev, "plugin_work") == (calls, calls, 0)
    assert _calls(ev, "plugin_helper") == (2 * calls, 2 * calls, 0)
    assert _calls(ev, "local_work") == (calls, calls, 0)
    assert _calls(ev, "main") == (1, 1, 0)
    assert set(e.func for e in ev) == {"main", "plugin_work", "plugin_helper", "local_work"}
    stacks = tl.check_nesting(ev)
    assert all(not s for s in stacks.values())
    objs = [c for c in chunks if c["type"] == tl.CHUNK_OBJECT]
    assert len(objs) == 2, [c["path"] for c in objs]
    assert [os.path.basename(c["path"]) for c in objs if not c["flags"] & tl.OBJ_MAIN] == ["plugin.so"], objs


# ---- threads still running at exit ---------------------------------------------


def test_thread_running_at_exit():
    prog = _build("running_at_exit.c")
    p, ev, _ = _record([prog], "running-at-exit")
    out = p.stdout
    pid = tl.kv(out, "pid")
    main_tid, blocker, spinner = tl.kv(out, "main_tid"), tl.kv(out, "blocker_tid"), tl.kv(out, "spinner_tid")
    k, seen = tl.kv(out, "block_calls"), tl.kv(out, "spin_seen")
    assert k == 1234 and seen >= 20000
    assert _pids(ev) == {pid}
    assert _tids(ev, pid) == {main_tid, blocker, spinner}
    assert _calls(ev, "main", tid=main_tid) == (1, 1, 0)
    # the blocked thread: exactly its K calls, then the frame it blocks in
    assert _calls(ev, "blocked_work", tid=blocker) == (k, k, 0)
    assert _calls(ev, "blocker_wait", tid=blocker) == (1, 0, 0)
    assert _calls(ev, "blocker", tid=blocker) == (1, 0, 0)
    # the spinning thread: at least the calls main saw before returning
    ent, ext, _ = _calls(ev, "spin_step", tid=spinner)
    assert ent >= seen, "spin_step: %d entries in the log, the program had made %d" % (ent, seen)
    assert ent - ext in (0, 1), (ent, ext)
    assert _calls(ev, "spinner", tid=spinner) == (1, 0, 0)
    tl.check_nesting(ev)


# ---- fork -------------------------------------------------------------------


def test_fork():
    prog = _build("fork.c")
    p, ev, chunks = _record([prog], "fork")
    out = p.stdout
    m = re.search(r"^child pid (\d+) ppid (\d+) tid (\d+)$", out, re.M)
    child, ppid, ctid = map(int, m.groups())
    m = re.search(r"^parent pid (\d+) tid (\d+) child (\d+) helper_tid (\d+)$", out, re.M)
    parent, ptid, child2, helper = map(int, m.groups())
    assert (ppid, child2, ctid, ptid) == (parent, child, child, parent)
    assert _pids(ev) == {parent, child}
    assert _tids(ev, parent) == {parent, helper}
    assert _tids(ev, child) == {child}
    # pre-fork events, never flushed before the fork: once, under the parent
    assert _calls(ev, "before_fork", pid=parent, tid=parent) == (77, 77, 0)
    assert _calls(ev, "before_fork", pid=child) == (0, 0, 0)
    assert _calls(ev, "helper_work", pid=parent, tid=helper) == (40 + 9, 40 + 9, 0)
    assert _calls(ev, "helper_work", pid=child) == (0, 0, 0)
    assert _calls(ev, "main", pid=child) == (0, 0, 0)
    assert _calls(ev, "main", pid=parent) == (1, 1, 0)
    assert _calls(ev, "child_work", pid=child, tid=child) == (33, 33, 0)
    assert _calls(ev, "child_work", pid=parent) == (0, 0, 0)
    assert _calls(ev, "parent_work", pid=parent, tid=parent) == (55, 55, 0)
    assert _calls(ev, "parent_work", pid=child) == (0, 0, 0)
    assert len([e for e in ev if e.pid == child]) == 66, \
        collections.Counter((e.kind, e.func) for e in ev if e.pid == child)
    tl.check_nesting(ev)
    procs = [c for c in chunks if c["type"] == tl.CHUNK_PROCESS and c["pid"] == child]
    assert len(procs) == 1 and procs[0]["flags"] & tl.PROC_FORKED and procs[0]["ppid"] == parent, procs


# ---- exec -------------------------------------------------------------------


def test_exec():
    _check_exec(_build("exec_a.c"), _build("exec_b.c"))


def _check_exec(prog_a, prog_b, exec_target=None):
    """exec_a runs, then execs exec_target (prog_b, or a script that runs it:
    t_aarch64 execs one that starts qemu): one pid, two images."""
    p, ev, chunks = _record([prog_a, exec_target or prog_b], "exec")
    out = p.stdout
    m = re.search(r"^a pid (\d+) tid (\d+) calls (\d+) helper_tid (\d+) helper_calls (\d+)$", out, re.M)
    apid, atid, acalls, helper, hcalls = map(int, m.groups())
    m = re.search(r"^b pid (\d+) tid (\d+) calls (\d+) arg from-exec-a$", out, re.M)
    bpid, btid, bcalls = map(int, m.groups())
    assert apid == bpid == atid == btid, out
    assert _pids(ev) == {apid}
    assert _tids(ev, apid) == {apid, helper}
    assert _calls(ev, "a_outer", tid=apid) == (acalls, acalls, 0)
    assert _calls(ev, "a_inner", tid=apid) == (acalls, acalls, 0)
    assert _calls(ev, "a_helper_work", tid=helper) == (hcalls, hcalls, 0)
    assert _calls(ev, "a_exec") == (1, 0, 0)
    assert _calls(ev, "b_work", tid=apid) == (bcalls, bcalls, 0)
    for f in ("b_unused_1", "b_unused_2", "b_unused_3"):
        assert _calls(ev, f) == (0, 0, 0), f
    assert _calls(ev, "main") == (2, 1, 0)  # one per image; image A's never returns
    tl.check_nesting(ev)
    # the first image's events all come before the second image's
    a_last = max(e.time for e in ev if e.func.startswith("a_"))
    b_first = min(e.time for e in ev if e.func.startswith("b_"))
    assert a_last <= b_first
    ends = [c for c in chunks if c["type"] == tl.CHUNK_END and c["pid"] == apid]
    assert [c["reason"] for c in ends] == [tl.END_EXEC, tl.END_EXIT], ends
    procs = [c for c in chunks if c["type"] == tl.CHUNK_PROCESS and c["pid"] == apid]
    assert [os.path.basename(c["exe"]) for c in procs] == ["exec_a", "exec_b"], procs
    assert procs[1]["cmdline"] == [prog_b, "from-exec-a"], procs[1]
    # logfmt.h: the exec'd image's PROCESS chunk carries SF_PROC_EXECED
    assert not procs[0]["flags"] & tl.PROC_EXECED and procs[1]["flags"] & tl.PROC_EXECED, \
        [c["flags"] for c in procs]


# ---- signal handlers ------------------------------------------------------------


def test_signal_handlers():
    _signals(_build("signals.c"), 10000)


def _signals(prog, kill_n):
    """Every assertion on the whole event stream, counted while the dump
    streams (the log has ~15M events: a list of them takes gigabytes)."""
    log = _log("signals")
    p = tl.record([prog], log, check=False)
    assert p.returncode == 0, (p.returncode, p.stdout[-3000:], p.stderr[-3000:])
    out = p.stdout
    pid, tid, sender = tl.kv(out, "pid"), tl.kv(out, "tid"), tl.kv(out, "sender_tid")
    usr1, usr2, nested, busy = (tl.kv(out, k) for k in ("usr1", "usr2", "usr2_nested", "busy"))
    assert (tl.kv(out, "kill_n"), usr1, usr2, nested) == (kill_n, 200, kill_n + 20, 20), out
    counts = collections.Counter()  # (pid, tid, kind, func) -> events, as strings
    last = {}
    stacks = collections.defaultdict(list)
    inside = n = 0
    stid = str(tid)
    for f in tl.dump_stream(log, raw=True):
        n += 1
        _, q, t, kind, func = f[:5]
        k = (q, t)
        counts[(q, t, kind, func)] += 1
        # tl.check_time_order
        time = int(f[0])
        assert time >= last.get(k, 0), (n, f, last[k])
        last[k] = time
        # tl.check_nesting, and the SIGUSR2 handlers inside a SIGUSR1 one
        st = stacks[k]
        if kind == "entry":
            if func == "on_usr2" and t == stid and "on_usr1" in st:
                inside += 1
            st.append(func)
        elif kind in ("exit", "tailcall"):
            assert st, "exit of %s with empty stack on %s/%s" % (func, q, t)
            top = st.pop()
            assert top == func, "exit of %s but %s is on top (%s/%s)" % (func, top, q, t)
    counts = collections.Counter({(int(q), int(t), kd, fn): c
                                  for (q, t, kd, fn), c in counts.items()})
    per_pid = collections.Counter()
    for (q, _, _, _), c in counts.items():
        per_pid[q] += c
    last = {(int(q), int(t)) for q, t in last}
    _, chunks = tl.read_log(log)
    tl.check_log_complete(chunks, None, dumped=per_pid)
    assert set(per_pid) == {pid}
    assert {t for (q, t) in last if q == pid} == {tid, sender}

    def calls(func, t):
        return tuple(counts[(pid, t, kd, func)] for kd in ("entry", "exit", "tailcall"))

    assert calls("on_usr1", tid) == (usr1, usr1, 0)
    assert calls("on_usr2", tid) == (usr2, usr2, 0)
    assert calls("handler_work", tid) == (usr1 + usr2, usr1 + usr2, 0)
    assert calls("handler_leaf", tid) == (usr1 + usr2, usr1 + usr2, 0)
    assert calls("busy_work", tid) == (busy, busy, 0)
    assert calls("raiser", tid) == (1, 1, 0)
    assert calls("main", tid) == (1, 1, 0)
    assert calls("sender", sender) == (1, 1, 0)
    assert collections.Counter({f: c for (q, t, kd, f), c in counts.items()
                                if t == sender and kd == "entry"}) == {"sender": 1}
    assert all(not s for s in stacks.values()), stacks
    # the 20 nested SIGUSR2 handlers ran inside a SIGUSR1 handler
    assert inside == nested


# ---- fatal signals ------------------------------------------------------------


def _default_signals():
    # A suite run as a background job of a non-interactive shell inherits
    # SIGINT and SIGQUIT ignored, and so would the program: give it the
    # dispositions a program started from a terminal has.
    for s in (signal.SIGINT, signal.SIGQUIT):
        signal.signal(s, signal.SIG_DFL)


def _fatal(mode, sig=None, status=None):
    prog = _build("fatal.c")
    plain = tl.run([prog, mode], check=False, preexec=_default_signals)
    expect = 128 + sig if sig else status
    assert plain.returncode == (-sig if sig else status), (mode, plain.returncode)
    p, ev, chunks = _record([prog, mode], "fatal-" + mode, rc=expect, preexec=_default_signals)
    assert _strip_pids(p.stdout) == _strip_pids(plain.stdout), (p.stdout, plain.stdout)
    pid, tid = tl.kv(p.stdout, "pid"), tl.kv(p.stdout, "tid")
    n = tl.kv(p.stdout, "pre_calls")
    assert n == 321
    assert pid in _pids(ev) and _pids(ev) == {pid}
    assert _calls(ev, "pre_work", tid=tid) == (n, n, 0)
    assert _calls(ev, "main", tid=tid) == (1, 0, 0)
    tl.check_nesting(ev)
    if sig:
        ends = [c for c in chunks if c["type"] == tl.CHUNK_END]
        assert [c["reason"] for c in ends] == [tl.END_SIGNAL], ends
    return p, ev, pid, tid


def test_fatal_segv():
    p, ev, pid, tid = _fatal("segv", sig=signal.SIGSEGV)
    assert _calls(ev, "crash_here", tid=tid) == (1, 0, 0)


def test_fatal_abort():
    p, ev, pid, tid = _fatal("abort", sig=signal.SIGABRT)
    assert _calls(ev, "crash_here", tid=tid) == (1, 0, 0)


def test_fatal_fpe():
    p, ev, pid, tid = _fatal("fpe", sig=signal.SIGFPE)
    assert _calls(ev, "crash_here", tid=tid) == (1, 0, 0)


def test_fatal_ill():
    p, ev, pid, tid = _fatal("ill", sig=signal.SIGILL)
    assert _calls(ev, "crash_here", tid=tid) == (1, 0, 0)


def test_fatal_bus():
    p, ev, pid, tid = _fatal("bus", sig=signal.SIGBUS)
    assert _calls(ev, "crash_here", tid=tid) == (1, 0, 0)


def test_fatal_sigint():
    p, ev, pid, tid = _fatal("int", sig=signal.SIGINT)
    assert _calls(ev, "crash_here", tid=tid) == (1, 0, 0)


def test_fatal_sigterm_while_running():
    p, ev, pid, tid = _fatal("term", sig=signal.SIGTERM)
    floor = tl.kv(p.stdout, "spin_min")
    ent, ext, _ = _calls(ev, "spin_work", tid=tid)
    assert ent >= floor, "spin_work: %d entries in the log, the program had made %d" % (ent, floor)
    assert ent - ext in (0, 1)
    assert _calls(ev, "crash_here") == (0, 0, 0)


def test_fatal_own_handler():
    p, ev, pid, tid = _fatal("handler", status=3)
    assert p.stdout.endswith("handled SIGSEGV\n"), p.stdout
    assert _calls(ev, "crash_here", tid=tid) == (1, 0, 0)


def test_fatal_other_thread():
    p, ev, pid, tid = _fatal("thread", sig=signal.SIGSEGV)
    out = p.stdout
    helper, crasher = tl.kv(out, "helper_tid"), tl.kv(out, "crasher_tid")
    hc, cc = tl.kv(out, "helper_calls"), tl.kv(out, "crasher_calls")
    assert _tids(ev, pid) == {tid, helper, crasher}
    assert _calls(ev, "helper_work", tid=helper) == (hc, hc, 0)
    assert _calls(ev, "crasher_work", tid=crasher) == (cc, cc, 0)
    assert _calls(ev, "crash_here", tid=crasher) == (1, 0, 0)
    assert _calls(ev, "crash_here", tid=tid) == (0, 0, 0)


# ---- setjmp/longjmp -----------------------------------------------------------


def test_setjmp_longjmp():
    prog = _build("setjmp.c")
    p, ev, _ = _record([prog], "setjmp")
    out = p.stdout
    pid, tid = tl.kv(out, "pid"), tl.kv(out, "tid")
    assert "rounds 100 depth 20 dive_calls 2100" in out
    assert "sig_rounds 50 sig_depth 7 sig_dive_calls 400 handler_calls 50" in out
    assert _pids(ev) == {pid} and _tids(ev, pid) == {tid}
    assert _calls(ev, "dive") == (2100, 0, 0)
    assert _calls(ev, "sig_dive") == (400, 0, 0)
    assert _calls(ev, "on_usr1") == (50, 0, 0)
    assert _calls(ev, "handler_work") == (50, 50, 0)
    assert _calls(ev, "after_jump") == (150, 150, 0)
    assert _calls(ev, "main") == (1, 1, 0)
    # every exit matches a frame that is open (frames a jump skipped are dropped)
    st = []
    for e in ev:
        if e.kind == "entry":
            st.append(e.func)
        else:
            assert e.func in st, "exit of %s, open frames %s" % (e.func, st[-5:])
            while st.pop() != e.func:
                pass
    assert st == [], st


# ---- ABI preservation -----------------------------------------------------------

ABI_FUNCS = ["fp_many", "int_many", "fl_ret", "vsum", "fmt", "ret_pair", "ret_big", "ret_dpair",
             "ret_mixed", "ret_quad", "ret_triple", "ld_mul", "c_mul", "i128_mix", "sse_mix"]


def _abi(avx2):
    out = os.path.join(tl.outdir("bin"), "abi_avx2" if avx2 else "abi")
    prog = _build("abi.c", out=out, flags=tl.WARN_CFLAGS + (["-mavx2"] if avx2 else []))
    plain = tl.run([prog])
    assert "avx2 %d" % avx2 in plain.stdout
    p, ev, _ = _record([prog], "abi-avx2" if avx2 else "abi")
    assert p.stdout == plain.stdout, "traced output differs:\n" + "\n".join(
        "untraced: %s\ntraced:   %s" % (a, b)
        for a, b in zip(plain.stdout.splitlines(), p.stdout.splitlines()) if a != b)
    rounds = tl.kv(p.stdout, "rounds")
    for f in ABI_FUNCS + (["avx_mix"] if avx2 else []):
        assert _calls(ev, f) == (rounds, rounds, 0), (f, _calls(ev, f))
    assert _calls(ev, "main") == (1, 1, 0)
    stacks = tl.check_nesting(ev)
    assert all(not s for s in stacks.values())


def test_abi_preserved():
    _abi(False)


def test_abi_preserved_avx2():
    if not tl.cpu_has("avx2"):
        raise tl.Skip("the CPU has no AVX2")
    _abi(True)


# ---- exit status ----------------------------------------------------------------


def _exitcode(args, status):
    prog = _build("exitcode.c")
    p, ev, _ = _record([prog] + args, "exitcode-" + "-".join(args or ["default"]), rc=status)
    pid, tid = tl.kv(p.stdout, "pid"), tl.kv(p.stdout, "tid")
    assert _calls(ev, "status_work", pid=pid, tid=tid) == (10, 10, 0)
    return p, ev


def test_exit_status_return():
    p, ev = _exitcode([], 42)
    assert _calls(ev, "main") == (1, 1, 0)


def test_exit_status_exit():
    p, ev = _exitcode(["exit", "7"], 7)
    assert _calls(ev, "leave") == (1, 0, 0)
    assert _calls(ev, "main") == (1, 0, 0)


def test_exit_status_from_thread():
    p, ev = _exitcode(["thread", "99"], 99)
    ttid = tl.kv(p.stdout, "thread_tid")
    assert _calls(ev, "thread_work", tid=ttid) == (17, 17, 0)
    assert _calls(ev, "leave", tid=ttid) == (1, 0, 0)


def test_exit_status_zero():
    _exitcode(["return", "0"], 0)


# ---- C++ exceptions -------------------------------------------------------------


def _base(name):
    """sfx::catcher[abi:cxx11](int) -> sfx::catcher"""
    name = re.sub(r"\[abi:[^\]]*\]", "", name)
    return re.sub(r"\(.*\)( const)?$", "", name)


def test_cxx_exceptions():
    prog = _build("exceptions.cpp", compiler="clang++", libs=())
    plain = tl.run([prog])
    p, ev, _ = _record([prog], "exceptions")
    assert _strip_pids(p.stdout) == _strip_pids(plain.stdout)
    pid, tid = tl.kv(p.stdout, "pid"), tl.kv(p.stdout, "tid")
    assert "rounds 40 depth 12 guard_calls 520" in p.stdout
    assert _pids(ev) == {pid} and _tids(ev, pid) == {tid}
    mangled = sorted(set(e.func for e in ev if e.func.startswith("_Z")))
    assert not mangled, "names not demangled: %s" % mangled[:5]
    base = [e._replace(func=_base(e.func)) for e in ev]
    assert _calls(base, "sfx::thrower") == (520, 0, 0)
    assert _calls(base, "sfx::guard_dtor") == (520, 520, 0)
    assert _calls(base, "sfx::middle") == (40, 0, 0)
    assert _calls(base, "sfx::on_catch") == (40, 40, 0)
    assert _calls(base, "sfx::catcher") == (40, 40, 0)
    assert _calls(base, "main") == (1, 1, 0)


# ---- processes started by a shell ---------------------------------------------


def test_child_processes_of_a_shell():
    rec = _build("recursion.c")
    ex = _build("exitcode.c")
    p, ev, chunks = _record(["/bin/sh", "-c", "%s 15 10 && %s return 5; echo sh-done" % (rec, ex)],
                            "shell-children")
    assert p.stdout.endswith("sh-done\n")
    rpid = tl.kv(p.stdout, "pid")
    epid = [int(x) for x in re.findall(r"^pid (\d+)$", p.stdout, re.M)][1]
    assert _pids(ev) == {rpid, epid}
    assert _calls(ev, "fib", pid=rpid) == (1973, 1973, 0)
    assert _calls(ev, "status_work", pid=epid) == (10, 10, 0)
    assert _calls(ev, "fib", pid=epid) == (0, 0, 0)


# ---- no instrumented code -------------------------------------------------------

NO_INSTR = re.compile(r"no instrumented code", re.I)


def test_uninstrumented_program():
    for cmd, rc, out in ((["/bin/true"], 0, ""), (["/bin/false"], 1, ""),
                         (["/bin/echo", "hello", "world"], 0, "hello world\n")):
        log = _log("uninstrumented")
        p = tl.record(cmd, log, check=False)
        assert p.returncode == rc, (cmd, p.returncode, p.stderr)
        assert p.stdout == out
        assert NO_INSTR.search(p.stderr) and "-fxray-instrument" in p.stderr, p.stderr
        ev, _ = tl.dump(log)
        assert ev == [], ev[:5]


def test_instrumented_program_has_no_warning():
    prog = _build("exitcode.c")
    p = tl.record([prog], _log("instrumented-no-warning"), check=False)
    assert p.returncode == 42
    assert not NO_INSTR.search(p.stderr), p.stderr


def test_summary_line_counts_events():
    prog = _build("recursion.c")
    log = _log("summary")
    p = tl.record([prog, "10", "5"], log)
    ev, _ = tl.dump(log)
    m = re.search(r"(\d[\d,]*) events", p.stderr)
    assert m, p.stderr
    assert int(m.group(1).replace(",", "")) == len(ev) == 2 * (177 + 6 + 1), (m.group(0), len(ev))


# ---- the runtime stays inert without SFTRACE_OUTPUT_FILE -------------------------


def test_preload_without_output_is_inert():
    prog = _build("threads.c")
    d = tl.outdir("inert")
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFTRACE_")}
    env["LD_PRELOAD"] = tl.RUNTIME
    p = subprocess.run([prog], env=env, cwd=d, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert re.search(r"^thread 4 tid \d+ calls 20004 name late-4$", p.stdout, re.M), p.stdout
    assert os.listdir(d) == [], os.listdir(d)


# ---- record's own errors and options --------------------------------------------


def test_record_command_not_found():
    log = _log("notfound")
    p = tl.record(["/nonexistent/no-such-command"], log, check=False)
    assert p.returncode != 0
    # as a shell says it of a path: 127, "No such file or directory"
    assert p.returncode == 127 and p.stderr == (
        "sftrace record: /nonexistent/no-such-command: No such file or directory\n"), p.stderr
    p = tl.record(["no-such-command-sftrace"], log, check=False)
    assert p.returncode != 0
    assert "no-such-command-sftrace" in p.stderr and "not found" in p.stderr, p.stderr


def test_record_output_not_writable():
    p = tl.run([tl.SFTRACE, "record", "-o", "/nonexistent/dir/sf.log", "--", "/bin/true"], check=False)
    assert p.returncode != 0
    assert "/nonexistent/dir/sf.log" in p.stderr, p.stderr
    assert not os.path.exists("/nonexistent/dir/sf.log")


def test_record_default_output():
    d = tl.outdir("default-output")
    if os.path.exists(os.path.join(d, "sf.log")):
        os.unlink(os.path.join(d, "sf.log"))
    prog = _build("recursion.c")
    p = tl.run([tl.SFTRACE, "record", "--", prog, "5", "2"], cwd=d)
    ev, _ = tl.dump(os.path.join(d, "sf.log"))
    assert _calls(ev, "fib") == (15, 15, 0)


def test_record_print_solib():
    p = tl.run([tl.SFTRACE, "record", "--print-solib"])
    path = p.stdout.strip()
    assert path.endswith(".so") and os.path.isfile(path), p.stdout
    # the library record uses is the one it prints (it is preloaded)
    out = tl.run([tl.SFTRACE, "record", "-o", _log("print-solib"), "--", "/usr/bin/env"]).stdout
    preload = [l for l in out.splitlines() if l.startswith("LD_PRELOAD=")]
    assert preload and path in preload[0].split("=", 1)[1].split(":"), (path, preload)


def test_record_print_solib_install_dir():
    p = tl.run([tl.SFTRACE, "record", "--print-solib-install-dir"],
               env={"XDG_DATA_HOME": "/tmp/sftrace-xdg-test"})
    assert p.stdout == "/tmp/sftrace-xdg-test/sftrace\n", p.stdout
    env = dict(os.environ, HOME="/tmp/sftrace-home-test")
    env.pop("XDG_DATA_HOME", None)
    p = subprocess.run([tl.SFTRACE, "record", "--print-solib-install-dir"], env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout == "/tmp/sftrace-home-test/.local/share/sftrace\n", p.stdout


def test_record_solib_not_found():
    p = tl.record(["/bin/true"], _log("solib-missing"), extra=["--solib", "/nonexistent/libsftrace.so"],
                  check=False)
    assert p.returncode != 0
    assert "/nonexistent/libsftrace.so" in p.stderr and "not found" in p.stderr, p.stderr
