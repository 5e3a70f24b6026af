"""t_graph.py - tests of `sftrace graph`: the calling-context tree, checked
node by node against a reference built from `sftrace dump` (t_report.py's
stack rules), with and without a REGEX, pruning, and bad arguments."""
import collections
import json

import t_report as tr
import tl


def ref_tree(calls, regex=None):
    """path (tuple of names from the top) -> [calls, total, self, unfinished]."""
    import re
    pat = re.compile(regex) if regex else None
    nodes = collections.defaultdict(lambda: [0, 0, 0, 0])
    for c in calls:
        path = c.path
        if pat:
            first = next((i for i, f in enumerate(path) if pat.search(f)), None)
            if first is None:
                continue
            path = path[first:]
        n = nodes[path]
        n[0] += 1
        n[1] += c.end - c.start
        n[2] += c.self
        n[3] += c.unfinished
    return nodes


def graph_json(log, args=(), sftrace=None, regex=None):
    p = tl.run([sftrace or tl.SFTRACE, "graph", "-q", "--format", "json"] + list(args) + [log]
               + ([regex] if regex else []))
    return json.loads(p.stdout)


def tree_of(g):
    """The JSON's nodes as path -> [calls, total, self, unfinished]; checks
    parents, depths and the order of siblings (by total, largest first)."""
    out = {}
    paths = []
    last_child_total = {}
    for i, n in enumerate(g["nodes"]):
        if n["parent"] < 0:
            assert n["depth"] == 0, n
            path = (n["name"],)
        else:
            p = g["nodes"][n["parent"]]
            assert n["parent"] < i and n["depth"] == p["depth"] + 1, (n, p)
            path = paths[n["parent"]] + (n["name"],)
        paths.append(path)
        prev = last_child_total.get(n["parent"])
        assert prev is None or prev >= n["total_ns"], "siblings not by total: %s" % (n,)
        last_child_total[n["parent"]] = n["total_ns"]
        assert path not in out, path
        out[path] = [n["calls"], n["total_ns"], n["self_ns"], n["unfinished"]]
    return out


def _check(log, regex=None):
    calls = tr.calls_from_dump(log)
    want = dict(ref_tree(calls, regex))
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        for jobs in ("1", "2"):
            g = graph_json(log, ["-j", jobs], sftrace=sftrace, regex=regex)
            got = tree_of(g)
            assert got.keys() == want.keys(), (set(got) ^ set(want))
            for k in want:
                assert got[k] == want[k], (k, got[k], want[k])
    return want, g


def test_graph_an_calls():
    exe = tr.build("an_calls.c")
    log = tr.record("an_calls_threads", [exe, "threads"])
    want, g = _check(log)
    assert want[("main", "top", "rec", "rec", "rec", "rec", "rec", "leaf")][0] == 10
    assert want[("worker", "top", "tail_b", "leaf")][0] == 20  # tail_b at tail_a's depth
    tops = [n for n in g["nodes"] if n["depth"] == 0]
    assert sum(n["self_ns"] for n in g["nodes"]) == sum(n["total_ns"] for n in tops)
    assert g["all_ns"] == sum(n["total_ns"] for n in tops)


def test_graph_regex_merges_beneath_matches():
    exe = tr.build("an_calls.c")
    log = tr.record("an_calls_threads", [exe, "threads"])
    want, g = _check(log, "^rec$")
    assert [n["name"] for n in g["nodes"] if n["depth"] == 0] == ["rec"]
    assert want[("rec",)][0] == 30  # the outermost rec of each nest only
    assert want[("rec",) * 5 + ("leaf",)][0] == 30
    want, g = _check(log, "^p[io]ng$")  # mutual recursion: the outermost ping
    assert [n["name"] for n in g["nodes"] if n["depth"] == 0] == ["ping"]


def test_graph_recursion_tailcall_unwinding():
    for src, args, compiler in (("recursion.c", ["12", "200"], "clang"), ("tailcall.c", [], "clang"),
                                ("setjmp.c", [], "clang")):
        exe = tr.build(src, compiler)
        log = tr.record("graph_" + src, [exe] + args)
        if src == "setjmp.c":
            # unwinding: where unwound calls end is the engine's rule from
            # the code (calls.h); the tree must be dump --calls' exactly
            want = dict(ref_tree(tr.calls_from_dump_calls(log)))
            for jobs in ("1", "2"):
                got = tree_of(graph_json(log, ["-j", jobs]))
                assert got == want, sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
            continue
        _check(log)


def test_graph_pruning_and_text():
    exe = tr.build("an_calls.c")
    log = tr.record("an_calls_threads", [exe, "threads"])
    full = graph_json(log)
    g = graph_json(log, ["-D", "1"])
    assert max(n["depth"] for n in g["nodes"]) == 1
    def brief(nodes):
        return [(n["depth"], n["name"], n["calls"], n["total_ns"]) for n in nodes]
    assert brief(n for n in full["nodes"] if n["depth"] <= 1) == brief(g["nodes"])
    g = graph_json(log, ["--min-percent", "10"])
    assert all(100.0 * n["total_ns"] / g["all_ns"] >= 10 for n in g["nodes"]), g
    assert g["hidden"] > 0 and len(g["nodes"]) < len(full["nodes"])
    p = tl.run([tl.SFTRACE, "graph", "-q", log])
    lines = p.stdout.splitlines()
    assert lines[0].startswith("# " + log)
    assert lines[1].split() == ["total", "total%", "self", "calls", "function"]
    col = lines[1].index("function")
    names = [ln[col:] for ln in lines[2:]]
    assert names[0] in ("main", "worker")
    # indentation follows the JSON's depths
    assert [len(n) - len(n.lstrip(" ")) for n in names] == [2 * n["depth"] for n in full["nodes"]]
    p = tl.run([tl.SFTRACE, "graph", "-q", "--by", "thread", log])
    assert p.stdout.count("[thread ") == 3, p.stdout


def test_graph_errors():
    exe = tr.build("an_calls.c")
    log = tr.record("an_calls_one", [exe])
    tr._one_error(["graph", log, "("], "bad regular expression")
    tr._one_error(["graph", log, "^no_such_function$"], "no call of a function matching")
    tr._one_error(["graph", "--min-percent", "x", log], "--min-percent")
    tr._one_error(["graph", "-D", "-1", log], "-D")
    tr._one_error(["graph", tr.empty_log()], "no events")
