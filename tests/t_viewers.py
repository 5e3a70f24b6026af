"""t_viewers.py - our outputs opened in the viewers people use, in a real browser.

Our own format checks (t_convert.py) check our reading of the Chrome JSON
format; these check a viewer's. Each test records a known program, converts
the log, opens the output in Debian's Chromium (headless, driven by
playwright-core) and asserts on what the viewer shows:

- speedscope (tests/viewers/speedscope.mjs): loaded with no warning or error
  in the console, one profile per thread named "<process> (pid P), <thread>
  (tid T)", the program's function names, each function's call count (from
  speedscope's own export of what it loaded) and its total and self time
  (from the export and from the Sandwich table a user reads) equal to
  `sftrace report` for the same log and selection, within rounding; and the
  same call counts and times computed here from `sftrace dump`.
- the flame graph SVG (tests/viewers/flamesvg.mjs): a click zooms the clicked
  frame to the full width; the search box highlights matches and shows their
  share.

The viewers come from scripts/viewer-deps.sh (Debian's chromium; speedscope
and playwright-core from npm into build/viewers/node_modules). Where they
cannot be had, every test here skips and says why. chrome://tracing is not in
Debian's Chromium any more (its trace viewer was removed from Chromium) and
ui.perfetto.dev needs the network, so neither is checked here; Perfetto
traces are checked by check_perfetto.py in t_convert.py.

Screenshots of every view, and speedscope's export, go to
build/tests/viewers/shots/<test>-*.png, to look at when a test fails.

What each test leans on from the other branches (a failure names it):
  engine    end events named like their begin (speedscope pairs B/E by
            name; without it every test here fails, as in issue 18), thread
            and process metadata, ends of unfinished and clipped calls that
            speedscope accepts (test_speedscope_unfinished,
            test_speedscope_time_range), --time-range and -F in convert and
            report, and the call engine `sftrace report` runs on;
  analysis  `sftrace report` (every speedscope test compares with it),
            `sftrace flame` (test_flame_svg_zoom_and_search,
            test_speedscope_folded_stacks).
"""
import collections
import json
import os
import re

import tl

HERE = os.path.dirname(os.path.abspath(__file__))
VIEWERS_JS = os.path.join(HERE, "viewers")
VIEWERS_BUILD = os.path.join(tl.BUILD, "viewers")
MODULES = os.path.join(VIEWERS_BUILD, "node_modules")

NEEDS_ENGINE = "(comes from branch engine: %s)"
NEEDS_ANALYSIS = "(comes from branch analysis: %s)"

_deps_checked = []


def _viewers():
    """Make sure the viewers are installed (cached); skip with the reason if not."""
    if not _deps_checked:
        p = tl.run(["sh", os.path.join(tl.ROOT, "scripts", "viewer-deps.sh")], check=False,
                   cwd=tl.ROOT, timeout=900)
        _deps_checked.append(p)
    why = os.path.join(VIEWERS_BUILD, "unavailable")
    if os.path.exists(why):
        with open(why) as f:
            raise tl.Skip("viewers unavailable: " + f.read().strip())
    for m in ("speedscope", "playwright-core"):
        if not os.path.exists(os.path.join(MODULES, m, "package.json")):
            raise tl.Skip("viewers unavailable: %s not in %s (scripts/viewer-deps.sh: %s)"
                          % (m, MODULES, _deps_checked[0].stderr.strip()[-500:]))
    if not tl.have("chromium"):
        raise tl.Skip("viewers unavailable: no chromium")


def _dir(*parts):
    return tl.outdir("viewers", *parts)


def _shots():
    return _dir("shots")


def _node(script, args, timeout=240):
    """Run a driver; return its JSON result. A driver that broke fails the test."""
    env = {"SFTRACE_VIEWERS_MODULES": MODULES}
    res = os.path.join(_dir(), "result-%d.json" % os.getpid())
    if os.path.exists(res):
        os.unlink(res)
    p = tl.run(["node", os.path.join(VIEWERS_JS, script), "--result", res] + list(args),
               check=False, env=env, timeout=timeout)
    assert os.path.exists(res), "%s wrote no result (exit %d)\nstdout:\n%s\nstderr:\n%s" % (
        script, p.returncode, p.stdout[-3000:], p.stderr[-3000:])
    with open(res) as f:
        r = json.load(f)
    assert "fatal" not in r, "%s broke: %s\nstderr:\n%s" % (script, r["fatal"], p.stderr[-3000:])
    return r


