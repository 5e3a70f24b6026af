"""t_flows.py - flows: the call that made a rayon job or tokio task available,
connected to the calls that ran it (docs/design.md, "Flows").

The programs (tests/programs/flows_rs, built with cargo offline against
Debian's librust-rayon-dev and librust-tokio-dev) count, themselves, how many
jobs ran on a thread other than the one that made them available. The trace
must hold exactly that many job flows, each from a push (inside the join,
scope spawn or install that made the job) on one thread to the job's execute
slice on another; tokio: exactly one flow per spawned task from its creation
to its first poll and one per later poll, per task polls - 1, and one
async track per task holding its polls.

Three views are checked: dump's flow-in/flow-out columns (ASan build), the
Chrome JSON "s"/"f" events (each bound to the right slice, found by time on
its thread) and the Perfetto trace (check_perfetto.py --strict counts its
flows). --no-flows (record or convert) gives none.
"""
import collections
import gzip
import json
import os
import re
import shutil

import tl

CARGO_CONFIG = """[source.crates-io]
replace-with = "debian"
[source.debian]
directory = "/usr/share/cargo/registry"
[net]
offline = true
"""

PUSH = re.compile(r"^<?(rayon_core::registry::WorkerThread|crossbeam_deque::deque::(Worker|Injector)<.*>)>?::push$")
EXECUTE = re.compile(r"^<rayon_core::job::(StackJob|HeapJob)<.*> as rayon_core::job::Job>::execute$")
RAW_NEW = re.compile(r"^<?tokio::runtime::task::raw::RawTask>?::new")
RAW_POLL = re.compile(r"^tokio::runtime::task::raw::poll")


def _build():
    """The two programs, built once into build/tests/flows_rs."""
    reg = "/usr/share/cargo/registry"
    if not tl.have("cargo") or not os.path.isdir(os.path.join(reg, "rayon-core-1.10.1")):
        raise tl.Skip("cargo or Debian's librust-rayon-dev / librust-tokio-dev missing "
                      "(scripts/deps.sh installs them)")
    src = os.path.join(tl.PROGS, "flows_rs")
    d = tl.outdir("flows_rs")
    bins = [os.path.join(d, "target", "debug", b) for b in ("rayon_flows", "tokio_flows")]
    sources = [os.path.join(src, "Cargo.toml")] + [
        os.path.join(src, "src", "bin", f) for f in os.listdir(os.path.join(src, "src", "bin"))]
    if any(tl._stale(b, sources) for b in bins):
        shutil.copy(os.path.join(src, "Cargo.toml"), d)
        if os.path.isdir(os.path.join(d, "src")):
            shutil.rmtree(os.path.join(d, "src"))
        shutil.copytree(os.path.join(src, "src"), os.path.join(d, "src"))
        os.makedirs(os.path.join(d, ".cargo"), exist_ok=True)
        with open(os.path.join(d, ".cargo", "config.toml"), "w") as f:
            f.write(CARGO_CONFIG)
        tl.run(["cargo", "build", "--offline", "-q"], cwd=d, timeout=900,
               env={"RUSTC_BOOTSTRAP": "1", "RUSTFLAGS": "-Zinstrument-xray=always"})
    return bins


def _dump_flows(log):
    """Parse dump (ASan build): {id: {"out": (tid, func, stack), "in": (...)}}
    where stack is the function names open on that thread at the record."""
    p = tl.run([tl.SFTRACE_ASAN, "dump", log])
    stacks = collections.defaultdict(list)
    flows = collections.defaultdict(dict)
    for line in p.stdout.splitlines():
        if line.startswith("#"):
            continue
        f = line.split("\t")
        tid, kind, func = int(f[2]), f[3], f[4]
        st = stacks[(int(f[1]), tid)]
        if kind == "entry":
            st.append(func)
        elif kind in ("exit", "tailcall"):
            if func in st:
                del st[len(st) - 1 - st[::-1].index(func):]
        for i, x in enumerate(f):
            if x.startswith("flow-in ") or x.startswith("flow-out "):
                d, n = x.split(" ")
                side = "in" if d == "flow-in" else "out"
                assert side not in flows[int(n)], "flow %s has two %s ends" % (n, side)
                flows[int(n)][side] = (tid, func, list(st), kind)
    for n, e in flows.items():
        assert "in" in e and "out" in e, "flow %d has only %s" % (n, list(e))
    return flows, p.stdout


