"""t_dump.py - tests of the log reader, the symbolizer and `sftrace dump`.

Logs are synthesized with logsynth.py, so these tests need no runtime: exact
times (across TSC_HI changes, with the TSC fit and the MONO clock), every
record kind, exec/fork object tables, symbol files and build-ids, C++ and
Rust demangling, and bad input of every sort, under both the normal and the
ASan+UBSan build.
"""
import concurrent.futures
import os
import random
import re
import shutil
import struct
import subprocess

import logsynth as ls
import tl

CREATE = 5_000_000_000  # create_mono_ns of the synthesized logs


def _dir():
    return tl.outdir("dump")


def _names_bin():
    return tl.build_c("dump_names.c")


def _cc_bin():
    return tl.build_c("dump_names.cc", compiler="clang++",
                      out=os.path.join(tl.outdir("bin"), "dump_names_cc"))


def _fids(exe, names):
    """name -> fid (fid_base 1) of functions of exe, found through its
    xray_instr_map and .symtab."""
    funcs = ls.xray_functions(exe)
    syms = ls.symbols(exe)
    out = {}
    for i, a in enumerate(funcs):
        for n in syms.get(a, []):
            out[n] = i + 1
    missing = [n for n in names if n not in out]
    assert not missing, "no xray functions %s in %s (have %s)" % (missing, exe, sorted(out))
    return funcs, out


def _dump(path, args=(), sftrace=None, check=True):
    return tl.run([sftrace or tl.SFTRACE, "dump"] + list(args) + [path], check=check)


def _lines(text):
    return [line for line in text.splitlines() if not line.startswith("#")]


def _no_sanitizer_report(p):
    for bad in ("Sanitizer", "runtime error:", "LeakSanitizer"):
        assert bad not in p.stderr, "sanitizer report:\n" + p.stderr[-3000:]


# ---- valid logs ---------------------------------------------------------------

def _tsc_log(exe):
    """A TSC log (2 GHz: 0.5 ns a tick) whose events cross a TSC_HI change.
    Returns (log, expected dump lines)."""
    funcs, fid = _fids(exe, ["main", "alpha", "beta", "gamma_local", "delta_recursive"])
    t0 = (7 << 32) + 0xFFFF0000  # high half 7, 65536 ticks before it becomes 8
    m0 = CREATE + 100_000

    def ns(t):
        assert (t - t0) % 2 == 0
        return m0 + (t - t0) // 2

    log = ls.Log(create_mono_ns=CREATE)
    log.process(4242, clock=ls.TSC, tsc=t0, mono_ns=m0, tsc_hz=2_000_000_000, exe=exe)
    log.object(4242, 1, funcs, exe, ls.build_id(exe))
    log.thread(4242, 4242, "main")
    ev1 = [("entry", t0 + 0x100, fid["main"]),
           ("entry", t0 + 0x200, fid["gamma_local"]),
           ("entry", t0 + 0xFFF0, fid["beta"]),        # high half 7
           ("entry", t0 + 0x10010, fid["alpha"]),      # high half 8: TSC_HI record
           ("exit", t0 + 0x10020, fid["alpha"]),
           ("tail", t0 + 0x10030, fid["beta"])]
    hi, recs = ls.encode(ev1)
    assert hi == 7 and b"\x08\x00\x00\x00\x07\x00\x00\x00" in recs  # TSC_HI(8) is inside
    t_flush = t0 + 0x20000
    log.events(4242, 4242, recs, tsc_hi=hi, seq=0, flush_tsc=t_flush, flush_mono_ns=ns(t_flush))
    # a second thread, its chunk starting in high half 8 without a TSC_HI record
    ev2 = [("entry", t0 + 0x10100, fid["delta_recursive"]),
           ("entry", t0 + 0x10102, fid["delta_recursive"]),
           ("exit", t0 + 0x10104, fid["delta_recursive"]),
           ("exit", t0 + 0x10106, fid["delta_recursive"])]
    hi2, recs2 = ls.encode(ev2)
    assert hi2 == 8 and len(recs2) == 32
    log.events(4242, 4243, recs2, tsc_hi=hi2, flush_tsc=t_flush + 2, flush_mono_ns=ns(t_flush + 2))
    # much later (hours: high half far away), main thread again
    t_late = t0 + (3600 * 2_000_000_000)
    ev3 = [("exit", t_late, fid["gamma_local"]), ("exit", t_late + 4, fid["main"])]
    hi3, recs3 = ls.encode(ev3)
    log.events(4242, 4242, recs3, tsc_hi=hi3, seq=1, flush_tsc=t_late + 8,
               flush_mono_ns=ns(t_late + 8))
    # the first thread's events again, packed (common/pack.h), as a third thread
    log.events(4242, 4244, ls.pack(recs, hi), tsc_hi=hi, flags=ls.EVENTS_PACKED,
               flush_tsc=t_late + 8, flush_mono_ns=ns(t_late + 8))
    log.end(4242, tsc=t_late + 10, mono_ns=ns(t_late + 10), events=18)

    names = {v: k for k, v in fid.items()}
    kinds = {"entry": "entry", "exit": "exit", "tail": "tailcall"}
    want = []
    stacks = {}  # exits and tail calls end with the duration of the call they end
    for tid, evs in ((4242, ev1), (4243, ev2), (4242, ev3), (4244, ev1)):
        st = stacks.setdefault(tid, [])
        for k, t, f in evs:
            line = "%d\t4242\t%d\t%s\t%s" % (ns(t) - CREATE, tid, kinds[k], names[f])
            if k == "entry":
                st.append(ns(t))
            else:
                line += "\t%d" % (ns(t) - st.pop())
            want.append(line)
    return log, want


