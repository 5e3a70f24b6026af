"""t_safe.py - the runtime keeps the traced program's behaviour and is safe
to use in shared directories and with privileged programs.

- dlopen/dlmopen by bare name search the caller's RUNPATH/RPATH ($ORIGIN,
  $PLATFORM, $LIB) exactly as without tracing, from the executable and from
  a shared library with its own RUNPATH; the library found is still traced.
- Children that run no instrumented code (system, popen, fork + _exit,
  fork + exec) write no chunk before their PROCESS chunk, and the log dumps.
- A setuid or setgid program linked with -lsftrace records nothing and
  touches no file the environment names.
- Logs: a symbolic link planted by another user at the log path is refused
  by `record -o` and by the runtime, the runtime's temporary file has an
  unpredictable name and follows no planted link, logs are mode 0600.
Every test also runs the case without the fix's precondition (untraced, or
not setuid) to show the test can tell the difference.
"""
import collections
import os
import pwd
import re
import shutil
import stat
import struct

import t_abi
import tl

NOBODY = "nobody"


def _dir(*parts):
    d = os.path.join(tl.outdir("safe"), *parts)
    os.makedirs(d, exist_ok=True)
    return d


def _fresh(*parts):
    d = os.path.join(tl.outdir("safe"), *parts)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def _cc(src, out, flags=(), shared=False, libs=()):
    """Build tests/programs/<src> with XRay into `out` (always: rpaths differ per test)."""
    cmd = ["clang"] + tl.XRAY_CFLAGS + tl.WARN_CFLAGS + list(flags)
    if shared:
        cmd += ["-shared", "-fPIC"]
    tl.run(cmd + [os.path.join(tl.PROGS, src), "-o", out] + list(libs))
    return out


def _dynamic(binary, tag):
    """Values of the dynamic-section entries `tag` (RPATH, RUNPATH) of binary."""
    out = tl.run(["readelf", "-d", binary]).stdout
    return re.findall(r"\(%s\)\s+Library r(?:un)?path: \[(.*)\]" % tag, out)


# ---- 1. dlopen search paths --------------------------------------------------

DEP_CALLS = 25


def _dep(where, tag):
    os.makedirs(where, exist_ok=True)
    return _cc("safe_dl_dep.c", os.path.join(where, "libsfdep.so"), flags=["-DDEP_TAG=%d" % tag],
               shared=True)


def _dl_check(prog, args, tag, name):
    """Untraced and traced runs find the same copy; the traced one records it."""
    plain = tl.run([prog] + args, check=False)
    assert plain.returncode == 0 and tl.kv(plain.stdout, "tag") == tag, \
        "untraced %s: %d\n%s%s" % (name, plain.returncode, plain.stdout, plain.stderr)
    log = os.path.join(_dir(), name + ".log")
    p = tl.record([prog] + args, log, check=False)
    assert p.returncode == 0, "traced %s: rc %d\n%s%s" % (name, p.returncode, p.stdout, p.stderr)
    assert p.stdout == plain.stdout, (p.stdout, plain.stdout)
    events, _ = tl.dump(log)
    _, chunks = tl.read_log(log)
    tl.check_log_complete(chunks, events)
    # the dlopen'd library was patched and traced
    assert tl.counts(events, "entry")["dep_work"] == DEP_CALLS, tl.counts(events, "entry")
    assert tl.counts(events, "exit")["dep_work"] == DEP_CALLS
    objs = [c["path"] for c in chunks if c["type"] == tl.CHUNK_OBJECT]
    assert any(o.endswith("/libsfdep.so") for o in objs), objs
    return events, chunks


def _dl_case(name, ldflags, subdir, tag):
    d = _fresh("dl", name)
    prog = _cc("safe_dl_main.c", os.path.join(d, "main"), libs=ldflags + ["-ldl"])
    # decoys where libsftrace.so's own search (the defaults, the build dir)
    # or the current directory would look: only the caller's path finds tag
    _dep(os.path.join(d, subdir), tag)
    return d, prog


def test_dlopen_runpath_origin():
    d, prog = _dl_case("runpath", ["-Wl,-rpath,$ORIGIN/sub"], "sub", 11)
    assert _dynamic(prog, "RUNPATH") == ["$ORIGIN/sub"], _dynamic(prog, "RUNPATH")
    _dl_check(prog, ["open", "libsfdep.so"], 11, "dl-runpath")


