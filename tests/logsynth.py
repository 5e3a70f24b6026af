"""logsynth.py - write sftrace logs (common/logfmt.h) from Python, and read
the bits of ELF files the logs point at.

Lets the reader, `sftrace dump` and the other tools be tested without the
runtime: a test builds exactly the log it wants, valid or broken.

    log = Log(create_mono_ns=10**9)
    log.process(pid=10, clock=TSC, tsc=..., mono_ns=..., tsc_hz=...)
    log.object(pid=10, fid_base=1, funcs=xray_functions(exe), path=exe,
               build_id=build_id(exe))
    hi, recs = encode([("entry", ts, fid), ("exit", ts2, fid)])
    log.events(pid=10, tid=10, records=recs, tsc_hi=hi)
    log.write(path)

Every chunk method returns the chunk's file offset; log.chunks lists
(offset, size, type) of every chunk.
"""
import struct

MAGIC = b"SFTRACE\0"
CHUNK_MAGIC = 0x4B434653
CHUNK_MAX = 1 << 30
PROCESS, OBJECT, THREAD, EVENTS, END = 1, 2, 3, 4, 5
PROC_FORKED, PROC_EXECED = 1, 2
OBJ_MAIN = 1
THREAD_EXITED = 1
EVENTS_LOST = 1
EVENTS_PACKED = 2  # common/pack.h
TSC, MONO = 1, 2
ENTRY, EXIT, TAIL, EXT = 0, 1, 2, 3
EXT_PAD, EXT_TSC_HI, EXT_ALLOC, EXT_ARGS, EXT_RET, EXT_LOST = 0, 1, 2, 3, 4, 5
ALLOC, FREE, REALLOC_ALLOC, REALLOC_FREE = 1, 2, 3, 4
END_EXIT, END_EXEC, END_SIGNAL = 1, 2, 3

HEADER_SIZE = 64
SIZES = {PROCESS: 72, OBJECT: 48, THREAD: 48, EVENTS: 48, END: 56}


def pad8(b):
    return b + b"\0" * (-len(b) % 8)


def chunk_header(ctype, flags, size, pid, magic=CHUNK_MAGIC):
    return struct.pack("<IHHII", magic, ctype, flags, size, pid)


class Log:
    def __init__(self, create_mono_ns=1000000000, create_real_ns=1700000000 * 10**9,
                 version=(1, 0), header_size=HEADER_SIZE, session_id=0x1234):
        self.data = bytearray(struct.pack("<8sHHIQQQ3Q", MAGIC, version[0], version[1],
                                          header_size, session_id, create_mono_ns,
                                          create_real_ns, 0, 0, 0))
        self.data += b"\0" * (header_size - len(self.data))
        self.create_mono_ns = create_mono_ns
        self.chunks = []  # (offset, size, type)

    def chunk(self, ctype, pid, body, flags=0, size=None, magic=CHUNK_MAGIC):
        """Append a chunk: header + body (padded to 8). size overrides the size field."""
        body = pad8(bytes(body))
        real = 16 + len(body)
        off = len(self.data)
        self.data += chunk_header(ctype, flags, real if size is None else size, pid, magic) + body
        self.chunks.append((off, real, ctype))
        return off

    def process(self, pid, ppid=1, clock=TSC, tsc=0, mono_ns=0, real_ns=0, tsc_hz=0,
                name="prog", cmdline=("prog",), exe="/bin/prog", flags=0, lens=None):
        n, c, e = name.encode(), b"".join(a.encode() + b"\0" for a in cmdline), exe.encode()
        nl, cl, el = lens or (len(n), len(c), len(e))
        body = struct.pack("<IIQQQQIIII", ppid, clock, tsc, mono_ns, real_ns, tsc_hz, nl, cl, el,
                           0) + n + c + e
        return self.chunk(PROCESS, pid, body, flags)

    def object(self, pid, fid_base, funcs, path, build_id=b"", load_bias=0, flags=OBJ_MAIN,
               nsleds=None, nfuncs=None, path_len=None, build_id_len=None):
        p = path.encode()
        body = struct.pack("<QIIIIII", load_bias, fid_base,
                           len(funcs) if nfuncs is None else nfuncs,
                           2 * len(funcs) if nsleds is None else nsleds,
                           len(p) if path_len is None else path_len,
                           len(build_id) if build_id_len is None else build_id_len, 0)
        body += b"".join(struct.pack("<Q", a) for a in funcs) + p + build_id
        return self.chunk(OBJECT, pid, body, flags)

    def thread(self, pid, tid, name, tsc=0, flags=0):
        body = struct.pack("<IIQ16s", tid, 0, tsc, name.encode()[:16])
        return self.chunk(THREAD, pid, body, flags)

    def events(self, pid, tid, records, tsc_hi=0, seq=0, flush_tsc=0, flush_mono_ns=0, flags=0,
               pad=None):
        """An EVENTS chunk; with flags EVENTS_PACKED, records are packed ones
        (see pack()) and pad defaults to the zero bytes that follow them."""
        if pad is None:
            pad = -len(records) % 8 if flags & EVENTS_PACKED else 0
        body = struct.pack("<IIIIQQ", tid, seq, tsc_hi, pad, flush_tsc, flush_mono_ns) + records
        return self.chunk(EVENTS, pid, body, flags)

    def end(self, pid, tsc=0, mono_ns=0, events=0, lost=0, threads=1, reason=END_EXIT):
        body = struct.pack("<QQQQII", tsc, mono_ns, events, lost, threads, reason)
        return self.chunk(END, pid, body)

    def raw(self, b):
        self.data += b

    def bytes(self):
        return bytes(self.data)

    def write(self, path):
        with open(path, "wb") as f:
            f.write(self.data)
        return path