def _chrome_flows(log, out):
    """Convert to Chrome JSON (ASan build); {id: {"s": (tid, slice), "f": (tid, slice)}},
    slice = the name of the innermost slice open on the thread at the event."""
    tl.run([tl.SFTRACE_ASAN, "convert", "-q", "--format", "chrome", "-o", out, log])
    with open(out) as f:
        evs = json.load(f)
    evs = evs["traceEvents"] if isinstance(evs, dict) else evs
    # a flow event binds to the innermost slice open on its thread, in file
    # order (what viewers do with events of equal timestamps)
    open_ = collections.defaultdict(list)
    flows = collections.defaultdict(dict)
    for e in evs:
        if e["ph"] == "B":
            open_[e["tid"]].append((e["ts"], e["name"]))
        elif e["ph"] == "E":
            open_[e["tid"]].pop()
        elif e["ph"] in ("s", "f"):
            st = open_[e["tid"]]
            assert st and st[-1][0] <= e["ts"], "flow event %r outside every slice" % e
            name = st[-1][1]
            assert e["ph"] not in flows[e["id"]]
            if e["ph"] == "f":
                assert e.get("bp") == "e", e
            flows[e["id"]][e["ph"]] = (e["tid"], name)
    return flows


def _perfetto_flows(log, out, extra=(), summary=False):
    tl.run([tl.SFTRACE_ASAN, "convert", "-q", "-o", out] + list(extra) + [log])
    p = tl.run(["python3", tl.PERFETTO_CHECK, "--strict", "--json", out], check=False, timeout=600)
    res = json.loads(p.stdout)
    assert p.returncode == 0 and res["errors"] == 0 and res["warnings"] == 0, \
        json.dumps(res["violations"], indent=1)
    return res["summary"] if summary else res["summary"]["flows"]


def _cross(stdout):
    m = re.search(r"^cross (\d+)$", stdout, re.M)
    return int(m.group(1)) if m else None


def _check_job_flows(flows, where):
    """Every job flow: push on one thread, inside `where` there; execute of
    the job on another thread (the flow ends at its entry)."""
    for n, e in flows.items():
        otid, ofunc, ostack, _ = e["out"]
        itid, ifunc, _, ikind = e["in"]
        assert PUSH.match(ofunc), "flow %d starts at %s" % (n, ofunc)
        assert EXECUTE.match(ifunc), "flow %d ends at %s" % (n, ifunc)
        assert otid != itid, "flow %d within thread %d" % (n, otid)
        assert any(re.search(w, fr) for fr in ostack for w in where), \
            "flow %d: push not inside %s: %s" % (n, where, ostack[-6:])


def _rayon(mode, where, arg=None):
    rayon, _ = _build()
    d = tl.outdir("flows")
    log = os.path.join(d, "rayon_%s.log" % mode)
    p = tl.record([rayon, mode] + ([str(arg)] if arg else []), log)
    flows, _ = _dump_flows(log)
    _check_job_flows(flows, where)
    cj = _chrome_flows(log, os.path.join(d, "rayon_%s.json" % mode))
    assert len(cj) == len(flows), (len(cj), len(flows))
    for n, e in cj.items():
        assert set(e) == {"s", "f"}, (n, e)
        assert PUSH.match(e["s"][1]) and EXECUTE.match(e["f"][1]), (n, e)
        assert e["s"][0] != e["f"][0]
    assert _perfetto_flows(log, os.path.join(d, "rayon_%s.pb" % mode)) == len(flows)
    return p, flows, log


def test_rayon_join_exact():
    """pfib with rayon::join: one flow per second closure run by another
    thread (the program counts them), plus the install from main."""
    p, flows, log = _rayon("join", [r"rayon_core::join::join_context", r"in_worker_cold"], 13)
    cross = _cross(p.stdout)
    assert cross is not None and cross >= 1, p.stdout
    assert len(flows) == cross, "%d flows, the program counted %d" % (len(flows), cross)
    # the install from main: from the injector's push on the main thread
    mains = [e for e in flows.values() if e["out"][0] == int(log and _main_tid(log))]
    assert len(mains) == 1 and "Injector" in mains[0]["out"][1], mains
    # --no-flows on the tools: none; on record: no key records at all
    assert _perfetto_flows(log, os.path.join(tl.outdir("flows"), "nf.pb"), ["--no-flows"]) == 0
    p2 = tl.run([tl.SFTRACE_ASAN, "dump", "--no-flows", log])
    assert "flow-" not in p2.stdout
    rayon, _ = _build()
    log2 = os.path.join(tl.outdir("flows"), "rayon_noflows.log")
    tl.record([rayon, "join", "12"], log2, extra=["--no-flows"])
    p3 = tl.run([tl.SFTRACE_ASAN, "dump", log2])
    assert "\tkey\t" not in p3.stdout and "flow-" not in p3.stdout


