"""t_abi.py - the opt-in C ABI (include/sftrace.h), the Rust crate
(bindings/rust/sftrace-setup) and the install layout.

Programs here link libsftrace.so as DT_NEEDED and call sftrace_setup()
themselves, so they are traced with only SFTRACE_OUTPUT_FILE set: no
`sftrace record`, no LD_PRELOAD. Every check is exact: call counts, tids,
allocation sizes and pointers against what the program printed.
"""
import collections
import os
import re
import shutil
import subprocess

import tl

INCLUDE = os.path.join(tl.ROOT, "include")
HEADER = os.path.join(INCLUDE, "sftrace.h")
CRATE = os.path.join(tl.ROOT, "bindings", "rust", "sftrace-setup")
RUST_PROG = os.path.join(tl.PROGS, "abi_rust")

# abi_setup.c: ROUNDS 4, INNER 5.
SETUP_CALLS = {"main": 1, "outer": 4, "inner": 20, "leaf": 40}
SETUP_RC = 3


def _out(*parts):
    return os.path.join(tl.outdir("abi"), *parts)


def _env(extra=None):
    """os.environ without anything that would trace or redirect the program."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SFTRACE_") and k not in ("LD_PRELOAD", "LD_LIBRARY_PATH")}
    env.update(extra or {})
    return env


def _run(cmd, env=None, cwd=None, timeout=120):
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(env), cwd=cwd,
                          timeout=timeout, errors="replace")


def _ok(p, rc=0, what=None):
    assert p.returncode == rc, "%s exited %d, expected %d\nstdout:\n%s\nstderr:\n%s" % (
        what or " ".join(p.args), p.returncode, rc, p.stdout[-3000:], p.stderr[-3000:])
    return p


_NO_LINK_DEPS = []


def _no_link_deps_flag():
    """-fno-xray-link-deps; clang before 15 spells it -fnoxray-link-deps."""
    if not _NO_LINK_DEPS:
        for flag in ("-fno-xray-link-deps", "-fnoxray-link-deps"):
            p = subprocess.run(["clang", "-fxray-instrument", flag, "-###", "-x", "c", "-c",
                                os.devnull, "-o", os.devnull], capture_output=True)
            if p.returncode == 0:
                _NO_LINK_DEPS.append(flag)
                break
        else:
            raise AssertionError("clang accepts neither -fno-xray-link-deps nor -fnoxray-link-deps")
    return _NO_LINK_DEPS[0]


def _build(src, name, link_deps=False, cflags=(), libs=None, compiler="clang"):
    """Build tests/programs/<src> with XRay, linked against build/libsftrace.so
    (DT_NEEDED, found through its rpath). link_deps: let clang link its own
    XRay runtime too (no -fno-xray-link-deps)."""
    path = os.path.join(tl.PROGS, src)
    out = _out(name)
    if tl._stale(out, [path, HEADER, __file__]):
        if libs is None:
            libs = ["-L", tl.BUILD, "-lsftrace", "-Wl,-rpath," + tl.BUILD]
        cmd = ([compiler] + tl.XRAY_CFLAGS + tl.WARN_CFLAGS
               + ([] if link_deps else [_no_link_deps_flag()])
               + ["-I", INCLUDE] + list(cflags) + [path, "-o", out] + list(libs) + ["-lpthread"])
        tl.run(cmd)
    return out


def _needed(binary):
    return re.findall(r"\(NEEDED\).*\[(.*)\]", tl.run(["readelf", "-d", binary]).stdout)


def _calls(events, func, tid=None):
    """(entries, exits, tailcalls) of func."""
    return tuple(tl.counts(events, k, tid=tid)[func] for k in ("entry", "exit", "tailcall"))


def _funcs(events):
    return set(e.func for e in events if e.kind in ("entry", "exit", "tailcall"))


def _check_log(log, pid):
    events, _ = tl.dump(log)
    _, chunks = tl.read_log(log)
    tl.check_log_complete(chunks, events)
    tl.check_time_order(events)
    assert set(e.pid for e in events) == {pid}, set(e.pid for e in events)
    return events, chunks


def _check_setup_calls(events, pid, cxx=False):
    assert set(e.tid for e in events) == {pid}, set(e.tid for e in events)
    calls = {(f + "(long)" if cxx and f != "main" else f): n for f, n in SETUP_CALLS.items()}
    for f, n in calls.items():
        assert _calls(events, f) == (n, n, 0), "%s: %s, expected (%d, %d, 0)" % (
            f, _calls(events, f), n, n)
    assert _funcs(events) == set(calls), _funcs(events)
    stacks = tl.check_nesting(events)
    assert not any(stacks.values()), "unfinished frames: %s" % dict(stacks)


def _setup_prog(link_deps):
    prog = _build("abi_setup.c", "abi_setup" + ("_linkdeps" if link_deps else ""), link_deps)
    assert "libsftrace.so" in _needed(prog), _needed(prog)
    return prog


def _strip_pid(text):
    return re.sub(r"^pid \d+$", "pid N", text, flags=re.M)


# ---- C: SFTRACE_SETUP_HERE(), -lsftrace, only SFTRACE_OUTPUT_FILE ------------


def _check_c_setup(link_deps):
    prog = _setup_prog(link_deps)
    tag = "linkdeps" if link_deps else "nolinkdeps"
    log = _out("setup-%s.log" % tag)
    if os.path.exists(log):
        os.unlink(log)
    p = _ok(_run([prog], env={"SFTRACE_OUTPUT_FILE": log}), SETUP_RC)
    assert tl.kv(p.stdout, "total") == 236, p.stdout
    assert os.path.exists(log), "no log at %s\nstderr:\n%s" % (log, p.stderr)
    pid = tl.kv(p.stdout, "pid")
    events, chunks = _check_log(log, pid)
    _check_setup_calls(events, pid)
    # The executable was registered once.
    objs = [c for c in chunks if c["type"] == tl.CHUNK_OBJECT and c["path"] == prog]
    assert len(objs) == 1, [(c["path"], c["nfuncs"]) for c in chunks if c["type"] == tl.CHUNK_OBJECT]

    # Without SFTRACE_OUTPUT_FILE: nothing written, same output and status.
    cwd = _out("quiet-" + tag)
    shutil.rmtree(cwd, ignore_errors=True)
    os.makedirs(cwd)
    q = _ok(_run([prog], cwd=cwd), SETUP_RC)
    assert _strip_pid(q.stdout) == _strip_pid(p.stdout), (q.stdout, p.stdout)
    assert q.stderr == "", q.stderr
    assert os.listdir(cwd) == [], os.listdir(cwd)


def test_c_setup_here_linked_no_xray_link_deps():
    _check_c_setup(link_deps=False)


def test_c_setup_here_linked_with_xray_link_deps():
    _check_c_setup(link_deps=True)


def test_cxx_setup_here_linked():
    """The macro in C++: the slots keep their unmangled asm names."""
    prog = _build("abi_setup.c", "abi_setup_cxx", cflags=["-x", "c++", "-Wextra"],
                  compiler="clang++")
    log = _out("setup-cxx.log")
    if os.path.exists(log):
        os.unlink(log)
    p = _ok(_run([prog], env={"SFTRACE_OUTPUT_FILE": log}), SETUP_RC)
    pid = tl.kv(p.stdout, "pid")
    events, _ = _check_log(log, pid)
    _check_setup_calls(events, pid, cxx=True)


def _check_c_setup_under_record(link_deps):
    """`sftrace record` preloads the runtime, the program also calls
    sftrace_setup: nothing patched twice, every event once."""
    prog = _setup_prog(link_deps)
    log = _out("setup-record-%s.log" % ("linkdeps" if link_deps else "nolinkdeps"))
    p = tl.record([prog], log, env=None, check=False)
    _ok(p, SETUP_RC, "sftrace record -- " + prog)
    pid = tl.kv(p.stdout, "pid")
    events, chunks = _check_log(log, pid)
    _check_setup_calls(events, pid)
    objs = [c for c in chunks if c["type"] == tl.CHUNK_OBJECT and c["path"] == prog]
    assert len(objs) == 1, [(c["path"], c["nfuncs"]) for c in chunks if c["type"] == tl.CHUNK_OBJECT]


def test_c_setup_here_under_record_no_xray_link_deps():
    _check_c_setup_under_record(link_deps=False)


def test_c_setup_here_under_record_with_xray_link_deps():
    _check_c_setup_under_record(link_deps=True)


# ---- SFTRACE_SETUP_THREAD_ONLY -------------------------------------------------


def _thread_only_run(thread_only, n=0):
    prog = _build("abi_thread_only.c", "abi_thread_only")
    log = _out("thread-only-%d-%d.log" % (thread_only, n))
    if os.path.exists(log):
        os.unlink(log)
    env = {"SFTRACE_OUTPUT_FILE": log}
    if thread_only:
        env["SFTRACE_SETUP_THREAD_ONLY"] = "1"
    p = _ok(_run([prog], env=env))
    pid = tl.kv(p.stdout, "pid")
    tids = [tl.kv(p.stdout, "thread %d tid" % t) for t in range(4)]
    setup = tl.kv(p.stdout, "setup_thread")
    assert setup == 2
    assert tl.kv(p.stdout, "setup_thread 2 tid") == tids[2]
    events, _ = _check_log(log, pid)
    return pid, tids, events


# Threads that make their first traced call while another thread is in
# sftrace_setup() race with it; several runs give such a race a chance.
THREAD_ONLY_RUNS = 10


def test_setup_thread_only():
    for n in range(THREAD_ONLY_RUNS):
        pid, tids, events = _thread_only_run(True, n)
        setup_tid = tids[2]
        seen = set(e.tid for e in events)
        assert seen == {setup_tid}, "run %d: tids %s in the trace, setup thread %d (threads %s, " \
            "pid %d); calls of run() per tid: %s" % (
                n, seen, setup_tid, tids, pid,
                {t: _calls(events, "run", t) for t in sorted(seen)})
        # Thread 2: run() once, work() 12 times, leaf() 24 times.
        assert _calls(events, "run") == (1, 1, 0), _calls(events, "run")
        assert _calls(events, "work") == (12, 12, 0), _calls(events, "work")
        assert _calls(events, "leaf") == (24, 24, 0), _calls(events, "leaf")
        # It entered thread() before calling setup: only that exit is there.
        assert _calls(events, "thread") == (0, 1, 0), _calls(events, "thread")
        assert _funcs(events) == {"run", "work", "leaf", "thread"}, _funcs(events)


def test_setup_thread_only_unset_records_every_thread():
    """The contrast: without SFTRACE_SETUP_THREAD_ONLY every thread is traced
    (all start working after the setup, behind a barrier)."""
    pid, tids, events = _thread_only_run(False)
    assert set(e.tid for e in events) == set(tids) | {pid}, (set(e.tid for e in events), tids, pid)
    for t, tid in enumerate(tids):
        assert _calls(events, "run", tid) == (1, 1, 0), (t, _calls(events, "run", tid))
        assert _calls(events, "work", tid) == (10 + t, 10 + t, 0), (t, _calls(events, "work", tid))
        assert _calls(events, "leaf", tid) == (20 + 2 * t, 20 + 2 * t, 0)
    assert _calls(events, "work", pid) == (7, 7, 0), _calls(events, "work", pid)
    assert _calls(events, "leaf", pid) == (14, 14, 0), _calls(events, "leaf", pid)


# ---- Rust: the sftrace-setup crate ---------------------------------------------


def _need_rust():
    for tool in ("cargo", "rustc"):
        if not tl.have(tool):
            raise tl.Skip("%s not found (the Rust toolchain is not installed)" % tool)


def _cargo_build(target_dir, env):
    """`cargo build --offline --release` of tests/programs/abi_rust with XRay."""
    e = {"CARGO_TARGET_DIR": target_dir, "RUSTFLAGS": "-Zinstrument-xray=always",
         "RUSTC_BOOTSTRAP": "1"}
    e.update(env)
    full = _env(e)
    for k in ("SFTRACE_DYLIB_DIR", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_RUSTFLAGS"):
        if k not in env:
            full.pop(k, None)
    p = subprocess.run(["cargo", "build", "--offline", "--release"], cwd=RUST_PROG, env=full,
                       capture_output=True, text=True, timeout=600, errors="replace")
    _ok(p, 0, "cargo build (CARGO_TARGET_DIR=%s)" % target_dir)
    return os.path.join(target_dir, "release", "abi_rust"), p


def _runpath(binary):
    m = re.search(r"\((?:RUNPATH|RPATH)\).*\[(.*)\]", tl.run(["readelf", "-d", binary]).stdout)
    return m.group(1).split(":") if m else []


def _alloc_events(events):
    """kind -> list of (size, align, ptr) in order."""
    out = collections.defaultdict(list)
    for e in events:
        if e.kind in ("alloc", "free", "realloc-alloc", "realloc-free"):
            assert e.func == "-" and len(e.extra) == 3, e
            out[e.kind].append((int(e.extra[0]), int(e.extra[1]), int(e.extra[2], 16)))
    return out


def _check_rust_run(prog, log, env=None):
    """Run abi_rust with SFTRACE_OUTPUT_FILE=log and check its trace."""
    if os.path.exists(log):
        os.unlink(log)
    e = {"SFTRACE_OUTPUT_FILE": log}
    e.update(env or {})
    p = _ok(_run([prog], env=e))
    out = p.stdout
    events, _ = tl.dump(log)
    _, chunks = tl.read_log(log)
    # END chunks count function events only (docs/log-format.md).
    tl.check_log_complete(chunks, [e for e in events if e.kind in ("entry", "exit", "tailcall")])
    tl.check_time_order(events)
    pids = set(e.pid for e in events)
    assert len(pids) == 1, pids
    pid = pids.pop()
    assert set(e.tid for e in events) == {pid}, set(e.tid for e in events)

    # #[inline(never)] functions: make() 10 times, grow() once.
    assert _calls(events, "abi_rust::make") == (10, 10, 0), _calls(events, "abi_rust::make")
    assert _calls(events, "abi_rust::grow") == (1, 1, 0), _calls(events, "abi_rust::grow")

    al = _alloc_events(events)
    # The ten vectors: exactly one alloc each of 4096 + i bytes, align 1, at
    # the address the program printed, and one free of the same block.
    sizes = collections.Counter(s for s, _, _ in al["alloc"])
    for i in range(10):
        m = re.search(r"^vec %d (0x[0-9a-f]+) (\d+)$" % i, out, re.M)
        assert m, "no vec %d line:\n%s" % (i, out)
        ptr, cap = int(m.group(1), 16), int(m.group(2))
        assert cap == 4096 + i, (i, cap)
        assert sizes[cap] == 1, "alloc events of %d bytes: %d" % (cap, sizes[cap])
        assert (cap, 1, ptr) in al["alloc"], ("alloc", i, cap, hex(ptr))
        assert al["free"].count((cap, 1, ptr)) == 1, ("free", i, cap, hex(ptr))
    # vec![0u8; 5000]: alloc_zeroed.
    m = re.search(r"^zeroed (0x[0-9a-f]+) 5000$", out, re.M)
    assert m, out
    assert al["alloc"].count((5000, 1, int(m.group(1), 16))) == 1, al["alloc"]
    # grow(): 100 bytes reallocated to 1000.
    m = re.search(r"^grow (0x[0-9a-f]+) (0x[0-9a-f]+) 1000$", out, re.M)
    assert m, out
    old, new = int(m.group(1), 16), int(m.group(2), 16)
    assert al["realloc-free"].count((100, 1, old)) == 1, al["realloc-free"]
    assert al["realloc-alloc"].count((1000, 1, new)) == 1, al["realloc-alloc"]
    assert al["free"].count((1000, 1, new)) == 1, al["free"]
    # The realloc's old block is reported before its new one.
    i_old = events.index(next(e for e in events if e.kind == "realloc-free"
                              and int(e.extra[2], 16) == old and e.extra[0] == "100"))
    assert events[i_old + 1].kind == "realloc-alloc" and events[i_old + 1].extra[0] == "1000", \
        events[i_old:i_old + 2]

    # The counting allocator inside SftraceAllocator saw every call: it is
    # really used, once per reported event. Its counts are printed at the end
    # of main; frees after main returned are not in its dealloc count.
    allocs, deallocs, reallocs = (tl.kv(out, k) for k in ("allocs", "deallocs", "reallocs"))
    assert allocs >= 12 and reallocs >= 1, out
    assert len(al["alloc"]) == allocs, (len(al["alloc"]), allocs)
    assert len(al["realloc-alloc"]) == reallocs == len(al["realloc-free"]), \
        (len(al["realloc-alloc"]), reallocs, len(al["realloc-free"]))
    main_exit = max(i for i, e in enumerate(events) if e.kind == "exit"
                    and e.func == "abi_rust::main")
    frees_in_main = sum(1 for e in events[:main_exit] if e.kind == "free")
    assert frees_in_main == deallocs, (frees_in_main, deallocs)
    return events, p


def test_rust_crate_setup_and_allocator():
    _need_rust()
    prog, _ = _cargo_build(_out("rust-target"), {"SFTRACE_DYLIB_DIR": tl.BUILD})
    assert "libsftrace.so" in _needed(prog), _needed(prog)
    # The crate's build script exports its link dir; abi_rust's sets an rpath.
    assert _runpath(prog) == [tl.BUILD], _runpath(prog)
    # Three 16-byte slots, 16-byte aligned, each `ret` and 15 nops.
    syms = {}
    for line in tl.run(["nm", prog]).stdout.splitlines():
        f = line.split()
        if len(f) == 3 and f[2].startswith("sftrace_setup_0_1_"):
            syms[f[2]] = int(f[0], 16)
    names = ["sftrace_setup_0_1_%s_slot" % s for s in ("entry", "exit", "tailcall")]
    assert sorted(syms) == sorted(names), syms
    addrs = [syms[n] for n in names]
    assert all(a % 16 == 0 for a in addrs) and addrs[1] == addrs[0] + 16 \
        and addrs[2] == addrs[1] + 16, [hex(a) for a in addrs]
    dis = tl.run(["objdump", "-d", "--start-address=%#x" % addrs[0],
                  "--stop-address=%#x" % (addrs[0] + 48), prog]).stdout
    insns = re.findall(r"^\s*[0-9a-f]+:\s+(?:[0-9a-f]{2} )+\s*(\S+)", dis, re.M)
    assert insns == (["ret"] + ["nop"] * 15) * 3, insns

    _check_rust_run(prog, _out("rust.log"))
    # Also through LD_LIBRARY_PATH, as a binary without the rpath would be run.
    _check_rust_run(prog, _out("rust-ldpath.log"), env={"LD_LIBRARY_PATH": tl.BUILD})
    # Untraced: same allocations, nothing written.
    cwd = _out("rust-quiet")
    shutil.rmtree(cwd, ignore_errors=True)
    os.makedirs(cwd)
    q = _ok(_run([prog], cwd=cwd))
    assert tl.kv(q.stdout, "allocs") >= 12 and os.listdir(cwd) == [], (q.stdout, os.listdir(cwd))


def test_rust_crate_under_record():
    """The Rust program calls setup() twice and is preloaded too: every
    function and allocation event once."""
    _need_rust()
    prog, _ = _cargo_build(_out("rust-target"), {"SFTRACE_DYLIB_DIR": tl.BUILD})
    log = _out("rust-record.log")
    p = tl.record([prog], log, check=False)
    _ok(p, 0, "sftrace record -- " + prog)
    events, _ = tl.dump(log)
    assert _calls(events, "abi_rust::make") == (10, 10, 0), _calls(events, "abi_rust::make")
    al = _alloc_events(events)
    assert len(al["alloc"]) == tl.kv(p.stdout, "allocs"), (len(al["alloc"]), p.stdout)
    sizes = collections.Counter(s for s, _, _ in al["alloc"])
    assert all(sizes[4096 + i] == 1 for i in range(10)), sizes


# ---- make install --------------------------------------------------------------


_INSTALLED = []


def _install():
    """`make install PREFIX=<build/tests/abi/prefix>` once per run."""
    if not _INSTALLED:
        prefix = _out("prefix")
        shutil.rmtree(prefix, ignore_errors=True)
        tl.run(["make", "-C", tl.ROOT, "install", "PREFIX=" + prefix], timeout=600)
        _INSTALLED.append(prefix)
    return _INSTALLED[0]


def _empty_dir(name):
    d = _out(name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def test_make_install():
    prefix = _install()
    for f in ("bin/sftrace", "lib/libsftrace.so", "include/sftrace.h", "lib/pkgconfig/sftrace.pc"):
        assert os.path.isfile(os.path.join(prefix, f)), f
    assert os.access(os.path.join(prefix, "bin/sftrace"), os.X_OK)
    sftrace = os.path.join(prefix, "bin", "sftrace")
    lib = os.path.join(prefix, "lib", "libsftrace.so")

    # A program built with pkg-config against the prefix, traced by the
    # installed runtime with only SFTRACE_OUTPUT_FILE set.
    if not tl.have("pkg-config"):
        raise AssertionError("pkg-config not found (scripts/deps.sh installs it)")
    pc = _ok(_run(["pkg-config", "--cflags", "--libs", "sftrace"],
                  env={"PKG_CONFIG_PATH": os.path.join(prefix, "lib", "pkgconfig")}))
    flags = pc.stdout.split()
    assert "-I" + os.path.join(prefix, "include") in flags, flags
    assert "-lsftrace" in flags, flags
    prog = _out("abi_setup_pkgconfig")
    if os.path.exists(prog):
        os.unlink(prog)
    tl.run(["clang"] + tl.XRAY_CFLAGS + tl.WARN_CFLAGS + [_no_link_deps_flag(),
           os.path.join(tl.PROGS, "abi_setup.c"), "-o", prog] + flags)
    ldd = tl.run(["ldd", prog], env=_env()).stdout
    assert re.search(r"libsftrace\.so => %s " % re.escape(lib), ldd), ldd
    log = _out("install.log")
    if os.path.exists(log):
        os.unlink(log)
    p = _ok(_run([prog], env={"SFTRACE_OUTPUT_FILE": log}), SETUP_RC)
    pid = tl.kv(p.stdout, "pid")
    events, _ = _check_log(log, pid)
    _check_setup_calls(events, pid)
    # The installed tools read it too.
    events2, _ = tl.dump(log, sftrace=sftrace)
    assert events2 == events

    # --print-solib finds the installed runtime (nothing in the install dir).
    xdg = _empty_dir("xdg")
    env = {"XDG_DATA_HOME": xdg}
    p = _ok(_run([sftrace, "record", "--print-solib"], env=env))
    assert p.stdout == lib + "\n", p.stdout
    # The original workflow: copy it into --print-solib-install-dir.
    p = _ok(_run([sftrace, "record", "--print-solib-install-dir"], env=env))
    inst = p.stdout.rstrip("\n")
    assert inst == os.path.join(xdg, "sftrace"), inst
    os.makedirs(inst, exist_ok=True)
    shutil.copy(lib, inst)
    p = _ok(_run([sftrace, "record", "--print-solib"], env=env))
    assert p.stdout == os.path.join(inst, "libsftrace.so") + "\n", p.stdout


def test_rust_build_script_finds_installed_sftrace():
    """Without SFTRACE_DYLIB_DIR the crate's build script asks
    `sftrace record --print-solib` (the installed sftrace, first on PATH)."""
    _need_rust()
    prefix = _install()
    xdg = _empty_dir("xdg-rust")
    env = {"PATH": os.path.join(prefix, "bin") + os.pathsep + os.environ.get("PATH", ""),
           "XDG_DATA_HOME": xdg}
    prog, _ = _cargo_build(_out("rust-target-installed"), env)
    assert _runpath(prog) == [os.path.join(prefix, "lib")], _runpath(prog)
    ldd = tl.run(["ldd", prog], env=_env()).stdout
    assert "%s/lib/libsftrace.so" % prefix in ldd, ldd
    _check_rust_run(prog, _out("rust-installed.log"))
