"""t_cli.py - what a newcomer meets first: help, --version, the man page,
`make install`, installing the runtime, and record refusing a runtime that is
not its own.

The help tests walk the command table as `sftrace --help` prints it, so a new
subcommand is checked (its --help, `sftrace help NAME`, its man page section)
without editing this file.
"""
import collections
import os
import re
import shutil
import struct
import subprocess

import tl

LIBS = ["-lpthread", "-ldl"]
OTHER_VERSION = "0.0.1-cli-test"


def _dir(*parts):
    return tl.outdir("cli", *parts)


def _fresh(*parts):
    d = os.path.join(tl.OUT, "cli", *parts)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def _tools():
    tools = [tl.SFTRACE]
    if os.path.exists(tl.SFTRACE_ASAN):
        tools.append(tl.SFTRACE_ASAN)
    return tools


def _clean(p):
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr


def _version():
    """The version the build wrote into build/gen/version.h."""
    with open(os.path.join(tl.BUILD, "gen", "version.h")) as f:
        return re.search(r'#define SFTRACE_VERSION "([^"]+)"', f.read()).group(1)


def _commands(sftrace=tl.SFTRACE):
    p = tl.run([sftrace, "--help"])
    text = p.stdout.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in text.splitlines()]


# ---- --version and help -----------------------------------------------------


def test_version():
    want = _version()
    assert re.match(r"^\d+\.\d+\.\d+", want), want
    with open(os.path.join(tl.ROOT, "VERSION")) as f:
        assert want.startswith(f.read().strip()), want
    for sf in _tools():
        outs = set()
        for arg in ("--version", "-V", "version"):
            p = tl.run([sf, arg])
            _clean(p)
            assert p.stderr == "", p.stderr
            outs.add(p.stdout)
        assert len(outs) == 1, outs
        lines = outs.pop().splitlines()
        assert lines[0] == "sftrace " + want, lines
        assert lines[1] == "log format %d.%d" % _log_format(), lines


def test_help_for_every_command():
    cmds = _commands()
    # every existing command; new ones are checked as they are added
    assert {"record", "dump", "convert", "filter"} <= set(cmds), cmds
    for sf in _tools():
        top = tl.run([sf, "--help"])
        assert top.stdout.startswith("usage: sftrace COMMAND") and top.stderr == "", top
        for arg in ("-h", "help"):
            p = tl.run([sf, arg])
            assert (p.stdout, p.stderr) == (top.stdout, ""), (arg, p.stdout, p.stderr)
        for cmd in cmds:
            outs = set()
            for args in ([cmd, "--help"], [cmd, "-h"], ["help", cmd]):
                p = tl.run([sf] + args, check=False)
                _clean(p)
                assert p.returncode == 0, (args, p.returncode, p.stderr)
                assert p.stderr == "", (args, p.stderr)
                assert p.stdout.startswith("usage: sftrace %s" % cmd), (args, p.stdout[:200])
                outs.add(p.stdout)
            assert len(outs) == 1, (cmd, outs)


def test_usage_errors():
    for sf in _tools():
        p = tl.run([sf], check=False)
        assert p.returncode == 2 and p.stdout == "" and "usage: sftrace" in p.stderr, p
        for args in (["nosuchcmd"], ["help", "nosuchcmd"]):
            p = tl.run([sf] + args, check=False)
            _clean(p)
            assert p.returncode == 2 and p.stdout == "", (args, p)
            assert "unknown command 'nosuchcmd'" in p.stderr, (args, p.stderr)
            assert "record" in p.stderr, p.stderr  # the list of commands follows


# ---- the man page and make install ---------------------------------------------

MAN = os.path.join(tl.ROOT, "docs", "sftrace.1")


def _env_names():
    """SFTRACE_* variables the runtime or the tools read or set."""
    names = set()
    for d in ("runtime", "cmd", "lib", "common"):
        for f in os.listdir(os.path.join(tl.ROOT, d)):
            if f.endswith((".c", ".h")):
                with open(os.path.join(tl.ROOT, d, f)) as fh:
                    names |= set(re.findall(r'"(SFTRACE_[A-Z_]+)"', fh.read()))
    return names


