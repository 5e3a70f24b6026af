"""t_aarch64.py - the runtime on aarch64 Linux, run under qemu-user.

The record tests' C programs (tests/programs) are cross-built for aarch64
with XRay sleds, run by qemu-aarch64-static with the cross-built runtime
(build/aarch64/libsftrace.so, `make ARCH=aarch64`) preloaded by the host's
`sftrace record --solib`, and their logs read by the host tools: the same
exact counts, nesting, pids and tids as t_record checks on x86_64 (most
checks are t_record's own, run with the builds and runs swapped for
aarch64 ones). Skipped, with the reason, where the cross tool chain or qemu
is missing (scripts/deps.sh installs them: gcc-aarch64-linux-gnu,
libc6-dev-arm64-cross, libstdc++-12-dev-arm64-cross, qemu-user-static).

qemu does not check cache maintenance or memory ordering: these tests show
the encodings, the trampolines and the bookkeeping are right, not that the
patch order is (docs/design.md says which rule each step follows).
"""
import collections
import contextlib
import os
import re
import shutil

import tl
import t_record

QEMU = shutil.which("qemu-aarch64-static") or "/usr/bin/qemu-aarch64-static"
SYSROOT = "/usr/aarch64-linux-gnu"
RUNTIME = os.path.join(tl.BUILD, "aarch64", "libsftrace.so")
TARGET = ["--target=aarch64-linux-gnu", "-fnoxray-link-deps"]
EM_AARCH64 = 183


def _available():
    if not os.path.exists(QEMU):
        return "qemu-aarch64-static is not installed (scripts/deps.sh: qemu-user-static)"
    if not os.path.exists(os.path.join(SYSROOT, "lib", "libc.so.6")):
        return "no aarch64 C library in %s (libc6-dev-arm64-cross)" % SYSROOT
    if not shutil.which("aarch64-linux-gnu-ld"):
        return "no aarch64 linker (gcc-aarch64-linux-gnu)"
    return None


_built = []


def _setup():
    why = _available()
    if why:
        raise tl.Skip(why)
    if not _built:
        # the cross-built runtime, of the version of the tools under test
        # (record refuses another); up to date in a moment when it is
        version = tl.run([tl.SFTRACE, "--version"]).stdout.split()[1]
        tl.run(["make", "-s", "-C", tl.ROOT, "NODEPS=1", "ARCH=aarch64", "SF_VERSION=" + version,
                os.path.relpath(RUNTIME, tl.ROOT)], timeout=600)
        _built.append(True)


def _a64bin(path):
    return os.path.abspath(path).startswith(tl.outdir("aarch64") + os.sep)


def _q(cmd):
    """Run an aarch64 program of ours under qemu."""
    cmd = list(cmd)
    if cmd and _a64bin(cmd[0]):
        return [QEMU, "-L", SYSROOT] + cmd
    return cmd


class _Tl:
    """tl with builds for aarch64 and runs under qemu, for t_record's checks."""

    def __getattr__(self, name):
        return getattr(tl, name)

    def outdir(self, *parts):
        return tl.outdir("aarch64", *parts)

    def build_c(self, src, out=None, flags=(), compiler="clang", shared=False, libs=()):
        base = os.path.splitext(os.path.basename(src))[0]
        out = out or os.path.join(self.outdir("bin"), base + (".so" if shared else ""))
        return tl.build_c(src, out=out, flags=TARGET + list(flags), compiler=compiler,
                          shared=shared, libs=libs)

    def run(self, cmd, **kw):
        return tl.run(_q(cmd), **kw)

    def record(self, cmd, log, extra=(), **kw):
        return tl.record(_q(cmd), log, extra=["--solib", RUNTIME] + list(extra), **kw)


@contextlib.contextmanager
def _aarch64():
    """t_record's helpers, building and running for aarch64."""
    _setup()
    saved = t_record.tl
    t_record.tl = _Tl()
    try:
        yield t_record.tl
    finally:
        t_record.tl = saved


def _build(src, **kw):
    with _aarch64():
        return t_record._build(src, **kw)


def _record(cmd, name, **kw):
    with _aarch64():
        return t_record._record(cmd, name, **kw)


# ---- the record tests' programs ------------------------------------------------


def test_recursion():
    with _aarch64():
        t_record._check_recursion(20, 3000, 21891)


def test_recursion_many_chunks():
    with _aarch64():
        t_record._check_recursion(25, 10, 242785)


