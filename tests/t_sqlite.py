"""t_sqlite.py - `sftrace convert --format sqlite` (lib/sqlout.c,
docs/sqlite.md), checked through the sqlite3 command: the schema, exact
call counts, parents, depths and self times of known programs, threads,
allocation records, every query of docs/sqlite.md, damaged logs and failed
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


def test_schema():
    _need()
    _, db, _ = _recursion()
    cols = {}
    for (table,) in _sql(db, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY 1"):
        cols[table] = [r[1] for r in _sql(db, "PRAGMA table_info(%s)" % table)]
    assert cols == {
        "meta": ["key", "value"],
        "process": ["id", "pid", "ppid", "name", "exe", "cmdline", "forked", "execed", "clock",
                    "start_ns", "end_ns", "end_reason"],
        "thread": ["id", "process", "pid", "tid", "name", "start_ns", "end_ns", "exited", "calls"],
        "object": ["id", "path", "build_id", "main"],
        "function": ["id", "name", "mangled", "file", "line", "object", "address"],
        "call": ["id", "thread", "function", "parent", "depth", "start_ns", "dur_ns", "self_ns",
                 "unfinished", "flags"],
        "alloc": ["id", "thread", "call", "ts_ns", "kind", "size", "align", "ptr"],
    }, cols
    idx = sorted(r[0] for r in _sql(db, "SELECT name FROM sqlite_schema WHERE type = 'index' "
                                        "AND name NOT LIKE 'sqlite_%'"))
    assert idx == ["alloc_call", "alloc_ptr", "call_function", "call_parent", "call_thread_start",
                   "function_name"], idx
    assert _sql(db, "SELECT name FROM sqlite_schema WHERE type = 'view'") == [["calls"]]
    assert _one(db, "SELECT value FROM meta WHERE key = 'schema_version'") == 1
    assert _sql(db, "PRAGMA integrity_check") == [["ok"]]
    # the call_function index serves a function's calls
    plan = " ".join(r[-1] for r in _sql(db, "EXPLAIN QUERY PLAN SELECT * FROM call WHERE "
                                            "function = 1 ORDER BY dur_ns"))
    assert "call_function" in plan, plan


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
    assert _one(db, "SELECT value FROM meta WHERE key = 'damaged'") == 0


def _doc_indexes():
    """The CREATE INDEX statements docs/sqlite.md gives for --no-indexes."""
    with open(DOC) as f:
        text = f.read()
    part = text[text.index("## Without indexes"):]
    block = re.search(r"```sql\n(.*?)```", part, re.S).group(1)
    return [l for l in block.splitlines() if l.startswith("CREATE INDEX")]


def test_no_indexes_many_flushes():
    """fib(25): 242,785 calls, several buffers of ended calls (65,536 each;
    the last holds main, id 1, so it is sorted, the others placed by id):
    --no-indexes gives the same rows in every table, the calls view, no
    index; the statements docs/sqlite.md gives then make the usual ones."""
    _need()
    log, db, p = _recursion(25, 10)
    assert tl.kv(p.stdout, "fib_calls") == 242785
    bare = os.path.join(_dir(), "rec_bare.db")
    for sf in (tl.SFTRACE, tl.SFTRACE_ASAN):
        q = _convert(log, bare, sftrace=sf, extra=["--no-indexes"])
        assert "views (no indexes)" in q.stderr, q.stderr
        assert _sql(bare, "SELECT name FROM sqlite_schema WHERE type = 'index' "
                          "AND name NOT LIKE 'sqlite_%'") == []
        assert _sql(bare, "SELECT name FROM sqlite_schema WHERE type = 'view'") == [["calls"]]
        for table in ("call", "thread", "process", "function", "object", "alloc"):
            a = _sql(db, "SELECT * FROM %s ORDER BY 1" % table)
            b = _sql(bare, "SELECT * FROM %s ORDER BY 1" % table)
            assert a == b, table
    n = 242785 + 11 + 1  # fib, descend(10), main
    assert _one(bare, "SELECT count(*) || ' ' || min(id) || ' ' || max(id) FROM call") == \
        "%d 1 %d" % (n, n)
    assert _one(bare, "SELECT count(*) FROM calls WHERE function = 'fib'") == 242785
    assert _one(bare, "SELECT count(*) FROM call c JOIN call p ON p.id = c.parent "
                      "WHERE c.depth != p.depth + 1 OR c.id <= p.id") == 0
    stmts = _doc_indexes()
    assert len(stmts) == 6, stmts
    _sql(bare, "\n".join(stmts))
    idx = sorted(r[0] for r in _sql(bare, "SELECT name FROM sqlite_schema WHERE type = 'index' "
                                          "AND name NOT LIKE 'sqlite_%'"))
    want = sorted(r[0] for r in _sql(db, "SELECT name FROM sqlite_schema WHERE type = 'index' "
                                         "AND name NOT LIKE 'sqlite_%'"))
    assert idx == want, (idx, want)
    # --no-indexes is refused for the other formats
    q = tl.run([tl.SFTRACE, "convert", "--no-indexes", log, "-o", os.path.join(_dir(), "x.pb")],
               check=False)
    assert q.returncode == 2 and "--no-indexes is for --format sqlite" in q.stderr, q.stderr


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
    # every work_leaf call's parent is a worker call on the same thread
    assert _one(db, "SELECT count(*) FROM call c JOIN call p ON p.id = c.parent WHERE "
                    "c.function = (SELECT id FROM function WHERE name = 'work_leaf') AND "
                    "p.function != (SELECT id FROM function WHERE name = 'worker')") == 0


def test_allocs():
    """convert_alloc.c: 40 allocations, 20 frees, a realloc (2 records) in
    main, 25 allocations on a second thread, each reported by note_alloc's
    tail call, so inside note_alloc's caller."""
    _need()
    prog = tl.build_c(os.path.join(tl.PROGS, "convert_alloc.c"),
                      flags=tl.WARN_CFLAGS + ["-I" + os.path.join(tl.ROOT, "include")],
                      libs=["-L" + tl.BUILD, "-lsftrace", "-Wl,-rpath," + tl.BUILD, "-lpthread"])
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
    prog = tl.build_c(os.path.join(tl.PROGS, "convert_alloc.c"),
                      flags=tl.WARN_CFLAGS + ["-I" + os.path.join(tl.ROOT, "include")],
                      libs=["-L" + tl.BUILD, "-lsftrace", "-Wl,-rpath," + tl.BUILD, "-lpthread"])
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