# Console lines that come from Chromium itself, not from the viewer: headless
# Chromium renders WebGL with SwiftShader, whose driver reports stalls.
BROWSER_NOISE = [re.compile(r"^\[\.WebGL-0x[0-9a-f]+\]GL Driver Message")]


def _complaints(log):
    bad = []
    for m in log:
        if m["type"] in ("log", "info", "debug", "dir", "dirxml", "table", "trace", "clear",
                         "startGroup", "startGroupCollapsed", "endGroup", "profile",
                         "profileEnd", "count", "timeEnd"):
            continue
        if any(rx.search(m["text"]) for rx in BROWSER_NOISE):
            continue
        bad.append("%s: %s" % (m["type"], m["text"][:300]))
    return bad


# ---- calls, from `sftrace dump` and from speedscope's export --------------------------

class Call:
    __slots__ = ("func", "start", "end", "children", "parent")

    def __init__(self, func, start, parent):
        self.func, self.start, self.end, self.parent = func, start, None, parent
        self.children = []


def _calls_from_dump(events):
    """(pid, tid) -> list of root Calls; a tail call ends its frame; calls with
    no exit keep end None."""
    roots = collections.defaultdict(list)
    stacks = collections.defaultdict(list)
    for e in events:
        k = (e.pid, e.tid)
        st = stacks[k]
        if e.kind == "entry":
            c = Call(e.func, e.time, st[-1] if st else None)
            (st[-1].children if st else roots[k]).append(c)
            st.append(c)
        elif e.kind in ("exit", "tailcall"):
            assert st and st[-1].func == e.func, "dump does not nest at %s" % (e,)
            st.pop().end = e.time
    return roots


def _walk(calls):
    for c in calls:
        yield c
        yield from _walk(c.children)


def _select(roots, function=None, t0=None, t1=None):
    """The calls a selection keeps, clipped: -F function (a call of a matching
    function and everything inside it) and --time-range [t0, t1] (absolute ns;
    calls cut by it run from t0 / to t1). Returns new root lists, as the
    selection shows them (the outermost kept calls become roots)."""
    rx = re.compile(function) if function else None

    def clip(c, inside):
        keep = inside or (rx is None or rx.search(c.func) is not None)
        start, end = c.start, c.end
        if t0 is not None and end is not None and end <= t0:
            return []
        if t1 is not None and start >= t1:
            return []
        kids = [k for ch in c.children for k in clip(ch, keep)]
        if not keep:
            return kids
        n = Call(c.func, max(start, t0) if t0 is not None else start, None)
        n.end = min(end, t1) if (t1 is not None and (end is None or end > t1)) else end
        n.children = kids
        for k in kids:
            k.parent = n
        return [n]

    return {k: [n for c in v for n in clip(c, False)] for k, v in roots.items()}


def _stats(roots):
    """func -> [calls, total, self, unfinished, timed] for one thread's calls;
    a recursive function's total counts its outermost calls only (as `sftrace
    report` and speedscope's Sandwich view do). Unfinished calls (end None)
    make their function's and their ancestors' times unknown (None). timed:
    the calls that took time (unfinished ones included); speedscope's export
    walks its samples, so a call that began and ended in the same clock tick
    has no weight and is not in it."""
    s = {}
    for c in _walk(roots):
        st = s.setdefault(c.func, [0, 0, 0, 0, 0])
        st[0] += 1
        st[4] += c.end is None or c.end > c.start
    unknown = set()
    for c in _walk(roots):
        st = s[c.func]
        if c.end is None or any(k.end is None for k in c.children):
            st[3] += c.end is None
            p = c
            while p is not None:
                unknown.add(p.func)
                p = p.parent
            continue
        dur = c.end - c.start
        st[2] += dur - sum(k.end - k.start for k in c.children)
        p, outer = c.parent, True
        while p is not None:
            if p.func == c.func:
                outer = False
                break
            p = p.parent
        if outer:
            st[1] += dur
    for f in unknown:
        s[f][1] = s[f][2] = None
    return s