def test_threads():
    with _aarch64():
        t_record.test_threads()


def test_dlopen():
    with _aarch64():
        t_record.test_dlopen()


def test_linked_shared_library():
    with _aarch64():
        t_record.test_linked_shared_library()


def test_fork():
    with _aarch64():
        t_record.test_fork()


def test_signal_handlers():
    # fewer round trips than on x86_64: each costs qemu about 30 ms here
    out = os.path.join(_Tl().outdir("bin"), "signals_500")
    prog = _build("signals.c", out=out, flags=tl.WARN_CFLAGS + ["-DKILL_N=500"])
    with _aarch64():
        t_record._signals(prog, 500)


def test_setjmp_longjmp():
    with _aarch64():
        t_record.test_setjmp_longjmp()


def test_cxx_exceptions():
    with _aarch64():
        t_record.test_cxx_exceptions()


def test_abi_preserved():
    # float, double, long double (quad), varargs, complex, __int128, vectors
    # in q registers, struct returns (x8, HFAs in d0-d3): traced == untraced
    prog = _build("abi.c")
    plain = tl.run(_q([prog]))
    p, ev, _ = _record([prog], "abi")
    assert p.stdout == plain.stdout, "traced output differs:\n" + "\n".join(
        "untraced: %s\ntraced:   %s" % (a, b)
        for a, b in zip(plain.stdout.splitlines(), p.stdout.splitlines()) if a != b)
    rounds = tl.kv(p.stdout, "rounds")
    for f in t_record.ABI_FUNCS:
        ent, ext, tail = t_record._calls(ev, f)
        # long double arithmetic is libgcc's (__multf3): a tail call there
        assert ent == rounds and ext + tail == rounds, (f, ent, ext, tail)
    assert t_record._calls(ev, "ld_mul")[2] == rounds
    assert t_record._calls(ev, "main") == (1, 1, 0)
    stacks = tl.check_nesting(ev)
    assert all(not s for s in stacks.values())


def test_exit_status():
    with _aarch64():
        t_record.test_exit_status_exit()
        t_record.test_exit_status_from_thread()


def test_fatal_segv():
    with _aarch64():
        t_record.test_fatal_segv()


# ---- tail calls: clang 14 marks their sleds as exits ---------------------------


def _tailcall(prog, name):
    with _aarch64():
        return t_record._check_tailcall(prog, name)


def _map_kinds(binary):
    """Sled kinds as the compiler wrote them in xray_instr_map."""
    p = tl.run(["llvm-objdump", "-s", "-j", "xray_instr_map", binary])
    data = bytearray()
    for line in p.stdout.splitlines():
        m = re.match(r"^ [0-9a-f]+ ((?:[0-9a-f]{1,8} ){1,4})", line)
        if m:
            data += bytes.fromhex(m.group(1).replace(" ", ""))
    return collections.Counter(data[i + 16] for i in range(0, len(data) - 31, 32))


def test_tailcall():
    prog = _build("tailcall.c")
    kinds = _map_kinds(prog)
    # clang 14: no kind 2 at all, yet the tail calls come out as tail calls
    assert kinds[0] > 0 and kinds[1] > 0 and kinds[2] == 0, kinds
    _tailcall(prog, "tailcall")


def test_bti_indirect_tail_calls():
    # -mbranch-protection=bti: indirect tail calls go through x16, which the
    # patched sled and the trampolines must leave alone; behaviour unchanged
    out = os.path.join(_Tl().outdir("bin"), "tailcall_bti")
    prog = _build("tailcall.c", out=out, flags=tl.WARN_CFLAGS + ["-mbranch-protection=bti"])
    dis = tl.run(["llvm-objdump", "-d", "--no-show-raw-insn", prog]).stdout
    assert re.search(r"\bbr\s+x16\b", dis), "no indirect tail call through x16 in %s" % prog
    plain = tl.run(_q([prog]))
    assert "to_libc 1" in plain.stdout, plain.stdout
    _tailcall(prog, "tailcall-bti")


# ---- exec, through a script that runs the new image under qemu ----------------


def test_exec():
    prog_a = _build("exec_a.c")
    prog_b = _build("exec_b.c")
    # the guest's execve reaches the host kernel, which cannot run an
    # aarch64 binary without binfmt_misc: exec a script that does
    wrapper = os.path.join(_Tl().outdir("bin"), "exec_b.sh")
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\nexec %s -L %s %s "$@"\n' % (QEMU, SYSROOT, prog_b))
    os.chmod(wrapper, 0o755)
    with _aarch64():
        t_record._check_exec(prog_a, prog_b, wrapper)