def test_names_and_times_tsc():
    exe = _names_bin()
    log, want = _tsc_log(exe)
    path = log.write(os.path.join(_dir(), "tsc.sft"))
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = _dump(path, sftrace=sftrace)
        assert p.stdout.startswith("# time_ns\tpid\ttid\tkind\tfunction"), p.stdout[:200]
        got = _lines(p.stdout)
        assert got == want, "dump:\n%s\nwant:\n%s" % ("\n".join(got), "\n".join(want))
        assert p.stderr == "", p.stderr
    # the names come from the ELF symbols at the recorded addresses
    funcs = ls.xray_functions(exe)
    syms = ls.symbols(exe)
    evs = tl.parse_dump(p.stdout)
    for e in evs:
        assert any(e.func in syms.get(a, []) for a in funcs), e


def test_fit_from_pairs_without_hz():
    """tsc_hz 0: the slope comes from the calibration pairs (4 ticks a ns);
    the pairs come after the events that need them (the first pass)."""
    exe = _names_bin()
    funcs, fid = _fids(exe, ["alpha"])
    t0, m0 = 1 << 40, CREATE + 7_000_000

    def ns(t):
        return m0 + (t - t0) // 4

    log = ls.Log(create_mono_ns=CREATE)
    log.process(9, clock=ls.TSC, tsc=t0, mono_ns=m0, tsc_hz=0)
    log.object(9, 1, funcs, exe, ls.build_id(exe))
    times = [t0 + 4 * k for k in (10, 1000, 123456, 10**9, 3 * 10**9)]
    evs = []
    for t in times:
        evs += [("entry", t, fid["alpha"]), ("exit", t + 40, fid["alpha"])]
    hi, recs = ls.encode(evs)
    log.events(9, 9, recs, tsc_hi=hi, flush_tsc=t0 + 4 * 10**7, flush_mono_ns=ns(t0 + 4 * 10**7))
    log.end(9, tsc=t0 + 4 * 4 * 10**9, mono_ns=ns(t0 + 4 * 4 * 10**9))
    path = log.write(os.path.join(_dir(), "fit.sft"))
    got = tl.parse_dump(_dump(path).stdout)
    want = []
    for t in times:
        want += [ns(t) - CREATE, ns(t + 40) - CREATE]
    assert [e.time for e in got] == want, ([e.time for e in got], want)


def test_mono_clock_and_two_processes():
    exe = _names_bin()
    funcs, fid = _fids(exe, ["alpha", "beta"])
    log = ls.Log(create_mono_ns=CREATE)
    log.process(1, clock=ls.MONO, tsc=CREATE + 5, mono_ns=CREATE + 5)
    log.process(2, clock=ls.TSC, tsc=1000, mono_ns=CREATE + 1000, tsc_hz=1_000_000_000)
    log.object(1, 100, funcs, exe, ls.build_id(exe))
    log.object(2, 1, funcs, exe, ls.build_id(exe))
    _, r1 = ls.encode([("entry", CREATE + 10, 100 + fid["beta"] - 1),
                       ("exit", CREATE - 3, 100 + fid["beta"] - 1)])  # before creation
    _, r2 = ls.encode([("entry", 1500, fid["alpha"])])
    log.events(1, 1, r1, tsc_hi=CREATE >> 32)
    log.events(2, 2, r2)
    path = log.write(os.path.join(_dir(), "mono.sft"))
    got = _lines(_dump(path).stdout)
    # the exit's time is shown as recorded; its duration from times moved
    # forward to keep the thread's order (0)
    assert got == ["10\t1\t1\tentry\tbeta", "-3\t1\t1\texit\tbeta\t0", "1500\t2\t2\tentry\talpha"], \
        got


