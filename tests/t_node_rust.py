"""t_node_rust.py - a Rust cdylib loaded by node is traced exactly.

A small instance (2,400 functions) of the Rust variant of make bench's
rspack workload (bench/gen_calls.py rspack-rust, bench/rspack_addon.rs): an
rlib of generated functions with XRay sleds, linked into a cdylib with
hand-written N-API glue (no sleds), run by node on 4 std::threads. The
model (gen_calls.py's rspack_calls) says exactly how often each function
is called; the log must hold exactly those calls, nested, on 4 threads, and
node's checksum must be the model's. This is what the benchmark's event
check relies on (rustc must not drop or merge calls: its tail recursion
elimination once did), and it exercises the unwinding rule on a Rust object
whose calls never unwind: report must end no call early.
"""
import hashlib
import json
import os
import sys

import tl

BENCH = os.path.join(tl.ROOT, "bench")
sys.path.insert(0, BENCH)
import gen_calls  # noqa: E402

NFUNC, THREADS, ROOTS = 2400, 4, 300


def _build():
    d = tl.outdir("node_rust")
    gen_d = os.path.join(d, "gen")
    tl.run([sys.executable, os.path.join(BENCH, "gen_calls.py"), "rspack-rust", gen_d,
            str(NFUNC)])
    glue = os.path.join(BENCH, "rspack_addon.rs")
    h = hashlib.sha256()
    for f in (os.path.join(gen_d, "rsgen.rs"), glue):
        with open(f, "rb") as fh:
            h.update(fh.read())
    node = os.path.join(d, "rspack_rs_%s.node" % h.hexdigest()[:12])
    if os.path.exists(node):
        return node
    for old in os.listdir(d):  # builds of older sources
        if old.startswith("rspack_rs_") and old.endswith(".node"):
            os.unlink(os.path.join(d, old))
    env = {"RUSTC_BOOTSTRAP": "1"}
    rlib = os.path.join(d, "librsgen.rlib")
    tl.run(["rustc", "--edition", "2021", "--crate-type", "rlib", "--crate-name", "rsgen",
            "-Zinstrument-xray=always", "-C", "opt-level=1", "-g", "-C", "codegen-units=16",
            os.path.join(gen_d, "rsgen.rs"), "-o", rlib], env=env, timeout=600)
    tl.run(["rustc", "--edition", "2021", "--crate-type", "cdylib", "--crate-name", "rspack_rs",
            "-C", "opt-level=2", "-g", "-C", "link-dead-code", "--extern", "rsgen=" + rlib,
            glue, "-o", node + ".tmp"], env=env, timeout=600)
    os.replace(node + ".tmp", node)
    return node


def test_rust_cdylib_in_node_exact_calls():
    if not tl.have("node") or not tl.have("rustc"):
        raise tl.Skip("node or rustc not found")
    node = _build()
    count, checksum = gen_calls.rspack_calls(THREADS, ROOTS, NFUNC)
    want = {"rsgen::m%d::f%d" % (i // gen_calls.PER, i): c for i, c in enumerate(count) if c}
    assert len(want) > 100 and sum(want.values()) > 10000, len(want)
    log = os.path.join(tl.outdir("node_rust"), "rs.log")
    js = os.path.join(BENCH, "rspack.js")
    p = tl.record(["node", js, node, str(THREADS), str(ROOTS)], log)
    assert "checksum=%x" % checksum in p.stdout, (p.stdout, checksum)
    s = tl.record_summary(p.stderr)
    assert s["events"] == 2 * sum(want.values()), (s, 2 * sum(want.values()))
    # the object's sleds are the generated functions' only (the glue has none)
    info = json.loads(tl.run([tl.SFTRACE_ASAN, "info", "--format", "json", log]).stdout)
    objs = [(os.path.basename(o["path"]), o["functions"], o["sleds"]) for o in info["objects"]]
    assert objs == [(os.path.basename(node), NFUNC, 2 * NFUNC)], objs
    events, _ = tl.dump(log)
    tl.check_nesting(events)
    assert len({(e.pid, e.tid) for e in events}) == THREADS
    assert dict(tl.counts(events)) == want
    assert sum(1 for e in events if e.kind == "exit") == sum(want.values())
    # report (ASan build): the same calls per function, none unfinished or
    # ended by the unwinding rule (this Rust object unwinds nowhere)
    r = json.loads(tl.run([tl.SFTRACE_ASAN, "report", "-q", "--format", "json", "--limit", "0",
                           log]).stdout)
    got = {f["name"]: f["calls"] for g in r["groups"] for f in g["functions"]}
    assert got == want
    assert r["unfinished"] == 0 and r["calls"] == sum(want.values()), (r["unfinished"],
                                                                        r["calls"])