def _main_tid(log):
    p = tl.run([tl.SFTRACE, "dump", log])
    for line in p.stdout.splitlines():
        if not line.startswith("#"):
            f = line.split("\t")
            return int(f[1])  # the main thread's tid is the pid


def test_rayon_scope_spawn_exact():
    """scope with spawns (heap jobs): one flow per spawn run on another thread."""
    p, flows, _ = _rayon("scope", [r"rayon_core::scope::", r"in_worker_cold"], 16)
    assert len(flows) == _cross(p.stdout), (len(flows), p.stdout)
    heap = [e for e in flows.values() if "HeapJob" in e["in"][1]]
    assert len(heap) == len(flows) - 1  # all but the install's StackJob


def test_rayon_par_iter_pairs():
    """par_iter + reduce: rayon hides its splits, so the expected flows come
    from pairing the trace's key records here, independently of lib/flows.c:
    an execute whose job pointer another thread pushed last is a flow."""
    rayon, _ = _build()
    p, flows, log = _rayon("iter", [r"rayon_core::join::join_context", r"in_worker_cold",
                                    r"bridge_producer_consumer"], 4)
    _, text = _dump_flows(log)
    recs = []  # (ns, tid, func, values): KEY records, and ARGS of the slow path
    for line in text.splitlines():
        f = line.split("\t")
        if len(f) > 6 and f[3] in ("key", "args"):
            vals = [int(x, 16) for x in f[6:] if x.startswith("0x")]
            if f[3] == "args":
                vals = vals[1:3] if PUSH.match(f[4]) else vals[:1]
            recs.append((int(f[0]), int(f[2]), f[4], vals))
    expect = 0
    last_push = {}  # job pointer -> thread that pushed it last
    for ns, tid, func, vals in sorted(recs, key=lambda r: r[0]):
        if PUSH.match(func):
            for v in vals:  # JobRef's two words, in the compiler's order
                last_push[v] = tid
        elif EXECUTE.match(func):
            if vals[0] in last_push and last_push[vals[0]] != tid:
                expect += 1
            last_push.pop(vals[0], None)
    assert expect >= 1 and len(flows) == expect, (len(flows), expect)


def test_tokio_spawn_and_polls():
    """N tasks yielding K times: per task one flow from its creation to its
    first poll and one from each poll to the next (polls - 1)."""
    _, tokio = _build()
    d = tl.outdir("flows")
    log = os.path.join(d, "tokio.log")
    n, k = 8, 3
    p = tl.record([tokio, str(n), str(k)], log)
    m = re.search(r"tasks (\d+) polls (\d+)", p.stdout)
    polls = int(m.group(2))
    flows, _ = _dump_flows(log)
    ours = {i: e for i, e in flows.items() if "Yielder" in e["in"][1]}
    spawn = [e for e in ours.values() if RAW_NEW.match(e["out"][1])]
    chain = [e for e in ours.values() if RAW_POLL.match(e["out"][1])]
    assert len(spawn) == n, (len(spawn), n)
    assert len(chain) == polls - n, (len(chain), polls, n)
    for e in ours.values():
        assert RAW_POLL.match(e["in"][1]), e
    # the spawn flows start in the spawning call, on the thread that spawned
    for e in spawn:
        assert any("spawn" in fr for fr in e["out"][2]), e["out"][2][-5:]
    allflows = len(flows)
    s = _perfetto_flows(log, os.path.join(d, "tokio.pb"), summary=True)
    assert s["flows"] == allflows
    # one async track per task that was polled (ours, and tokio's blocking
    # tasks), its polls as slices named after the future's type
    tasks = [e for e in flows.values() if RAW_NEW.match(e["out"][1])]
    assert s["tracks_by_kind"].get("custom") == len(tasks), (s["tracks_by_kind"], len(tasks))
    assert s["slices_by_name"].get("tokio_flows::Yielder") == polls, s["slices_by_name"].get(
        "tokio_flows::Yielder")
    cj = _chrome_flows(log, os.path.join(d, "tokio.json"))
    assert len(cj) == allflows


# ---- --follow-jobs: report, graph, flame -------------------------------------

PFIB = "rayon_flows::pfib"
LANG_START = "std::rt::lang_start::<()>"


