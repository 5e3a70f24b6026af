"""t_info.py - tests of `sftrace info`.

Its processes, threads and objects are checked exactly against the log's
chunks as tl.read_log parses them; its event counts against the END chunks
and (with --events) against `sftrace dump`. A log whose event records are
garbage but whose chunk headers are sound shows that info decodes nothing
by default.
"""
import collections
import json
import re
import os
import struct

import tl

END_REASONS = {tl.END_EXIT: "exit", tl.END_EXEC: "exec", tl.END_SIGNAL: "signal"}


def _dir():
    return tl.outdir("info")


def _info(log, args=(), sftrace=None, check=True):
    return tl.run([sftrace or tl.SFTRACE, "info", "-q"] + list(args) + [log], check=check)


def _json(log, args=(), sftrace=None):
    return json.loads(_info(log, ["--format", "json"] + list(args), sftrace=sftrace).stdout)


def _check_exact(log):
    """info's processes, threads, objects and totals == the log's chunks."""
    _, chunks = tl.read_log(log)
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        info = _json(log, sftrace=sftrace)
        procs = [c for c in chunks if c["type"] == tl.CHUNK_PROCESS]
        assert len(info["processes"]) == len(procs)
        # images in file order; each one's END (the next END of its pid before
        # its pid's next PROCESS)
        for i, (p, c) in enumerate(zip(info["processes"], procs)):
            assert (p["pid"], p["ppid"], p["name"], p["exe"]) == \
                (c["pid"], c["ppid"], c["name"], c["exe"]), (p, c)
            assert p["cmdline"] == " ".join(c["cmdline"]), (p, c)
            assert p["forked"] == bool(c["flags"] & tl.PROC_FORKED)
            assert p["execed"] == bool(c["flags"] & tl.PROC_EXECED)
            later = [x for x in chunks if x["off"] > c["off"] and x["pid"] == c["pid"]
                     and x["type"] in (tl.CHUNK_PROCESS, tl.CHUNK_END)]
            end = later[0] if later and later[0]["type"] == tl.CHUNK_END else None
            assert p["ended"] == (END_REASONS[end["reason"]] if end else "no END"), (p, end)
            if end:
                assert p["events"] == end["events"] and not p["events_estimated"]
                assert p["lost"] == end["lost"]
        ends = [c for c in chunks if c["type"] == tl.CHUNK_END]
        assert info["events"] == sum(c["events"] for c in ends)
        assert info["lost"] == sum(c["lost"] for c in ends)
        assert info["log"]["bytes"] == os.path.getsize(log)
        # threads: every (image, tid) with EVENTS chunks or a THREAD chunk; the
        # latest name (an exec'd image's threads are new threads)
        want = collections.OrderedDict()
        image, nimg = {}, 0
        for c in chunks:
            if c["type"] == tl.CHUNK_PROCESS:
                image[c["pid"]] = nimg
                nimg += 1
            if c["type"] in (tl.CHUNK_EVENTS, tl.CHUNK_THREAD):
                t = want.setdefault((image[c["pid"]], c["pid"], c["tid"]), dict(name="", chunks=0, bytes=0,
                                                               exited=False))
                if c["type"] == tl.CHUNK_THREAD:
                    if c["name"]:
                        t["name"] = c["name"]
                    t["exited"] |= bool(c["flags"] & tl.THREAD_EXITED)
                else:
                    t["chunks"] += 1
                    t["bytes"] += c["size"] - 48
        got = {(t["image"], t["pid"], t["tid"]): dict(name=t["name"], chunks=t["chunks"],
                                                      bytes=t["bytes"], exited=t["exited"])
               for t in info["threads"]}
        assert got == dict(want), (got, want)
        # objects: one per (path, build-id, functions), with the pid of each image
        objs = collections.OrderedDict()
        for c in chunks:
            if c["type"] == tl.CHUNK_OBJECT:
                o = objs.setdefault((c["path"], c["build_id"], c["nfuncs"]),
                                    dict(sleds=0, pids=[], main=False))
                o["sleds"] = max(o["sleds"], c["nsleds"])
                o["pids"].append(c["pid"])
                o["main"] |= bool(c["flags"] & tl.OBJ_MAIN)
        got = {(o["path"], o["build_id"], o["functions"]): dict(sleds=o["sleds"], pids=o["pids"],
                                                                main=o["main"])
               for o in info["objects"]}
        assert got == dict(objs), (got, objs)
    return info, chunks