# ---- the log: which architecture wrote it; equal timestamps; Perfetto ---------


def test_log_says_aarch64_and_converts():
    prog = _build("threads.c")
    p, ev, chunks = _record([prog], "threads-convert")
    procs = [c for c in chunks if c["type"] == tl.CHUNK_PROCESS]
    assert procs and all(c["machine"] == EM_AARCH64 for c in procs), \
        [c["machine"] for c in procs]
    assert all(c["clock"] == 1 and c["tsc_hz"] > 0 for c in procs), procs  # cntvct_el0
    # the timer ticks slowly (62.5 MHz under qemu): equal timestamps are common
    same = sum(1 for a, b in zip(ev, ev[1:]) if a.tid == b.tid and a.time == b.time)
    assert same > 0, "no two events of one thread share a timestamp"
    with _aarch64():
        log = os.path.join(t_record.tl.outdir("record"), "threads-convert.log")
    info = tl.run([tl.SFTRACE, "info", "-q", "--format", "json", log]).stdout
    assert {p["arch"] for p in __import__("json").loads(info)["processes"]} == {"aarch64"}, info
    pb = log + ".pb"
    for sf in (tl.SFTRACE, tl.SFTRACE_ASAN):
        tl.run([sf, "convert", log, "-o", pb])
        c = tl.run(["python3", tl.PERFETTO_CHECK, "--strict", pb], check=False)
        assert c.returncode == 0, c.stdout[-3000:] + c.stderr[-3000:]


# ---- the drop-in ABI: SFTRACE_SETUP_HERE()'s aarch64 slots, no preload ---------


def test_setup_abi_without_preload():
    _setup()
    libdir = os.path.dirname(RUNTIME)
    prog = _build("abi_setup.c", flags=tl.WARN_CFLAGS + ["-I", os.path.join(tl.ROOT, "include")],
                  libs=["-L" + libdir, "-lsftrace", "-Wl,-rpath," + libdir])
    log = os.path.join(_Tl().outdir("record"), "abi-setup.log")
    if os.path.exists(log):
        os.unlink(log)
    untraced = tl.run(_q([prog]), check=False)
    assert untraced.returncode == 3 and not os.path.exists(log), untraced.stderr
    p = tl.run(_q([prog]), check=False, env={"SFTRACE_OUTPUT_FILE": log})
    assert p.returncode == 3, p.stderr
    assert p.stdout == untraced.stdout.replace(str(tl.kv(untraced.stdout, "pid")),
                                               str(tl.kv(p.stdout, "pid")))
    ev, _ = tl.dump(log)
    calls = t_record._calls
    assert calls(ev, "main") == (1, 1, 0)
    assert calls(ev, "outer") == (4, 4, 0)
    assert calls(ev, "inner") == (20, 20, 0)
    assert calls(ev, "leaf") == (40, 40, 0)
    _, chunks = tl.read_log(log)
    tl.check_log_complete(chunks, ev)


# ---- filters: selected (unpatched sleds) and descendants (slow path in C) -----


@contextlib.contextmanager
def _aarch64_filter():
    import t_filter
    _setup()
    saved = t_filter.tl
    t_filter.tl = _Tl()
    try:
        yield t_filter
    finally:
        t_filter.tl = saved


def test_filter_selected():
    with _aarch64_filter() as t_filter:
        t_filter.test_record_selected_regex()
        t_filter.test_record_selected_list_and_exclude()


def test_filter_descendants():
    with _aarch64_filter() as t_filter:
        t_filter.test_record_descendants()


def test_filter_across_objects():
    with _aarch64_filter() as t_filter:
        t_filter.test_record_shared_library()
        t_filter.test_record_dlopen()
        t_filter.test_record_descendants_across_objects()


def test_descendants_tail_calls():
    # a tail call keeps the scope when its target is known to be traced: a
    # direct `b` to an entry sled, or a PLT entry whose GOT slot is bound
    import t_safe
    _setup()
    saved = t_safe.tl
    t_safe.tl = _Tl()
    try:
        t_safe.test_descendants_follow_tail_calls()
        t_safe.test_descendants_tail_call_chain_from_selected()
        t_safe.test_descendants_tail_call_to_uninstrumented_ends_scope()
        t_safe.test_descendants_tail_call_through_plt()
    finally:
        t_safe.tl = saved
