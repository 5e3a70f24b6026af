"""t_invisible.py - the runtime must be invisible to the traced program (issue 17).

1. Inputs the runtime reads: a filter that is /dev/zero, a FIFO, a directory
   or larger than the limit is refused at once with a message naming the file
   and what it is: by `sftrace record -f` before it starts the program (as for
   a missing file), by the runtime itself for SFTRACE_FILTER, with or without
   record (the program then runs untraced, with its own output, as for a
   filter with a bad line), and by `sftrace filter --list`; nothing blocks (a FIFO with no writer) or reads
   without end (/dev/zero). A filter with CRLF line endings works exactly as
   the same file with LF.
2. A set-user-ID or set-group-ID program of another user, or one with file
   capabilities run by another user than root, cannot be traced by preloading
   (AT_SECURE: ld.so drops LD_PRELOAD): record says so and why, and does not
   run it; the same file set-ID to the user running record (or with
   capabilities, run by root) is traced.
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
            # SFTRACE_FILTER is the runtime's to read: the program runs untraced
            p = tl.record([prog, "3"], log, extra=["--solib", tl.RUNTIME],
                          env={"SFTRACE_FILTER": path}, check=False, timeout=60, sftrace=sftrace)
            assert p.returncode == 0 and "sum " in p.stdout, (path, p.returncode, p.stderr)
            assert "sftrace: filter %s: %s\n" % (path, what) in p.stderr, (path, p.stderr)
            events, _ = tl.dump(log)
            assert events == [], events[:4]


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
    # (record -f refuses it before the run, the runtime runs untraced)
    p = tl.record([prog, "3"], os.path.join(d, "y.log"), extra=["-f", v2], check=False)
    assert p.returncode == 2 and p.stderr == (
        "sftrace record: filter %s: line 1: filter version '2' is not supported (1)\n" % v2), \
        p.stderr
    p = tl.record([prog, "3"], os.path.join(d, "y.log"), env={"SFTRACE_FILTER": v2})
    assert ("sftrace: filter %s: line 1: filter version '2' is not supported (1)\n" % v2
            in p.stderr), p.stderr
    # an empty regular file is still "empty file"
    empty = os.path.join(d, "empty.txt")
    open(empty, "w").close()
    p = tl.record([prog, "3"], os.path.join(d, "y.log"), extra=["-f", empty], check=False)
    assert p.returncode == 2 and p.stderr == "sftrace record: filter %s: empty file\n" % empty, \
        p.stderr
    p = tl.record([prog, "3"], os.path.join(d, "y.log"), env={"SFTRACE_FILTER": empty})
    assert "sftrace: filter %s: empty file\n" % empty in p.stderr, p.stderr


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
            assert p.stderr.startswith("sftrace record: %s is %s: it gains privileges when it "
                                       "starts\n  (AT_SECURE)" % (prog, what)), p.stderr
            assert "cannot be traced so" in p.stderr, p.stderr
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
    # file capabilities: AT_SECURE for nobody, not for root (who has them all)
    if not shutil.which("setcap"):
        raise tl.Skip("no setcap for the capabilities case")
    capped = _setid_copy(d, "capped", 0, 0, 0o755)
    if tl.run(["setcap", "cap_net_bind_service+ep", capped], check=False).returncode != 0:
        raise tl.Skip("setcap failed here (no security xattrs on %s?)" % d)
    os.unlink(log)
    p = tl.run(as_nobody + [capped, "3"], check=False, cwd=d)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert p.stderr.startswith("sftrace record: %s is given file capabilities (getcap %s)"
                               % (capped, capped)), p.stderr
    assert not os.path.exists(log)
    p = tl.record([capped, "3"], log)
    c = _event_counts(log)
    assert c["main"] == 1 and c["worker"] == 1, c


# ---- 3. stack ---------------------------------------------------------------

# bytes of the program's stack below an instrumented function's frame that the
# trampoline takes (docs/design.md): the fast path, and the slow path, which
# runs its C code and keeps the extended state on the thread's side stack
FAST_BYTES = {"x86_64": 32, "aarch64": 48}
SLOW_BYTES = {"x86_64": 112, "aarch64": 96}
WRAPPER_BYTES = 128  # the runtime's signal wrapper, between the kernel's frame and the handler


def _arch():
    m = os.uname().machine
    if m not in SLOW_BYTES:
        raise tl.Skip("no stack figures for %s" % m)
    return m


def _stack_bin():
    return tl.build_c("inv_stack.c", flags=tl.WARN_CFLAGS + ["-fno-optimize-sibling-calls"],
                      libs=["-lpthread"])


def _args_filter(prog, d, first=True):
    """Every call of rec, leaf and small on the slow path (their arguments are
    recorded); with first, main and thread_fn are recorded too, so that each
    thread has its slot (and side stack) before the recursion or the signal;
    without, the thread's first event (which gets it its slot, on the spare
    side stack) is in the recursion or the handler."""
    f = os.path.join(d, "args%s.filter" % ("" if first else "_first"))
    sel = "^(main|thread_fn|rec|leaf|small)$" if first else "^(rec|leaf|small)$"
    tl.run([tl.SFTRACE, "filter", "-p", prog, "-r", sel, "--args", "^(rec|leaf|small)$",
            "-o", f])
    return f


def _runs(prog, args, how, d, t=tl):
    """Run prog args untraced (how None), traced with every call on the fast
    path, or traced with the slow path (how = a filter); True if it finished.
    t: tl, or t_aarch64's for aarch64 builds under qemu."""
    if how is None:
        p = t.run([prog] + args, check=False, timeout=60)
    else:
        extra = ["-f", how] if how != "fast" else []
        p = t.record([prog] + args, os.path.join(d, "s.log"), extra=extra, check=False,
                     timeout=60)
    if p.returncode not in (0, 139, -11):
        raise AssertionError("%s %s: exit %d\n%s" % (prog, args, p.returncode, p.stderr))
    want = ("reached %s" if args[0] == "depth" else "handled %s") % args[1]
    if p.returncode == 0 and p.stdout.strip() != want:
        raise AssertionError("%s %s: exit 0 but printed %r" % (prog, args, p.stdout))
    return p.returncode == 0