def test_man_page_covers_commands_and_environment():
    with open(MAN) as f:
        man = f.read()
    sections = set(re.findall(r"^\.SS (\S+)$", man, re.M))
    assert set(_commands()) <= sections, (sorted(_commands()), sorted(sections))
    env = _env_names()
    assert {"SFTRACE_OUTPUT_FILE", "SFTRACE_FILTER", "SFTRACE_RECORD_VERSION"} <= env, env
    missing = sorted(n for n in env if n not in man)
    assert not missing, "the man page does not describe %s" % missing
    for opt in ("--install-solib", "--print-solib", "--exact", "--version"):
        assert opt.replace("-", r"\-") in man, opt
    if tl.have("groff"):
        p = tl.run(["groff", "-man", "-ww", "-z", MAN])
        assert p.stderr == "", p.stderr


def test_make_install_man_page():
    prefix = _fresh("prefix")
    tl.run(["make", "-s", "-C", tl.ROOT, "install", "PREFIX=" + prefix], timeout=600)
    man = os.path.join(prefix, "share", "man", "man1", "sftrace.1")
    with open(man) as f:
        text = f.read()
    assert "@VERSION@" not in text and '"sftrace %s"' % _version() in text, text[:600]
    assert oct(os.stat(man).st_mode & 0o777) == "0o644"
    p = tl.run([os.path.join(prefix, "bin", "sftrace"), "--version"])
    assert p.stdout.splitlines()[0] == "sftrace " + _version()
    if tl.have("man"):
        p = tl.run(["man", "-l", man], env={"MANWIDTH": "80", "MANPAGER": "cat", "PAGER": "cat"})
        assert "sftrace record" in p.stdout and "--install-solib" in p.stdout, p.stdout[:1000]


# ---- make on a fresh machine --------------------------------------------------


def test_make_installs_deps_first():
    # plain `make` runs scripts/deps.sh before compiling anything, and NODEPS=1
    # skips it; on this machine (everything installed) the script says nothing
    p = tl.run(["make", "-n", "-B", "-C", tl.ROOT, "all", "BUILD=" + _dir("dry")])
    cmds = [l for l in p.stdout.splitlines() if l.strip() and not l.startswith("make")]
    first_cc = next(i for i, l in enumerate(cmds) if l.startswith(("cc ", "gcc ", "clang ")))
    assert any("scripts/deps.sh" in l for l in cmds[:first_cc]), cmds[:first_cc + 1]
    p = tl.run(["make", "-n", "-B", "-C", tl.ROOT, "all", "NODEPS=1", "BUILD=" + _dir("dry")])
    assert "deps.sh" not in p.stdout, p.stdout
    p = tl.run(["sh", os.path.join(tl.ROOT, "scripts", "deps.sh")])
    assert p.stdout == "" and p.stderr == "", p


# ---- the Perfetto validator in the repository ------------------------------------


def test_perfetto_checker_in_repository():
    own = os.path.join(tl.ROOT, "tests", "perfetto", "check_perfetto.py")
    assert os.path.isfile(own)
    shared = os.path.join(os.path.dirname(tl.ROOT), "shared", "perfetto", "check_perfetto.py")
    assert tl.PERFETTO_CHECK == (shared if os.path.isfile(shared) else own), tl.PERFETTO_CHECK
    p = tl.run(["python3", own, "--self-test"], timeout=300)
    assert "ALL PASS" in p.stdout, p.stdout[-2000:]


# ---- installing the runtime -----------------------------------------------------


def _prog():
    return tl.build_c("recursion.c", flags=tl.WARN_CFLAGS)


