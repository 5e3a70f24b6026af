"""t_pipe.py - logs read through a real pipe (`cat LOG | sftrace CMD -`).

Several passes read a log, each opening it by its path (the flows' key scan,
the engine's survey, report's workers). Through a pipe the second open read
on from where the first had stopped: dump showed a part of a multi-chunk
log as damage, and a log with keys lost its flows. The reader now copies a
stream to a temporary file at its first open (lib/logread.c). Each tool's
output through a pipe must equal its output on the file itself.
"""
import json
import os

import tl
import t_flows


def _same(cmd, log, pipe_path="-", fix=None):
    """cmd + [log] and cmd + ['-'] fed by a pipe give the same stdout."""
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        want = tl.run([sftrace] + cmd + [log])
        got = tl.run_piped([sftrace] + cmd + [pipe_path], log)
        assert got.returncode == want.returncode == 0, (cmd, got.stderr)
        assert "AddressSanitizer" not in got.stderr and "runtime error" not in got.stderr
        a, b = want.stdout, got.stdout
        if fix:
            a, b = fix(a), fix(b)
        else:
            b = b.replace("# %s:" % pipe_path, "# %s:" % log)
        assert a == b, (cmd, a[:2000], b[:2000])
        assert "damaged" not in got.stderr, got.stderr


def test_recorded_log_through_a_pipe():
    """threads.c: four threads, many 64 KiB buffers, so the log's chunks
    cross the pipe's 64 KiB reads. dump (per thread and --sorted, with
    lines), report with two workers, graph, folded stacks, info and the
    Perfetto file: the same as from the file."""
    prog = tl.build_c("threads.c")
    log = os.path.join(tl.outdir("pipe"), "threads.log")
    tl.record([prog], log)
    assert os.path.getsize(log) > 4 * 65536, os.path.getsize(log)
    _same(["dump"], log)
    _same(["dump", "--sorted", "-l"], log, pipe_path="/dev/stdin")
    _same(["dump", "--calls"], log)

    def unlog(text):
        j = json.loads(text)
        j.pop("log", None)
        return j
    _same(["report", "-q", "-j", "2", "--format", "json", "--limit", "0"], log, fix=unlog)
    _same(["graph", "-q"], log)
    _same(["flame", "-q", "--format", "folded", "-o", "-"], log)

    def uninfo(text):
        j = json.loads(text)
        j["log"].pop("path", None)
        return j
    _same(["info", "-q", "--format", "json"], log, fix=uninfo)
    pb = os.path.join(tl.outdir("pipe"), "threads-%s.pb")
    tl.run([tl.SFTRACE, "convert", "-q", log, "-o", pb % "file"])
    p = tl.run_piped([tl.SFTRACE, "convert", "-q", "-", "-o", pb % "pipe"], log)
    assert p.returncode == 0, p.stderr
    with open(pb % "file", "rb") as a, open(pb % "pipe", "rb") as b:
        assert a.read() == b.read()


def test_flows_through_a_pipe():
    """A log whose functions recorded keys: the flows' scan opens the log a
    second time; through a pipe the flows were lost."""
    prog, rules = t_flows._pool()
    log = os.path.join(tl.outdir("pipe"), "pool.log")
    n = 6
    tl.record([prog, str(n)], log, extra=["--flows", rules])
    text = tl.run([tl.SFTRACE, "dump", "--flows", rules, log]).stdout
    assert text.count("flow-in") == 3 * n, text[:2000]
    _same(["dump", "--flows", rules], log)


def test_not_a_log_through_a_pipe():
    """An empty pipe, a pipe of zeros, a pipe of text: one clear message each,
    exit status 1, nothing copied for ever (/dev/zero never ends)."""
    d = tl.outdir("pipe")
    empty = os.path.join(d, "empty")
    open(empty, "w").close()
    text = os.path.join(d, "text")
    with open(text, "w") as f:
        f.write("hello, this is not a log\n" * 1000)
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = tl.run_piped([sftrace, "dump", "-"], empty)
        assert p.returncode == 1 and "-: offset 0: empty file, not an sftrace log" in p.stderr, \
            p.stderr
        p = tl.run_piped([sftrace, "report", "-"], text)
        assert p.returncode == 1 and "-: offset 0: not an sftrace log (magic)" in p.stderr, \
            p.stderr
        p = tl.run([sftrace, "info", "/dev/zero"], check=False, timeout=30)
        assert p.returncode == 1 and "/dev/zero: offset 0: not an sftrace log (magic)" in p.stderr, \
            p.stderr
