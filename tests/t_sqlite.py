"""t_sqlite.py - `sftrace convert --format sqlite` (lib/sqlout.c,
docs/sqlite.md), checked through the sqlite3 command: the schema, exact
call counts, parents, depths and self times of known programs, threads,
the id layout the access paths rely on (preorder ids contiguous per
thread, last_id, prev_call, first_call/last_call, call_sample) on programs
and logs of known structure, allocation records (a block freed on another
thread), every query of docs/sqlite.md, damaged logs and failed
conversions.
"""
import os
import re

import tl

DAMAGED = 3
DOC = os.path.join(tl.ROOT, "docs", "sqlite.md")


def _dir():
    return tl.outdir("sqlite")


_stub = []


def _need():
    if not tl.have("sqlite3"):
        raise tl.Skip("no sqlite3 command (apt package sqlite3)")
    if not os.path.exists(tl.RUNTIME):
        raise tl.Skip("runtime not built")
    if not _stub:
        _stub.append(None)
        _recursion()  # raises Skip when the engine is a stub
        _stub[0] = False
    if _stub[0] is None:
        raise tl.Skip("the call engine is a stub here (merge branch engine)")


def _sql(db, query):
    """Rows of query (lists of strings; NULL is '')."""
    p = tl.run(["sqlite3", "-batch", "-bail", "-separator", "\t", db, query])
    return [line.split("\t") for line in p.stdout.splitlines()]


def _one(db, query):
    rows = _sql(db, query)
    assert len(rows) == 1 and len(rows[0]) == 1, (query, rows)
    return int(rows[0][0]) if re.match(r"-?\d+$", rows[0][0]) else rows[0][0]


def _convert(log, db, sftrace=None, check=True, extra=()):
    if os.path.exists(db):
        os.unlink(db)
    p = tl.run([sftrace or tl.SFTRACE, "convert", "--format", "sqlite", *extra, log, "-o", db],
               check=False, timeout=300)
    for bad in ("Sanitizer", "runtime error:"):
        assert bad not in p.stderr, p.stderr[-3000:]
    if check:
        assert p.returncode == 0, (p.returncode, p.stderr)
    return p


def _recursion(n=15, depth=50):
    prog = tl.build_c("recursion.c")
    log = os.path.join(_dir(), "rec.sft")
    p = tl.record([prog, str(n), str(depth)], log)
    db = os.path.join(_dir(), "rec.db")
    _convert(log, db)
    if _one(db, "SELECT count(*) FROM call") == 0 and tl.kv(p.stdout, "fib_calls"):
        raise tl.Skip("the call engine is a stub here (merge branch engine)")
    return log, db, p


def _calls(db):
    """Every call row by id: dict of the layout's columns (ints; None for NULL)."""
    cols = ["id", "thread", "function", "parent", "depth", "start_ns", "dur_ns", "last_id",
            "prev_call", "flags", "unfinished"]
    out = {}
    for r in _sql(db, "SELECT %s FROM call ORDER BY id" % ", ".join(cols)):
        c = {k: (int(v) if v != "" else None) for k, v in zip(cols, r)}
        out[c["id"]] = c
    return out


def _check_layout(db, sample=1024):
    """The id layout docs/sqlite.md promises, from the rows alone: ids 1..N,
    each thread's calls the contiguous range first_call..last_call in thread
    order, preorder within it (a call's parent is the innermost call whose
    (id, last_id] holds it; start_ns never decreases), last_id the largest
    id beneath, prev_call the previous id of the same function, function's
    calls and last_call, and call_sample every sample-th call of a thread.
    Returns the calls (_calls)."""
    calls = _calls(db)
    n = len(calls)
    assert sorted(calls) == list(range(1, n + 1)), "ids not 1..N"
    threads = [[int(x) if x != "" else None for x in r] for r in
               _sql(db, "SELECT id, calls, first_call, last_call FROM thread ORDER BY id")]
    nxt = 1
    for tid, ncalls, first, last in threads:
        if not ncalls:
            assert first is None and last is None, (tid, first, last)
            continue
        assert (first, last) == (nxt, nxt + ncalls - 1), (tid, ncalls, first, last, nxt)
        nxt = last + 1
        stack, prev_start = [], None
        for i in range(first, last + 1):
            c = calls[i]
            assert c["thread"] == tid, c
            assert prev_start is None or c["start_ns"] >= prev_start, c
            prev_start = c["start_ns"]
            while stack and calls[stack[-1]]["last_id"] < i:
                stack.pop()
            assert c["parent"] == (stack[-1] if stack else None), (c, stack[-3:])
            assert c["depth"] == len(stack), (c, len(stack))
            assert i <= c["last_id"] <= (calls[stack[-1]]["last_id"] if stack else last), c
            assert c["unfinished"] == c["flags"] & 1, c
            stack.append(i)
    assert nxt == n + 1, (nxt, n)
    deepest = {i: i for i in calls}  # the largest id in each call's subtree
    for i in range(n, 0, -1):
        p = calls[i]["parent"]
        if p:
            deepest[p] = max(deepest[p], deepest[i])
    bad = [i for i in calls if calls[i]["last_id"] != deepest[i]]
    assert not bad, [calls[i] for i in bad[:3]]
    last = {}
    for i in range(1, n + 1):
        f = calls[i]["function"]
        assert calls[i]["prev_call"] == last.get(f), (calls[i], last.get(f))
        last[f] = i
    count = {}
    for c in calls.values():
        count[c["function"]] = count.get(c["function"], 0) + 1
    for fid, ncalls, lastc in _sql(db, "SELECT id, calls, last_call FROM function"):
        fid = int(fid)
        assert (int(ncalls), int(lastc) if lastc else None) == (count.get(fid, 0), last.get(fid)), \
            (fid, ncalls, lastc)
    want = sorted([t[0], calls[i]["start_ns"], i] for t in threads if t[1]
                  for i in range(t[2], t[3] + 1, sample))
    got = sorted([int(x) for x in r] for r in _sql(db, "SELECT * FROM call_sample"))
    assert got == want, (got[:5], want[:5])
    return calls