def test_install_solib_creates_the_directory():
    with open(tl.RUNTIME, "rb") as f:
        runtime = f.read()
    # XDG_DATA_HOME whose parents do not exist yet
    base = _fresh("install")
    xdg = os.path.join(base, "a", "b", "data")
    env = {"XDG_DATA_HOME": xdg}
    p = tl.run([tl.SFTRACE, "record", "--install-solib"], env=env)
    dst = os.path.join(xdg, "sftrace", "libsftrace.so")
    assert p.stdout == "installed %s (version %s, from %s)\n" % (dst, _version(), tl.RUNTIME), \
        p.stdout
    with open(dst, "rb") as f:
        assert f.read() == runtime
    assert os.access(dst, os.X_OK)
    p = tl.run([tl.SFTRACE, "record", "--print-solib"], env=env)
    assert p.stdout == dst + "\n", p.stdout
    # record then uses it, and it records
    log = os.path.join(base, "x.log")
    p = tl.record(["/usr/bin/env"], log, env=env)
    assert "LD_PRELOAD=" + dst in p.stdout, p.stdout
    p = tl.record([_prog(), "5", "2"], log, env=env)
    ev, _ = tl.dump(log)
    assert tl.counts(ev)["fib"] == 15, tl.counts(ev)
    # again, over a stale file: replaced by rename (a new inode), not rewritten
    with open(dst, "wb") as f:
        f.write(b"stale")
    ino = os.stat(dst).st_ino
    tl.run([tl.SFTRACE, "record", "--install-solib"], env=env)
    assert os.stat(dst).st_ino != ino
    with open(dst, "rb") as f:
        assert f.read() == runtime
    assert [f for f in os.listdir(os.path.dirname(dst))] == ["libsftrace.so"]
    # a fresh home: no ~/.local/share at all
    home = os.path.join(base, "home")
    os.makedirs(home)
    env = dict(os.environ, HOME=home)
    env.pop("XDG_DATA_HOME", None)
    for sf in _tools():
        p = subprocess.run([sf, "record", "--install-solib", "--solib", tl.RUNTIME], env=env,
                           capture_output=True, text=True)
        _clean(p)
        dst = os.path.join(home, ".local", "share", "sftrace", "libsftrace.so")
        assert p.returncode == 0 and p.stdout.startswith("installed %s " % dst), p
        assert os.path.isfile(dst)
        shutil.rmtree(os.path.join(home, ".local"))


def test_install_solib_refuses_a_bad_source():
    xdg = _fresh("install-bad")
    bad = os.path.join(xdg, "not-a-runtime.so")
    with open(bad, "w") as f:
        f.write("hello\n")
    p = tl.run([tl.SFTRACE, "record", "--install-solib", "--solib", bad],
               env={"XDG_DATA_HOME": xdg}, check=False)
    assert p.returncode == 1 and bad in p.stderr and "not an ELF file" in p.stderr, p
    assert not os.path.exists(os.path.join(xdg, "sftrace"))
    # it installs, it does not also run a command
    for opt in ("--install-solib", "--print-solib"):
        p = tl.run([tl.SFTRACE, "record", opt, "--", "touch", os.path.join(xdg, "ran")],
                   env={"XDG_DATA_HOME": xdg}, check=False)
        assert p.returncode == 2 and "%s takes no command" % opt in p.stderr, p
    assert sorted(os.listdir(xdg)) == ["not-a-runtime.so"], os.listdir(xdg)


# ---- record checks the runtime it preloads ------------------------------------------


def _other_version_runtime():
    """libsftrace.so built from these sources with another version define."""
    build = _dir("other-build")
    tl.run(["make", "-s", "-C", tl.ROOT, "NODEPS=1", "BUILD=" + build,
            "SF_VERSION=" + OTHER_VERSION, os.path.join(build, "libsftrace.so")], timeout=600)
    return os.path.join(build, "libsftrace.so")


def _libz():
    out = tl.run(["ldd", tl.SFTRACE]).stdout
    return re.search(r"libz\.so\.1 => (\S+)", out).group(1)


def _nopie():
    return tl.build_c("recursion.c", out=os.path.join(_dir(), "recursion_nopie"),
                      flags=tl.WARN_CFLAGS + ["-fno-pie", "-no-pie"])


