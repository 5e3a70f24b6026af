"""t_filter.py - tests of `sftrace filter` and of recording with its filters.

The first half checks the filter files themselves: the exact set of functions
selected by -r (mangled and demangled names, C, C++ and Rust), --list,
--exclude, the `a` flag of --args, the mode line, the build-id (against
`readelf -n`) and the addresses (against `nm` and an xray_instr_map parsed
here), then the error cases. The second half records programs with the
filters (`sftrace record -f`) and checks the dump holds exactly the expected
functions and call counts, in selected and descendants mode, that a stale
filter is reported, that broken filter files leave the program running
untraced with a message, and that --args shows the values the program
passed. There is no timing test: speed is measured by hand (see the report
of issue 4).
"""
import collections
import os
import re
import shutil
import stat
import struct

import tl

FLAGS = tl.WARN_CFLAGS + ["-fno-optimize-sibling-calls"]

# filter_calls.c's functions; N is its argument, W the worker thread's calls
CALLS_FUNCS = {"main", "leaf", "worker", "inner_a", "inner_b", "rec", "outer", "other"}
W = 7

NS_FUNCS = {
    "app::parse::token(int)", "app::parse::line(char const*)", "app::Engine::helper(long)",
    "app::Engine::run(int)", "util::token(int)", "util::log(char const*)", "main",
    "local_fn(int)", "int app::twice<int>(int)", "double app::twice<double>(double)",
}

FLINE_RE = re.compile(r"^f 0x([0-9a-f]+) ([-a]) (.+)$")


def _dir(*parts):
    return tl.outdir("filter", *parts)


def _calls_bin(variant=None, pie=True):
    name = "filter_calls"
    flags = list(FLAGS)
    if variant is not None:
        name += "_v%d" % variant
        flags.append("-DVARIANT=%d" % variant)
    if not pie:
        name += "_nopie"
        flags += ["-fno-pie", "-no-pie"]
    return tl.build_c("filter_calls.c", out=os.path.join(tl.outdir("bin"), name), flags=flags,
                      libs=["-lpthread"])


def _ns_bin():
    return tl.build_c("filter_ns.cc", out=os.path.join(tl.outdir("bin"), "filter_ns"),
                      flags=FLAGS, compiler="clang++")


def _args_bin():
    return tl.build_c("filter_args.c", flags=FLAGS)


def _lib_bins():
    lib = tl.build_c("filter_lib.c", flags=FLAGS, shared=True)
    prog = tl.build_c("filter_uselib.c", flags=FLAGS, libs=[lib])
    return lib, prog


def _rust_bin(mangling):
    if not tl.have("rustc"):
        raise tl.Skip("rustc not found")
    src = os.path.join(tl.PROGS, "rust_threads.rs")
    out = os.path.join(tl.outdir("bin"), "filter_rust_threads_" + mangling)
    extra = ["-Zunstable-options", "-Csymbol-mangling-version=legacy"] if mangling == "legacy" \
        else ["-Csymbol-mangling-version=v0"]
    if tl._stale(out, [src, __file__]):
        tl.run(["rustc", "-O", "-Zinstrument-xray=always", "--crate-name", "rust_threads"]
               + extra + [src, "-o", out], env={"RUSTC_BOOTSTRAP": "1"}, timeout=300)
    return out


def _sftrace_filter(args, check=False):
    return tl.run([tl.SFTRACE, "filter"] + list(args), check=check)


class Filter:
    """A parsed filter file; checks the format of every line on the way."""

    def __init__(self, path):
        with open(path) as f:
            self.text = f.read()
        lines = self.text.split("\n")
        assert lines[-1] == "", "%s: no newline at the end" % path
        lines = lines[:-1]
        assert lines[0] == "sftrace-filter 1", lines[:1]
        assert lines[1].startswith("object "), lines[1]
        self.object = lines[1][len("object "):]
        assert re.match(r"^build-id [0-9a-f]{2,}$", lines[2]), lines[2]
        self.build_id = lines[2][len("build-id "):]
        assert lines[3] in ("mode selected", "mode descendants"), lines[3]
        self.mode = lines[3][len("mode "):]
        self.funcs = []  # (addr, flags, name), file order
        for line in lines[4:]:
            m = FLINE_RE.match(line)
            assert m, "%s: bad line %r" % (path, line)
            self.funcs.append((int(m.group(1), 16), m.group(2), m.group(3)))
        addrs = [a for a, _, _ in self.funcs]
        assert addrs == sorted(set(addrs)), "%s: addresses not sorted and unique" % path

    def names(self):
        return set(n for _, _, n in self.funcs)

    def flags(self):
        return {n: fl for _, fl, n in self.funcs}

    def addrs(self):
        return {n: a for a, _, n in self.funcs}


def _make(obj, args, name, rc=0):
    """Run `sftrace filter -p obj ARGS -o DIR/name.filter`; return (Filter or None, proc)."""
    out = os.path.join(_dir(), name + ".filter")
    if os.path.exists(out):
        os.unlink(out)
    p = _sftrace_filter(["-p", obj] + list(args) + ["-o", out])
    assert p.returncode == rc, "filter %s: exit %d, expected %d\nstderr:\n%s" % (
        name, p.returncode, rc, p.stderr)
    if rc:
        assert not os.path.exists(out), "a failed run left %s" % out
        return None, p
    return Filter(out), p


def _summary(p):
    m = re.search(r"selected (\d+) of (\d+) instrumented functions in (.+?)(?: \(|,|$)",
                  p.stderr, re.M)
    assert m, p.stderr
    return int(m.group(1)), int(m.group(2)), m.group(3)


def _readelf_build_id(path):
    m = re.search(r"Build ID: ([0-9a-f]+)", tl.run(["readelf", "-n", path]).stdout)
    assert m
    return m.group(1)


def _nm(path):
    """Defined function symbols: name -> address (nm, not demangled)."""
    syms = {}
    for line in tl.run(["nm", "--defined-only", path]).stdout.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "tTwWiI":
            syms[f[2]] = int(f[0], 16)
    return syms