def _graph_json(log, extra=()):
    p = tl.run([tl.SFTRACE_ASAN, "graph", "-q", "--format", "json"] + list(extra) + [log])
    nodes = json.loads(p.stdout)["nodes"]
    for n in nodes:  # the top of its chain, and how many pfib calls the chain has
        up = nodes[n["parent"]] if n["parent"] >= 0 else None
        n["top"] = up["top"] if up else n["name"]
        n["npfib"] = (up["npfib"] if up else 0) + (n["name"] == PFIB)
    return nodes


def _path(nodes, n):
    """The names from the top down to node n."""
    out = []
    while True:
        out.append(n["name"])
        if n["parent"] < 0:
            return out[::-1]
        n = nodes[n["parent"]]


def _jumped(text):
    """From dump: per thread, the summed duration of the outermost calls that
    end a flow (a job another thread made) on it, i.e. the time that moves
    away from the thread's own tree with --follow-jobs; and the calls of
    pfib per thread."""
    stacks = collections.defaultdict(list)  # tid -> [[func, flowed]]
    moved = collections.Counter()
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        f = line.split("\t")
        tid, kind, func = int(f[2]), f[3], f[4]
        st = stacks[tid]
        if kind == "entry":
            st.append([func, False])
        elif kind in ("exit", "tailcall"):
            names = [x[0] for x in st]
            if func not in names:
                continue
            i = len(st) - 1 - names[::-1].index(func)
            fr = st[i]
            del st[i:]
            if fr[1] and not any(x[1] for x in st):
                moved[tid] += int(f[-1])  # exit lines end with the duration
        elif any(x.startswith("flow-in ") for x in f) and EXECUTE.match(func):
            assert st and st[-1][0] == func, (line, st[-1:])
            st[-1][1] = True
    return moved