def _old_runtime():
    """Our runtime without its version note: what a copy from before version
    checks looks like."""
    out = os.path.join(_dir(), "old-libsftrace.so")
    tool = "objcopy" if tl.have("objcopy") else "llvm-objcopy"
    tl.run([tool, "--remove-section=.note.sftrace", tl.RUNTIME, out])
    return out


def _bad_runtimes():
    """(name, write the file at path, what record must say)"""
    def copy(src):
        return lambda path: shutil.copyfile(src, path)

    def empty(path):
        open(path, "w").close()

    def truncated(path):  # a copy that was cut short
        with open(tl.RUNTIME, "rb") as f, open(path, "wb") as out:
            out.write(f.read(8192))

    return [
        ("empty", empty, "not an ELF file (it is empty)"),
        ("text", lambda p: open(p, "w").write("#!/bin/sh\n"), "not an ELF file"),
        ("libz", copy(_libz()), "not the sftrace runtime"),
        ("executable", copy("/bin/true"), "not the sftrace runtime"),
        ("truncated", truncated, "a truncated or damaged ELF file"),
        ("non-pie", copy(_nopie()), "not an x86-64 or aarch64 shared library"),
        ("old", copy(_old_runtime()), "an sftrace runtime from before version checks"),
        ("other-version", copy(_other_version_runtime()),
         "is version %s, but this sftrace is %s" % (OTHER_VERSION, _version())),
    ]


def test_record_refuses_a_bad_runtime_in_the_install_dir():
    for name, make, says in _bad_runtimes():
        xdg = _fresh("bad-" + name)
        lib = os.path.join(xdg, "sftrace", "libsftrace.so")
        os.makedirs(os.path.dirname(lib))
        make(lib)
        env = {"XDG_DATA_HOME": xdg}
        marker = os.path.join(xdg, "ran")
        for sf in _tools():
            p = tl.run([sf, "record", "-o", os.path.join(xdg, "x.log"), "--", "touch", marker],
                       env=env, check=False)
            _clean(p)
            assert p.returncode == 1, (name, p.returncode, p.stderr)
            # one message: the file, where it was found, what is wrong, what to do
            assert p.stderr.count("\n") == 1, (name, p.stderr)
            assert lib in p.stderr and "found in the install directory" in p.stderr, p.stderr
            assert says in p.stderr, (name, says, p.stderr)
            assert "sftrace record --install-solib" in p.stderr, p.stderr
            assert "instrumented" not in p.stderr and "XRay" not in p.stderr, p.stderr
            assert not os.path.exists(marker), name  # the command did not run
            p = tl.run([sf, "record", "--print-solib"], env=env, check=False)
            assert p.returncode == 1 and says in p.stderr and p.stdout == "", (name, p)
        # --install-solib repairs it
        tl.run([tl.SFTRACE, "record", "--install-solib"], env=env)
        p = tl.run([tl.SFTRACE, "record", "-o", os.path.join(xdg, "x.log"), "--", "touch", marker],
                   env=env)
        assert os.path.exists(marker)


def test_record_refuses_a_bad_solib_option():
    for name, make, says in _bad_runtimes():
        path = os.path.join(_dir(), "given-%s.so" % name)
        make(path)
        p = tl.record(["/bin/true"], os.path.join(_dir(), "given.log"),
                      extra=["--solib", path], check=False)
        assert p.returncode == 1, (name, p.stderr)
        assert os.path.realpath(path) in p.stderr and "given with --solib" in p.stderr, p.stderr
        assert says in p.stderr, (name, p.stderr)


# ---- the runtime checks record's version -----------------------------------------------


