"""t_flame.py - tests of `sftrace flame`: the folded stacks checked line by
line against a reference from `sftrace dump` (t_report.py's stack rules),
the SVG parsed as XML with every frame inside its parent, --weight calls,
--by thread, a graph of 20,000 distinct frames, and bad arguments."""
import collections
import os
import xml.etree.ElementTree as ET

import logsynth as ls
import t_report as tr
import tl

SVG = "{http://www.w3.org/2000/svg}"


def ref_folded(calls, weight="time", by_thread=False, names=None):
    """'a;b;c' -> weight, for paths with a non-zero self weight."""
    out = collections.Counter()
    for c in calls:
        path = c.path
        if by_thread:
            path = (names[c.thread],) + path
        w = c.self if weight == "time" else 1
        out[";".join(path)] += w
    return {k: v for k, v in out.items() if v}


def folded(log, args=(), sftrace=None):
    p = tl.run([sftrace or tl.SFTRACE, "flame", "-q", "--format", "folded", "-o", "-"]
               + list(args) + [log])
    lines = p.stdout.splitlines()
    got = {}
    for ln in lines:
        stack, w = ln.rsplit(" ", 1)
        assert stack not in got, "duplicate stack %r" % stack
        got[stack] = int(w)
    # pre-order with siblings by name: the lines are sorted by their frames
    keys = [ln.rsplit(" ", 1)[0].split(";") for ln in lines]
    assert keys == sorted(keys), "folded lines not in sorted pre-order"
    return got


def test_flame_folded_matches_dump():
    exe = tr.build("an_calls.c")
    log = tr.record("an_calls_threads", [exe, "threads"])
    calls = tr.calls_from_dump(log)
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        for jobs in ("1", "2"):
            assert folded(log, ["-j", jobs], sftrace) == ref_folded(calls)
            assert folded(log, ["-j", jobs, "--weight", "calls"], sftrace) == \
                ref_folded(calls, "calls")
    got = folded(log, ["--weight", "calls"])
    assert got["main;top;rec;rec;rec;rec;rec;leaf"] == 10
    assert got["worker;top;tail_b;leaf"] == 20


def test_flame_by_thread():
    exe = tr.build("an_calls.c")
    log = tr.record("an_calls_threads", [exe, "threads"])
    calls = tr.calls_from_dump(log)
    ev, _ = tl.dump(log)
    _, chunks = tl.read_log(log)
    tname = {}
    for c in chunks:
        if c["type"] == tl.CHUNK_THREAD and c["name"]:
            tname[(c["pid"], c["tid"])] = "%d/%d %s" % (c["pid"], c["tid"], c["name"])
    names = {th: tname.get(th, "%d/%d" % th) for th in {c.thread for c in calls}}
    assert folded(log, ["--by", "thread"]) == ref_folded(calls, by_thread=True, names=names)


def parse_svg(path):
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg"
    frames = root.find(SVG + "g[@id='frames']")
    out = []
    for g in frames.findall(SVG + "g"):
        r = g.find(SVG + "rect")
        out.append(dict(name=g.get("data-n"), parent=int(g.get("data-p")),
                        x=float(r.get("x")), w=float(r.get("width")), y=float(r.get("y")),
                        title=g.find(SVG + "title").text))
    return root, out


def check_svg_frames(frames, width):
    assert frames[0]["name"] == "all" and frames[0]["parent"] == -1
    assert abs(frames[0]["w"] - (width - 20)) < 0.2
    kids = collections.defaultdict(list)
    for i, f in enumerate(frames[1:], 1):
        p = frames[f["parent"]]
        assert f["parent"] < i
        # inside the parent (0.1 px of rounding at each end), one level above it
        assert f["x"] >= p["x"] - 0.15 and f["x"] + f["w"] <= p["x"] + p["w"] + 0.15, (f, p)
        assert f["y"] == p["y"] - 16, (f, p)
        kids[f["parent"]].append(f)
    for i, ks in kids.items():
        assert sum(k["w"] for k in ks) <= frames[i]["w"] + 0.1 * len(ks) + 0.15, (frames[i], ks)


