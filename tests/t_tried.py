"""t_tried.py - regressions found by trying sftrace on real programs (Debian's
sqlite3 3.40.1 with PRAGMA threads, yaml-cpp 0.7.0 with parse and conversion
exceptions, a rayon par_iter / par_sort / catch_unwind program, make and
sh running instrumented commands, a release-built tokio program with
thousands of tasks, a pre-fork TCP server under `record --paused`), each
reproduced by a small program in tests/programs/ with the real program's
pattern.

Defects whose fix belongs to a file another helper owned when they were
found are listed in KNOWN_OPEN: the test still runs and checks the right
answer, but while the defect is there it skips, naming the file and the
report; once the answer is right it fails until its entry is removed, so a
fix is noticed and the test becomes an ordinary one.
"""
import collections
import json
import os
import re
import shutil
import struct

import t_calls
import tl

KNOWN_OPEN = {}


def _open(name, check):
    """Run check(); while name is in KNOWN_OPEN, a failure is a skip and a
    pass is a failure (the entry must go)."""
    why = KNOWN_OPEN.get(name)
    if not why:
        check()
        return
    try:
        check()
    except AssertionError as e:
        first = str(e).splitlines()[0] if str(e) else "assertion"
        raise tl.Skip("known open defect, %s: %s" % (why, first[:200]))
    raise AssertionError("%s passes now: remove it from KNOWN_OPEN in t_tried.py" % name)


def _dir(*parts):
    return tl.outdir("tried", *parts)


