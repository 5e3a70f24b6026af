"""tl.py - shared helpers for the sftrace tests.

Builds instrumented test programs (cached under build/tests), records them with
`sftrace record`, and parses `sftrace dump` output into Event tuples so tests
can assert exact call counts, nesting, pids and tids.
"""
import collections
import os
import shutil
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")
SFTRACE = os.path.join(BUILD, "sftrace")
SFTRACE_ASAN = os.path.join(BUILD, "asan", "sftrace")
RUNTIME = os.path.join(BUILD, "libsftrace.so")
PROGS = os.path.join(ROOT, "tests", "programs")
OUT = os.path.join(BUILD, "tests")
PERFETTO_CHECK = os.path.join(os.path.dirname(ROOT), "shared", "perfetto", "check_perfetto.py")

XRAY_CFLAGS = ["-O2", "-g", "-fxray-instrument", "-fxray-instruction-threshold=1"]

Event = collections.namedtuple("Event", "time pid tid kind func extra")


class Skip(Exception):
    """Raise to skip a test; the message says why."""


def outdir(*parts):
    d = os.path.join(OUT, *parts)
    os.makedirs(d, exist_ok=True)
    return d


def run(cmd, check=True, env=None, input=None, timeout=120, cwd=None):
    """Run cmd; return CompletedProcess with text stdout/stderr."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, input=input,
                       timeout=timeout, cwd=cwd, errors="replace")
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(cmd), p.returncode, p.stdout[-4000:], p.stderr[-4000:]))
    return p


def _stale(target, sources):
    if not os.path.exists(target):
        return True
    t = os.path.getmtime(target)
    return any(os.path.getmtime(s) > t for s in sources)


def build_c(src, out=None, flags=(), compiler="clang", shared=False, libs=()):
    """Compile tests/programs/<src> with XRay instrumentation; return the binary path."""
    path = src if os.path.isabs(src) else os.path.join(PROGS, src)
    base = os.path.splitext(os.path.basename(path))[0]
    out = out or os.path.join(outdir("bin"), base + (".so" if shared else ""))
    if _stale(out, [path, __file__]):
        cmd = [compiler] + XRAY_CFLAGS + list(flags)
        if shared:
            cmd += ["-shared", "-fPIC"]
        cmd += [path, "-o", out] + list(libs)
        run(cmd)
    return out


def record(cmd, log, env=None, extra=(), check=True, timeout=120, sftrace=None):
    """`sftrace record -o log -- cmd`; returns the CompletedProcess."""
    if os.path.exists(log):
        os.unlink(log)
    return run([sftrace or SFTRACE, "record", "-o", log] + list(extra) + ["--"] + list(cmd),
               env=env, check=check, timeout=timeout)


def dump(log, sftrace=None, check=True):
    """Parse `sftrace dump log` into a list of Event."""
    p = run([sftrace or SFTRACE, "dump", log], check=check)
    return parse_dump(p.stdout), p


def parse_dump(text):
    events = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        f = line.split("\t")
        extra = f[5:] if len(f) > 5 else []
        events.append(Event(int(f[0]), int(f[1]), int(f[2]), f[3], f[4], extra))
    return events


def counts(events, kind="entry", pid=None, tid=None):
    """Counter of function name -> number of events of that kind."""
    c = collections.Counter()
    for e in events:
        if e.kind == kind and (pid is None or e.pid == pid) and (tid is None or e.tid == tid):
            c[e.func] += 1
    return c


def check_nesting(events):
    """Assert every thread's entry/exit stream nests properly (tail calls end a frame)."""
    stacks = collections.defaultdict(list)
    for e in events:
        st = stacks[(e.pid, e.tid)]
        if e.kind == "entry":
            st.append(e.func)
        elif e.kind in ("exit", "tailcall"):
            assert st, "exit of %s with empty stack on %d/%d" % (e.func, e.pid, e.tid)
            top = st.pop()
            assert top == e.func, "exit of %s but %s is on top (%d/%d)" % (e.func, top, e.pid, e.tid)
    return stacks


def have(tool):
    return shutil.which(tool) is not None