SCALE_NS = {"none": 1, "nanoseconds": 1, "microseconds": 1e3, "milliseconds": 1e6, "seconds": 1e9}


def _speedscope_calls(profile, frames):
    """One exported speedscope profile (evented, open/close events) as root
    Calls, times in ns."""
    assert profile["type"] == "evented" and profile["unit"] in SCALE_NS, \
        (profile["type"], profile["unit"])
    scale = SCALE_NS[profile["unit"]]
    roots, st = [], []
    for ev in profile["events"]:
        name = frames[ev["frame"]]["name"]
        at = ev["at"] * scale
        if ev["type"] == "O":
            c = Call(name, at, st[-1] if st else None)
            (st[-1].children if st else roots).append(c)
            st.append(c)
        else:
            assert st and st[-1].func == name, "speedscope export does not nest at %s" % ev
            st.pop().end = at
    assert not st, "speedscope export leaves %s open" % [c.func for c in st]
    return roots


PROFILE_NAME = re.compile(r"^(?P<proc>.*) \(pid (?P<pid>\d+)\), (?P<thread>.*) \(tid (?P<tid>\d+)\)$")

UNITS = {"ns": 1, "µs": 1e3, "ms": 1e6, "s": 1e9}


def _parse_shown(text):
    """'65.70µs (100%)' -> (65700.0 ns, half a unit of the last digit in ns)."""
    m = re.match(r"^([0-9.]+)(ns|µs|ms|s) \(", text)
    assert m, "unexpected value %r" % text
    digits = len(m.group(1).split(".")[1]) if "." in m.group(1) else 0
    return float(m.group(1)) * UNITS[m.group(2)], 0.5 * 10 ** -digits * UNITS[m.group(2)]


def _report(log, extra=()):
    """`sftrace report --by thread --format json` (the ASan build): (pid, tid) ->
    {func: (calls, total_ns, self_ns, unfinished)}."""
    p = tl.run([tl.SFTRACE_ASAN, "report", "--by", "thread", "--format", "json", "--limit", "0",
                "-q", log] + list(extra), check=False)
    assert p.returncode == 0, "sftrace report %s exited %d: %s %s" % (
        " ".join(extra), p.returncode, p.stderr[-2000:],
        NEEDS_ENGINE % "the call engine" if "no events" in p.stderr else "")
    assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    r = json.loads(p.stdout)
    out = {}
    for g in r["groups"]:
        out[(g["pid"], g["tid"])] = {f["name"]: (f["calls"], f["total_ns"], f["self_ns"],
                                                 f["unfinished"]) for f in g["functions"]}
    return out


def _convert(log, out, extra=()):
    p = tl.run([tl.SFTRACE_ASAN, "convert", log, "--format", "chrome", "-q", "-o", out]
               + list(extra), check=False)
    assert p.returncode == 0, "sftrace convert %s exited %d: %s" % (
        " ".join(extra), p.returncode, p.stderr[-2000:])
    assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return out


def _open_speedscope(profile, tag):
    r = _node("speedscope.mjs", ["--profile", profile, "--shots", _shots(), "--tag", tag])
    bad = _complaints(r.get("log", []))
    assert r["state"] == "loaded", "speedscope did not load %s: %s; page: %r; console: %s; " \
        "screenshot %s" % (profile, r["state"], r.get("body", ""), bad[:8], r["shots"])
    return r, bad


