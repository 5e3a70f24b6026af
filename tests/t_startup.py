"""t_startup.py - many short processes: every image is in the log exactly
once, with its PROCESS and its END, whatever the runtime does to make a
start and an exit cheap (helper.c: no waiting for the helper; an image that
recorded nothing writes its own END; a forked child with nothing
instrumented starts no helper until it needs one).

Each test checks the log chunk by chunk: per pid, the images in order
(split at PROCESS), their flags (forked, exec'd), parent, command line, how
each ended (END reason and exit status), and that nothing of a pid comes
before its PROCESS or after its last END. Counts are exact; nothing is
timed.
"""
import collections
import os

import tl

STATUS_EXITED, STATUS_SIGNALED = 1, 2
TRUE = "/bin/true"


def _dir():
    return tl.outdir("startup")


def images_by_pid(chunks):
    """pid -> list of images, each a dict: process (its PROCESS chunk), end
    (its END or None), types (the chunk types of the image, in order)."""
    imgs = collections.defaultdict(list)
    for c in chunks:
        if c["type"] == tl.CHUNK_PROCESS:
            imgs[c["pid"]].append({"process": c, "end": None, "types": [c["type"]]})
            continue
        assert imgs[c["pid"]], "chunk type %d of pid %d at %d before any PROCESS" % (
            c["type"], c["pid"], c["off"])
        img = imgs[c["pid"]][-1]
        assert img["end"] is None, "chunk type %d of pid %d at %d after its END" % (
            c["type"], c["pid"], c["off"])
        img["types"].append(c["type"])
        if c["type"] == tl.CHUNK_END:
            img["end"] = c
    for pid, li in imgs.items():
        for img in li:
            assert img["end"] is not None, "an image of pid %d has no END: %s" % (pid, img)
    return imgs


def top_pid(imgs):
    """The process `record` started: the one whose parent is not in the log."""
    top = [pid for pid, li in imgs.items() if li[0]["process"]["ppid"] not in imgs]
    assert len(top) == 1, top
    return top[0]


def check_image(img, flags, reason, status=(STATUS_EXITED, 0), ppid=None, argv0=None,
                events=0, types=None):
    p, e = img["process"], img["end"]
    assert p["flags"] == flags, (p, flags)
    assert e["reason"] == reason, (e, reason)
    assert (e["status_how"], e["status"]) == status, (e, status)
    if events is not None:
        assert e["events"] == events, (e, events)
    if ppid is not None:
        assert p["ppid"] == ppid, (p, ppid)
    if argv0 is not None:
        assert p["cmdline"] and p["cmdline"][0] == argv0, (p["cmdline"], argv0)
    if types is not None:
        assert img["types"] == types, (img["types"], types)


def test_shell_loop_of_uninstrumented_processes():
    """sh runs 40 /bin/true, a $(seq), and an exec chain sh -> true; then
    exits 3. Nothing is instrumented: each image is PROCESS then END."""
    log = os.path.join(_dir(), "shloop.log")
    script = ('for i in $(seq 40); do %s; done; /bin/sh -c "exec %s"; exit 3' % (TRUE, TRUE))
    p = tl.record(["/bin/sh", "-c", script], log, check=False)
    assert p.returncode == 3, p.stderr
    s = tl.record_summary(p.stderr)
    assert (s["processes"], s["images"], s["events"]) == (43, 44, 0), s
    _, chunks = tl.read_log(log)
    imgs = images_by_pid(chunks)
    assert len(imgs) == 43 and sum(len(li) for li in imgs.values()) == 44, imgs
    assert all(t == tl.CHUNK_PROCESS or t == tl.CHUNK_END
               for li in imgs.values() for img in li for t in img["types"])
    top = top_pid(imgs)
    check_image(imgs[top][0], 0, tl.END_EXIT, (STATUS_EXITED, 3), argv0="/bin/sh",
                types=[tl.CHUNK_PROCESS, tl.CHUNK_END])
    kids = [pid for pid in imgs if pid != top]
    trues = [pid for pid in kids if len(imgs[pid]) == 1 and imgs[pid][0]["process"]["name"] == "true"]
    seqs = [pid for pid in kids if imgs[pid][0]["process"]["name"] == "seq"]
    chains = [pid for pid in kids if len(imgs[pid]) == 2]
    assert (len(trues), len(seqs), len(chains)) == (40, 1, 1), (trues, seqs, chains)
    for pid in trues + seqs:
        # dash starts a command with vfork (a new image) or fork (an exec'd
        # one: the child ran the shell first)
        img = imgs[pid][0]
        check_image(img, img["process"]["flags"], tl.END_EXIT, ppid=top,
                    types=[tl.CHUNK_PROCESS, tl.CHUNK_END])
        assert img["process"]["flags"] in (0, tl.PROC_EXECED), img
    first, second = imgs[chains[0]]
    assert first["process"]["flags"] in (0, tl.PROC_EXECED), first
    check_image(first, first["process"]["flags"], tl.END_EXEC, (0, 0), ppid=top,
                argv0="/bin/sh")
    check_image(second, tl.PROC_EXECED, tl.END_EXIT, ppid=top, argv0=TRUE)
    # the tools agree
    info = tl.run([tl.SFTRACE, "info", log]).stdout
    assert "processes (44 images)" in info, info