def test_follow_jobs_rayon_tree():
    """graph --follow-jobs on pfib(13) with rayon::join: every job another
    thread ran hangs beneath the join that made it, so all 753 pfib calls
    (and 13 levels of pfib recursion) are beneath main's tree, none beneath
    the pool threads' own; the time of those jobs moves from the threads
    that ran them to main's tree, exactly, and the whole stays the same."""
    rayon, _ = _build()
    log = os.path.join(tl.outdir("flows"), "rayon_follow.log")
    tl.record([rayon, "join", "13"], log)
    text = tl.run([tl.SFTRACE_ASAN, "dump", log]).stdout
    moved = _jumped(text)
    assert sum(moved.values()) > 0 and _main_tid(log) not in moved, moved
    npfib = sum(1 for ln in text.splitlines() if ln.split("\t")[3:5] == ["entry", PFIB])
    assert npfib == 2 * 377 - 1  # pfib(13): 2 fib(14) - 1 calls
    plain = _graph_json(log)
    follow = _graph_json(log, ["--follow-jobs"])
    tops = lambda ns: {n["name"]: n for n in ns if n["depth"] == 0}  # noqa: E731
    tp, tf = tops(plain), tops(follow)
    assert set(tp) == set(tf), (set(tp) ^ set(tf))
    # conservation: the top level's summed time is every thread's time
    assert sum(n["total_ns"] for n in tp.values()) == sum(n["total_ns"] for n in tf.values())
    assert sum(n["self_ns"] for n in plain) == sum(n["self_ns"] for n in follow)
    worker = [k for k in tp if "spawn_unchecked" in k]
    assert len(worker) == 1 and tp[worker[0]]["calls"] == 4, worker
    allmoved = sum(moved.values())
    assert tf[LANG_START]["total_ns"] == tp[LANG_START]["total_ns"] + allmoved
    assert tf[worker[0]]["total_ns"] == tp[worker[0]]["total_ns"] - allmoved
    assert tf[LANG_START]["wall_ns"] == tp[LANG_START]["total_ns"]
    for k in tp:
        if k not in (LANG_START, worker[0]):
            assert tf[k]["total_ns"] == tp[k]["total_ns"], k
    # pfib: all beneath main, as one recursion
    def pfib_under(ns, top):
        calls, depth = 0, 0
        for n in ns:
            if n["name"] == PFIB and n["top"] == top:
                calls += n["calls"]
                depth = max(depth, n["npfib"])
        return calls, depth
    assert pfib_under(plain, LANG_START) == (0, 0)
    assert pfib_under(follow, LANG_START) == (npfib, 13)
    assert pfib_under(follow, worker[0])[0] == 0
    assert pfib_under(plain, worker[0])[0] == npfib
    # the job of each flow hangs beneath the function that called the push
    # (Registry::inject for the install from main; join's in_worker for the rest)
    execs = [n for n in follow if EXECUTE.match(n["name"]) and n["top"] == LANG_START]
    assert sum(n["calls"] for n in execs) >= len(_dump_flows(log)[0])
    # graph REGEX on the followed tree: beneath the outermost pfib, every pfib
    p = tl.run([tl.SFTRACE_ASAN, "graph", "-q", "--format", "json", "--follow-jobs", log,
                "pfib$"])
    sub = json.loads(p.stdout)["nodes"]
    assert sub[0]["name"] == PFIB and sub[0]["depth"] == 0 and sub[0]["calls"] == 1
    assert sum(n["calls"] for n in sub if n["name"] == PFIB) == npfib
    # without a --follow-jobs the same REGEX finds pfib trees on every worker
    p = tl.run([tl.SFTRACE_ASAN, "graph", "-q", "--format", "json", log, "pfib$"])
    assert json.loads(p.stdout)["nodes"][0]["calls"] > 1
    # --no-flows after it turns it off again; --by thread does not mix
    assert _graph_json(log, ["--follow-jobs", "--no-flows"]) == plain
    p = tl.run([tl.SFTRACE_ASAN, "graph", "--follow-jobs", "--by", "thread", log], check=False)
    assert p.returncode == 2 or p.returncode == 1, p.returncode
    assert "not with --by thread" in p.stderr, p.stderr

    # report: pfib's total is the summed thread time of its outermost call
    p = tl.run([tl.SFTRACE_ASAN, "report", "-q", "--follow-jobs", "--format", "json",
                "--limit", "0", log])
    fs = {f["name"]: f for g in json.loads(p.stdout)["groups"] for f in g["functions"]}
    outer = [n for n in follow if n["name"] == PFIB and n["npfib"] == 1]
    assert len(outer) == 1
    assert fs[PFIB]["calls"] == npfib
    assert fs[PFIB]["total_ns"] == outer[0]["total_ns"]
    assert fs[LANG_START]["total_ns"] == tf[LANG_START]["total_ns"]
    p = tl.run([tl.SFTRACE, "report", "-q", "--follow-jobs", log])
    assert "summed thread time" in p.stdout

    # flame: every pfib stack starts at main's (pfib(7): folded stacks of
    # pfib(13) are 1 GB, each line a chain of a few hundred long Rust names)
    small = os.path.join(tl.outdir("flows"), "rayon_follow7.log")
    for _ in range(20):  # until a job crossed threads
        p = tl.record([rayon, "join", "7"], small)
        if _cross(p.stdout) > 1:
            break
    out = os.path.join(tl.outdir("flows"), "follow.folded")
    for extra, want in ((["--follow-jobs"], True), ([], False)):
        tl.run([tl.SFTRACE_ASAN, "flame", "-q", "--format", "folded", "-o", out] + extra + [small])
        with open(out) as f:
            stacks = [ln.rsplit(" ", 1)[0].split(";") for ln in f.read().splitlines()]
        with_pfib = [s for s in stacks if PFIB in s]
        assert with_pfib
        assert all(s[0] == LANG_START for s in with_pfib) == want, extra


def test_follow_jobs_tokio():
    """--follow-jobs on tokio: every poll of a spawned task hangs beneath
    the spawn in main's block_on, whichever worker polled it."""
    _, tokio = _build()
    log = os.path.join(tl.outdir("flows"), "tokio_follow.log")
    p = tl.record([tokio, "6", "2"], log)
    polls = int(re.search(r"polls (\d+)", p.stdout).group(1))
    yp = lambda n: RAW_POLL.match(n["name"]) and "Yielder" in n["name"]  # noqa: E731
    plain = _graph_json(log)
    follow = _graph_json(log, ["--follow-jobs"])
    assert sum(n["calls"] for n in plain if yp(n)) == polls
    assert sum(n["calls"] for n in plain if yp(n) and n["top"] == LANG_START) == 0
    under = [n for n in follow if yp(n) and n["top"] == LANG_START]
    assert sum(n["calls"] for n in under) == polls
    for n in under:
        path = _path(follow, n)
        assert any("spawn" in x for x in path) and any("block_on" in x for x in path), path


