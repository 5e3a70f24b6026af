"""t_robust.py - damaged logs: every reader skips what breaks the format and
reads everything else.

Each test builds two logs with logsynth.py side by side: the damaged one and
the same log without the damage. `sftrace dump` of the damaged log must print
exactly the events of the clean one, report every piece of damage once with
the file and its offset, end with a summary line and exit 3 (damaged);
`sftrace convert` must write a trace of the same slices that passes
check_perfetto.py --strict, and exit 3 too. Both builds (normal, ASan+UBSan).
The last test runs the fuzzing corpus (tests/fuzz/corpus, see
tests/fuzz/README.md) through the ASan build of dump and convert.
"""
import json
import os
import re
import subprocess

import logsynth as ls
import tl

DAMAGED = 3  # exit status of a tool that read a damaged log (lib/logread.h)
WARN_MAX = 20  # SF_WARN_MAX
FUZZ = os.path.join(tl.ROOT, "tests", "fuzz")


def _dir(*parts):
    return tl.outdir("robust", *parts)


def _exe():
    return tl.build_c("dump_names.c")


def _no_sanitizer_report(p):
    for bad in ("Sanitizer", "runtime error:", "LeakSanitizer"):
        assert bad not in p.stderr, "sanitizer report:\n" + p.stderr[-3000:]


class Pair:
    """A damaged log and its clean twin, built chunk by chunk. Good chunks go
    to both; damage() only to the damaged one."""

    def __init__(self):
        self.bad = ls.Log(create_mono_ns=0)
        self.good = ls.Log(create_mono_ns=0)
        self.t = 1000
        self.nfuncs = len(ls.xray_functions(_exe()))

    def both(self, method, *args, **kw):
        getattr(self.good, method)(*args, **kw)
        return getattr(self.bad, method)(*args, **kw)

    def process(self, pid, **kw):
        self.both("process", pid, clock=ls.MONO, exe=_exe(), **kw)
        self.both("object", pid, 1, ls.xray_functions(_exe()), _exe(), ls.build_id(_exe()))

    def calls(self, n, packed=False):
        """Records of n nested-then-flat calls (2n events), raw or packed."""
        evs = []
        for i in range(n):
            f = 1 + i % self.nfuncs
            evs += [("entry", self.t, f), ("exit", self.t + 3, f)]
            self.t += 5
        hi, raw = ls.encode(evs)
        return (ls.pack(raw, hi) if packed else raw), hi

    def events(self, pid, tid, n, packed=False, seq=0):
        recs, hi = self.calls(n, packed)
        return self.both("events", pid, tid, recs, tsc_hi=hi, seq=seq,
                         flags=ls.EVENTS_PACKED if packed else 0)

    def damage(self, fn):
        """fn(log) appends damage to the damaged log; returns its offset."""
        off = len(self.bad.data)
        fn(self.bad)
        return off

    def write(self, name):
        d = _dir()
        return (self.bad.write(os.path.join(d, name + ".bad.sft")),
                self.good.write(os.path.join(d, name + ".good.sft")))


def _dump(path, sftrace):
    p = tl.run([sftrace, "dump", path], check=False, timeout=120)
    assert p.returncode >= 0, "%s dump killed by signal %d on %s" % (sftrace, -p.returncode, path)
    _no_sanitizer_report(p)
    return p


def _warnings(p, tool, path):
    """The warning lines of a damaged read: (offset, message) each, after
    checking every stderr line names the file and the last is the summary."""
    lines = [line for line in p.stderr.splitlines()
             if not re.match(r"sftrace convert: [\d.]+[kM]? events", line) and
             "timestamps went backwards" not in line and "exits without entry" not in line]
    assert lines, p.stderr
    prefix = "sftrace %s: %s: " % (tool, path)
    for line in lines:
        assert line.startswith(prefix), "%r does not name the file" % line
    assert lines[-1].startswith(prefix + "damaged log: ") and \
        lines[-1].endswith("everything else was read (%s chunks)" % re.search(
            r"\((\d+) chunks\)$", lines[-1]).group(1)), lines[-1]
    out = []
    for line in lines[:-1]:
        m = re.match(re.escape(prefix) + r"offset (\d+): (.*)$", line)
        assert m, "warning without an offset: %r" % line
        out.append((int(m.group(1)), m.group(2)))
    return out, lines[-1][len(prefix):]