def _check_events_exact(log):
    ev, _ = tl.dump(log)
    per = collections.Counter((e.pid, e.tid) for e in ev if e.kind in ("entry", "exit",
                                                                        "tailcall"))
    info = _json(log, ["--events"])
    got = collections.Counter()
    for t in info["threads"]:
        got[(t["pid"], t["tid"])] += t["events"]
    got = +got
    assert got == dict(per), (got, per)
    assert all(not t["events_estimated"] for t in info["threads"])
    assert info["events"] == sum(per.values()) and info["events_decoded"]


def test_info_threads():
    exe = tl.build_c("threads.c", libs=["-lpthread"])
    log = os.path.join(_dir(), "threads.log")
    tl.record([exe], log)
    info, chunks = _check_exact(log)
    assert len(info["threads"]) == 6
    names = sorted(t["name"] for t in info["threads"])
    assert names == ["late-4", "threads", "work-0", "work-1", "work-2", "work-3"], names
    # estimates: a thread's share of its image's END count, by record bytes
    total = sum(t["events"] for t in info["threads"])
    assert abs(total - info["events"]) <= len(info["threads"]), (total, info["events"])
    assert all(t["events_estimated"] for t in info["threads"])
    _check_events_exact(log)
    assert info["clock"]["source"] in ("tsc", "mono")
    assert info["span_ns"] > 0 and info["bytes_per_event"] > 0