def test_doc_queries():
    """Every query of docs/sqlite.md runs against a real database and gives
    the answer it promises on recursion.c."""
    _need()
    _, db, _ = _recursion(15, 50)
    qs = _doc_queries()
    assert len(qs) == 10, len(qs)
    res = [_sql(db, q) for q in qs]
    assert sorted(r[0] for r in res[0]) == ["descend", "fib", "main"]  # top self time
    assert [int(r[2]) for r in res[0]] == sorted((int(r[2]) for r in res[0]), reverse=True)
    assert len(res[1]) == 10                                    # slowest fib calls
    assert res[2] == [["fib", "1972", res[2][0][2]], ["main", "1", res[2][1][2]]], res[2]
    assert sorted(r[0] for r in res[3]) == ["descend", "fib"]   # main's callees
    assert len(res[4]) == 1 and res[4][0][3] == "2025"          # one thread, 2025 calls
    assert len(res[5]) == 1 and len(res[5][0]) == 4             # percentiles
    assert [int(r[0]) for r in res[6]] == list(range(52))       # the deepest stack
    assert res[6][0][1] == "main" and {r[1] for r in res[6][1:]} == {"descend"}
    assert len(res[7]) == 50                                    # a timeline
    assert res[8] == []                                         # nothing unfinished
    assert res[9] == []                                         # no allocations


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