def _recursion_log():
    """A synthesized log of one process (pid 7, monotonic clock) with
    recursion.c's functions as object 1: (logsynth, exe, funcs, log)."""
    import logsynth as ls
    exe = tl.build_c("recursion.c")
    funcs = ls.xray_functions(exe)
    log = ls.Log(create_mono_ns=0)
    log.process(7, clock=ls.MONO, exe=exe)
    log.object(7, 1, funcs, exe, ls.build_id(exe))
    return ls, exe, funcs, log


def test_schema():
    _need()
    _, db, _ = _recursion()
    cols = {}
    for (table,) in _sql(db, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY 1"):
        cols[table] = [r[1] for r in _sql(db, "PRAGMA table_xinfo(%s)" % table)]
    assert cols == {
        "meta": ["key", "value"],
        "process": ["id", "pid", "ppid", "name", "exe", "cmdline", "forked", "execed", "clock",
                    "start_ns", "end_ns", "end_reason"],
        "thread": ["id", "process", "pid", "tid", "name", "start_ns", "end_ns", "exited", "calls",
                   "first_call", "last_call"],
        "object": ["id", "path", "build_id", "main"],
        "function": ["id", "name", "mangled", "file", "line", "object", "address", "calls",
                     "last_call"],
        "call": ["id", "thread", "function", "parent", "depth", "start_ns", "dur_ns", "self_ns",
                 "unfinished", "flags", "last_id", "prev_call"],
        "call_sample": ["thread", "start_ns", "id"],
        "alloc": ["id", "thread", "call", "ts_ns", "kind", "size", "align", "ptr"],
    }, cols
    # unfinished is computed (flags & 1), not stored
    hidden = {r[1]: r[6] for r in _sql(db, "PRAGMA table_xinfo(call)")}
    assert hidden["unfinished"] == "2" and hidden["flags"] == "0", hidden
    idx = sorted(r[0] for r in _sql(db, "SELECT name FROM sqlite_schema WHERE type = 'index' "
                                        "AND name NOT LIKE 'sqlite_%'"))
    assert idx == ["alloc_call", "alloc_ptr", "function_name"], idx
    assert _sql(db, "SELECT name FROM sqlite_schema WHERE type = 'view'") == [["calls"]]
    assert _one(db, "SELECT value FROM meta WHERE key = 'schema_version'") == 2
    assert _sql(db, "PRAGMA integrity_check") == [["ok"]]
    _check_layout(db)


def test_recursion_counts():
    """fib(15) makes 2*F(16)-1 = 1973 calls, descend(50) nests 51 frames
    under main: exact counts, parents, depths, self times, one thread."""
    _need()
    log, db, p = _recursion(15, 50)
    pid, tid = tl.kv(p.stdout, "pid"), tl.kv(p.stdout, "tid")
    assert tl.kv(p.stdout, "fib_calls") == 1973
    got = {r[0]: int(r[1]) for r in _sql(db, "SELECT f.name, count(*) FROM call c JOIN function f "
                                             "ON f.id = c.function GROUP BY 1")}
    assert got == {"main": 1, "fib": 1973, "descend": 51}, got
    assert _sql(db, "SELECT pid, tid, calls FROM thread") == [[str(pid), str(tid), str(2025)]]
    assert _sql(db, "SELECT pid, name, forked, execed, end_reason FROM process") == \
        [[str(pid), "recursion", "0", "0", "exit"]]
    # main is the one outermost call; every other call's parent is fib/main or descend/main
    assert _sql(db, "SELECT f.name, c.depth FROM call c JOIN function f ON f.id = c.function "
                    "WHERE c.parent IS NULL") == [["main", "0"]]
    assert _one(db, "SELECT count(*) FROM call c JOIN call p ON p.id = c.parent "
                    "WHERE c.depth != p.depth + 1 OR c.thread != p.thread") == 0
    assert _one(db, "SELECT max(depth) FROM call WHERE function = "
                    "(SELECT id FROM function WHERE name = 'descend')") == 51
    assert _one(db, "SELECT max(depth) FROM call WHERE function = "
                    "(SELECT id FROM function WHERE name = 'fib')") == 15
    callers = _sql(db, "SELECT pf.name, count(*) FROM call c JOIN call p ON p.id = c.parent "
                       "JOIN function pf ON pf.id = p.function JOIN function f ON f.id = c.function "
                       "WHERE f.name = 'fib' GROUP BY 1 ORDER BY 1")
    assert callers == [["fib", "1972"], ["main", "1"]], callers
    # children inside their parent; self = duration minus the children's
    assert _one(db, "SELECT count(*) FROM call c JOIN call p ON p.id = c.parent WHERE "
                    "c.start_ns < p.start_ns OR c.start_ns + c.dur_ns > p.start_ns + p.dur_ns") == 0
    assert _one(db, "SELECT count(*) FROM call p WHERE p.self_ns != p.dur_ns - (SELECT "
                    "coalesce(sum(c.dur_ns), 0) FROM call c WHERE c.parent = p.id)") == 0
    assert _one(db, "SELECT count(*) FROM call WHERE unfinished OR flags") == 0
    # ids: begin order, so a parent's id is below its children's
    assert _one(db, "SELECT count(*) FROM call c JOIN call p ON p.id = c.parent "
                    "WHERE c.id <= p.id") == 0
    assert _one(db, "SELECT min(id) || ' ' || max(id) FROM call") == "1 2025"
    # functions: names, source lines, the object
    rows = _sql(db, "SELECT f.name, f.file, f.line, o.path, o.main FROM function f "
                    "JOIN object o ON o.id = f.object ORDER BY f.name")
    src = os.path.join(tl.PROGS, "recursion.c")
    with open(src) as f:
        lines = f.read().split("\n")
    for name, file, line, path, main in rows:
        assert file == src and path.endswith("/recursion") and main == "1", (name, file, path)
        assert re.search(r"\b%s\(" % name, lines[int(line) - 1]), (name, line)
    assert [r[0] for r in rows] == ["descend", "fib", "main"], rows
    # the same number of events as dump
    evs, _ = tl.dump(log)
    assert _one(db, "SELECT value FROM meta WHERE key = 'events'") == len(evs) == 2 * 2025
    # the ids exactly: preorder, as the dump's entries come (one thread)
    got = _check_layout(db)
    names = dict((int(r[0]), r[1]) for r in _sql(db, "SELECT id, name FROM function"))
    want = _dump_calls(log)
    assert len(got) == len(want) == 2025
    for i, w in want.items():
        c = got[i]
        assert (names[c["function"]], c["parent"], c["depth"], c["start_ns"], c["dur_ns"]) == \
            (w["f"], w["parent"], w["depth"], w["start"], w["dur"]), (c, w)
    # main: 1..2025; its callees fib(15) (2..1974) then descend (1975..2025)
    assert got[1]["last_id"] == 2025 and got[2]["last_id"] == 1974, (got[1], got[2])
    assert [got[i]["last_id"] for i in range(1975, 2026)] == [2025] * 51
    assert _sql(db, "SELECT first_call, last_call FROM thread") == [["1", "2025"]]
    assert _one(db, "SELECT value FROM meta WHERE key = 'damaged'") == 0


def test_selection_ids():
    """A selection renumbers what it keeps, with no gaps (-F fib drops main,
    id 1 of the full database; -N descend drops a subtree; --min-duration
    drops short calls in the middle; -D 3 the calls below depth 3): the
    kept calls are, in id order, the full database's calls that pass, in
    its id order, each with the same function, start and duration; its
    parent is its nearest kept ancestor, and the layout holds (last_id,
    prev_call, samples)."""
    _need()
    log, full, _ = _recursion(15, 50)
    ref = _calls(full)
    names = dict((int(r[0]), r[1]) for r in _sql(full, "SELECT id, name FROM function"))
    for extra, n in ((["-F", "fib"], 1973), (["-N", "descend"], 1974),
                     (["--min-duration", "150ns"], None), (["-D", "3"], None)):
        db = os.path.join(_dir(), "rec_sel.db")
        for sf in (tl.SFTRACE, tl.SFTRACE_ASAN):
            _convert(log, db, sftrace=sf, extra=extra)
            got = _check_layout(db)
            assert n is None or len(got) == n, (extra, len(got))
            assert 10 < len(got) < len(ref), (extra, len(got))
            gnames = dict((int(r[0]), r[1]) for r in _sql(db, "SELECT id, name FROM function"))
            # match the kept calls to the full ones, in order
            back, j = {}, 1
            for i in range(1, len(got) + 1):
                c = got[i]
                key = (gnames[c["function"]], c["start_ns"], c["dur_ns"])
                while j <= len(ref) and (names[ref[j]["function"]], ref[j]["start_ns"],
                                         ref[j]["dur_ns"]) != key:
                    j += 1
                assert j <= len(ref), (extra, c)
                back[i] = j
                j += 1
            kept = {v: k for k, v in back.items()}
            for i, c in got.items():
                up = ref[back[i]]["parent"]  # the nearest kept ancestor in the full database
                while up and up not in kept:
                    up = ref[up]["parent"]
                assert c["parent"] == (kept[up] if up else None), (extra, c, up)
            if extra[0] == "-D":
                assert max(c["depth"] for c in got.values()) == 3
                assert len(got) == sum(1 for c in ref.values() if c["depth"] <= 3)
            if extra[0] == "--min-duration":
                assert min(c["dur_ns"] for c in got.values()) >= 150


def _doc_indexes():
    """The CREATE INDEX statements docs/sqlite.md gives for --indexes."""
    with open(DOC) as f:
        text = f.read()
    part = text[text.index("## The indexes over all calls"):]
    block = re.search(r"```sql\n(.*?)```", part, re.S).group(1)
    return [l for l in block.splitlines() if l.startswith("CREATE INDEX")]


def test_indexes_many_flushes():
    """fib(25): 242,785 calls, several buffers of ended calls (65,536 each;
    the last holds main, id 1, so it is sorted, the others placed by id):
    --indexes gives the same rows in every table and the three indexes over
    all calls besides the small ones; --no-indexes is the default; the
    statements docs/sqlite.md gives make the same indexes later."""
    _need()
    log, db, p = _recursion(25, 10)
    assert tl.kv(p.stdout, "fib_calls") == 242785
    _check_layout(db)
    small = ["alloc_call", "alloc_ptr", "function_name"]
    big = ["call_function", "call_parent", "call_thread_start"]

    def idx(d):
        return sorted(r[0] for r in _sql(d, "SELECT name FROM sqlite_schema WHERE type = 'index' "
                                            "AND name NOT LIKE 'sqlite_%'"))
    assert idx(db) == small
    ix = os.path.join(_dir(), "rec_ix.db")
    for sf, extra in ((tl.SFTRACE, ["--indexes"]), (tl.SFTRACE_ASAN, ["--indexes"]),
                      (tl.SFTRACE, ["--no-indexes"])):
        q = _convert(log, ix, sftrace=sf, extra=extra)
        with_ix = extra == ["--indexes"]
        assert ("for the indexes" if with_ix else "views and small indexes") in q.stderr, q.stderr
        assert idx(ix) == sorted(small + big if with_ix else small)
        assert _sql(ix, "SELECT name FROM sqlite_schema WHERE type = 'view'") == [["calls"]]
        for table in ("call", "thread", "process", "function", "object", "alloc", "call_sample"):
            a = _sql(db, "SELECT * FROM %s ORDER BY 1, 2" % table)
            b = _sql(ix, "SELECT * FROM %s ORDER BY 1, 2" % table)
            assert a == b, table
    n = 242785 + 11 + 1  # fib, descend(10), main
    assert _one(db, "SELECT count(*) || ' ' || min(id) || ' ' || max(id) FROM call") == \
        "%d 1 %d" % (n, n)
    assert _one(db, "SELECT count(*) FROM calls WHERE function = 'fib'") == 242785
    stmts = _doc_indexes()
    assert len(stmts) == 3, stmts
    _sql(db, "\n".join(stmts))
    assert idx(db) == sorted(small + big)
    # the call_function index serves a function's calls
    plan = " ".join(r[-1] for r in _sql(db, "EXPLAIN QUERY PLAN SELECT * FROM call WHERE "
                                            "function = 1 ORDER BY dur_ns"))
    assert "call_function" in plan, plan
    # --indexes and --no-indexes are refused for the other formats
    for opt in ("--indexes", "--no-indexes"):
        q = tl.run([tl.SFTRACE, "convert", opt, log, "-o", os.path.join(_dir(), "x.pb")],
                   check=False)
        assert q.returncode == 2 and "%s is for --format sqlite" % opt in q.stderr, q.stderr


def test_threads():
    """threads.c: six threads, each with its known number of calls and its
    name."""
    _need()
    prog = tl.build_c("threads.c", libs=["-lpthread"])
    log = os.path.join(_dir(), "threads.sft")
    p = tl.record([prog], log)
    db = os.path.join(_dir(), "threads.db")
    _convert(log, db)
    want = {}
    for m in re.finditer(r"thread (\d+) tid (\d+) calls (\d+) name (\S+)", p.stdout):
        want[int(m.group(2))] = (2 * int(m.group(3)), m.group(4))
    m = re.search(r"main tid (\d+) calls (\d+)", p.stdout)
    main_tid, main_calls = int(m.group(1)), int(m.group(2))
    assert len(want) == 5, p.stdout
    rows = _sql(db, "SELECT t.tid, t.name, count(*), sum(f.name = 'worker'), "
                    "sum(f.name = 'work_leaf'), t.calls FROM call c JOIN thread t ON t.id = c.thread "
                    "JOIN function f ON f.id = c.function WHERE f.name IN ('worker', 'work_leaf') "
                    "GROUP BY t.id")
    got = {int(r[0]): r for r in rows}
    for tid, (n, name) in want.items():
        r = got[tid]
        assert r[1] == name and int(r[2]) == n and int(r[3]) == int(r[4]) == n // 2, (r, n, name)
    assert int(got[main_tid][3]) == main_calls, got[main_tid]
    assert _one(db, "SELECT count(*) FROM thread") == 6
    assert _one(db, "SELECT count(DISTINCT pid) FROM thread") == 1
    # each thread's calls a contiguous range of ids
    _check_layout(db)
    # a time range: each tid has an engine run of its own (lib/sqlout.c,
    # run_all), the layout holds, and the calls are those that overlap it
    span = _one(db, "SELECT max(start_ns + dur_ns) - min(start_ns) FROM call")
    t0 = _one(db, "SELECT min(start_ns) FROM call")
    first = _one(db, "SELECT value FROM meta WHERE key = 'first_ns'")
    lo, hi = t0 - first + span // 3, t0 - first + 2 * span // 3
    win = os.path.join(_dir(), "threads_win.db")
    q = _convert(log, win, extra=["--time-range", "%d,%d" % (lo, hi)])
    # a run per tid of the log (a thread with no event in the range too)
    assert "in %d runs" % _one(db, "SELECT count(*) FROM thread") in q.stderr, q.stderr
    _check_layout(win)
    want = _one(db, "SELECT count(*) FROM call WHERE start_ns <= %d AND start_ns + dur_ns >= %d"
                % (first + hi, first + lo))
    assert _one(win, "SELECT count(*) FROM call") == want > 0, want
    # every work_leaf call's parent is a worker call on the same thread
    assert _one(db, "SELECT count(*) FROM call c JOIN call p ON p.id = c.parent WHERE "
                    "c.function = (SELECT id FROM function WHERE name = 'work_leaf') AND "
                    "p.function != (SELECT id FROM function WHERE name = 'worker')") == 0


def _alloc_prog():
    """convert_alloc.c, which reports allocations through sftrace_alloc_event."""
    return tl.build_c(os.path.join(tl.PROGS, "convert_alloc.c"),
                      flags=tl.WARN_CFLAGS + ["-I" + os.path.join(tl.ROOT, "include")],
                      libs=["-L" + tl.BUILD, "-lsftrace", "-Wl,-rpath," + tl.BUILD, "-lpthread"])


def test_allocs():
    """convert_alloc.c: 40 allocations, 20 frees, a realloc (2 records) in
    main, 25 allocations on a second thread, each reported by note_alloc's
    tail call, so inside note_alloc's caller."""
    _need()
    prog = _alloc_prog()
    log = os.path.join(_dir(), "alloc.sft")
    tl.record([prog], log)
    db = os.path.join(_dir(), "alloc.db")
    _convert(log, db)
    kinds = dict((r[0], int(r[1])) for r in _sql(db, "SELECT kind, count(*) FROM alloc GROUP BY 1"))
    assert kinds == {"alloc": 65, "free": 20, "realloc-alloc": 1, "realloc-free": 1}, kinds
    assert _sql(db, "SELECT f.name, count(*) FROM alloc a JOIN call c ON c.id = a.call JOIN "
                    "function f ON f.id = c.function WHERE c.thread = a.thread GROUP BY 1 "
                    "ORDER BY 1") == [["main", "62"], ["thread_main", "25"]]
    assert _sql(db, "SELECT size, ptr FROM alloc WHERE kind = 'realloc-alloc'") == \
        [["5000", str(0x900000)]]
    assert _one(db, "SELECT count(DISTINCT thread) FROM alloc") == 2


def test_allocs_many_buffers():
    """40,000 allocations on the second thread: more than two buffers of
    allocation records go to the writer thread (lib/sqlout.c, 16,384 a
    buffer), interleaved with buffers of calls; every record is there once,
    in the order it was made (ids follow the addresses), each inside the
    call that made it."""
    _need()
    prog = _alloc_prog()
    log = os.path.join(_dir(), "alloc_many.sft")
    tl.record([prog, "40000"], log)
    db = os.path.join(_dir(), "alloc_many.db")
    for sf in (tl.SFTRACE, tl.SFTRACE_ASAN):
        _convert(log, db, sftrace=sf)
        kinds = dict((r[0], int(r[1])) for r in _sql(db, "SELECT kind, count(*) FROM alloc "
                                                         "GROUP BY 1"))
        assert kinds == {"alloc": 40040, "free": 20, "realloc-alloc": 1, "realloc-free": 1}, kinds
        # the thread's records in the order made: ptr rises with id, no gap, no repeat
        assert _one(db, "SELECT count(*) FROM (SELECT ptr - lag(ptr) OVER (ORDER BY id) AS d "
                        "FROM alloc WHERE ptr >= %d AND ptr < %d) WHERE d != 64"
                    % (0x200000, 0x900000)) == 0
        assert _one(db, "SELECT count(DISTINCT ptr) || ' ' || min(ptr) || ' ' || max(ptr) "
                        "FROM alloc WHERE ptr >= %d AND ptr < %d" % (0x200000, 0x900000)) == \
            "40000 %d %d" % (0x200000, 0x200000 + 64 * 39999)
        # note_alloc tail-calls the report, so each is inside note_alloc's
        # caller, within that call's time
        assert _sql(db, "SELECT f.name, count(*) FROM alloc a JOIN call c ON c.id = a.call JOIN "
                        "function f ON f.id = c.function WHERE c.thread = a.thread AND "
                        "a.ts_ns BETWEEN c.start_ns AND c.start_ns + c.dur_ns GROUP BY 1 "
                        "ORDER BY 1") == [["main", "62"], ["thread_main", "40000"]]
        assert _one(db, "SELECT count(*) FROM call c JOIN function f ON f.id = c.function "
                        "WHERE f.name = 'note_alloc'") == 40062


def _doc_queries():
    with open(DOC) as f:
        text = f.read()
    part = text[text.index("## Ten useful queries"):]
    return re.findall(r"```sql\n(.*?)```", part, re.S)


def _dump_calls(log):
    """The calls of a one-thread log of plain entries and exits, from
    `sftrace dump` (not the call engine): by id (begin order) with function,
    parent, depth, start, end and self time; the expected answers of the
    documented queries are computed from these."""
    evs, _ = tl.dump(log)
    calls, stack = {}, []
    for e in evs:
        if e.kind == "entry":
            cid = len(calls) + 1
            calls[cid] = {"id": cid, "f": e.func, "parent": stack[-1] if stack else None,
                          "depth": len(stack), "start": e.time, "end": None, "child": 0}
            stack.append(cid)
        else:
            assert e.kind == "exit" and calls[stack[-1]]["f"] == e.func, e
            c = calls[stack.pop()]
            c["end"] = e.time
            if c["parent"]:
                calls[c["parent"]]["child"] += c["end"] - c["start"]
    assert not stack
    for c in calls.values():
        c["dur"] = c["end"] - c["start"]
        c["self"] = c["dur"] - c["child"]
    return calls


# What EXPLAIN QUERY PLAN must show for each documented query (1-based), so
# that the queries stay on the access paths they were written for (rowid
# lookups and ranges: docs/sqlite.md, Access paths); and the full scans of
# call a query may make (1 and 9 aggregate over every call; 7 picks the
# deepest call). Scans of a CTE (fc, kid, root, up, d and their aliases)
# and of thread are fine.
_FC = ["SEARCH f USING INDEX function_name (name=?)",
       "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)"]
_PLANS = {
    2: _FC,
    3: _FC + ["SEARCH p USING INTEGER PRIMARY KEY (rowid=?)"],
    4: _FC + ["SCAN kid"],
    5: ["SEARCH c USING INTEGER PRIMARY KEY (rowid=?)", "SCAN r"],
    6: _FC,
    7: ["SEARCH c USING INTEGER PRIMARY KEY (rowid=?)"],
    8: ["SEARCH c USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
        "SEARCH call_sample USING PRIMARY KEY (thread=? AND start_ns<?)",
        "SEARCH call_sample USING PRIMARY KEY (thread=? AND start_ns>?)"],
    10: ["SEARCH b USING INDEX alloc_ptr (ptr=? AND ts_ns>?)",
         "SEARCH c USING INTEGER PRIMARY KEY (rowid=?)"],
}
_SCANS = {1: {"c"}, 7: {"call"}, 9: {"c"}, 10: {"a"}}
_CTES = {"t", "up", "d", "fc", "kid", "root", "r"}
_CTE_ALIAS = {4: {"p"}}  # fc p
# 1 and 9 read every call: in table order (NOT INDEXED), not through
# call_function (a random read per row) when the database has it
_TABLE_ORDER = {1, 9}


def _check_plan(db, n, q, paths=True):
    # the sqlite3 command shows the plan as a tree: "|--SCAN c", "|  `--SEARCH ..."
    plan = [re.sub(r"^[|`\- ]*", "", r[-1]) for r in _sql(db, "EXPLAIN QUERY PLAN " + q)]
    text = "\n".join(plan)
    for want in _PLANS.get(n, []) if paths else []:
        assert want in text, (n, want, text)
    if n in _TABLE_ORDER:
        assert "SCAN c" in plan, (n, text)
    for line in plan:  # a full scan of a table (not of a CTE or subquery)
        m = re.match(r"SCAN (\w+)( USING (COVERING )?INDEX \w+)?$", line)
        if m and m.group(1) not in _CTES | _CTE_ALIAS.get(n, set()):
            assert m.group(1) in _SCANS.get(n, ()), (n, line, text)


def test_doc_queries_exact():
    """Every documented query uses the indexes it was written for (EXPLAIN
    QUERY PLAN, with the indexes the conversion made) and gives exactly the
    answer the dump gives: recursion.c (queries 1-8: one thread, main,
    descend(50), fib(15)), setjmp.c (9: the calls longjmp and siglongjmp
    left), convert_alloc.c (10: the blocks never freed, by the function
    that allocated them)."""
    _need()
    qs = _doc_queries()
    assert len(qs) == 10, len(qs)
    log, db, p = _recursion(15, 50)
    pid, tid = tl.kv(p.stdout, "pid"), tl.kv(p.stdout, "tid")
    calls = _dump_calls(log)
    assert len(calls) == 2025
    for n, q in enumerate(qs, 1):
        _check_plan(db, n, q)
    res = [_sql(db, q) for q in qs]
    # with the indexes over all calls (--indexes; SQLite may take one, as
    # query 8 does call_thread_start) no more scans, and the same answers
    ix = os.path.join(_dir(), "rec_q_ix.db")
    _convert(log, ix, extra=["--indexes"])
    for n, q in enumerate(qs, 1):
        _check_plan(ix, n, q, paths=False)
        assert _sql(ix, q) == res[n - 1], n
    assert res[8] == [] and res[9] == [], res[8:]  # nothing unfinished, no allocations
    fib = [c for c in calls.values() if c["f"] == "fib"]
    main = calls[1]
    assert main["f"] == "main"
    # 1. functions by self time
    agg = {}
    for c in calls.values():
        a = agg.setdefault(c["f"], [0, 0, 0])
        a[0] += 1
        a[1] += c["self"]
        a[2] += c["dur"]
    want = sorted(([f] + a for f, a in agg.items()), key=lambda r: -r[2])
    assert res[0] == [[str(x) for x in r] for r in want], (res[0], want)
    # 2. the 10 slowest fib calls (the durations exactly; each row is that call)
    top = sorted((c["dur"] for c in fib), reverse=True)[:10]
    assert [int(r[2]) for r in res[1]] == top, (res[1], top)
    for cid, start, dur, t, name in res[1]:
        c = calls[int(cid)]
        assert (c["f"], c["start"], c["dur"], int(t), name) == \
            ("fib", int(start), int(dur), tid, "recursion"), (c, start, dur, t, name)
    # 3. callers of fib
    want = [["fib", "1972", str(sum(c["dur"] for c in fib if c["parent"] != 1))],
            ["main", "1", str(sum(c["dur"] for c in fib if c["parent"] == 1))]]
    assert res[2] == want, (res[2], want)
    # 4. what main calls: one descend, one fib
    kids = sorted((c for c in calls.values() if c["parent"] == 1), key=lambda c: -c["dur"])
    assert sorted(c["f"] for c in kids) == ["descend", "fib"]
    assert res[3] == [[c["f"], "1", str(c["dur"])] for c in kids], res[3]
    # 5. time per thread: main is the one outermost call
    assert len(res[4]) == 1, res[4]
    r = res[4][0]
    assert r[:5] == [str(pid), str(tid), "recursion", "2025", str(main["dur"])], r
    assert int(r[5]) >= main["dur"], r
    # 6. fib's duration percentiles
    d = sorted(c["dur"] for c in fib)
    assert res[5] == [[str(d[int(len(d) * q) - 1]) for q in (0.5, 0.9, 0.99)] + [str(d[-1])]], \
        (res[5], len(d))
    # 7. the deepest stack: main, then descend 51 deep, with source lines
    src = os.path.join(tl.PROGS, "recursion.c")
    with open(src) as f:
        lines = f.read().split("\n")
    assert [(int(r[0]), r[1], r[2]) for r in res[6]] == \
        [(0, "main", src)] + [(i, "descend", src) for i in range(1, 52)], res[6]
    for r in res[6]:
        assert re.search(r"\b%s\(" % r[1], lines[int(r[3]) - 1]), r
    # 8. the timeline of thread 1: the first 50 calls by start
    want = [[str(c["start"]), str(c["dur"]), str(c["depth"]), c["f"]]
            for c in sorted(calls.values(), key=lambda c: c["start"])[:50]]
    assert sorted(res[7]) == sorted(want), (res[7][:5], want[:5])
    assert [int(r[0]) for r in res[7]] == sorted(int(r[0]) for r in res[7])

    # 9. calls that did not finish: setjmp.c's dives, left by longjmp
    prog = tl.build_c("setjmp.c")
    log = os.path.join(_dir(), "setjmp.sft")
    p = tl.record([prog], log)
    db = os.path.join(_dir(), "setjmp.db")
    _convert(log, db)
    _check_plan(db, 9, qs[8])
    rounds, depth = map(int, re.search(r"^rounds (\d+) depth (\d+)", p.stdout, re.M).groups())
    srounds, sdepth = map(int, re.search(r"^sig_rounds (\d+) sig_depth (\d+)", p.stdout,
                                         re.M).groups())
    want = [["dive", rounds * (depth + 1)], ["sig_dive", srounds * (sdepth + 1)],
            ["on_usr1", srounds]]
    assert _sql(db, qs[8]) == [[f, str(n), str(n)] for f, n in want], _sql(db, qs[8])

    # 10. memory still allocated: main's odd blocks (100 * (i + 1) bytes for
    # odd i < 39) and the realloc's new one, and the thread's 25
    prog = _alloc_prog()
    log = os.path.join(_dir(), "alloc10.sft")
    tl.record([prog], log)
    db = os.path.join(_dir(), "alloc10.db")
    _convert(log, db)
    _check_plan(db, 10, qs[9])
    main_bytes = sum(100 * (i + 1) for i in range(1, 39, 2)) + 5000
    assert _sql(db, qs[9]) == [["main", "20", str(main_bytes)], ["thread_main", "25", "1600"]], \
        _sql(db, qs[9])


def test_damaged_log_and_failures():
    """A damaged log gives a database of everything readable and exit 3; a
    failed conversion leaves no file and an existing one as it was."""
    _need()
    _recursion(15, 50)
    prog = tl.build_c("threads.c")
    log = os.path.join(_dir(), "threads2.sft")
    tl.record([prog], log)
    full = os.path.join(_dir(), "threads2.db")
    _convert(log, full)
    ncalls = _one(full, "SELECT count(*) FROM call")
    _, chunks = tl.read_log(log)
    with open(log, "rb") as f:
        data = f.read()
    ev = [c for c in chunks if c["type"] == tl.CHUNK_EVENTS]
    assert len(ev) > 3, ev
    bad = os.path.join(_dir(), "damaged.sft")
    with open(bad, "wb") as f:  # an EVENTS chunk's magic broken
        f.write(data[:ev[2]["off"]] + b"XXXX" + data[ev[2]["off"] + 4:])
    out = os.path.join(_dir(), "damaged.db")
    p = _convert(bad, out, check=False)
    assert p.returncode == DAMAGED and "damaged log" in p.stderr, p.stderr
    assert _one(out, "SELECT value FROM meta WHERE key = 'damaged'") == 1
    assert 0.5 * ncalls < _one(out, "SELECT count(*) FROM call") < ncalls
    # ASan build: the same
    p = _convert(bad, out, sftrace=tl.SFTRACE_ASAN, check=False)
    assert p.returncode == DAMAGED, p.stderr
    # failures: not a log, an unwritable place, stdout
    keep = os.path.join(_dir(), "keep.db")
    with open(keep, "wb") as f:
        f.write(b"old")
    notlog = os.path.join(_dir(), "notlog.sft")
    with open(notlog, "wb") as f:
        f.write(b"hello" * 20)
    p = tl.run([tl.SFTRACE, "convert", "--format", "sqlite", notlog, "-o", keep], check=False)
    assert p.returncode == 1 and notlog in p.stderr
    with open(keep, "rb") as f:
        assert f.read() == b"old"
    p = tl.run([tl.SFTRACE, "convert", "--format", "sqlite", log, "-o", "/nonexistent/x.db"],
               check=False)
    assert p.returncode == 1 and "/nonexistent/x.db" in p.stderr, p.stderr
    p = tl.run([tl.SFTRACE, "convert", "--format", "sqlite", log, "-o", "-"], check=False)
    assert p.returncode == 1 and "stdout" in p.stderr, p.stderr
    assert not [f for f in os.listdir(_dir()) if ".tmp" in f], os.listdir(_dir())


def test_mangled_names():
    """A C++ program (a synthesized log calling each of its functions once):
    function.name is the demangled name, function.mangled the symbol of the
    ELF file at the function's address, and every call is there."""
    _need()
    import logsynth as ls
    exe = tl.build_c("dump_names.cc", compiler="clang++",
                     out=os.path.join(tl.outdir("bin"), "dump_names_cc"))
    funcs, syms = ls.xray_functions(exe), ls.symbols(exe)
    log = ls.Log(create_mono_ns=0)
    log.process(7, clock=ls.MONO, exe=exe)
    log.object(7, 1, funcs, exe, ls.build_id(exe))
    evs = []
    for i in range(len(funcs)):
        evs += [("entry", 10 * i + 1, i + 1), ("exit", 10 * i + 5, i + 1)]
    _, recs = ls.encode(evs)
    log.events(7, 7, recs)
    path = log.write(os.path.join(_dir(), "cc.sft"))
    db = os.path.join(_dir(), "cc.db")
    _convert(path, db)
    rows = _sql(db, "SELECT f.name, f.mangled, f.address, count(c.id), sum(c.dur_ns) FROM "
                    "function f LEFT JOIN call c ON c.function = f.id GROUP BY f.id")
    assert len(rows) == len(funcs), (len(rows), len(funcs))
    assert {int(r[2]) for r in rows} == set(funcs)
    mangled = 0
    for name, raw, addr, n, dur in rows:
        assert (n, dur) == ("1", "4"), (name, n, dur)
        assert raw in syms[int(addr)], (name, raw, syms[int(addr)])
        if raw.startswith("_Z"):
            mangled += 1
            assert name != raw and "::" in name, (name, raw)
        else:
            assert name == raw, (name, raw)
    assert mangled >= 3, rows


def test_layout_tid_reused_tail_cross_thread_free():
    """A synthesized log of known structure: tid 9 runs f1 > (f2, which
    tail-calls f3), exits, and comes back as a new thread (f2 > f3, f2 left
    open at the end); tid 8's chunk comes between them (f1, then f2), and
    tid 30's after them (f1). The engine runs over groups of tids whose
    chunks do not interleave (lib/sqlout.c, run_all): 9 and 30 in one run,
    8 in another, so the threads are numbered 9, 9 again, 30, 8, and the
    ids, last_id, prev_call, first_call / last_call are exactly the ones
    worked out here. Allocation records: a block allocated on tid 8 and
    freed on tid 9 later in time but with a smaller id (tid 9's rows come
    first), one allocated on 9 and freed on 8, one freed on 9 before 8
    allocates the same address again; query 10 of docs/sqlite.md takes time
    order, so exactly the last is left."""
    _need()
    ls, exe, funcs, log = _recursion_log()
    assert len(funcs) >= 3, funcs
    f1, f2, f3 = 1, 2, 3
    A, B, C = 0xA000, 0xB000, 0xC000

    def ev(tid, evs):
        hi, recs = ls.encode(evs)
        log.events(7, tid, recs, tsc_hi=hi)
    ev(9, [("entry", 100, f1), ("entry", 110, f2), ("alloc", 115, ls.ALLOC, 32, 16, B),
           ("tail", 120, f2), ("entry", 121, f3), ("alloc", 125, ls.FREE, 0, 0, C),
           ("exit", 130, f3), ("exit", 140, f1)])
    log.thread(7, 9, "first", tsc=150, flags=ls.THREAD_EXITED)
    ev(8, [("entry", 105, f1), ("alloc", 106, ls.ALLOC, 16, 16, A), ("exit", 107, f1),
           ("entry", 300, f2), ("alloc", 301, ls.FREE, 0, 0, B),
           ("alloc", 302, ls.ALLOC, 48, 16, C), ("exit", 304, f2)])
    ev(9, [("entry", 200, f2), ("entry", 210, f3), ("alloc", 215, ls.FREE, 0, 0, A),
           ("exit", 220, f3)])
    ev(30, [("entry", 350, f1), ("exit", 360, f1)])
    log.end(7, mono_ns=500)
    path = log.write(os.path.join(_dir(), "layout.sft"))
    db = os.path.join(_dir(), "layout.db")
    for sf in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = _convert(path, db, sftrace=sf)
        assert "in 2 runs" in p.stderr, p.stderr
        calls = _check_layout(db)
        byaddr = {int(r[1]): int(r[0]) for r in _sql(db, "SELECT id, address FROM function")}
        fn = {k: byaddr[funcs[k - 1]] for k in (f1, f2, f3)}
        assert _sql(db, "SELECT id, tid, calls, first_call, last_call FROM thread ORDER BY id") == \
            [["1", "9", "3", "1", "3"], ["2", "9", "2", "4", "5"], ["3", "30", "1", "6", "6"],
             ["4", "8", "2", "7", "8"]], _sql(db, "SELECT * FROM thread")
        got = [(c["function"], c["parent"], c["depth"], c["start_ns"], c["last_id"],
                c["prev_call"], c["flags"] & 3) for c in calls.values()]
        want = [(fn[f1], None, 0, 100, 3, None, 0), (fn[f2], 1, 1, 110, 2, None, 2),
                (fn[f3], 1, 1, 121, 3, None, 0),
                (fn[f2], None, 0, 200, 5, 2, 1), (fn[f3], 4, 1, 210, 5, 3, 0),
                (fn[f1], None, 0, 350, 6, 1, 0),
                (fn[f1], None, 0, 105, 7, 6, 0), (fn[f2], None, 0, 300, 8, 4, 0)]
        assert got == want, (got, want)
        assert _sql(db, "SELECT id, calls, last_call FROM function WHERE calls > 0 ORDER BY id") \
            == sorted([[str(fn[f1]), "3", "7"], [str(fn[f2]), "3", "8"],
                       [str(fn[f3]), "2", "5"]])
        allocs = _sql(db, "SELECT thread, call, ts_ns, kind, ptr FROM alloc ORDER BY id")
        assert allocs == [["1", "2", "115", "alloc", str(B)], ["1", "3", "125", "free", str(C)],
                          ["2", "5", "215", "free", str(A)], ["4", "7", "106", "alloc", str(A)],
                          ["4", "8", "301", "free", str(B)], ["4", "8", "302", "alloc", str(C)]], \
            allocs
        q10 = _doc_queries()[9]
        _check_plan(db, 10, q10)
        name2 = _one(db, "SELECT name FROM function WHERE id = %d" % fn[f2])
        assert _sql(db, q10) == [[name2, "1", "48"]], _sql(db, q10)
        # in id order block A would look still allocated (its free has the smaller id)
        old = q10.replace("(b.ts_ns, b.id) > (a.ts_ns, a.id)", "b.id > a.id")
        assert old != q10 and len(_sql(db, old)) == 2, _sql(db, old)
        # the timeline query (8) of thread 1 over [0, 125]: its three calls
        q8 = _doc_queries()[7].replace("1000000000", "125")
        assert [r[0] for r in _sql(db, q8)] == ["100", "110", "121"], _sql(db, q8)
        # query 5: outermost calls per thread
        busy = {r[1]: r[4] for r in _sql(db, _doc_queries()[4])}
        assert busy["30"] == "10", busy


def test_many_short_threads_share_runs():
    """40 threads that run one after the other (each tid's chunks before the
    next one's), the last 10 of them overlapping in pairs: the engine runs
    once for all the sequential ones and once more per overlap (lib/sqlout.c,
    run_all), not once per tid; each thread's calls are still a contiguous
    range, in the order the threads ran, with 1,024-call samples."""
    _need()
    ls, exe, funcs, log = _recursion_log()
    t, order = 1000, []

    def thread_events(n):
        nonlocal t
        evs = [("entry", t, 1)]
        for _ in range(n):
            evs += [("entry", t + 1, 2), ("exit", t + 2, 2)]
            t += 2
        evs.append(("exit", t + 1, 1))
        t += 5
        hi, recs = ls.encode(evs)
        return hi, recs
    for i in range(30):  # one after the other, each exits
        tid = 100 + (i * 37) % 30  # not in tid order
        hi, recs = thread_events(1500 if i == 3 else 3)
        log.events(7, tid, recs, tsc_hi=hi)
        log.thread(7, tid, "seq", tsc=t, flags=ls.THREAD_EXITED)
        order.append(tid)
    for i in range(5):  # pairs whose chunks interleave: a, b, a
        a, b = 200 + 2 * i, 201 + 2 * i
        ha, ra = thread_events(2)
        hb, rb = thread_events(2)
        ha2, ra2 = thread_events(2)
        log.events(7, a, ra, tsc_hi=ha)
        log.events(7, b, rb, tsc_hi=hb)
        log.events(7, a, ra2, tsc_hi=ha2)
    log.end(7, mono_ns=t + 10)
    path = log.write(os.path.join(_dir(), "short.sft"))
    db = os.path.join(_dir(), "short.db")
    for sf in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = _convert(path, db, sftrace=sf)
        assert "in 2 runs" in p.stderr and "warning" not in p.stderr, p.stderr
        _check_layout(db)
        rows = [[int(x) for x in r] for r in _sql(db, "SELECT tid, calls FROM thread ORDER BY id")]
        # first run: the 30 sequential threads in the order they ran, then
        # the first of each pair; second run: the other of each pair
        assert [r[0] for r in rows] == order + [200, 202, 204, 206, 208] + \
            [201, 203, 205, 207, 209], rows
        assert [r[1] for r in rows] == [1501 if i == 3 else 4 for i in range(30)] + [6] * 5 + \
            [3] * 5, rows
        assert _one(db, "SELECT count(*) FROM call_sample") == 40 + 1  # thread 4: 1,501 calls


def test_damage_seen_by_another_run():
    """A bad record in a chunk of tid 8, whose chunks interleave with tid 9's
    (so it is read by the second engine run, with a reader of its own): the
    database has everything readable, meta.damaged is 1 and convert exits 3
    saying so, as when the first reader finds the damage."""
    _need()
    ls, exe, funcs, log = _recursion_log()
    for tid, evs in ((9, [("entry", 100, 1), ("exit", 110, 1)]),
                     (8, [("entry", 105, 1), ("exit", 107, 1)]),
                     (9, [("entry", 200, 2), ("exit", 210, 2)]),
                     (8, [("entry", 300, 1), ("exit", 310, 1)])):
        hi, recs = ls.encode(evs)
        if tid == 8 and evs[0][1] == 300:
            recs = b"\xff" * 8 + recs[8:]  # an extended record longer than its chunk
        log.events(7, tid, recs, tsc_hi=hi)
    log.end(7, mono_ns=500)
    path = log.write(os.path.join(_dir(), "damage2.sft"))
    db = os.path.join(_dir(), "damage2.db")
    for sf in (tl.SFTRACE, tl.SFTRACE_ASAN):
        p = _convert(path, db, sftrace=sf, check=False)
        assert p.returncode == DAMAGED and "damaged log" in p.stderr and "in 2 runs" in p.stderr, \
            p.stderr
        assert _one(db, "SELECT value FROM meta WHERE key = 'damaged'") == 1
        assert _sql(db, "SELECT t.tid, c.start_ns FROM call c JOIN thread t ON t.id = c.thread "
                        "ORDER BY c.id") == [["9", "100"], ["9", "200"], ["8", "105"]]
        _check_layout(db)
