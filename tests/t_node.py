"""t_node.py - a Node addon (loaded by node with dlopen) is traced.

Node itself is not instrumented; the addon is. The runtime must patch it
when node dlopens it, on the main thread and in a worker thread (each
worker loads the addon again), with exact call counts per thread.
"""
import json
import os

import tl

NODE_API = "/usr/include/node/node_api.h"


def test_node_addon_main_and_worker():
    if not tl.have("node") or not os.path.exists(NODE_API):
        raise tl.Skip("node or its headers (%s) are not installed" % NODE_API)
    addon = os.path.join(tl.outdir("node"), "addon.node")
    tl.build_c("node_addon.c", out=addon, shared=True, flags=["-I/usr/include/node"])
    worker = "const a = require(%s); console.log('worker', a.fib(12));" % json.dumps(addon)
    script = ("const a = require(%s); let s = 0;"
              "for (let i = 0; i < 10; i++) s += a.fib(15);"
              "console.log('main', require('worker_threads').threadId, s);"
              "const { Worker } = require('worker_threads');"
              "new Worker(%s, { eval: true });") % (json.dumps(addon), json.dumps(worker))
    log = os.path.join(tl.outdir("node"), "node.log")
    p = tl.record(["node", "-e", script], log)
    assert "main 0 6100" in p.stdout and "worker 144" in p.stdout, p.stdout
    events, _ = tl.dump(log)
    tl.check_nesting(events)
    tids = sorted({e.tid for e in events})
    assert len(tids) == 2, tids
    per = {t: tl.counts(events, tid=t) for t in tids}
    main = [t for t in tids if per[t]["Fib"] == 10]
    worker = [t for t in tids if per[t]["Fib"] == 1]
    assert len(main) == 1 and len(worker) == 1, per
    def calls(n):
        return 1 if n < 2 else 1 + calls(n - 1) + calls(n - 2)
    assert per[main[0]]["fib"] == 10 * calls(15), per
    assert per[worker[0]]["fib"] == calls(12), per
    assert per[main[0]]["napi_register_module_v1"] == 1, per
    assert per[worker[0]]["napi_register_module_v1"] == 1, per


def test_node_addon_linked_with_runtime():
    # the rspack way: the addon links libsftrace.so and calls sftrace_setup
    # from a constructor; node dlopens it; only SFTRACE_OUTPUT_FILE is set
    if not tl.have("node") or not os.path.exists(NODE_API):
        raise tl.Skip("node or its headers (%s) are not installed" % NODE_API)
    d = tl.outdir("node")
    src = os.path.join(d, "addon_setup.c")
    with open(os.path.join(tl.PROGS, "node_addon.c")) as f:
        body = f.read()
    with open(src, "w") as f:
        f.write("#include <sftrace.h>\nSFTRACE_SETUP_HERE()\n" + body)
    addon = os.path.join(d, "addon_setup.node")
    tl.build_c(src, out=addon, shared=True,
               flags=["-I/usr/include/node", "-I" + os.path.join(tl.ROOT, "include")],
               libs=["-L" + tl.BUILD, "-lsftrace", "-Wl,-rpath," + tl.BUILD])
    log = os.path.join(d, "linked.log")
    if os.path.exists(log):
        os.unlink(log)
    script = "const a = require(%s); console.log('r', a.fib(14), a.fib(10));" % json.dumps(addon)
    p = tl.run(["node", "-e", script], env={"SFTRACE_OUTPUT_FILE": log})
    assert "r 377 55" in p.stdout, p.stdout
    events, _ = tl.dump(log)
    tl.check_nesting(events)
    assert len({e.tid for e in events}) == 1
    c = tl.counts(events)

    def calls(n):
        return 1 if n < 2 else 1 + calls(n - 1) + calls(n - 2)
    assert c["Fib"] == 2 and c["fib"] == calls(14) + calls(10), c