def test_record_kinds():
    exe = _names_bin()
    funcs, fid = _fids(exe, ["alpha", "beta", "main"])
    a, b = fid["alpha"], fid["beta"]
    log = ls.Log(create_mono_ns=0)
    log.process(7, clock=ls.MONO)
    log.object(7, 1, funcs + [0x10], exe, ls.build_id(exe))  # last: no symbol there
    nofunc = len(funcs) + 1
    log.chunk(99, 7, b"\1" * 24)  # a chunk type from the future: skipped
    _, recs = ls.encode([
        ("entry", 100, b), ("args", 101, [1, 2, 0xFFFFFFFFFFFFFFFF]),
        ("pad", 102),
        ("alloc", 103, ls.ALLOC, 64, 16, 0x7F0000001000),
        ("alloc", 104, ls.FREE, 0, 0, 0x7F0000001000),
        ("alloc", 105, ls.REALLOC_FREE, 64, 16, 0x7F0000002000),
        ("alloc", 106, ls.REALLOC_ALLOC, 128, 16, 0x7F0000003000),
        ("alloc", 107, 9, 1, 1, 1),  # unknown allocation kind: skipped
        ("ext", 108, 40, 3, [5, 6]),  # unknown subtype: skipped by nwords
        ("tail", 109, b),
        ("entry", 110, a), ("exit", 111, a), ("ret", 112, 42),
        ("lost", 113, 17),
        ("entry", 114, nofunc), ("entry", 115, 5000),
    ])
    log.events(7, 8, recs[:8])
    log.events(7, 8, recs[8:], seq=1)  # the entry before ARGS was in the last chunk
    log.thread(7, 8, "worker", flags=ls.THREAD_EXITED)
    _, recs = ls.encode([("args", 120, [7])])  # a thread with no entry before
    log.events(7, 9, recs)
    path = log.write(os.path.join(_dir(), "kinds.sft"))
    got = _lines(_dump(path).stdout)
    want = [
        "100\t7\t8\tentry\tbeta",
        "101\t7\t8\targs\tbeta\t0x1\t0x2\t0xffffffffffffffff",
        "103\t7\t8\talloc\t-\t64\t16\t0x7f0000001000",
        "104\t7\t8\tfree\t-\t0\t0\t0x7f0000001000",
        "105\t7\t8\trealloc-free\t-\t64\t16\t0x7f0000002000",
        "106\t7\t8\trealloc-alloc\t-\t128\t16\t0x7f0000003000",
        "109\t7\t8\ttailcall\tbeta\t9",
        "110\t7\t8\tentry\talpha",
        "111\t7\t8\texit\talpha\t1",
        "112\t7\t8\tret\talpha\t0x2a",
        "113\t7\t8\tlost\t-\t17",
        "114\t7\t8\tentry\t0x10",
        "115\t7\t8\tentry\tfid:5000",
        "120\t7\t9\targs\t-\t0x7",
    ]
    assert got == want, "\n".join(got)
    # the filters
    assert len(_lines(_dump(path, ["--tid", "9"]).stdout)) == 1
    assert len(_lines(_dump(path, ["--pid", "8"]).stdout)) == 0
    assert len(_lines(_dump(path, ["--pid", "7", "--tid", "8"]).stdout)) == 13


def _random_stream(rnd, n, nfids, t):
    """A random event stream: nesting deeper than the packer's stack, exits of
    functions not on the stack, tail calls, long pauses, extended records."""
    evs, stack = [], []
    for _ in range(n):
        r = rnd.random()
        t += rnd.choice([1, 2, 100, 300, 70000, 1 << 20, 1 << 25, 1 << 33, 5 << 32])
        if r < 0.45 or not stack:
            f = rnd.randrange(1, nfids + 1)
            stack.append(f)
            evs.append(("entry", t, f))
        elif r < 0.80:
            evs.append(("exit", t, stack.pop()))
        elif r < 0.85:
            evs.append(("tail", t, stack.pop()))
        elif r < 0.88:
            evs.append(("exit", t, rnd.randrange(1, nfids + 1)))  # maybe not on the stack
        elif r < 0.90 and len(stack) > 3:
            evs.append(("exit", t, stack[-3]))  # unwinds the packer's stack
            del stack[-3:]
        elif r < 0.92:
            evs.append(("alloc", t, rnd.randrange(1, 5), rnd.getrandbits(20), 16,
                        rnd.getrandbits(47)))
        elif r < 0.94:
            evs.append(("args", t, [rnd.getrandbits(64) for _ in range(rnd.randrange(0, 7))]))
        elif r < 0.96:
            evs.append(("ret", t, rnd.getrandbits(64)))
        elif r < 0.97:
            evs.append(("lost", t, rnd.randrange(1, 1000)))
        elif r < 0.98:
            evs.append(("ext", t, 50, 1, [1, 2, 3]))  # unknown subtype
        else:  # a deep dive past the packer's 256-deep stack
            for _ in range(300):
                f = rnd.randrange(1, nfids + 1)
                stack.append(f)
                t += 3
                evs.append(("entry", t, f))
    return evs


def test_packed_matches_raw():
    """The same random streams, raw and packed, dump the same lines."""
    exe = _names_bin()
    funcs = ls.xray_functions(exe)
    rnd = random.Random(11)
    log = ls.Log(create_mono_ns=0)
    log.process(3, clock=ls.TSC, tsc=1, mono_ns=1, tsc_hz=1_000_000_000)
    log.object(3, 1, funcs, exe, ls.build_id(exe))
    n = 0
    for i in range(12):
        evs = _random_stream(rnd, rnd.choice([1, 10, 1000, 5000]), len(funcs) + 3,
                             rnd.getrandbits(40))
        hi, raw = ls.encode(evs)
        log.events(3, 100 + i, raw, tsc_hi=hi)
        log.events(3, 200 + i, ls.pack(raw, hi), tsc_hi=hi, flags=ls.EVENTS_PACKED)
        n += len(evs)
    path = log.write(os.path.join(_dir(), "packed.sft"))
    p = _run_both(path)
    assert p.returncode == 0, p.stderr
    raw, packed = [], []
    for line in _lines(p.stdout):
        f = line.split("\t")
        (raw if int(f[2]) < 200 else packed).append("\t".join(f[:2] + f[3:]))
    assert len(raw) > n // 2 and raw == packed


