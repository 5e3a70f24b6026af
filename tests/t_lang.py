"""t_lang.py - record programs written in other languages than C.

Rust: a multi-threaded program built with `rustc -Zinstrument-xray=always`
(nightly flag, enabled on a stable rustc with RUSTC_BOOTSTRAP=1), in the v0
mangling (rustc's default here) and in the legacy one. Call counts per thread
must be exact and the names must come out demangled.
"""
import os
import re

import tl


def _rustc(src, out, extra=()):
    if not tl.have("rustc"):
        raise tl.Skip("rustc not found")
    path = os.path.join(tl.PROGS, src)
    if tl._stale(out, [path, __file__]):
        tl.run(["rustc", "-O", "-Zinstrument-xray=always", "--crate-name", "rust_threads"]
               + list(extra) + [path, "-o", out], env={"RUSTC_BOOTSTRAP": "1"}, timeout=300)
    return out


def _rust_threads(mangling):
    extra = ["-Zunstable-options", "-Csymbol-mangling-version=legacy"] if mangling == "legacy" else []
    prog = _rustc("rust_threads.rs", os.path.join(tl.outdir("bin"), "rust_threads_" + mangling), extra)
    # the instrumentation is there: an xray_instr_map section
    sections = tl.run(["readelf", "-S", "-W", prog]).stdout
    assert "xray_instr_map" in sections
    log = os.path.join(tl.outdir("lang"), "rust-%s.log" % mangling)
    p = tl.record([prog], log)
    out = p.stdout
    events, _ = tl.dump(log)
    _, chunks = tl.read_log(log)
    tl.check_log_complete(chunks, events)
    tl.check_time_order(events)

    pid = tl.kv(out, "pid")
    m = re.search(r"^main tid (\d+) calls (\d+)$", out, re.M)
    main_tid, main_calls = int(m.group(1)), int(m.group(2))
    threads = re.findall(r"^thread (\d+) tid (\d+) calls (\d+) name (\S+)$", out, re.M)
    assert len(threads) == 4, out
    assert main_tid == pid

    names = set(e.func for e in events)
    raw = sorted(n for n in names if n.startswith(("_R", "_ZN")))
    assert not raw, "names not demangled: %s" % raw[:5]
    assert "rust_threads::worker" in names and "rust_threads::leaf" in names, \
        sorted(n for n in names if "rust_threads" in n)

    assert set(e.pid for e in events) == {pid}
    tids = {int(t[1]) for t in threads}
    assert set(e.tid for e in events) == tids | {main_tid}
    thread_names = tl.thread_names(chunks, pid)
    for i, tid, calls, name in threads:
        i, tid, calls = int(i), int(tid), int(calls)
        assert calls == 1000 * (i + 1) + i and name == "rs-worker-%d" % i
        for f in ("rust_threads::worker", "rust_threads::leaf"):
            got = tuple(tl.counts(events, k, tid=tid)[f] for k in ("entry", "exit"))
            assert got == (calls, calls), (i, f, got)
        assert thread_names.get(tid) and thread_names[tid][-1] == name, (tid, thread_names.get(tid))
    for f in ("rust_threads::worker", "rust_threads::leaf"):
        got = tuple(tl.counts(events, k, tid=main_tid)[f] for k in ("entry", "exit"))
        assert got == (main_calls, main_calls), (f, got)
    total = sum(int(t[2]) for t in threads) + main_calls
    assert tl.counts(events)["rust_threads::worker"] == total
    tl.check_nesting(events)


def test_rust_threads_v0_mangling():
    _rust_threads("v0")


def test_rust_threads_legacy_mangling():
    _rust_threads("legacy")