def _check_speedscope(log, tag, threads, funcs, extra=(), selection=None, needs="", ext=".json"):
    """Convert log (with the selection options extra), open it in speedscope and
    check it against `sftrace report` and the dump.

    threads: {(pid, tid): (process-name substring, thread name)}, exactly the
    threads speedscope must show. funcs: {(pid, tid): {func: calls}}, the
    functions each must show (at least these, with exactly these counts).
    selection: dict(function=, t0=, t1=) for the dump-side reference.
    """
    _viewers()
    out = _convert(log, os.path.join(_dir(), tag + ext), extra)
    r, bad = _open_speedscope(out, tag)
    where = "screenshots %s, export %s" % (", ".join(r["shots"][:2]), r.get("exportedPath"))
    assert not bad, "speedscope's console for %s (%d complaints) %s:\n  %s\n%s" % (
        tag, len(bad), needs, "\n  ".join(bad[:12]), where)

    exp = r["exported"]
    frames = exp["shared"]["frames"]
    shown = {}
    for i, prof in enumerate(exp["profiles"]):
        m = PROFILE_NAME.match(prof["name"])
        assert m, "profile %d is named %r, not '<process> (pid P), <thread> (tid T)' %s" % (
            i, prof["name"], needs)
        key = (int(m.group("pid")), int(m.group("tid")))
        assert key not in shown, "two profiles for %s" % (key,)
        shown[key] = (i, m.group("proc"), m.group("thread"), prof)
    assert set(shown) == set(threads), "speedscope shows threads %s, want %s %s" % (
        sorted(shown), sorted(threads), needs)
    for key, (proc, thread) in threads.items():
        _, sproc, sthread, _ = shown[key]
        assert proc in sproc and sthread == thread, \
            "thread %s is shown as process %r thread %r, want %r / %r %s" % (
                key, sproc, sthread, proc, thread, needs)
    # The switcher's list (there with two profiles or more) says the same.
    assert len(exp["profiles"]) < 2 or sorted(p["name"] for p in r["profiles"]) == sorted(
        p["name"] for p in exp["profiles"]), r["profiles"]

    events, _ = tl.dump(log)
    ref = _calls_from_dump(events)
    if selection:
        ref = _select(ref, **selection)
    rep = _report(log, extra)
    for key, (i, _, _, prof) in shown.items():
        seen = _stats(_speedscope_calls(prof, frames))
        want = _stats(ref.get(key, []))
        for f, n in funcs.get(key, {}).items():
            assert f in seen, "speedscope's profile %s has no %r; it has %s %s" % (
                prof["name"], f, sorted(seen), needs)
            assert f in want and want[f][0] == n, "the dump has %s calls of %r on %s, want %d" % (
                want.get(f, [0])[0], f, key, n)
        assert set(seen) == {f for f, s in want.items() if s[4]}, \
            "speedscope's functions on %s: %s; the dump's: %s %s" % (
                key, sorted(seen), sorted(want), needs)
        assert key in rep, "sftrace report has no thread %s (has %s)" % (key, sorted(rep))
        assert set(rep[key]) == set(want), "report's functions on %s: %s; the dump's: %s" % (
            key, sorted(rep[key]), sorted(want))
        for f, (calls, total, self_, _unf, _) in seen.items():
            rc, rt, rs, ru = rep[key][f]
            w = want[f]
            ctx = "%r on %s (%s)" % (f, key, where)
            assert rc == w[0], "report: %d calls of %s, the dump %d" % (rc, ctx, w[0])
            # speedscope pairs a B with an E of the same name and timestamp
            # before any other E (its tie-break for zero-length events), so a
            # call that starts in the very ns a call of the same function
            # ended is nested into that one as a zero-length call; calls of
            # zero length have no weight and are not exported. Times are
            # unchanged by both; the count can only be lower.
            assert 0 < calls <= w[4], "speedscope: %d calls of %s, the dump %d that took time" % (
                calls, ctx, w[4])
            # Chrome JSON has ts in µs with 3 decimals (exact ns); speedscope
            # adds them up in doubles: allow 1 ns per call.
            tol = 1.0 * calls + 1
            assert abs(total - rt) <= tol, "speedscope: total %.1f ns of %s, report %d ns" % (
                total, ctx, rt)
            assert abs(self_ - rs) <= tol, "speedscope: self %.1f ns of %s, report %d ns" % (
                self_, ctx, rs)
            if w[1] is not None:
                assert abs(w[1] - total) <= tol and abs(w[2] - self_) <= tol, \
                    "dump: total %d self %d of %s; speedscope %.1f / %.1f" % (
                        w[1], w[2], ctx, total, self_)
        # The Sandwich table, as a user reads it: the same totals, rounded.
        rows = {row["name"]: row for row in r["sandwich"][i]}
        assert set(rows) == set(seen) or len(rows) >= 30, \
            "Sandwich view of %s lists %s, want %s" % (prof["name"], sorted(rows), sorted(seen))
        for f, row in rows.items():
            for col, val in (("total", seen[f][1]), ("self", seen[f][2])):
                v, half = _parse_shown(row[col])
                assert abs(v - val) <= half + 1, "Sandwich %s of %r on %s shows %r, want %.0f ns" % (
                    col, f, key, row[col], val)
    return r, shown