def _max_ok(ok, lo, hi):
    """The largest n in [lo, hi) with ok(n), ok being monotonic (lo is ok)."""
    assert ok(lo), "fails already at %d" % lo
    assert not ok(hi), "still works at %d" % hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _same_depth(prog, d, t=tl):
    flt = _args_filter(prog, d)
    untraced = _max_ok(lambda n: _runs(prog, ["depth", str(n)], None, d, t), 1, 4000)
    for how in ("fast", flt, _args_filter(prog, d, first=False)):
        assert _runs(prog, ["depth", str(untraced)], how, d, t), \
            "traced (%s) does not reach the untraced depth %d" % (how, untraced)
        assert not _runs(prog, ["depth", str(untraced + 1)], how, d, t), \
            "traced (%s) goes deeper than untraced (%d): the test measures nothing" % (how,
                                                                                     untraced)


def test_min_stack_thread_same_depth():
    """A PTHREAD_STACK_MIN thread (16 KiB on x86_64, 128 KiB on aarch64)
    recursing with ~280-byte frames dies at the
    same depth traced as untraced: with the fast path, and with every call
    on the slow path."""
    _arch()
    _same_depth(_stack_bin(), _fresh("depth"))


def _painted(prog, how, d, n=10, t=tl):
    if how is None:
        p = t.run([prog, "paint", str(n)])
    else:
        extra = ["-f", how] if how != "fast" else []
        p = t.record([prog, "paint", str(n)], os.path.join(d, "p.log"), extra=extra)
    assert p.stdout.startswith("used "), p.stdout
    return int(p.stdout.split()[1])


def _stack_taken(prog, d, arch, t=tl):
    flt = _args_filter(prog, d)
    bases = []
    for n in (10, 20):
        base = _painted(prog, None, d, n, t)
        bases.append(base)
        fast = _painted(prog, "fast", d, n, t)
        assert fast - base == FAST_BYTES[arch], (n, base, fast)
        for f in (flt, _args_filter(prog, d, first=False)):
            slow = _painted(prog, f, d, n, t)
            assert slow - base == SLOW_BYTES[arch], (n, f, base, slow)
            # the slow path ran: the arguments are in the log
            events, _ = tl.dump(os.path.join(d, "p.log"))
            args = [int(e.extra[0], 16) for e in events if e.kind == "args" and e.func == "rec"]
            assert args == list(range(n, 0, -1)) * 2, args  # painted twice
    assert bases[1] - bases[0] >= 10 * 256, bases  # the frames are real


def test_stack_taken_from_the_program():
    """Painting the thread's stack: below the deepest frame (a leaf with no
    frame of its own), the fast path takes exactly FAST_BYTES, the slow path
    SLOW_BYTES, also when the thread's first event, which sets up its slot,
    is in the painted part; the recursion above takes nothing more traced."""
    _stack_taken(_stack_bin(), _fresh("paint"), _arch())