class _Served:
    """`sftrace record OPTS -- prog ARGS` of a program that answers stdin
    lines (tried_proctitle.c, tried_pausedfork.c), spoken to line by line."""

    def __init__(self, opts, log, cmd):
        import subprocess
        if os.path.exists(log):
            os.unlink(log)
        self.p = subprocess.Popen([tl.SFTRACE, "record"] + list(opts) + ["-o", log, "--"] +
                                  list(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1)

    def say(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return self.p.stdout.readline().strip()

    def quit(self):
        """Ends the program; asserts that record exited 0."""
        self.p.stdin.write("quit\n")
        self.p.stdin.close()
        rc = self.p.wait(timeout=60)
        assert rc == 0, self.p.stderr.read()


def test_tail_jump_in_recursion_is_not_unwinding():
    """rayon's par_sort pattern (tried_tailrec.c): rec -> run -> rec ..., each
    rec ending with a tail jump to merge, in a program that imports longjmp.
    Every merge runs in its rec's place, beneath the run (or main) that called
    that rec; nothing is unwound, unfinished or without an entry."""
    prog = tl.build_c("tried_tailrec.c")
    plain = tl.run([prog, "4"]).stdout
    log = os.path.join(_dir(), "tailrec.log")
    p = tl.record([prog, "4"], log)
    assert p.stdout == plain == "14\n", (p.stdout, plain)

    def check():
        calls = [c._asdict() for c in t_calls._calls(log, sftrace=tl.SFTRACE_ASAN)]
        by_id = {c["id"]: c for c in calls}
        names = [c["name"] for c in calls]
        assert names.count("rec") == 5 and names.count("run") == 4 and \
            names.count("merge") == 5, names
        bad = [(c["name"], c["flags"]) for c in calls if "u" in c["flags"] or "w" in c["flags"]]
        assert not bad, "calls marked unfinished/unwound though nothing unwound: %s" % bad
        parents = [by_id[c["parent"]]["name"] for c in calls if c["name"] == "merge"]
        assert parents == ["run"] * 4 + ["main"], parents
        # the tail-called recs end (flag t) where their merge begins
        for c in calls:
            if c["name"] == "merge":
                par = by_id[c["parent"]]
                assert par["start"] <= c["start"] and \
                    c["start"] + c["dur"] <= par["start"] + par["dur"], (c, par)
        rep = tl.run([tl.SFTRACE_ASAN, "report", "-q", log]).stdout
        assert "exits without entry" not in rep and "unfinished" not in rep, rep

    _open("test_tail_jump_in_recursion_is_not_unwinding", check)


def test_exec_child_of_uninstrumented_shell_counts_as_a_process():
    """make / a shell script running instrumented commands (the 'pnpm build'
    pattern): dash forks, the child execs the program; the shell is not
    instrumented, so the child's first image in the log is the exec'd one.
    record, convert, report and info agree on the number of processes: the
    distinct pids (sh, and one per command it forked)."""
    prog = tl.build_c("tried_tailrec.c")
    log = os.path.join(_dir(), "shell.log")
    sh = shutil.which("dash") or "/bin/sh"
    script = "%s 1; %s 2 | cat; echo x | %s 3; true" % (prog, prog, prog)
    plain = tl.run([sh, "-c", script]).stdout
    p = tl.record([sh, "-c", script], log)
    assert p.stdout == plain == "2\n5\n9\n", (p.stdout, plain)
    rec = tl.record_summary(p.stderr)
    info = json.loads(tl.run([tl.SFTRACE_ASAN, "info", "--format", "json", log]).stdout)
    pids = {x["pid"] for x in info["processes"]}
    assert rec["processes"] == len(pids) >= 4, (rec, pids)  # sh and its three programs
    assert rec["images"] == len(info["processes"]), (rec, info["processes"])

    def check():
        out = os.path.join(_dir(), "shell.pb")
        cp = tl.run([tl.SFTRACE_ASAN, "convert", log, "-o", out])
        tl.run(["python3", tl.PERFETTO_CHECK, "--strict", out])
        m = re.search(r" (\d+) process(?:es)?, (\d+) images?", cp.stderr)
        assert m and (int(m.group(1)), int(m.group(2))) == (len(pids), rec["images"]), \
            "convert: %s; record: %s" % (cp.stderr.strip(), rec)
        rp = tl.run([tl.SFTRACE_ASAN, "report", log]).stdout
        m = re.search(r" (\d+) process(?:es)?, span", rp)
        assert m and int(m.group(1)) == len(pids), "report: %s; pids %s" % (
            rp.splitlines()[0], sorted(pids))

    _open("test_exec_child_of_uninstrumented_shell_counts_as_a_process", check)


def test_stripped_binary_names_the_fix_and_dump_takes_symbols():
    """A stripped instrumented binary (sqlite3 shipped stripped): the warning
    says what to do (--symbols FILE), and every reading command, dump
    included, takes --symbols (dump took only -s)."""
    prog = tl.build_c("tried_tailrec.c")
    d = _dir("stripped")
    stripped = os.path.join(d, "tailrec_stripped")
    tl.run(["objcopy", "--strip-all", prog, stripped])
    log = os.path.join(d, "stripped.log")
    tl.record([stripped, "2"], log)
    p = tl.run([tl.SFTRACE_ASAN, "dump", log])
    assert "%s: no symbols" % stripped in p.stderr and "--symbols FILE" in p.stderr, p.stderr
    assert "rec" not in {e.func for e in tl.parse_dump(p.stdout)}
    for cmd in (["dump"], ["dump", "--calls"], ["report", "-q"], ["graph", "-q"],
                ["flame", "-q", "--format", "folded", "-o", "-"]):
        q = tl.run([tl.SFTRACE_ASAN] + cmd + ["--symbols", prog, log])
        assert "warning" not in q.stderr, (cmd, q.stderr)
        assert re.search(r"\brec\b", q.stdout) and re.search(r"\bmerge\b", q.stdout), \
            (cmd, q.stdout[:500])
    q = tl.run([tl.SFTRACE_ASAN, "dump", "--symbols", prog, log])
    funcs = [e.func for e in tl.parse_dump(q.stdout) if e.kind == "entry"]
    assert funcs.count("rec") == 3 and funcs.count("merge") == 3, funcs


def test_misspelt_clock_is_refused_before_running():
    """SFTRACE_CLOCK=monotonic (meant: mono) was taken as unset by the runtime
    of every process, silently; record refuses it once, before creating the
    log or running anything. The two real values still work."""
    prog = tl.build_c("tried_tailrec.c")
    d = _dir("clock")
    log = os.path.join(d, "bad.log")
    if os.path.exists(log):
        os.unlink(log)
    mark = os.path.join(d, "ran")
    if os.path.exists(mark):
        os.unlink(mark)
    p = tl.run([tl.SFTRACE, "record", "-o", log, "--", "sh", "-c", "touch %s; %s" % (mark, prog)],
               env={"SFTRACE_CLOCK": "monotonic"}, check=False)
    assert p.returncode == 2 and "SFTRACE_CLOCK=monotonic: not tsc or mono" in p.stderr, \
        (p.returncode, p.stderr)
    assert not os.path.exists(log) and not os.path.exists(mark)
    for clock, shown in (("mono", "CLOCK_MONOTONIC"), ("tsc", "TSC")):
        log = os.path.join(d, clock + ".log")
        tl.record([prog, "2"], log, env={"SFTRACE_CLOCK": clock})
        info = tl.run([tl.SFTRACE_ASAN, "info", log]).stdout
        assert re.search(r"^clock\s+%s" % shown, info, re.M), info


def test_filter_of_a_stripped_binary_says_why_and_what_works():
    """`filter -p STRIPPED -r NAME` matched nothing and said only that; now it
    says the file has no symbols and that a filter made from the unstripped
    file (same build-id) works for the stripped one, which it does."""
    prog = tl.build_c("tried_tailrec.c")
    d = _dir("stripfilter")
    stripped = os.path.join(d, "tailrec_stripped")
    tl.run(["objcopy", "--strip-all", prog, stripped])
    flt = os.path.join(d, "stripped.filter")
    p = tl.run([tl.SFTRACE_ASAN, "filter", "-p", stripped, "-r", "^rec$", "-o", flt])
    assert "%s: no symbols (stripped?)" % stripped in p.stderr and \
        "filter made from the unstripped file" in p.stderr, p.stderr
    p = tl.run([tl.SFTRACE_ASAN, "filter", "-p", prog, "-r", "^rec$", "-o", flt])
    assert "no symbols" not in p.stderr, p.stderr
    log = os.path.join(d, "filtered.log")
    tl.record([stripped, "2"], log, extra=["-f", flt])
    q = tl.run([tl.SFTRACE_ASAN, "dump", "--symbols", prog, log])
    funcs = [e.func for e in tl.parse_dump(q.stdout) if e.kind == "entry"]
    assert funcs == ["rec"] * 3, funcs


def test_flows_in_a_dlopened_addon():
    """node's shape (a Rust cdylib with a rayon pool, loaded by node; tried on a
    petgraph + rayon addon): an uninstrumented host dlopens the instrumented
    pool of flows_pool.c. record writes keys only for the command's
    executable, so without --flows-in the addon's submit/run_job record no
    key and no flow is paired; with --flows-in ADDON every job is one flow from
    main's submit to a worker's run_job (and each task from make_task to its
two steps), the output unchanged. A --descendants filter made for the addon
needs no --flows-in: record takes the object from the filter. A --flows-in
    object that does not exist or is not instrumented is refused before
    anything runs."""
    import t_flows
    addon = tl.build_c("flows_pool.c", shared=True,
                       flags=tl.WARN_CFLAGS + ["-O1", "-pthread", "-Dmain=pool_main"])
    host = os.path.join(_dir(), "tried_addon_host")
    if tl._stale(host, [os.path.join(tl.PROGS, "tried_addon_host.c")]):
        tl.run(["cc", "-O1", "-o", host, os.path.join(tl.PROGS, "tried_addon_host.c"), "-ldl"])
    rules = os.path.join(_dir(), "pool.flows")
    with open(rules, "w") as f:
        f.write(t_flows.POOL_FLOWS)
    n = 5
    plain = tl.run([host, addon, str(n)]).stdout
    assert plain.strip() == "jobs %d cross %d" % (n, n), plain

    def flows(log):
        out = collections.defaultdict(dict)
        for line in tl.run([tl.SFTRACE_ASAN, "dump", "--flows", rules, log]).stdout.splitlines():
            f = line.split("\t")
            for x in f[5:]:
                if x.startswith("flow-"):
                    side, fid = x.split(" ")
                    out[int(fid)][side] = f[4]
        return collections.Counter((e.get("flow-out"), e.get("flow-in")) for e in out.values())

    without = os.path.join(_dir(), "addon-nokeys.log")
    p = tl.record([host, addon, str(n)], without, extra=["--flows", rules])
    assert p.stdout == plain
    assert flows(without) == {}, flows(without)
    log = os.path.join(_dir(), "addon.log")
    p = tl.record([host, addon, str(n)], log, extra=["--flows", rules, "--flows-in", addon])
    assert p.stdout == plain, (p.stdout, plain)
    got = flows(log)
    # a task flows from make_task to its first step, then to its second
    assert got == {("submit", "run_job"): n, ("make_task", "step_task"): n,
                   ("step_task", "step_task"): n}, got
    # a --descendants filter made for the addon: record knows from the filter
    # that the addon will be loaded and writes its keys without --flows-in, so
    # every job produce() submits is followed onto the workers
    filt = os.path.join(_dir(), "addon_desc.filter")
    tl.run([tl.SFTRACE, "filter", "-p", addon, "--descendants", "-r", "^produce$", "-o", filt])
    log2 = os.path.join(_dir(), "addon-desc.log")
    p = tl.record([host, addon, str(n)], log2, extra=["-f", filt, "--flows", rules])
    assert p.stdout == plain
    ev, _ = tl.dump(log2, sftrace=tl.SFTRACE_ASAN)
    tids = collections.Counter(e.tid for e in ev if e.kind == "entry" and e.func == "produce")
    assert len(tids) == 1, tids
    work = collections.Counter(e.func for e in ev if e.kind == "entry" and e.tid not in tids)
    assert work == {"run_job": n, "step_task": 2 * n}, work
    for bad, why in ((os.path.join(_dir(), "no-such.so"), "No such file"),
                     (host, "not instrumented")):
        p = tl.run([tl.SFTRACE, "record", "-o", os.path.join(_dir(), "x.log"),
                    "--flows-in", bad, "--", "true"], check=False)
        assert p.returncode == 2 and "--flows-in" in p.stderr and why in p.stderr, p.stderr


def test_record_quiet_keeps_the_warnings():
    """Scripts (the redis and node runs of the trial) want record without its
    summary line, as perf record -q: -q drops it, the program's output and
    exit status are unchanged and the log is whole; a command with no
    instrumented code still gets its warning."""
    prog = tl.build_c("exitcode.c")
    log = os.path.join(_dir(), "quiet.log")
    plain = tl.run([prog, "exit", "3"], check=False)
    assert plain.returncode == 3, plain
    p = tl.run([tl.SFTRACE, "record", "-q", "-o", log, "--", prog, "exit", "3"], check=False)
    assert p.returncode == 3 and p.stdout.splitlines()[2:] == plain.stdout.splitlines()[2:], \
        (p, plain)
    assert p.stderr == "", p.stderr
    info = tl.run([tl.SFTRACE_ASAN, "info", log]).stdout
    assert "exit status 3" in info, info
    rep = tl.run([tl.SFTRACE_ASAN, "report", "-q", "--limit", "0", log]).stdout
    assert re.search(r"^ +10 .* status_work$", rep, re.M), rep
    p = tl.run([tl.SFTRACE, "record", "--quiet", "-o", log, "--", "true"])
    assert "no instrumented code found" in p.stderr, p.stderr


def test_ctl_on_a_process_that_set_its_title():
    """redis under record --paused: `sftrace ctl PID start` said "not being
    recorded by sftrace" (redis's setproctitle overwrites the environment
    block /proc/PID/environ shows). tried_proctitle.c does the same; ctl
    start and stop must work on it, and exactly the 2 work() calls between
    them are in the log."""
    prog = tl.build_c("tried_proctitle.c")
    log = os.path.join(_dir(), "proctitle.log")
    p = _Served(["--paused"], log, [prog])
    say = p.say
    try:
        pid = int(say("pid").split()[1])
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            assert f.read().startswith(b"tried_proctitle: serving"), "the title was not set"
        assert say("work") == "ok 1"
        r1 = tl.run([tl.SFTRACE_ASAN, "ctl", str(pid), "start"], check=False)
        assert say("work") == "ok 2" and say("work") == "ok 3"
        r2 = tl.run([tl.SFTRACE_ASAN, "ctl", str(pid), "stop"], check=False)
        assert say("work") == "ok 4"
    finally:
        p.quit()

    def check():
        assert r1.returncode == 0 and r2.returncode == 0, (r1.stderr, r2.stderr)
        rep = tl.run([tl.SFTRACE_ASAN, "report", "-q", "--limit", "0", log]).stdout
        assert re.search(r"^ +2 .* work$", rep, re.M), rep

    _open("test_ctl_on_a_process_that_set_its_title", check)


def test_forked_child_returns_through_its_parents_frames():
    """redis's daemonize and BGSAVE: fork() three instrumented frames deep
    (main -> start -> spawn). The child returns through spawn and start and
    works in main: its returns are of frames it inherited, shown as calls
    begun at its start and clipped (as at a START), not exits without entry,
    and main, which it never returns from, is found from the parent's stack
    at the fork (the latest moment the parent's top was what the child
    returned through), so child_work is main's callee; the parent is
    unchanged."""
    prog = tl.build_c("tried_forkdeep.c")
    log = os.path.join(_dir(), "forkdeep.log")
    p = tl.record([prog], log)
    assert p.stdout == "child 5\n", p.stdout
    calls = [c._asdict() for c in t_calls._calls(log, sftrace=tl.SFTRACE_ASAN)]
    by_id = {c["id"]: c for c in calls}
    pids = sorted({c["pid"] for c in calls})
    assert len(pids) == 2, pids
    parent_pid = [c["pid"] for c in calls if c["name"] == "parent_work"]
    assert len(parent_pid) == 1, calls
    parents = [by_id[c["parent"]]["name"] if c["parent"] in by_id else None
               for c in calls if c["name"] == "child_work"]
    assert len(parents) == 3, calls

    # the frames it inherited: begun at its start, clipped, nested as in
    # the parent; main, which it never leaves (it exits in it), unfinished
    child = [c for c in calls if c["pid"] != parent_pid[0]]
    inherited = sorted((c["name"], c["depth"], c["flags"]) for c in child
                       if c["name"] != "child_work")
    assert inherited == [("main", 0, "uc"), ("spawn", 2, "c"), ("start", 1, "c")], child
    assert by_id[[c for c in child if c["name"] == "spawn"][0]["parent"]]["name"] == "start"
    assert parents == ["main"] * 3, parents
    rep = tl.run([tl.SFTRACE_ASAN, "report", "-q", log]).stdout
    assert "exits without entry" not in rep or " 0 exits without entry" in rep, \
        rep.splitlines()[:2]
    parent = sorted((c["name"], c["depth"], c["flags"]) for c in calls
                    if c["pid"] == parent_pid[0])
    assert parent == [("main", 0, "-"), ("parent_work", 1, "-"), ("spawn", 2, "-"),
                      ("start", 1, "-")], parent
    # the same from report's workers, whichever worker has which process
    for j in ("1", "2", "3"):
        out = tl.run([tl.SFTRACE_ASAN, "report", "-q", "-j", j, "--limit", "0", "--format",
                      "csv", log]).stdout
        rows = {r.split(",")[0]: r.split(",")[1] for r in out.splitlines()[1:]}
        assert rows.get("main") == "2" and rows.get("child_work") == "3", (j, out)


def test_filter_descendants_says_when_rayon_push_is_inlined():
    """graphwork.node (release, rayon): --descendants on paths() recorded
    78,000-300,000 of its 400,000 score() calls, varying from run to run,
    because rustc inlines WorkerThread::push and only injected jobs can be
    followed. filter --descendants now says so for an object that has rayon's
    job execute but no push (tried_rayon_names.c gives C functions rayon's
    symbols); not when the push is there, nor without --descendants."""
    src = os.path.join(tl.PROGS, "tried_rayon_names.c")
    release = tl.build_c(src, out=os.path.join(_dir(), "rayon_release.so"), shared=True)
    debug = tl.build_c(src, out=os.path.join(_dir(), "rayon_debug.so"), shared=True,
                       flags=["-DWITH_PUSH"])
    out = os.path.join(_dir(), "rayon.filter")
    names = tl.run([tl.SFTRACE_ASAN, "filter", "-v", "-p", debug, "-r", ".", "-o", out]).stdout
    assert "<rayon_core::job::StackJob<L,F,R> as rayon_core::job::Job>::execute" in names and \
        "<rayon_core::registry::WorkerThread>::push" in names, names
    note = "WorkerThread::push is inlined"
    p = tl.run([tl.SFTRACE_ASAN, "filter", "-p", release, "--descendants", "-r", "^rl_entry$",
                "-o", out])
    assert note in p.stderr and "--descendants follows only the jobs injected" in p.stderr, \
        p.stderr
    for args in ([debug, "--descendants"], [release]):
        p = tl.run([tl.SFTRACE_ASAN, "filter", "-p"] + args + ["-r", "^rl_entry$", "-o", out])
        assert note not in p.stderr, (args, p.stderr)


def test_report_names_a_missing_or_extra_log():
    """docrev: every reader says what is wrong with its operands (t_cli's
    test_missing_and_extra_operands_are_named); report printed the usage
    alone."""
    def check():
        for sf in (tl.SFTRACE, tl.SFTRACE_ASAN):
            p = tl.run([sf, "report"], check=False)
            assert p.returncode == 2 and p.stderr.startswith("sftrace report: missing LOG\n"), \
                p.stderr[:200]
            p = tl.run([sf, "report", "a.log", "b.log"], check=False)
            assert p.returncode == 2 and p.stderr.startswith(
                "sftrace report: unexpected argument 'b.log' (it takes LOG)\n"), p.stderr[:200]
    _open("report_names_missing_log", check)


def test_no_events_before_the_damage_is_not_nothing_recorded():
    """docrev: a log cut inside its first EVENTS chunk had events: report,
    graph, flame and memory said 'no events (nothing was recorded)', which
    sends the user to the program instead of the log."""
    whole = os.path.join(_dir(), "first-cut.log")
    prog = tl.build_c("threads.c")
    tl.record([prog, "2", "50"], whole)
    with open(whole, "rb") as f:
        data = f.read()
    off = 64
    while off + 16 <= len(data):
        _, ctype, _, size, _ = struct.unpack_from("<IHHII", data, off)
        if ctype == 4:
            break
        off += size
    assert off + 16 < len(data), "no EVENTS chunk"
    cut = os.path.join(_dir(), "first-cut-short.log")
    with open(cut, "wb") as f:
        f.write(data[:off + 24])

    def check():
        for cmd in ("report", "graph", "flame", "memory"):
            p = tl.run([tl.SFTRACE, cmd, "-q", cut] + (["-o", os.devnull] if cmd == "flame"
                                                       else []), check=False)
            assert "damaged log" in p.stderr, (cmd, p.stderr)
            assert "nothing was recorded" not in p.stderr, (cmd, p.stderr)
            assert "no events before the damage" in p.stderr, (cmd, p.stderr)
    _open("no_events_before_damage", check)


def test_child_forked_in_main_nests_under_main():
    """docrev, README's example program (readme_prog.c): main forks and the
    child calls parse_line once, then _exit()s inside main. The parent's
    stack at the fork is [main], so the child's parse_line belongs under a
    main (clipped, from the child's start), as it does when the fork is made
    deeper (test_forked_child_...: tried_forkdeep.c); the child returns
    through no frame, so the engine finds nothing to match."""
    prog = tl.build_c("readme_prog.c")
    log = os.path.join(_dir(), "fork-in-main.log")
    p = tl.record([prog, "3"], log)
    assert p.stdout == "args 3, child 0\n", p.stdout
    calls = [c._asdict() for c in t_calls._calls(log)]
    pids = sorted(set(c["pid"] for c in calls))
    assert len(pids) == 2, pids
    # the child: the process with fewer calls (the parent has main's 200)
    cpid = min(pids, key=lambda q: sum(c["pid"] == q for c in calls))
    child = [c for c in calls if c["pid"] == cpid]
    assert [c["name"] for c in child if c["name"] == "parse_line"] == ["parse_line"], child

    def check():
        by_id = {c["id"]: c for c in calls}
        pl = [c for c in child if c["name"] == "parse_line"][0]
        parent = by_id.get(pl["parent"])
        assert parent and parent["name"] == "main" and parent["pid"] == pl["pid"], \
            ("the child's parse_line is not under main", pl, child)
    _open("fork_in_main", check)

def _tokio_release():
    """t_flows' tokio_flows (tests/programs/flows_rs) built --release (rustc
    inlines RawTask::new and the harness's dealloc there), once, into
    build/tests/tried/flows_rs_release."""
    import t_flows
    reg = "/usr/share/cargo/registry"
    if not tl.have("cargo") or not os.path.isdir(os.path.join(reg, "tokio-1.24.2")):
        raise tl.Skip("cargo or Debian's librust-tokio-dev missing (scripts/deps.sh installs them)")
    src = os.path.join(tl.PROGS, "flows_rs")
    d = _dir("flows_rs_release")
    exe = os.path.join(d, "target", "release", "tokio_flows")
    sources = [os.path.join(src, "Cargo.toml")] + [
        os.path.join(src, "src", "bin", f) for f in os.listdir(os.path.join(src, "src", "bin"))]
    if tl._stale(exe, sources):
        shutil.copy(sources[0], d)
        if os.path.isdir(os.path.join(d, "src")):
            shutil.rmtree(os.path.join(d, "src"))
        shutil.copytree(os.path.join(src, "src"), os.path.join(d, "src"))
        os.makedirs(os.path.join(d, ".cargo"), exist_ok=True)
        with open(os.path.join(d, ".cargo", "config.toml"), "w") as f:
            f.write(t_flows.CARGO_CONFIG)
        tl.run(["cargo", "build", "--offline", "--release", "-q", "--bin", "tokio_flows"], cwd=d,
               timeout=900, env={"RUSTC_BOOTSTRAP": "1", "RUSTFLAGS": "-Zinstrument-xray=always"})
    return exe


def test_tokio_release_tasks_reusing_memory():
    """A release build of a tokio program (the way a user builds a server):
    rustc inlines RawTask::new into OwnedTasks::bind, and the harness frees
    most tasks through its own inlined dealloc, not raw::dealloc. Waves of
    tasks, each wave awaited before the next, so new tasks are allocated
    where finished ones were. Every task has one spawn flow (from bind, in
    main's block_on) to its first poll and one flow from each poll to its
    next: exactly `polls - tasks` of those, never one from a finished task to
    a new task at its address (seen: 24 of 88 flows, and no spawn flow at
    all); one async track per task holds its polls; --follow-jobs puts every
    poll beneath the spawn in main's block_on. spawn_blocking's tasks (their
    creation inlined too) get their spawn flow from Spawner::spawn_task."""
    import t_flows
    exe = _tokio_release()
    waves, n, k, nb = 4, 8, 2, 5
    plain = tl.run([exe, str(n), str(k), str(waves), str(nb)]).stdout
    log = os.path.join(_dir("tokio"), "waves.log")
    p = tl.record([exe, str(n), str(k), str(waves), str(nb)], log)
    assert p.stdout == plain, (p.stdout, plain)
    m = re.search(r"tasks (\d+) polls (\d+)", p.stdout)
    tasks, polls = int(m.group(1)), int(m.group(2))
    assert tasks == waves * n and polls >= tasks * (k + 1), p.stdout
    flows, _ = t_flows._dump_flows(log)
    ours = {i: e for i, e in flows.items() if "Yielder" in e["in"][1]}
    for e in ours.values():
        assert t_flows.RAW_POLL.match(e["in"][1]), e
    spawn = [e for e in ours.values() if not t_flows.RAW_POLL.match(e["out"][1])]
    chain = [e for e in ours.values() if t_flows.RAW_POLL.match(e["out"][1])]
    assert len(spawn) == tasks, "%d spawn flows for %d tasks: %s" % (
        len(spawn), tasks, collections.Counter(e["out"][1] for e in ours.values()))
    for e in spawn:
        assert re.search(r"OwnedTasks<.*>>::bind|RawTask>?::new", e["out"][1]), e["out"][1]
        assert any("block_on" in fr for fr in e["out"][2]), e["out"][2][-5:]
    assert len(chain) == polls - tasks, "%d poll-to-poll flows for %d polls of %d tasks" % (
        len(chain), polls, tasks)
    s = t_flows._perfetto_flows(log, os.path.join(_dir("tokio"), "waves.pb"), summary=True)
    assert s["flows"] == len(flows), (s["flows"], len(flows))
    assert s["slices_by_name"].get("tokio_flows::Yielder") == polls, s["slices_by_name"]
    nodes = t_flows._graph_json(log, ["--follow-jobs"])
    yp = [x for x in nodes if t_flows.RAW_POLL.match(x["name"]) and "Yielder" in x["name"]]
    assert sum(x["calls"] for x in yp) == polls
    # (lang_start itself is inlined in a release build: its closure is the root)
    under = [x for x in yp if x["top"].startswith(t_flows.LANG_START)]
    assert sum(x["calls"] for x in under) == polls, [
        (x["top"], x["calls"]) for x in yp if x not in under]
    for x in under:
        assert any("block_on" in f for f in t_flows._path(nodes, x)), t_flows._path(nodes, x)
    # spawn_blocking from main's block_on: one flow from Spawner::spawn_task
    # (before the task is queued) to the blocking task's poll, on the main
    # thread inside block_on. (--follow-jobs does not move the blocking
    # work: this raw::poll tail-calls Harness::poll, whose calls are then
    # beside the poll, not beneath it.)
    assert "blocking %d" % nb in p.stdout, p.stdout
    bl = [e for e in flows.values() if "spawn_task" in e["out"][1] and
          "BlockingTask<tokio_flows::main" in e["in"][1]]
    assert len(bl) == nb, collections.Counter((e["out"][1], e["in"][1][:90]) for e in flows.values())
    for e in bl:
        assert t_flows.RAW_POLL.match(e["in"][1]) and e["out"][0] != e["in"][0], e
        assert any("block_on" in fr for fr in e["out"][2]), e["out"][2][-5:]


def _prefork(mode, steps):
    """Run tried_prefork.c under `record MODE`; steps(master, a, b, go)
    drives it (go() lets the workers work and waits until both did).
    Returns the log's work calls per pid and its START/STOP marks."""
    import subprocess
    import time
    prog = tl.build_c("tried_prefork.c")
    d = _dir("prefork" + mode)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    log = os.path.join(tl.outdir("tried"), "prefork%s.log" % mode)
    if os.path.exists(log):
        os.unlink(log)
    p = subprocess.Popen([tl.SFTRACE, "record", mode, "-o", log, "--", prog, d, "300"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def go():
        open(os.path.join(d, "go"), "w").close()
        for k in (a, b):
            while not os.path.exists(os.path.join(d, "did.%d" % k)):
                assert p.poll() is None, p.stderr.read()
                time.sleep(0.01)

    try:
        line = p.stdout.readline().split()
        assert line[:1] == ["workers"], line
        a, b = int(line[1]), int(line[2])
        with open("/proc/%d/stat" % a) as f:
            master = int(f.read().rsplit(")", 1)[1].split()[1])
        steps(master, a, b, go)
    finally:
        open(os.path.join(d, "end"), "w").close()
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    ev, _ = tl.dump(log, sftrace=tl.SFTRACE_ASAN)
    work = collections.Counter(e.pid for e in ev if e.kind == "entry" and e.func == "work")
    info = json.loads(tl.run([tl.SFTRACE_ASAN, "info", "--format", "json", log]).stdout)
    return work, [(m["pid"], m["kind"]) for m in info["marks"]], a, b


def _ctl(pid, what, says):
    r = tl.run([tl.SFTRACE_ASAN, "ctl", str(pid), what], check=False, timeout=60)
    assert r.returncode == 0 and says in r.stdout, (pid, what, r.stdout, r.stderr)


def test_ctl_reaches_the_workers_of_a_paused_prefork_server():
    """A pre-fork server under `record --paused` (tried_prefork.c: the master
    forks two workers at start): each worker is born paused, as its master
    was. `sftrace ctl WORKER start` starts that worker (it said "recording is
    on already" and sent nothing: a worker had no mark of its own, and ctl
    takes a process without marks for a recording one), its calls are
    recorded exactly, `ctl WORKER stop` stops it (it waited 10 s for a mark
    and failed), and the other worker, never started, records nothing."""
    def steps(master, a, b, go):
        _ctl(a, "start", "recording started")
        go()
        _ctl(a, "stop", "recording stopped")
        _ctl(b, "stop", "off already")

    work, marks, a, b = _prefork("--paused", steps)
    assert work == {a: 300}, work
    assert [k for pid, k in marks if pid == a] == ["stop", "start", "stop"], marks


def test_ctl_stops_a_worker_forked_while_recording():
    """The other half (record --control: recording from the start): the
    workers are born recording; their master is stopped afterwards. A worker
    is still recording (its state is its own since the fork, not its
    master's now): `ctl WORKER stop` stops it, and the other worker records
    to its end."""
    def steps(master, a, b, go):
        import time
        while True:  # the master's first chunk (its PROCESS) is in the log
            r = tl.run([tl.SFTRACE_ASAN, "ctl", str(master), "stop"], check=False, timeout=60)
            if r.returncode == 0:
                break
            time.sleep(0.05)
        assert "recording stopped" in r.stdout, r.stdout
        go()
        _ctl(a, "stop", "recording stopped")
        _ctl(b, "start", "on already")

    work, marks, a, b = _prefork("--control", steps)
    assert work == {a: 300, b: 300}, work
    assert [k for pid, k in marks if pid == a] == ["stop"], marks
    assert [k for pid, k in marks if pid == b] == [], marks

def test_indirect_tail_jump_through_r11_survives_every_trampoline():
    """PostgreSQL's autovacuum launcher and every background worker died of
    SIGSEGV under record (the postmaster restarted them in a loop): in
    table_beginscan_catalog, `return rel->rd_tableam->scan_begin(six
    arguments)` is a tail jump through r11, right after the tail sled, and
    the trampolines used r11 as scratch. tried_tailr11.c has the pattern;
    it must run as untraced (output, status) under every trampoline a tail
    sled can get: the plain one (each 64 KiB buffer crossing takes the slow
    path), the _mono ones, the descendants ones (the target of the jump is
    unknown, so the frame's scope ends there) and the trace-on trigger."""
    prog = tl.build_c("tried_tailr11.c")
    dis = tl.run(["objdump", "-d", "--no-show-raw-insn", prog]).stdout
    body = dis.split("<beginscan>:", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"jmp\s+\*%r11", body), "clang no longer jumps through r11:\n" + body
    n = 100000
    plain = tl.run([prog, str(n)])
    assert plain.stdout == "%d\n" % (n * (5 + 15 + 2 + 0x3c1) + n * (n - 1) // 2), plain.stdout
    d = _dir("tailr11")
    filters = {}
    for name, args in (("main", ["--descendants", "-r", "^main$"]),
                       ("begin", ["--descendants", "-r", "^beginscan$"]),
                       ("on", ["--trace-on", "^beginscan$"])):
        filters[name] = os.path.join(d, name + ".f")
        tl.run([tl.SFTRACE, "filter", "-p", prog, "-o", filters[name]] + args)
    everything = {"main": 1, "beginscan": n, "snap": n, "scan_begin": n}
    # the descendants of beginscan end at its tail jump to a target the
    # patcher cannot see, so scan_begin is outside: as documented
    cases = [("plain", {}, [], everything),
             ("mono", {"SFTRACE_CLOCK": "mono"}, [], everything),
             ("desc_main", {}, ["-f", filters["main"]], everything),
             ("desc_begin", {}, ["-f", filters["begin"]], {"beginscan": n, "snap": n}),
             ("desc_begin_mono", {"SFTRACE_CLOCK": "mono"}, ["-f", filters["begin"]],
              {"beginscan": n, "snap": n}),
             ("trace_on", {}, ["-f", filters["on"]], everything),
             ("trace_on_mono", {"SFTRACE_CLOCK": "mono"}, ["-f", filters["on"]], everything)]
    for name, env, extra, want in cases:
        log = os.path.join(d, name + ".log")
        p = tl.record([prog, str(n)], log, env=env, extra=["-q"] + extra, check=False)
        assert p.returncode == 0 and p.stdout == plain.stdout, \
            "%s: status %d, output %r (untraced: %r) %s" % (name, p.returncode, p.stdout,
                                                           plain.stdout, p.stderr)
        rep = tl.run([tl.SFTRACE_ASAN, "report", "-q", "--format", "csv", "--limit", "0", log])
        got = {r.split(",")[0]: int(r.split(",")[1]) for r in rep.stdout.splitlines()[1:]}
        assert got == want, (name, got)


def test_longjmp_recovery_in_an_executable_that_exports_its_functions():
    """PostgreSQL's ereport(ERROR): errfinish -> pg_re_throw -> siglongjmp
    to PostgresMain's sigsetjmp, whose recovery (EmitErrorReport,
    AbortCurrentTransaction) runs next. postgres is linked with -rdynamic,
    so every function is in .dynsym, and the call graph took every exported
    function for "callable from anywhere": the unwinding rule never fired,
    and everything after the first error of a session nested under
    pg_re_throw, one level deeper per error. tried_pgerror.c, linked
    -rdynamic, has 2 errors in 4 queries: the frames of each end where the
    longjmp left them, the recovery and the next queries are main's."""
    src = "tried_pgerror.c"
    prog = tl.build_c(src, out=os.path.join(tl.outdir("bin"), "tried_pgerror_rdynamic"),
                      flags=["-rdynamic"])
    plain = tl.run([prog, "4"]).stdout
    assert plain == "42222\n", plain
    log = os.path.join(_dir(), "pgerror.log")
    tl.record([prog, "4"], log)

    def check():
        calls = [c._asdict() for c in t_calls._calls(log, sftrace=tl.SFTRACE_ASAN)]
        by_id = {c["id"]: c for c in calls}
        names = [c["name"] for c in calls]
        assert names.count("re_throw") == 2 and names.count("exec_query") == 4, names
        parent = {n: sorted({by_id[c["parent"]]["name"] for c in calls if c["name"] == n})
                  for n in ("emit_error_report", "abort_transaction", "ready_for_query",
                            "exec_query")}
        assert all(p == ["main"] for p in parent.values()), parent
        unwound = sorted(c["name"] for c in calls if "w" in c["flags"])
        assert unwound == sorted(["exec_query", "int4div", "errfinish", "re_throw"] * 2), unwound
        for c in calls:
            if c["name"] == "re_throw":
                assert not [x for x in calls if x["parent"] == c["id"]], "calls under re_throw"

    _open("test_longjmp_recovery_in_an_executable_that_exports_its_functions", check)


def test_short_tail_jump_to_the_next_function_is_an_edge():
    """postgres's fmgr_info ends with `jmp fmgr_info_cxt_security`, the
    function placed right after it: clang writes a short jump (eb rel8),
    which the call graph did not read, so the entry of the callee beneath
    fmgr_info's caller looked like a longjmp out of that caller whenever an
    outer frame calls the callee directly (postgres: 'exits without entry'
    in every backend once its exported functions stopped being 'taken').
    tried_shortjmp.c: outer -> jumper =(eb)=> next_fn, and main calls
    next_fn too; nothing is unwound."""
    prog = tl.build_c("tried_shortjmp.c")
    dis = tl.run(["objdump", "-d", prog]).stdout
    body = dis.split("<jumper>:", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"\beb [0-9a-f]{2}\s+jmp\s+[0-9a-f]+ <next_fn>", body), \
        "clang no longer makes a short tail jump:\n" + body
    log = os.path.join(_dir(), "shortjmp.log")
    p = tl.record([prog, "3"], log)
    assert p.stdout == "24\n", p.stdout

    def check():
        calls = [c._asdict() for c in t_calls._calls(log, sftrace=tl.SFTRACE_ASAN)]
        by_id = {c["id"]: c for c in calls}
        bad = [(c["name"], c["flags"]) for c in calls if "w" in c["flags"] or "u" in c["flags"]]
        assert not bad, "unwound though nothing unwound: %s" % bad
        parents = [by_id[c["parent"]]["name"] for c in calls if c["name"] == "next_fn"]
        assert parents == ["outer", "main"] * 3, parents

    _open("test_short_tail_jump_to_the_next_function_is_an_edge", check)


def test_ctl_starts_a_forked_child_of_a_paused_process():
    """PostgreSQL under `record --paused`: `sftrace ctl BACKEND start` said
    nothing, exited 0 and recorded nothing, and `ctl BACKEND stop` waited
    10 s and failed: a forked child that has recorded nothing has no mark
    of its own, and ctl took "no mark" for "recording" (a --control start)
    without signalling it; and postgres takes SIGUSR1 for itself, which
    replaced the runtime's handler, so ctl's requests went to the program.
    tried_pausedfork.c forks a child that serves stdin lines (with its title
    written over its environment and its own SIGUSR1 handler, as a backend,
    and without); ctl start and stop must work on it, exactly the 2 work()
    calls between them be in the log, and the child's own SIGUSR1s still
    reach its handler. Under --control the child records from its start,
    and stop then start keep the 1 + 1 calls."""
    prog = tl.build_c("tried_pausedfork.c")
    for mode, title in (("--paused", False), ("--paused", True), ("--control", True)):
        log = os.path.join(_dir(), "pausedfork%s.log" % mode)
        p = _Served([mode], log, [prog] + (["title"] if title else []))
        say = p.say

        def ctl(what):
            return tl.run([tl.SFTRACE_ASAN, "ctl", str(pid), what], check=False)

        try:
            pid = int(say("pid").split()[1])
            if title:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    assert b"SFTRACE_OUTPUT_FILE" not in f.read(), "the title was not set"
            if mode == "--paused":
                assert say("work") == "ok 1"
                r = [ctl("start")]
                assert say("work") == "ok 2" and say("work") == "ok 3"
                r.append(ctl("stop"))
                assert say("work") == "ok 4"
                want = 2
            else:
                assert say("work") == "ok 1"
                r = [ctl("stop")]
                assert say("work") == "ok 2"
                r.append(ctl("start"))
                assert say("work") == "ok 3"
                want = 2
            if title:
                assert say("usr1") == "usr1 1"
        finally:
            p.quit()
        outs = [(x.returncode, x.stdout.strip(), x.stderr.strip()) for x in r]
        first, second = ("started", "stopped") if mode == "--paused" else ("stopped", "started")
        assert outs == [(0, "sftrace ctl: pid %d: recording %s" % (pid, first), ""),
                        (0, "sftrace ctl: pid %d: recording %s" % (pid, second), "")], \
            (mode, title, outs)
        rep = tl.run([tl.SFTRACE_ASAN, "report", "-q", "--limit", "0", "--pid", str(pid), log])
        assert re.search(r"^ +%d .* work$" % want, rep.stdout, re.M), (mode, title, rep.stdout)


def test_longjmp_into_another_object_that_calls_back_by_name():
    """A PL/pgSQL EXCEPTION block: postgres's pg_re_throw siglongjmps into
    plpgsql.so's exec_stmt_block (PG_TRY), whose PG_CATCH calls the
    backend's CopyErrorData and RollbackAndReleaseCurrentSubTransaction
    through its PLT; the engine decided nothing across objects, so those
    (and what they call) hung under pg_re_throw until exec_stmt_block
    returned. tried_plcatch.c (-rdynamic) with tried_plcatch_lib.c: 2 errors
    in 4 blocks; each block's recovery calls are its children, the frames
    the longjmp left are unwound, and an outer frame of the executable that
    calls copy_error_data too (main) changes nothing."""
    lib = tl.build_c("tried_plcatch_lib.c", shared=True)
    prog = tl.build_c("tried_plcatch.c", flags=["-rdynamic"],
                      libs=[lib, "-Wl,-rpath," + os.path.dirname(lib)])
    log = os.path.join(_dir(), "plcatch.log")
    p = tl.record([prog, "4"], log)
    assert p.stdout == "2322\n", p.stdout

    def check():
        calls = [c._asdict() for c in t_calls._calls(log, sftrace=tl.SFTRACE_ASAN)]
        by_id = {c["id"]: c for c in calls}
        parents = [by_id[c["parent"]]["name"] for c in calls
                   if c["name"] in ("copy_error_data", "rollback_subxact")]
        assert parents == ["exec_stmt_block"] * 4 + ["main"], parents
        unwound = sorted(c["name"] for c in calls if "w" in c["flags"])
        assert unwound == sorted(["spi_exec", "int4div", "errfinish", "re_throw"] * 2), unwound
        rep = tl.run([tl.SFTRACE_ASAN, "report", "-q", log]).stdout
        assert " 0 exits without entry" in rep, rep

    _open("test_longjmp_into_another_object_that_calls_back_by_name", check)