def _ids(stdout):
    out = {}
    for line in stdout.splitlines():
        f = line.split()
        if len(f) >= 2 and f[-1].lstrip("-").isdigit():
            out[" ".join(f[:-1])] = int(f[-1])
    return out


def _mt():
    prog = tl.build_c("view_mt.c", flags=["-pthread"] + tl.WARN_CFLAGS)
    log = os.path.join(_dir(), "mt.log")
    p = tl.record([prog], log)
    ids = _ids(p.stdout)
    pid = ids["pid"]
    a, b, m = (pid, ids["tid fib-a"]), (pid, ids["tid fib-b"]), (pid, ids["main_tid"])
    return log, pid, a, b, m


FIB_CALLS = {11: 287, 9: 109}  # fib(n) makes 2 * F(n+1) - 1 calls


def test_speedscope_threads_recursion_tailcalls():
    """view_mt.c in speedscope: three threads, recursion, tail calls."""
    _viewers()
    log, pid, a, b, m = _mt()
    _check_speedscope(
        log, "mt",
        threads={m: ("view_mt", "view_mt"), a: ("view_mt", "fib-a"), b: ("view_mt", "fib-b")},
        funcs={a: {"fib": FIB_CALLS[11], "run": 1}, b: {"fib": FIB_CALLS[9], "run": 1},
               m: {"main": 1, "is_even": 5 * 4, "is_odd": 5 * 4, "top": 5, "mid": 5, "leaf": 5}},
        needs=NEEDS_ENGINE % "end events named like their begin")


def test_speedscope_demo():
    """The bundled demo (examples/demo.c), which made speedscope 1.25 overflow
    its stack, converted to convert's default sf.json.gz."""
    _viewers()
    prog = tl.build_c(os.path.join(tl.ROOT, "examples", "demo.c"), flags=["-pthread"])
    log = os.path.join(_dir(), "demo.log")
    tl.record([prog], log)
    events, _ = tl.dump(log)
    threads = {}
    names = {}
    _, chunks = tl.read_log(log)
    for c in chunks:
        if c["type"] == tl.CHUNK_THREAD and c["name"]:
            names[(c["pid"], c["tid"])] = c["name"]
    for e in events:
        threads[(e.pid, e.tid)] = ("demo", names.get((e.pid, e.tid), "demo"))
    funcs = {}
    for k in threads:
        funcs[k] = dict(tl.counts(events, pid=k[0], tid=k[1]))
    # convert's default for Chrome JSON is gzipped (sf.json.gz): speedscope
    # inflates it itself.
    _check_speedscope(log, "demo", threads, funcs, ext=".json.gz",
                      needs=NEEDS_ENGINE % "end events named like their begin")


def test_speedscope_cpp_templates():
    """view_cpp.cc in speedscope: demangled template, operator and lambda names."""
    _viewers()
    prog = tl.build_c("view_cpp.cc", compiler="clang++", flags=tl.WARN_CFLAGS)
    log = os.path.join(_dir(), "cpp.log")
    p = tl.record([prog], log)
    events, _ = tl.dump(log)
    pid = {e.pid for e in events}.pop()
    k = (pid, pid)
    _check_speedscope(log, "cpp", threads={k: ("view_cpp", "view_cpp")}, funcs={k: {
        "main": 1,
        "int shapes::total<int, 3>(int)": 3,
        "double shapes::total<double, 2>(double)": 2,
        "shapes::Poly<int>::area() const": 9,
        "shapes::Poly<double>::area() const": 4,
        "shapes::Poly<int>::operator+=(shapes::Poly<int> const&)": 3,
        "shapes::Poly<double>::operator+=(shapes::Poly<double> const&)": 2,
        "main::$_0::operator()(long) const": 4,
    }}, needs=NEEDS_ENGINE % "end events named like their begin")
    assert p.stdout.startswith("sink")


