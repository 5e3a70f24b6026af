"""t_aarch64_oracle.py - sftrace against compiler-rt's XRay on a real program, on aarch64.

Debian's lua5.4 (its source package, as bench/ uses on x86_64) is cross-built
for aarch64 with XRay sleds and linked once with compiler-rt's arm64 XRay
runtime in basic mode (Debian's libclang-rt-14-dev:arm64, downloaded and
unpacked by scripts/fetch_xray_arm64.sh, never installed). The same binary
runs under qemu twice: with XRAY_OPTIONS patching its sleds (basic mode, no
duration threshold, so every call is kept), and under `sftrace record` with
compiler-rt's runtime present but idle (patch_premain=false) and ours
patching. One binary for both matters: Lua interns strings in a cache keyed
by their addresses, so two differently linked binaries make different calls.

The oracle: the sequence of function entries (by name) is identical, and
sftrace's exits plus tail calls (clang 14 marks an aarch64 tail call's sled as
an exit; we decode the branch) equal XRay's exits. Skipped, with the reason,
when the cross tool chain, the lua5.4 source or the arm64 package cannot be
had (network).
"""
import concurrent.futures
import glob
import os
import subprocess

import tl
import t_aarch64

SCRIPT = os.path.join(tl.PROGS, "oracle.lua")


def _fetch():
    src_root = os.path.join(tl.BUILD, "src")
    r = subprocess.run(["sh", os.path.join(tl.ROOT, "bench", "fetch_lua.sh"), src_root],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    src = os.path.join(src_root, "lua5.4", "src")
    if r.returncode != 0 or not os.path.exists(os.path.join(src, "lvm.c")):
        raise tl.Skip("could not get Debian's lua5.4 source (apt-get source): " + r.stderr.strip())
    r = subprocess.run(["sh", os.path.join(tl.ROOT, "scripts", "fetch_xray_arm64.sh"),
                        os.path.join(tl.BUILD, "deps", "xray-arm64")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise tl.Skip("could not get compiler-rt's arm64 XRay runtime "
                      "(libclang-rt-14-dev:arm64): " + r.stderr.strip())
    return src, r.stdout.strip()


def _build(src, rtdir):
    d = tl.outdir("aarch64", "lua")
    with open(os.path.join(d, "lua5.4-deb-multiarch.h"), "w") as f:
        f.write('#define DEB_HOST_MULTIARCH "aarch64-linux-gnu"\n')
    # Lua's behaviour depends on addresses in two places, and the two runs
    # differ in environment size (so stack addresses) and mappings: string
    # hashes are seeded with the time and addresses (luai_makeseed: a
    # constant), and lua_pushstring's cache is indexed by the C string's
    # address (STRCACHE_N 1: indexed by nothing, a hit depends on contents)
    flags = t_aarch64.TARGET + ["-O2", "-g", "-DLUA_USE_LINUX", "-Dluai_makeseed(L)=0u",
                                "-DSTRCACHE_N=1", "-DSTRCACHE_M=1", "-w",
                                "-I", d, "-fxray-instrument", "-fxray-instruction-threshold=1"]
    me = os.path.getmtime(__file__)
    jobs, objs = [], []
    for c in sorted(glob.glob(os.path.join(src, "*.c"))):
        if os.path.basename(c) == "luac.c":
            continue
        o = os.path.join(d, os.path.basename(c)[:-2] + ".o")
        objs.append(o)
        if not os.path.exists(o) or os.path.getmtime(o) < max(os.path.getmtime(c), me):
            jobs.append(["clang", *flags, "-c", c, "-o", o])
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        list(ex.map(lambda j: tl.run(j, timeout=600), jobs))
    exe = os.path.join(d, "lua")
    rt = [os.path.join(rtdir, "libclang_rt.xray-%saarch64.a" % k) for k in ("", "basic-")]
    tl.run(["clang", *t_aarch64.TARGET, "-o", exe, *objs, "-Wl,--whole-archive", *rt,
            "-Wl,--no-whole-archive", "-lpthread", "-lrt", "-lm", "-ldl", "-lstdc++"])
    return exe


def _xray_run(exe, d):
    for f in glob.glob(os.path.join(d, "xray-log.*")):
        os.unlink(f)
    env = dict(os.environ)
    env["XRAY_OPTIONS"] = "patch_premain=true xray_mode=xray-basic xray_logfile_base=%s/xray-log." % d
    # basic mode drops calls under 5 us and deeper than 64 by default
    env["XRAY_BASIC_OPTIONS"] = "func_duration_threshold_us=0 max_stack_depth=65535"
    p = tl.run(t_aarch64._q([exe, SCRIPT]), env=env, cwd=d)
    logs = glob.glob(os.path.join(d, "xray-log.*"))
    assert len(logs) == 1, logs
    y = tl.run(["llvm-xray", "convert", "-symbolize", "-instr_map=" + exe, "-output-format=yaml",
                logs[0]], timeout=300).stdout
    enters, exits = [], 0
    for line in y.splitlines():
        if "kind: function-enter" in line:
            enters.append(line.split("function: ", 1)[1].split(",", 1)[0])
        elif "kind: function-exit" in line or "kind: function-tail-exit" in line:
            exits += 1
    return p.stdout, enters, exits


def test_lua_entries_equal_compiler_rt_basic_mode():
    t_aarch64._setup()
    if not tl.have("llvm-xray"):
        raise tl.Skip("llvm-xray is not installed (llvm-14)")
    src, rtdir = _fetch()
    exe = _build(src, rtdir)
    d = os.path.dirname(exe)
    out_x, enters_x, exits_x = _xray_run(exe, d)
    log = os.path.join(d, "sf.log")
    env = dict(os.environ, XRAY_OPTIONS="patch_premain=false")
    p = tl.record(t_aarch64._q([exe, SCRIPT]), log, env=env,
                  extra=["--solib", t_aarch64.RUNTIME])
    assert p.stdout == out_x, (p.stdout, out_x)
    assert out_x.split("\t") == ["2584", "2000", "1275", "20", "42", "3", "600", "28\n"], out_x
    ev = list(tl.dump_stream(log, raw=True))
    enters = [e[4] for e in ev if e[3] == "entry"]
    ends = sum(1 for e in ev if e[3] in ("exit", "tailcall"))
    pids = {e[1] for e in ev}
    assert len(pids) == 1, pids
    assert len(enters) > 100000, len(enters)
    assert len(set(enters)) > 250, len(set(enters))
    if enters != enters_x:
        i = next(i for i, (a, b) in enumerate(zip(enters, enters_x)) if a != b) \
            if any(a != b for a, b in zip(enters, enters_x)) else min(len(enters), len(enters_x))
        raise AssertionError("entry %d differs: sftrace %s, xray %s (%d vs %d entries)" %
                             (i, enters[i:i + 3], enters_x[i:i + 3], len(enters), len(enters_x)))
    assert ends == exits_x, (ends, exits_x)
