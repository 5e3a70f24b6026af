"""t_pack.py - the packed encodings of EVENTS chunks (common/pack.h).

tests/pack_roundtrip.c, built here with ASan and UBSan (and once without),
packs random and adversarial raw streams and recorded raw buffers with
both encoders (1: older logs; 2: what the runtime writes now) and checks
that decoding gives back every record exactly; it feeds the decoder damaged
and hand-made bad data, which must be rejected without reading past it.
End to end, a raw log repacked in either encoding must dump exactly as the
raw one, a log written by the encoding-1 runtime (tests/data) must dump as
it did then, and corrupt encoding-2 chunks get a clear error.
"""
import gzip
import os
import re

import logsynth as ls
import tl

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SAN = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
EVENTS_PACK2 = 4  # common/pack.h


def _dir():
    return tl.outdir("pack")


def _driver(san=True):
    src = os.path.join(HERE, "pack_roundtrip.c")
    hdrs = [os.path.join(ROOT, "common", h) for h in ("pack.h", "logfmt.h")]
    out = os.path.join(_dir(), "pack_roundtrip" + ("_san" if san else ""))
    if tl._stale(out, [src, __file__] + hdrs):
        tl.run(["cc", "-std=gnu11", "-g", "-Wall", "-Wextra", "-Werror", "-I",
                os.path.join(ROOT, "common")] + (["-O1"] + SAN if san else ["-O2"])
               + [src, "-o", out])
    return out


def _ok(p, what):
    m = re.search(r"^ok %s: (\d+) streams, (\d+) records" % what, p.stdout, re.M)
    assert m, p.stdout + p.stderr
    return int(m.group(1)), int(m.group(2))


def test_random_streams_round_trip():
    """Random and adversarial streams: every kind, every id width, cache
    collisions, time jumps both ways and across the high half, redundant
    TSC_HI, extended records of known and unknown subtypes, stacks 600
    deep, exits of functions never entered or not on top, truncated tails."""
    for san, n in ((True, 400), (False, 1500)):
        p = tl.run([_driver(san), "random", "13", str(n)], timeout=600)
        streams, records = _ok(p, "random")
        assert streams == n and records > 100 * n, p.stdout


def test_corrupt_data_rejected():
    p = tl.run([_driver(), "corrupt", "7", "4000"], timeout=600)
    m = re.search(r"ok corrupt: (\d+) hand-made bad records rejected; 4000 damaged streams, "
                  r"(\d+) rejected", p.stdout)
    assert m and int(m.group(1)) >= 17 and int(m.group(2)) > 1000, p.stdout + p.stderr


def test_fast_path_agrees():
    """The reader decodes runs of common records of encoding 2 without a
    bounds check a byte (sf_unpack_run): on packed chunks of a recorded log
    (700 frames deep, beyond the 256-entry stack), of the encoding-1 log, and
    of random streams (every id width, cache collisions, time jumps), each
    whole and damaged (bits, bytes, cuts, records moved), it must give the
    same records, stop at the same offset and refuse the same chunks as
    sf_unpack record by record (ASan build, and -O2)."""
    prog = tl.build_c("recursion.c", flags=tl.WARN_CFLAGS)
    log = os.path.join(_dir(), "recursion.fast.sft")
    tl.record([prog, "16", "700"], log)
    old = os.path.join(HERE, "data", "v1_packed.sft")
    for san, n in ((True, 150), (False, 600)):
        p = tl.run([_driver(san), "fast", "11", str(n), log, old], timeout=600)
        m = re.search(r"^ok fast: (\d+) chunks, (\d+) records \((\d+) by the fast path\), "
                      r"(\d+) refused, the same both ways", p.stdout, re.M)
        assert m, p.stdout + p.stderr
        chunks, records, fast, refused = map(int, m.groups())
        assert chunks > 5 * n and records > 1000 * n, p.stdout
        assert records / 2 < fast < records and refused > n / 2, p.stdout


def _recursion_raw():
    prog = tl.build_c("recursion.c", flags=tl.WARN_CFLAGS)
    log = os.path.join(_dir(), "recursion.raw.sft")
    tl.record([prog, "16", "700"], log, env={"SFTRACE_RAW": "1"})
    return prog, log