def _cc_names(exe, funcs, fid):
    """The names dump may show for function id fid (fid_base 1) of exe: the
    demangled symbols at its address."""
    names = ls.symbols(exe).get(funcs[fid - 1], [])
    if not names:
        return ["0x%x" % funcs[fid - 1]]
    return tl.run(["c++filt"], input="\n".join(names) + "\n").stdout.split("\n")[:len(names)]


def test_exec_fork_and_pid_reuse():
    c_exe = _names_bin()
    cc_exe = _cc_bin()
    cfuncs, cfid = _fids(c_exe, ["alpha"])
    xfuncs, xfid = _fids(cc_exe, ["_ZN5outer5inner5plainEi"])
    log = ls.Log(create_mono_ns=0)
    log.process(50, clock=ls.MONO)
    log.object(50, 1, cfuncs, c_exe, ls.build_id(c_exe))
    log.process(51, ppid=50, clock=ls.MONO, flags=ls.PROC_FORKED)  # inherits 50's objects
    log.process(50, clock=ls.MONO, flags=ls.PROC_EXECED)           # new image: no objects yet
    _, r = ls.encode([("entry", 1, cfid["alpha"])])
    log.events(50, 50, r)  # before the new image's OBJECT: unresolved
    log.object(50, 1, xfuncs, cc_exe, ls.build_id(cc_exe))
    _, r = ls.encode([("entry", 2, xfid["_ZN5outer5inner5plainEi"])])
    log.events(50, 50, r)
    _, r = ls.encode([("entry", 3, cfid["alpha"])])
    log.events(51, 51, r)
    # an OBJECT over the same ids replaces the inherited one (in the child only)
    log.object(51, 1, xfuncs, cc_exe, ls.build_id(cc_exe))
    _, r = ls.encode([("exit", 4, xfid["_ZN5outer5inner5plainEi"])])
    log.events(51, 51, r)
    log.end(51)
    log.process(51, ppid=1, clock=ls.MONO)  # pid reused by an unrelated process
    _, r = ls.encode([("entry", 5, cfid["alpha"])])
    log.events(51, 51, r)
    _, r = ls.encode([("entry", 6, cfid["alpha"])])
    log.events(50, 50, r)  # still the exec'd image's table
    path = log.write(os.path.join(_dir(), "exec.sft"))
    got = _lines(_dump(path).stdout)
    assert len(got) == 6 and got[:5] == ["1\t50\t50\tentry\tfid:%d" % cfid["alpha"],
                   "2\t50\t50\tentry\touter::inner::plain(int)",
                   "3\t51\t51\tentry\talpha",
                   "4\t51\t51\texit\touter::inner::plain(int)\t1",
                   "5\t51\t51\tentry\tfid:%d" % cfid["alpha"]], got[:5]
    assert got[5] in ["6\t50\t50\tentry\t" + n for n in _cc_names(cc_exe, xfuncs, cfid["alpha"])]


def test_missing_binary_and_build_id_mismatch():
    exe = _names_bin()
    funcs, fid = _fids(exe, ["alpha"])
    log = ls.Log(create_mono_ns=0)
    for pid, path, bid in ((1, "/nonexistent/dir/prog", b"\xaa" * 20),
                           (2, exe, b"\x01" * 20),
                           (3, exe, b"\x01" * 20)):  # same object again: one warning
        log.process(pid, clock=ls.MONO)
        log.object(pid, 1, funcs, path, bid)
        _, r = ls.encode([("entry", 10, fid["alpha"]), ("exit", 11, fid["alpha"])])
        log.events(pid, pid, r)
    path = log.write(os.path.join(_dir(), "mismatch.sft"))
    p = _dump(path)
    addr = "0x%x" % funcs[fid["alpha"] - 1]
    assert [e.func for e in tl.parse_dump(p.stdout)] == [addr] * 6, p.stdout
    warns = p.stderr.splitlines()
    assert warns == [
        "sftrace: warning: /nonexistent/dir/prog: No such file or directory; showing addresses",
        "sftrace: warning: %s: build-id differs from the recorded one; showing addresses" % exe,
    ], p.stderr