def test_dlopen_rpath_origin():
    # (worked before too: glibc adds the executable's own RPATH to any search)
    d, prog = _dl_case("rpath", ["-Wl,--disable-new-dtags", "-Wl,-rpath,$ORIGIN/rsub"], "rsub", 12)
    assert _dynamic(prog, "RPATH") == ["$ORIGIN/rsub"] and not _dynamic(prog, "RUNPATH")
    _dl_check(prog, ["open", "libsfdep.so"], 12, "dl-rpath")


def test_dlopen_platform_lib():
    # $PLATFORM and $LIB: where they expand is glibc's business; ask it
    # (LD_DEBUG=libs of the untraced program) and put the library there
    d = _fresh("dl", "dst")
    prog = _cc("safe_dl_main.c", os.path.join(d, "main"),
               libs=["-Wl,-rpath,$ORIGIN/p/$PLATFORM/$LIB", "-ldl"])
    dbg = tl.run([prog, "open", "libsfdep.so"], check=False, env={"LD_DEBUG": "libs"}).stderr
    # the first search (for libc at start-up) shows the expanded RUNPATH
    m = re.search(r"search path=(\S+)\s+\(RUNPATH from file", dbg)
    assert m, dbg
    where = m.group(1).split(":")[-1]
    assert where.startswith(os.path.join(d, "p") + "/") and "$" not in where, where
    _dep(where, 13)
    _dl_check(prog, ["open", "libsfdep.so"], 13, "dl-dst")


def test_dlmopen_new_namespace():
    d, prog = _dl_case("mopen", ["-Wl,-rpath,$ORIGIN/msub"], "msub", 14)
    events, _ = _dl_check(prog, ["mopen", "libsfdep.so"], 14, "dl-mopen")


def _dl_from_library(kind, tag):
    # the executable's RUNPATH finds libsafe_dl_mid.so and a decoy libsfdep.so
    # (tag 98); the library's own RUNPATH or RPATH finds the right one. glibc
    # searches with the library's path: it must find `tag`.
    d = _fresh("dl", "mid-" + kind)
    os.makedirs(os.path.join(d, "lib"))
    dtags = ["-Wl,--disable-new-dtags"] if kind == "RPATH" else []
    mid = _cc("safe_dl_mid.c", os.path.join(d, "lib", "libsafe_dl_mid.so"), shared=True,
              libs=dtags + ["-Wl,-rpath,$ORIGIN/midsub", "-ldl"])
    assert _dynamic(mid, kind) == ["$ORIGIN/midsub"], _dynamic(mid, kind)
    _dep(os.path.join(d, "lib", "midsub"), tag)
    _dep(os.path.join(d, "lib"), 98)
    prog = _cc("safe_dl_main.c", os.path.join(d, "main"), flags=["-DWITH_MID"],
               libs=["-Wl,-rpath,$ORIGIN/lib", mid, "-ldl"])
    _dl_check(prog, ["mid", "libsfdep.so"], tag, "dl-mid-" + kind)
    # and from the executable the executable's path applies: the decoy
    _dl_check(prog, ["open", "libsfdep.so"], 98, "dl-mid-exe-" + kind)
    # unless an object of that name is loaded already: glibc returns it
    _dl_check(prog, ["both", "libsfdep.so"], tag, "dl-mid-both-" + kind)


def test_dlopen_from_library_runpath():
    _dl_from_library("RUNPATH", 15)


def test_dlopen_from_library_rpath():
    _dl_from_library("RPATH", 17)


def test_dlopen_backtrace_from_constructor():
    # gdb stopped in a constructor run by the traced dlopen unwinds through
    # the faked return address (sf_call_as) to our dlopen and main
    if not tl.have("gdb"):
        raise tl.Skip("gdb not installed")
    d, prog = _dl_case("gdb", ["-Wl,-rpath,$ORIGIN/sub"], "sub", 18)
    cmd = ["gdb", "-q", "-batch", "-ex", "set environment LD_PRELOAD=" + tl.RUNTIME,
           "-ex", "set breakpoint pending on", "-ex", "break dep_ctor_work", "-ex", "run",
           "-ex", "bt", "--args", prog, "open", "libsfdep.so"]
    p = tl.run(cmd, check=False, env={"SFTRACE_OUTPUT_FILE": os.path.join(d, "g.log"),
                                      "SFTRACE_PATCH_ALL": "1"})
    bt = [line for line in p.stdout.splitlines() if line.startswith("#")]
    assert bt and "dep_ctor_work" in bt[0], p.stdout + p.stderr
    names = [re.sub(r"^#\d+\s+(0x[0-9a-f]+ in )?", "", line).split(" ")[0] for line in bt]
    assert "sf_call_as" in names and "dlopen" in names, names
    assert names.index("dlopen") > names.index("sf_call_as") and names[-1] == "main", names


