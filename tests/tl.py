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
# The Perfetto validator: the team's shared copy beside the repository when it is
# there (it may be newer), else the copy kept in tests/perfetto (README.md there).
_SHARED_CHECK = os.path.join(os.path.dirname(ROOT), "shared", "perfetto", "check_perfetto.py")
PERFETTO_CHECK = (_SHARED_CHECK if os.path.isfile(_SHARED_CHECK)
                  else os.path.join(ROOT, "tests", "perfetto", "check_perfetto.py"))

XRAY_CFLAGS = ["-O2", "-g", "-fxray-instrument", "-fxray-instruction-threshold=1"]

Event = collections.namedtuple("Event", "time pid tid kind func extra")


class Skip(Exception):
    """Raise to skip a test; the message says why."""


def outdir(*parts):
    d = os.path.join(OUT, *parts)
    os.makedirs(d, exist_ok=True)
    return d


def run(cmd, check=True, env=None, input=None, timeout=120, cwd=None, preexec=None):
    """Run cmd; return CompletedProcess with text stdout/stderr. preexec: run
    in the child before the exec (subprocess's preexec_fn)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, input=input,
                       timeout=timeout, cwd=cwd, errors="replace", preexec_fn=preexec)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(cmd), p.returncode, p.stdout[-4000:], p.stderr[-4000:]))
    return p


def run_piped(cmd, path, timeout=120):
    """Run cmd with its standard input a real pipe that `cat path` feeds
    (open(path) as stdin would be a regular file, which can be seeked and
    read twice: a pipe cannot)."""
    with subprocess.Popen(["cat", path], stdout=subprocess.PIPE) as cat:
        p = subprocess.run(cmd, stdin=cat.stdout, capture_output=True, text=True,
                           timeout=timeout, errors="replace")
        cat.stdout.close()
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


def record(cmd, log, env=None, extra=(), check=True, timeout=120, sftrace=None, preexec=None):
    """`sftrace record -o log -- cmd`; returns the CompletedProcess."""
    if os.path.exists(log):
        os.unlink(log)
    return run([sftrace or SFTRACE, "record", "-o", log] + list(extra) + ["--"] + list(cmd),
               env=env, check=check, timeout=timeout, preexec=preexec)


def dump(log, sftrace=None, check=True):
    """Parse `sftrace dump log` into a list of Event."""
    p = run([sftrace or SFTRACE, "dump", log], check=check)
    return parse_dump(p.stdout), p


def dump_stream(log, opts=(), sftrace=None, raw=False):
    """Iterate `sftrace dump [opts] log` as Events, one line at a time (for
    logs too big to hold as a list); the dump's exit status is checked at the
    end of the iteration. raw: each line's fields as strings instead (time,
    pid, tid, kind, func, extra...: faster)."""
    cmd = [sftrace or SFTRACE, "dump"] + list(opts) + [log]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          errors="replace", bufsize=1 << 20) as p:
        for line in p.stdout:
            if not line or line[0] == "#" or line == "\n":
                continue
            f = line.rstrip("\n").split("\t")
            yield f if raw else Event(int(f[0]), int(f[1]), int(f[2]), f[3], f[4], f[5:])
        err = p.stderr.read()
        rc = p.wait()
    if rc != 0:
        raise AssertionError("%s exited %d\nstderr:\n%s" % (" ".join(cmd), rc, err[-4000:]))


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


# ---- helpers for the record tests (t_record.py, t_lang.py) ------------------

WARN_CFLAGS = ["-Wall", "-Werror"]

CHUNK_PROCESS, CHUNK_OBJECT, CHUNK_THREAD, CHUNK_EVENTS, CHUNK_END = 1, 2, 3, 4, 5
PROC_FORKED, PROC_EXECED = 1, 2
THREAD_EXITED = 1
OBJ_MAIN = 1
EVENTS_LOST = 1
END_EXIT, END_EXEC, END_SIGNAL, END_DIED = 1, 2, 3, 4


def read_log(path):
    """Parse a log's raw chunks (common/logfmt.h) without the tools.

    Returns (header, chunks): header is a dict of the file header; each chunk is
    a dict with off, type, flags, size, pid and the type's fields (the records
    inside EVENTS chunks are left to `sftrace dump`). Raises AssertionError on
    anything malformed.
    """
    import struct
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) >= 64, "%s: %d bytes, shorter than a header" % (path, len(data))
    magic, vmaj, vmin, hsize, session, cmono, creal = struct.unpack_from("<8sHHIQQQ", data, 0)
    assert magic == b"SFTRACE\0", "%s: bad magic %r" % (path, magic)
    header = dict(version_major=vmaj, version_minor=vmin, header_size=hsize, session_id=session,
                  create_mono_ns=cmono, create_real_ns=creal)
    chunks = []
    off = hsize
    while off < len(data):
        assert off + 16 <= len(data), "%s: truncated chunk header at %d" % (path, off)
        cmagic, ctype, cflags, csize, cpid = struct.unpack_from("<IHHII", data, off)
        assert cmagic == 0x4b434653, "%s: bad chunk magic %#x at %d" % (path, cmagic, off)
        assert csize >= 16 and csize % 8 == 0 and off + csize <= len(data), \
            "%s: bad chunk size %d at %d (file %d bytes)" % (path, csize, off, len(data))
        body = data[off:off + csize]
        c = dict(off=off, type=ctype, flags=cflags, size=csize, pid=cpid)
        if ctype == CHUNK_PROCESS:
            (c["ppid"], c["clock"], c["tsc"], c["mono_ns"], c["real_ns"], c["tsc_hz"], nl, cl,
             el, c["machine"]) = struct.unpack_from("<IIQQQQIIII", body, 16)
            p = 72
            c["name"] = body[p:p + nl].decode(errors="replace")
            p += nl
            c["cmdline"] = [a.decode(errors="replace") for a in body[p:p + cl].split(b"\0") if a]
            p += cl
            c["exe"] = body[p:p + el].decode(errors="replace")
        elif ctype == CHUNK_OBJECT:
            (c["load_bias"], c["fid_base"], c["nfuncs"], c["nsleds"], pl, bl,
             _) = struct.unpack_from("<QIIIIII", body, 16)
            p = 48 + 8 * c["nfuncs"]
            c["path"] = body[p:p + pl].decode(errors="replace")
            c["build_id"] = body[p + pl:p + pl + bl].hex()
        elif ctype == CHUNK_THREAD:
            c["tid"], _, c["tsc"] = struct.unpack_from("<IIQ", body, 16)
            c["name"] = body[32:48].split(b"\0")[0].decode(errors="replace")
        elif ctype == CHUNK_EVENTS:
            (c["tid"], c["seq"], c["tsc_hi"], _, c["flush_tsc"],
             c["flush_mono_ns"]) = struct.unpack_from("<IIIIQQ", body, 16)
        elif ctype == CHUNK_END:
            (c["tsc"], c["mono_ns"], c["events"], c["lost"], c["threads"],
             c["reason"]) = struct.unpack_from("<QQQQII", body, 16)
            # minor 1: how the process ended (0 0 in a minor-0 END)
            c["status_how"], c["status"] = (struct.unpack_from("<II", body, 56)
                                            if csize >= 64 else (0, 0))
        chunks.append(c)
        off += csize
    return header, chunks


def thread_names(chunks, pid):
    """tid -> list of the names recorded for it (THREAD chunks, file order)."""
    names = collections.defaultdict(list)
    for c in chunks:
        if c["type"] == CHUNK_THREAD and c["pid"] == pid and c["name"]:
            names[c["tid"]].append(c["name"])
    return names


def check_log_complete(chunks, events, dumped=None):
    """Every process image that started recording ended it (PROCESS/END pairs per
    pid), nothing was lost, and `sftrace dump` printed as many function events
    per pid as the END chunks say were recorded (dumped: a Counter pid ->
    events printed, instead of the events, for a streamed dump)."""
    starts = collections.Counter(c["pid"] for c in chunks if c["type"] == CHUNK_PROCESS)
    ends = collections.Counter(c["pid"] for c in chunks if c["type"] == CHUNK_END)
    assert starts == ends, "PROCESS chunks per pid %s but END chunks %s" % (dict(starts), dict(ends))
    lost = [c for c in chunks if (c["type"] == CHUNK_EVENTS and c["flags"] & EVENTS_LOST)
            or (c["type"] == CHUNK_END and c["lost"])]
    assert not lost, "records were lost: %s" % lost
    check_log_counts(chunks, collections.Counter(e.pid for e in events) if dumped is None
                     else dumped)


def check_log_counts(chunks, dumped):
    """The END chunks' event totals per pid are dumped (a Counter pid -> events
    `sftrace dump` printed; for streamed dumps)."""
    end_events = collections.Counter()
    for c in chunks:
        if c["type"] == CHUNK_END:
            end_events[c["pid"]] += c["events"]
    assert +end_events == +dumped, "END totals per pid %s, dumped %s" % (dict(end_events), dict(dumped))


def check_time_order(events):
    """Per (pid, tid), dump times never go backwards."""
    last = {}
    for i, e in enumerate(events):
        k = (e.pid, e.tid)
        assert e.time >= last.get(k, 0), \
            "time goes backwards on %d/%d at event %d (%s %s): %d < %d" % (
                e.pid, e.tid, i, e.kind, e.func, e.time, last[k])
        last[k] = e.time


def cpu_has(flag):
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return flag in line.split(":", 1)[1].split()
    except OSError:
        pass
    return False


def kv(text, key, cast=int):
    """The value after `key ` on the first stdout line that starts with it."""
    for line in text.splitlines():
        if line.startswith(key + " "):
            return cast(line[len(key) + 1:].split()[0])
    raise AssertionError("no %r line in output:\n%s" % (key, text))


def record_summary(stderr):
    """The counts of `sftrace record`'s summary line, as a dict: events, threads,
    processes, images, bytes (the line uses singular forms for 1)."""
    import re
    m = re.search(r"^sftrace record: (\d+) events?, (\d+) threads?, (\d+) process(?:es)?, "
                  r"(\d+) images?, (\d+) bytes written to ", stderr, re.M)
    assert m, "no summary line in:\n%s" % stderr
    return dict(zip(("events", "threads", "processes", "images", "bytes"),
                    (int(x) for x in m.groups())))