def test_debug_file_and_symbol_files():
    """A stripped binary: names from its .gnu_debuglink file, then from -s
    (matched by build-id, or by basename when no build-id was recorded)."""
    exe = _names_bin()
    d = tl.outdir("dump", "debuglink")
    funcs, fid = _fids(exe, ["alpha", "gamma_local"])
    stripped = os.path.join(d, "prog")
    dbg = os.path.join(d, "prog.debug")
    tl.run(["objcopy", "--only-keep-debug", exe, dbg])
    tl.run(["objcopy", "--strip-all", "--add-gnu-debuglink=" + dbg, exe, stripped])
    assert not ls.symbols(stripped)
    bid = ls.build_id(exe)
    assert bid and ls.build_id(stripped) == bid

    def make(path, bid):
        log = ls.Log(create_mono_ns=0)
        log.process(1, clock=ls.MONO)
        log.object(1, 1, funcs, path, bid)
        _, r = ls.encode([("entry", 1, fid["gamma_local"]), ("entry", 2, fid["alpha"])])
        log.events(1, 1, r)
        return log.write(os.path.join(d, "log%d.sft" % len(bid)))

    want = ["gamma_local", "alpha"]
    log = make(stripped, bid)
    p = _dump(log, ["--lines"])
    evs = tl.parse_dump(p.stdout)
    assert [e.func for e in evs] == want and p.stderr == "", (p.stdout, p.stderr)
    src = os.path.join(tl.PROGS, "dump_names.c")
    with open(src) as f:
        text = f.read().splitlines()
    for e in evs:
        file, line = e.extra[0].rsplit(":", 1)
        assert file == src, e  # made absolute with the CU's comp_dir
        assert e.func in text[int(line) - 1], (e, text[int(line) - 1])

    # the debug file moved away: only -s finds it (by build-id, any name)
    other = os.path.join(tl.outdir("dump", "symfiles"), "whatever.dbg")
    shutil.move(dbg, other)
    p = _dump(log)
    assert [e.func for e in tl.parse_dump(p.stdout)] != want
    p = _dump(log, ["-s", other])
    assert [e.func for e in tl.parse_dump(p.stdout)] == want and p.stderr == "", p.stderr
    # ... also when the binary itself is gone
    os.unlink(stripped)
    p = _dump(log, ["-s", other, "-s", exe])
    assert [e.func for e in tl.parse_dump(p.stdout)] == want and p.stderr == "", p.stderr
    # no build-id recorded: matched by basename
    log2 = make("/gone/whatever.dbg", b"")
    p = _dump(log2, ["-s", other])
    assert [e.func for e in tl.parse_dump(p.stdout)] == want and p.stderr == "", p.stderr
    p = _dump(log2, ["-s", "/nonexistent.debug"], check=False)
    assert p.returncode == 2 and "/nonexistent.debug" in p.stderr, p.stderr


# ---- demangling ---------------------------------------------------------------

def _all_funcs_log(exe, name):
    funcs = ls.xray_functions(exe)
    log = ls.Log(create_mono_ns=0)
    log.process(1, clock=ls.MONO)
    log.object(1, 1, funcs, exe, ls.build_id(exe))
    evs = [("entry", i + 1, i + 1) for i in range(len(funcs))]
    _, r = ls.encode(evs)
    log.events(1, 1, r)
    path = log.write(os.path.join(_dir(), name))
    p = _dump(path)
    assert p.stderr == "", p.stderr
    got = [e.func for e in tl.parse_dump(p.stdout)]
    assert len(got) == len(funcs)
    return funcs, got


def _check_demangled(exe, funcs, got, want):
    syms = ls.symbols(exe)
    mangled = sorted({n for a in funcs for n in syms.get(a, [])})
    filt = tl.run(["c++filt"], input="\n".join(mangled) + "\n").stdout.splitlines() \
        if tl.have("c++filt") else []
    demangled = dict(zip(mangled, filt))
    for a, name in zip(funcs, got):
        assert not name.startswith(("_Z", "_R")), "not demangled: %s" % name
        assert not re.search(r"::h[0-9a-f]{16}$", name), "hash left: %s" % name
        if not name.startswith("0x") and demangled:
            # c++filt knows legacy Rust names (it keeps the hash), not v0 ones
            if not any(n.startswith("_R") for n in syms.get(a, [])):
                alts = [re.sub(r"::h[0-9a-f]{16}$", "", demangled.get(n, n))
                        for n in syms.get(a, [])]
                assert name in alts, (hex(a), name, alts)
    missing = [w for w in want if w not in got]
    assert not missing, "missing %s in:\n%s" % (missing, "\n".join(got))


def test_demangle_cpp():
    exe = _cc_bin()
    funcs, got = _all_funcs_log(exe, "cpp.sft")
    _check_demangled(exe, funcs, got, [
        "outer::inner::plain(int)",
        "int outer::inner::twice<int>(int)",
        "double outer::inner::twice<double>(double)",
        "outer::inner::Box<int>::get() const",
        "outer::inner::Box<double>::get() const",
        "main",
    ])
    assert any(n.startswith("total(std::vector<std::__cxx11::basic_string<char") for n in got)


def _rust(mangling):
    if not tl.have("rustc"):
        raise tl.Skip("rustc not found")
    src = os.path.join(tl.PROGS, "dump_names.rs")
    out = os.path.join(tl.outdir("bin"), "dump_names_rs_" + mangling)
    if tl._stale(out, [src]):
        cmd = ["rustc", "-O", "-g", "-Zinstrument-xray=always", src, "-o", out]
        if mangling == "legacy":
            cmd += ["-Zunstable-options", "-Csymbol-mangling-version=legacy"]
        tl.run(cmd, env={"RUSTC_BOOTSTRAP": "1"})
    return out