def test_speedscope_rust_v0():
    """view_rust.rs (v0 mangling) in speedscope: demangled generic and trait names."""
    if not tl.have("rustc"):
        raise tl.Skip("rustc not found")
    _viewers()
    src = os.path.join(tl.PROGS, "view_rust.rs")
    out = os.path.join(tl.outdir("bin"), "view_rust")
    if tl._stale(out, [src]):
        tl.run(["rustc", "-O", "-g", "-Zinstrument-xray=always", "-C",
                "symbol-mangling-version=v0", src, "-o", out], env={"RUSTC_BOOTSTRAP": "1"})
    log = os.path.join(_dir(), "rust.log")
    tl.record([out], log)
    events, _ = tl.dump(log)
    tids = {(e.pid, e.tid) for e in events}
    assert len(tids) == 1, tids
    k = tids.pop()
    _check_speedscope(log, "rust", threads={k: ("view_rust", "view_rust")}, funcs={k: {
        "view_rust::main": 1,
        "<view_rust::engine::Gear<u64>>::doubled": 3,
        "<view_rust::engine::Gear<f64>>::doubled": 2,
        "<view_rust::engine::Gear<u64> as view_rust::engine::Spin>::spin": 4,
        "view_rust::engine::crank": 4,
        "view_rust::engine::depth": 6,
    }}, needs=NEEDS_ENGINE % "end events named like their begin")


def test_speedscope_unfinished():
    """view_unfinished.c: a thread still inside two calls at exit; speedscope
    shows them ending where the trace ends, with no complaint."""
    _viewers()
    prog = tl.build_c("view_unfinished.c", flags=["-pthread"] + tl.WARN_CFLAGS)
    log = os.path.join(_dir(), "unfinished.log")
    p = tl.record([prog], log)
    ids = _ids(p.stdout)
    pid, m, s = ids["pid"], (ids["pid"], ids["main_tid"]), (ids["pid"], ids["stuck_tid"])
    r, shown = _check_speedscope(
        log, "unfinished",
        threads={m: ("view_unfinished", "view_unfinished"), s: ("view_unfinished", "stuck")},
        funcs={m: {"main": 1, "main_step": 3},
               s: {"stuck": 1, "stuck_outer": 1, "stuck_step": 4, "stuck_wait": 1}},
        needs=NEEDS_ENGINE % "end events of unfinished calls")
    rep = _report(log)
    assert rep[s]["stuck_wait"][3] == 1 and rep[s]["stuck_outer"][3] == 1, rep[s]