def test_key_records_packed_round_trip():
    """KEY records through the helper's packing: a raw log of the rayon
    program (SFTRACE_RAW) round-trips through both encoders
    (tests/pack_roundtrip.c, every record and payload compared), and
    repacked in encoding 2 it dumps exactly as raw, key records and flow
    endpoints included; the log the helper packs holds the same kinds."""
    import t_pack
    rayon, _ = _build()
    d = tl.outdir("flows")
    raw = os.path.join(d, "rayon_raw.log")
    tl.record([rayon, "join", "10"], raw, env={"SFTRACE_RAW": "1"})
    _, chunks = tl.read_log(raw)
    assert {c["flags"] & 6 for c in chunks if c["type"] == tl.CHUNK_EVENTS} == {0}
    p = tl.run([t_pack._driver(), "log", raw], timeout=600)
    t_pack._ok(p, "log")
    ref = tl.run([tl.SFTRACE_ASAN, "dump", raw]).stdout
    nkey = ref.count("\tkey\t")
    assert nkey > 0 and "flow-in" in ref
    out = os.path.join(d, "rayon_repacked.log")
    tl.run([t_pack._driver(), "repack", "2", raw, out])
    assert tl.run([tl.SFTRACE_ASAN, "dump", out]).stdout == ref
    packed = os.path.join(d, "rayon_packed.log")
    tl.record([rayon, "join", "10"], packed)
    _, chunks = tl.read_log(packed)
    assert {c["flags"] & 6 for c in chunks if c["type"] == tl.CHUNK_EVENTS} == {6}
    text = tl.run([tl.SFTRACE_ASAN, "dump", packed]).stdout
    # every execute and push entry is followed by its key (KEY, or ARGS from
    # the slow path) on its thread
    last = {}
    for line in text.splitlines():
        f = line.split("\t")
        if line.startswith("#"):
            continue
        tid, kind, func = f[2], f[3], f[4]
        if tid in last:
            assert kind in ("key", "args") and func == last[tid], (line, last[tid])
            del last[tid]
        if kind == "entry" and (EXECUTE.match(func) or PUSH.match(func)):
            last[tid] = func
    assert text.count("\tkey\t") > 0


# ---- user-declared producer/consumer pairs (a flows file) ---------------------

POOL_FLOWS = """sftrace-flows 1
# the pool's jobs and the tasks they step
job producer k0 ^submit$
job consumer k0 ^run_job$
task producer kr ^make_task$
task consumer k0 ^step_task$
task retire k0 ^free_task$
"""


def _pool():
    prog = tl.build_c("flows_pool.c", flags=tl.WARN_CFLAGS + ["-O1", "-pthread"])
    rules = os.path.join(tl.outdir("flows"), "pool.flows")
    with open(rules, "w") as f:
        f.write(POOL_FLOWS)
    return prog, rules


def test_user_flow_rules():
    """A flows file declares a C thread pool's pairs: submit(job) -> run_job(job)
    (jobs, argument 0) and make_task() -> step_task(task) twice (tasks, the
    return value, then argument 0). dump shows exactly N job flows from main's
    submit to a worker's run_job and 2N task flows; without the file the
    tools pair nothing and record records no key; --follow-jobs hangs every
    run_job and step_task beneath main's produce."""
    prog, rules = _pool()
    d = tl.outdir("flows")
    log = os.path.join(d, "pool.log")
    n = 6
    p = tl.record([prog, str(n)], log, extra=["--flows", rules])
    assert p.stdout.strip() == "jobs %d cross %d" % (n, n), p.stdout
    main = _main_tid(log)
    p = tl.run([tl.SFTRACE_ASAN, "dump", "--flows", rules, log])
    flows = collections.defaultdict(dict)
    for line in p.stdout.splitlines():
        f = line.split("\t")
        for x in f[5:]:
            if x.startswith("flow-"):
                side, fid = x.split(" ")
                flows[int(fid)][side] = (int(f[2]), f[4], f[3])
    kinds = collections.Counter((e["flow-out"][1], e["flow-in"][1]) for e in flows.values())
    assert kinds == {("submit", "run_job"): n, ("make_task", "step_task"): n,
                     ("step_task", "step_task"): n}, kinds
    for e in flows.values():
        if e["flow-out"][1] in ("submit", "make_task"):
            assert e["flow-out"][0] == main and e["flow-in"][0] != main, e
        else:  # a task's second step: the same job, so the same worker
            assert e["flow-out"][0] == e["flow-in"][0] != main, e
    # the Perfetto trace has them too
    assert _perfetto_flows(log, os.path.join(d, "pool.pb"), ["--flows", rules]) == 3 * n
    # without the rules: no pairs (the built-in ones know no such functions)
    assert "flow-" not in tl.run([tl.SFTRACE_ASAN, "dump", log]).stdout
    log2 = os.path.join(d, "pool_norules.log")
    tl.record([prog, str(n)], log2)
    text = tl.run([tl.SFTRACE_ASAN, "dump", "--flows", rules, log2]).stdout
    assert "\tkey\t" not in text and "\targs\t" not in text and "flow-" not in text

    # --follow-jobs: everything beneath main's produce
    nodes = _graph_json(log, ["--follow-jobs", "--flows", rules])
    under = collections.Counter()
    for nd in nodes:
        path = _path(nodes, nd)
        if nd["name"] in ("run_job", "step_task", "make_task", "submit"):
            under[(nd["name"], tuple(path[:-1]))] += nd["calls"]
    assert under == {("run_job", ("main", "produce")): n, ("step_task", ("main", "produce")): 2 * n,
                     ("make_task", ("main", "produce")): n, ("submit", ("main", "produce")): n}, \
        under
    plain = _graph_json(log, ["--flows", rules])
    assert sum(nd["calls"] for nd in plain if nd["name"] == "run_job" and nd["top"] == "worker") == n
    # descendants mode follows the declared jobs: a filter on produce records
    # every run_job (and its steps) on the workers, nothing else there
    filt = _desc_filter(prog, "^produce$", "pool_desc.filter")
    log3 = os.path.join(d, "pool_desc.log")
    tl.record([prog, str(n)], log3, extra=["-f", filt, "--flows", rules])
    ev, _ = tl.dump(log3, sftrace=tl.SFTRACE_ASAN)
    m3 = _main_tid(log3)
    work = collections.Counter(e.func for e in ev if e.kind == "entry" and e.tid != m3)
    assert work == {"run_job": n, "step_task": 2 * n}, work
    tl.record([prog, str(n)], log3, extra=["-f", filt])  # without the rules: main only
    ev, _ = tl.dump(log3, sftrace=tl.SFTRACE_ASAN)
    assert {e.tid for e in ev} == {_main_tid(log3)}