def _summary(path):
    p = tl.run(["python3", tl.PERFETTO_CHECK, "--strict", "--json", path], check=False,
               timeout=300)
    res = json.loads(p.stdout)
    assert p.returncode == 0 and res["errors"] == 0 and res["warnings"] == 0, \
        "check_perfetto --strict failed on %s:\n%s" % (path, json.dumps(res["violations"],
                                                                         indent=1))
    s = res["summary"]
    for k in ("file", "file_bytes", "uncompressed_bytes", "compression", "gzip_members"):
        s.pop(k, None)
    return s


def _check(pair, name, want, summary=None, nevents=None):
    """The damaged log reads as the clean one plus warnings: want is a list of
    (offset, regex) of the warnings, in order; summary a regex of the summary
    line; nevents the number of events the dump must have."""
    bad, good = pair.write(name)
    clean = tl.run([tl.SFTRACE, "dump", good])
    assert clean.stderr == "", clean.stderr
    lines = clean.stdout.splitlines()
    if nevents is not None:
        assert len(lines) - 1 == nevents, (name, len(lines) - 1, nevents)
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = _dump(bad, sftrace)
        assert p.returncode == DAMAGED, (name, sftrace, p.returncode, p.stderr)
        assert p.stdout == clean.stdout, "%s: %s dump differs from the clean log's:\n%s\n%s" % (
            name, sftrace, p.stdout[-2000:], clean.stdout[-2000:])
        got, summ = _warnings(p, "dump", bad)
        dumped = got
        assert len(got) == len(want), (name, got, want)
        for (off, msg), (woff, wre) in zip(got, want):
            ok = woff[0] <= off < woff[1] if isinstance(woff, tuple) else off == woff
            assert ok and re.search(wre, msg), (name, off, msg, woff, wre)
        if summary:
            assert re.search(summary, summ), (name, summ, summary)
    # convert: the same slices as the clean log's trace, and exit 3
    d = _dir()
    outs = []
    for log, code in ((good, 0), (bad, DAMAGED)):
        for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
            out = os.path.join(d, "%s.%s.%s.pb" % (name, "bad" if log == bad else "good",
                                                  os.path.basename(os.path.dirname(sftrace))))
            p = tl.run([sftrace, "convert", "-q", log, "-o", out], check=False, timeout=300)
            assert p.returncode == code, (name, log, p.returncode, p.stderr)
            _no_sanitizer_report(p)
            if code:
                got, _ = _warnings(p, "convert", bad)
                assert got == dumped, (name, got, dumped)  # the same warnings as dump
            else:
                assert p.stderr == "", p.stderr
            outs.append(_summary(out))
    assert all(s == outs[0] for s in outs), (name, outs)
    return bad


# ---- the cases the issue names ----------------------------------------------------------


def test_thread_before_process():
    """A THREAD chunk of a pid with no PROCESS chunk (children that run no
    instrumented code wrote such logs): skipped, reported once for the pid,
    everything else read."""
    pr = Pair()
    pr.process(10)
    pr.events(10, 10, 30)
    off = pr.damage(lambda l: l.thread(99, 99, "child"))
    pr.damage(lambda l: l.thread(99, 99, "child", flags=ls.THREAD_EXITED))
    pr.events(10, 10, 20, seq=1)
    pr.both("end", 10, events=100)
    _check(pr, "thread_first",
           [(off, r"^THREAD chunk of pid 99 comes before any PROCESS chunk of that pid \(pid\): "
             r"skipped")],
           r"^damaged log: 2 bad chunks skipped \(96 bytes\); everything else was read "
           r"\(5 chunks\)$", nevents=100)


def test_events_of_unknown_pid():
    pr = Pair()
    pr.process(10)
    pr.events(10, 10, 10)
    recs, hi = pr.calls(7)
    off = pr.damage(lambda l: l.events(55, 56, recs, tsc_hi=hi))
    pr.damage(lambda l: l.end(55))
    pr.process(11)  # the other pid's chunks around it are all read
    pr.events(11, 12, 5, packed=True)
    pr.events(10, 10, 4, seq=1)
    _check(pr, "unknown_pid",
           [(off, r"^EVENTS chunk of pid 55 comes before any PROCESS chunk.*\(pid\)")],
           r"2 bad chunks skipped", nevents=2 * (10 + 5 + 4))