def test_speedscope_time_range():
    """view_mt.c converted with --time-range inside fib-a's recursion (calls
    cut at both ends, main and run spanning the whole range): speedscope
    shows the cut calls from the range's start to its end, every thread that
    was inside a call, with the totals report gives for the same range."""
    _viewers()
    log, pid, a, b, m = _mt()
    events, _ = tl.dump(log)
    first = min(e.time for e in events)
    # The range's ends halfway between two events of fib-a, so no call
    # starts or ends on them.
    ta = sorted({e.time for e in events if (e.pid, e.tid) == a and e.func == "fib"})
    assert len(ta) > 40, len(ta)
    gaps = [(t0, t1) for t0, t1 in zip(ta, ta[1:]) if t1 - t0 >= 2]
    s0 = gaps[len(gaps) // 4]
    s1 = gaps[3 * len(gaps) // 4]
    t0, t1 = (s0[0] + s0[1]) // 2, (s1[0] + s1[1]) // 2
    rng = "%d,%d" % (t0 - first, t1 - first)
    sel = _select(_calls_from_dump(events), t0=t0, t1=t1)
    kept = {k for k, v in sel.items() if v}
    assert a in kept and m in kept, "the range keeps %s" % kept
    # What the range cuts, as report sees it: main and run were entered
    # before it and left after it, with no event of theirs inside; they are
    # still cut calls, shown from the start to the end of the range.
    rep = _report(log, ["--time-range", rng])
    for k, f in ((m, "main"), (a, "run")):
        assert f in rep.get(k, {}), \
            "report --time-range %s has no %s on %s (entered before the range, left after " \
            "it: a call the range cuts, to be shown from its start to its end); it shows %s" % (
                rng, f, k, {t: sorted(v) for t, v in rep.items()})
    names = {m: "view_mt", a: "fib-a", b: "fib-b"}
    _check_speedscope(log, "range", threads={k: ("view_mt", names[k]) for k in kept},
                      funcs={a: {"run": 1}, m: {"main": 1}}, extra=["--time-range", rng],
                      selection=dict(t0=t0, t1=t1),
                      needs=NEEDS_ENGINE % "--time-range")


def test_speedscope_function_filter():
    """view_mt.c converted with -F '^fib$': only the fib threads, only fib,
    every call of it, with the totals report gives for the same -F."""
    _viewers()
    log, pid, a, b, m = _mt()
    _check_speedscope(log, "only-fib", threads={a: ("view_mt", "fib-a"), b: ("view_mt", "fib-b")},
                      funcs={a: {"fib": FIB_CALLS[11]}, b: {"fib": FIB_CALLS[9]}},
                      extra=["-F", "^fib$"], selection=dict(function="^fib$"),
                      needs=NEEDS_ENGINE % "-F")


# ---- the flame graph SVG, and folded stacks in speedscope -------------------------------

def _flame(log, out, extra=()):
    p = tl.run([tl.SFTRACE_ASAN, "flame", "-q", log, "-o", out] + list(extra), check=False)
    assert p.returncode == 0, "sftrace flame %s exited %d: %s %s" % (
        " ".join(extra), p.returncode, p.stderr[-2000:], NEEDS_ANALYSIS % "sftrace flame")
    assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return out


def test_flame_svg_zoom_and_search():
    """view_mt.c's flame graph (its fib threads) in Chromium: a click on fib
    (the widest fib frame narrower than 0.6 of the width: how wide the outermost
    fib is depends on how long the threads' pthread_setname_np took, and it
    was once over 0.8 of the width) zooms it to the full width (callees
    scaled, callers kept, the rest
    hidden), Reset zoom undoes it, and searching ^fib$ highlights every fib
    frame and shows fib's share of the time, as computed from the dump."""
    _viewers()
    log, pid, a, b, m = _mt()
    # Only the fib threads: main's time (it waits for them, as long as the
    # machine makes it) would leave fib under a pixel.
    svg = _flame(log, os.path.join(_dir(), "mt.svg"), ["--thread-name", "^fib-"])
    r = _node("flamesvg.mjs", ["--svg", svg, "--shots", _shots(), "--tag", "flame-mt",
                               "--click", "fib", "--click-under", "0.6", "--search", "^fib$"])
    where = "screenshots %s" % ", ".join(r["shots"])
    bad = _complaints(r["log"])
    assert not bad, "the SVG's console: %s (%s)" % (bad, where)
    assert r["contentType"] == "image/svg+xml", r["contentType"]
    before, zoomed, unzoomed = r["before"], r["zoomed"], r["unzoomed"]
    root = before[0]
    assert root["parent"] == -1 and all(f["parent"] >= 0 for f in before[1:]), before[:3]
    full_x, full_w = root["x"], root["w"]
    assert full_w > 0.9 * r["width"], (full_w, r["width"])

    # The click: the clicked frame spans the full width, its subtree is scaled
    # by the same factor and moved with it, its callers span the full width,
    # everything else is hidden.
    i = r["clicked"]
    z = before[i]
    assert 2 < z["w"] < 0.8 * full_w, "fib should be a part of the width before the click: %s" % z
    scale = full_w / z["w"]
    sub = set()
    for f in before:
        if f["i"] == i or f["parent"] in sub:
            sub.add(f["i"])
    anc = set()
    p = z["parent"]
    while p >= 0:
        anc.add(p)
        p = before[p]["parent"]
    tol = 0.15  # x and width are written with one decimal
    for f0, f1 in zip(before, zoomed):
        if f0["i"] in sub:
            assert f1["shown"], "frame %s of the zoomed subtree is hidden (%s)" % (f0, where)
            # the SVG keeps one decimal of the unzoomed geometry: scale its error too
            assert abs(f1["w"] - f0["w"] * scale) <= tol * scale + 0.1, \
                "frame %s: width %.1f after zooming by %.2f, want %.1f (%s)" % (
                    f0["name"], f1["w"], scale, f0["w"] * scale, where)
            assert abs(f1["x"] - (full_x + (f0["x"] - z["x"]) * scale)) <= tol * scale + 0.1, \
                (f0, f1, where)
        elif f0["i"] in anc:
            assert f1["shown"] and abs(f1["w"] - full_w) <= tol and abs(f1["x"] - full_x) <= tol, \
                "caller %s after the zoom: %s (%s)" % (f0["name"], f1, where)
        else:
            assert not f1["shown"], "frame %s outside the zoomed one is still shown (%s)" % (
                f0, where)
    zf = zoomed[i]
    assert abs(zf["x"] - full_x) <= tol and abs(zf["w"] - full_w) <= tol, \
        "the clicked frame spans x %.1f width %.1f, want %.1f / %.1f (%s)" % (
            zf["x"], zf["w"], full_x, full_w, where)
    assert zf["label"] == "fib", "the zoomed frame's label is %r" % zf["label"]
    assert r["unzoomOpacity"] == "1", "Reset zoom is not shown after a zoom: %r" % r["unzoomOpacity"]
    for f0, f1 in zip(before, unzoomed):
        assert f1["shown"] and abs(f1["x"] - f0["x"]) < 0.05 and abs(f1["w"] - f0["w"]) < 0.05, \
            "Reset zoom left %s at %s" % (f0, f1)

    # The search: every fib frame highlighted, none else; the share of fib's
    # time (outermost calls, every thread) in all the time.
    hl = [f for f in r["searched"] if f["fill"] != before[f["i"]]["fill"]]
    want_hl = [f for f in before if f["name"] == "fib"]
    assert sorted(f["i"] for f in hl) == sorted(f["i"] for f in want_hl), \
        "highlighted %s, want the fib frames %s (%s)" % (
            [(f["i"], f["name"]) for f in hl], [f["i"] for f in want_hl], where)
    mt = re.match(r"^Matched: ([0-9.]+)% \((\d+) frames?\)$", r["matched"])
    assert mt, "the search shows %r (%s)" % (r["matched"], where)
    assert int(mt.group(2)) == len(want_hl), (r["matched"], len(want_hl))
    events, _ = tl.dump(log)
    roots = {k: v for k, v in _calls_from_dump(events).items() if k in (a, b)}
    all_ns = sum(c.end - c.start for rs in roots.values() for c in rs)
    fib_ns = sum(_stats(rs).get("fib", [0, 0])[1] for rs in roots.values())
    share = 100.0 * fib_ns / all_ns
    # Rounding: one decimal shown; x and width with one decimal each; and
    # frames narrower than a pixel are merged into "[N small frames]".
    small = sum(f["w"] for f in before if f["name"].startswith("["))
    slack = 0.05 + 100.0 * (0.1 * len(want_hl) + small) / full_w
    assert abs(float(mt.group(1)) - share) <= slack, \
        "the search shows %s%%, fib's share of the time is %.2f%% (+-%.2f) (%s)" % (
            mt.group(1), share, slack, where)


def test_speedscope_folded_stacks():
    """`sftrace flame --format folded` of view_mt.c opened in speedscope: one
    profile, the functions of the log, and each function's total and self
    weight (ns) equal to `sftrace report` over all threads."""
    _viewers()
    log, pid, a, b, m = _mt()
    folded = _flame(log, os.path.join(_dir(), "mt.folded"), ["--format", "folded"])
    r, bad = _open_speedscope(folded, "folded")
    assert not bad, "speedscope's console for the folded stacks: %s (%s)" % (bad, r["shots"])
    exp = r["exported"]
    assert len(exp["profiles"]) == 1, [p["name"] for p in exp["profiles"]]
    prof = exp["profiles"][0]
    seen = _stats(_speedscope_calls(prof, exp["shared"]["frames"]))
    p = tl.run([tl.SFTRACE_ASAN, "report", "--format", "json", "--limit", "0", log], check=False)
    assert p.returncode == 0, p.stderr
    rep = {f["name"]: f for f in json.loads(p.stdout)["groups"][0]["functions"]}
    assert set(seen) == set(rep), "speedscope shows %s; report %s" % (sorted(seen), sorted(rep))
    for f, (_calls, total, self_, _u, _t) in seen.items():
        # Folded stacks merge threads and calls: a stack's weight is exact
        # ns, so only the sum of doubles rounds.
        assert abs(total - rep[f]["total_ns"]) <= 1 and abs(self_ - rep[f]["self_ns"]) <= 1, \
            "%r: speedscope total %.0f self %.0f, report %d / %d (%s)" % (
                f, total, self_, rep[f]["total_ns"], rep[f]["self_ns"], r["shots"])
