"""t_killed.py - processes that die without running any of their code, and a
runtime the program cannot see.

A traced process killed with SIGKILL (or by the OOM killer) still gets every
event it had stored into the log: its buffers are shared with a helper
process, which writes them after the death with an END that says how the
process ended (docs/design.md). The programs report their progress on a pipe
only after the calls they report have returned, so every reported call must
be in the log. And the runtime adds no thread to the program: /proc/self/task,
unshare(CLONE_NEWUSER) and pthread_exit from main behave as untraced.
"""
import collections
import json
import os
import random
import re
import signal
import subprocess
import time

import tl

END_DIED = 4
STATUS_EXITED, STATUS_SIGNALED = 1, 2


def _prog(name):
    return tl.build_c(name, flags=["-pthread"])


def _start(log, args, env=None, preexec=None):
    if os.path.exists(log):
        os.unlink(log)
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.Popen([tl.SFTRACE, "record", "-o", log, "--"] + args, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=full, preexec_fn=preexec)


def _read_progress(p, lines):
    """Read `lines` progress lines; returns {(pid, tid): calls} (the latest)."""
    prog = {}
    for _ in range(lines):
        line = p.stdout.readline().decode()
        assert line.startswith("P "), "unexpected output %r" % line
        _, pid, tid, calls = line.split()
        prog[(int(pid), int(tid))] = int(calls)
    return prog


def _finish(p):
    out, err = p.communicate(timeout=120)
    return out.decode(errors="replace"), err.decode(errors="replace")


def _calls_in_log(log):
    events, _ = tl.dump(log)
    c = collections.Counter()
    for e in events:
        if e.kind == "entry" and e.func == "work":
            c[(e.pid, e.tid)] += 1
    return c, events


def _convert_and_check(log):
    out = log + ".pb"
    p = tl.run([tl.SFTRACE_ASAN, "convert", log, "-o", out], check=False, timeout=600)
    assert p.returncode == 0, "convert %s exited %d:\n%s" % (log, p.returncode, p.stderr[-3000:])
    assert "AddressSanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    c = tl.run(["python3", tl.PERFETTO_CHECK, "--strict", "--json", out], check=False, timeout=600)
    res = json.loads(c.stdout)
    assert c.returncode == 0 and res["errors"] == 0 and res["warnings"] == 0, \
        "check_perfetto --strict failed on %s:\n%s" % (out, json.dumps(res["violations"], indent=1))


def _pidfd_keeps_exit_status():
    """Does a pidfd tell the exit status after the reaping (PIDFD_GET_INFO
    with PIDFD_INFO_EXIT, Linux 6.15)?"""
    import fcntl
    import struct
    pid = os.fork()
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    fd = os.pidfd_open(pid)
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        buf = bytearray(struct.pack("QQ11Ii", 1 << 3, 0, *([0] * 11), 0))
        fcntl.ioctl(fd, (3 << 30) | (64 << 16) | (0xFF << 8) | 11, buf)
        v = struct.unpack("QQ11Ii", buf)
        return bool(v[0] & (1 << 3)) and v[-1] == signal.SIGKILL
    except OSError:
        return False
    finally:
        os.close(fd)


def _check_salvaged(log, prog, killed_pid, expect_signal=True):
    """Every reported call is in the log; the killed process has an END
    (reason DIED) that counts exactly the events the log holds for it."""
    counts, events = _calls_in_log(log)
    for key, calls in prog.items():
        assert counts[key] >= calls, "%s: %d calls reported before the kill, %d in the log" % (
            key, calls, counts[key])
    _, chunks = tl.read_log(log)
    ends = [c for c in chunks if c["type"] == tl.CHUNK_END and c["pid"] == killed_pid]
    assert len(ends) == 1, "END chunks of pid %d: %s" % (killed_pid, ends)
    end = ends[0]
    assert end["reason"] == END_DIED, end
    assert end["lost"] == 0, end
    if expect_signal:
        assert (end["status_how"], end["status"]) == (STATUS_SIGNALED, 9), end
    else:  # a parent may reap the zombie before the helper reads it
        assert (end["status_how"], end["status"]) in ((STATUS_SIGNALED, 9), (0, 0)), end
    dumped = sum(1 for e in events if e.pid == killed_pid)
    assert end["events"] == dumped, "END counts %d events, dump shows %d" % (end["events"], dumped)
    # nothing of the process after its END
    last = max(i for i, c in enumerate(chunks) if c["pid"] == killed_pid)
    assert chunks[last] is end, "chunks of pid %d after its END" % killed_pid
    return end