def test_demangle_rust_v0():
    exe = _rust("v0")
    assert any(n.startswith("_R") for ns in ls.symbols(exe).values() for n in ns)
    funcs, got = _all_funcs_log(exe, "rust_v0.sft")
    _check_demangled(exe, funcs, got, [
        "dump_names::main", "dump_names::compute", "dump_names::shapes::largest::<u64>",
        "<dump_names::shapes::Circle>::area"])


def test_demangle_rust_legacy():
    exe = _rust("legacy")
    assert any(re.match(r"_ZN.*17h[0-9a-f]{16}E$", n)
               for ns in ls.symbols(exe).values() for n in ns)
    funcs, got = _all_funcs_log(exe, "rust_legacy.sft")
    _check_demangled(exe, funcs, got, [
        "dump_names::main", "dump_names::compute", "dump_names::shapes::largest",
        "dump_names::shapes::Circle::area"])


# ---- bad input ------------------------------------------------------------------

def _run_both(path, args=()):
    """Run dump under both builds; return the normal build's result after
    checking the ASan one agrees and reports nothing."""
    res = []
    for exe in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = tl.run([exe, "dump"] + list(args) + [path], check=False, timeout=60)
        assert p.returncode >= 0, "%s killed by signal %d on %s\n%s" % (
            exe, -p.returncode, path, p.stderr[-2000:])
        _no_sanitizer_report(p)
        res.append(p)
    a, b = res
    assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), \
        "builds disagree on %s:\n%s\n%s" % (path, a.stderr, b.stderr)
    return a


def _bad(path, want=None):
    """dump fails with exit 1 and one message naming the file and an offset."""
    p = _run_both(path)
    assert p.returncode == 1, "exit %d on %s\n%s" % (p.returncode, path, p.stderr)
    err = p.stderr.strip().splitlines()
    assert len(err) == 1, p.stderr
    m = re.match(r"sftrace dump: (.*): offset (\d+): (.*)$", err[0])
    assert m and m.group(1) == path, err[0]
    if want:
        assert re.search(want, m.group(3)), "%r does not match %r" % (m.group(3), want)
    return p, int(m.group(2)), m.group(3)


def test_bad_files():
    d = tl.outdir("dump", "bad")

    def write(name, data):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    _bad(write("empty", b""), "empty file")
    _bad(write("text", b"hello, this is not a log at all\n" * 10), r"not an sftrace log \(magic\)")
    _bad(write("elf", open(_names_bin(), "rb").read()), r"not an sftrace log")
    rnd = random.Random(7)
    for i in range(10):
        _bad(write("random%d" % i, bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 3000)))),
             "not an sftrace log")
    newer = ls.Log(version=(2, 0))
    newer.process(1, clock=ls.MONO)
    _bad(write("newer", newer.bytes()),
         r"log version 2\.0 is newer than this sftrace supports \(1\.\d+\)")
    # a newer minor version with a bigger header is fine
    minor = ls.Log(version=(1, 9), header_size=128)
    minor.process(1, clock=ls.MONO)
    p = _run_both(write("minor", minor.bytes()))
    assert p.returncode == 0, p.stderr
    _bad(write("hsize", ls.Log(header_size=60).bytes()[:64]), r"\(header_size\)")
    _bad(write("vzero", ls.Log(version=(0, 1)).bytes()), r"\(version_major\)")
    # random bytes after a good header
    for i in range(20):
        log = ls.Log()
        log.process(1, clock=ls.MONO)
        log.raw(bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, 500))))
        p = _run_both(write("tail%d" % i, log.bytes()))
        assert p.returncode == 1 and "offset" in p.stderr, p.stderr
    # random bytes inside the records of a valid EVENTS chunk, raw or packed:
    # never a crash
    exe = _names_bin()
    for i in range(40):
        log = ls.Log()
        log.process(1, clock=ls.MONO)
        log.object(1, 1, [0x1000, 0x2000], exe)
        log.events(1, 1, bytes(rnd.getrandbits(8) for _ in range(8 * rnd.randrange(1, 64))),
                   flags=ls.EVENTS_PACKED if i % 2 else 0)
        p = _run_both(write("recs%d" % i, log.bytes()))
        assert p.returncode in (0, 1), p.stderr
    # a packed chunk with bytes flipped
    for i in range(20):
        hi, raw = ls.encode(_random_stream(rnd, 200, 5, 1 << 36))
        packed = bytearray(ls.pack(raw, hi))
        for _ in range(3):
            packed[rnd.randrange(len(packed))] ^= 1 << rnd.randrange(8)
        log = ls.Log()
        log.process(1, clock=ls.MONO)
        log.events(1, 1, bytes(packed), tsc_hi=hi, flags=ls.EVENTS_PACKED)
        p = _run_both(write("flip%d" % i, log.bytes()))
        assert p.returncode in (0, 1), p.stderr


def _field_log(mutate):
    log = ls.Log(create_mono_ns=0)
    log.process(1, clock=ls.MONO)
    log.object(1, 1, [0x10], _names_bin())
    _, r = ls.encode([("entry", 5, 1)])
    log.events(1, 1, r)
    good = len(log.data)
    mutate(log)
    return log, good