# ---- records ----------------------------------------------------------------

def rec(lo, fid, kind):
    """A function event record."""
    return struct.pack("<II", lo & 0xFFFFFFFF, (fid << 2) | kind)


def ext(sub, arg=0, w0=0, payload=(), nwords=None):
    """An extended record; nwords overrides the count in w1."""
    n = len(payload) if nwords is None else nwords
    w1 = 3 | (sub << 2) | (arg << 8) | (n << 16)
    return struct.pack("<II", w0 & 0xFFFFFFFF, w1) + b"".join(struct.pack("<Q", v) for v in payload)


KINDS = {"entry": ENTRY, "exit": EXIT, "tail": TAIL}


def encode(events, hi=None):
    """Records for a list of events with full 64-bit timestamps; inserts TSC_HI
    records where the high half changes. Returns (starting tsc_hi, bytes).

    Events: (kind, ts, fid) for "entry" "exit" "tail"; ("alloc", ts, akind,
    size, align, ptr); ("args", ts, [values]); ("ret", ts, value); ("lost", ts,
    count); ("pad", ts); ("ext", ts, sub, arg, [payload]).
    """
    out = b""
    if hi is None:
        hi = events[0][1] >> 32 if events else 0
    start = hi
    for e in events:
        kind, ts = e[0], e[1]
        if ts >> 32 != hi:
            hi = ts >> 32
            out += ext(EXT_TSC_HI, 0, hi)
        if kind in KINDS:
            out += rec(ts, e[2], KINDS[kind])
        elif kind == "alloc":
            out += ext(EXT_ALLOC, e[2], ts, e[3:6])
        elif kind == "args":
            out += ext(EXT_ARGS, len(e[2]), ts, e[2])
        elif kind == "ret":
            out += ext(EXT_RET, 0, ts, [e[2]])
        elif kind == "lost":
            out += ext(EXT_LOST, 0, ts, [e[2]])
        elif kind == "pad":
            out += ext(EXT_PAD, 0, ts)
        elif kind == "ext":
            out += ext(e[2], e[3], ts, e[4])
        else:
            raise ValueError(kind)
    return start, out


def random_stream(rnd, n, nfids, t, gaps=(1, 3, 200, 70000, 1 << 33), ext=True):
    """A random, properly nested event stream for encode(): n events of
    functions 1..nfids from time t on (gaps between events drawn from gaps),
    with tail calls and, if ext, ARGS, RET, ALLOC and LOST records."""
    evs, stack = [], []
    for _ in range(n):
        t += rnd.choice(gaps)
        r = rnd.random()
        if stack and r < 0.4:
            evs.append(("exit", t, stack.pop()))
        elif r < 0.8 or not stack or not ext and r >= 0.85:
            f = rnd.randrange(1, nfids + 1)
            stack.append(f)
            evs.append(("entry", t, f))
        elif r < 0.85:
            evs.append(("tail", t, stack.pop()))
        elif r < 0.9:
            evs.append(("args", t, [1, 2, 3]))
        elif r < 0.93:
            evs.append(("ret", t, 42))
        elif r < 0.96:
            evs.append(("alloc", t, rnd.randrange(1, 5), 64, 16, 0x1000))
        else:
            evs.append(("lost", t, 7))
    return evs


# ---- packed records (common/pack.h) ----------------------------------------------

PACK_DEPTH = 256
PACK_CACHE = 8
M64 = (1 << 64) - 1


def _zigzag(d):
    d &= M64
    if d >> 63:
        d -= 1 << 64
    return ((d << 1) ^ (d >> 63)) & M64