def test_sigkill_threads_at_random_moments():
    exe = _prog("killed_progress.c")
    log = os.path.join(tl.outdir("killed"), "random.log")
    rnd = random.Random(11)
    for i in range(20):
        p = _start(log, [exe, "threads", "3"])
        prog = _read_progress(p, rnd.randint(1, 60))
        pid = next(iter(prog))[0]
        os.kill(pid, signal.SIGKILL)
        _, err = _finish(p)
        assert p.returncode == 137, "record exited %d:\n%s" % (p.returncode, err)
        assert "process %d was killed by signal 9" % pid in err, err
        end = _check_salvaged(log, prog, pid)
        assert "sftrace record: %d events" % end["events"] in err, err
        _, chunks = tl.read_log(log)
        tids = {c["tid"] for c in chunks if c["type"] == tl.CHUNK_EVENTS}
        assert end["threads"] == len(tids) and tids >= {t for _, t in prog}, (end, tids)
        if i in (0, 19):
            _convert_and_check(log)


def test_sigkill_forked_child():
    exe = _prog("killed_progress.c")
    log = os.path.join(tl.outdir("killed"), "child.log")
    for mode in ("child", "grandchild"):
        p = _start(log, [exe, mode, "3"])
        prog = _read_progress(p, 30)
        victim = next(iter(prog))[0]
        assert victim != p.pid
        os.kill(victim, signal.SIGKILL)  # the parents reap it and exit 137
        _, err = _finish(p)
        assert p.returncode == 137, "record exited %d:\n%s" % (p.returncode, err)
        # the parent reaps the zombie at once: the helper has the status from
        # its pidfd where the kernel keeps it, else maybe not at all
        _check_salvaged(log, prog, victim, expect_signal=_pidfd_keeps_exit_status())
        assert "process %d was killed by signal 9" % victim in err or \
            not _pidfd_keeps_exit_status(), err
        _, chunks = tl.read_log(log)
        procs = [c for c in chunks if c["type"] == tl.CHUNK_PROCESS]
        assert len(procs) == (2 if mode == "child" else 3), procs
        forked = [c for c in procs if c["pid"] == victim]
        assert forked and forked[0]["flags"] & tl.PROC_FORKED, forked
    _convert_and_check(log)


def test_killed_under_memory_limit():
    """A program that allocates without end under RLIMIT_AS, killed with
    SIGKILL as the OOM killer would (a memory cgroup is not used: on a shared
    machine its reclaim can stall everything in it)."""
    import resource
    exe = _prog("killed_progress.c")
    log = os.path.join(tl.outdir("killed"), "oom.log")

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    p = _start(log, [exe, "alloc", "2"], preexec=limit)
    prog = _read_progress(p, 600)  # 600 MiB allocated, and touched
    pid = next(iter(prog))[0]
    os.kill(pid, signal.SIGKILL)
    _, err = _finish(p)
    assert p.returncode == 137, "record exited %d:\n%s" % (p.returncode, err)
    _check_salvaged(log, prog, pid)


# ---- the runtime is invisible -------------------------------------------------


def _traced_vs_untraced(args, env=None):
    exe = _prog("killed_invisible.c")
    log = os.path.join(tl.outdir("killed"), "invisible.log")
    plain = tl.run([exe] + args, check=False, env=env)
    traced = tl.record([exe] + args, log, check=False, env=env)
    return plain, traced, log


def test_thread_count_unchanged():
    plain, traced, log = _traced_vs_untraced(["tasks"])
    assert plain.stdout == "tasks 1\n", plain.stdout
    assert traced.stdout == plain.stdout, (traced.stdout, traced.stderr)
    events, _ = tl.dump(log)
    assert tl.counts(events)["work"] == 100


def test_unshare_user_namespace_unprivileged():
    if not tl.have("setpriv"):
        raise tl.Skip("setpriv is not installed")
    exe = _prog("killed_invisible.c")
    d = tl.outdir("killed", "nobody")
    os.chmod(d, 0o777)
    os.chmod(tl.outdir("killed"), 0o777)
    log = os.path.join(d, "unshare.log")
    if os.path.exists(log):
        os.unlink(log)
    nobody = ["setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups"]
    plain = tl.run(nobody + [exe, "unshare"], check=False)
    if plain.stdout.strip() != "unshare ok":
        raise tl.Skip("the kernel refuses user namespaces to unprivileged users here: %s"
                      % (plain.stdout.strip() or plain.stderr.strip()))
    traced = tl.run(nobody + [tl.SFTRACE, "record", "-o", log, "--", exe, "unshare"], check=False)
    assert traced.stdout == plain.stdout, (traced.stdout, traced.stderr)
    events, _ = tl.dump(log)
    assert tl.counts(events)["work"] == 100


