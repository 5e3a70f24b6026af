"""t_live.py - live recording control: `record --paused` / `--control`,
SIGUSR1 and `sftrace ctl PID start|stop`, the MARK chunks they write, and
how the tools show calls that were open when recording stopped or started.

The program (programs/live_windows.c) is driven line by line on a pipe and
answers each command after the calls it made have returned, so the test
knows exactly which calls fell into which recording window; `sftrace ctl`
returns only once the process has marked the change in its log. No timing
is asserted anywhere.
"""
import collections
import json
import os
import signal
import struct
import subprocess
import time

import tl

CHUNK_MARK = 6
MARK_STOP, MARK_START = 1, 2


def _exe():
    return tl.build_c("live_windows.c", flags=["-pthread"])


def _dir():
    return tl.outdir("live")


class Prog:
    """The program under `sftrace record OPTS`, spoken to line by line."""

    def __init__(self, log, opts=("--paused",), env=None):
        if os.path.exists(log):
            os.unlink(log)
        self.log = log
        self.p = subprocess.Popen([tl.SFTRACE, "record", "-o", log] + list(opts) + ["--", _exe()],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1,
                                  env=dict(os.environ, **(env or {})))
        self.pid = int(self.cmd("pid").split()[1])

    def cmd(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        ans = self.p.stdout.readline().strip()
        assert ans, "no answer to %r; stderr:\n%s" % (line, self.p.stderr.read()[-3000:])
        return ans

    def ctl(self, what, check=True):
        r = tl.run([tl.SFTRACE_ASAN, "ctl", str(self.pid), what], check=False)
        if check:
            assert r.returncode == 0, "ctl %s exited %d: %s%s" % (what, r.returncode, r.stdout,
                                                                 r.stderr)
            assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
        return r

    def quit(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        rc = self.p.wait(timeout=120)
        err = self.p.stderr.read()
        assert rc == 0, "record exited %d:\n%s" % (rc, err)
        return err


def _marks(log):
    """[(kind, why, seq)] of the log's MARK chunks, in file order."""
    _, chunks = tl.read_log(log)
    with open(log, "rb") as f:
        data = f.read()
    out = []
    for c in chunks:
        if c["type"] == CHUNK_MARK:
            kind, why, _tsc, _mono, _arg, seq = struct.unpack_from("<IIQQII", data, c["off"] + 16)
            out.append((kind, why, seq))
    return out


def _calls(log, sftrace=None, opts=()):
    """`dump --calls`: [(function, depth, flags, start, duration)] in the order printed."""
    p = tl.run([sftrace or tl.SFTRACE_ASAN, "dump", "--calls"] + list(opts) + [log])
    assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    out = []
    for line in p.stdout.splitlines():
        if not line or line.startswith("#"):
            continue
        f = line.split("\t")
        out.append((f[9], int(f[3]), f[8], int(f[0]), int(f[4])))
    return out


def _convert_check(log):
    out = log + ".pb"
    p = tl.run([tl.SFTRACE_ASAN, "convert", log, "-o", out], check=False)
    assert p.returncode == 0, p.stderr
    assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    c = tl.run(["python3", tl.PERFETTO_CHECK, "--strict", "--json", out], check=False)
    res = json.loads(c.stdout)
    assert c.returncode == 0 and res["errors"] == 0 and res["warnings"] == 0, \
        json.dumps(res["violations"], indent=1)
    return p.stderr


def test_paused_ctl_and_sigusr1_windows():
    """Counts match the windows exactly: --paused records nothing until
    `ctl start`; `ctl stop` and a plain SIGUSR1 (toggle) end and begin
    windows. A call open at a stop comes out cut there (flag c), not
    unfinished; a call open at a start whose exit is recorded begins at the
    start, cut there (flag c), with its callees under it. main, open across
    all of window 1 (no event of it there), is only known in window 2,
    where it returns."""
    log = os.path.join(_dir(), "windows.log")
    p = Prog(log)
    assert p.cmd("run 3") == "ran 3"          # paused: not recorded
    assert "recording started" in p.ctl("start").stdout
    assert p.cmd("run 5") == "ran 5"          # window 1
    assert p.cmd("hold") == "held"            # held() open ...
    assert "recording stopped" in p.ctl("stop").stdout
    assert p.cmd("release") == "released"     # ... its work(1), work(2) not recorded
    assert p.cmd("run 7") == "ran 7"          # stopped
    assert p.cmd("hold") == "held"            # held() entered while stopped ...
    os.kill(p.pid, signal.SIGUSR1)            # toggle: start
    # the toggle is asynchronous: a ctl start after it is a no-op once it has
    # happened, and waits for it if not
    assert p.ctl("start").returncode == 0
    assert p.cmd("release") == "released"     # ... work(1), work(2) recorded
    assert p.cmd("run 11") == "ran 11"        # window 2
    p.quit()
    calls = _calls(log)
    names = collections.Counter(c[0] for c in calls)
    assert names == {"outer": 2, "work": 5 + 2 + 11, "held": 2, "main": 1}, names
    # window 1: outer and its 5 works, held (cut at the stop; its works come
    # after it). Window 2: main and held were open at the start: main at
    # depth 0, held under it with its 2 works, then outer and its 11 works.
    by = collections.Counter((c[0], c[1], c[2]) for c in calls)
    assert by == {("outer", 0, "-"): 1, ("work", 1, "-"): 5, ("held", 0, "c"): 1,
                  ("main", 0, "c"): 1, ("held", 1, "c"): 1, ("work", 2, "-"): 2 + 11,
                  ("outer", 1, "-"): 1}, by
    assert not any("u" in c[2] for c in calls), calls
    # the calls open at the start of window 2 begin there, together
    main = next(c for c in calls if c[0] == "main")
    held2 = next(c for c in calls if c[0] == "held" and c[1] == 1)
    assert main[3] == held2[3], (main, held2)
    st = json.loads(tl.run([tl.SFTRACE_ASAN, "report", "--format", "json", log]).stdout)
    assert st["unmatched"] == 0 and st["unfinished"] == 0, st
    kinds = [m[0] for m in _marks(log)]
    assert kinds == [MARK_STOP, MARK_START, MARK_STOP, MARK_START], kinds
    info = json.loads(tl.run([tl.SFTRACE_ASAN, "info", "--format", "json", log]).stdout)
    assert [(m["kind"], m["why"], m["seq"], m["pid"]) for m in info["marks"]] == [
        ("stop", "started paused", 1, p.pid), ("start", "sftrace ctl", 2, p.pid),
        ("stop", "sftrace ctl", 3, p.pid), ("start", "SIGUSR1", 4, p.pid)], info["marks"]
    text = tl.run([tl.SFTRACE_ASAN, "info", log]).stdout
    assert "recording started and stopped (4)" in text, text
    err = _convert_check(log)
    assert "unfinished" not in err and "without" not in err, err


def test_paused_sleds_are_unpatched():
    """Stopped means no cost: work()'s entry sled is XRay's jump (eb 09)
    while paused and again after a stop, and the runtime's mov (41 ba)
    while recording. Nothing is recorded by a run that is never started."""
    log = os.path.join(_dir(), "sleds.log")
    p = Prog(log)
    assert p.cmd("sled") == "sled eb09"
    p.ctl("start")
    assert p.cmd("sled") == "sled 41ba"
    p.ctl("stop")
    assert p.cmd("sled") == "sled eb09"
    p.cmd("run 100")
    p.quit()
    assert _calls(log) == []
    # --control: recording from the start, sleds patched, stop works
    log2 = os.path.join(_dir(), "control.log")
    p = Prog(log2, opts=("--control",))
    assert p.cmd("sled") == "sled 41ba"
    p.cmd("run 2")
    p.ctl("stop")
    assert p.cmd("sled") == "sled eb09"
    p.cmd("run 9")
    p.quit()
    names = collections.Counter(c[0] for c in _calls(log2))
    # main is open at the stop: cut there
    assert names == {"outer": 1, "work": 2, "main": 1}, names


def test_toggle_with_threads_running():
    """A thread calls spin_a -> spin_b in a tight loop while recording is
    started and stopped 10 times: the program runs on, every recorded
    spin_b lies in a spin_a, nothing is unfinished, and the trace is valid."""
    log = os.path.join(_dir(), "spin.log")
    p = Prog(log)
    assert p.cmd("spin") == "spinning"
    for _ in range(5):
        p.ctl("start")
        p.ctl("stop")
    for _ in range(5):  # plain signals too, each waited for by ctl
        os.kill(p.pid, signal.SIGUSR1)
        p.ctl("start")
        os.kill(p.pid, signal.SIGUSR1)
        p.ctl("stop")
    spun = int(p.cmd("unspin").split()[1])
    p.quit()
    calls = _calls(log)
    c = collections.Counter((n, d) for n, d, _f, _s, _du in calls)
    assert set(c) <= {("spin_a", 0), ("spin_b", 1), ("spin_b", 0)}, c
    assert c[("spin_b", 1)] > 0, c
    assert 0 < c[("spin_a", 0)] <= spun, (c, spun)
    # spin_b at depth 0: its spin_a was entered before a start (at most one a window)
    assert c[("spin_b", 0)] <= 10, c
    assert not any("u" in f for _n, _d, f, _s, _du in calls)
    assert len(_marks(log)) == 1 + 2 * 10
    _convert_check(log)


def test_ctl_errors():
    """Clear errors, non-zero exits: no such process, a process without
    the runtime, one recording without control, bad usage."""
    r = tl.run([tl.SFTRACE, "ctl", "12ab", "start"], check=False)
    assert r.returncode == 2  # not a pid
    r = tl.run([tl.SFTRACE, "ctl", "4194303", "start"], check=False)
    assert r.returncode == 1 and "no process 4194303" in r.stderr, r.stderr
    r = tl.run([tl.SFTRACE, "ctl", str(os.getpid()), "start"], check=False)
    assert r.returncode == 1 and "not being recorded by sftrace" in r.stderr, r.stderr
    r = tl.run([tl.SFTRACE, "ctl", "1", "go"], check=False)
    assert r.returncode == 2 and "usage" in r.stderr
    log = os.path.join(_dir(), "nocontrol.log")
    p = Prog(log, opts=())
    r = p.ctl("stop", check=False)
    assert r.returncode == 1 and "without control" in r.stderr, r.stderr
    assert p.cmd("run 1") == "ran 1"  # still alive: no signal was sent
    p.quit()


def test_bad_mark_chunk_is_skipped():
    """A MARK of a kind the reader does not know is skipped quietly (here the
    paused start's STOP: without it the window that follows reads as it
    would anyway); a MARK too short for its type, or a snapshot mark numbered
    0, is damage: reported with its offset and field, skipped, everything
    else read, exit 3."""
    log = os.path.join(_dir(), "badmark.log")
    p = Prog(log)
    p.ctl("start")
    p.cmd("run 4")
    p.quit()
    _, chunks = tl.read_log(log)
    marks = [c for c in chunks if c["type"] == CHUNK_MARK]
    assert len(marks) == 2
    with open(log, "rb") as f:
        data = bytearray(f.read())
    struct.pack_into("<I", data, marks[0]["off"] + 16, 77)
    bad = os.path.join(_dir(), "badmark2.log")
    with open(bad, "wb") as f:
        f.write(data)
    r = tl.run([tl.SFTRACE_ASAN, "dump", "--calls", bad], check=False)
    # a kind this reader does not know (a newer minor version's): skipped quietly
    assert r.returncode == 0 and r.stderr == "", (r.returncode, r.stderr)
    names = collections.Counter(line.split("\t")[9] for line in r.stdout.splitlines()
                                if line and not line.startswith("#"))
    assert names["work"] == 4 and names["outer"] == 1, names
    # a MARK too short for its type, and a snapshot mark numbered 0
    for patch, want in ((lambda d, o: struct.pack_into("<I", d, o + 8, 24),
                         "MARK chunk size 24 is smaller than its header, 48 bytes (size)"),
                        (lambda d, o: struct.pack_into("<II", d, o + 16, 3, 0) or
                         struct.pack_into("<I", d, o + 44, 0), "snapshot number 0 (seq)")):
        d2 = bytearray(data)
        struct.pack_into("<I", d2, marks[0]["off"] + 16, 1)  # undo the bad kind
        patch(d2, marks[0]["off"])
        with open(bad, "wb") as f:
            f.write(d2)
        r = tl.run([tl.SFTRACE_ASAN, "dump", "--calls", bad], check=False)
        assert r.returncode == 3 and want in r.stderr, (want, r.returncode, r.stderr)
        assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr
        names = collections.Counter(line.split("\t")[9] for line in r.stdout.splitlines()
                                    if line and not line.startswith("#"))
        assert names["work"] == 4, (want, names)


def _trigger_filter(name, opts):
    f = os.path.join(_dir(), name)
    tl.run([tl.SFTRACE_ASAN, "filter", "-p", _exe(), "-o", f] + list(opts))
    return f


def test_trace_on_off_triggers():
    """`trace-on outer` / `trace-off held` lines (sftrace filter --trace-on
    / --trace-off): recording starts at outer's entry (outer recorded),
    stops as held returns (held recorded), starts again at the next outer;
    nothing before the first outer; work() calls outside the windows are not
    recorded; every call is whole but main, which was open at the second
    start and returns in that window (it begins at the start, flag c).
    SIGUSR1 stays the program's."""
    f = _trigger_filter("trig.filter", ["--trace-on", "^outer$", "--trace-off", "^held$"])
    with open(f) as fh:
        lines = fh.read().splitlines()
    assert [l.split()[0] for l in lines[4:]] == ["trace-on", "trace-off"], lines
    assert lines[4].endswith(" outer") and lines[5].endswith(" held"), lines
    log = os.path.join(_dir(), "trig.log")
    p = Prog(log, opts=("-f", f))
    p.cmd("hold")                   # before any outer: not recorded
    p.cmd("release")
    assert p.cmd("run 3") == "ran 3"  # starts at outer: outer, 3 work
    p.cmd("hold")                   # recorded; stops as held returns
    p.cmd("release")
    p.cmd("hold")                   # stopped: not recorded
    p.cmd("release")
    assert p.cmd("run 4") == "ran 4"  # starts again: outer, 4 work
    p.quit()
    calls = _calls(log)
    by = collections.Counter((c[0], c[1], c[2]) for c in calls)
    assert by == {("outer", 0, "-"): 1, ("work", 1, "-"): 3 + 2, ("held", 0, "-"): 1,
                  ("main", 0, "c"): 1, ("outer", 1, "-"): 1, ("work", 2, "-"): 4}, by
    assert [m[0] for m in _marks(log)] == [MARK_STOP, MARK_START, MARK_STOP, MARK_START]
    info = json.loads(tl.run([tl.SFTRACE_ASAN, "info", "--format", "json", log]).stdout)
    assert [m["why"] for m in info["marks"]] == ["started paused", "trigger", "trigger",
                                                 "trigger"], info["marks"]
    _convert_check(log)
    # SIGUSR1 is not taken for triggers: ctl refuses, the signal stays the program's
    p = Prog(log, opts=("-f", f))
    r = p.ctl("start", check=False)
    assert r.returncode == 1 and "without control" in r.stderr, r.stderr
    p.quit()


def test_trace_on_with_selection():
    """With a selection (-r work) and a trace-on line for a function the
    selection does not trace (held): held starts recording but is not
    recorded itself; only the selected work() calls after it are."""
    f = _trigger_filter("trigsel.filter", ["-r", "^work$", "--trace-on", "^held$"])
    log = os.path.join(_dir(), "trigsel.log")
    p = Prog(log, opts=("-f", f))
    p.cmd("run 5")                 # before held: nothing
    p.cmd("hold")                  # starts; its work(1), work(2) recorded
    p.cmd("release")
    p.cmd("run 6")
    p.quit()
    names = collections.Counter((c[0], c[1], c[2]) for c in _calls(log))
    assert names == {("work", 0, "-"): 2 + 6}, names


def test_bad_trigger_line():
    """A malformed trigger line is refused with the file and line: by record
    -f before the program starts (exit 2); in SFTRACE_FILTER by the runtime,
    and the program then runs untraced."""
    f = os.path.join(_dir(), "badtrig.filter")
    good = _trigger_filter("good.filter", ["--trace-on", "^outer$"])
    with open(good) as fh:
        text = fh.read()
    with open(f, "w") as fh:
        fh.write(text + "trace-off 12 nothex\n")
    log = os.path.join(_dir(), "badtrig.log")
    why = ("line 6: expected 'trace-on|trace-off|snapshot-on 0xADDR NAME' or "
           "'snapshot-slower 0xADDR NS NAME'")
    r = tl.record([_exe()], log, extra=["-f", f], check=False)
    assert r.returncode == 2 and r.stderr == "sftrace record: filter %s: %s\n" % (f, why), \
        (r.returncode, r.stderr)
    assert r.stdout == "" and not os.path.exists(log)
    p = Prog(log, opts=(), env={"SFTRACE_FILTER": f})
    p.cmd("run 2")
    err = p.quit()
    assert why in err, err
    assert _calls(log) == []


# ---- the flight recorder (record --ring) ------------------------------------------------


def _info(log):
    return json.loads(tl.run([tl.SFTRACE_ASAN, "info", "--format", "json", log]).stdout)


def _events(log, opts=()):
    """`dump [opts]` events: [(time, tid, kind, function, extra)]."""
    p = tl.run([tl.SFTRACE_ASAN, "dump"] + list(opts) + [log])
    assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return [(e.time, e.tid, e.kind, e.func, e.extra) for e in tl.parse_dump(p.stdout)]


def _snap_calls(log, n):
    return _calls_opts(log, ["--snapshot", str(n)] if n else [])


def _calls_opts(log, opts):
    p = tl.run([tl.SFTRACE_ASAN, "dump", "--calls"] + list(opts) + [log])
    assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    out = []
    for line in p.stdout.splitlines():
        if line and not line.startswith("#"):
            f = line.split("\t")
            out.append((f[9], int(f[3]), f[8], int(f[2])))
    return out


def test_ring_keeps_exactly_the_last_events():
    """A 1 MiB ring and 300,000 calls of work(i) (arguments recorded), then
    7 more under a second outer(): the snapshot `sftrace snapshot` takes
    holds exactly a suffix of the first run, i = 300000-K .. 299999 with no
    gap, then the whole second run; K is as many as the ring has room for,
    and what the snapshot holds is at most the ring and the current buffer.
    The snapshot at exit holds the same (nothing ran since); the tools read
    the last snapshot unless --snapshot N says otherwise."""
    f = os.path.join(_dir(), "ringargs.filter")
    tl.run([tl.SFTRACE, "filter", "-p", _exe(), "-r", "^(work|outer)$", "--args", "^work$",
            "-o", f])
    log = os.path.join(_dir(), "ring.log")
    p = Prog(log, opts=("--ring", "1M", "-f", f))
    assert p.cmd("run 300000") == "ran 300000"
    assert p.cmd("run 7") == "ran 7"
    r = tl.run([tl.SFTRACE_ASAN, "snapshot", str(p.pid)])
    assert "snapshot 1 written" in r.stdout, r.stdout
    p.quit()
    info = _info(log)
    snaps = [(s["snapshot"], s["why"], s["complete"]) for s in info["snapshots"]]
    assert snaps == [(1, "sftrace ctl", True), (2, "end of the image", True)], snaps
    starts = [m for m in info["marks"] if m["kind"] == "start"]
    assert [m["why"] for m in starts] == ["ring's oldest complete moment"] * 2, info["marks"]
    for s in info["snapshots"]:
        # the ring and, on top, the one thread's current buffer (packed)
        assert (1 << 19) < s["bytes"] <= (1 << 20) + (1 << 17), s
    for n in (1, 2, 0):
        ev = _events(log, ["--snapshot", str(n)] if n else [])
        args = [int(e[4][0], 16) for e in ev if e[2] == "args"]
        k = len(args) - 7
        assert 1000 < k < 300000, k
        assert args == list(range(300000 - k, 300000)) + list(range(7)), (n, args[:3], args[-10:])
        calls = collections.Counter((c[0], c[1], c[2]) for c in _snap_calls(log, n))
        # the first outer's entry is older than the ring: the snapshot's
        # START (where the ring's history is whole) shows it begun there,
        # clipped, its works under it; a work open there (its entry in the
        # dropped chunk, if the chunk ended inside one) clipped too
        clip = calls.pop(("work", 1, "c"), 0)
        assert clip in (0, 1), calls
        assert calls == {("outer", 0, "c"): 1, ("work", 1, "-"): k + 7,
                         ("outer", 0, "-"): 1}, calls
        # report (worker threads, lib/runcalls.c) reads the same snapshot
        rep = json.loads(tl.run([tl.SFTRACE_ASAN, "report", "--format", "json", "-j", "2"] +
                                (["--snapshot", str(n)] if n else []) + [log]).stdout)
        funcs = {f["name"]: f["calls"] for f in rep["groups"][0]["functions"]}
        assert funcs == {"work": k + 7 + clip, "outer": 2} and rep["unmatched"] == 0, (funcs, rep)
    r = tl.run([tl.SFTRACE_ASAN, "dump", "--snapshot", "3", log], check=False)
    assert r.returncode != 0 and "--snapshot 3: the log has 2 snapshots" in r.stderr, r.stderr
    out = log + ".pb"
    tl.run([tl.SFTRACE_ASAN, "convert", "--snapshot", "1", log, "-o", out])
    c = tl.run(["python3", tl.PERFETTO_CHECK, "--strict", "--json", out], check=False)
    assert c.returncode == 0, c.stdout[-3000:]


def test_ring_snapshot_is_one_cut_for_all_threads():
    """With a thread spinning while SIGUSR2 asks for a snapshot: no thread
    has an event after the cut, both threads are in it, and the main
    thread's last call before it is there whole; the spinner ran on after
    the cut (the exit snapshot has more of its calls)."""
    log = os.path.join(_dir(), "ringcut.log")
    p = Prog(log, opts=("--ring", "2M"))
    p.cmd("spin")
    p.cmd("run 50")
    before = _info(log)["snapshots"]
    assert before == []  # no I/O until a snapshot: no EVENTS either
    _, chunks = tl.read_log(log)
    assert not [c for c in chunks if c["type"] in (3, 4)], chunks  # no THREAD, no EVENTS
    os.kill(p.pid, signal.SIGUSR2)
    # wait for it through sftrace snapshot? No: that would take a second one.
    # The program answers "pid" only after the handler has run on the main
    # thread or, if another thread took the signal, maybe before: so wait
    # for the mark the way `snapshot` does, by reading the log.
    for _ in range(500):
        if any(s["complete"] for s in _info(log)["snapshots"]):
            break
        import time
        time.sleep(0.01)
    p.cmd("run 3")
    spun = int(p.cmd("unspin").split()[1])
    p.quit()
    hdr, _ = tl.read_log(log)
    info = _info(log)
    s1, s2 = info["snapshots"]
    assert (s1["why"], s2["why"]) == ("SIGUSR2", "end of the image")
    cut = s1["cut_ns"] - hdr["create_mono_ns"]
    ev = _events(log, ["--snapshot", "1"])
    tids = {e[1] for e in ev}
    assert tids == {p.pid, next(t for t in tids if t != p.pid)} and len(tids) == 2, tids
    assert all(e[0] <= cut for e in ev), (cut, max(e[0] for e in ev))
    main_calls = [c for c in _snap_calls(log, 1) if c[3] == p.pid]
    # main() is open at the cut: cut there (c); the ring reaches back to it
    assert collections.Counter((c[0], c[1], c[2]) for c in main_calls) == {
        ("main", 0, "c"): 1, ("outer", 1, "-"): 1, ("work", 2, "-"): 50}, main_calls
    spin1 = sum(1 for c in _snap_calls(log, 1) if c[0] == "spin_a")
    spin2 = sum(1 for c in _snap_calls(log, 2) if c[0] == "spin_a")
    assert 0 < spin1 < spin2 <= spun, (spin1, spin2, spun)


def test_ring_snapshot_on_entry_and_slow_call():
    """--snapshot-on fires at every entry of the function and nowhere else;
    with --snapshot-slower-than it fires once, at the exit of the one slow
    call among 2,000, and that snapshot ends with that call, whole."""
    log = os.path.join(_dir(), "ringon.log")
    p = Prog(log, opts=("--ring", "1M", "--snapshot-on", "^rare$"))
    p.cmd("run 5")
    p.cmd("rare")
    p.cmd("run 3")
    p.cmd("rare")
    p.quit()
    info = _info(log)
    assert [s["why"] for s in info["snapshots"]] == ["trigger", "trigger", "end of the image"]
    c1 = collections.Counter((c[0], c[1], c[2]) for c in _snap_calls(log, 1))
    # the ring still reaches back to main(), open at the cut like rare()
    assert c1 == {("main", 0, "c"): 1, ("outer", 1, "-"): 1, ("work", 2, "-"): 5,
                  ("rare", 1, "c"): 1}, c1
    c2 = collections.Counter((c[0], c[1], c[2]) for c in _snap_calls(log, 2))
    assert c2 == {("main", 0, "c"): 1, ("outer", 1, "-"): 2, ("work", 2, "-"): 8,
                  ("rare", 1, "-"): 1, ("rare", 1, "c"): 1}, c2

    log = os.path.join(_dir(), "ringslow.log")
    p = Prog(log, opts=("--ring", "1M", "--snapshot-on", "^job$", "--snapshot-slower-than",
                        "100ms"))
    assert p.cmd("jobs 2000 1234") == "jobs 2000"
    p.quit()
    info = _info(log)
    assert [s["why"] for s in info["snapshots"]] == ["slow call", "end of the image"], info
    calls = _snap_calls(log, 1)
    jobs = [c for c in calls if c[0] == "job"]
    assert len(jobs) == 1235 and all(c[2] == "-" for c in jobs), (len(jobs), jobs[-3:])
    last = _events(log, ["--snapshot", "1"])[-1]
    assert last[2:4] == ("exit", "job"), last  # the snapshot ends with the slow call's exit
    assert len([c for c in _snap_calls(log, 2) if c[0] == "job"]) == 2000


def test_ring_snapshot_at_fatal_signal_and_kill():
    """A program that aborts gets its last snapshot (why: fatal signal), one
    killed with SIGKILL gets one from its helper (why: died); each holds
    the calls made before."""
    log = os.path.join(_dir(), "ringabort.log")
    p = Prog(log, opts=("--ring", "1M"))
    p.cmd("run 4")
    p.p.stdin.write("abort\n")
    p.p.stdin.close()
    assert p.p.wait(timeout=120) == 128 + signal.SIGABRT
    assert [s["why"] for s in _info(log)["snapshots"]] == ["fatal signal"]
    c = collections.Counter((c[0], c[1], c[2]) for c in _snap_calls(log, 0))
    assert c == {("main", 0, "c"): 1, ("outer", 1, "-"): 1, ("work", 2, "-"): 4}, c

    log = os.path.join(_dir(), "ringkill.log")
    p = Prog(log, opts=("--ring", "1M"))
    p.cmd("run 6")
    os.kill(p.pid, signal.SIGKILL)
    assert p.p.wait(timeout=120) == 128 + signal.SIGKILL
    assert [s["why"] for s in _info(log)["snapshots"]] == ["died"]
    c = collections.Counter((c[0], c[1], c[2]) for c in _snap_calls(log, 0))
    # main() was running when the process died: unfinished, as without --ring
    assert c == {("main", 0, "u"): 1, ("outer", 1, "-"): 1, ("work", 2, "-"): 6}, c


def test_snapshot_errors():
    """sftrace snapshot refuses a process without --ring; record refuses
    --snapshot-on without --ring and a bad size."""
    log = os.path.join(_dir(), "noring.log")
    p = Prog(log, opts=("--control",))
    r = tl.run([tl.SFTRACE, "snapshot", str(p.pid)], check=False)
    assert r.returncode == 1 and "without a flight recorder" in r.stderr, r.stderr
    p.quit()
    r = tl.run([tl.SFTRACE, "record", "--snapshot-on", "x", "--", _exe()], check=False)
    assert r.returncode == 2 and "need --ring" in r.stderr, r.stderr
    r = tl.run([tl.SFTRACE, "record", "--ring", "12Q", "--", _exe()], check=False)
    assert r.returncode == 2 and "--ring '12Q'" in r.stderr, r.stderr
    r = tl.run([tl.SFTRACE, "record", "--ring", "100K", "--", _exe()], check=False)
    assert r.returncode == 2, r.stderr


def test_paused_dlopen_stays_unrecorded():
    """An object dlopen'd while recording is stopped is patched and turned
    off before dlopen returns: a --paused run that is never started records
    no call, in the program or its plugins, and the program's output is
    what it is untraced."""
    import t_record
    plugin = t_record._build("plugin.c", shared=True, libs=())
    plugin_b = t_record._build("plugin_b.c", shared=True, libs=())
    prog = t_record._build("dlopen.c")
    plain = tl.run([prog, plugin, plugin_b])
    log = os.path.join(_dir(), "dlopen.log")
    r = tl.record([prog, plugin, plugin_b], log, extra=["--paused"])
    import re

    def strip(out):  # pids and load addresses differ from run to run
        return [re.sub(r" work 0x[0-9a-f]+", "", line) for line in out.splitlines()
                if not line.startswith(("pid", "tid"))]
    assert strip(r.stdout) == strip(plain.stdout), (r.stdout, plain.stdout)
    assert _calls(log) == []
    _, chunks = tl.read_log(log)
    assert sum(1 for c in chunks if c["type"] == 2) >= 3  # the program and both plugins
    # not just hidden by the tools: nothing was recorded at all
    assert not [c for c in chunks if c["type"] == 4], "EVENTS chunks in a run never started"
    assert [c["events"] for c in chunks if c["type"] == 5] == [0]


# ---- attach (sftrace attach PID = record -p PID) ------------------------------------------


def _text_matches_file(pid, exe):
    """Is the program's mapped code byte for byte its file's? (/proc/PID/mem:
    the test is its parent, which ptrace_scope 1 allows)"""
    with open("/proc/%d/maps" % pid) as f:
        maps = [l.split() for l in f]
    same = True
    with open(exe, "rb") as ef, open("/proc/%d/mem" % pid, "rb") as mem:
        for m in maps:
            if len(m) < 6 or m[5] != os.path.realpath(exe) or "x" not in m[1]:
                continue
            lo, hi = (int(x, 16) for x in m[0].split("-"))
            ef.seek(int(m[2], 16))
            want = ef.read(hi - lo)
            mem.seek(lo)
            got = mem.read(len(want))
            same = same and got == want
    return same


def _attach(pid, log):
    a = subprocess.Popen([tl.SFTRACE_ASAN, "attach", str(pid), "-o", log, "--solib", tl.RUNTIME],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = a.stderr.readline()
    assert "recording process %d" % pid in line, (line, a.stderr.read())
    return a


def _detach(a):
    a.send_signal(signal.SIGINT)
    out, err = a.communicate(timeout=120)
    assert a.returncode == 0, err
    assert "AddressSanitizer" not in err and "runtime error" not in err, err
    return err


def test_attach_records_a_running_program_and_leaves_it_as_it_was():
    """A program started without sftrace, with a second thread spinning:
    attach, let it run, detach, attach again. Each log holds exactly the
    main thread's calls made while attached, and the spinner's calls (a
    thread that existed before the attach) lie between its own counts at
    attach and detach time; calls open at either moment come out cut, not
    unfinished or unmatched. After each detach the code is byte for byte
    the file's again and the program runs on with unchanged output."""
    exe = _exe()
    p = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, bufsize=1)

    def cmd(c):
        p.stdin.write(c + "\n")
        p.stdin.flush()
        return p.stdout.readline().strip()

    pid = p.pid
    assert cmd("spin") == "spinning"
    assert cmd("run 3") == "ran 3"
    assert _text_matches_file(pid, exe)
    for round_, n in ((1, 5), (2, 4)):
        log = os.path.join(_dir(), "attach%d.log" % round_)
        c0 = int(cmd("spun").split()[1])
        a = _attach(pid, log)
        c1 = int(cmd("spun").split()[1])
        assert cmd("sled") == "sled 41ba"
        assert not _text_matches_file(pid, exe)  # patched
        assert cmd("run %d" % n) == "ran %d" % n
        c2 = int(cmd("spun").split()[1])
        err = _detach(a)
        c3 = int(cmd("spun").split()[1])
        assert cmd("sled") == "sled eb09"
        assert _text_matches_file(pid, exe), "round %d: the code differs from the file" % round_
        assert cmd("run 2") == "ran 2"  # detached: not recorded
        calls = _calls(log)
        main = collections.Counter((c[0], c[1], c[2]) for c in calls
                                   if c[0] in ("outer", "work"))
        assert main == {("outer", 0, "-"): 1, ("work", 1, "-"): n}, (round_, main)
        spin = [c for c in calls if c[0] == "spin_a"]
        assert c2 - c1 - 1 <= len(spin) <= c3 - c0 + 1, (round_, c0, c1, c2, c3, len(spin))
        assert not any("u" in c[2] for c in calls), calls
        # the spinner's calls open at the attach begin there, nested as ever
        assert {(c[0], c[1]) for c in calls if c[0].startswith("spin_")} <= {
            ("spin_a", 0), ("spin_b", 1)}, calls
        assert sum(1 for c in spin if c[2] == "c") <= 2, spin  # at the attach, at the detach
        info = _info(log)
        assert [m["why"] for m in info["marks"]] == ["sftrace attach"] * 2, info["marks"]
        assert [(x["pid"], x["ended"]) for x in info["processes"]] == [(pid, "detached")]
        st = json.loads(tl.run([tl.SFTRACE_ASAN, "report", "--format", "json", log]).stdout)
        assert st["unmatched"] == 0 and st["unfinished"] == 0, st
        assert "events" in err
        _convert_check(log)
    assert int(cmd("unspin").split()[1]) > 0
    p.stdin.write("quit\n")
    p.stdin.close()
    assert p.wait(timeout=60) == 0
    assert p.stderr.read() == ""


def test_attach_errors():
    """No such process, a process with no XRay code, one recorded already."""
    r = tl.run([tl.SFTRACE, "attach", "4194303"], check=False)
    assert r.returncode == 1 and "no process 4194303" in r.stderr, r.stderr
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        r = tl.run([tl.SFTRACE, "attach", str(sleeper.pid), "-o",
                    os.path.join(_dir(), "nox.log")], check=False)
        assert r.returncode == 1 and "runs no XRay-instrumented code" in r.stderr, r.stderr
    finally:
        sleeper.kill()
        sleeper.wait()
    log = os.path.join(_dir(), "already.log")
    p = Prog(log, opts=())
    r = tl.run([tl.SFTRACE, "attach", str(p.pid), "-o", os.path.join(_dir(), "again.log"),
                "--duration", "1s"], check=False)
    assert r.returncode == 1 and "is being recorded already" in r.stderr, r.stderr
    assert p.cmd("run 2") == "ran 2"
    p.quit()
    assert collections.Counter(c[0] for c in _calls(log))["work"] == 2
    r = tl.run([tl.SFTRACE, "record", "-p", "12", "--", "true"], check=False)
    assert r.returncode == 2 and "no command" in r.stderr, r.stderr


class _Running:
    """live_windows started without sftrace, spoken to line by line."""

    def __init__(self, cmd=None, env=None):
        self.p = subprocess.Popen(cmd or [_exe()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1, env=env)
        self.pid = self.p.pid

    def cmd(self, c):
        self.p.stdin.write(c + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def wait_for(self, c, want):
        """Ask c until the answer is want (the watcher patches an object
        some milliseconds after its dlopen); not a timing assertion."""
        for _ in range(5000):
            got = self.cmd(c)
            if got == want:
                return
            time.sleep(0.002)
        assert False, "%r never answered %r (last %r)" % (c, want, got)

    def quit(self):
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        assert self.p.wait(timeout=60) == 0
        err = self.p.stderr.read()
        assert err == "", err


def _file_sled(path, func):
    """The first two bytes of func in the file (as XRay left them), hex."""
    out = tl.run(["nm", path]).stdout
    addr = next(int(l.split()[0], 16) for l in out.splitlines() if l.split()[-1] == func)
    with open(path, "rb") as fh:
        elf = fh.read()
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    for i in range(phnum):
        ptype, _flags, off, va, _pa, filesz = struct.unpack_from("<IIQQQQ", elf,
                                                                 phoff + i * phentsize)
        if ptype == 1 and va <= addr < va + filesz:
            return elf[addr - va + off:addr - va + off + 2].hex()
    raise AssertionError("%s not in a loaded segment of %s" % (func, path))


def test_attach_patches_objects_loaded_later():
    """An object the program dlopens while attached is patched (the
    runtime's watcher sees the dynamic linker's load counter move) and its
    calls are recorded under their names, nested; a dlclose while attached
    is harmless (later calls are fine, the unloaded object is forgotten),
    and the same object loaded again is patched again. After detach the
    plugin's code is byte for byte its file's, like the program's."""
    import t_record
    plugin = t_record._build("plugin.c", shared=True, libs=())
    exe = _exe()
    want_sled = _file_sled(plugin, "plugin_work")
    plain = _Running()
    assert plain.cmd("load " + plugin) == "loaded"
    plain_out = [plain.cmd("plug 5"), plain.cmd("unload"), plain.cmd("run 1")]
    plain.quit()
    p = _Running()
    log = os.path.join(_dir(), "later.log")
    a = _attach(p.pid, log)
    assert p.cmd("load " + plugin) == "loaded"
    p.wait_for("plugsled", "plugsled 41ba")
    assert not _text_matches_file(p.pid, plugin)  # patched
    assert [p.cmd("plug 5"), p.cmd("unload"), p.cmd("run 1")] == plain_out
    assert p.cmd("load " + plugin) == "loaded"  # again: a new mapping, patched anew
    p.wait_for("plugsled", "plugsled 41ba")
    assert p.cmd("plug 3") == "plugged 3 15"
    err = _detach(a)
    assert p.cmd("plugsled") == "plugsled " + want_sled
    assert _text_matches_file(p.pid, exe)
    assert _text_matches_file(p.pid, plugin), "the plugin's code differs from its file"
    assert p.cmd("plug 2") == "plugged 2 8"  # detached: runs, not recorded
    assert p.cmd("unload") == "unloaded 1"
    p.quit()
    calls = _calls(log)
    by = collections.Counter((c[0], c[1], c[2]) for c in calls)
    assert by == {("plugin_work", 0, "-"): 5 + 3, ("plugin_helper", 1, "-"): 2 * (5 + 3),
                  ("outer", 0, "-"): 1, ("work", 1, "-"): 1}, by
    info = _info(log)
    paths = collections.Counter(os.path.basename(o["path"]) for o in info["objects"])
    assert paths["plugin.so"] == 1 and paths["live_windows"] == 1, info["objects"]
    objs = [c for c in tl.read_log(log)[1] if c["type"] == 2]
    assert len(objs) == 3, objs  # the program, and the plugin twice (two loads)
    st = json.loads(tl.run([tl.SFTRACE_ASAN, "report", "--format", "json", log]).stdout)
    assert st["unmatched"] == 0 and st["unfinished"] == 0, st
    assert "events" in err
    _convert_check(log)


def test_attach_call_open_at_attach_is_clipped():
    """held() is open when the attach comes and returns while attached: it
    is shown beginning at the attach, cut there (flag c), with its two
    work() calls under it; the calls after it are whole. The same in every
    tool: report counts it, convert's Perfetto file nests work under it."""
    p = _Running()
    assert p.cmd("hold") == "held"
    log = os.path.join(_dir(), "open.log")
    a = _attach(p.pid, log)
    assert p.cmd("release") == "released"
    assert p.cmd("run 3") == "ran 3"
    _detach(a)
    p.quit()
    calls = _calls(log)
    by = collections.Counter((c[0], c[1], c[2]) for c in calls)
    assert by == {("held", 0, "c"): 1, ("work", 1, "-"): 2 + 3, ("outer", 0, "-"): 1}, by
    held = next(c for c in calls if c[0] == "held")
    start = _info(log)["marks"][0]
    assert start["kind"] == "start" and start["why"] == "sftrace attach", start
    works = [c for c in calls if c[0] == "work"]
    # held begins at the attach: before its works, and ends after them
    assert all(held[3] <= w[3] and w[3] + w[4] <= held[3] + held[4] for w in works[:2]), calls
    # a time range from the second work(): held is among the calls open at
    # its start (the window replay has it too), clipped there
    w0 = works[1][3] - works[0][3]  # the range's origin is the first event
    win = _calls(log, opts=["--time-range", "%dns," % w0])
    wby = collections.Counter((c[0], c[1], c[2]) for c in win)
    assert wby == {("held", 0, "c"): 1, ("work", 1, "-"): 1 + 3, ("outer", 0, "-"): 1}, win
    assert next(c for c in win if c[0] == "held")[3] == works[1][3], win
    # one that ends inside held: held from the attach to the range's end
    win = _calls(log, opts=["--time-range", ",%dns" % (w0 - 1)])
    wby = collections.Counter((c[0], c[1], c[2]) for c in win)
    assert wby == {("held", 0, "c"): 1, ("work", 1, "-"): 1}, win
    assert next(c for c in win if c[0] == "held")[3] == held[3], win
    st = json.loads(tl.run([tl.SFTRACE_ASAN, "report", "--format", "json", log]).stdout)
    assert st["unmatched"] == 0 and st["unfinished"] == 0, st
    funcs = {f["name"]: f["calls"] for f in st["groups"][0]["functions"]}
    assert funcs == {"held": 1, "work": 5, "outer": 1}, funcs
    _convert_check(log)
    # through a pipe (the opening scan reads the log a second time): the same
    piped = tl.run_piped([tl.SFTRACE_ASAN, "dump", "--calls", "-"], log)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == tl.run([tl.SFTRACE_ASAN, "dump", "--calls", log]).stdout


def test_attach_fork_and_exec():
    """A child forked while attached runs exactly as untraced (its output,
    its exit status through exit(), its code unpatched) and is not in the
    log; the parent goes on being recorded; attaching to such a child is
    refused with the reason. An exec ends the recording: the
    new program runs untraced and unpatched, the log ends the image with
    END(exec), and `sftrace attach` says so and exits 0."""
    plain = _Running()
    want = [plain.cmd("fork 3"), plain.cmd("run 1")], plain.p.stdout.readline().strip()
    plain.quit()
    assert want == (["child ran 3 sled eb09", "forked 7"], "ran 1"), want
    p = _Running()
    log = os.path.join(_dir(), "fork.log")
    a = _attach(p.pid, log)
    got = [p.cmd("fork 3"), p.cmd("run 1")], p.p.stdout.readline().strip()
    assert got == want, got
    # a child that lives on: attaching to it is refused (it shares the
    # parent's recording memory), and it is left as it was
    kid = int(p.cmd("spawn").split()[1])
    try:
        r = tl.run([tl.SFTRACE_ASAN, "attach", str(kid), "-o", os.path.join(_dir(), "kid.log"),
                    "--solib", tl.RUNTIME], check=False)
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert "was forked from a process sftrace was attached to" in r.stderr, r.stderr
        assert not os.path.exists(os.path.join(_dir(), "kid.log"))
        with open("/proc/%d/status" % kid) as f:
            assert "State:\tS" in f.read()  # still waiting, not stopped or dead
    finally:
        os.kill(kid, signal.SIGKILL)
    assert p.cmd("exec") == "execd"
    assert p.cmd("sled") == "sled eb09"
    assert p.cmd("run 2") == "ran 2"
    a.send_signal(signal.SIGINT)
    out, err = a.communicate(timeout=120)
    assert a.returncode == 0, err
    assert "ran exec: the recording ended there" in err, err
    assert "AddressSanitizer" not in err and "runtime error" not in err, err
    assert p.cmd("pid") == "pid %d" % p.pid
    p.quit()
    calls = _calls(log)
    by = collections.Counter((c[0], c[1], c[2]) for c in calls)
    # the parent's outer(1) only: the child's outer(3) and the new image's
    # outer(2) are not recorded
    assert by == {("outer", 0, "-"): 1, ("work", 1, "-"): 1}, by
    info = _info(log)
    assert [(x["pid"], x["ended"]) for x in info["processes"]] == [(p.pid, "exec")], info
    _convert_check(log)


def test_attach_to_an_aarch64_process_is_refused():
    """Attaching works on x86_64 only. An aarch64 program under qemu-user
    (an x86_64 process running aarch64 code) gets a clear error naming
    the machine, before anything is done to it: it runs on unchanged."""
    import t_aarch64
    why = t_aarch64._available()
    if why:
        raise tl.Skip(why)
    exe = t_aarch64._Tl().build_c("live_windows.c", flags=["-pthread"])
    p = _Running(t_aarch64._q([exe]))
    assert p.cmd("run 2") == "ran 2"
    r = tl.run([tl.SFTRACE_ASAN, "attach", str(p.pid), "-o", os.path.join(_dir(), "a64.log"),
                "--solib", tl.RUNTIME], check=False)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "process %d runs aarch64 code" % p.pid in r.stderr, r.stderr
    assert "attaching works only to x86_64 processes" in r.stderr, r.stderr
    assert "AddressSanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(_dir(), "a64.log"))
    assert p.cmd("run 3") == "ran 3"
    assert p.cmd("sled") == "sled " + _file_sled(exe, "work")
    p.quit()


def test_calls_open_at_a_start_synthetic():
    """The engine's rule on a log built by hand (MONO clock: times are ns):
    calls open at a START begin there, nested in the order their exits
    imply, per thread and per START; a tail call of one of them leaves it
    (flags t and c) and its callee follows at the same depth; a thread with
    no record before the START gets them at its first record; records while
    stopped are dropped; the same from the ASan build and in Perfetto."""
    import logsynth as ls
    log = ls.Log()
    pid = 10
    log.process(pid, clock=ls.MONO, tsc=10, mono_ns=10)
    log.object(pid, 1, [0x1000, 0x1100, 0x1200, 0x1300], "/nonexistent/prog")

    def mark(kind, ts, seq):
        log.chunk(CHUNK_MARK, pid, struct.pack("<IIQQII", kind, 1, ts, ts, 0, seq))

    def events(tid, evs):
        hi, recs = ls.encode(evs)
        log.events(pid, tid, recs, tsc_hi=hi, flush_tsc=evs[-1][1], flush_mono_ns=evs[-1][1])

    mark(MARK_STOP, 100, 1)
    events(10, [("entry", 150, 1)])  # while stopped: dropped
    mark(MARK_START, 200, 2)
    events(10, [("entry", 300, 3), ("exit", 310, 3), ("tail", 320, 2), ("entry", 330, 4),
                ("exit", 340, 4), ("exit", 350, 1)])
    events(11, [("exit", 360, 3), ("entry", 370, 4), ("exit", 380, 4)])
    mark(MARK_STOP, 400, 3)
    mark(MARK_START, 500, 4)
    events(10, [("exit", 600, 2)])
    log.end(pid, tsc=700, mono_ns=700, events=11, threads=2)
    path = log.write(os.path.join(_dir(), "synth_open.log"))
    want = [
        # tid, fid, depth, flags, start, end
        (10, 3, 2, "-", 300, 310), (10, 2, 1, "tc", 200, 320), (10, 4, 1, "-", 330, 340),
        (10, 1, 0, "c", 200, 350), (11, 3, 0, "c", 200, 360), (11, 4, 0, "-", 370, 380),
        (10, 2, 0, "c", 500, 600)]
    import t_calls
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        got = [(c.tid, c.name, c.depth, c.flags, c.start, c.end)
               for c in t_calls._calls(path, sftrace=sftrace)]
        names = sorted({g[1] for g in got})
        assert len(names) == 4, got  # one name per fid, in fid order below
        fid = {n: i + 1 for i, n in enumerate(names)}
        got = [(t, fid[n], d, fl, s, e) for (t, n, d, fl, s, e) in got]
        origin = min(g[4] for g in got) - 200  # dump's times are from the log's creation
        got = [(t, f, d, fl, s - origin, e - origin) for (t, f, d, fl, s, e) in got]
        assert sorted(got) == sorted(want), got
    st = json.loads(tl.run([tl.SFTRACE_ASAN, "report", "--format", "json", path]).stdout)
    assert st["unmatched"] == 0 and st["unfinished"] == 0, st
    _convert_check(path)


def test_attach_built_for_aarch64_says_it_is_not_supported():
    """cmd/attach.c built for aarch64 (with stand-ins for the rest of
    sftrace: programs/attach_arch_stub.c), run under qemu-user: `attach PID`
    of an instrumented process says attaching is not supported on this
    machine and exits 1, leaving the process alone."""
    import t_aarch64
    why = t_aarch64._available()
    if why:
        raise tl.Skip(why)
    root = tl.ROOT
    stub = tl.build_c("attach_arch_stub.c",
                      out=os.path.join(tl.outdir("aarch64", "bin"), "attach_arch_stub"),
                      flags=t_aarch64.TARGET + ["-I" + os.path.join(root, d)
                                                for d in ("common", "include", "lib", "cmd")],
                      libs=[os.path.join(root, "cmd", "attach.c")])
    p = _Running()
    assert p.cmd("run 1") == "ran 1"
    r = tl.run(t_aarch64._q([stub, str(p.pid)]), check=False)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stderr == ("sftrace attach: attaching is not supported on this machine (only on "
                        "x86_64); record process %d from its start with `sftrace record` "
                        "instead\n" % p.pid), r.stderr
    assert p.cmd("sled") == "sled eb09" and p.cmd("run 2") == "ran 2"
    p.quit()
    r = tl.run(t_aarch64._q([stub, "--help"]))
    assert "Not supported on aarch64" in r.stdout, r.stdout


def test_attach_process_dies_of_a_signal():
    """A fatal signal while attached is the program's (it dies as it would
    untraced); the helper salvages what was recorded and ends the image as
    killed, and `sftrace attach` says so and exits 0."""
    p = _Running()
    log = os.path.join(_dir(), "died.log")
    a = _attach(p.pid, log)
    assert p.cmd("run 2") == "ran 2"
    p.p.stdin.write("abort\n")
    p.p.stdin.flush()
    assert p.p.wait(timeout=60) == -signal.SIGABRT
    out, err = a.communicate(timeout=120)
    assert a.returncode == 0, err
    assert "killed by signal 6" in err and "salvaged" in err, err
    assert "AddressSanitizer" not in err and "runtime error" not in err, err
    info = _info(log)
    assert [(x["pid"], x["ended"]) for x in info["processes"]] == [(p.pid, "died")], info
    by = collections.Counter((c[0], c[1], c[2]) for c in _calls(log))
    assert by == {("outer", 0, "-"): 1, ("work", 1, "-"): 2}, by


def _plugin():
    import t_record
    return t_record._build("plugin.c", shared=True, libs=())


def _whole_plugin_calls(log):
    """Every plugin_work call recorded whole has exactly its two
    plugin_helper calls under it (by `dump --calls`' parent ids), whole; one
    cut at the attach or the detach (flag c) at most two; no other call is
    under one. Returns the whole calls' count."""
    p = tl.run([tl.SFTRACE_ASAN, "dump", "--calls", log])
    rows = [l.split("\t") for l in p.stdout.splitlines() if l and not l.startswith("#")]
    kids = collections.defaultdict(list)
    for r in rows:
        kids[(r[2], r[7])].append(r)
    whole = 0
    for r in rows:
        if r[9] != "plugin_work":
            continue
        k = kids[(r[2], r[6])]
        assert all(x[9] == "plugin_helper" and int(x[3]) == int(r[3]) + 1 for x in k), (r, k)
        if r[8] == "-":
            assert len(k) == 2 and all(x[8] == "-" for x in k), (r, k)
            whole += 1
        else:
            assert r[8] == "c" and len(k) <= 2, (r, k)
    return whole


def test_attach_detach_repeatedly_while_a_thread_loads_and_unloads():
    """A thread dlopens, calls and dlcloses a plugin in a loop while
    sftrace attaches and detaches six times: every detach succeeds (none
    waits without bound for the watcher, the helper or the loader), the
    program's results stay right, its code and the plugin's are the files'
    again after each detach, and each log's plugin calls are nested exactly
    (two helpers under every whole plugin_work)."""
    plugin = _plugin()
    exe = _exe()
    p = _Running()
    assert p.cmd("bgloop " + plugin) == "bglooping"
    total = 0
    for round_ in range(6):
        log = os.path.join(_dir(), "dlloop%d.log" % round_)
        a = _attach(p.pid, log)
        assert p.cmd("run 2") == "ran 2"
        p.wait_for("spun", "spun 0")  # the loop runs on meanwhile
        time.sleep(0.1)  # some rounds of the loop; not a timing assertion
        _detach(a)
        assert _text_matches_file(p.pid, exe), round_
        calls = _calls(log)
        by = collections.Counter((c[0], c[1], c[2]) for c in calls
                                 if c[0] in ("outer", "work"))
        assert by == {("outer", 0, "-"): 1, ("work", 1, "-"): 2}, (round_, by)
        total += _whole_plugin_calls(log)
        st = json.loads(tl.run([tl.SFTRACE_ASAN, "report", "--format", "json", log]).stdout)
        assert st["unmatched"] == 0 and st["unfinished"] == 0, st
    rounds, bad = (int(x) for x in p.cmd("bgstop").split()[1:])
    assert bad == 0 and rounds > 0, (rounds, bad)
    assert p.cmd("run 1") == "ran 1"
    p.quit()
    assert total <= 20 * rounds, (total, rounds)


def test_detach_while_the_program_holds_the_loader_lock():
    """The main thread sits inside a dl_iterate_phdr callback of its own (it
    holds the dynamic linker's list lock) when the detach comes: the
    watcher, blocked on that lock, is given up rather than waited for, and
    the detach runs on that very thread (the lock is recursive). It used to
    be refused 100 times (35 s) and fail."""
    exe = _exe()
    p = _Running()
    log = os.path.join(_dir(), "phdrhold.log")
    a = _attach(p.pid, log)
    assert p.cmd("run 3") == "ran 3"
    assert p.cmd("phdrhold") == "phdrheld"
    time.sleep(0.05)  # the watcher's next look blocks on the lock; not a timing assertion
    _detach(a)
    p.p.stdin.write("release\n")
    p.p.stdin.flush()
    assert p.p.stdout.readline().strip() == "phdrreleased"
    assert _text_matches_file(p.pid, exe)
    assert p.cmd("run 2") == "ran 2"
    p.quit()
    by = collections.Counter((c[0], c[1], c[2]) for c in _calls(log))
    # phdr_cb was open at the detach: cut there
    assert by == {("outer", 0, "-"): 1, ("work", 1, "-"): 3, ("phdr_cb", 0, "c"): 1}, by
    assert [x["ended"] for x in _info(log)["processes"]] == ["detached"]


def _helper_of(log):
    """The pid of the sftrace-helper process that has the log open."""
    real = os.path.realpath(log)
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % d) as f:
                if f.read().strip() != "sftrace-helper":
                    continue
            for fd in os.listdir("/proc/%s/fd" % d):
                if os.path.realpath("/proc/%s/fd/%s" % (d, fd)) == real:
                    return int(d)
        except OSError:
            continue
    return None


def test_detach_when_the_helper_does_not_answer():
    """The helper is stopped (SIGSTOP) when the detach comes: the detach
    does not hang; the sleds are put back all the same, the helper is
    killed (it must not write on, nor stay), sftrace attach exits 1 saying
    which request got no answer, and the program runs on untraced, with the
    signal that came during the detach delivered. The log lacks its END."""
    exe = _exe()
    p = _Running()
    log = os.path.join(_dir(), "stopped-helper.log")
    a = _attach(p.pid, log)
    assert p.cmd("run 3") == "ran 3"
    helper = _helper_of(log)
    assert helper, "no helper has %s open" % log
    os.kill(helper, signal.SIGSTOP)
    a.send_signal(signal.SIGINT)
    # a signal for the program while its thread runs sftrace_detach (which
    # waits 5 s for the helper here): ptrace stops the thread for it, and
    # it is sent again when the thread is let go, not lost
    time.sleep(1)
    os.kill(p.pid, signal.SIGWINCH)
    out, err = a.communicate(timeout=120)
    assert a.returncode == 1, err
    assert "did not answer request FLUSH" in err and "detached, but" in err, err
    assert "AddressSanitizer" not in err and "runtime error" not in err, err
    assert _text_matches_file(p.pid, exe)
    for _ in range(500):
        if not os.path.exists("/proc/%d" % helper):
            break
        time.sleep(0.01)
    assert not os.path.exists("/proc/%d" % helper), "the helper is still there"
    assert p.cmd("sigs") == "sigs 1"
    assert p.cmd("run 2") == "ran 2"
    p.quit()
    info = _info(log)
    assert [x["ended"] for x in info["processes"]] != ["detached"], info["processes"]


def test_attach_traces_a_dlmopen_namespace():
    """An object loaded with dlmopen into a new link-map namespace while
    attached (dl_iterate_phdr from our code does not list it) is found
    through the dynamic linker's r_debug namespace chain, patched, recorded
    nested under its names, and put back as it was at the detach."""
    plugin = _plugin()
    want_sled = _file_sled(plugin, "plugin_work")
    p = _Running()
    log = os.path.join(_dir(), "dlmopen.log")
    a = _attach(p.pid, log)
    assert p.cmd("mload " + plugin) == "mloaded"
    p.wait_for("plugsled", "plugsled 41ba")
    assert p.cmd("plug 4") == "plugged 4 24"
    _detach(a)
    assert p.cmd("plugsled") == "plugsled " + want_sled
    assert _text_matches_file(p.pid, plugin), "the plugin's code differs from its file"
    assert p.cmd("plug 2") == "plugged 2 8"  # detached: not recorded
    calls = _calls(log)
    by = collections.Counter((c[0], c[1], c[2]) for c in calls)
    assert by == {("plugin_work", 0, "-"): 4, ("plugin_helper", 1, "-"): 8}, by
    assert _whole_plugin_calls(log) == 4
    # one loaded before the attach is patched by the attach itself
    log2 = os.path.join(_dir(), "dlmopen-before.log")
    a = _attach(p.pid, log2)
    assert p.cmd("plugsled") == "plugsled 41ba"
    assert p.cmd("plug 3") == "plugged 3 15"
    _detach(a)
    assert _text_matches_file(p.pid, plugin)
    p.quit()
    by = collections.Counter((c[0], c[1], c[2]) for c in _calls(log2))
    assert by == {("plugin_work", 0, "-"): 3, ("plugin_helper", 1, "-"): 6}, by


def _ld_so(pid):
    with open("/proc/%d/maps" % pid) as f:
        return next(l.split()[5] for l in f if "ld-linux" in l and len(l.split()) >= 6)


def test_attach_patches_a_dlopen_before_it_returns():
    """The runtime hooks the dynamic linker's debugger rendezvous
    (_r_debug.r_brk, _dl_debug_state) while attached: an object is patched
    inside its dlopen, before it returns, so every call into it is recorded
    (no ~10 ms window), its constructor's calls too, and so is its
    unload. The linker's code is its
    file's again after the detach. With SFTRACE_NO_RENDEZVOUS in the
    program's environment only the watcher patches (within ~10 ms)."""
    plugin = _plugin()
    p = _Running()
    assert p.cmd("spun") == "spun 0"  # it runs (its maps are complete)
    ld = _ld_so(p.pid)
    assert _text_matches_file(p.pid, ld)
    log = os.path.join(_dir(), "rendezvous.log")
    a = _attach(p.pid, log)
    assert not _text_matches_file(p.pid, ld)  # hooked
    for n in (5, 3):
        assert p.cmd("load " + plugin) == "loaded"
        assert p.cmd("plugsled") == "plugsled 41ba"  # patched already: no waiting
        assert p.cmd("plug %d" % n) == "plugged %d %d" % (n, n * (n + 2))
        assert p.cmd("unload") == "unloaded 1"
    _detach(a)
    assert _text_matches_file(p.pid, ld), "the dynamic linker's code differs from its file"
    assert _text_matches_file(p.pid, _exe())
    p.quit()
    by = collections.Counter((c[0], c[1], c[2]) for c in _calls(log))
    assert by == {("plugin_work", 0, "-"): 8, ("plugin_helper", 1, "-"): 16}, by
    assert _whole_plugin_calls(log) == 8
    objs = [c for c in tl.read_log(log)[1] if c["type"] == 2]
    assert len(objs) == 3, objs  # the program, and the plugin twice
    # a constructor's calls, made inside the dlopen, are recorded too
    import t_record
    ctor = t_record._build("live_ctor.c", shared=True, libs=())
    p = _Running()
    log = os.path.join(_dir(), "rendezvous-ctor.log")
    a = _attach(p.pid, log)
    assert p.cmd("load " + ctor) == "loaded"
    assert p.cmd("plug 2") == "plugged 2 8"
    _detach(a)
    p.quit()
    calls = _calls(log)
    by = collections.Counter((c[0], c[1], c[2]) for c in calls)
    assert by == {("plugin_ctor", 0, "-"): 1, ("plugin_work", 1, "-"): 1,
                  ("plugin_helper", 2, "-"): 2,  # the constructor's
                  ("plugin_work", 0, "-"): 2, ("plugin_helper", 1, "-"): 4}, by
    assert _whole_plugin_calls(log) == 3
    # the watcher alone
    p = _Running(env=dict(os.environ, SFTRACE_NO_RENDEZVOUS="1"))
    log = os.path.join(_dir(), "no-rendezvous.log")
    a = _attach(p.pid, log)
    assert _text_matches_file(p.pid, ld)  # not hooked
    assert p.cmd("load " + plugin) == "loaded"
    p.wait_for("plugsled", "plugsled 41ba")
    assert p.cmd("plug 2") == "plugged 2 8"
    _detach(a)
    p.quit()
    by = collections.Counter((c[0], c[1], c[2]) for c in _calls(log))
    assert by == {("plugin_work", 0, "-"): 2, ("plugin_helper", 1, "-"): 4}, by


def test_detach_from_a_stopped_process():
    """The process is stopped (SIGSTOP) when the detach comes: the detach
    runs on the main thread all the same (ptrace resumes that one thread),
    the watcher, stopped with the rest, is given up without being waited
    for, the process stays stopped afterwards, and after SIGCONT it runs on
    unpatched, the watcher gone (it ends as soon as it runs)."""
    exe = _exe()
    p = _Running()
    log = os.path.join(_dir(), "stopped.log")
    a = _attach(p.pid, log)
    assert p.cmd("run 3") == "ran 3"
    assert len(os.listdir("/proc/%d/task" % p.pid)) == 2  # main, sftrace-watch
    os.kill(p.pid, signal.SIGSTOP)
    for _ in range(1000):
        if open("/proc/%d/stat" % p.pid).read().rsplit(")", 1)[1].split()[0] == "T":
            break
        time.sleep(0.01)
    _detach(a)
    states = [open("/proc/%d/task/%s/stat" % (p.pid, t)).read().rsplit(")", 1)[1].split()[0]
              for t in os.listdir("/proc/%d/task" % p.pid)]
    assert states and all(s == "T" for s in states), states  # still stopped
    os.kill(p.pid, signal.SIGCONT)
    assert p.cmd("run 2") == "ran 2"
    assert _text_matches_file(p.pid, exe)
    for _ in range(1000):
        if len(os.listdir("/proc/%d/task" % p.pid)) == 1:
            break
        time.sleep(0.01)
    assert len(os.listdir("/proc/%d/task" % p.pid)) == 1, "the watcher did not end"
    p.quit()
    by = collections.Counter((c[0], c[1], c[2]) for c in _calls(log))
    assert by == {("outer", 0, "-"): 1, ("work", 1, "-"): 3}, by
    assert [x["ended"] for x in _info(log)["processes"]] == ["detached"]


def test_more_loads_than_the_object_table_holds():
    """4,200 dlopen/dlclose rounds of an instrumented plugin, more than the
    runtime's table of objects holds (4,096): unloaded objects are forgotten
    when it fills, so every round's call is recorded, under `record` (its
    dlopen hook) and while attached (the linker's rendezvous hook)."""
    plugin = _plugin()
    n = 4200
    log = os.path.join(_dir(), "loadloop-record.log")
    p = Prog(log, opts=())
    assert p.cmd("loadloop %d %s" % (n, plugin)) == "looped %d 0" % n
    p.quit()
    by = collections.Counter((c[0], c[1], c[2]) for c in _calls(log))
    assert by == {("main", 0, "-"): 1, ("plugin_work", 1, "-"): n,
                  ("plugin_helper", 2, "-"): 2 * n}, by
    r = _Running()
    log = os.path.join(_dir(), "loadloop-attach.log")
    a = _attach(r.pid, log)
    assert r.cmd("loadloop %d %s" % (n, plugin)) == "looped %d 0" % n
    _detach(a)
    assert _text_matches_file(r.pid, _exe())
    r.quit()
    by = collections.Counter((c[0], c[1], c[2]) for c in _calls(log))
    assert by == {("plugin_work", 0, "-"): n, ("plugin_helper", 1, "-"): 2 * n}, by


def test_attach_to_a_process_traced_already():
    """A process another tracer has (strace here) is refused, naming that
    tracer, and is not touched."""
    if not tl.have("strace"):
        raise tl.Skip("strace not installed")
    p = _Running()
    assert p.cmd("run 1") == "ran 1"
    st = subprocess.Popen(["strace", "-o", "/dev/null", "-p", str(p.pid)],
                          stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1000):  # until strace has it
            with open("/proc/%d/status" % p.pid) as f:
                if any(l.startswith("TracerPid:") and l.split()[1] != "0" for l in f):
                    break
            time.sleep(0.01)
        r = tl.run([tl.SFTRACE_ASAN, "attach", str(p.pid), "-o",
                    os.path.join(_dir(), "traced.log"), "--solib", tl.RUNTIME], check=False)
        assert r.returncode == 1, r.stderr
        assert "being traced already, by process %d (strace)" % st.pid in r.stderr, r.stderr
    finally:
        st.send_signal(signal.SIGINT)
        st.wait(timeout=60)
    assert p.cmd("run 2") == "ran 2"
    assert _text_matches_file(p.pid, _exe())
    p.quit()