def test_runtime_refuses_another_record_version():
    other = _other_version_runtime()
    prog = tl.build_c("cli_spawn.c", flags=tl.WARN_CFLAGS)
    plain = tl.run([prog])
    d = _fresh("runtime-check")
    log = os.path.join(d, "x.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFTRACE_")}
    env.update(SFTRACE_OUTPUT_FILE=log, SFTRACE_RECORD_VERSION=_version(), LD_PRELOAD=other)
    p = subprocess.run([prog], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    # the program is unchanged (3 processes run), and one line says why nothing
    # was recorded: in the first process only
    assert re.sub(r"\d+", "N", p.stdout) == re.sub(r"\d+", "N", plain.stdout), p.stdout
    assert p.stderr == ("sftrace: not tracing: the runtime %s is version %s but sftrace record "
                        "is %s; run `sftrace record --install-solib` or pass --solib\n"
                        % (other, OTHER_VERSION, _version())), p.stderr
    assert not os.path.exists(log)
    # the same runtime with its own version, or without record, records
    for extra in ({"SFTRACE_RECORD_VERSION": OTHER_VERSION}, {}):
        e = dict(env)
        e.pop("SFTRACE_RECORD_VERSION")
        e.update(extra)
        p = subprocess.run([prog], env=e, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and p.stderr == "", p.stderr
        ev, _ = tl.dump(log)
        assert tl.counts(ev)["child_work"] == 9, tl.counts(ev)
        os.unlink(log)


# ---- processes and process images in record's summary ---------------------------------


def _summary(cmd, name):
    log = os.path.join(_dir(), name + ".log")
    p = tl.record(cmd, log)
    _, chunks = tl.read_log(log)
    procs = [c for c in chunks if c["type"] == tl.CHUNK_PROCESS]
    return tl.record_summary(p.stderr), procs, p


def test_processes_and_images():
    rec = tl.build_c("recursion.c", flags=tl.WARN_CFLAGS)
    spawn = tl.build_c("cli_spawn.c", flags=tl.WARN_CFLAGS)
    # bash execs the program: one process, two images (bash, then the program)
    s, procs, p = _summary(["bash", "-c", "exec %s 5 2" % rec], "exec")
    assert (s["processes"], s["images"], s["threads"]) == (1, 2, 1), (s, p.stderr)
    assert len(set(c["pid"] for c in procs)) == 1 and procs[1]["flags"] & tl.PROC_EXECED, procs
    assert " 1 process, 2 images, " in p.stderr, p.stderr
    # bash forks a child that execs the program: two processes, two images
    s, procs, p = _summary(["bash", "-c", "%s 5 2; true" % rec], "fork-exec-bash")
    assert (s["processes"], s["images"]) == (2, 2), (s, p.stderr)
    # the program alone
    s, _, p = _summary([rec, "5", "2"], "alone")
    assert (s["processes"], s["images"], s["threads"]) == (1, 1, 1), (s, p.stderr)
    assert " 1 thread, 1 process, 1 image, " in p.stderr, p.stderr
    # fork, the child records then execs; posix_spawn: 3 processes, 4 images
    s, procs, p = _summary([spawn], "spawn")
    ppid, fpid, spid = (int(x) for x in
                        re.search(r"parent pid (\d+) fork (\d+) spawn (\d+)", p.stdout).groups())
    per_pid = collections.Counter(c["pid"] for c in procs)
    assert per_pid == {ppid: 1, fpid: 2, spid: 1}, per_pid
    forked = [c for c in procs if c["pid"] == fpid]
    assert forked[0]["flags"] & tl.PROC_FORKED and forked[1]["flags"] & tl.PROC_EXECED, forked
    assert (s["processes"], s["images"], s["threads"]) == (3, 4, 3), (s, p.stderr)
    assert " 3 processes, 4 images, " in p.stderr, p.stderr
    # under bash -c 'exec ...' the same program adds an image, not a process
    s, _, p = _summary(["bash", "-c", "exec " + spawn], "spawn-exec")
    assert (s["processes"], s["images"]) == (3, 5), (s, p.stderr)


def _log_format():
    """The log format version the tools write, read from common/logfmt.h."""
    with open(os.path.join(tl.ROOT, "common", "logfmt.h")) as f:
        src = f.read()
    major = re.search(r"#define SF_VERSION_MAJOR (\d+)", src)
    minor = re.search(r"#define SF_VERSION_MINOR (\d+)", src)
    return int(major.group(1)), int(minor.group(1))


# ---- bad arguments: one line naming what is wrong, and a non-zero exit ---------

READERS = ["dump", "convert", "report", "graph", "flame", "info", "memory"]


def _damaged_log():
    """A real log (examples/demo.c, 5 threads) cut in the middle of its last
    EVENTS chunk: complete chunks with events before the cut."""
    d = _dir("bad-args")
    prog = tl.build_c(os.path.join(tl.ROOT, "examples", "demo.c"),
                      out=os.path.join(d, "demo"), flags=["-pthread"])
    log = os.path.join(d, "whole.log")
    tl.record([prog], log)
    with open(log, "rb") as f:
        data = f.read()
    off, last = 64, None
    while off + 16 <= len(data):
        magic, ctype, _, size, _ = struct.unpack_from("<IHHII", data, off)
        assert magic == 0x4B434653 and size >= 16, (off, magic, size)
        if ctype == 4:  # EVENTS
            last = (off, size)
        off += size
    assert off == len(data) and last, (off, len(data))
    cut = os.path.join(d, "cut.log")
    with open(cut, "wb") as f:
        f.write(data[:last[0] + last[1] // 2])
    return cut, last[0]


def _bad_inputs():
    d = _fresh("bad-inputs")
    empty = os.path.join(d, "empty.log")
    open(empty, "w").close()
    text = os.path.join(d, "notes.txt")
    with open(text, "w") as f:
        f.write("not a log at all\n" * 10)
    return [(os.path.join(d, "missing.log"), "No such file or directory"),
            (d, "is a directory"),
            (empty, "empty file, not an sftrace log"),
            (text, "not an sftrace log (magic)")]


def _out_args(cmd, d):
    # the writers get an output in the scratch directory, never the cwd
    if cmd == "convert":
        return ["-o", os.path.join(d, "out.pb.gz")]
    if cmd == "flame":
        return ["-o", os.path.join(d, "out.svg")]
    return []


def test_readers_refuse_what_is_not_a_log():
    # exit 1 and one line "sftrace CMD: PATH: what" (README: "1 when the file
    # is not a log at all"); nothing on stdout
    d = _dir("bad-args")
    for sf in _tools():
        for path, what in _bad_inputs():
            for cmd in READERS:
                p = tl.run([sf, cmd] + _out_args(cmd, d) + [path], check=False, timeout=60)
                _clean(p)
                assert p.returncode == 1, (cmd, path, p.returncode, p.stderr)
                assert p.stderr.splitlines() == ["sftrace %s: %s: %s" % (cmd, path, what)] or \
                    p.stderr.startswith("sftrace %s: %s: offset 0: %s\n" % (cmd, path, what)), \
                    (cmd, path, p.stderr)
                assert p.stdout == "", (cmd, path, p.stdout[:300])


def test_readers_exit_3_on_a_damaged_log():
    # README: skip what is damaged, say once where, use the rest, a summary
    # line, exit 3 (sftrace memory exited 0)
    cut, at = _damaged_log()
    d = _dir("bad-args")
    for sf in _tools():
        for cmd in READERS:
            p = tl.run([sf, cmd, "-q"] + _out_args(cmd, d) + [cut], check=False, timeout=60)
            _clean(p)
            assert p.returncode == 3, (cmd, p.returncode, p.stderr)
            where = "sftrace %s: %s: offset %d: EVENTS chunk" % (cmd, cut, at)
            assert sum(where in line for line in p.stderr.splitlines()) == 1, (cmd, p.stderr)
            assert "sftrace %s: %s: damaged log: truncated at offset %d" % (cmd, cut, at) \
                in p.stderr, (cmd, p.stderr)
            if cmd not in ("convert", "flame"):
                assert p.stdout, (cmd, "no output from what was readable")


def test_missing_and_extra_operands_are_named():
    cut, _ = _damaged_log()
    for sf in _tools():
        for cmd, takes in [(c, "LOG") for c in READERS if c not in ("report", "graph")] + \
                [("graph", "LOG [REGEX]")]:
            p = tl.run([sf, cmd], check=False)
            assert p.returncode == 2 and p.stderr.startswith("sftrace %s: missing LOG\n" % cmd), \
                (cmd, p.returncode, p.stderr[:200])
            assert "usage: sftrace %s" % cmd in p.stderr, p.stderr
            extra = [cut, "x", "y"] if "REGEX" in takes else [cut, "y"]
            p = tl.run([sf, cmd] + extra, check=False)
            assert p.returncode == 2 and p.stderr.startswith(
                "sftrace %s: unexpected argument 'y' (it takes %s)\n" % (cmd, takes)), \
                (cmd, p.returncode, p.stderr[:200])
        for args, first in [(["ctl"], "sftrace ctl: missing PID"),
                            (["ctl", "1"], "sftrace ctl: missing start, stop or toggle"),
                            (["ctl", "1", "begin"], "sftrace ctl: 'begin' is not start, stop or "
                                                    "toggle"),
                            (["snapshot"], "sftrace snapshot: missing PID"),
                            (["attach"], "sftrace attach: missing PID")]:
            p = tl.run([sf] + args, check=False)
            assert p.returncode == 2 and p.stderr.splitlines()[0] == first, (args, p.stderr)


def test_record_refuses_what_it_cannot_run():
    d = _fresh("bad-cmd")
    text = os.path.join(d, "notes.txt")
    with open(text, "w") as f:
        f.write("echo hi\n")
    log = os.path.join(d, "x.log")
    for args, rc, msg in [([d], 126, "%s: is a directory" % d),
                          ([text], 126, "%s: Permission denied" % text),
                          ([os.path.join(d, "nope")], 127,
                           "%s: No such file or directory" % os.path.join(d, "nope")),
                          (["sftrace-no-such-command"], 127,
                           "sftrace-no-such-command: command not found")]:
        p = tl.run([tl.SFTRACE, "record", "-o", log, "--"] + args, check=False)
        assert p.returncode == rc and p.stderr == "sftrace record: %s\n" % msg, \
            (args, p.returncode, p.stderr)
        assert not os.path.exists(log), "record wrote a log for a command it could not run"
    p = tl.run([tl.SFTRACE, "record", "-o", log, "--paused", "--control", "--", "true"],
               check=False)
    assert p.returncode == 2 and "--paused or --control, not both" in p.stderr, p.stderr
    # a bad value is quoted once
    p = tl.run([tl.SFTRACE, "attach", "1", "--duration", "soon"], check=False)
    assert p.returncode == 2 and p.stderr == (
        "sftrace record: --duration 'soon': not a duration (want a number and a unit: 1.5s, "
        "200ms, 30us, 12ns)\n"), p.stderr


def test_bad_regexes_are_usage_errors():
    # a bad regex is the user's argument: status 2, the option named as given
    cut, _ = _damaged_log()
    for sf in _tools():
        for args, first in [
                (["graph", cut, "("], "sftrace graph: REGEX '(': bad regular expression at "
                                      "offset 1: missing closing parenthesis"),
                (["convert", "--milestone", "(", cut], "sftrace convert: --milestone '(': bad "
                 "regular expression at offset 1: missing closing parenthesis"),
                (["memory", "--milestone", "(", cut], "sftrace memory: --milestone '(': bad "
                 "regular expression at offset 1: missing closing parenthesis"),
                (["dump", "-F", "(", cut], "sftrace dump: -F '(': bad regular expression at "
                                           "offset 1: missing closing parenthesis")]:
            p = tl.run([sf] + args, check=False)
            _clean(p)
            assert p.returncode == 2 and p.stderr.splitlines()[0] == first, (args, p.stderr)
            assert p.stdout == "", (args, p.stdout[:200])