def test_bad_fields():
    """Each corrupt field gives an error at the chunk (or record) naming the
    field, after the events of the good chunks before it."""
    d = tl.outdir("dump", "fields")
    cases = [
        ("magic", lambda l: l.chunk(ls.EVENTS, 1, b"\0" * 32, magic=0x12345678),
         r"bad chunk magic 0x12345678 \(magic\)"),
        ("size8", lambda l: l.chunk(ls.THREAD, 1, b"\0" * 32, size=52),
         r"not a multiple of 8 \(size\)"),
        ("small", lambda l: l.chunk(ls.EVENTS, 1, b"\0" * 16, size=40),
         r"smaller than its header.*\(size\)"),
        ("zero", lambda l: l.chunk(ls.PROCESS, 1, b"", size=0), r"\(size\)"),
        ("huge", lambda l: l.chunk(ls.EVENTS, 1, b"\0" * 32, size=(1 << 30) + 8),
         r"larger than .*\(size\)"),
        ("past_end", lambda l: l.chunk(ls.EVENTS, 1, b"\0" * 32, size=4096),
         r"runs past the end of the file.*truncated \(size\)"),
        ("strings", lambda l: l.process(2, clock=ls.MONO, lens=(10, 10, 100)),
         r"strings .* run past the end of the chunk.*\(exe_len\)"),
        ("namelen", lambda l: l.process(2, clock=ls.MONO, lens=(1000, 0, 0)), r"\(name_len\)"),
        ("clock", lambda l: l.process(2, clock=7), r"unknown clock 7 \(clock\)"),
        ("nfuncs", lambda l: l.object(1, 1, [1, 2], "/x", nfuncs=1000),
         r"run past the end of the chunk.*\(nfuncs\)"),
        ("pathlen", lambda l: l.object(1, 1, [1], "/x", path_len=1000), r"\(path_len\)"),
        ("bidlen", lambda l: l.object(1, 1, [1], "/x", build_id_len=0xFFFFFFFF),
         r"\(build_id_len\)"),
        ("fidmax", lambda l: l.object(1, (1 << 30) - 1, [1, 2], "/x"), r"\(nfuncs\)"),
        ("nopid", lambda l: l.events(77, 77, ls.rec(1, 1, 0)),
         r"pid 77 comes before any PROCESS chunk.*\(pid\)"),
        ("nwords", lambda l: l.events(1, 1, ls.rec(1, 1, 0) + ls.ext(ls.EXT_RET, 0, 0, [1], nwords=5)),
         r"extended record .* 5 payload words, only 1 left.*\(nwords\)"),
        ("nwords_max", lambda l: l.events(1, 1, ls.ext(40, 0, 0, [], nwords=0xFFFF)), r"\(nwords\)"),
        ("alloc3", lambda l: l.events(1, 1, ls.ext(ls.EXT_ALLOC, 1, 0, [1, 2])),
         r"ALLOC record with 2 payload words.*\(nwords\)"),
        ("args7", lambda l: l.events(1, 1, ls.ext(ls.EXT_ARGS, 7, 0, [0] * 7)), r"\(arg\)"),
        ("args_short", lambda l: l.events(1, 1, ls.ext(ls.EXT_ARGS, 3, 0, [0] * 2)), r"\(nwords\)"),
        ("ret0", lambda l: l.events(1, 1, ls.ext(ls.EXT_RET, 0, 0, [])), r"\(nwords\)"),
        ("packed_pad", lambda l: l.events(1, 1, b"\x01\x01", flags=ls.EVENTS_PACKED, pad=9),
         r"\(pad\)"),
        ("packed_implied", lambda l: l.events(1, 1, b"\x01\x01", flags=ls.EVENTS_PACKED),
         r"bad packed record \(tag 0x01\).*\(records\)"),
        ("packed_cache", lambda l: l.events(1, 1, b"\x00\x01", flags=ls.EVENTS_PACKED),
         r"\(records\)"),
        ("packed_short", lambda l: l.events(1, 1, ls.pack(ls.rec(1, 1, 0), 0)[:-1],
                                            flags=ls.EVENTS_PACKED), r"\(records\)"),
        ("packed_alloc", lambda l: l.events(1, 1, ls.pack(ls.ext(ls.EXT_ALLOC, 1, 0, [1]), 0),
                                            flags=ls.EVENTS_PACKED), r"ALLOC.*\(nwords\)"),
    ]
    for name, mutate, want in cases:
        log, good = _field_log(mutate)
        path = log.write(os.path.join(d, name + ".sft"))
        p, off, msg = _bad(path, want)
        assert _lines(p.stdout) == ["5\t1\t1\tentry\t0x10"], (name, p.stdout)
        if name.startswith(("nwords", "alloc", "args", "ret", "packed_implied", "packed_cache",
                            "packed_short", "packed_alloc")):
            assert off == good + 48 + (8 if name == "nwords" else 0), (name, off, good)
        else:
            assert off == good, (name, off, good)


def _truncation_log():
    exe = _names_bin()
    log, _ = _tsc_log(exe)
    return log


