"""t_syms.py - the symbolizer's function names and source lines.

Every XRay function of a C, C++ and Rust program (several compile units
each) is named in one synthesized log, and `sftrace dump -l` must give each
exactly the name and file:line that a `// @NAME` marker in the source says
(a marker may list names, separated by " | "). Built as a PIE, a non-PIE
and a shared object, with the DWARF in a separate debug file found through
.gnu_debuglink, and as one compile unit of 3000 functions (the case whose
cost was quadratic, issue 10). bench/symsbench.c, linked with the tools'
lib/ objects, checks sf_syms_set_lines(s, 0): the same names, no lines.

What the markers say is the function's declaration (DW_AT_decl_line: the
line with its name), as uftrace and debuggers show it, for C functions, C++
methods (through DW_AT_specification), functions inside namespaces (every
Rust function, C++ namespaces) and header functions alike. Two libdw 0.188
behaviours had hidden it (and made most functions answer with the line
table's opening brace): dwarf_decl_file reads clang's DWARF 5 file index 0
(the CU's main file) as "no file", and dwarf_getscopes never looks inside
namespace DIEs (they have no addresses); lib/symbols.c handles both. The
line table's first row after the sled is the answer only for a function
without a declaration DIE.
"""
import os
import re

import logsynth as ls
import tl

XRAY = ["-O2", "-g", "-fxray-instrument", "-fxray-instruction-threshold=1"]
C_SRCS = ["syms_main.c", "syms_lib.c", "syms.h"]
CC_SRCS = ["syms_main.cc", "syms_lib.cc", "syms.hh"]


def _dir(*parts):
    return tl.outdir("syms", *parts)


def _build(name, cmd, srcs):
    out = os.path.join(_dir("bin"), name)
    if tl._stale(out, [os.path.join(tl.PROGS, s) for s in srcs] + [__file__]):
        tl.run(cmd + ["-o", out], cwd=tl.PROGS)
    return out


def _markers(srcs):
    """{name: (basename, line)} from the '// @' markers of srcs."""
    want = {}
    for src in srcs:
        with open(os.path.join(tl.PROGS, src)) as f:
            for i, line in enumerate(f.read().split("\n")):
                m = re.search(r"// @(.*)$", line)
                if not m:
                    continue
                for name in m.group(1).split(" | "):
                    assert name not in want, "marker %r twice" % name
                    want[name] = (src, i + 1)
    return want


def _answers(obj, sftrace, path=None, bid=None):
    """[(name, file, line)] from `dump -l` of a log with one entry event for
    every XRay function of obj (recorded as loaded from path)."""
    funcs = ls.xray_functions(obj)
    assert funcs, obj
    log = ls.Log(create_mono_ns=0)
    log.process(1, clock=ls.MONO)
    log.object(1, 1, funcs, path or obj, ls.build_id(obj) if bid is None else bid)
    _, r = ls.encode([("entry", i + 1, i + 1) for i in range(len(funcs))])
    log.events(1, 1, r)
    p = tl.run([sftrace, "dump", "-l", log.write(os.path.join(_dir(), "all.sft"))])
    assert p.stderr == "", p.stderr
    out = []
    for e in tl.parse_dump(p.stdout):
        src = e.extra[0]
        if src == "-":
            out.append((e.func, None, 0))
        else:
            file, line = src.rsplit(":", 1)
            out.append((e.func, file, int(line)))
    assert len(out) == len(funcs), (len(out), len(funcs))
    return out


def _check(obj, srcs, present, others=None, path=None, bid=None):
    """Every function of obj with a marker in srcs has its marked file and
    line; the names in present are all there; any other function is
    accepted only by others(name, file, line)."""
    want = _markers(srcs)
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        got = _answers(obj, sftrace, path, bid)
        seen = set()
        for name, file, line in got:
            if name not in want:
                assert others and others(name, file, line), (obj, name, file, line)
                continue
            seen.add(name)
            assert file, (obj, name, "no source line")
            # absolute: relative DWARF 5 names are joined to the CU's comp_dir
            assert os.path.isabs(file) and os.path.normpath(file) == \
                os.path.join(tl.PROGS, want[name][0]), (obj, name, file, want[name])
            assert line == want[name][1], (obj, name, file, line, want[name])
        missing = sorted(set(present) - seen)
        assert not missing, (obj, missing, got)


def _elf_type(path):
    return tl.run(["readelf", "-h", path]).stdout.split("Type:")[1].split()[0]


def _cus(path):
    info = tl.run(["readelf", "--debug-dump=info", path]).stdout
    return len(re.findall(r"DW_TAG_compile_unit", info))


C_ALL = ["syms_leaf", "syms_mid", "main", "syms_hdr_twice", "syms_lib_add", "syms_lib_static",
         "syms_lib_run"]
CC_ALL = ["Counter::bump()", "file_static(int)", "main", "shapes::Shape::~Shape()",
          "shapes::Rect::~Rect()", "shapes::Rect::area() const", "int shapes::twice<int>(int)",
          "double shapes::twice<double>(double)", "hdr_inline(int)",
          "shapes::Shape::scaled(int) const", "shapes::detail::widen(int)", "lib_entry(int)"]