def test_pthread_exit_from_main():
    plain, traced, log = _traced_vs_untraced(["pthread_exit"])
    assert plain.returncode == 7, plain
    assert traced.returncode == 7, (traced.returncode, traced.stderr)
    events, _ = tl.dump(log)
    assert tl.counts(events)["work"] == 2100


def test_waitpid_any_sees_only_the_programs_child():
    plain, traced, log = _traced_vs_untraced(["waitany"])
    assert plain.stdout == "waited child status 5 more -1 sigchld 1\n", plain.stdout
    assert traced.stdout == plain.stdout, (traced.stdout, traced.stderr)
    events, _ = tl.dump(log)
    pids = collections.Counter(e.pid for e in events if e.kind == "entry" and e.func == "work")
    assert sorted(pids.values()) == [100, 100], pids


# ---- write failures --------------------------------------------------------------


def _check_write_failure(log, run_traced, reason):
    exe = tl.build_c("threads.c", flags=["-pthread"])
    plain = tl.run([exe], check=False)
    traced = run_traced(exe)
    assert traced.returncode == plain.returncode == 0, (traced.returncode, traced.stderr)
    strip = lambda s: [l.split(" tid ")[0] for l in s.splitlines() if not l.startswith(("pid", "main"))]
    assert strip(traced.stdout) == strip(plain.stdout), (traced.stdout, plain.stdout)
    msgs = [l for l in traced.stderr.splitlines() if l.startswith("sftrace: ")]
    assert len(msgs) == 1, traced.stderr
    assert ("cannot write the log %s: %s" % (log, reason)) in msgs[0], msgs
    assert "no END in the log" in traced.stderr, traced.stderr
    # readable up to its last whole chunk, and it holds a part of the run
    _, chunks = tl.read_log(log)
    assert any(c["type"] == tl.CHUNK_EVENTS for c in chunks), chunks
    events, _ = tl.dump(log, sftrace=tl.SFTRACE_ASAN)
    assert 0 < len(events) < 4 * (3333 + sum(4000 * (i + 1) + i for i in range(5)))


def test_log_over_rlimit_fsize():
    import resource
    log = os.path.join(tl.outdir("killed"), "fsize.log")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200000, resource.RLIM_INFINITY))

    def run(exe):
        if os.path.exists(log):
            os.unlink(log)
        return subprocess.run([tl.SFTRACE, "record", "-o", log, "--", exe], preexec_fn=limit,
                              capture_output=True, text=True, timeout=120)
    _check_write_failure(log, run, "the file size limit (RLIMIT_FSIZE) was reached")
    assert os.path.getsize(log) <= 200000


def test_log_on_full_tmpfs():
    if os.geteuid() != 0:
        raise tl.Skip("mounting a tmpfs needs root")
    mnt = tl.outdir("killed", "tmpfs")
    if tl.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt], check=False).returncode:
        raise tl.Skip("cannot mount a tmpfs here")
    try:
        log = os.path.join(mnt, "full.log")
        big = os.path.join(mnt, "filler")
        with open(big, "wb") as f:  # leave about 200 KiB
            f.write(b"\0" * (800 << 10))

        def run(exe):
            return subprocess.run([tl.SFTRACE, "record", "-o", log, "--", exe],
                                  capture_output=True, text=True, timeout=120)
        _check_write_failure(log, run, "no space left on the device")
    finally:
        for _ in range(50):
            if tl.run(["umount", mnt], check=False).returncode == 0:
                break
            time.sleep(0.1)


# ---- endings recorded exactly --------------------------------------------------


def _misc(args, name):
    exe = _prog("killed_misc.c")
    log = os.path.join(tl.outdir("killed"), name + ".log")
    p = tl.record([exe] + args, log, check=False)
    _, chunks = tl.read_log(log)
    events, _ = tl.dump(log)
    return p, chunks, events, tl.kv(p.stdout, "pid")