def test_corrupt_packed_chunk_in_the_middle():
    """A packed EVENTS chunk whose records cannot be decoded: that chunk is
    skipped, the offset is the bad record's, the next chunk of the same
    thread is read."""
    pr = Pair()
    pr.process(10)
    pr.events(10, 10, 20, packed=True)
    recs, hi = pr.calls(20, packed=True)
    broken = b"\x01\x01" + recs  # an implied exit with nothing entered
    off = pr.damage(lambda l: l.events(10, 10, broken, tsc_hi=hi, seq=1,
                                       flags=ls.EVENTS_PACKED))
    pr.events(10, 10, 20, packed=True, seq=2)
    pr.events(10, 11, 3)
    _check(pr, "packed_mid",
           [(off + 48, r"^bad packed record \(tag 0x01\).*\(records\): EVENTS chunk at offset "
             r"%d \(\d+ bytes\) skipped$" % off)],
           r"^damaged log: 1 bad chunk skipped", nevents=2 * 43)


def test_garbage_between_chunks():
    """Bytes that are no chunk between two chunks, of many lengths and
    kinds (zeros, text, a fake chunk magic with a bad size): the reader
    resynchronizes at the next chunk and says which bytes it skipped."""
    for n, junk in [(8, b"\0" * 8), (40, b"not a chunk at all, really! " * 2),
                    (24, ls.chunk_header(ls.EVENTS, 0, 12, 10) + b"\0" * 8),
                    (4096, bytes(range(256)) * 16),
                    (16, ls.chunk_header(77, 0, 1 << 20, 10))]:
        junk = ls.pad8(junk)
        pr = Pair()
        pr.process(10)
        pr.events(10, 10, 5)
        off = pr.damage(lambda l: l.raw(junk))
        pr.events(10, 10, 6, seq=1)
        pr.events(10, 10, 7, packed=True, seq=2)
        _check(pr, "garbage%d" % n,
               [(off, r"\((magic|size)\): %d bytes skipped, up to the next chunk at offset %d$"
                 % (len(junk), off + len(junk)))],
               r"^damaged log: 1 unreadable range skipped \(%d bytes\)" % len(junk),
               nevents=2 * 18)


def test_truncated_last_chunk():
    """A log cut inside its last chunk (killed writer, full disk): every
    complete chunk is used, and the reader says where it stopped."""
    pr = Pair()
    pr.process(10)
    pr.events(10, 10, 9)
    pr.events(10, 11, 9, packed=True)
    recs, hi = pr.calls(50)
    full = ls.Log()
    full.events(10, 10, recs, tsc_hi=hi, seq=1)
    last = full.bytes()[64:]
    for cut in (3, 16, 47, 48, 100, len(last) - 8):
        pr.bad.data = bytearray(pr.good.bytes())
        off = pr.damage(lambda l: l.raw(last[:cut]))
        what = r"truncated chunk header \(3 of 16 bytes\)" if cut < 16 else \
            r"EVENTS chunk of %d bytes runs past the end of the file, %d bytes left: " \
            r"truncated \(size\)" % (len(last), cut)
        _check(pr, "trunc%d" % cut, [(off, "^" + what + "; the log ends here$")],
               r"^damaged log: truncated at offset %d \(%d bytes of an incomplete chunk\); "
               r"everything else was read \(4 chunks\)$" % (off, cut), nevents=36)