def test_recorded_buffers_round_trip():
    """The runtime's raw buffers of a deep recursion (700 frames, beyond
    the encoders' 256-entry stack) round-trip; repacked, they dump exactly
    as the raw log, in both encodings, with the plain and the ASan tools."""
    prog, raw = _recursion_raw()
    p = tl.run([_driver(), "log", raw], timeout=600)
    streams, records = _ok(p, "log")
    want = 2 * (2 * 1597 - 1 + 701 + 1)  # fib(16) calls, descend(700) frames, main
    assert records == want, (records, want)
    ref = tl.run([tl.SFTRACE, "dump", raw]).stdout
    assert len(tl.parse_dump(ref)) == want
    for enc in (1, 2):
        out = os.path.join(_dir(), "recursion.enc%d.sft" % enc)
        tl.run([_driver(), "repack", str(enc), raw, out])
        _, chunks = tl.read_log(out)
        flags = {c["flags"] & 6 for c in chunks if c["type"] == tl.CHUNK_EVENTS}
        assert flags == {2 if enc == 1 else 2 | EVENTS_PACK2}, flags
        assert os.path.getsize(out) < os.path.getsize(raw) / 3
        for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
            assert tl.run([sftrace, "dump", out]).stdout == ref, (enc, sftrace)


def test_runtime_writes_encoding_2():
    prog = tl.build_c("recursion.c", flags=tl.WARN_CFLAGS)
    log = os.path.join(_dir(), "recursion.sft")
    tl.record([prog, "16", "700"], log)
    _, chunks = tl.read_log(log)
    ev = [c for c in chunks if c["type"] == tl.CHUNK_EVENTS]
    assert ev and all(c["flags"] & 6 == 6 for c in ev), [c["flags"] for c in ev]
    events, _ = tl.dump(log, sftrace=tl.SFTRACE_ASAN)
    assert tl.counts(events)["fib"] == 2 * 1597 - 1
    assert tl.counts(events)["descend"] == 701
    assert tl.counts(events, "exit") == tl.counts(events)
    tl.check_nesting(events)


def test_old_encoding_log_unchanged():
    """tests/data/v1_packed.sft was written by the runtime before encoding 2
    (bench/workload.c, 1 thread, 2 iterations; its binary is gone, so dump
    shows addresses): it must dump exactly as it did then (v1_packed.dump.gz
    was regenerated once when dump gained its duration column on exits and
    tail calls; every other field was checked equal to the original)."""
    log = os.path.join(HERE, "data", "v1_packed.sft")
    with gzip.open(os.path.join(HERE, "data", "v1_packed.dump.gz"), "rt") as f:
        want = f.read()
    _, chunks = tl.read_log(log)
    assert {c["flags"] for c in chunks if c["type"] == tl.CHUNK_EVENTS} == {2}
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = tl.run([sftrace, "dump", log])
        assert p.stdout == want, sftrace
        assert len(tl.parse_dump(p.stdout)) == 2856


def test_corrupt_chunk_message():
    """A bad encoding-2 record in a log: dump names the file, the offset and
    the field, exits non-zero, and does not crash (ASan build too)."""
    flags = ls.EVENTS_PACKED | EVENTS_PACK2
    cases = [
        ("implied_exit", b"\x00\x01", r"bad packed record \(tag 0x00\)"),
        ("cache_nothing", b"\x01\x01", r"bad packed record \(tag 0x01\)"),
        ("pair_too_long", b"\xf3" + b"\0" * 9, r"bad packed record \(tag 0xf3\)"),
        ("reserved", b"\x1f" + b"\0" * 7, r"bad packed record \(tag 0x1f\)"),
        ("ext_short", b"\x17\x02\0\0\0\0\0\0", r"bad packed record \(tag 0x17\)"),
    ]
    for name, data, pat in cases:
        log = ls.Log()
        log.process(pid=1, clock=ls.TSC, tsc=0, mono_ns=0, tsc_hz=10**9)
        off = log.events(1, 1, data, flags=flags)
        path = log.write(os.path.join(_dir(), "bad_%s.sft" % name))
        for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
            p = tl.run([sftrace, "dump", path], check=False)
            assert p.returncode != 0, (name, p.stdout)
            assert re.search(re.escape(path) + r".*offset %d.*%s.*\(records\)" % (off + 48, pat),
                             p.stderr), (name, p.stderr)
            assert "runtime error" not in p.stderr and "Sanitizer" not in p.stderr, p.stderr