def test_flame_svg():
    exe = tr.build("an_calls.c")
    log = tr.record("an_calls_threads", [exe, "threads"])
    out = os.path.join(tr._dir(), "flame.svg")
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        if os.path.exists(out):
            os.unlink(out)
        tl.run([sftrace, "flame", "-q", "-o", out, log])
        root, frames = parse_svg(out)
        check_svg_frames(frames, 1200)
    text = open(out).read()
    assert "<script" in text and "function zoom" in text and "searchbox" in text
    assert "http://" not in text.replace("http://www.w3.org/", "")  # nothing external
    tl.run([tl.SFTRACE, "flame", "-q", "--min-width", "0.001", "-o", out, log])
    root, frames = parse_svg(out)
    check_svg_frames(frames, 1200)
    names = {f["name"] for f in frames}
    for n in ("main", "worker", "top", "mid", "leaf", "rec", "tail_a", "tail_b", "ping", "pong"):
        assert n in names, n
    # widths: inclusive time, scaled to the root
    calls = tr.calls_from_dump(log)
    alltime = sum(c.end - c.start for c in calls if c.depth == 0)
    mains = [f for f in frames if f["name"] == "main" and f["parent"] == 0]
    maintime = sum(c.end - c.start for c in calls if c.func == "main" and c.depth == 0)
    assert abs(mains[0]["w"] - 1180.0 * maintime / alltime) < 0.1
    top = [f for f in frames if f["name"] == "top" and frames[f["parent"]]["name"] == "main"][0]
    assert top["title"].startswith("top\n") and "10 calls" in top["title"], top["title"]
    p = tl.run([tl.SFTRACE, "flame", "-q", "--weight", "calls", "--width", "800", "-o", out, log])
    root, frames = parse_svg(out)
    check_svg_frames(frames, 800)


def test_flame_many_frames():
    """20,000 distinct functions under one root, a few of them wide: the SVG
    merges the narrow ones and stays small; folded keeps every one."""
    log = ls.Log(create_mono_ns=10**9)
    log.process(90, clock=ls.MONO, tsc=0, mono_ns=10**9, exe="/nonexistent/many")
    evs = [("entry", 10**9, 1)]
    t = 10**9 + 10
    for fid in range(2, 20002):
        dur = 100000 if fid % 5000 == 0 else 10
        evs += [("entry", t, fid), ("exit", t + dur, fid)]
        t += dur + 1
    evs.append(("exit", t, 1))
    hi, recs = ls.encode(evs)
    log.events(90, 90, recs, tsc_hi=hi)
    log.end(90, events=len(evs))
    path = os.path.join(tr._dir(), "many.log")
    log.write(path)
    out = os.path.join(tr._dir(), "many.svg")
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        tl.run([sftrace, "flame", "-q", "-o", out, path])
        root, frames = parse_svg(out)
        check_svg_frames(frames, 1200)
        assert len(frames) < 100, len(frames)
        merged = [f for f in frames if f["name"].endswith("small frames]")]
        assert len(merged) == 1 and merged[0]["name"] == "[19996 small frames]", merged
        assert os.path.getsize(out) < 100000
    got = folded(path)
    assert len(got) == 20001 and sum(got.values()) == t - 10**9


def test_flame_errors():
    exe = tr.build("an_calls.c")
    log = tr.record("an_calls_one", [exe])
    tr._one_error(["flame", "--weight", "bytes", log], "--weight")
    tr._one_error(["flame", "--format", "png", log], "--format wants svg or folded")
    tr._one_error(["flame", "-F", "(", log], "bad regular expression")
    tr._one_error(["flame", "-o", "-", tr.empty_log()], "no events")
    tr._one_error(["flame", "-q", "-o", "/nonexistent/dir/x.svg", log], "/nonexistent/dir/x.svg")