def test_truncated_everywhere():
    """Cut a valid log at every offset of its first 400 bytes and at a sample
    of the others: a cut inside a chunk fails with a message and the events
    of every complete chunk; a cut at a chunk boundary is a shorter valid log."""
    log = _truncation_log()
    data = log.bytes()
    full = _lines(_dump(log.write(os.path.join(_dir(), "full.sft"))).stdout)
    # events each chunk contributes, in order
    per_chunk = []
    for off, size, ctype in log.chunks:
        part = ls.Log(create_mono_ns=CREATE)
        part.data = bytearray(data[:off + size])
        per_chunk.append(len(_lines(_dump(part.write(os.path.join(_dir(), "part.sft"))).stdout)))
    d = tl.outdir("dump", "trunc")
    rnd = random.Random(3)
    cuts = list(range(0, min(400, len(data)))) + sorted(rnd.sample(range(400, len(data)), 40)) \
        if len(data) > 440 else list(range(len(data)))
    bounds = {off + size: i for i, (off, size, _) in enumerate(log.chunks)}

    def one(cut):
        path = os.path.join(d, "cut%05d.sft" % cut)
        with open(path, "wb") as f:
            f.write(data[:cut])
        complete = [i for i, (off, size, _) in enumerate(log.chunks) if off + size <= cut]
        nlines = per_chunk[complete[-1]] if complete else 0
        if cut in bounds or cut == 64:
            p = _run_both(path)
            assert p.returncode == 0, (cut, p.stderr)
        else:
            p, off, msg = _bad(path)
            assert "truncated" in msg or "empty" in msg or "magic" in msg, (cut, msg)
            if cut >= 64:
                assert off == (log.chunks[len(complete)][0]), (cut, off)
        got = _lines(p.stdout)
        assert got == full[:nlines], (cut, got, full[:nlines])
        os.unlink(path)

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        for f in [ex.submit(one, c) for c in cuts]:
            f.result()


def test_large_log_streams():
    """A 64 MB log: memory stays small (streaming) and every event is printed."""
    exe = _names_bin()
    funcs, fid = _fids(exe, ["alpha", "beta"])
    a, b = fid["alpha"], fid["beta"]
    log = ls.Log(create_mono_ns=0)
    log.process(1, clock=ls.TSC, tsc=1000, mono_ns=1000, tsc_hz=1_000_000_000)
    log.object(1, 1, funcs, exe, ls.build_id(exe))
    per = 8192  # events a chunk
    recs = b"".join(ls.rec(1000 + 2 * i, a if i % 4 in (0, 3) else b, ls.ENTRY if i % 4 < 2 else ls.EXIT)
                    for i in range(per))
    one = ls.chunk_header(ls.EVENTS, 0, 48 + len(recs), 1) + \
        struct.pack("<IIIIQQ", 1, 0, 0, 0, 0, 0) + recs
    path = os.path.join(_dir(), "large.sft")
    nchunks = (64 << 20) // len(one)
    with open(path, "wb") as f:
        f.write(log.bytes())
        for _ in range(nchunks):
            f.write(one)
    code = ("import resource, subprocess, sys\n"
            "p = subprocess.Popen([sys.argv[1], 'dump', sys.argv[2]], stdout=subprocess.PIPE)\n"
            "n = 0\n"
            "while True:\n"
            "    b = p.stdout.read(1 << 20)\n"
            "    if not b:\n"
            "        break\n"
            "    n += b.count(b'\\n')\n"
            "assert p.wait() == 0\n"
            "print(n, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    out = tl.run(["python3", "-c", code, tl.SFTRACE, path], timeout=300).stdout.split()
    lines, rss_kb = int(out[0]), int(out[1])
    os.unlink(path)
    assert lines == 1 + nchunks * per, (lines, nchunks * per)
    assert rss_kb < 40 * 1024, "dump used %d KB for a 64 MB log" % rss_kb


def test_usage():
    p = tl.run([tl.SFTRACE, "dump"], check=False)
    assert p.returncode == 2 and "usage" in p.stderr
    p = tl.run([tl.SFTRACE, "dump", "-h"])
    assert "usage: sftrace dump" in p.stdout
    p = tl.run([tl.SFTRACE, "dump", "/nonexistent.sft"], check=False)
    assert p.returncode == 1 and "/nonexistent.sft" in p.stderr
    p = tl.run([tl.SFTRACE, "dump", "--pid", "x", "a"], check=False)
    assert p.returncode == 2


def test_recorded_log():
    """A real recording of dump_names resolves to the program's names."""
    if not os.path.exists(tl.RUNTIME):
        raise tl.Skip("runtime not built")
    exe = _names_bin()
    log = os.path.join(_dir(), "rec.sft")
    tl.record([exe, "4"], log)
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        evs, p = tl.dump(log, sftrace=sftrace)
        _no_sanitizer_report(p)
        c = tl.counts(evs)
        assert c["main"] == 1 and c["gamma_local"] == 4 and c["alpha"] == 8, c
        assert c["delta_recursive"] >= 4, c  # clang may turn the recursion into a loop
        tl.check_nesting(evs)
        times = [e.time for e in evs]
        assert times == sorted(times) and times[0] > 0, times[:10]