def test_instrumented_program_with_every_kind_of_child():
    """An instrumented program starts, per round, a forked child that
    records, one that records nothing, fork+exec, vfork+exec and posix_spawn
    of /bin/true, an exec'd instrumented image, and an exec chain of two."""
    rounds = 6
    exe = tl.build_c("startup_spawn.c")
    log = os.path.join(_dir(), "spawn.log")
    p = tl.record([exe, "loop", str(rounds), TRUE], log)
    kids = collections.defaultdict(list)
    for line in p.stdout.splitlines():
        kind, pid = line.split()
        kids[kind].append(int(pid))
    assert {k: len(v) for k, v in kids.items()} == {
        k: rounds for k in ("fork-work", "fork-quiet", "fork-true", "vfork-true", "spawn-true",
                            "leaf", "chain")}, kids
    _, chunks = tl.read_log(log)
    imgs = images_by_pid(chunks)
    top = [pid for pid, li in imgs.items() if li[0]["process"]["flags"] == 0 and
           li[0]["process"]["cmdline"][1:2] == ["loop"]]
    assert len(top) == 1, top
    top = top[0]
    # one image per process but the chain's two; the quiet children wrote nothing
    want = 1 + rounds * (1 + 3 + 1 + 2)
    assert sum(len(li) for li in imgs.values()) == want, (len(imgs), want)
    assert not [pid for pid in kids["fork-quiet"] if pid in imgs]
    check_image(imgs[top][0], 0, tl.END_EXIT, events=None)
    for pid in kids["fork-work"]:
        assert len(imgs[pid]) == 1
        check_image(imgs[pid][0], tl.PROC_FORKED, tl.END_EXIT, ppid=top, argv0=exe, events=None)
    for pid in kids["fork-true"]:
        assert len(imgs[pid]) == 1
        check_image(imgs[pid][0], tl.PROC_EXECED, tl.END_EXIT, ppid=top, argv0=TRUE,
                    types=[tl.CHUNK_PROCESS, tl.CHUNK_END])
    for pid in kids["vfork-true"] + kids["spawn-true"]:
        # the child recorded nothing before its exec: a new image, not an exec'd one
        assert len(imgs[pid]) == 1
        check_image(imgs[pid][0], 0, tl.END_EXIT, ppid=top, argv0=TRUE,
                    types=[tl.CHUNK_PROCESS, tl.CHUNK_END])
    for pid in kids["leaf"]:
        assert len(imgs[pid]) == 1
        check_image(imgs[pid][0], tl.PROC_EXECED, tl.END_EXIT, ppid=top, events=None)
        assert imgs[pid][0]["process"]["cmdline"][1:] == ["leaf"]
    for pid in kids["chain"]:
        assert len(imgs[pid]) == 2, imgs[pid]
        first, second = imgs[pid]
        check_image(first, tl.PROC_EXECED, tl.END_EXEC, (0, 0), ppid=top, events=None)
        assert first["process"]["cmdline"][1:] == ["chain"]
        check_image(second, tl.PROC_EXECED, tl.END_EXIT, ppid=top, events=None)
        assert second["process"]["cmdline"][1:] == ["leaf"]
    events, _ = tl.dump(log)
    c = collections.Counter(e.pid for e in events if e.kind == "entry" and e.func == "work")
    assert c[top] == rounds and all(c[pid] == 1 for pid in kids["fork-work"] + kids["leaf"]), c
    assert sum(c.values()) == rounds * 4, c
    # every END counts what the log holds for its pid (one image each but
    # the chains, whose first image recorded nothing of its own)
    dumped = collections.Counter(e.pid for e in events)
    for pid, li in imgs.items():
        assert sum(img["end"]["events"] for img in li) == dumped[pid], (pid, li, dumped[pid])
    tl.check_log_complete(chunks, events)