def test_bad_sizes():
    """Chunk headers whose size is wrong: not a multiple of 8, smaller than
    the type's header, larger than the rest of the file although chunks
    follow, too large for its contents, too small for them. Each time the
    chunks after it are found and read."""
    import struct
    recs, hi = Pair().calls(6, packed=True)
    packed = struct.pack("<IIIIQQ", 10, 1, hi, -len(recs) % 8, 0, 0) + ls.pad8(recs)
    raw, hi = Pair().calls(6)
    raw = struct.pack("<IIIIQQ", 10, 1, hi, 0, 0, 0) + raw + ls.ext(ls.EXT_RET, 0, 0, [7])

    def chunk(body, flags, delta=0, size=None):
        return ls.chunk_header(ls.EVENTS, flags, size or 16 + len(body) + delta, 10) + body

    P = ls.EVENTS_PACKED
    for name, ck, woff, want in [
            ("size8", chunk(packed, P, 4), 0, r"not a multiple of 8 \(size\)"),
            ("small", chunk(packed, P, size=40), 0,
             r"EVENTS chunk size 40 is smaller than its header, 48 bytes \(size\)"),
            ("past", chunk(packed, P, size=1 << 20), 0,
             r"EVENTS chunk size 1048576 runs past the end of the file, \d+ bytes left \(size\)"),
            # the next chunk read as packed records: they do not decode
            ("large", chunk(packed, P, 64), None, r"bad packed record .*\(records\)"),
            # the RET record's payload cut off
            ("short", chunk(raw, 0, -8), 16 + len(raw) - 16,
             r"extended record \(subtype 4\) has 1 payload words, only 0 left.*\(nwords\)")]:
        pr = Pair()
        pr.process(10)
        pr.events(10, 10, 4)
        off = pr.damage(lambda l: l.raw(ck))
        pr.events(10, 10, 5, seq=2)
        pr.events(10, 12, 5, packed=True)
        pr.both("end", 10)
        _check(pr, "size_" + name,
               [((off + 48, off + len(ck) + 64) if woff is None else off + woff, want + r": %d bytes skipped, up to the next chunk at offset %d$"
                 % (len(ck), off + len(ck)))],
               r"1 unreadable range skipped \(%d bytes\)" % len(ck), nevents=28)


# ---- more of the rules ------------------------------------------------------------------


def test_bad_process_chunk_skips_its_image():
    """A PROCESS chunk that breaks a rule (an exec's new image, unknown
    clock): the pid's chunks up to its next good PROCESS chunk belong to an
    image the reader does not know, so they are skipped too (they would
    resolve against the old image's objects); other pids are unaffected."""
    pr = Pair()
    pr.process(10)
    pr.events(10, 10, 8)
    off = pr.damage(lambda l: l.process(10, clock=9, flags=ls.PROC_EXECED))
    recs, hi = pr.calls(5)
    pr.damage(lambda l: l.object(10, 1, [0x1000], "/bin/other"))
    pr.damage(lambda l: l.events(10, 10, recs, tsc_hi=hi))
    pr.process(20)
    pr.events(20, 20, 3)
    pr.process(10)  # a later good image of pid 10 reads again
    pr.events(10, 10, 2)
    _check(pr, "bad_process",
           [(off, r"^unknown clock 9 \(clock\): PROCESS chunk at offset %d \(\d+ bytes\) "
             r"skipped, and with it the chunks of pid 10 up to its next PROCESS chunk$" % off)],
           r"^damaged log: 3 bad chunks skipped", nevents=2 * 13)


def test_bad_object_and_records():
    """Rules inside chunks: an OBJECT table running past its chunk, a raw
    extended record with too many payload words, an ARGS record with 7
    arguments: each chunk alone is skipped."""
    pr = Pair()
    pr.process(10)
    o1 = pr.damage(lambda l: l.object(10, 100, [1, 2], "/x", nfuncs=1000))
    pr.events(10, 10, 3)
    o2 = pr.damage(lambda l: l.events(10, 10, ls.rec(1, 1, 0) + ls.ext(ls.EXT_RET, 0, 0, [1],
                                                                         nwords=5)))
    o3 = pr.damage(lambda l: l.events(10, 10, ls.ext(ls.EXT_ARGS, 7, 0, [0] * 7)))
    pr.events(10, 10, 3, seq=1)
    _check(pr, "rules",
           [(o1, r"OBJECT tables .* run past the end of the chunk.*\(nfuncs\): OBJECT chunk at "
             r"offset %d" % o1),
            (o2 + 56, r"5 payload words, only 1 left.*\(nwords\): EVENTS chunk at offset %d" % o2),
            (o3 + 48, r"ARGS record with 7 arguments.*\(arg\)")],
           r"^damaged log: 3 bad chunks skipped", nevents=12)


def test_many_warnings_are_capped():
    """A log with 60 damaged chunks: SF_WARN_MAX warnings, one saying the
    rest are only counted, and a summary counting all of them."""
    pr = Pair()
    pr.process(10)
    want = []
    for i in range(60):
        off = pr.damage(lambda l: l.events(10, 10, ls.ext(ls.EXT_RET, 0, 0, [])))
        if i < WARN_MAX:
            want.append((off + 48, r"RET record without payload"))
        elif i == WARN_MAX:
            want.append((off + 48, r"^more damage: not reported one by one, the summary "
                         r"counts it$"))
        pr.events(10, 10, 1, seq=i)
    _check(pr, "many", want, r"^damaged log: 60 bad chunks skipped", nevents=120)