def _kill_threads(name, threads, lines, sig):
    """Record killed_progress with `threads` threads, send sig after `lines`
    progress lines; record must exit 128 + sig. Returns (log, progress, pid,
    record's stderr)."""
    exe = _prog("killed_progress.c")
    log = os.path.join(tl.outdir("killed"), name + ".log")
    p = _start(log, [exe, "threads", str(threads)])
    prog = _read_progress(p, lines)
    pid = next(iter(prog))[0]
    os.kill(pid, sig)
    _, err = _finish(p)
    assert p.returncode == 128 + sig, (p.returncode, err)
    return log, prog, pid, err


def test_sigterm_of_running_threads_end_counts_the_log():
    log, prog, pid, err = _kill_threads("sigterm", 4, 40, signal.SIGTERM)
    _, chunks = tl.read_log(log)
    ends = [c for c in chunks if c["type"] == tl.CHUNK_END]
    assert len(ends) == 1 and ends[0]["reason"] == tl.END_SIGNAL, ends
    assert (ends[0]["status_how"], ends[0]["status"]) == (STATUS_SIGNALED, signal.SIGTERM), ends
    assert chunks[-1] is ends[0], "chunks after END: %s" % chunks[chunks.index(ends[0]) + 1:]
    counts, events = _calls_in_log(log)
    assert ends[0]["events"] == len(events), (ends[0]["events"], len(events))
    for key, calls in prog.items():
        assert counts[key] >= calls, (key, calls, counts[key])


def test_failed_exec_writes_one_end():
    p, chunks, events, pid = _misc(["execfail"], "execfail")
    assert p.returncode == 0, p.stderr
    ends = [c for c in chunks if c["type"] == tl.CHUNK_END]
    procs = [c for c in chunks if c["type"] == tl.CHUNK_PROCESS]
    assert len(procs) == 1 and [e["reason"] for e in ends] == [tl.END_EXIT], (procs, ends)
    assert (ends[0]["status_how"], ends[0]["status"]) == (STATUS_EXITED, 0), ends
    assert tl.counts(events)["work"] == 20
    tl.check_log_complete(chunks, events)


def _vfork(mode):
    p, chunks, events, pid = _misc([mode], mode)
    assert p.returncode == 0, p.stderr
    child, status = (int(x) for x in re.search(r"^child (\d+) status (\d+)$", p.stdout, re.M).groups())
    work = collections.Counter((e.pid, e.tid) for e in events if e.kind == "entry" and e.func == "work")
    procs = [c for c in chunks if c["type"] == tl.CHUNK_PROCESS]
    ends = {}
    for c in chunks:
        if c["type"] == tl.CHUNK_END:
            ends.setdefault(c["pid"], []).append(c)
    # the parent: one call before the vfork, two after; the child's ten are its own
    assert work[(pid, pid)] == 3 and work[(child, child)] >= 10, work
    first = [c for c in procs if c["pid"] == child][0]
    assert first["ppid"] == pid and first["flags"] & tl.PROC_FORKED, first
    assert [e["reason"] for e in ends[pid]] == [tl.END_EXIT], ends[pid]
    assert ends[pid][0]["threads"] == 1, ends[pid]
    tl.check_log_complete(chunks, events)
    tl.check_time_order(events)
    # nothing of an image after its END
    for q, es in ends.items():
        last = max(i for i, c in enumerate(chunks) if c["pid"] == q)
        assert chunks[last] is es[-1], (q, chunks[last])
    return p, chunks, events, pid, child, status, work, procs, ends


def test_vfork_child_under_its_own_pid():
    """The child of vfork runs in the parent's memory, with its TLS: its calls
    are its own, under its pid, and it ends with its own END."""
    p, chunks, events, pid, child, status, work, procs, ends = _vfork("vfork")
    assert status == 3 and work[(child, child)] == 10, (status, work)
    assert [(e["reason"], e["status_how"], e["status"], e["threads"]) for e in ends[child]] == \
        [(tl.END_EXIT, STATUS_EXITED, 3, 1)], ends[child]
    assert "28 events, 2 threads, 2 processes, 2 images" in p.stderr, p.stderr
    _convert_and_check(os.path.join(tl.outdir("killed"), "vfork.log"))


