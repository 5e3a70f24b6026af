"""t_invisible.py - the runtime must be invisible to the traced program (issue 17).

1. Inputs the runtime reads: a filter that is /dev/zero, a FIFO, a directory
   or larger than the limit is refused at once with a message naming the file
   and what it is, by `sftrace record -f`, by record for SFTRACE_FILTER, by the
   runtime itself (the program then runs untraced, with its own output) and by
   `sftrace filter --list`; nothing blocks (a FIFO with no writer) or reads
   without end (/dev/zero). A filter with CRLF line endings works exactly as
   the same file with LF.
2. A set-user-ID or set-group-ID program of another user cannot be traced by
   preloading (ld.so drops LD_PRELOAD): record says so and why, and does not
   run it; the same file set-ID to the user running record is traced.
3. Stack: a thread with a PTHREAD_STACK_MIN stack recursing with 280-byte
   frames reaches the same depth traced as untraced with every call on the
   slow path (an --args filter), and the slow path takes at most a fixed
   small number of bytes of the program's stack (measured by painting it).
4. A signal handler on a small sigaltstack runs instrumented code, on the
   slow path too, without overflowing it.

No timing assertions: a hang shows as a subprocess timeout.
"""
import os
import pwd
import shutil
import stat

import tl

SLOW_FRAME_MAX = 160  # bytes of the program's stack the slow path may use (docs/design.md)
LIMIT = 256 << 20  # SF_FILTER_MAX_SIZE, common/filterfmt.h


def _fresh(*parts):
    d = os.path.join(tl.outdir("invisible"), *parts)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def _calls_bin():
    return tl.build_c("filter_calls.c", out=os.path.join(tl.outdir("bin"), "inv_calls"),
                      flags=tl.WARN_CFLAGS + ["-fno-optimize-sibling-calls"], libs=["-lpthread"])


# ---- 1. filter inputs ---------------------------------------------------------

def _bad_inputs(d):
    """(path, what the message says it is) for each input that must be refused."""
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    big = os.path.join(d, "big.txt")
    with open(big, "wb") as f:
        f.write(b"sftrace-filter 1\n")
        f.truncate(LIMIT + 1)  # sparse: costs no disk
    hint = ", not a regular file (write the filter to a file first)"
    return [("/dev/zero", "is a character device" + hint),
            (fifo, "is a FIFO (named pipe)" + hint),
            (d, "is a directory" + hint),
            (big, "is %d bytes, more than the limit of 256 MiB" % (LIMIT + 1))]


def test_record_refuses_filter_inputs():
    d = _fresh("inputs_record")
    prog = _calls_bin()
    log = os.path.join(d, "x.log")
    for path, what in _bad_inputs(d):
        for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
            p = tl.record([prog, "3"], log, extra=["--solib", tl.RUNTIME, "-f", path],
                          check=False, timeout=60, sftrace=sftrace)
            assert p.returncode == 2, (path, p.returncode, p.stderr)
            assert "sftrace record: filter %s: %s" % (path, what) in p.stderr, (path, p.stderr)
            assert p.stdout == "", "the program ran: %s" % p.stdout
            assert not os.path.exists(log), "record created the log before refusing"
            p = tl.record([prog, "3"], log, extra=["--solib", tl.RUNTIME],
                          env={"SFTRACE_FILTER": path}, check=False, timeout=60, sftrace=sftrace)
            assert p.returncode == 2, (path, p.returncode, p.stderr)
            assert ("sftrace record: filter %s (SFTRACE_FILTER): %s" % (path, what)
                    in p.stderr), (path, p.stderr)
            assert p.stdout == "" and not os.path.exists(log)


def test_runtime_refuses_filter_inputs():
    """Without record: the runtime itself says why and the program runs untraced,
    doing exactly what it does without the runtime."""
    d = _fresh("inputs_runtime")
    prog = _calls_bin()
    base = tl.run([prog, "3"])
    log = os.path.join(d, "x.log")
    for path, what in _bad_inputs(d):
        env = {"LD_PRELOAD": tl.RUNTIME, "SFTRACE_OUTPUT_FILE": log, "SFTRACE_FILTER": path}
        p = tl.run([prog, "3"], env=env, timeout=60)
        lines = p.stderr.splitlines()
        assert lines == ["sftrace: filter %s: %s" % (path, what),
                         "sftrace: not tracing: the filter could not be used"], (path, p.stderr)
        # pids and tids differ between runs: compare the rest
        strip = lambda out: [x for x in out.splitlines() if "tid" not in x and "pid" not in x]
        assert strip(p.stdout) == strip(base.stdout), (p.stdout, base.stdout)


def test_filter_list_refuses_inputs():
    d = _fresh("inputs_list")
    prog = _calls_bin()
    out = os.path.join(d, "f.txt")
    for path, what in _bad_inputs(d):
        for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
            p = tl.run([sftrace, "filter", "-p", prog, "--list", path, "-o", out], check=False,
                       timeout=60)
            assert p.returncode != 0, (path, p.stderr)
            assert "sftrace filter: --list %s: %s" % (path, what) in p.stderr, (path, p.stderr)
            assert not os.path.exists(out)
    # CRLF list lines name the same functions
    lst = os.path.join(d, "crlf.list")
    with open(lst, "wb") as f:
        f.write(b"# functions\r\nleaf\r\n^worker$\r\n")
    p = tl.run([tl.SFTRACE, "filter", "-p", prog, "--list", lst, "--exact", "-v", "-o", out])
    assert sorted(p.stdout.split()) == ["leaf"], p.stdout  # --exact: only the whole name
    p = tl.run([tl.SFTRACE, "filter", "-p", prog, "--list", lst, "-v", "-o", out])
    assert sorted(p.stdout.split()) == ["leaf", "worker"], p.stdout