def _xray_section(data):
    """(header offset, sh_addr, sh_offset, sh_size) of xray_instr_map in an ELF image."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    secs = []
    for i in range(shnum):
        hdr = shoff + i * shentsize
        name, typ, flags, addr, off, size = struct.unpack_from("<IIQQQQ", data, hdr)
        secs.append((name, hdr, addr, off, size))
    stroff = secs[shstrndx][3]
    for name, hdr, addr, off, size in secs:
        if data[stroff + name:data.index(b"\0", stroff + name)] == b"xray_instr_map":
            return hdr, addr, off, size
    raise AssertionError("no xray_instr_map")


def _xray_functions(path):
    """The function addresses of an ELF file's xray_instr_map, parsed here."""
    with open(path, "rb") as f:
        data = f.read()
    _, addr, off, size = _xray_section(data)
    assert size % 32 == 0
    funcs = set()
    for i in range(size // 32):
        sled, fn, kind, always, version = struct.unpack_from("<qqBBB", data, off + 32 * i)
        assert version == 2, version
        funcs.add((addr + 32 * i + 8 + fn) & (2 ** 64 - 1))
    return funcs


# ---- the filter file ----------------------------------------------------------


def test_regex_selects_exact_set_c():
    prog = _calls_bin()
    flt, p = _make(prog, ["-r", "^inner_"], "regex-c")
    assert flt.names() == {"inner_a", "inner_b"}, flt.names()
    assert _summary(p) == (2, len(CALLS_FUNCS), prog)
    assert flt.mode == "selected"
    assert set(flt.flags().values()) == {"-"}
    assert flt.object == os.path.realpath(prog)
    assert flt.build_id == _readelf_build_id(prog)
    syms = _nm(prog)
    for name, addr in flt.addrs().items():
        assert addr == syms[name], (name, hex(addr), hex(syms[name]))
    # several -r: the union; an unanchored pattern matches inside names
    flt, _ = _make(prog, ["-r", "^inner_a$", "-r", "ea", "-r", "^rec$"], "regex-c-union")
    assert flt.names() == {"inner_a", "leaf", "rec"}, flt.names()


def test_all_functions_and_addresses_match_xray_map():
    # with neither -r nor --list every instrumented function is selected; the
    # addresses are the ones of the map (parsed here) and of the symbols (nm),
    # in a PIE, a non-PIE executable and a shared object
    lib, _ = _lib_bins()
    for obj, want in ((_calls_bin(), CALLS_FUNCS), (_calls_bin(pie=False), CALLS_FUNCS),
                      (lib, {"lib_leaf", "lib_work"})):
        flt, p = _make(obj, [], "all-" + os.path.basename(obj))
        assert flt.names() == want, (obj, flt.names())
        assert set(flt.addrs().values()) == _xray_functions(obj), obj
        syms = _nm(obj)
        assert flt.addrs() == {n: syms[n] for n in want}, obj
        assert _summary(p)[:2] == (len(want), len(want)), p.stderr
    assert min(Filter(os.path.join(_dir(), "all-filter_calls_nopie.filter")).addrs().values()) \
        >= 0x400000


def test_exclude():
    prog = _calls_bin()
    flt, p = _make(prog, ["-r", "^(inner_.|rec|leaf)$", "--exclude", "_b$", "--exclude", "^l"],
                   "exclude")
    assert flt.names() == {"inner_a", "rec"}, flt.names()
    assert _summary(p)[0] == 2
    # --exclude alone: everything but what it names
    flt, _ = _make(prog, ["--exclude", "^(main|leaf)$"], "exclude-only")
    assert flt.names() == CALLS_FUNCS - {"main", "leaf"}


def test_cpp_mangled_and_demangled_names():
    prog = _ns_bin()
    flt, p = _make(prog, [], "ns-all")
    assert flt.names() == NS_FUNCS, flt.names()
    cases = [
        (["-r", "^app::parse::"], {"app::parse::token(int)", "app::parse::line(char const*)"}),
        (["-r", "^_ZN3app5parse"], {"app::parse::token(int)", "app::parse::line(char const*)"}),
        (["-r", r"::token\(int\)$"], {"app::parse::token(int)", "util::token(int)"}),
        (["-r", "^app::", "--exclude", "parse|twice"],
         {"app::Engine::helper(long)", "app::Engine::run(int)"}),
        (["-r", "twice<"], {"int app::twice<int>(int)", "double app::twice<double>(double)"}),
        (["-r", "^_ZN3app5twiceIdE"], {"double app::twice<double>(double)"}),
        (["-r", r"^local_fn\(int\)$"], {"local_fn(int)"}),
        (["-r", "^_ZL8local_fni$"], {"local_fn(int)"}),
        # a pattern matching the mangled name of one and the demangled of another
        (["-r", "^_ZN4util3log|Engine::run"], {"util::log(char const*)", "app::Engine::run(int)"}),
    ]
    for i, (args, want) in enumerate(cases):
        flt, _ = _make(prog, args, "ns-%d" % i)
        assert flt.names() == want, (args, flt.names())
    syms = _nm(prog)
    assert flt.addrs()["util::log(char const*)"] == syms["_ZN4util3logEPKc"]


def test_list_mangled_and_demangled():
    prog = _ns_bin()
    lst = os.path.join(_dir(), "ns.list")
    with open(lst, "w") as f:
        f.write("# functions to trace\n"
                "\n"
                "_ZN4util5tokenEi\n"
                "   app::Engine::run(int)  \n"
                "main\r\n"
                "\t# an indented comment\n"
                "app::Engine::run(int)\n"
                "app::parse::token\n"  # a regex: matches app::parse::token(int)
                "no::such::function(int)\n")
    flt, p = _make(prog, ["--list", lst], "list")
    assert flt.names() == {"util::token(int)", "app::Engine::run(int)", "main",
                           "app::parse::token(int)"}, flt.names()
    # the lines that matched nothing are reported with their line
    assert "%s:9: 'no::such::function(int)' matches no instrumented function" % lst in p.stderr, \
        p.stderr
    assert p.stderr.count("warning") == 1, p.stderr
    # --exact: whole names only
    flt, p = _make(prog, ["--list", lst, "--exact"], "list-exact")
    assert flt.names() == {"util::token(int)", "app::Engine::run(int)", "main"}, flt.names()
    assert "%s:8: 'app::parse::token' names no instrumented function" % lst in p.stderr, p.stderr
    assert "%s:9: 'no::such::function(int)' names no" % lst in p.stderr, p.stderr
    assert "_ZN4util5tokenEi" not in p.stderr and "run(int)'" not in p.stderr, p.stderr
    # with -r: the union; --exclude applies to both
    flt, _ = _make(prog, ["--list", lst, "--exact", "-r", "^app::parse::line", "--exclude",
                          "^main$"], "list-regex")
    assert flt.names() == {"util::token(int)", "app::Engine::run(int)",
                           "app::parse::line(char const*)"}, flt.names()
    # a C program: plain names
    lst2 = os.path.join(_dir(), "calls.list")
    with open(lst2, "w") as f:
        f.write("outer\nrec\n#leaf\n")
    for extra in ([], ["--exact"]):
        flt, p = _make(_calls_bin(), ["--list", lst2] + extra, "list-c")
        assert flt.names() == {"outer", "rec"}, (extra, flt.names())
        assert "warning" not in p.stderr, p.stderr


def test_list_lines_are_regexes():
    # one regex per line, as -r takes it (unanchored, mangled or demangled
    # names); a line also names the function it equals exactly, so a C++ name
    # with parentheses (as a regex they are a group) still selects itself
    prog = _ns_bin()
    lst = os.path.join(_dir(), "re.list")
    with open(lst, "w") as f:
        f.write("^app::Engine::\n"                  # 1: run and helper
                "token\n"                           # 2: app::parse::token, util::token
                "app::parse::line(char const*)\n"   # 3: itself, exactly
                "# ^util::log\n"                    # 4: a comment
                "^_ZN4util3log\n"                   # 5: a mangled name
                "operator**(\n"                     # 6: not a regex, names nothing
                "nomatch_[0-9]+\n"                  # 7: matches nothing
                "twice<double>\n")                  # 8: double app::twice<double>(double)
    flt, p = _make(prog, ["--list", lst], "list-re")
    assert flt.names() == {"app::Engine::run(int)", "app::Engine::helper(long)",
                           "app::parse::token(int)", "util::token(int)",
                           "app::parse::line(char const*)", "util::log(char const*)",
                           "double app::twice<double>(double)"}, flt.names()
    assert re.search(r"%s:6: 'operator\*\*\(' names no instrumented function, and is no "
                     r"regular expression \(.*at offset \d+\)" % re.escape(lst), p.stderr), \
        p.stderr
    assert "%s:7: 'nomatch_[0-9]+' matches no instrumented function" % lst in p.stderr, p.stderr
    assert p.stderr.count("warning") == 2, p.stderr
    # the same lines, exact: only line 3 names a function
    flt, p = _make(prog, ["--list", lst, "--exact"], "list-re-exact")
    assert flt.names() == {"app::parse::line(char const*)"}, flt.names()
    for n in (1, 2, 5, 6, 7, 8):
        assert "%s:%d: " % (lst, n) in p.stderr, (n, p.stderr)
    assert "%s:3: " % lst not in p.stderr and "%s:4: " % lst not in p.stderr, p.stderr
    # a list selects the same functions as the same patterns given with -r
    # (here for the lines that are regexes matching something)
    flt_r, _ = _make(prog, ["-r", "^app::Engine::", "-r", "token", "-r", "^_ZN4util3log",
                            "-r", "twice<double>"], "list-re-r")
    flt_l, _ = _make(prog, ["--list", lst], "list-re-again")
    assert flt_l.names() == flt_r.names() | {"app::parse::line(char const*)"}, \
        (flt_l.names(), flt_r.names())
    # more than 10 lines matching nothing: 10 reported, then a count
    lst3 = os.path.join(_dir(), "many.list")
    with open(lst3, "w") as f:
        f.write("".join("absent_%d\n" % i for i in range(13)) + "main\n")
    flt, p = _make(prog, ["--list", lst3], "list-many")
    assert flt.names() == {"main"}, flt.names()
    assert p.stderr.count("matches no instrumented function") == 10, p.stderr
    assert "... and 3 more names of the list" in p.stderr, p.stderr
    # --exact without --list is a usage error
    _, p = _make(prog, ["-r", "main", "--exact"], "exact-alone", rc=2)
    assert "--exact" in p.stderr, p.stderr


def test_args_flags_and_mode():
    prog = _args_bin()
    flt, p = _make(prog, ["-r", "^(mix6|two|text|plain)$", "--args", "mix6|two", "--args",
                          "^text"], "args")
    assert flt.flags() == {"mix6": "a", "two": "a", "text": "a", "plain": "-"}, flt.flags()
    assert flt.mode == "selected"
    assert "(3 with arguments)" in p.stderr, p.stderr
    # --args marks, it does not select
    flt, p = _make(prog, ["-r", "^plain$", "--args", "^main$"], "args-unselected")
    assert flt.flags() == {"plain": "-"}, flt.flags()
    assert "--args '^main$' matches no selected function" in p.stderr, p.stderr
    flt, _ = _make(prog, ["-r", "^mix6$", "--descendants"], "descendants")
    assert flt.mode == "descendants" and flt.names() == {"mix6"}


def test_verbose_lists_selected():
    prog = _ns_bin()
    flt, p = _make(prog, ["-r", "^app::", "-v"], "verbose")
    assert p.stdout.splitlines() == [n for _, _, n in flt.funcs], p.stdout
    # the template instances' demangled names start with their return type
    assert flt.names() == {"app::parse::token(int)", "app::parse::line(char const*)",
                           "app::Engine::helper(long)", "app::Engine::run(int)"}, flt.names()
    _, p = _make(prog, ["-r", "^app::"], "quiet")
    assert p.stdout == ""


def test_nothing_selected_warns():
    prog = _calls_bin()
    flt, p = _make(prog, ["-r", "^no_such_function$"], "none")
    assert flt.funcs == []
    assert _summary(p)[:2] == (0, len(CALLS_FUNCS))
    assert "-r '^no_such_function$' matches no instrumented function" in p.stderr, p.stderr
    assert "warning: no function was selected" in p.stderr, p.stderr
    # a pattern that matches nothing is reported even when another selects
    flt, p = _make(prog, ["-r", "^leaf$", "-r", "^nope$"], "one-none")
    assert flt.names() == {"leaf"} and "'^nope$' matches no" in p.stderr, p.stderr


def test_rust_names():
    for mangling, mangled in (("v0", r"^_RNvCs\w+_12rust_threads4leaf$"),
                              ("legacy", r"^_ZN12rust_threads4leaf17h[0-9a-f]{16}E$")):
        prog = _rust_bin(mangling)
        flt, _ = _make(prog, ["-r", "^rust_threads::(leaf|worker)$"], "rust-" + mangling)
        assert flt.names() == {"rust_threads::leaf", "rust_threads::worker"}, flt.names()
        flt, _ = _make(prog, ["-r", mangled], "rust-mangled-" + mangling)
        assert flt.names() == {"rust_threads::leaf"}, (mangling, flt.names())
        lst = os.path.join(_dir(), "rust-%s.list" % mangling)
        with open(lst, "w") as f:
            f.write("rust_threads::worker\n")
            if mangling == "v0":  # a '#' inside a name is not a comment
                f.write("std::rt::lang_start::<()>::{closure#0}\n")
        flt, p = _make(prog, ["--list", lst], "rust-list-" + mangling)
        want = {"rust_threads::worker"}
        if mangling == "v0":
            want.add("std::rt::lang_start::<()>::{closure#0}")
        assert flt.names() == want, (mangling, flt.names(), p.stderr)


def test_bad_regex():
    prog = _calls_bin()
    for opt, pat, msg, off in (("-r", "(", "missing closing parenthesis", 1),
                               ("-r", "a)", "unmatched closing parenthesis", 1),
                               ("--exclude", "a{2,1}", "numbers out of order", 5),
                               ("--args", "[z-a]", "range out of order", 3)):
        _, p = _make(prog, ["-r", "^leaf$", opt, pat], "badre", rc=2)
        assert "'%s'" % pat in p.stderr and msg in p.stderr and "offset %d" % off in p.stderr, \
            (opt, pat, p.stderr)


def test_object_errors():
    d = _dir("errors")
    plain = os.path.join(d, "plain")
    src = os.path.join(tl.PROGS, "filter_lib.c")
    tl.run(["clang", "-O2", "-shared", "-fPIC", src, "-o", plain])  # no -fxray-instrument
    nobid = os.path.join(d, "no_build_id")
    tl.run(["clang"] + tl.XRAY_CFLAGS + ["-Wl,--build-id=none", src, "-shared", "-fPIC",
                                          "-o", nobid])
    assert "Build ID" not in tl.run(["readelf", "-n", nobid]).stdout
    text = os.path.join(d, "text")
    with open(text, "w") as f:
        f.write("not an object\n")
    truncated = os.path.join(d, "truncated")
    with open(_calls_bin(), "rb") as f:
        data = f.read()
    with open(truncated, "wb") as f:
        f.write(data[:len(data) // 2])  # the section headers are at the end
    cases = [
        (os.path.join(d, "missing"), "No such file or directory"),
        (d, "not a regular file"),
        (text, "not an ELF file"),
        (truncated, "truncated"),
        (plain, "not built with XRay instrumentation"),
        (nobid, "--build-id"),
    ]
    if os.geteuid() != 0:
        unreadable = os.path.join(d, "unreadable")
        shutil.copy(_calls_bin(), unreadable)
        os.chmod(unreadable, 0)
        cases.append((unreadable, "Permission denied"))
    for obj, msg in cases:
        _, p = _make(obj, ["-r", "x"], "objerr", rc=1)
        assert obj in p.stderr and msg in p.stderr, (obj, p.stderr)
        assert p.stderr.count("\n") <= 3, p.stderr
    assert [f for f in os.listdir(_dir()) if ".tmp" in f] == []


def test_corrupt_xray_map():
    with open(_calls_bin(), "rb") as f:
        data = bytearray(f.read())
    hdr, addr, off, size = _xray_section(data)
    cases = []
    v3 = bytearray(data)
    v3[off + 32 * 3 + 18] = 3  # the version byte of entry 3
    cases.append(("version3", v3, "entry 3 has version 3"))
    odd = bytearray(data)
    struct.pack_into("<Q", odd, hdr + 32, size - 8)  # sh_size
    cases.append(("oddsize", odd, "bad size (%d bytes" % (size - 8)))
    v1 = bytearray(data)  # absolute addresses left to relocations: zero in the file
    for i in range(size // 32):
        v1[off + 32 * i + 18] = 1
        struct.pack_into("<q", v1, off + 32 * i + 8, 0)
    cases.append(("version1-zero", v1, "holds no function address"))
    for name, image, msg in cases:
        path = os.path.join(_dir("errors"), name)
        with open(path, "wb") as f:
            f.write(image)
        _, p = _make(path, [], "xraymap-" + name, rc=1)
        assert path in p.stderr and msg in p.stderr, (name, p.stderr)
    # version 1 with absolute addresses is read as such
    v1 = bytearray(data)
    for i in range(size // 32):
        fn, = struct.unpack_from("<q", data, off + 32 * i + 8)
        struct.pack_into("<q", v1, off + 32 * i + 8, addr + 32 * i + 8 + fn)
        v1[off + 32 * i + 18] = 1
    path = os.path.join(_dir("errors"), "version1")
    with open(path, "wb") as f:
        f.write(v1)
    flt, _ = _make(path, [], "xraymap-version1")
    assert flt.names() == CALLS_FUNCS and set(flt.addrs().values()) == _xray_functions(_calls_bin())


def test_same_output_under_asan():
    # the command built with ASan and UBSan writes the same files
    if not os.path.exists(tl.SFTRACE_ASAN):
        raise tl.Skip("%s not built" % tl.SFTRACE_ASAN)
    lst = os.path.join(_dir(), "asan.list")
    with open(lst, "w") as f:
        f.write("# c++\n_ZN4util5tokenEi\napp::Engine::run(int)\nnot::there\n")
    runs = [(_ns_bin(), ["--list", lst, "-r", "parse", "--exclude", "line", "--args", "token",
                         "-v"]),
            (_calls_bin(), ["-r", "^(outer|rec)$", "--descendants"]),
            (_calls_bin(), ["-r", "("]),
            (os.path.join(_dir(), "no-such-object"), [])]
    if tl.have("rustc"):
        runs.append((_rust_bin("v0"), ["-r", "rust_threads::"]))
    for i, (obj, args) in enumerate(runs):
        outs = []
        for k, sf in enumerate((tl.SFTRACE, tl.SFTRACE_ASAN)):
            out = os.path.join(_dir(), "asan-%d-%d.filter" % (i, k))
            if os.path.exists(out):
                os.unlink(out)
            p = tl.run([sf, "filter", "-p", obj] + args + ["-o", out], check=False)
            assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
            text = open(out).read() if os.path.exists(out) else None
            outs.append((p.returncode, p.stdout, p.stderr.replace(out, "OUT"), text))
        assert outs[0] == outs[1], (obj, args, outs)


def test_list_file_errors():
    prog = _calls_bin()
    missing = os.path.join(_dir(), "no-such.list")
    _, p = _make(prog, ["--list", missing], "listerr", rc=1)
    assert missing in p.stderr and "No such file" in p.stderr, p.stderr
    _, p = _make(prog, ["--list", _dir()], "listerr", rc=1)
    assert _dir() in p.stderr, p.stderr


def test_usage():
    prog = _calls_bin()
    out = os.path.join(_dir(), "usage.filter")
    for args in ([], ["-p", prog], ["-o", out], ["-p", prog, "-o", out, "--bogus"],
                 ["-p", prog, "-o", out, "extra"], ["-p", prog, "-o", out, "-r"]):
        p = _sftrace_filter(args)
        assert p.returncode == 2 and "usage: sftrace filter" in p.stderr, (args, p.returncode,
                                                                           p.stderr)
    p = _sftrace_filter(["--help"])
    assert p.returncode == 0 and "usage: sftrace filter" in p.stdout


def test_atomic_write():
    prog = _calls_bin()
    out = os.path.join(_dir("atomic"), "f.filter")
    old = os.path.join(_dir("atomic"), "old.filter")
    for path in (out, old):
        if os.path.exists(path):
            os.unlink(path)
    with open(out, "w") as f:
        f.write("previous contents\n")
    os.link(out, old)  # replaced by rename, the old inode keeps its contents
    p = _sftrace_filter(["-p", prog, "-r", "^leaf$", "-o", out], check=True)
    assert Filter(out).names() == {"leaf"}, p.stderr
    with open(old) as f:
        assert f.read() == "previous contents\n"
    assert os.stat(out).st_ino != os.stat(old).st_ino
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~umask
    assert sorted(os.listdir(_dir("atomic"))) == ["f.filter", "old.filter"]
    # an output that cannot be written: an error, nothing left behind
    bad = os.path.join(_dir("atomic"), "no-such-dir", "f.filter")
    p = _sftrace_filter(["-p", prog, "-r", "^leaf$", "-o", bad])
    assert p.returncode == 1 and bad in p.stderr, p.stderr
    p = _sftrace_filter(["-p", prog, "-r", "^leaf$", "-o", _dir("atomic")])
    assert p.returncode == 1 and _dir("atomic") in p.stderr, p.stderr
    assert sorted(os.listdir(_dir("atomic"))) == ["f.filter", "old.filter"]


# ---- recording with filters ---------------------------------------------------


def _log(name):
    return os.path.join(_dir("logs"), name + ".log")


def _record(cmd, name, filters=(), env=None, complete=True):
    extra = []
    for f in filters:
        extra += ["-f", f]
    log = _log(name)
    p = tl.record(cmd, log, env=env, extra=extra, check=False)
    assert p.returncode == 0, "%s: record exited %d\nstdout:\n%s\nstderr:\n%s" % (
        name, p.returncode, p.stdout[-3000:], p.stderr[-3000:])
    events, _ = tl.dump(log)
    if complete:
        _, chunks = tl.read_log(log)
        # END chunks count function events; args and ret lines are extras
        tl.check_log_complete(chunks, [e for e in events
                                       if e.kind in ("entry", "exit", "tailcall")])
    tl.check_time_order(events)
    stacks = tl.check_nesting(events)
    assert all(not s for s in stacks.values()), stacks
    return p, events


def _exact(events, want, tid=None, kinds=("entry", "exit")):
    """Entries and exits per function (on tid, if given) are exactly want."""
    for kind in kinds:
        got = dict(tl.counts(events, kind, tid=tid))
        assert got == want, "%s counts%s: got %s, want %s" % (
            kind, "" if tid is None else " on tid %d" % tid, got, want)


def _filter_file(obj, args, name):
    flt, _ = _make(obj, args, name)
    return os.path.join(_dir(), name + ".filter"), flt


def _calls_run(filters, name, n=4, env=None):
    prog = _calls_bin()
    p, ev = _record([prog, str(n)], name, filters=filters, env=env)
    out = p.stdout
    assert tl.kv(out, "n") == n and tl.kv(out, "variant") == 0, out
    pid, tid, wtid = tl.kv(out, "pid"), tl.kv(out, "tid"), tl.kv(out, "worker_tid")
    assert set(e.pid for e in ev) <= {pid}
    assert set(e.tid for e in ev) <= {tid, wtid}
    return ev, tid, wtid


def test_record_selected_regex():
    n = 4
    f, _ = _filter_file(_calls_bin(), ["-r", "^(inner_a|leaf)$"], "rec-sel")
    ev, tid, wtid = _calls_run([f], "selected", n)
    _exact(ev, {"inner_a": n, "leaf": 2 * n + 6}, tid=tid)
    _exact(ev, {"leaf": W}, tid=wtid)
    _exact(ev, {"inner_a": n, "leaf": 2 * n + 6 + W})
    assert set(e.kind for e in ev) == {"entry", "exit"}


def test_record_selected_list_and_exclude():
    n = 3
    lst = os.path.join(_dir(), "rec.list")
    with open(lst, "w") as f:
        f.write("# the list\nouter\nother\nrec\nworker\n")
    f, _ = _filter_file(_calls_bin(), ["--list", lst, "--exclude", "^other$"], "rec-list")
    ev, tid, wtid = _calls_run([f], "selected-list", n)
    _exact(ev, {"outer": 1, "rec": 8}, tid=tid)
    _exact(ev, {"worker": 1}, tid=wtid)


def test_record_selected_env():
    # SFTRACE_FILTER instead of -f: the same
    n = 2
    f, _ = _filter_file(_calls_bin(), ["-r", "^(rec|inner_b)$"], "rec-env")
    ev, tid, _ = _calls_run([], "selected-env", n, env={"SFTRACE_FILTER": f})
    _exact(ev, {"rec": 8, "inner_b": 2}, tid=tid)
    _exact(ev, {"rec": 8, "inner_b": 2})


def test_record_descendants():
    n = 5
    prog = _calls_bin()
    cases = [
        # the selected function and all it calls on its thread; not the
        # worker thread it starts and joins, not what runs before or after
        (["-r", "^outer$"], {"outer": 1, "inner_a": n, "inner_b": 1, "rec": 4, "leaf": n + 3}, {}),
        # a selected function inside another: recording goes on after it returns
        (["-r", "^(outer|inner_a)$"],
         {"outer": 1, "inner_a": n, "inner_b": 1, "rec": 4, "leaf": n + 3}, {}),
        # recursion of a selected function
        (["-r", "^rec$"], {"rec": 8, "leaf": 2}, {}),
        # selected in two places
        (["-r", "^inner_b$"], {"inner_b": 2, "leaf": 4}, {}),
        # on another thread
        (["-r", "^worker$"], {}, {"worker": 1, "leaf": W}),
        # --list and --exclude work the same in this mode
        (["-r", "^(other|inner_b)$", "--exclude", "inner"],
         {"other": 1, "leaf": n + 3, "inner_b": 1, "rec": 4}, {}),
    ]
    for i, (args, main_want, worker_want) in enumerate(cases):
        f, flt = _filter_file(prog, args + ["--descendants"], "rec-desc-%d" % i)
        assert flt.mode == "descendants"
        ev, tid, wtid = _calls_run([f], "descendants-%d" % i, n)
        _exact(ev, main_want, tid=tid)
        _exact(ev, worker_want, tid=wtid)


def test_record_cpp():
    prog = _ns_bin()
    f, _ = _filter_file(prog, ["-r", "^app::parse::"], "rec-ns")
    p, ev = _record([prog, "5", "3"], "cpp", filters=[f])
    assert tl.kv(p.stdout, "lines") == 5
    _exact(ev, {"app::parse::line(char const*)": 5, "app::parse::token(int)": 15})
    f, _ = _filter_file(prog, ["-r", "^app::Engine::run", "--descendants"], "rec-ns-desc")
    p, ev = _record([prog, "5", "3"], "cpp-desc", filters=[f])
    _exact(ev, {"app::Engine::run(int)": 1, "app::Engine::helper(long)": 3})


def test_record_shared_library():
    lib, prog = _lib_bins()
    calls = 40
    # a filter for the library only: the program's own functions are not traced
    flib, _ = _filter_file(lib, ["-r", "^lib_leaf$"], "rec-lib")
    p, ev = _record([prog], "lib-only", filters=[flib])
    assert tl.kv(p.stdout, "calls") == calls
    _exact(ev, {"lib_leaf": 2 * calls})
    # one filter per object
    fmain, _ = _filter_file(prog, ["-r", "^main_work$"], "rec-uselib")
    p, ev = _record([prog], "lib-and-main", filters=[flib, fmain])
    _exact(ev, {"lib_leaf": 2 * calls, "main_work": calls})
    p, ev = _record([prog], "lib-and-main-env", env={"SFTRACE_FILTER": flib + ":" + fmain})
    _exact(ev, {"lib_leaf": 2 * calls, "main_work": calls})


def test_record_dlopen():
    # filters apply to objects loaded later with dlopen, by build-id
    plugin = tl.build_c("plugin.c", flags=tl.WARN_CFLAGS, shared=True)
    plugin_b = tl.build_c("plugin_b.c", flags=tl.WARN_CFLAGS, shared=True)
    prog = tl.build_c("dlopen.c", flags=tl.WARN_CFLAGS, libs=["-lpthread", "-ldl"])
    fa, _ = _filter_file(plugin, ["-r", "^plugin_helper$"], "rec-plugin")
    fb, _ = _filter_file(plugin_b, ["-r", "^b_helper$"], "rec-plugin-b")
    p, ev = _record([prog, plugin, plugin_b], "dlopen", filters=[fa, fb])
    assert re.search(r"^round 2 calls 30 acc 960 unloaded 1 ", p.stdout, re.M), p.stdout
    _exact(ev, {"plugin_helper": 200, "b_helper": 60})


def test_record_descendants_across_objects():
    # descendants of the main program's run_plugin reach into both plugins:
    # "every function that runs on the same thread while a selected function
    # is active" (issue 4), though no filter names the plugins
    plugin = tl.build_c("plugin.c", flags=tl.WARN_CFLAGS, shared=True)
    plugin_b = tl.build_c("plugin_b.c", flags=tl.WARN_CFLAGS, shared=True)
    prog = tl.build_c("dlopen.c", flags=tl.WARN_CFLAGS, libs=["-lpthread", "-ldl"])
    fm, _ = _filter_file(prog, ["-r", "^run_plugin$", "--descendants"], "rec-dlopen-desc")
    p, ev = _record([prog, plugin, plugin_b], "dlopen-desc", filters=[fm])
    _exact(ev, {"run_plugin": 2, "plugin_work": 130, "plugin_helper": 200, "b_helper": 60})


def test_record_rust():
    for mangling in ("v0", "legacy"):
        prog = _rust_bin(mangling)
        f, _ = _filter_file(prog, ["-r", "^rust_threads::leaf$"], "rec-rust-" + mangling)
        p, ev = _record([prog], "rust-" + mangling, filters=[f])
        threads = re.findall(r"^thread \d+ tid (\d+) calls (\d+)", p.stdout, re.M)
        m = re.search(r"^main tid (\d+) calls (\d+)$", p.stdout, re.M)
        assert len(threads) == 4 and m, p.stdout
        for tid, calls in threads + [m.groups()]:
            _exact(ev, {"rust_threads::leaf": int(calls)}, tid=int(tid))


def test_record_stale_filter():
    # the filter was made, then the program rebuilt: record says so, once,
    # and the program runs (untraced: no filter names the new object)
    d = _dir("stale")
    prog = os.path.join(d, "filter_calls")
    shutil.copy(_calls_bin(variant=0), prog)
    f, flt = _filter_file(prog, ["-r", "^leaf$"], "stale")
    shutil.copy(_calls_bin(variant=1), prog)
    assert _readelf_build_id(prog) != flt.build_id
    log = _log("stale")
    p = tl.record([prog, "3"], log, extra=["-f", f], check=False)
    assert p.returncode == 0, p.stderr
    assert tl.kv(p.stdout, "variant") == 1 and tl.kv(p.stdout, "n") == 3, p.stdout
    lines = [line for line in p.stderr.splitlines() if f in line]
    assert len(lines) == 1, "want one line about %s in:\n%s" % (f, p.stderr)
    assert "build-id" in lines[0] and flt.build_id in lines[0], lines[0]
    events, _ = tl.dump(log)
    assert events == [], events[:5]


def test_record_stale_filter_env():
    # the same with the filter in SFTRACE_FILTER instead of -f
    d = _dir("stale-env")
    prog = os.path.join(d, "filter_calls")
    shutil.copy(_calls_bin(variant=0), prog)
    f, flt = _filter_file(prog, ["-r", "^leaf$"], "stale-env")
    shutil.copy(_calls_bin(variant=1), prog)
    log = _log("stale-env")
    p = tl.record([prog, "3"], log, env={"SFTRACE_FILTER": f}, check=False)
    assert p.returncode == 0 and tl.kv(p.stdout, "variant") == 1, (p.returncode, p.stderr)
    lines = [line for line in p.stderr.splitlines() if f in line]
    assert len(lines) == 1 and "build-id" in lines[0], \
        "want one line about %s and its build-id in:\n%s" % (f, p.stderr)
    assert "Build with XRay instrumentation" not in p.stderr, p.stderr
    events, _ = tl.dump(log)
    assert events == [], events[:5]


# Filter files that must be refused: (name, contents, the line the message
# names or None). Given with record -f, record refuses the file before the
# command starts (exit 2, the program not run, no log); in SFTRACE_FILTER
# the program still runs, untraced. Either way a message names the file.
def _bad_filters(good):
    lines = good.split("\n")
    fline = next(i for i, line in enumerate(lines) if line.startswith("f "))
    return [
        ("garbage", b"\x7fELF\x02\x01\x01\x00\xff\xfe garbage \x00\x01\n\x00", None),
        ("empty", b"", None),
        ("newer-version", good.replace("sftrace-filter 1", "sftrace-filter 2").encode(), 1),
        ("other-format", b"# uftrace-style filter\nouter\nleaf\n", 1),
        ("no-magic", "\n".join(lines[1:]).encode(), 1),
        ("truncated-in-f-line", ("\n".join(lines[:fline + 1])[:-len(lines[fline]) + 6]).encode(),
         fline + 1),
        ("truncated-in-header", good[:good.index("build-id") + 5].encode(), None),
        ("no-build-id", "\n".join(l for l in lines if not l.startswith("build-id")).encode(),
         None),
        ("bad-build-id", good.replace("build-id ", "build-id xyz").encode(), 3),
        ("bad-mode", good.replace("mode selected", "mode everything").encode(), 4),
        ("bad-flags", "\n".join(lines[:fline] + [lines[fline].replace(" - ", " z ")]
                                + lines[fline + 1:]).encode(), fline + 1),
        ("bad-address", "\n".join(lines[:fline] + ["f zz - leaf"] + lines[fline + 1:]).encode(),
         fline + 1),
        ("unsorted", "\n".join(lines[:fline] + [lines[fline + 1], lines[fline]]
                               + lines[fline + 2:]).encode(), fline + 2),
        ("unknown-line", good.replace("mode selected", "mode selected\nhello world").encode(), 5),
    ]


_bad_runs = []


def _record_bad_filters():
    """Record filter_calls with each bad filter, by -f and by SFTRACE_FILTER;
    [(case, how, path, line, proc, log)], made once for the tests below."""
    if _bad_runs:
        return _bad_runs
    prog = _calls_bin()
    good_path, flt = _filter_file(prog, ["-r", "^(leaf|rec)$"], "good")
    assert len(flt.funcs) == 2
    with open(good_path) as f:
        good = f.read()
    # the good one works
    ev, _, _ = _calls_run([good_path], "good", 2)
    _exact(ev, {"leaf": 2 * 2 + 6 + W, "rec": 8})
    for name, data, line in _bad_filters(good):
        path = os.path.join(_dir("bad"), name + ".filter")
        with open(path, "wb") as f:
            f.write(data)
        for how in ("-f", "env"):
            log = _log("bad-%s-%s" % (name, how))
            if how == "-f":
                p = tl.record([prog, "2"], log, extra=["-f", path], check=False)
            else:
                p = tl.record([prog, "2"], log, env={"SFTRACE_FILTER": path}, check=False)
            _bad_runs.append((name, how, path, line, p, log))
    return _bad_runs


def test_record_bad_filter_files():
    # -f: refused before the command runs (exit 2, no log); SFTRACE_FILTER:
    # the program runs and exits normally, untraced. A message names the
    # file (and the line, when one line is at fault)
    failures = []
    for name, how, path, line, p, log in _record_bad_filters():
        why = []
        if how == "-f":
            if p.returncode != 2:
                why.append("exit %d, not 2" % p.returncode)
            if p.stdout:
                why.append("the program ran")
            if os.path.exists(log):
                why.append("record created the log before refusing")
        elif p.returncode != 0:
            why.append("exit %d" % p.returncode)
        elif "sum " not in p.stdout:
            why.append("the program did not finish")
        msgs = [m for m in p.stderr.splitlines() if path in m]
        if not msgs:
            why.append("no message names the file")
        elif line is not None and not any(re.search(r"\bline %d\b|:%d:" % (line, line), m)
                                          for m in msgs):
            why.append("the message does not name line %d" % line)
        if os.path.exists(log):
            d = tl.run([tl.SFTRACE, "dump", log], check=False)
            if d.returncode != 0:
                why.append("dump failed: %s" % d.stderr.strip())
            elif tl.parse_dump(d.stdout):
                why.append("traced %d events" % len(tl.parse_dump(d.stdout)))
        if why:
            failures.append("%s (%s): %s\n    stderr: %s" % (name, how, ", ".join(why),
                                                              p.stderr.strip()[-600:]))
    assert not failures, "\n".join(failures)


def test_record_bad_filter_not_called_stale():
    # a filter that was refused is not also reported as made for a rebuilt
    # binary ("was it rebuilt?"): that would send the user the wrong way
    bad = sorted(set("%s (%s)" % (name, how) for name, how, path, _, p, _ in _record_bad_filters()
                     if any(path in m and "rebuilt" in m for m in p.stderr.splitlines())))
    assert not bad, "refused filters also called stale: " + ", ".join(bad)


def test_record_missing_filter_file():
    prog = _calls_bin()
    missing = os.path.join(_dir(), "no-such.filter")
    log = _log("missing-filter")
    p = tl.record([prog, "2"], log, env={"SFTRACE_FILTER": missing}, check=False)
    assert p.returncode == 0 and "sum " in p.stdout, (p.returncode, p.stderr)
    assert missing in p.stderr, p.stderr
    if os.path.exists(log):
        events, _ = tl.dump(log)
        assert events == [], events[:5]


def test_record_args():
    prog = _args_bin()
    f, _ = _filter_file(prog, ["-r", "^(mix6|two|text|plain)$", "--args", "^(mix6|two|text)$"],
                        "rec-args")
    argv = ["0x11", "0x22", "-3", "0x7fffffffffff", "0", "-0x8000000000000000", "-5",
            "123456", "hello, world"]
    p, ev = _record([prog] + argv, "args", filters=[f])
    out = p.stdout
    mask = 2 ** 64 - 1

    def hexes(extra):
        return [int(x, 16) for x in extra]

    calls = collections.defaultdict(list)  # func -> [(args, ret)]
    for i, e in enumerate(ev):
        if e.kind == "entry" and e.func != "plain":
            a = ev[i + 1]
            assert (a.kind, a.func, a.tid) == ("args", e.func, e.tid), (e, a)
            assert len(a.extra) == 6, a
            calls[e.func].append([hexes(a.extra), None])
        if e.kind == "exit" and e.func != "plain":
            r = ev[i + 1]
            assert (r.kind, r.func, r.tid) == ("ret", e.func, e.tid), (e, r)
            assert len(r.extra) == 1, r
            calls[e.func][-1][1] = hexes(r.extra)[0]
    # plain was selected without arguments: no args or ret lines
    assert [e.kind for e in ev if e.func == "plain"] == ["entry", "exit"], \
        [e for e in ev if e.func == "plain"]
    assert collections.Counter(e.kind for e in ev) == {"entry": 6, "exit": 6, "args": 5,
                                                        "ret": 5}
    rounds = re.findall(r"^mix6 (\d+) (.+) ret (\w+)$", out, re.M)
    assert len(rounds) == 3 == len(calls["mix6"]), (out, calls["mix6"])
    for (r, vals, ret), (got_args, got_ret) in zip(rounds, calls["mix6"]):
        want = [int(v, 16) for v in vals.split()]
        assert got_args == want, (r, [hex(x) for x in got_args], [hex(x) for x in want])
        assert got_ret == int(ret, 16), (r, hex(got_ret), ret)
    assert want[5] == 0x8000000000000002 and want[2] == (-1) & mask  # round 2: -3 + 2
    # int arguments: only the low 32 bits of a register are defined
    x, y, ret = re.search(r"^two (\w+) (\w+) ret (\w+)$", out, re.M).groups()
    (got_args, got_ret), = calls["two"]
    assert [v & 0xffffffff for v in got_args[:2]] == [int(x, 16), int(y, 16)], got_args
    assert got_ret & 0xffffffff == int(ret, 16)
    ptr, n, ret = re.search(r"^text (\w+) (\w+) ret (\w+)$", out, re.M).groups()
    (got_args, got_ret), = calls["text"]
    assert got_args[0] == int(ptr, 16) and got_args[1] & 0xffffffff == int(n, 16), got_args
    assert got_ret == int(ret, 16)


def test_record_args_descendants():
    # --args in descendants mode: the selected function's arguments are
    # recorded, and only its (the `a` flag is per function)
    prog = _args_bin()
    f, flt = _filter_file(prog, ["-r", "^main$", "--descendants", "--args", "^mix6$"],
                          "rec-args-desc")
    assert flt.flags() == {"main": "-"}  # mix6 is not selected: no flag
    f, flt = _filter_file(prog, ["-r", "^(main|mix6)$", "--descendants", "--args", "^mix6$"],
                          "rec-args-desc")
    assert flt.flags() == {"main": "-", "mix6": "a"}
    argv = ["1", "2", "3", "4", "5", "6", "7", "8", "xyz"]
    p, ev = _record([prog] + argv, "args-desc", filters=[f])
    _exact(ev, {"main": 1, "mix6": 3, "two": 1, "text": 1, "plain": 1})
    args = [e for e in ev if e.kind == "args"]
    rets = [e for e in ev if e.kind == "ret"]
    assert [e.func for e in args] == ["mix6"] * 3 and [e.func for e in rets] == ["mix6"] * 3, \
        (args, rets)
    assert [int(x, 16) for x in args[2].extra] == [3, 4, 5, 6, 7, 8], args[2]
    assert int(rets[0].extra[0], 16) == 1 + 4 + 9 + 16 + 25 + 36