def test_flame_script_zoom_and_search():
    """The SVG's own script, run by node with a small DOM stand-in
    (tests/programs/an_flamejs.js): zoom, reset, search."""
    import json
    if not tl.have("node"):
        raise tl.Skip("node is not installed")
    exe = tr.build("an_calls.c")
    log = tr.record("an_calls_threads", [exe, "threads"])
    out = os.path.join(tr._dir(), "flame-js.svg")
    tl.run([tl.SFTRACE, "flame", "-q", "--min-width", "0.01", "-o", out, log])
    _, frames = parse_svg(out)
    z = [i for i, f in enumerate(frames) if f["name"] == "top" and
         frames[f["parent"]]["name"] == "worker"][0]
    p = tl.run(["node", os.path.join(tl.PROGS, "an_flamejs.js"), out, str(z), "^leaf$"])
    r = json.loads(p.stdout)
    assert r["frames"] == len(frames)

    def ancestors(i):
        while frames[i]["parent"] >= 0:
            i = frames[i]["parent"]
            yield i

    inside = {i for i in range(len(frames)) if i == z or z in ancestors(i)}
    anc = set(ancestors(z))
    scale = 1180.0 / frames[z]["w"]
    for i, (f, s) in enumerate(zip(frames, r["zoomed"])):
        if i in inside:
            assert s["shown"] and abs(s["x"] - (10 + (f["x"] - frames[z]["x"]) * scale)) < 0.2, \
                (i, f, s)
            assert abs(s["w"] - f["w"] * scale) < 0.2 + 0.01 * s["w"], (i, f, s)
            assert s["x"] >= 9.9 and s["x"] + s["w"] <= 1190.2, (i, s)
        elif i in anc:
            assert s["shown"] and s["x"] == 10 and abs(s["w"] - 1180) < 0.1, (i, s)
        else:
            assert not s["shown"], (i, f, s)
    assert r["zoomed"][z]["label"].startswith("top")
    for f, s in zip(frames, r["unzoomed"]):
        assert s["shown"] and abs(s["x"] - f["x"]) < 0.06 and abs(s["w"] - f["w"]) < 0.06
    leaves = [f for f in frames if f["name"] == "leaf"]
    iv = sorted((f["x"], f["x"] + f["w"]) for f in leaves)
    total, lo, hi = 0, None, None
    for a, b in iv:
        if hi is None or a > hi:
            total += (hi - lo) if hi is not None else 0
            lo, hi = a, b
        else:
            hi = max(hi, b)
    total += hi - lo
    assert r["matched"] == "Matched: %.1f%% (%d frames)" % (100 * total / 1180.0, len(leaves)), \
        r["matched"]
    for f, s in zip(frames, r["searched"]):
        assert (s["fill"] == "rgb(230,0,230)") == (f["name"] == "leaf"), (f, s)
    assert r["details"].startswith(frames[1]["name"] + "  "), r["details"]


def test_flame_into_a_fifo_keeps_the_fifo():
    """-o naming something that is not a regular file (a FIFO here; /dev/null
    alike) is written as it is: a temporary renamed over it would replace it
    with a plain file (seen here: /dev/null became one)."""
    import stat
    import threading
    exe = tr.build("an_calls.c")
    log = tr.record("an_calls_one", [exe])
    fifo = os.path.join(tl.outdir("flame"), "out.fifo")
    if os.path.lexists(fifo):
        os.unlink(fifo)
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    try:
        p = tl.run([tl.SFTRACE_ASAN, "flame", "-q", "--format", "folded", "-o", fifo, log],
                   check=False, timeout=60)
    finally:
        if not got:  # unblock the reader if flame never opened the FIFO
            with open(fifo, "wb"):
                pass
        reader.join(timeout=60)
    assert p.returncode == 0, p.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a file"
    assert b"main;" in got[0], got
    assert not [f for f in os.listdir(os.path.dirname(fifo)) if ".tmp" in f]
