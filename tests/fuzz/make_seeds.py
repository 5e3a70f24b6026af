#!/usr/bin/env python3
"""make_seeds.py - write the fuzzing seed corpus (tests/fuzz/corpus/seed-*).

Small synthesized logs (tests/logsynth.py) that between them have every
chunk type, both clocks, raw and packed records of every kind, fork and exec
images, and the kinds of damage tests/t_robust.py covers, so the fuzzer
starts from inputs that get deep into the reader. Deterministic: run it again
and the files do not change. The corpus also keeps, as regression tests, the
inputs of findings (crash-*, see README.md).
"""
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import logsynth as ls  # noqa: E402

OUT = os.path.join(HERE, "corpus")


def base(clock=ls.MONO, pid=10, tsc_hz=0):
    log = ls.Log(create_mono_ns=0)
    log.process(pid, clock=clock, tsc=1000, mono_ns=5000, tsc_hz=tsc_hz, cmdline=("prog", "a"))
    log.object(pid, 1, [0x1000 + 16 * i for i in range(8)], "/bin/prog", b"\x01\x02\x03\x04")
    log.thread(pid, pid, "main")
    return log


def events(log, rnd, pid, tid, n, packed, seq=0, hi=0):
    h, raw = ls.encode(ls.random_stream(rnd, n, 8, (hi << 32) + 100))
    if packed:
        log.events(pid, tid, ls.pack(raw, h), tsc_hi=h, seq=seq, flags=ls.EVENTS_PACKED,
                   flush_tsc=2000 + seq, flush_mono_ns=6000 + seq)
    else:
        log.events(pid, tid, raw, tsc_hi=h, seq=seq, flush_tsc=2000 + seq,
                   flush_mono_ns=6000 + seq)


def seeds():
    rnd = random.Random(11)
    out = {}
    for clock, name in ((ls.MONO, "mono"), (ls.TSC, "tsc")):
        for packed in (0, 1):
            log = base(clock, tsc_hz=2_000_000_000 if clock == ls.TSC else 0)
            events(log, rnd, 10, 10, 40, packed)
            events(log, rnd, 10, 11, 40, packed, hi=3)
            events(log, rnd, 10, 10, 20, packed, seq=1)
            log.thread(10, 11, "worker", flags=ls.THREAD_EXITED)
            log.end(10, tsc=3000, mono_ns=7000, events=100)
            out["%s-%s" % (name, "packed" if packed else "raw")] = log.bytes()
    # fork and exec images
    log = base()
    events(log, rnd, 10, 10, 10, 1)
    log.process(11, ppid=10, clock=ls.MONO, flags=ls.PROC_FORKED)
    events(log, rnd, 11, 11, 10, 1)
    log.process(10, clock=ls.MONO, flags=ls.PROC_EXECED, exe="/bin/other")
    log.object(10, 1, [0x2000, 0x2010], "/bin/other")
    log.object(10, 3, [0x3000], "/lib/libx.so", flags=0)
    events(log, rnd, 10, 10, 10, 0)
    log.end(10, reason=ls.END_EXEC)
    log.end(11)
    out["fork-exec"] = log.bytes()
    # unknown chunk types, unknown subtypes, a newer minor version
    log = ls.Log(version=(1, 3), header_size=72)
    log.process(1, clock=ls.MONO)
    log.chunk(99, 1, b"future" * 3)
    _, raw = ls.encode([("entry", 5, 1), ("ext", 6, 40, 1, [1, 2]), ("exit", 7, 1)])
    log.events(1, 1, raw)
    out["newer"] = log.bytes()
    # damage
    good = base()
    events(good, rnd, 10, 10, 20, 1)
    g = good.bytes()
    log = ls.Log(create_mono_ns=0)
    log.data = bytearray(g)
    log.thread(99, 99, "orphan")
    log.events(98, 98, ls.rec(1, 1, 0))
    events(log, rnd, 10, 10, 5, 1, seq=1)
    out["no-process"] = log.bytes()
    out["garbage"] = g + bytes(rnd.getrandbits(8) for _ in range(40)) + g[64:]
    out["truncated"] = g[:-13]
    out["bad-size"] = g[:64] + ls.chunk_header(ls.THREAD, 0, 4096, 10) + g[80:]
    out["bad-magic"] = g[:64] + b"XXXX" + g[68:]
    bad_packed = base()
    bad_packed.events(10, 10, b"\x01\x01\x00\x01", flags=ls.EVENTS_PACKED)
    events(bad_packed, rnd, 10, 10, 5, 1, seq=1)
    out["bad-packed"] = bad_packed.bytes()
    bad_proc = ls.Log()
    bad_proc.process(1, clock=7)
    bad_proc.process(2, clock=ls.MONO, lens=(1000, 0, 0))
    bad_proc.object(1, 1, [1], "/x", nfuncs=1000)
    bad_proc.events(1, 1, ls.ext(ls.EXT_ARGS, 7, 0, [0] * 7))
    out["bad-fields"] = bad_proc.bytes()
    out["header-only"] = ls.Log().bytes()
    out["empty"] = b""
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(OUT, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