def test_vfork_child_that_execs():
    """vfork then exec: the child's first image ends with END(exec) before its
    exec'd image starts, which is marked exec'd and counts no new thread."""
    p, chunks, events, pid, child, status, work, procs, ends = _vfork("vforkexec")
    assert status == 4 and work[(child, child)] == 15, (status, work)
    mine = [c for c in procs if c["pid"] == child]
    assert len(mine) == 2 and mine[1]["flags"] & tl.PROC_EXECED, mine
    assert [(e["reason"], e["threads"]) for e in ends[child]] == \
        [(tl.END_EXEC, 1), (tl.END_EXIT, 0)], ends[child]
    assert (ends[child][1]["status_how"], ends[child][1]["status"]) == (STATUS_EXITED, 4)
    order = [(c["type"], c["pid"]) for c in chunks if c["pid"] == child and
             c["type"] in (tl.CHUNK_PROCESS, tl.CHUNK_END)]
    assert order == [(tl.CHUNK_PROCESS, child), (tl.CHUNK_END, child)] * 2, order
    assert "40 events, 2 threads, 2 processes, 3 images" in p.stderr, p.stderr


def test_vfork_child_that_ends_by_raw_exit():
    """A vfork child that ends with a raw exit_group: the helper finds it gone,
    writes its calls and an END(died) with its exit status."""
    p, chunks, events, pid, child, status, work, procs, ends = _vfork("vforkraw")
    assert status == 5 and work[(child, child)] == 10, (status, work)
    assert [e["reason"] for e in ends[child]] == [END_DIED], ends[child]
    if _pidfd_keeps_exit_status():
        assert (ends[child][0]["status_how"], ends[child][0]["status"]) == (STATUS_EXITED, 5), \
            ends[child]


def test_thread_count_with_reused_tids():
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    n = pid_max + 2000
    if n > 200000:
        raise tl.Skip("pid_max is %d: tids would not be reused in a short test" % pid_max)
    p, chunks, events, pid = _misc(["seqthreads", str(n)], "seqthreads")
    assert p.returncode == 0, p.stderr
    tids = {e.tid for e in events}
    assert len(tids) < n, "no tid was reused"
    assert tl.counts(events)["work"] == n
    # one() and work() per thread, main() once
    assert ("%d events, %d threads," % (4 * n + 2, n + 1)) in p.stderr, p.stderr


# ---- raw system calls ------------------------------------------------------------


