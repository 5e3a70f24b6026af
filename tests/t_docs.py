"""t_docs.py - the documentation says what the tools do, so that it cannot
drift again without a test failing.

- README.md starts with `make demo` and `make test`, and `make demo` works.
- README's "Use" section, run as written: its clang line builds prog.c
  (tests/programs/readme_prog.c), and every line of its "Record, then look"
  block runs in a scratch directory with `sftrace` on PATH; what each prints
  is checked against the comment beside it in README and against the
  program's known calls.
- Every option a command's --help lists is in that command's section of the
  man page, and the other way round (the selection options have their own
  section); every option --help lists is accepted.
"""
import csv
import io
import os
import re
import shutil
import sqlite3

import tl

README = os.path.join(tl.ROOT, "README.md")
MAN = os.path.join(tl.ROOT, "docs", "sftrace.1")


def _readme():
    with open(README) as f:
        return f.read()


def _blocks(text):
    """The fenced sh blocks of a Markdown text, in order: [(the line before
    the block, [lines])]."""
    out = []
    for m in re.finditer(r"([^\n]*)\n\n?```sh\n(.*?)```", text, re.S):
        out.append((m.group(1), m.group(2).splitlines()))
    return out


def _command(line):
    """A block's line without its comment (a '#' after a space, outside
    quotes), or None for a comment or a blank line."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] == " "):
            line = line[:i]
            break
    return line.strip() or None


def _comment(line):
    i = line.find(" # ")
    return line[i + 3:].strip() if i >= 0 else ""


def test_readme_starts_with_make_demo_and_make_test():
    first = _blocks(_readme())[0]
    assert "fresh Debian 12" in first[0], first[0]
    cmds = [c for c in map(_command, first[1]) if c]
    assert cmds == ["make demo", "make test"], cmds


def test_make_demo():
    # README's first command (deps.sh is instant when the packages are
    # there, as they are for the suite to run at all), with the version the
    # tools under test were built with: in a tree edited since the build,
    # `make` would otherwise rebuild build/sftrace as "-dirty" under the
    # other tests' feet (run.py refuses such a skew, and so would record)
    with open(os.path.join(tl.BUILD, "gen", "version.h")) as f:
        version = re.search(r'#define SFTRACE_VERSION "([^"]+)"', f.read()).group(1)
    p = tl.run(["make", "demo", "SF_VERSION=" + version], cwd=tl.ROOT, timeout=300)
    out = p.stdout
    assert "fib(18) = 2584" in out, out
    m = re.search(r"sftrace record: (\d+) events, 5 threads, 1 process, 1 image, \d+ bytes "
                  r"written to build/demo/sf.log \(\d+\.\d\ds\)", p.stderr)
    assert m, p.stderr
    for what in ("== sftrace dump", "== sftrace report", "== sftrace graph", "flame.svg",
                 "sf.pb.gz"):
        assert what in out, (what, out)
    # the report's main, worker, sum_squares and square (examples/demo.c)
    for fn in ("main", "worker", "sum_squares", "square", "fib"):
        assert re.search(r"^ *[\d,]+ .*  %s$" % fn, out, re.M), (fn, out)


def _bindir(sftrace):
    """A directory holding `sftrace`, a link to the tool under test."""
    d = tl.outdir("docs", "bin-" + os.path.basename(os.path.dirname(sftrace)))
    link = os.path.join(d, "sftrace")
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(sftrace, link)
    return d


def _use_section():
    text = _readme()
    use = text.split("\n## Use\n", 1)[1].split("\n## ", 1)[0]
    blocks = _blocks(use)
    build = next(lines for before, lines in blocks if "XRay sleds" in before)
    look = next(lines for before, lines in blocks if "Record, then look" in before)
    return build, look


def _quoted_summary():
    """README's example of record's summary line, as a regex."""
    text = re.sub(r"\s+", " ", _readme())
    m = re.search(r"`(sftrace record: \d+ events, [^`]*)`", text)
    assert m, "README has no example of the record summary line"
    pat = re.escape(m.group(1))
    return re.sub(r"\d+(\\\.\d+)?", lambda d: r"\d+" + (r"\.\d+" if d.group(1) else ""), pat)


def test_readme_use_section_as_written():
    build, look = _use_section()
    c_line = next(c for c in map(_command, build) if c and c.startswith("clang"))
    assert c_line.endswith("prog.c -o prog"), c_line
    summary = _quoted_summary()
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        if not os.path.exists(sftrace):
            continue
        d = os.path.join(tl.OUT, "docs", "use-" + os.path.basename(os.path.dirname(sftrace)))
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        shutil.copy(os.path.join(tl.PROGS, "readme_prog.c"), os.path.join(d, "prog.c"))
        # record finds the runtime by itself (README): beside build/sftrace;
        # the ASan build's is in the install directory, $XDG_DATA_HOME/sftrace
        # (an empty one for build/sftrace, so that no copy in $HOME is found)
        data = os.path.join(d, "xdg")
        os.makedirs(os.path.join(data, "sftrace"))
        if sftrace == tl.SFTRACE_ASAN:
            os.symlink(tl.RUNTIME, os.path.join(data, "sftrace", "libsftrace.so"))
        env = {"PATH": _bindir(sftrace) + os.pathsep + os.environ["PATH"],
               "XDG_DATA_HOME": data}
        tl.run(["sh", "-c", c_line], cwd=d, env=env)
        outs = {}
        for line in look:
            cmd = _command(line)
            if not cmd:
                continue
            # the one placeholder: "args..." is the program's arguments
            cmd = cmd.replace("./prog args...", "./prog 3")
            p = tl.run(["bash", "-o", "pipefail", "-c", cmd], cwd=d, env=env, check=False,
                       timeout=120)
            # `dump | head` may end dump with SIGPIPE (141): head took its lines
            ok = p.returncode == 0 or ("| head" in cmd and p.returncode == 141)
            assert ok, "README's %r exited %d:\n%s" % (cmd, p.returncode, p.stderr[-2000:])
            assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
            outs[cmd] = (p, _comment(line))
        _check_use_outputs(d, outs, summary)


def _out(outs, start):
    k = [c for c in outs if c.startswith(start)]
    assert len(k) == 1, (start, list(outs))
    return outs[k[0]]


def _check_use_outputs(d, outs, summary):
    p, _ = _out(outs, "sftrace record")
    assert p.stdout == "args 3, child 0\n", p.stdout
    # README's example of the summary line has the line's form
    assert re.search("^%s$" % summary, p.stderr, re.M), (summary, p.stderr)
    assert re.search(r"sftrace record: 416 events, 4 threads, 2 processes, 2 images, ",
                     p.stderr), p.stderr
    # dump: the header names the columns the comment lists
    p, comment = _out(outs, "sftrace dump")
    header = p.stdout.splitlines()[0].lstrip("# ").split("\t")
    assert header[:len(comment.split())] == comment.split(), (header, comment)
    assert len(p.stdout.splitlines()) == 10, p.stdout
    # convert: a Perfetto trace that the checker accepts
    import t_convert
    summ = t_convert._check(os.path.join(d, "sf.pb.gz"))
    assert summ, summ
    # the SQLite database: a row per call
    db = sqlite3.connect(os.path.join(d, "sf.db"))
    try:
        n = db.execute("SELECT count(*) FROM call JOIN function ON call.function = function.id "
                       "WHERE function.name = 'parse_line'").fetchone()[0]
    finally:
        db.close()
    assert n == 201, n
    # report: the columns the comment names, and the known call counts
    p, comment = _out(outs, "sftrace report")
    cols = [w.strip() for w in comment.split(":", 1)[1].split(",")]
    lines = p.stdout.splitlines()
    # the column header follows the "# ..." lines
    h = next(i for i, ln in enumerate(lines) if not ln.startswith("#"))
    assert lines[h].split()[:len(cols)] == cols, (lines[h], cols)
    counts = {ln.split()[-1]: int(ln.split()[0].replace(",", "")) for ln in lines[h + 1:]}
    # main: the parent's, and the child's, inherited at the fork (clipped)
    assert counts == {"main": 2, "run_jobs": 1, "worker": 2, "load_config": 1, "parse_args": 1,
                      "parse_line": 201, "parse_num": 1}, counts
    # graph 'parse': the trees beneath parse_args and parse_line
    p, _ = _out(outs, "sftrace graph sf.log")
    rows = [(ln.rindex(ln.split()[-1]), ln.split()[-1], ln.split()[-2])
            for ln in p.stdout.splitlines() if not ln.startswith("#") and "function" not in ln]
    # the two trees in either order (children by total: the times decide)
    assert sorted((name, calls) for _, name, calls in rows) == \
        [("parse_args", "1"), ("parse_line", "201"), ("parse_num", "1")], p.stdout
    top = min(col for col, _, _ in rows)
    i = [name for _, name, _ in rows].index("parse_args")
    assert rows[i + 1][1] == "parse_num" and rows[i + 1][0] > top, p.stdout  # beneath it
    assert all(col == top for col, name, _ in rows if name != "parse_num"), p.stdout
    # flame: an SVG
    with open(os.path.join(d, "flame.svg")) as f:
        svg = f.read()
    assert svg.startswith("<?xml") or svg.startswith("<svg"), svg[:100]
    assert "run_jobs" in svg and "load_config" in svg, "no run_jobs or load_config frame"
    # info: the things the comment lists
    p, comment = _out(outs, "sftrace info")
    for what in ("processes", "threads", "objects", "clock", "span", "size"):
        assert re.search(r"^%s\b" % what, p.stdout, re.M), (what, p.stdout)
    # memory: load_config's 4096 bytes are the leak, in its stage
    p, _ = _out(outs, "sftrace memory")
    assert "3 allocations, 2 frees, 0 reallocs" in p.stdout, p.stdout
    assert re.search(r"4\.0 kB\s+1\s+100\.0%\s+main > load_config", p.stdout), p.stdout
    assert re.search(r"^\s+1\s+\S+ \S+\s+5\.0 kB .* load_config$", p.stdout, re.M), p.stdout
    assert re.search(r"^\s+2\s+\S+ \S+\s+256 B .* run_jobs$", p.stdout, re.M), p.stdout


def test_readme_rustc_line_as_written():
    build, _ = _use_section()
    rs_line = next(c for c in map(_command, build) if c and " rustc " in " " + c)
    assert rs_line.endswith("prog_rs.rs -o prog_rs"), rs_line
    if not tl.have("rustc"):
        raise tl.Skip("rustc not found")
    d = os.path.join(tl.OUT, "docs", "rust")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copy(os.path.join(tl.PROGS, "readme_prog_rs.rs"), os.path.join(d, "prog_rs.rs"))
    p = tl.run(["sh", "-c", rs_line], cwd=d, check=False, timeout=300)
    if p.returncode != 0 and "instrument-xray" in p.stderr:
        raise tl.Skip("this rustc has no -Zinstrument-xray: %s" % p.stderr.strip()[:200])
    assert p.returncode == 0, p.stderr
    log = os.path.join(d, "sf.log")
    r = tl.record([os.path.join(d, "prog_rs")], log)
    assert r.stdout == "144\n", r.stdout
    assert re.search(r"sftrace record: \d+ events, 3 threads, 1 process, 1 image, ", r.stderr), \
        r.stderr
    rep = tl.run([tl.SFTRACE, "report", "-q", "--limit", "0", "--format", "csv", log]).stdout
    calls = {row["function"]: int(row["calls"]) for row in csv.DictReader(io.StringIO(rep))}
    assert calls.get("prog_rs::main") == 1 and calls.get("prog_rs::fib", 0) > 0, calls


def _report_calls(sftrace, log, extra=()):
    rep = tl.run([sftrace, "report", "-q", "--limit", "0", "--format", "csv"] + list(extra)
                 + [log]).stdout
    return {row["function"]: int(row["calls"]) for row in csv.DictReader(io.StringIO(rep))}


def _snapshots(sftrace, log):
    import json
    info = json.loads(tl.run([sftrace, "info", "--format", "json", log]).stdout)
    return [s["why"] for s in info.get("snapshots", [])]


def test_readme_long_running_section_as_written():
    """The lines of README's "Long-running programs" block that need no
    running process ($PID, `&`: tests/t_live.py does those), run as written
    on tests/programs/readme_server.c, each checked against its comment."""
    text = _readme()
    sec = text.split("\n## Long-running programs", 1)[1].split("\n## ", 1)[0]
    lines = _blocks(sec)[0][1]
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        d = os.path.join(tl.OUT, "docs", "server-" + os.path.basename(os.path.dirname(sftrace)))
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(os.path.join(d, "xdg", "sftrace"))
        if sftrace == tl.SFTRACE_ASAN:
            os.symlink(tl.RUNTIME, os.path.join(d, "xdg", "sftrace", "libsftrace.so"))
        tl.build_c("readme_server.c", out=os.path.join(d, "server"))
        env = {"PATH": _bindir(sftrace) + os.pathsep + os.environ["PATH"],
               "XDG_DATA_HOME": os.path.join(d, "xdg")}
        log = os.path.join(d, "sf.log")
        ran = []
        for line in lines:
            cmd = _command(line)
            if not cmd or "$PID" in cmd or cmd.endswith("&"):
                continue
            p = tl.run(["bash", "-c", cmd], cwd=d, env=env, check=False, timeout=120)
            assert p.returncode == 0, "README's %r exited %d:\n%s" % (cmd, p.returncode, p.stderr)
            assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
            ran.append(cmd)
            if cmd.startswith("sftrace record"):
                assert p.stdout == "served 197\n", (cmd, p.stdout)
            if cmd == "sftrace record -f t.f -- ./server":
                # only inside handle_request calls: it and its callee
                assert _report_calls(sftrace, log) == {"handle_request": 50,
                                                        "parse_request": 50}, cmd
            elif cmd == "sftrace record --ring 64M -- ./server":
                assert _snapshots(sftrace, log) == ["end of the image"], cmd
            elif "--snapshot-on '^fail'" in cmd:
                # at fail_request's entry: requests 0..30
                assert _snapshots(sftrace, log) == ["trigger", "end of the image"], cmd
                c = _report_calls(sftrace, log, ["--snapshot", "1"])
                assert (c["query"], c["fail_request"]) == (31, 1), c
            elif "--snapshot-slower-than 200ms" in cmd:
                # after query 10's 250 ms: requests 0..10
                assert _snapshots(sftrace, log) == ["slow call", "end of the image"], cmd
                c = _report_calls(sftrace, log, ["--snapshot", "1"])
                assert c["query"] == 11 and "fail_request" not in c, c
            elif cmd == "sftrace info sf.log":
                assert re.search(r"^snapshots \(2;", p.stdout, re.M), p.stdout
            elif cmd == "sftrace report --snapshot 2 sf.log":
                assert re.search(r"^ +50 .* query$", p.stdout, re.M), p.stdout
        assert len(ran) == 7, ran


# ---- help texts against the man page -----------------------------------------

def _man_sections():
    with open(MAN) as f:
        man = f.read()
    secs = {}
    for m in re.finditer(r'^\.SS ("[^"]+"|\S+)\n(.*?)(?=^\.SS |^\.SH )', man, re.M | re.S):
        secs[m.group(1).strip('"')] = m.group(2).replace("\\-", "-")
    return secs


def _options(text):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])", text))


def _commands():
    p = tl.run([tl.SFTRACE, "--help"])
    text = p.stdout.split("\ncommands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in text.splitlines()]


def test_help_and_man_page_list_the_same_options():
    secs = _man_sections()
    shared = _options(secs["Selection options"])
    # options named in a section as another command's ("record --ring",
    # "filter --trace-on") are references, not options of that section
    refs = {"ctl": {"--trace-on", "--trace-off"}}
    bad = []
    for cmd in _commands():
        h = tl.run([tl.SFTRACE, cmd, "--help"]).stdout
        mine = h.split("\nselection (", 1)[0]
        hopts = _options(mine) - {"-h", "--help"}
        mopts = _options(secs[cmd]) - {"-h", "--help"} - refs.get(cmd, set())
        for o in sorted(hopts - mopts - shared):
            bad.append("%s: %s is in --help, not in the man page" % (cmd, o))
        for o in sorted(mopts - hopts - shared):
            bad.append("%s: %s is in the man page, not in --help" % (cmd, o))
    assert not bad, "\n".join(bad)


def test_every_option_in_help_is_accepted():
    bad = []
    for cmd in _commands():
        h = tl.run([tl.SFTRACE, cmd, "--help"]).stdout
        for o in sorted(set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)", h, re.M))):
            # the option with a value and without: neither may be unknown
            pre = ["999999"] if cmd in ("ctl", "snapshot", "attach") else []
            for args in ([o, "1", "/nonexistent.log"], [o, "/nonexistent.log"]):
                p = tl.run([tl.SFTRACE, cmd] + pre + args, check=False, timeout=30)
                if "unrecognized option" in p.stderr or \
                        "unknown or incomplete option '%s'" % o in p.stderr:
                    bad.append("%s %s: %s" % (cmd, o, p.stderr.splitlines()[0]))
                    break
    assert not bad, "\n".join(bad)


def test_readme_names_the_runtime_variables():
    # the variables a user sets: in README's table and in the man page
    text = _readme()
    with open(MAN) as f:
        man = f.read()
    for v in ("SFTRACE_OUTPUT_FILE", "SFTRACE_FILTER", "SFTRACE_SETUP_THREAD_ONLY",
              "SFTRACE_CLOCK"):
        assert "| `%s" % v in text, v
        assert ".B %s" % v in man or ".BR %s" % v in man, v