def test_c_pie_two_units():
    exe = _build("c_pie", ["clang"] + XRAY + ["-fPIE", "-pie", "syms_main.c", "syms_lib.c"], C_SRCS)
    assert _elf_type(exe) == "DYN" and _cus(exe) == 2
    _check(exe, C_SRCS, C_ALL)
    # the header's static function: one copy in each compile unit, both named
    got = _answers(exe, tl.SFTRACE)
    assert len([g for g in got if g[0] == "syms_hdr_twice"]) == 2, got


def test_c_non_pie():
    exe = _build("c_nopie", ["clang"] + XRAY + ["-fno-pie", "-no-pie", "syms_main.c",
                                                 "syms_lib.c"], C_SRCS)
    assert _elf_type(exe) == "EXEC"
    _check(exe, C_SRCS, C_ALL)


def test_c_shared_object():
    so = _build("libsyms.so", ["clang"] + XRAY + ["-shared", "-fPIC", "syms_lib.c"], C_SRCS)
    assert _elf_type(so) == "DYN"
    _check(so, C_SRCS, ["syms_hdr_twice", "syms_lib_add", "syms_lib_static", "syms_lib_run"])


def _split_debug(exe, name):
    """exe stripped of everything, its DWARF and .symtab in name.debug
    beside it, linked by .gnu_debuglink."""
    d = _dir("debuglink")
    dbg = os.path.join(d, name + ".debug")
    stripped = os.path.join(d, name)
    tl.run(["objcopy", "--only-keep-debug", exe, dbg])
    tl.run(["objcopy", "--strip-all", "--add-gnu-debuglink=" + dbg, exe, stripped])
    assert not ls.symbols(stripped)
    assert ls.build_id(stripped) == ls.build_id(exe)
    return stripped


def test_c_separate_debug_file():
    exe = _build("c_pie", ["clang"] + XRAY + ["-fPIE", "-pie", "syms_main.c", "syms_lib.c"], C_SRCS)
    stripped = _split_debug(exe, "c_prog")
    _check(stripped, C_SRCS, C_ALL)


def test_cpp_methods_templates_namespaces_headers():
    exe = _build("cc_pie", ["clang++"] + XRAY + ["syms_main.cc", "syms_lib.cc"], CC_SRCS)
    assert _cus(exe) == 2
    _check(exe, CC_SRCS, CC_ALL)


def test_cpp_shared_and_separate_debug_file():
    so = _build("libsyms_cc.so", ["clang++"] + XRAY + ["-shared", "-fPIC", "syms_lib.cc"], CC_SRCS)
    present = ["shapes::Shape::scaled(int) const", "shapes::detail::widen(int)", "lib_entry(int)",
               "hdr_inline(int)", "int shapes::twice<int>(int)", "shapes::Rect::area() const"]
    _check(so, CC_SRCS, present)
    _check(_split_debug(so, "libsyms_cc.so"), CC_SRCS, present)


def _rust(mangling):
    if not tl.have("rustc"):
        raise tl.Skip("rustc not found")
    flags = ["-Zunstable-options"] if mangling == "legacy" else []
    cmd = ["env", "RUSTC_BOOTSTRAP=1", "rustc", "-O", "-g", "-Zinstrument-xray=always",
           "-Ccodegen-units=4", "-Csymbol-mangling-version=" + mangling] + flags + ["syms_rs.rs"]
    return _build("rs_" + mangling, cmd, ["syms_rs.rs"])


def _rust_other(name, file, line):
    """Functions of the standard library, and the allocator shims (no
    DWARF), are not the test program's."""
    if name.startswith("__rustc::"):
        return file is None
    return file is not None and file.startswith("/rustc/") and line > 0


RS = {
    "legacy": ["<syms_rs::geometry::Square as syms_rs::geometry::Area>::area",
               "syms_rs::geometry::Square::grow", "syms_rs::util::pick",
               "syms_rs::util::deep::apply", "syms_rs::top_level", "syms_rs::run::{{closure}}",
               "syms_rs::run", "syms_rs::main"],
    "v0": ["<syms_rs::geometry::Square as syms_rs::geometry::Area>::area",
           "<syms_rs::geometry::Square>::grow", "syms_rs::util::pick::<u32>",
           "syms_rs::util::pick::<u64>", "syms_rs::util::deep::apply", "syms_rs::top_level",
           "syms_rs::run::{closure#0}", "syms_rs::run", "syms_rs::main"],
}


def test_rust_legacy_mangling():
    exe = _rust("legacy")
    assert _cus(exe) >= 2
    _check(exe, ["syms_rs.rs"], RS["legacy"], _rust_other)
    # both instances of the generic function, one name (legacy has no types)
    got = _answers(exe, tl.SFTRACE)
    assert len([g for g in got if g[0] == "syms_rs::util::pick"]) == 2, got