def test_dlopen_not_found_same_error():
    # a name found nowhere fails with the same message traced and untraced
    d, prog = _dl_case("nf", ["-Wl,-rpath,$ORIGIN/sub"], "sub", 16)
    plain = tl.run([prog, "open", "libsfnothere.so"], check=False)
    p = tl.record([prog, "open", "libsfnothere.so"], os.path.join(_dir(), "dl-nf.log"),
                  check=False)
    assert plain.returncode == p.returncode == 1, (plain.returncode, p.returncode)
    assert p.stdout == plain.stdout and "libsfnothere.so" in p.stdout, (p.stdout, plain.stdout)


# ---- 5. children that run no instrumented code -------------------------------


def test_shellout_children_write_no_chunk_before_process():
    prog = tl.build_c("safe_shellout.c", flags=tl.WARN_CFLAGS)
    log = os.path.join(_dir(), "shellout.log")
    p = tl.record([prog], log, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    parent = tl.kv(p.stdout, "pid")
    assert tl.kv(p.stdout, "steps") == 6 and "popen-ok" in p.stdout, p.stdout
    kids = {m.group(1): int(m.group(2)) for m in re.finditer(r"^child (\S+) (\d+)$", p.stdout, re.M)}
    assert set(kids) == {"fork_exit_", "fork_exit", "fork_exec"}, kids
    _, chunks = tl.read_log(log)
    # no chunk of any pid before that pid's PROCESS chunk; one PROCESS per image
    seen = collections.Counter()
    for c in chunks:
        if c["type"] == tl.CHUNK_PROCESS:
            seen[c["pid"]] += 1
        assert seen[c["pid"]], "chunk type %d of pid %d at %d before its PROCESS chunk" % (
            c["type"], c["pid"], c["off"])
    # children that ran nothing instrumented wrote nothing at all; the exec'd
    # /bin/true (preloaded) wrote its own PROCESS, EXECED, and END
    assert not [c for c in chunks if c["pid"] in (kids["fork_exit_"], kids["fork_exit"])]
    ex = [c for c in chunks if c["pid"] == kids["fork_exec"]]
    assert [c["type"] for c in ex] == [tl.CHUNK_PROCESS, tl.CHUNK_END], ex
    assert ex[0]["flags"] == tl.PROC_EXECED, ex
    assert seen[parent] == 1 and max(seen.values()) == 1, seen
    # the whole log dumps, with every event of the parent
    for tool in (tl.SFTRACE, tl.SFTRACE_ASAN):
        events, d = tl.dump(log, sftrace=tool)
        assert d.returncode == 0
        tl.check_log_complete(chunks, events)
        mine = [e for e in events if e.pid == parent]
        assert tl.counts(mine, "entry") == {"main": 1, "step": 6}, tl.counts(mine, "entry")
        assert tl.counts(mine, "exit") == {"main": 1, "step": 6}, tl.counts(mine, "exit")
        assert len(mine) == 14 and set(e.pid for e in events) == {parent}, \
            collections.Counter((e.pid, e.func) for e in events)
        tl.check_nesting(events)


# ---- 3. setuid and setgid programs --------------------------------------------


def _setuid_prog():
    src = os.path.join(tl.PROGS, "safe_setuid.c")
    out = os.path.join(tl.outdir("bin"), "safe_setuid")
    if tl._stale(out, [src, __file__]):
        tl.run(["clang"] + tl.XRAY_CFLAGS + tl.WARN_CFLAGS
               + [t_abi._no_link_deps_flag(), "-I", os.path.join(tl.ROOT, "include"), src,
                  "-o", out, "-L", tl.BUILD, "-lsftrace", "-Wl,-rpath," + tl.BUILD])
    return out


def _need_root():
    if os.geteuid() != 0:
        raise tl.Skip("needs root to make a setuid binary of another user")
    try:
        return pwd.getpwnam(NOBODY)
    except KeyError:
        raise tl.Skip("no user %s" % NOBODY)


def _secure_case(kind):
    nb = _need_root()
    d = _fresh("setuid", kind)
    os.chmod(d, 0o1777)  # a shared directory: nobody could create the log here
    prog = os.path.join(d, "prog")
    shutil.copy(_setuid_prog(), prog)
    if kind == "setuid":
        os.chown(prog, nb.pw_uid, 0)
        os.chmod(prog, 0o4755)
    else:
        os.chown(prog, 0, nb.pw_gid)
        os.chmod(prog, 0o2755)
    # files the environment names, writable by nobody: they must stay untouched
    log = os.path.join(d, "victim.log")
    with open(log, "w") as f:
        f.write("precious\n")
    os.chown(log, nb.pw_uid, nb.pw_gid)
    newlog = os.path.join(d, "new.log")
    filt = os.path.join(d, "filter.txt")
    with open(filt, "w") as f:
        f.write("sftrace-filter 1\n")
    os.utime(filt, (1000000000, 2000000000))  # atime < mtime: a read moves atime
    st_log, st_filt = os.stat(log), os.stat(filt)
    base = tl.run([prog], check=False, env={"SFTRACE_OUTPUT_FILE": ""})
    assert base.returncode == 3 and "secure 1 env dropped" in base.stdout, base.stdout
    for env in ({"SFTRACE_OUTPUT_FILE": log, "SFTRACE_FILTER": filt},
                {"SFTRACE_OUTPUT_FILE": newlog, "SFTRACE_SESSION": "1234"},
                {"SFTRACE_OUTPUT_FILE": newlog, "SFTRACE_DEBUG": "1"}):
        p = tl.run([prog], check=False, env=env)
        assert (p.returncode, p.stdout, p.stderr) == (base.returncode, base.stdout, ""), \
            (env, p.returncode, p.stdout, p.stderr)
        assert not os.path.exists(newlog), "%s was created" % newlog
        with open(log) as f:
            assert f.read() == "precious\n", "%s was written" % log
        now_log, now_filt = os.stat(log), os.stat(filt)
        assert (now_log.st_mtime_ns, now_log.st_size) == (st_log.st_mtime_ns, st_log.st_size)
        assert now_filt.st_atime_ns == st_filt.st_atime_ns, "the filter file was read"
    assert sorted(os.listdir(d)) == ["filter.txt", "prog", "victim.log"], os.listdir(d)
    # the control: the same program, not setuid, records with the same variable
    plain = os.path.join(d, "plain")
    shutil.copy(_setuid_prog(), plain)
    ctl_log = os.path.join(d, "ctl.log")
    p = tl.run([plain], check=False, env={"SFTRACE_OUTPUT_FILE": ctl_log})
    assert p.returncode == 3 and "secure 0 env kept" in p.stdout, p.stdout + p.stderr
    events, _ = tl.dump(ctl_log)
    assert tl.counts(events, "entry")["work"] == 40, tl.counts(events, "entry")


def test_setuid_program_records_nothing():
    _secure_case("setuid")


def test_setgid_program_records_nothing():
    _secure_case("setgid")


# ---- 4. log files in shared directories ---------------------------------------


def _planted(name):
    """A shared (sticky, world-writable) directory with a victim file of
    nobody's; returns (dir, victim, nobody, log path)."""
    nb = _need_root()
    d = _fresh("links", name)
    os.chmod(d, 0o1777)
    v = os.path.join(d, "victim")
    with open(v, "w") as f:
        f.write("victim data\n")
    os.chown(v, nb.pw_uid, nb.pw_gid)
    os.chmod(v, 0o666)
    return d, v, nb, os.path.join(d, "sf.log")


def _plant(link, target, uid):
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(target, link)
    os.lchown(link, uid, -1)


def _assert_victim(v):
    with open(v) as f:
        assert f.read() == "victim data\n", "the victim %s was written through a link" % v


def test_record_refuses_planted_symlink():
    d, v, nb, log = _planted("record")
    _plant(log, v, nb.pw_uid)
    prog = tl.build_c("safe_shellout.c", flags=tl.WARN_CFLAGS)
    for tool in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = tl.run([tool, "record", "-o", log, "--solib", tl.RUNTIME, "--", prog], check=False)
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert log in p.stderr and "symbolic link owned by uid %d" % nb.pw_uid in p.stderr, p.stderr
        assert "popen-ok" not in p.stdout  # the command did not run
        _assert_victim(v)
        assert os.path.islink(log)
    # the user's own link is followed; a new log is 0600
    os.unlink(log)
    own = os.path.join(d, "mine.log")
    os.symlink(own, log)
    p = tl.run([tl.SFTRACE, "record", "-o", log, "--", prog], check=False)
    assert p.returncode == 0, p.stderr
    assert os.path.islink(log) and stat.S_IMODE(os.stat(own).st_mode) == 0o600, oct(os.stat(own).st_mode)
    events, _ = tl.dump(own)
    assert tl.counts(events, "entry")["step"] == 6
    plain = os.path.join(d, "plain.log")
    tl.record([prog], plain)
    assert stat.S_IMODE(os.lstat(plain).st_mode) == 0o600, oct(os.lstat(plain).st_mode)


def _runtime_only(log, env=None):
    prog = _setuid_prog()  # linked with -lsftrace: traced with only SFTRACE_OUTPUT_FILE
    e = {"SFTRACE_OUTPUT_FILE": log, "SFTRACE_SESSION": ""}
    e.update(env or {})
    return tl.run([prog], check=False, env=e)


def test_runtime_refuses_planted_symlink():
    d, v, nb, log = _planted("runtime")
    _plant(log, v, nb.pw_uid)
    p = _runtime_only(log)
    assert p.returncode == 3 and "sum 780" in p.stdout, p.stdout  # runs, untraced
    assert log in p.stderr and "symbolic link owned by uid %d" % nb.pw_uid in p.stderr \
        and "not tracing" in p.stderr, p.stderr
    _assert_victim(v)
    assert os.path.islink(log) and os.readlink(log) == v
    # the same with a session (appending, as under record)
    p = _runtime_only(log, {"SFTRACE_SESSION": "abc"})
    assert p.returncode == 3 and "symbolic link owned by" in p.stderr, p.stderr
    _assert_victim(v)
    # without the link: a 0600 log, and no temporary file left behind
    os.unlink(log)
    p = _runtime_only(log)
    assert p.returncode == 3 and p.stderr == "", p.stderr
    assert stat.S_IMODE(os.lstat(log).st_mode) == 0o600, oct(os.lstat(log).st_mode)
    events, _ = tl.dump(log)
    assert tl.counts(events, "entry")["work"] == 40
    assert sorted(os.listdir(d)) == ["sf.log", "victim"], os.listdir(d)
    # the user's own link: followed
    own = os.path.join(d, "own-target.log")
    os.unlink(log)
    os.symlink("own-target.log", log)
    p = _runtime_only(log)
    assert p.returncode == 3 and p.stderr == "", p.stderr
    events, _ = tl.dump(own)
    assert tl.counts(events, "entry")["work"] == 40


def _next_pid():
    with open("/proc/sys/kernel/ns_last_pid") as f:
        return int(f.read()) + 1


def test_runtime_tmp_name_unpredictable():
    # links planted at LOG.tmp.PID for the next pids: the old predictable name
    # would write the header through one of them into the victim
    d, v, nb, log = _planted("tmp")
    first = _next_pid()
    planted = []
    for pid in range(first, first + 300):
        link = "%s.tmp.%d" % (log, pid)
        _plant(link, v, nb.pw_uid)
        planted.append(os.path.basename(link))
    p = _runtime_only(log)
    assert p.returncode == 3 and p.stderr == "", p.stderr
    _assert_victim(v)
    assert sorted(os.listdir(d)) == sorted(planted + ["sf.log", "victim"]), \
        set(os.listdir(d)) - set(planted)
    assert not os.path.islink(log) and stat.S_IMODE(os.lstat(log).st_mode) == 0o600
    events, _ = tl.dump(log)
    assert tl.counts(events, "entry")["work"] == 40
    # the name itself, as strace sees it: PATH.tmp.<16 hex digits>, O_EXCL|O_NOFOLLOW
    if not tl.have("strace"):
        return
    os.unlink(log)
    trace = os.path.join(_dir(), "tmp.strace")
    prog = _setuid_prog()
    tl.run(["strace", "-f", "-e", "trace=openat", "-o", trace, prog], check=False,
           env={"SFTRACE_OUTPUT_FILE": log, "SFTRACE_SESSION": ""})
    with open(trace) as f:
        opens = [l for l in f if ".tmp." in l]
    assert len(opens) == 1, opens
    m = re.search(r'"%s\.tmp\.([0-9a-f]+)", ([A-Z_|]+), 0600' % re.escape(log), opens[0])
    assert m and len(m.group(1)) == 16, opens[0]
    assert {"O_CREAT", "O_EXCL", "O_NOFOLLOW"} <= set(m.group(2).split("|")), opens[0]


# ---- 2. descendants through tail calls ----------------------------------------

TAIL_N = 6


def _desc_tail_run(regex, clock):
    prog = tl.build_c("safe_desc_tail.c", flags=tl.WARN_CFLAGS, libs=["-lpthread"])
    name = "desc-tail-%s-%s" % (re.sub(r"\W", "", regex), clock)
    flt = os.path.join(_dir(), name + ".filter")
    tl.run([tl.SFTRACE, "filter", "-p", prog, "-r", regex, "--descendants", "-o", flt])
    log = os.path.join(_dir(), name + ".log")
    p = tl.record([prog], log, extra=["-f", flt], env={"SFTRACE_CLOCK": clock})
    assert tl.kv(p.stdout, "n") == TAIL_N
    events, _ = tl.dump(log)
    _, chunks = tl.read_log(log)
    tl.check_log_complete(chunks, events)
    tl.check_nesting(events)
    return events, tl.kv(p.stdout, "tid"), tl.kv(p.stdout, "worker_tid")


def _by_thread(events, tid):
    c = collections.Counter()
    for e in events:
        if e.tid == tid:
            c[(e.func, e.kind)] += 1
    return dict(c)


# what one worker(N) records: itself, and everything it tail-called
WORKER_TREE = {("worker", "entry"): 1, ("worker", "tailcall"): 1,
               ("compute", "entry"): 1, ("compute", "tailcall"): 1,
               ("leaf", "entry"): TAIL_N + 2, ("leaf", "exit"): TAIL_N + 2,
               ("finish", "entry"): 1, ("finish", "exit"): 1}


def test_descendants_follow_tail_calls():
    for clock in ("tsc", "mono"):
        ev, tid, wtid = _desc_tail_run("^worker$", clock)
        # the thread function: all the work beneath its tail call
        assert _by_thread(ev, wtid) == WORKER_TREE, (clock, _by_thread(ev, wtid))
        # main's own call of worker(): the same; then the scope is closed, so
        # main's compute(), to_libc() and sibling() are not recorded
        assert _by_thread(ev, tid) == WORKER_TREE, (clock, _by_thread(ev, tid))
        assert set(e.tid for e in ev) == {tid, wtid}
        # order: everything under worker's tail call comes before finish's exit
        mine = [(e.func, e.kind) for e in ev if e.tid == wtid]
        assert mine[:2] == [("worker", "entry"), ("worker", "tailcall")], mine
        assert mine[-1] == ("finish", "exit") and mine[-2] == ("leaf", "exit"), mine


def test_descendants_tail_call_chain_from_selected():
    # compute is selected: its tail call to finish stays in scope, with finish's
    # callees; three compute() calls: in the thread, under main's worker(), direct
    for clock in ("tsc", "mono"):
        ev, tid, wtid = _desc_tail_run("^compute$", clock)
        tree = {k: v for k, v in WORKER_TREE.items() if k[0] != "worker"}
        assert _by_thread(ev, wtid) == tree, (clock, _by_thread(ev, wtid))
        assert _by_thread(ev, tid) == {k: 2 * v for k, v in tree.items()}, \
            (clock, _by_thread(ev, tid))


def test_descendants_tail_call_to_uninstrumented_ends_scope():
    # to_libc tail-calls getpid through the PLT: that ends its frame. main then
    # calls sibling() from the same frame: it must not be taken for a callee
    for clock in ("tsc", "mono"):
        ev, tid, wtid = _desc_tail_run("^to_libc$", clock)
        assert _by_thread(ev, tid) == {("to_libc", "entry"): 1, ("to_libc", "tailcall"): 1}, \
            (clock, _by_thread(ev, tid))
        assert set(e.tid for e in ev) == {tid}


def test_descendants_tail_call_through_plt():
    # to_lib tail-calls lib_compute in a shared library through the PLT. With
    # the GOT bound at start-up (-z now) the runtime sees the target is
    # traced: lib_compute and its calls stay in to_lib's scope. Bound lazily,
    # the slot is unknown when the program is patched: the tail call ends it.
    lib = tl.build_c("safe_desc_lib.c", flags=tl.WARN_CFLAGS, shared=True)
    for bind, tree in (("now", {("to_lib", "entry"): 1, ("to_lib", "tailcall"): 1,
                                ("lib_compute", "entry"): 1, ("lib_compute", "exit"): 1,
                                ("lib_leaf", "entry"): 5, ("lib_leaf", "exit"): 5}),
                       ("lazy", {("to_lib", "entry"): 1, ("to_lib", "tailcall"): 1})):
        prog = tl.build_c("safe_desc_plt.c", out=os.path.join(tl.outdir("bin"), "safe_desc_plt_" + bind),
                          flags=tl.WARN_CFLAGS,
                          libs=[lib] + (["-Wl,-z,now"] if bind == "now" else ["-Wl,-z,lazy"]))
        flt = os.path.join(_dir(), "plt-%s.filter" % bind)
        tl.run([tl.SFTRACE, "filter", "-p", prog, "-r", "^to_lib$", "--descendants", "-o", flt])
        for clock in ("tsc", "mono"):
            log = os.path.join(_dir(), "plt-%s-%s.log" % (bind, clock))
            p = tl.record([prog], log, extra=["-f", flt], env={"SFTRACE_CLOCK": clock})
            assert tl.kv(p.stdout, "n") == 5
            events, _ = tl.dump(log)
            tl.check_nesting(events)
            c = collections.Counter((e.func, e.kind) for e in events)
            assert dict(c) == tree, (bind, clock, dict(c))


def test_descendants_trampolines_preserve_registers():
    # abi.c's results travel in every kind of register: the scope trampolines
    # (entry, leave, skip, mono slow path) must leave them all as they were
    prog = tl.build_c("abi.c", out=os.path.join(tl.outdir("bin"), "safe_abi"), flags=tl.WARN_CFLAGS)
    plain = tl.run([prog]).stdout
    rounds = tl.kv(plain, "rounds")
    for regex, counted in (("^main$", "fp_many"), ("^int_many$", "int_many")):
        flt = os.path.join(_dir(), "abi-desc-%s.filter" % counted)
        tl.run([tl.SFTRACE, "filter", "-p", prog, "-r", regex, "--descendants", "-o", flt])
        for clock in ("tsc", "mono"):
            log = os.path.join(_dir(), "abi-desc-%s-%s.log" % (counted, clock))
            p = tl.record([prog], log, extra=["-f", flt], env={"SFTRACE_CLOCK": clock})
            assert p.stdout == plain, (regex, clock, p.stdout, plain)
            events, _ = tl.dump(log)
            assert tl.counts(events, "entry")[counted] == rounds, tl.counts(events, "entry")
            assert tl.counts(events, "exit")[counted] == rounds
            if regex != "^main$":
                assert set(tl.counts(events, "entry")) == {"int_many"}, tl.counts(events, "entry")


def _helpers_of(pid):
    """The sftrace-helper processes that map pid's shared memory."""
    def ino(p):
        with open("/proc/%d/maps" % p) as f:
            for line in f:
                if "/memfd:sftrace" in line:
                    return line.split()[4]
        return None
    mine, found = ino(pid), []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == pid:
            continue
        try:
            with open("/proc/%s/comm" % d) as f:
                if f.read().strip() == "sftrace-helper" and ino(int(d)) == mine:
                    found.append(int(d))
        except OSError:
            pass
    return found


def test_program_outlives_a_killed_helper():
    """The helper killed (SIGKILL, as the OOM killer does) while the program
    runs: the program goes on as untraced, with its output and exit status
    (its wake-ups of the helper were writes to a pipe, and the first one
    after the helper died killed it with SIGPIPE, status 141)."""
    import signal
    import subprocess
    import time
    prog = tl.build_c("helper_killed.c")
    log = os.path.join(tl.outdir("safe"), "helper_killed.log")
    p = subprocess.Popen([tl.SFTRACE, "record", "-o", log, "--", prog, "20000000"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        pid = int(p.stdout.readline().split()[1])
        helpers = []
        for _ in range(200):  # the helper's start does not hold the program back
            helpers = _helpers_of(pid)
            if helpers:
                break
            time.sleep(0.01)
        assert len(helpers) == 1, helpers
        os.kill(helpers[0], signal.SIGKILL)
        p.stdin.write("go\n")
        p.stdin.flush()
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0 and out == "done 20000000\n", (p.returncode, out, err)