def test_flow_rules_bad_file():
    """A bad flows file: one message naming the file and line, exit 2, for
    record (before the command runs) and the tools; nothing recorded."""
    prog, _ = _pool()
    d = tl.outdir("flows")
    log = os.path.join(d, "pool_bad.log")
    cases = [
        ("sftrace-flows 1\njob producer k9 ^submit$\n", r"line 2: key 'k9'"),
        ("sftrace-flows 1\njob maker k0 ^submit$\n", r"line 2: role 'maker'"),
        ("sftrace-flows 1\nqueue producer k0 x\n", r"line 2: domain 'queue'"),
        ("sftrace-flows 1\n\n# c\njob producer k0 ^(sub\n", r"line 4: regex '\^\(sub'"),
        ("sftrace-flows 1\njob producer k0\n", r"line 2: expected"),
        ("job producer k0 x\n", r"line 1: not a flows file"),
        ("", r"empty"),
    ]
    for i, (text, want) in enumerate(cases):
        bad = os.path.join(d, "bad%d.flows" % i)
        with open(bad, "w") as f:
            f.write(text)
        if os.path.exists(log):
            os.unlink(log)
        p = tl.run([tl.SFTRACE, "record", "-o", log, "--flows", bad, "--", prog, "2"],
                   check=False)
        assert p.returncode == 2 and p.stdout == "", (p.returncode, p.stdout)
        assert re.search(r"^sftrace record: %s: %s" % (re.escape(bad), want), p.stderr, re.M), \
            p.stderr
        assert not os.path.exists(log)
        for cmd in (["dump"], ["convert", "-o", os.path.join(d, "bad.pb")],
                    ["graph", "--follow-jobs"]):
            p = tl.run([tl.SFTRACE_ASAN] + cmd + ["--flows", bad, os.path.join(d, "pool.log")],
                       check=False)
            assert p.returncode in (1, 2) and re.search(
                r"^sftrace %s: %s: %s" % (cmd[0], re.escape(bad), want), p.stderr, re.M), \
                (cmd, p.returncode, p.stderr)
    p = tl.run([tl.SFTRACE, "dump", "--flows", os.path.join(d, "nonexistent.flows"),
                os.path.join(d, "pool.log")], check=False)
    assert p.returncode == 2 and "nonexistent.flows: No such file" in p.stderr, p.stderr


# ---- descendants mode follows jobs -------------------------------------------

def _desc_filter(prog, regex, name):
    out = os.path.join(tl.outdir("flows"), name)
    tl.run([tl.SFTRACE, "filter", "-p", prog, "--descendants", "-r", regex, "-o", out])
    return out