def test_rust_v0_mangling():
    exe = _rust("v0")
    _check(exe, ["syms_rs.rs"], RS["v0"], _rust_other)
    _check(_split_debug(exe, "rs_v0"), ["syms_rs.rs"], RS["v0"], _rust_other)


def test_many_functions_one_unit():
    """3000 functions in one compile unit, each at its known line. Compiled
    by absolute path, clang numbers the file 1, not 0, in DWARF 5, so here
    the declaration line is the answer (bench/gen_syms.py's layout: the
    declarator line, then the brace)."""
    d = _dir("many")
    src = os.path.join(d, "many.c")
    gen = os.path.join(tl.ROOT, "bench", "gen_syms.py")
    exe = os.path.join(d, "many")
    if tl._stale(exe, [gen, __file__]):
        tl.run(["python3", gen, "c", src, "3000"])
        tl.run(["clang"] + XRAY + [src, "-o", exe])
    with open(src) as f:
        lines = f.read().split("\n")
    want = {}
    for i, line in enumerate(lines):
        m = re.match(r"(?:__attribute__\(\(noinline\)\) )?int (\w+)\(int \w+(?:, char \*\*\w+)?\)$",
                     line)
        if m:
            assert lines[i + 1] == "{", lines[i + 1]
            want[m.group(1)] = i + 1
    assert len(want) == 3001
    for sftrace in (tl.SFTRACE, tl.SFTRACE_ASAN):
        got = _answers(exe, sftrace)
        assert sorted(g[0] for g in got) == sorted(want)
        for name, file, line in got:
            assert file == src and line == want[name], (name, file, line, want[name])


def _symsbench(asan):
    """bench/symsbench.c linked with the tools' lib/ objects (make's)."""
    objdir = os.path.join(tl.BUILD, "asan", "obj", "lib") if asan else \
        os.path.join(tl.BUILD, "obj", "lib")
    out = os.path.join(_dir("bin"), "symsbench" + ("_asan" if asan else ""))
    src = os.path.join(tl.ROOT, "bench", "symsbench.c")
    objs = [os.path.join(objdir, f) for f in ("symbols.o", "logread.o", "xraymap.o")]
    if tl._stale(out, [src] + objs):
        flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"] if asan else []
        tl.run(["cc", "-std=gnu11", "-D_GNU_SOURCE", "-O1", "-g"] + flags +
               ["-I" + os.path.join(tl.ROOT, d) for d in ("common", "include", "lib")] +
               [src] + objs + ["-o", out, "-lelf", "-ldw", "-lz", "-liberty"])
    return out


def test_no_lines():
    """sf_syms_set_lines(s, 0) (what --no-lines asks for): the same names,
    no source lines."""
    exe = _build("c_pie", ["clang"] + XRAY + ["-fPIE", "-pie", "syms_main.c", "syms_lib.c"], C_SRCS)
    want = _markers(C_SRCS)
    for asan in (False, True):
        drv = _symsbench(asan)
        full = [l.split("\t") for l in tl.run([drv, "-p", exe]).stdout.splitlines()[:-1]]
        bare = [l.split("\t") for l in tl.run([drv, "-p", "-n", exe]).stdout.splitlines()[:-1]]
        assert len(full) == len(bare) == len(ls.xray_functions(exe))
        for (a1, n1, s1), (a2, n2, s2) in zip(full, bare):
            assert (a1, n1) == (a2, n2) and s2 == "-:0", (full, bare)
            file, line = s1.rsplit(":", 1)
            assert (os.path.basename(file), int(line)) == want[n1], (n1, s1, want[n1])


def test_corrupt_dwarf():
    """Bytes of .debug_info, .debug_abbrev, .debug_line and .debug_rnglists
    overwritten: `dump -l` (ASan build) still names every function, gives a
    line or "-", and neither crashes nor hangs."""
    import random
    exe = _build("cc_pie", ["clang++"] + XRAY + ["syms_main.cc", "syms_lib.cc"], CC_SRCS)
    with open(exe, "rb") as f:
        data = f.read()
    secs = {s[0]: (s[5], s[6]) for s in ls._sections(data)}  # name -> (offset, size)
    names = [n for n, _, _ in _answers(exe, tl.SFTRACE)]
    d = _dir("corrupt")
    rng = random.Random(10)
    for k in range(24):
        sec = [".debug_info", ".debug_abbrev", ".debug_line", ".debug_rnglists"][k % 4]
        if sec not in secs:
            continue
        off, size = secs[sec]
        bad = bytearray(data)
        for _ in range(1 + k % 5):
            at = off + rng.randrange(size)
            bad[at:at + 4] = bytes(rng.randrange(256) for _ in range(4))
        path = os.path.join(d, "bad%d" % k)
        with open(path, "wb") as f:
            f.write(bad)
        got = _answers(path, tl.SFTRACE_ASAN)
        assert [n for n, _, _ in got] == names, (sec, k)
        for n, file, line in got:
            assert (file is None and line == 0) or line > 0, (sec, k, n, file, line)