def test_raw_close_range_then_own_files():
    """The program closes every descriptor behind libc's back and reopens its
    own file under every number, ours included: not one byte of ours may
    land in it, and the log is complete."""
    exe = _prog("killed_raw.c")
    d = tl.outdir("killed", "fds")
    data = os.path.join(d, "data")
    if os.path.exists(data):
        os.unlink(data)
    log = os.path.join(tl.outdir("killed"), "fds.log")
    p = tl.record([exe, "fds", d], log, check=False)
    assert p.returncode == 0, p.stderr
    with open(data, "rb") as f:
        body = f.read()
    assert body == b"data\n" * (len(body) // 5) and len(body) >= 5 * 1000, body[:200]
    _, chunks = tl.read_log(log)
    events, _ = tl.dump(log)
    assert tl.counts(events)["work"] == 301000
    tl.check_log_complete(chunks, events)


def test_raw_clone_vm_child_does_not_hang():
    exe = _prog("killed_raw.c")
    log = os.path.join(tl.outdir("killed"), "clonevm.log")
    p = tl.record([exe, "clonevm"], log, check=False, timeout=60)
    assert p.returncode == 0 and p.stdout == "done 0\n", (p.returncode, p.stdout, p.stderr)
    events, _ = tl.dump(log)
    # the child shares the parent's TLS, so its calls count as the parent's
    assert tl.counts(events)["work"] == 101010, tl.counts(events)


# ---- how a process ended, in every tool ---------------------------------------


def test_tools_show_how_a_killed_process_ended():
    """info, report and convert say the process was killed by SIGKILL; the
    calls open at the death (main, each thread's worker) are unfinished."""
    log, prog, pid, _ = _kill_threads("tools", 3, 30, signal.SIGKILL)
    # info
    info = json.loads(tl.run([tl.SFTRACE_ASAN, "info", "--format", "json", log]).stdout)
    procs = [x for x in info["processes"] if x["pid"] == pid]
    assert len(procs) == 1, info["processes"]
    assert (procs[0]["ended"], procs[0]["how"], procs[0]["signal"]) == \
        ("died", "killed by signal 9 (SIGKILL)", 9), procs[0]
    table = tl.run([tl.SFTRACE_ASAN, "info", log]).stdout
    assert re.search(r"^\s*%d\s.*\bdied\s+killed by signal 9 \(SIGKILL\)" % pid, table, re.M), table
    # report: the ending, and the open calls counted unfinished
    rep = tl.run([tl.SFTRACE_ASAN, "report", log]).stdout
    assert ("# process %d (killed_progress) ended: killed by signal 9 (SIGKILL); calls still "
            "open are unfinished" % pid) in rep, rep
    events, _ = tl.dump(log)
    nthreads = len({e.tid for e in events if e.pid == pid})  # each inside worker()
    rows = {l.split()[-1]: l.split() for l in rep.splitlines() if l and not l.startswith("#")}
    assert rows["main"][-2] == "1" and rows["worker"][-2] == str(nthreads), rep
    # convert: an instant where it ended, and the open calls end there, unfinished
    out = log + ".json"
    tl.run([tl.SFTRACE_ASAN, "convert", "--format", "chrome", log, "-o", out])
    with open(out) as f:
        evs = json.load(f)["traceEvents"]
    marks = [e for e in evs if e["ph"] == "i" and e["pid"] == pid and "cat" not in e]
    assert [m["name"] for m in marks] == ["sftrace: process killed by signal 9 (SIGKILL)"], marks
    # (Chrome JSON: an unfinished call's end is an instant of category sftrace.end)
    unf = collections.Counter(e["name"] for e in evs if e.get("cat") == "sftrace.end" and
                              e["pid"] == pid and e.get("args", {}).get("unfinished"))
    assert unf["main"] == 1 and unf["worker"] == nthreads, unf
    assert all(e["ts"] <= marks[0]["ts"] for e in evs if e["ph"] in "BE" and e["pid"] == pid)
    _convert_and_check(log)


def test_raw_clone_settls_child_is_recorded():
    """A raw clone(CLONE_VM | CLONE_SETTLS) child with a TLS of its own (made as
    glibc makes a thread's): as a thread (CLONE_THREAD) its calls are its own
    thread's; as a process sharing our memory they are under its own pid, with
    an END for it (it ends by a raw exit, found by the helper)."""
    if os.uname().machine != "x86_64":
        raise tl.Skip("the test program builds an x86_64 TLS block")
    exe = _prog("killed_raw.c")
    for mode in ("thread", "process"):
        log = os.path.join(tl.outdir("killed"), "clonetls-%s.log" % mode)
        p = tl.record([exe, "clonetls", mode], log, check=False, timeout=60)
        assert p.returncode == 0, (mode, p.returncode, p.stdout, p.stderr)
        child = tl.kv(p.stdout, "child")
        events, _ = tl.dump(log)
        _, chunks = tl.read_log(log)
        pid = {c["pid"] for c in chunks if c["type"] == tl.CHUNK_PROCESS and not c["flags"]}.pop()
        work = collections.Counter((e.pid, e.tid) for e in events
                                   if e.kind == "entry" and e.func == "work")
        owner = (pid, child) if mode == "thread" else (child, child)
        assert work == {(pid, pid): 1010, owner: 100000}, (mode, work)
        tl.check_nesting(events)
        ends = {c["pid"]: c for c in chunks if c["type"] == tl.CHUNK_END}
        if mode == "process":
            assert ends[child]["reason"] == END_DIED and ends[child]["threads"] == 1, ends
            if _pidfd_keeps_exit_status():  # else the parent may reap it first
                assert (ends[child]["status_how"], ends[child]["status"]) == (STATUS_EXITED, 0), ends
            tl.check_log_complete(chunks, events)
        else:
            assert set(ends) == {pid} and ends[pid]["threads"] == 2, ends


def test_log_path_that_is_a_fifo():
    """A log path naming a FIFO: record and the setup ABI refuse it with a
    clear message instead of blocking on it or renaming a file over it (a
    device such as /dev/null is written as it is, never replaced)."""
    exe = _prog("killed_misc.c")
    fifo = os.path.join(tl.outdir("killed"), "log.fifo")
    if os.path.lexists(fifo):
        os.unlink(fifo)
    os.mkfifo(fifo)
    p = tl.run([tl.SFTRACE, "record", "-o", fifo, "--", exe, "after"], check=False, timeout=30)
    assert p.returncode == 1 and "%s is not a regular file" % fifo in p.stderr, p
    plain = tl.run([exe, "after"], check=False)
    env = {"SFTRACE_OUTPUT_FILE": fifo, "LD_PRELOAD": tl.RUNTIME, "SFTRACE_PATCH_ALL": "1"}
    p = tl.run([exe, "after"], check=False, env=env, timeout=30)
    assert (p.returncode, p.stdout.split()[0]) == (plain.returncode, plain.stdout.split()[0]), p
    assert "%s is not a regular file; not tracing" % fifo in p.stderr, p.stderr
    import stat
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