def test_descendants_follow_rayon_jobs():
    """filter --descendants on rayon_flows::main: the install's job and every
    job made beneath it record on whatever pool thread runs them: all 753
    pfib calls, each pool thread's calls all inside a job's execute, and
    the flows exactly the program's count. With --no-flows the scope stays
    on main's thread: no pfib at all."""
    rayon, _ = _build()
    filt = _desc_filter(rayon, "rayon_flows::main$", "rayon_desc.filter")
    log = os.path.join(tl.outdir("flows"), "rayon_desc.log")
    p = tl.record([rayon, "join", "13"], log, extra=["-f", filt])
    text = tl.run([tl.SFTRACE_ASAN, "dump", log]).stdout
    pf = [ln for ln in text.splitlines() if ln.split("\t")[3:5] == ["entry", PFIB]]
    assert len(pf) == 2 * 377 - 1
    main = _main_tid(log)
    assert len({ln.split("\t")[2] for ln in pf} - {str(main)}) >= 2  # on several pool threads
    calls = tl.run([tl.SFTRACE_ASAN, "dump", "--calls", log]).stdout
    tops = collections.Counter()
    for ln in calls.splitlines():
        if ln.startswith("#"):
            continue
        f = ln.split("\t")
        if int(f[3]) == 0:
            tops[(int(f[2]) == main, f[9])] += 1
    for (on_main, func), n in tops.items():
        if on_main:
            assert func == "rayon_flows::main", (func, n)
        else:
            assert EXECUTE.match(func), (func, n)
    flows, _ = _dump_flows(log)
    _check_job_flows(flows, [r"rayon_core::join::join_context", r"in_worker_cold"])
    assert len(flows) == _cross(p.stdout), (len(flows), p.stdout)
    log2 = os.path.join(tl.outdir("flows"), "rayon_desc_noflows.log")
    tl.record([rayon, "join", "13"], log2, extra=["--no-flows", "-f", filt])
    ev, _ = tl.dump(log2, sftrace=tl.SFTRACE_ASAN)
    assert {e.tid for e in ev} == {_main_tid(log2)} and tl.counts(ev).get(PFIB, 0) == 0


def test_descendants_follow_tokio_tasks():
    """filter --descendants on tokio_flows::main: the tasks it spawns record
    every poll on the worker threads (the future's poll exactly as many
    times as the program counted), and nothing else runs on the workers
    outside a task's poll."""
    _, tokio = _build()
    filt = _desc_filter(tokio, "tokio_flows::main$", "tokio_desc.filter")
    log = os.path.join(tl.outdir("flows"), "tokio_desc.log")
    p = tl.record([tokio, "6", "2"], log, extra=["-f", filt])
    polls = int(re.search(r"polls (\d+)", p.stdout).group(1))
    ev, _ = tl.dump(log, sftrace=tl.SFTRACE_ASAN)
    yp = "<tokio_flows::Yielder as core::future::future::Future>::poll"
    assert tl.counts(ev).get(yp) == polls, tl.counts(ev).get(yp)
    main = _main_tid(log)
    calls = tl.run([tl.SFTRACE_ASAN, "dump", "--calls", log]).stdout
    for ln in calls.splitlines():
        f = ln.split("\t")
        if not ln.startswith("#") and int(f[3]) == 0 and int(f[2]) != main:
            assert RAW_POLL.match(f[9]), f[9]


def test_follow_jobs_without_flows_changes_nothing():
    """On a log with no flows (a C recursion), --follow-jobs gives graph's
    tree and report's calls, totals and self times exactly as without it:
    report's followed totals (from the tree, a function's outermost nodes)
    agree with its own rule (a recursive function's outermost active call)."""
    prog = tl.build_c("recursion.c", flags=tl.WARN_CFLAGS)
    log = os.path.join(tl.outdir("flows"), "recursion.log")
    tl.record([prog, "12", "40"], log)
    strip = lambda ns: [(n["name"], n["depth"], n["calls"], n["total_ns"], n["self_ns"])  # noqa
                        for n in ns]
    assert strip(_graph_json(log)) == strip(_graph_json(log, ["--follow-jobs"]))
    rep = {}
    for extra in ([], ["--follow-jobs"]):
        p = tl.run([tl.SFTRACE_ASAN, "report", "-q", "--format", "json", "--limit", "0"] + extra
                   + [log])
        rep[bool(extra)] = sorted((f["name"], f["calls"], f["total_ns"], f["self_ns"])
                                  for g in json.loads(p.stdout)["groups"] for f in g["functions"])
    assert rep[False] == rep[True] and len(rep[True]) >= 3, rep