def test_damage_read_from_a_pipe():
    """The same resynchronization when the log comes through a pipe (no
    prescan, no file size)."""
    pr = Pair()
    pr.process(10)
    pr.events(10, 10, 5)
    pr.damage(lambda l: l.raw(b"\xff" * 64))
    pr.events(10, 10, 5, seq=1)
    pr.damage(lambda l: l.chunk(ls.EVENTS, 10, b"\0" * 32, size=4096))
    pr.events(10, 10, 5, seq=2)
    bad, good = pr.write("pipe")
    clean = tl.run([tl.SFTRACE, "dump", good]).stdout
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = tl.run_piped([sftrace, "dump", "/dev/stdin"], bad, timeout=60)
        _no_sanitizer_report(p)
        assert p.returncode == DAMAGED, p.stderr
        # through a pipe the bad size cannot be told from truncation until
        # the scan finds the next chunk: both are skipped ranges
        assert p.stdout == clean, (p.stdout, clean)
        assert "2 unreadable ranges skipped" in p.stderr, p.stderr


def test_recorded_log_with_damage():
    """A real recording with garbage written over one EVENTS chunk's header
    and its last chunk cut: dump prints exactly the events of the other
    chunks."""
    if not os.path.exists(tl.RUNTIME):
        raise tl.Skip("runtime not built")
    prog = tl.build_c("threads.c")
    log = os.path.join(_dir(), "rec.sft")
    tl.record([prog], log)
    _, chunks = tl.read_log(log)
    with open(log, "rb") as f:
        data = f.read()
    ev = [c for c in chunks if c["type"] == tl.CHUNK_EVENTS]
    assert len(ev) >= 3, ev
    victim = ev[len(ev) // 2]
    # the log without the victim and the last chunk, cut at a chunk boundary
    last = chunks[-1]
    clean = data[:victim["off"]] + data[victim["off"] + victim["size"]:last["off"]]
    bad = bytearray(data[:last["off"] + last["size"] // 2])
    bad[victim["off"]:victim["off"] + 16] = b"\xa5" * 16
    paths = {}
    for name, content in (("clean", clean), ("bad", bad)):
        paths[name] = os.path.join(_dir(), "rec-%s.sft" % name)
        with open(paths[name], "wb") as f:
            f.write(content)
    want = tl.run([tl.SFTRACE, "dump", paths["clean"]]).stdout
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = _dump(paths["bad"], sftrace)
        assert p.returncode == DAMAGED, p.stderr
        assert p.stdout == want
        got, summ = _warnings(p, "dump", paths["bad"])
        assert [o for o, _ in got] == [victim["off"], last["off"]], got
        assert "1 unreadable range skipped (%d bytes)" % victim["size"] in summ, summ
        assert "truncated at offset %d" % last["off"] in summ, summ


def test_decoding_ahead_changes_nothing():
    """The call engine's reader decodes packed chunks ahead in a thread of
    its own (logread.c "decoding ahead"), through a ring of 8 slots. On a
    log of 3 threads x 120 packed chunks (many times the ring) with damage
    spread through it (undecodable records, an EXT record that breaks a
    rule, garbage between chunks, a cut last chunk), every engine command
    prints exactly what it prints with the thread off (SFTRACE_NO_AHEAD),
    warnings and exit status included, also with a thread selection (the
    chunks of the other threads are decoded by nobody) and at -j 2."""
    pr = Pair()
    pr.process(10)
    for i in range(120):
        for tid in (10, 11, 12):
            if i % 37 == 5 and tid == 11:
                recs, hi = pr.calls(8, packed=True)
                pr.damage(lambda l: l.events(10, tid, b"\x01\x01" + recs, tsc_hi=hi, seq=i,
                                             flags=ls.EVENTS_PACKED))
            elif i == 60 and tid == 12:
                # an ALLOC record with 1 payload word (needs 3), packed
                hi, raw = ls.encode([("entry", pr.t, 1)])
                raw += ls.ext(2, arg=1, payload=(7,))
                pr.damage(lambda l: l.events(10, tid, ls.pack(raw, hi), tsc_hi=hi, seq=i,
                                             flags=ls.EVENTS_PACKED))
            elif i == 90 and tid == 10:
                pr.damage(lambda l: l.raw(b"garbage!" * 5))
            else:
                pr.events(10, tid, 20 + (i * 7 + tid) % 30, packed=True, seq=i)
    pr.events(10, 10, 30, packed=True, seq=999)
    bad, _ = pr.write("ahead")
    with open(bad, "r+b") as f:  # cut the last chunk
        f.truncate(os.path.getsize(bad) - 40)
    off = dict(os.environ, SFTRACE_NO_AHEAD="1")
    cmds = [["dump", "--calls", bad], ["report", "-q", "--limit", "0", "--format", "csv", bad],
            ["report", "-q", "-j", "2", "--by", "thread", "--limit", "0", bad],
            ["report", "-q", "--tid", "11", "--limit", "0", bad],
            ["graph", "-q", bad], ["flame", "-q", "--format", "folded", bad, "-o", "-"]]
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        for cmd in cmds:
            a = tl.run([sftrace] + cmd, check=False, timeout=120)
            b = tl.run([sftrace] + cmd, check=False, timeout=120, env=off)
            _no_sanitizer_report(a)
            assert a.returncode == DAMAGED, (cmd, a.returncode, a.stderr[-2000:])
            assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), \
                (sftrace, cmd, a.stderr[-1500:], b.stderr[-1500:])
            if cmd[0] == "dump":
                n = a.stdout.count("\n")
                assert n > 3 * 110 * 20, n  # the calls of every good chunk are there
        got, _ = _warnings(a, "flame", bad)
        # 4 chunks of bad records, the ALLOC, the garbage, the cut chunk
        assert len(got) == 7, got
        assert "truncated" in got[-1][1], got
        assert sum("ALLOC record with 1 payload words" in m for _, m in got) == 1, got
        assert sum("bad packed record" in m for _, m in got) == 4, got


# ---- the fuzzing corpus -----------------------------------------------------------------


def test_fuzz_corpus_never_crashes():
    """Every file of tests/fuzz/corpus (seeds, and the inputs of findings)
    through the ASan+UBSan build of dump and convert: exit 0, 1 (not a log)
    or 3 (damaged), never a signal or a sanitizer report; a trace convert
    writes passes the checker. Then through every other command that reads
    logs (tests/fuzz/run_tools.py: convert --format sqlite, report, info,
    those this build has)."""
    import sys
    sys.path.insert(0, FUZZ)
    import run_tools
    corpus = os.path.join(FUZZ, "corpus")
    files = sorted(os.listdir(corpus))
    assert len(files) >= 10, files
    d = _dir("fuzz")
    run_tools.CMDS[:] = [c for c in run_tools.commands() if c[0] != "dump" and "OUT.pb" not in c]
    for name in files:
        path = os.path.join(corpus, name)
        p = _dump(path, tl.SFTRACE_ASAN)
        assert p.returncode in (0, 1, DAMAGED), (name, p.returncode, p.stderr[-2000:])
        out = os.path.join(d, name + ".pb")
        if os.path.exists(out):
            os.unlink(out)
        p = tl.run([tl.SFTRACE_ASAN, "convert", "-q", path, "-o", out], check=False, timeout=120)
        assert p.returncode in (0, 1, DAMAGED), (name, p.returncode, p.stderr[-2000:])
        _no_sanitizer_report(p)
        if p.returncode != 1:
            _summary(out)
        else:
            assert not os.path.exists(out)
        res = run_tools.one(path, d)
        assert res is None, (name, res)


def test_resync_is_not_quadratic():
    """8 MB of crafted candidates (chunk headers whose size reaches a bad
    record at the end and a bad header after it, so each fails only after
    reading to the end): the scan's checks are bounded, so dump finishes
    (the old scan took minutes; the timeout catches a hang, not speed)."""
    import struct
    log = ls.Log()
    log.process(1, clock=ls.MONO)
    start, n = len(log.data), 8 << 20
    total = start + n + 32
    blocks = bytearray()
    for off in range(start, start + n, 16):
        blocks += struct.pack("<IHHII", ls.CHUNK_MAGIC if off > start else 0x12345678,
                              ls.EVENTS, 0, total - 16 - off, 1)
    blocks += ls.ext(ls.EXT_RET, 0, 0, [], nwords=5) + b"\0" * 8 + b"G" * 16
    log.raw(bytes(blocks))
    path = log.write(os.path.join(_dir(), "quadratic.sft"))
    p = tl.run([tl.SFTRACE, "dump", path], check=False, timeout=60)
    assert p.returncode == DAMAGED, p.stderr
    assert "damaged log: 1 unreadable range skipped (%d bytes)" % (n + 32) in p.stderr, p.stderr
    os.unlink(path)


def test_pipe_size_costs_no_memory():
    """Through a pipe the file size is unknown: a chunk header claiming 1 GiB
    must not make the reader allocate it before the bytes arrive (a fuzzing
    finding: 140 MB of RSS for a 160-byte input under ASan)."""
    log = ls.Log()
    log.process(1, clock=ls.MONO)
    log.raw(ls.chunk_header(ls.EVENTS, 0, 1 << 30, 1) + b"\0" * 64)
    path = log.write(os.path.join(_dir(), "pipe-huge.sft"))
    code = ("import resource, subprocess, sys\n"
            "cat = subprocess.Popen(['cat', sys.argv[2]], stdout=subprocess.PIPE)\n"
            "p = subprocess.run([sys.argv[1], 'dump', '/dev/stdin'], stdin=cat.stdout,\n"
            "                   capture_output=True)\n"
            "cat.wait()\n"
            "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        rc, rss_kb = map(int, tl.run(["python3", "-c", code, sftrace, path]).stdout.split())
        assert rc == DAMAGED, rc
        assert rss_kb < 60 * 1024, "%s used %d KB for a 160-byte log" % (sftrace, rss_kb)


def _big_log(name, nchunks):
    """A log of nchunks EVENTS chunks of 2,000 calls each (32 KB raw), one
    chunk's records reused with a rising tsc_hi: nchunks x 32 KB."""
    pair = Pair()
    pair.process(1)
    recs, _ = pair.calls(2000)
    for k in range(nchunks):
        pair.good.events(1, 1, recs, tsc_hi=k + 1)
    return pair.good.write(os.path.join(_dir(), name))


def _truncated_while_dumped(path, size, sftrace, env=None):
    """Dump path with its stdout a pipe nobody reads: dump stops at its first
    chunks, with the log open (and mapped). Then truncate the log to size,
    and read the rest of the output. Returns (returncode, stderr)."""
    p = subprocess.Popen([sftrace, "dump", path], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    try:
        assert p.stdout.readline()  # open, and its output is under way
        os.truncate(path, size)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, err.decode()


def test_truncated_while_being_read():
    """A log truncated by another process while a tool reads it (the reader
    maps a regular file: a page past the new end raises SIGBUS). Truncated
    far ahead of the reader: the reader asks the file's size every few MB
    before reading on, so it sees the new end and reads the log as
    truncated there, as read() would (exit 3, a truncation warning).
    Truncated under the reader (to 0: inside what it already checked): the
    tool ends with a message naming the file and exit 1, never a crash. The
    read() fallback (SFTRACE_NO_MMAP) sees a truncated log in both cases."""
    nochunks = dict(os.environ, SFTRACE_NO_MMAP="1")
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        # 24 MB, truncated at 12 MB: a chunk boundary plus a partial chunk
        path = _big_log("truncated-later.sft", 768)
        cut = 12 * 1024 * 1024 + 1000
        rc, err = _truncated_while_dumped(path, cut, sftrace)
        assert rc == DAMAGED, (rc, err)
        assert "truncated at offset" in err and "the log ends here" in err, err
        assert "Sanitizer" not in err and "runtime error" not in err, err
        # truncated under the reader
        path = _big_log("truncated-now.sft", 96)
        rc, err = _truncated_while_dumped(path, 0, sftrace)
        assert rc == 1, (rc, err)
        assert "sftrace: %s: changed while being read" % path in err, err
        assert "Sanitizer" not in err and "runtime error" not in err, err
        # the read() path: a truncated log
        path = _big_log("truncated-read.sft", 96)
        rc, err = _truncated_while_dumped(path, 4096, sftrace, env=nochunks)
        assert rc == DAMAGED, (rc, err)
        assert "the log ends here" in err, err
    for name in ("truncated-later.sft", "truncated-now.sft", "truncated-read.sft"):
        os.unlink(os.path.join(_dir(), name))