def _map_sleds(path):
    """Function sleds (entry, exit, tail call, entry with arguments) in an ELF
    file's xray_instr_map, parsed here, not by the runtime."""
    import t_filter
    with open(path, "rb") as f:
        data = f.read()
    _, _, off, size = t_filter._xray_section(data)
    return sum(1 for i in range(size // 32) if data[off + 32 * i + 16] <= 3)


def test_info_sleds_and_arch():
    # sleds: the object's function sleds, written before any is patched (a
    # filter that selects one function does not change the count); arch:
    # the machine of the process that wrote the log
    exe = tl.build_c("threads.c", libs=["-lpthread"])
    want = _map_sleds(exe)
    assert want >= 8, want  # main, worker, and the rest of threads.c
    flt = os.path.join(_dir(), "sleds.filter")
    tl.run([tl.SFTRACE, "filter", "-p", exe, "-r", "^worker$", "-o", flt])
    for name, extra in (("sleds", []), ("sleds-filtered", ["-f", flt])):
        log = os.path.join(_dir(), name + ".log")
        tl.record([exe], log, extra=extra)
        info, _ = _check_exact(log)
        objs = [o for o in info["objects"] if o["path"] == os.path.realpath(exe)]
        assert [o["sleds"] for o in objs] == [want], (name, objs, want)
        assert {p["arch"] for p in info["processes"]} == {"x86_64"}, info["processes"]
        table = _info(log).stdout
        assert re.search(r"^ +\d+ +\d+ +threads +x86_64 +exit ", table, re.M), table


def test_info_fork_and_exec():
    fork = tl.build_c("fork.c", libs=["-lpthread"])
    log = os.path.join(_dir(), "fork.log")
    tl.record([fork], log)
    info, _ = _check_exact(log)
    assert len(info["processes"]) == 2 and info["processes"][1]["forked"]
    _check_events_exact(log)
    a, b = tl.build_c("exec_a.c", libs=["-lpthread"]), tl.build_c("exec_b.c")
    log = os.path.join(_dir(), "exec.log")
    tl.record([a, b], log)
    info, _ = _check_exact(log)
    assert [p["ended"] for p in info["processes"]] == ["exec", "exit"], info["processes"]
    assert info["processes"][1]["cmdline"] == b + " from-exec-a"
    _check_events_exact(log)


def test_info_table():
    exe = tl.build_c("threads.c", libs=["-lpthread"])
    log = os.path.join(_dir(), "threads.log")
    tl.record([exe], log)
    out = _info(log).stdout
    for head in ("log ", "clock ", "span ", "events ", "lost ", "size ", "processes (1 image)",
                 "threads (6)", "objects (1)"):
        assert head in out, (head, out)
    assert "late-4" in out and os.path.basename(exe) in out and "exit" in out, out
    assert "~" in out  # thread counts are estimates, labelled
    out = _info(log, ["--events"]).stdout
    assert "(decoded)" in out and "~" not in out.split("threads (6)")[1], out


def _same_but_size(a, b):
    """info JSON of two logs, equal but for the path and the file's size."""
    for j in (a, b):
        j["log"]["path"] = j["log"]["bytes"] = j["bytes_per_event"] = None
    assert a == b, (a, b)


def test_info_reads_no_records():
    """Garbage in every EVENTS chunk's records: info reads headers only and
    still shows everything; --events decodes, skips every EVENTS chunk with a
    message naming the file and offset, shows exactly what the log without
    them holds, and exits 3."""
    exe = tl.build_c("threads.c", libs=["-lpthread"])
    log = os.path.join(_dir(), "threads.log")
    tl.record([exe], log)
    _, chunks = tl.read_log(log)
    data = bytearray(open(log, "rb").read())
    evs = [c for c in chunks if c["type"] == tl.CHUNK_EVENTS]
    for c in evs:
        for i in range(c["off"] + 48, c["off"] + c["size"]):
            data[i] = 0xff
    bad = os.path.join(_dir(), "garbage-records.log")
    open(bad, "wb").write(bytes(data))
    a = _json(log)
    b = _json(bad)
    a["log"]["path"] = b["log"]["path"]
    assert a == b
    # the log without its EVENTS chunks
    noev = os.path.join(_dir(), "no-events.log")
    keep = bytearray(data[:chunks[0]["off"]])
    for c in chunks:
        if c["type"] != tl.CHUNK_EVENTS:
            keep += data[c["off"]:c["off"] + c["size"]]
    open(noev, "wb").write(bytes(keep))
    want = _json(noev, ["--events"])
    assert want["events"] == 0 and want["chunks"]["events"] == 0 and want["threads"], want
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = _info(bad, ["--events", "--format", "json"], sftrace=sftrace, check=False)
        assert p.returncode == 3 and "Sanitizer" not in p.stderr, p
        _same_but_size(json.loads(p.stdout), dict(want))
        err = p.stderr.splitlines()
        assert len(err) == 22, err  # 20 warnings, "more damage", the summary
        assert err[0].startswith("sftrace info: %s: offset %d: bad packed record"
                                 % (bad, evs[0]["off"] + 48)), err[0]
        assert "EVENTS chunk at offset %d (%d bytes) skipped" % (evs[0]["off"], evs[0]["size"]) \
            in err[0], err[0]
        assert err[-1].startswith("sftrace info: %s: damaged log: %d bad chunks skipped (%d bytes)"
                                  % (bad, len(evs), sum(c["size"] for c in evs))), err[-1]


def test_info_bad_logs():
    """Damaged framing without --events (a truncated log, a bad chunk
    header): info reads past it as every command does, shows exactly what
    the log without the damage holds, names the file and offset, exits 3."""
    exe = tl.build_c("threads.c", libs=["-lpthread"])
    log = os.path.join(_dir(), "threads.log")
    tl.record([exe], log)
    data = open(log, "rb").read()
    _, chunks = tl.read_log(log)
    ev = [c for c in chunks if c["type"] == tl.CHUNK_EVENTS][3]
    cut = os.path.join(_dir(), "truncated.log")
    open(cut, "wb").write(data[:ev["off"] + 100])
    ref = os.path.join(_dir(), "truncated-ref.log")
    open(ref, "wb").write(data[:ev["off"]])
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = _info(cut, sftrace=sftrace, check=False)
        assert p.returncode == 3, p
        err = p.stderr.splitlines()
        assert len(err) == 2, err
        assert err[0].startswith("sftrace info: %s: offset %d: EVENTS chunk" % (cut, ev["off"])) \
            and "truncated" in err[0], err
        assert err[1].startswith("sftrace info: %s: damaged log: truncated at offset %d (100 bytes"
                                 % (cut, ev["off"])), err
        assert "processes (1 image)" in p.stdout and "no END" in p.stdout, p.stdout
        assert "Sanitizer" not in p.stderr
        p = _info(cut, ["--format", "json"], sftrace=sftrace, check=False)
        assert p.returncode == 3, p
        _same_but_size(json.loads(p.stdout), _json(ref))
    magic = bytearray(data)
    struct.pack_into("<I", magic, ev["off"], 0x12345678)
    badm = os.path.join(_dir(), "badmagic.log")
    open(badm, "wb").write(bytes(magic))
    ref = os.path.join(_dir(), "badmagic-ref.log")
    open(ref, "wb").write(data[:ev["off"]] + data[ev["off"] + ev["size"]:])
    p = _info(badm, ["--format", "json"], check=False)
    assert p.returncode == 3, p
    err = p.stderr.splitlines()
    assert len(err) == 2 and "%s: offset %d: bad chunk magic" % (badm, ev["off"]) in err[0], err
    assert "damaged log: 1 unreadable range skipped (%d bytes)" % ev["size"] in err[1], err
    _same_but_size(json.loads(p.stdout), _json(ref))
    notlog = os.path.join(_dir(), "notalog.log")
    open(notlog, "wb").write(b"hello world, not a log at all" * 4)
    p = _info(notlog, check=False)
    assert p.returncode == 1 and "notalog.log" in p.stderr, p.stderr
    p = tl.run([tl.SFTRACE, "info", "--format", "csv", log], check=False)
    assert p.returncode == 2 and "unknown format" in p.stderr