def test_aarch64_stack():
    """The same two on aarch64, under qemu-user (t_aarch64.py)."""
    import t_aarch64
    t_aarch64._setup()
    t = t_aarch64._Tl()
    prog = t.build_c("inv_stack.c", flags=tl.WARN_CFLAGS + ["-fno-optimize-sibling-calls"],
                     libs=["-lpthread"])
    d = _fresh("aarch64")
    p = t.record([prog, "depth", "3"], os.path.join(d, "probe.log"))
    if "no instrumented code found" in p.stderr:
        raise tl.Skip("the aarch64 runtime records nothing under qemu-user here (its helper "
                      "process does not start: qemu refuses clone with an exit signal other "
                      "than SIGCHLD)")
    _stack_taken(prog, d, "aarch64", t)
    _same_depth(prog, d, t)


def test_backtrace_from_the_side_stack():
    """gdb stopped in the slow path's C code, on the side stack (inside the
    thread's slot, TLS side 0 while in use), unwinds through the trampoline
    into the recursion and the thread's start."""
    if not tl.have("gdb"):
        raise tl.Skip("gdb not installed")
    d = _fresh("gdb")
    prog = _stack_bin()
    flt = _args_filter(prog, d)
    env = {"SFTRACE_OUTPUT_FILE": os.path.join(d, "g.log"), "SFTRACE_FILTER": flt}
    # the hits: main's entry, thread_fn's entry, then rec's: stop at the 6th
    cmd = ["gdb", "-q", "-batch", "-ex", "set environment LD_PRELOAD=" + tl.RUNTIME,
           "-ex", "set breakpoint pending on", "-ex", "break sf_slow_event", "-ex", "run",
           "-ex", "ignore 1 4", "-ex", "continue", "-ex", "bt",
           "-ex", "printf \"SP %lu\\n\", $sp",
           "-ex", "printf \"SLOT %lu\\n\", (unsigned long)sf_tls.slot",
           "-ex", "printf \"SIDE %lu\\n\", (unsigned long)sf_tls.side",
           "-ex", "frame 2", "-ex", "printf \"SP2 %lu\\n\", $sp", "-ex", "kill",
           "--args", prog, "depth", "8"]
    p = tl.run(cmd, env=env, check=False, timeout=120)
    bt = [x for x in p.stdout.splitlines() if x.startswith("#")]
    vals = dict(x.split() for x in p.stdout.splitlines()
                if x.split()[:1] in (["SP"], ["SLOT"], ["SIDE"], ["SP2"]))
    assert len(bt) >= 6, p.stdout + p.stderr
    assert "sf_slow_event" in bt[0] and "sf_trampoline" in bt[1], bt
    assert all(" rec " in x or "rec (" in x for x in bt[2:5]), bt
    assert any("thread_fn" in x for x in bt) and any("start_thread" in x for x in bt), bt
    sp, slot, sp2 = int(vals["SP"]), int(vals["SLOT"]), int(vals["SP2"])
    assert slot <= sp < slot + 65536, "not on the side stack: %r" % vals
    assert vals["SIDE"] == "0", vals
    assert not slot <= sp2 < slot + 65536, "rec's frame on the side stack: %r" % vals


# ---- 4. signal handlers on a small sigaltstack -------------------------------

def test_handler_on_small_altstack():
    """The smallest sigaltstack a handler making 20 nested calls runs on is at
    most the slow path's SLOW_BYTES (and the runtime's signal wrapper frame)
    larger traced, with every call on the slow path, than untraced; and with
    one too small, the traced program dies of SIGSEGV as the untraced one does."""
    arch = _arch()
    d = _fresh("altstack")
    prog = _stack_bin()
    flt = _args_filter(prog, d)
    size = lambda how: _max_ok(
        lambda n: not _runs(prog, ["altstack", "20", str(n * 16)], how, d), 2048 // 16,
        65536 // 16) * 16 + 16
    untraced = size(None)
    # the last: the main thread's first event is in the handler
    for how in ("fast", flt, _args_filter(prog, d, first=False)):
        traced = size(how)
        extra = traced - untraced
        print("altstack: untraced %d, traced (%s) %d" % (untraced, how, traced))
        assert 0 <= extra <= SLOW_BYTES[arch] + WRAPPER_BYTES, (how, untraced, traced)
        # the signal was handled, and its calls recorded
        assert _runs(prog, ["altstack", "20", str(traced)], how, d)
        events, _ = tl.dump(os.path.join(d, "s.log"))
        assert tl.counts(events, "entry")["small"] == 20, tl.counts(events, "entry")