def test_killed_at_start_and_at_once():
    """Processes killed with SIGKILL as soon as they run (before any code of
    theirs after the runtime's start-up): each has its PROCESS and one END
    saying it died; the top one, which record does not reap early, says by
    SIGKILL."""
    log = os.path.join(_dir(), "killed.log")
    script = "for i in 1 2 3 4 5 6; do /bin/sh -c 'kill -KILL $$'; done; kill -KILL $$"
    p = tl.record(["/bin/sh", "-c", script], log, check=False)
    assert p.returncode == 137, (p.returncode, p.stderr)
    _, chunks = tl.read_log(log)
    imgs = images_by_pid(chunks)
    assert len(imgs) == 7 and all(len(li) == 1 for li in imgs.values()), imgs
    top = [top_pid(imgs)]
    check_image(imgs[top[0]][0], 0, tl.END_DIED, (STATUS_SIGNALED, 9),
                types=[tl.CHUNK_PROCESS, tl.CHUNK_END])
    for pid, li in imgs.items():
        if pid != top[0]:
            assert li[0]["process"]["ppid"] == top[0]
            assert li[0]["end"]["reason"] == tl.END_DIED, li
            # the shell reaps its child at once; the status comes from the
            # zombie or the pidfd, where the kernel keeps it
            assert (li[0]["end"]["status_how"], li[0]["end"]["status"]) in (
                (STATUS_SIGNALED, 9), (0, 0)), li


def test_shell_saves_and_restores_a_high_descriptor():
    """bash's `exec 1000>FILE` saves and restores whatever is open at 1000
    (fcntl F_DUPFD, which no hook sees): the runtime keeps the log closed
    while the program runs, so the program's writes reach its file, never
    the log, and its own END is written all the same."""
    if not tl.have("bash"):
        raise tl.Skip("bash is not installed")
    d = _dir()
    log, out = os.path.join(d, "highfd.log"), os.path.join(d, "highfd.txt")
    if os.path.exists(out):
        os.unlink(out)
    script = "exec 1000>%s; echo hello >&1000; exec 1001>&-; exec 1002>&-; %s; exit 4" % (out, TRUE)
    p = tl.record(["bash", "-c", script], log, check=False)
    assert p.returncode == 4, p.stderr
    assert open(out).read() == "hello\n"
    _, chunks = tl.read_log(log)
    imgs = images_by_pid(chunks)
    top = top_pid(imgs)
    assert len(imgs) == 2 and len(imgs[top]) == 1, imgs
    check_image(imgs[top][0], 0, tl.END_EXIT, (STATUS_EXITED, 4), argv0="bash",
                types=[tl.CHUNK_PROCESS, tl.CHUNK_END])
    (kid,) = [pid for pid in imgs if pid != top]
    check_image(imgs[kid][0], imgs[kid][0]["process"]["flags"], tl.END_EXIT, ppid=top,
                argv0=TRUE, types=[tl.CHUNK_PROCESS, tl.CHUNK_END])