def pack(raw, hi):
    """Pack raw records as the runtime's sf_pack does (a port of it); hi is
    the chunk's tsc_hi. Returns the packed bytes."""
    t = hi << 32
    stack = []
    cache = [0xFFFFFFFF] * PACK_CACHE
    out = bytearray()
    i = 0
    while i + 8 <= len(raw):
        w0, w1 = struct.unpack_from("<II", raw, i)
        i += 8
        kind = w1 & 3
        if kind == EXT:
            sub, arg, nw = (w1 >> 2) & 0x3F, (w1 >> 8) & 0xFF, w1 >> 16
            if i + 8 * nw > len(raw):
                break
            if sub == EXT_TSC_HI:
                hi = w0
            elif sub != EXT_PAD:
                tt = (hi << 32) | w0
                zz = _zigzag(tt - t)
                t = tt
                out += bytes([3 | (sub << 2), arg, nw & 0xFF, nw >> 8]) + struct.pack("<Q", zz)
                out += raw[i:i + 8 * nw]
            i += 8 * nw
            continue
        fid = w1 >> 2
        tt = (hi << 32) | w0
        zz = _zigzag(tt - t)
        t = tt
        if zz >> 32:
            out += bytes([3 | (EXT_PAD << 2), 0, 0, 0]) + struct.pack("<Q", zz)
            zz = 0
        nb = 1 if zz < 0x100 else 2 if zz < 0x10000 else 3 if zz < 0x1000000 else 4
        tag = kind | ((nb - 1) << 3)
        if kind == ENTRY:
            idx = ((fid * 0x9E3779B1) & 0xFFFFFFFF) >> 29
            lit = cache[idx] != fid
            cache[idx] = fid
            tag |= idx << 5
            if len(stack) < PACK_DEPTH:
                stack.append(fid)
        else:
            lit = not (stack and stack[-1] == fid)
            if not lit:
                stack.pop()
            else:
                for d in range(len(stack) - 1, -1, -1):
                    if stack[d] == fid:
                        del stack[d:]
                        break
        out += bytes([tag | (lit << 2)]) + struct.pack("<I", zz)[:nb]
        if lit:
            out += struct.pack("<I", fid)
    return bytes(out)


# ---- ELF ----------------------------------------------------------------------

def _sections(data):
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not a 64-bit LE ELF"
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    secs = []
    for i in range(shnum):
        secs.append(struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize))
    stroff = secs[shstrndx][4]

    def name(s):
        end = data.index(b"\0", stroff + s[0])
        return data[stroff + s[0]:end].decode()
    return [(name(s),) + s for s in secs]


def xray_functions(path):
    """Entry addresses (ELF vaddrs) of the functions in path's xray_instr_map,
    in map order: function ids in that order, as the runtime numbers them."""
    with open(path, "rb") as f:
        data = f.read()
    funcs = []
    for s in _sections(data):
        if s[0] != "xray_instr_map":
            continue
        addr, off, size = s[4], s[5], s[6]
        for i in range(size // 32):
            a, fn, kind, always, version = struct.unpack_from("<qqBBB", data, off + 32 * i)
            if version >= 2:
                fn = addr + 32 * i + 8 + fn
            if not funcs or funcs[-1] != fn:
                funcs.append(fn)
    return funcs


def build_id(path):
    """The GNU build-id of an ELF file (bytes), b"" if it has none."""
    with open(path, "rb") as f:
        data = f.read()
    for s in _sections(data):
        if s[2] != 7:  # SHT_NOTE
            continue
        p, end = s[5], s[5] + s[6]
        while p + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, p)
            name = data[p + 12:p + 12 + namesz]
            desc_off = p + 12 + ((namesz + 3) & ~3)
            if ntype == 3 and name.rstrip(b"\0") == b"GNU":
                return data[desc_off:desc_off + descsz]
            p = desc_off + ((descsz + 3) & ~3)
    return b""


def symbols(path):
    """addr -> list of names of the FUNC symbols of path's .symtab."""
    with open(path, "rb") as f:
        data = f.read()
    secs = _sections(data)
    out = {}
    for s in secs:
        if s[2] != 2:  # SHT_SYMTAB
            continue
        strtab = secs[s[7]]
        for i in range(s[6] // 24):
            nm, info, other, shndx, value, size = struct.unpack_from("<IBBHQQ", data, s[5] + 24 * i)
            if info & 0xF not in (2, 10) or shndx == 0 or not value:
                continue
            end = data.index(b"\0", strtab[5] + nm)
            out.setdefault(value, []).append(data[strtab[5] + nm:end].decode())
    return out
