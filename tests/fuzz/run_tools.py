#!/usr/bin/env python3
"""run_tools.py - run every file of the given directories through the
ASan+UBSan build of the commands that read logs (build/asan/sftrace): dump,
convert (Perfetto and, when built, SQLite) and, once they exist, report and
info.

The libFuzzer harness (fuzz_log.c) covers the reader; this covers what the
tools do with what it returns. A finding is an exit by a signal, an exit
status other than 0, 1 (not a log) or 3 (damaged), a sanitizer report, or a
hang; each is printed and its input copied to tests/fuzz/corpus/crash-tool-*
so that tests/t_robust.py keeps it as a regression test. Exit 1 if any.
"""
import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SFTRACE = os.path.join(ROOT, "build", "asan", "sftrace")


def commands():
    """The log-reading commands this build has, as argument lists (LOG, OUT
    stand for the input and an output file)."""
    cands = [["dump", "LOG"], ["convert", "-q", "LOG", "-o", "OUT.pb"],
             ["convert", "-q", "--format", "sqlite", "LOG", "-o", "OUT.db"],
             ["report", "LOG"], ["info", "LOG"]]
    have = []
    for c in cands:
        p = subprocess.run([SFTRACE, c[0], "-h"], capture_output=True, text=True)
        if p.returncode == 0 and ("--format" not in c or "sqlite" in p.stdout):
            have.append(c)
    return have


CMDS = []


def one(path, tmp):
    """None, or what went wrong with path."""
    out = os.path.join(tmp, hashlib.sha1(path.encode()).hexdigest())
    for c in CMDS:
        cmd = [path if a == "LOG" else out + a[3:] if a.startswith("OUT") else a for a in c]
        try:
            p = subprocess.run([SFTRACE] + cmd, capture_output=True, timeout=60,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return "%s: hang (60 s)" % cmd[0]
        err = p.stderr.decode(errors="replace")
        if p.returncode not in (0, 1, 3) or "Sanitizer" in err or "runtime error" in err:
            return "%s: exit %d\n%s" % (cmd[0], p.returncode, err[-3000:])
        for ext in (".pb", ".db"):
            if os.path.exists(out + ext):
                os.unlink(out + ext)
    return None


def main():
    files = []
    for d in sys.argv[1:]:
        files += [os.path.join(d, f) for f in sorted(os.listdir(d))]
    CMDS.extend(commands())
    print("commands: " + ", ".join(" ".join(c) for c in CMDS))
    bad = 0
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(2) as ex:
        for path, res in zip(files, ex.map(lambda f: one(f, tmp), files)):
            if res:
                bad += 1
                with open(path, "rb") as f:
                    h = hashlib.sha1(f.read()).hexdigest()
                keep = os.path.join(HERE, "corpus", "crash-tool-" + h)
                if os.path.abspath(path) != keep:
                    shutil.copyfile(path, keep)
                print("FINDING %s (kept as %s): %s" % (path, keep, res))
    print("%d inputs through %d commands, %d findings" % (len(files), len(CMDS), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