def _event_counts(log):
    events, _ = tl.dump(log)
    return tl.counts(events, "entry")


def test_crlf_filter_is_accepted():
    d = _fresh("crlf")
    prog = _calls_bin()
    lf = os.path.join(d, "lf.txt")
    tl.run([tl.SFTRACE, "filter", "-p", prog, "-r", "^(leaf|worker)$", "--args", "^leaf$",
            "-o", lf])
    crlf = os.path.join(d, "crlf.txt")
    with open(lf, "rb") as f:
        data = f.read()
    assert b"\r" not in data
    with open(crlf, "wb") as f:
        f.write(data.replace(b"\n", b"\r\n"))
    want = None
    for path in (lf, crlf):
        log = os.path.join(d, "x.log")
        p = tl.record([prog, "3"], log, extra=["-f", path])
        assert "filter" not in p.stderr, p.stderr
        c = _event_counts(log)
        assert set(c) == {"leaf", "worker"} and c["worker"] == 1 and c["leaf"] > 0, c
        assert want is None or c == want, (c, want)
        want = c
        tl.run([tl.SFTRACE, "dump", log])
    # the message for another version names it without the \r
    v2 = os.path.join(d, "v2.txt")
    with open(v2, "wb") as f:
        f.write(data.replace(b"sftrace-filter 1", b"sftrace-filter 2").replace(b"\n", b"\r\n"))
    p = tl.record([prog, "3"], os.path.join(d, "y.log"), extra=["-f", v2], check=False)
    assert p.returncode == 2
    assert ("sftrace record: filter %s: line 1: filter version '2' is not supported (1)" % v2
            in p.stderr), p.stderr
    # an empty regular file is still "empty file"
    empty = os.path.join(d, "empty.txt")
    open(empty, "w").close()
    p = tl.record([prog, "3"], os.path.join(d, "y.log"), extra=["-f", empty], check=False)
    assert p.returncode == 2 and "filter %s: empty file" % empty in p.stderr, p.stderr


# ---- 2. set-ID programs -------------------------------------------------------

def _need_root():
    if os.geteuid() != 0:
        raise tl.Skip("needs root to make a set-ID binary of another user")
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        raise tl.Skip("no user nobody")


def _setid_copy(d, name, uid, gid, mode):
    prog = os.path.join(d, name)
    shutil.copy(_calls_bin(), prog)
    os.chown(prog, uid, gid)
    os.chmod(prog, mode)
    return prog


def test_setid_program_is_refused():
    nb = _need_root()
    d = _fresh("setid")
    os.chmod(d, 0o1777)
    log = os.path.join(d, "x.log")
    cases = [(_setid_copy(d, "suid", nb.pw_uid, 0, 0o4755), "set-user-ID (to user nobody)"),
             (_setid_copy(d, "sgid", 0, nb.pw_gid, 0o2755), "set-group-ID (to group %s)"
              % __import__("grp").getgrgid(nb.pw_gid).gr_name)]
    for prog, what in cases:
        for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
            p = tl.record([prog, "3"], log, extra=["--solib", tl.RUNTIME], check=False,
                          sftrace=sftrace)
            assert p.returncode == 1, (prog, p.returncode, p.stderr)
            assert p.stderr.startswith("sftrace record: %s is %s: it runs with other "
                                       "credentials" % (prog, what)), p.stderr
            assert "cannot be traced as a set-ID program" in p.stderr, p.stderr
            assert "no instrumented code" not in p.stderr
            assert p.stdout == "" and not os.path.exists(log), "the program ran"
    # the control: set-user-ID to the user running record changes no credentials,
    # so preloading works and the program is traced
    own = _setid_copy(d, "suid_own", os.getuid(), os.getgid(), 0o6755)
    p = tl.record([own, "3"], log)
    c = _event_counts(log)
    assert c["main"] == 1 and c["worker"] == 1, c


def test_setid_program_refused_for_unprivileged_user():
    """As an ordinary user (nobody, via setpriv), a set-user-ID root program."""
    nb = _need_root()
    if not shutil.which("setpriv"):
        raise tl.Skip("no setpriv to run record as another user")
    d = _fresh("setid_user")
    os.chmod(d, 0o1777)
    prog = _setid_copy(d, "suid_root", 0, 0, 0o4755)
    plain = _setid_copy(d, "plain", 0, 0, 0o755)
    for p in (tl.SFTRACE, tl.RUNTIME):
        st = os.stat(p)
        if not st.st_mode & stat.S_IROTH:
            raise tl.Skip("%s is not readable by nobody" % p)
    log = os.path.join(d, "x.log")
    as_nobody = ["setpriv", "--reuid=%d" % nb.pw_uid, "--regid=%d" % nb.pw_gid,
                 "--clear-groups", tl.SFTRACE, "record", "-o", log, "--"]
    p = tl.run(as_nobody + [prog, "3"], check=False, cwd=d)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stderr.startswith("sftrace record: %s is set-user-ID (to user root)" % prog), p.stderr
    assert not os.path.exists(log)
    p = tl.run(as_nobody + [plain, "3"], cwd=d)
    c = _event_counts(log)
    assert c["main"] == 1 and c["worker"] == 1, c
