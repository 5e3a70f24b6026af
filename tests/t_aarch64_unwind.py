"""t_aarch64_unwind.py - gdb unwinds through the aarch64 trampolines (their CFI).

As tests/t_unwind.py on x86_64, for the cross-built runtime: the program runs
under qemu-user's gdb stub (qemu-aarch64-static -g PORT), gdb-multiarch
attaches, stops inside the slow path (sf_slow_event, called from the
trampoline's slow path) and inside the fast path (a few instructions into
sf_trampoline, reached from fib's entry sled), and its backtrace must reach
through the trampoline to the instrumented function and main. Skipped, with
the reason, without the cross tool chain, qemu or gdb-multiarch
(scripts/deps.sh installs them).
"""
import os
import re
import socket
import subprocess

import tl
import t_aarch64


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gdb(commands):
    t_aarch64._setup()
    if not tl.have("gdb-multiarch"):
        raise tl.Skip("gdb-multiarch is not installed (scripts/deps.sh installs it)")
    d = tl.outdir("aarch64", "unwind")
    prog = os.path.join(d, "recursion")
    tl.run(["clang", *t_aarch64.TARGET, *tl.XRAY_CFLAGS, "-o", prog,
            os.path.join(tl.PROGS, "recursion.c")])
    port = _free_port()
    rt = t_aarch64.RUNTIME
    q = subprocess.Popen([t_aarch64.QEMU, "-L", t_aarch64.SYSROOT, "-E", "LD_PRELOAD=" + rt,
                          "-E", "SFTRACE_OUTPUT_FILE=" + os.path.join(d, "g.log"),
                          "-E", "SFTRACE_PATCH_ALL=1", "-g", str(port), prog, "20"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cmd = ["gdb-multiarch", "-q", "-batch", "-nx", "-ex", "set sysroot " + t_aarch64.SYSROOT,
               "-ex", "set solib-search-path " + os.path.dirname(rt),
               "-ex", "set breakpoint pending on", "-ex", "target remote 127.0.0.1:%d" % port]
        for c in commands:
            cmd += ["-ex", c]
        p = tl.run(cmd + [prog], check=False, timeout=120)
    finally:
        q.kill()
        q.wait()
    return [line for line in p.stdout.splitlines() if line.startswith("#")], p.stdout


def test_backtrace_from_slow_path():
    # once fib runs (main's entry, the thread's first event, also goes the
    # slow way), the next slow event is a full buffer, from inside fib's
    # recursion (fib(20) makes 43,781 events; a buffer holds 8,192). The slow
    # path runs C on the thread's side stack (docs/design.md). Under qemu the
    # guest's mappings lie above its stack, so the side stack is above the
    # program's: gdb then refuses to go on from the slow path's frame
    # ("previous frame inner to this frame"), a check of stack order, not of
    # the CFI. Where it does, the CFI is checked by hand: the slow path's
    # frame must say where the sled's return address (into fib) was saved.
    py = ("python import re; s = gdb.execute('info frame', to_string=True); "
          "m = re.search(r'pc at (0x[0-9a-f]+)', s); "
          "gdb.execute('x/a ' + m.group(1)) if m else print('NO SAVED PC: ' + s)")
    bt, out = _gdb(["break fib", "continue", "delete 1", "break sf_slow_event", "continue", "bt",
                    "frame 1", py])
    assert len(bt) >= 2, out
    assert "sf_slow_event" in bt[0] and "sf_trampoline_slowpath" in bt[1], out
    if "previous frame inner to this frame" in out:
        assert re.search(r"^0x[0-9a-f]+:\s+0x[0-9a-f]+ <fib\+\d+>$", out, re.M), out
        return
    assert len(bt) >= 4 and "fib" in bt[2], out
    assert any(" main " in line or "main (" in line for line in bt[3:]), out


def test_backtrace_from_fast_path():
    # once patched (at main), stop at fib's first instruction (its sled) and
    # step into the trampoline
    bt, out = _gdb(["break main", "continue", "break *fib", "continue", "stepi 4", "bt"])
    assert len(bt) >= 3, out
    assert "sf_trampoline" in bt[0], out
    assert " fib " in bt[1] or "fib (" in bt[1], out
    assert any("main" in line for line in bt[2:]), out
