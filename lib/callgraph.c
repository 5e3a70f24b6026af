/*
 * callgraph.c - static "can call" relation of an object file's functions
 * (callgraph.h), x86-64.
 */
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "callgraph.h"
#include "logread.h"
#include "radix.h"
#include "symbols.h"
#include "xalloc.h"

struct fsym {
    uint64_t addr, size;
    int32_t xidx; /* index in func_addr, -1 if not instrumented */
    uint8_t taken;
    uint32_t e0, e1; /* its edges: callees[e0 .. e1) */
    uint32_t i0, i1; /* the names it calls through the PLT: imports[i0 .. i1) */
    char *name;      /* exported (.dynsym): its name, which other objects call */
};

struct sf_callgraph {
    struct fsym *s; /* sorted by addr, one per address */
    size_t n, cap;
    uint32_t *bucket; /* s index of the first symbol at or after lo + (k << shift) */
    uint32_t nbuckets, shift;
    uint64_t lo;     /* the first symbol's address */
    uint64_t *start; /* bit a - lo: a symbol starts at a (NULL: not made) */
    uint64_t nstart; /* bits in start */
    uint32_t *x2s;   /* func_addr index -> symbol index + 1 (0: none) */
    uint32_t nx;
    uint32_t *callees;
    uint32_t *imports; /* indexes in impname */
    char **impname;    /* the names the object's PLT stubs jump to */
    uint32_t nimp;
    int unwinds;
    /* shared by the engines of one run (read-only once loaded) */
    char *path;
    uint8_t build_id[64];
    uint32_t build_id_len;
    uint64_t *func_copy; /* the func_addr it was loaded for */
    uint32_t refs;
    struct sf_callgraph *next;
    /* read in a thread of its own (sf_callgraph_load): the fields above
     * path are valid once ready is set; the last reference joins it */
    _Atomic int ready;
    int threaded;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* One user's answers and search scratch (callgraph.h). */
struct sf_cgwalk {
    struct sf_map cache;    /* caller << 32 | callee -> 1 + verdict */
    uint32_t *seen, *queue; /* BFS scratch, stamp per symbol */
    uint32_t stamp;
};

/* The graphs loaded, so that the workers of a run (runcalls.c) read an
 * object's code once: each built its own, the same, in parallel. */
static pthread_mutex_t loaded_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sf_callgraph *loaded;

struct edge {
    uint32_t from, to;
};

static void add_sym(void *ctx, const GElf_Sym *sym, const char *name, int rank)
{
    (void)name, (void)rank;
    struct sf_callgraph *g = ctx;
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 1024;
        struct fsym *ns = realloc(g->s, g->cap * sizeof *g->s);
        if (!ns)
            return;
        g->s = ns;
    }
    struct fsym *f = &g->s[g->n++];
    memset(f, 0, sizeof *f);
    f->addr = sym->st_value;
    f->size = sym->st_size;
    f->xidx = -1;
}

static void mark_taken(void *ctx, const GElf_Sym *sym, const char *name, int rank);

static int cmp_sym(const void *a, const void *b)
{
    const struct fsym *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    return x->size > y->size ? -1 : x->size < y->size; /* the larger first */
}

static int cmp_edge(const void *a, const void *b)
{
    const struct edge *x = a, *y = b;
    if (x->from != y->from)
        return x->from < y->from ? -1 : 1;
    return x->to < y->to ? -1 : x->to > y->to;
}

/* The symbols that may start at or hold a: [*i0, *i1) start in a's bucket
 * (the scan asks for every byte of code: a binary search over all the
 * symbols was a fifth of a report's time on a big object). 0 if a is
 * below the first symbol or beyond the last bucket. */
static inline int bucket_of(const struct sf_callgraph *g, uint64_t a, size_t *i0, size_t *i1)
{
    if (a < g->lo)
        return 0;
    uint64_t k = (a - g->lo) >> g->shift;
    if (k >= g->nbuckets)
        return 0;
    *i0 = g->bucket[k];
    *i1 = g->bucket[k + 1];
    return 1;
}

static void make_buckets(struct sf_callgraph *g)
{
    uint64_t span = g->s[g->n - 1].addr - g->s[0].addr + 1;
    g->lo = g->s[0].addr;
    g->shift = 0;
    while ((span >> g->shift) > g->n) /* about one symbol a bucket */
        g->shift++;
    g->nbuckets = (uint32_t)(span >> g->shift) + 1;
    g->bucket = malloc(((size_t)g->nbuckets + 1) * sizeof *g->bucket);
    if (!g->bucket)
        return;
    size_t i = 0;
    for (uint32_t k = 0; k <= g->nbuckets; k++) {
        uint64_t start = g->lo + ((uint64_t)k << g->shift);
        while (i < g->n && g->s[i].addr < start)
            i++;
        g->bucket[k] = (uint32_t)i;
    }
    /* a bit per byte of the span (an eighth of the code's size), when that
     * is not absurd: nearly every byte of code is a candidate address to
     * the scan, and few start a symbol */
    if (span <= ((uint64_t)1 << 33)) {
        g->nstart = span;
        g->start = calloc((size_t)((span + 63) >> 6), sizeof *g->start);
        for (size_t j = 0; g->start && j < g->n; j++) {
            uint64_t b = g->s[j].addr - g->lo;
            g->start[b >> 6] |= (uint64_t)1 << (b & 63);
        }
    }
}

/* 0 if no symbol starts at addr (known from the bitmap, when made): the
 * scan's quick test before sym_at, inline. */
static inline int may_start(const struct sf_callgraph *g, uint64_t addr)
{
    uint64_t b = addr - g->lo;
    return !g->start || (addr >= g->lo && b < g->nstart && (g->start[b >> 6] >> (b & 63) & 1));
}

/* The symbol starting exactly at addr, or -1. */
static long sym_at(const struct sf_callgraph *g, uint64_t addr)
{
    size_t lo, hi;
    if (!may_start(g, addr) || !bucket_of(g, addr, &lo, &hi))
        return -1;
    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        if (g->s[m].addr < addr)
            lo = m + 1;
        else
            hi = m;
    }
    return lo < g->n && g->s[lo].addr == addr ? (long)lo : -1;
}

/* The symbol whose [addr, addr + size) holds a, or -1. */
static long sym_holding(const struct sf_callgraph *g, uint64_t a)
{
    size_t lo, hi;
    if (a >= g->lo && !bucket_of(g, a, &lo, &hi)) /* beyond the last bucket */
        lo = hi = g->n;
    else if (a < g->lo)
        return -1;
    while (lo < hi) { /* the last one at or below a: in the bucket, or before it */
        size_t m = (lo + hi) / 2;
        if (g->s[m].addr <= a)
            lo = m + 1;
        else
            hi = m;
    }
    if (!lo)
        return -1;
    const struct fsym *f = &g->s[lo - 1];
    return a < f->addr + (f->size ? f->size : 1) ? (long)(lo - 1) : -1;
}

static void mark_taken(void *ctx, const GElf_Sym *sym, const char *name, int rank)
{
    (void)name, (void)rank;
    struct sf_callgraph *g = ctx;
    long i = sym_at(g, sym->st_value);
    if (i >= 0)
        g->s[i].taken = 1;
}

/* An exported function's name: another object's PLT calls it by it. */
static void keep_name(void *ctx, const GElf_Sym *sym, const char *name, int rank)
{
    (void)rank;
    struct sf_callgraph *g = ctx;
    long i = sym_at(g, sym->st_value);
    if (i >= 0 && !g->s[i].name)
        g->s[i].name = strdup(name);
}

static int in_names(const char *n, const char *const *names, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if (!strcmp(n, names[i]))
            return 1;
    return 0;
}

/* Names of the library functions an executable's own definition replaces
 * for every object (the allocator, C++'s operator new and delete): libc
 * and libstdc++ call those by name, from code the log does not show. */
static int interposer_name(const char *n)
{
    static const char *const names[] = {
        "malloc",
        "free",
        "calloc",
        "realloc",
        "reallocarray",
        "memalign",
        "valloc",
        "pvalloc",
        "posix_memalign",
        "aligned_alloc",
        "malloc_usable_size",
        "cfree",
        "__libc_memalign",
    };
    return in_names(n, names, sizeof names / sizeof names[0]) || !strncmp(n, "_Znw", 4) ||
           !strncmp(n, "_Zna", 4) || !strncmp(n, "_Zdl", 4) || !strncmp(n, "_Zda", 4);
}

/* An executable's exported function (.dynsym, -rdynamic: postgres and
 * every program with plugins export all of theirs): its own code calls it
 * directly (an executable's definitions are not interposed), so the scan's
 * edges say who can; only the functions that replace a library's for
 * everyone are reached from other objects' code, by name. */
static void mark_exported(void *ctx, const GElf_Sym *sym, const char *name, int rank)
{
    if (interposer_name(name))
        mark_taken(ctx, sym, name, rank);
}

static int unwinding_name(const char *n)
{
    /* every name below starts with l, s, _l, __l, __c or _U: most symbols
     * of a big object (_ZN..., _R...) are refused by a byte or two */
    if (n[0] == '_' ? n[1] != 'l' && n[1] != 'U' && n[1] != 's' &&
                          (n[1] != '_' || (n[2] != 'l' && n[2] != 'c' && n[2] != 's'))
                    : n[0] != 'l' && n[0] != 's')
        return 0;
    static const char *const names[] = {
        "__sigsetjmp", /* where a longjmp lands: its calls after it (PG_CATCH) */
        "_setjmp",
        "setjmp",
        "sigsetjmp",
        "longjmp",
        "_longjmp",
        "siglongjmp",
        "__longjmp_chk",
        "_Unwind_Resume",
        "_Unwind_RaiseException",
        "__cxa_throw",
        "__cxa_rethrow",
        "_Unwind_Resume_or_Rethrow",
        "__cxa_begin_catch",
        "_Unwind_ForcedUnwind",
    };
    return in_names(n, names, sizeof names / sizeof names[0]);
}

static void scan_imports(struct sf_callgraph *g, Elf *elf)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_SYMTAB))
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        if (!d || !sh.sh_entsize)
            continue;
        /* the common case straight from the mapped tables (a call and a
         * copy a symbol otherwise, for 200,000 symbols of a big object) */
        Elf_Data *sd = elf_getdata(elf_getscn(elf, sh.sh_link), NULL);
        if (gelf_getclass(elf) == ELFCLASS64 && d->d_type == ELF_T_SYM && d->d_buf && sd &&
            sd->d_buf && sd->d_size && ((const char *)sd->d_buf)[sd->d_size - 1] == 0) {
            const Elf64_Sym *v = d->d_buf;
            const char *str = sd->d_buf;
            size_t n = d->d_size / sizeof *v;
            for (size_t i = 0; i < n && !g->unwinds; i++)
                if (v[i].st_name && v[i].st_name < sd->d_size && unwinding_name(str + v[i].st_name))
                    g->unwinds = 1;
            continue;
        }
        for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
            GElf_Sym st;
            if (!gelf_getsym(d, (int)i, &st))
                break;
            const char *n = elf_strptr(elf, sh.sh_link, st.st_name);
            if (n && *n && unwinding_name(n)) /* imported, or linked in statically */
                g->unwinds = 1;
        }
    }
}

static inline uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t rd64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Sections whose function addresses are not function pointers: XRay's
 * own tables (every instrumented function is in them) and unwind tables. */
static int not_pointers(Elf *elf, const GElf_Shdr *sh)
{
    size_t shstrndx;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return 0;
    const char *n = elf_strptr(elf, shstrndx, sh->sh_name);
    return n && (!strncmp(n, "xray_", 5) || !strncmp(n, ".eh_frame", 9) ||
                 !strcmp(n, ".gcc_except_table"));
}

struct range {
    uint64_t a, b;
};

/* Edges found by one thread of the scan. */
struct edgev {
    struct edge *v;
    size_t n, cap;
    int failed;
};

/* A code section, cut in two for the two threads of the scan. */
struct code {
    const uint8_t *b;
    size_t n;
    uint64_t va;
};

/* The object's PLT stubs and the names they jump to (read_plt). */
struct plt {
    struct range r[4];
    size_t nr;
    struct stub {
        uint64_t addr;
        uint32_t name; /* index in the graph's impname */
    } * v;
    size_t n;
};

struct codework {
    const struct sf_callgraph *g;
    const struct code *c;
    size_t nc;
    int half;  /* 0: the first half of each section, 1: the second */
    int fixed; /* a fixed-address executable (ET_EXEC): its imm32s can be addresses */
    const struct plt *plt;
    struct edgev ev, iv; /* iv: calls through the PLT, {function, name} */
};

/* The name index of the stub at a, or -1. */
static long plt_stub(const struct plt *p, uint64_t a)
{
    int in = 0;
    for (size_t i = 0; i < p->nr; i++)
        in |= a >= p->r[i].a && a < p->r[i].b;
    if (!in)
        return -1;
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        if (p->v[m].addr < a)
            lo = m + 1;
        else
            hi = m;
    }
    return lo < p->n && p->v[lo].addr == a ? (long)p->v[lo].name : -1;
}

static int cmp_stub(const void *a, const void *b)
{
    const struct stub *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* The PLT sections (.plt, .plt.sec, .plt.got) and what each 16-byte stub
 * jumps to: a stub is `[endbr64] [bnd] jmp *slot(%rip)`, and the slot's
 * JUMP_SLOT or GLOB_DAT relocation names the symbol. Names go to
 * g->impname. */
static void read_plt(struct sf_callgraph *g, Elf *elf, struct plt *p)
{
    size_t shstrndx;
    memset(p, 0, sizeof *p);
    if (elf_getshdrstrndx(elf, &shstrndx) != 0)
        return;
    struct slot {
        uint64_t at;
        const char *name;
    } *slots = NULL;
    size_t nslots = 0, cap = 0, capv = 0, capn = 0;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh, symsh;
        if (!gelf_getshdr(scn, &sh))
            continue;
        const char *n = elf_strptr(elf, shstrndx, sh.sh_name);
        if (n && (!strcmp(n, ".plt") || !strcmp(n, ".plt.sec") || !strcmp(n, ".plt.got")) &&
            p->nr < 4 && sh.sh_type != SHT_NOBITS)
            p->r[p->nr++] = (struct range){sh.sh_addr, sh.sh_addr + sh.sh_size};
        if (sh.sh_type != SHT_RELA || !sh.sh_entsize)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        Elf_Scn *ss = elf_getscn(elf, sh.sh_link);
        Elf_Data *sd = ss ? elf_getdata(ss, NULL) : NULL;
        if (!d || !sd || !gelf_getshdr(ss, &symsh))
            continue;
        for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
            GElf_Rela r;
            GElf_Sym st;
            if (!gelf_getrela(d, (int)i, &r))
                break;
            uint32_t t = (uint32_t)GELF_R_TYPE(r.r_info);
            if ((t != R_X86_64_JUMP_SLOT && t != R_X86_64_GLOB_DAT) || !GELF_R_SYM(r.r_info) ||
                !gelf_getsym(sd, (int)GELF_R_SYM(r.r_info), &st))
                continue;
            const char *sn = elf_strptr(elf, symsh.sh_link, st.st_name);
            if (!sn || !*sn)
                continue;
            if (nslots == cap) {
                cap = cap ? 2 * cap : 256;
                struct slot *ns = realloc(slots, cap * sizeof *ns);
                if (!ns)
                    goto done;
                slots = ns;
            }
            slots[nslots++] = (struct slot){r.r_offset, sn};
        }
    }
    for (size_t k = 0; k < p->nr; k++) {
        Elf_Scn *s2 = NULL;
        GElf_Shdr sh;
        while ((s2 = elf_nextscn(elf, s2)))
            if (gelf_getshdr(s2, &sh) && sh.sh_addr == p->r[k].a && sh.sh_type != SHT_NOBITS &&
                sh.sh_size == p->r[k].b - p->r[k].a)
                break;
        Elf_Data *d = s2 ? elf_getdata(s2, NULL) : NULL;
        if (!d || !d->d_buf)
            continue;
        const uint8_t *b = d->d_buf;
        for (size_t o = 0; o + 16 <= d->d_size; o += 16)
            for (size_t j = o; j < o + 9; j++) {
                if (b[j] != 0xff || b[j + 1] != 0x25)
                    continue;
                uint64_t at = sh.sh_addr + j + 6 + (uint64_t)(int64_t)(int32_t)rd32(b + j + 2);
                for (size_t q = 0; q < nslots; q++) {
                    if (slots[q].at != at)
                        continue;
                    if (p->n == capv) {
                        capv = capv ? 2 * capv : 64;
                        struct stub *nv = realloc(p->v, capv * sizeof *nv);
                        if (!nv)
                            goto done;
                        p->v = nv;
                    }
                    if (g->nimp == capn) {
                        capn = capn ? 2 * capn : 64;
                        char **nn = realloc(g->impname, capn * sizeof *nn);
                        if (!nn)
                            goto done;
                        g->impname = nn;
                    }
                    g->impname[g->nimp] = strdup(slots[q].name);
                    p->v[p->n++] = (struct stub){sh.sh_addr + o, g->nimp++};
                    break;
                }
                break;
            }
    }
done:
    free(slots);
    if (p->n)
        qsort(p->v, p->n, sizeof *p->v, cmp_stub);
}

/* Add the edge from -> to; 0 when out of memory (ev->failed). */
static int push_edge(struct edgev *ev, uint32_t from, uint32_t to)
{
    if (ev->n == ev->cap) {
        size_t cap = ev->cap ? 2 * ev->cap : 4096;
        struct edge *ne = realloc(ev->v, cap * sizeof *ev->v);
        if (!ne) {
            ev->failed = 1;
            return 0;
        }
        ev->v = ne;
        ev->cap = cap;
    }
    ev->v[ev->n++] = (struct edge){from, to};
    return 1;
}

/* The call and jmp rel32 sites (edges) and the references (taken) in the
 * bytes [i0, i1) of a code section (every byte offset: see callgraph.h).
 * taken is stored with relaxed atomics: the two threads may mark one. */
/* The window of 4 bytes at b[i] of code at address va, a possible rel32 or
 * imm32 (scan_code; lo and hi: the first and last symbols' addresses). 0,
 * or -1 when out of memory. */
static inline __attribute__((always_inline)) int
scan_window(const struct sf_callgraph *g, const uint8_t *b, uint64_t va, uint64_t lo, uint64_t hi,
            size_t i, int fixed, const struct plt *plt, uint64_t plo, uint64_t plen,
            struct edgev *ev, struct edgev *iv)
{
    uint32_t w = rd32(b + i);
    uint64_t abs = w, rel = va + i + 4 + (uint64_t)(int64_t)(int32_t)w;
    /* a PIE or shared object is loaded at a random base: an imm32 in
     * its code is never a function's address (only relocations make
     * one); there they are displacements and constants that stray into
     * [lo, hi] and would make a function look called from anywhere */
    if (fixed && abs >= lo && abs <= hi && may_start(g, abs)) { /* mov $imm32 */
        long k = sym_at(g, abs);
        if (k >= 0)
            __atomic_store_n(&g->s[k].taken, 1, __ATOMIC_RELAXED);
    }
    if (rel - plo < plen) { /* into the PLT (plen 0: none): a call by name */
        uint8_t op = b[i - 1];
        int branch =
            op == 0xe8 || op == 0xe9 || (i >= 2 && b[i - 2] == 0x0f && (op & 0xf0) == 0x80);
        long imp = branch ? plt_stub(plt, rel) : -1;
        if (imp >= 0) {
            long from = sym_holding(g, va + i - 1);
            if (from >= 0 && !push_edge(iv, (uint32_t)from, (uint32_t)imp))
                return -1;
            return 0;
        }
    }
    if (rel < lo || rel > hi || !may_start(g, rel))
        return 0;
    uint8_t op = b[i - 1];
    int branch = op == 0xe8 || op == 0xe9 || (i >= 2 && b[i - 2] == 0x0f && (op & 0xf0) == 0x80);
    /* rel == next address: the zero displacement of a padding nop
     * (0f 1f 84 00 00 00 00 00) before a function, not a reference;
     * but a tail jump to the function right after (e9 00 00 00 00:
     * postgres's hash_search to hash_search_with_hash_value) is one */
    if (!w && !branch)
        return 0;
    long k = sym_at(g, rel);
    if (k < 0)
        return 0;
    if (!branch) {
        __atomic_store_n(&g->s[k].taken, 1, __ATOMIC_RELAXED); /* lea / mov rip-relative */
        return 0;
    }
    long from = sym_holding(g, va + i - 1);
    if (from < 0)
        return 0;
    return push_edge(ev, (uint32_t)from, (uint32_t)k) ? 0 : -1;
}

/* A short jmp or jcc (eb / 7x rel8, its opcode at b[i - 1]) to a function
 * start: a tail jump to a function placed within 127 bytes (postgres's
 * fmgr_info to fmgr_info_cxt_security, `eb 0b`). 0, or -1 when out of
 * memory. */
static inline __attribute__((always_inline)) int scan_short(const struct sf_callgraph *g,
                                                            const uint8_t *b, uint64_t va,
                                                            uint64_t lo, uint64_t hi, size_t i,
                                                            struct edgev *ev)
{
    uint64_t t = va + i + 1 + (uint64_t)(int64_t)(int8_t)b[i];
    long k = t >= lo && t <= hi && may_start(g, t) ? sym_at(g, t) : -1;
    long from = k >= 0 ? sym_holding(g, va + i - 1) : -1;
    if (from >= 0 && from != k && !push_edge(ev, (uint32_t)from, (uint32_t)k))
        return -1;
    return 0;
}

#ifdef __SSE2__
/* bit l of x at bit 4 * l: the windows of one of scan_code's four loads */
static const uint16_t spread4[16] = {
    0x0000, 0x0001, 0x0010, 0x0011, 0x0100, 0x0101, 0x0110, 0x0111,
    0x1000, 0x1001, 0x1010, 0x1011, 0x1100, 0x1101, 0x1110, 0x1111,
};
#endif

/* Every window of c's code at offsets [i0, i1) (the caller keeps 3 bytes
 * after i1 and 1 before i0). */
static void scan_code(const struct sf_callgraph *g, const struct code *c, size_t i0, size_t i1,
                      int fixed, const struct plt *plt, struct edgev *ev, struct edgev *iv)
{
    const uint8_t *b = c->b;
    uint64_t va = c->va, lo = g->s[0].addr, hi = g->s[g->n - 1].addr;
    /* a window can only be a candidate (an absolute address in [lo, hi],
     * or a displacement from this section to there) if its value, signed,
     * is within 2^k of 0: most are refused by that one test */
    uint64_t top = hi > va + c->n ? hi : va + c->n, bot = lo < va ? lo : va;
    unsigned k = 0;
    while (k < 31 && ((uint64_t)1 << k) <= (top - bot > hi ? top - bot : hi))
        k++;
    uint32_t bias = k < 31 ? 1u << k : 0, lim = k < 31 ? 2u << k : 0;
    uint64_t plo = UINT64_MAX, phi = 0; /* the PLT's sections, all of them */
    for (size_t r = 0; plt && r < plt->nr; r++) {
        plo = plt->r[r].a < plo ? plt->r[r].a : plo;
        phi = plt->r[r].b > phi ? plt->r[r].b : phi;
    }
    if (plt && !plt->n)
        plt = NULL;
    uint64_t plen = plt && phi > plo ? phi - plo : 0;
    size_t i = i0;
#ifdef __SSE2__
    /* The tests on 16 offsets at once (SSE2, which every x86-64 has): four
     * loads of 16 bytes at i, i+1, i+2, i+3 hold the windows at i + 4l,
     * i + 4l + 1, ...; (w + bias) < lim unsigned is a signed compare with
     * the sign bits flipped; and the bytes before them, for a short jump's
     * opcode. The offsets that pass are done in order, as the loop below
     * does them: three in four are refused here. */
    if (lim) {
        const __m128i vb = _mm_set1_epi32((int)(bias ^ 0x80000000u));
        const __m128i vl = _mm_set1_epi32((int)(lim ^ 0x80000000u));
        const __m128i eb = _mm_set1_epi8((char)0xeb), f0 = _mm_set1_epi8((char)0xf0);
        const __m128i jcc = _mm_set1_epi8(0x70);
        for (; i + 16 <= i1 && !ev->failed; i += 16) {
            unsigned m = 0;
            for (int j = 0; j < 4; j++) {
                __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(b + i + j));
                x = _mm_add_epi32(x, vb); /* + bias, and the sign flipped */
                unsigned lanes =
                    (unsigned)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpgt_epi32(vl, x)));
                m |= (unsigned)spread4[lanes] << j;
            }
            __m128i o = _mm_loadu_si128((const __m128i *)(const void *)(b + i - 1));
            unsigned sj = (unsigned)_mm_movemask_epi8(
                _mm_or_si128(_mm_cmpeq_epi8(o, eb), _mm_cmpeq_epi8(_mm_and_si128(o, f0), jcc)));
            for (unsigned all = m | sj; all; all &= all - 1) {
                unsigned j = (unsigned)__builtin_ctz(all);
                if ((sj >> j & 1) && scan_short(g, b, va, lo, hi, i + j, ev) < 0)
                    return;
                if ((m >> j & 1) &&
                    scan_window(g, b, va, lo, hi, i + j, fixed, plt, plo, plen, ev, iv) < 0)
                    return;
            }
        }
    }
#endif
    for (; i < i1; i++) {
        if ((b[i - 1] == 0xeb || (b[i - 1] & 0xf0) == 0x70) &&
            scan_short(g, b, va, lo, hi, i, ev) < 0)
            return;
        uint32_t w = rd32(b + i);
        if (lim && w + bias >= lim)
            continue;
        if (scan_window(g, b, va, lo, hi, i, fixed, plt, plo, plen, ev, iv) < 0)
            return;
    }
}

static void *scan_half(void *arg)
{
    struct codework *w = arg;
    for (size_t j = 0; j < w->nc && !w->ev.failed; j++) {
        const struct code *c = &w->c[j];
        size_t i1 = c->n - 3, mid = 1 + (i1 - 1) / 2; /* offsets 1 .. n-4 */
        scan_code(w->g, c, w->half ? mid : 1, w->half ? i1 : mid, w->fixed, w->plt, &w->ev, &w->iv);
    }
    return NULL;
}

static int scan(struct sf_callgraph *g, Elf *elf, struct edge **edges, size_t *nedges)
{
    uint64_t lo = g->s[0].addr, hi = g->s[g->n - 1].addr;
    struct range skip[16];
    size_t nskip = 0, ncode = 0, capcode = 0;
    struct code *code = NULL;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (gelf_getshdr(scn, &sh) && (sh.sh_flags & SHF_ALLOC) && not_pointers(elf, &sh) &&
            nskip < 16)
            skip[nskip++] = (struct range){sh.sh_addr, sh.sh_addr + sh.sh_size};
    }
    scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh))
            continue;
        if ((sh.sh_flags & SHF_ALLOC) && not_pointers(elf, &sh))
            continue;
        if (sh.sh_type == SHT_RELA) {
            Elf_Data *d = elf_getdata(scn, NULL);
            if (!d || !sh.sh_entsize)
                continue;
            for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
                GElf_Rela r;
                if (!gelf_getrela(d, (int)i, &r))
                    break;
                int in_skip = 0;
                for (size_t j = 0; j < nskip; j++)
                    in_skip |= r.r_offset >= skip[j].a && r.r_offset < skip[j].b;
                if (in_skip)
                    continue;
                long k = sym_at(g, (uint64_t)r.r_addend);
                if (k >= 0)
                    g->s[k].taken = 1;
            }
            continue;
        }
        /* a symbol table's values are not pointers (.dynsym holds every
         * exported function's address: mark_taken / mark_exported decide) */
        if (sh.sh_type == SHT_NOBITS || !(sh.sh_flags & SHF_ALLOC) || sh.sh_type == SHT_DYNSYM ||
            sh.sh_type == SHT_SYMTAB)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        if (!d || !d->d_buf || d->d_size < 8)
            continue;
        const uint8_t *b = d->d_buf;
        size_t n = d->d_size;
        uint64_t va = sh.sh_addr;
        if (!(sh.sh_flags & SHF_EXECINSTR)) { /* data: absolute pointers */
            for (size_t i = 0; i + 8 <= n; i += 4) {
                uint64_t v = rd64(b + i);
                if (v >= lo && v <= hi) {
                    long k = sym_at(g, v);
                    if (k >= 0)
                        g->s[k].taken = 1;
                }
            }
            continue;
        }
        if (ncode == capcode) {
            capcode = capcode ? 2 * capcode : 16;
            struct code *nc = realloc(code, capcode * sizeof *code);
            if (!nc) {
                free(code);
                return -1;
            }
            code = nc;
        }
        code[ncode++] = (struct code){b, n, va};
    }
    /* the code, most of the time, in two threads: each half of each
     * section (the other threads of the run wait for the graph meanwhile) */
    GElf_Ehdr eh;
    int fixed = gelf_getehdr(elf, &eh) && eh.e_type == ET_EXEC;
    struct plt plt;
    read_plt(g, elf, &plt);
    struct codework w[2];
    for (int k = 0; k < 2; k++)
        w[k] = (struct codework){
            g, code, ncode, k, fixed, plt.n ? &plt : NULL, {NULL, 0, 0, 0}, {NULL, 0, 0, 0}};
    pthread_t th;
    int two = pthread_create(&th, NULL, scan_half, &w[1]) == 0;
    scan_half(&w[0]);
    if (two)
        pthread_join(th, NULL);
    else
        scan_half(&w[1]);
    free(code);
    free(plt.v);
    /* the calls through the PLT, as imports[i0 .. i1) of each function */
    size_t ni = w[0].iv.n + w[1].iv.n;
    struct edge *iv = malloc((ni ? ni : 1) * sizeof *iv);
    g->imports = malloc((ni ? ni : 1) * sizeof *g->imports);
    if (iv && g->imports) {
        if (w[0].iv.n)
            memcpy(iv, w[0].iv.v, w[0].iv.n * sizeof *iv);
        if (w[1].iv.n)
            memcpy(iv + w[0].iv.n, w[1].iv.v, w[1].iv.n * sizeof *iv);
        qsort(iv, ni, sizeof *iv, cmp_edge);
        size_t j = 0, k = 0;
        for (size_t i = 0; i < g->n; i++) {
            g->s[i].i0 = (uint32_t)j;
            for (; k < ni && iv[k].from == i; k++)
                if (j == g->s[i].i0 || g->imports[j - 1] != iv[k].to)
                    g->imports[j++] = iv[k].to;
            g->s[i].i1 = (uint32_t)j;
        }
    } else {
        free(g->imports);
        g->imports = NULL;
    }
    free(iv);
    free(w[0].iv.v);
    free(w[1].iv.v);
    int rc = w[0].ev.failed || w[1].ev.failed ? -1 : 0;
    size_t n = w[0].ev.n + w[1].ev.n;
    *edges = rc ? NULL : malloc((n ? n : 1) * sizeof **edges);
    if (*edges) {
        if (w[0].ev.n)
            memcpy(*edges, w[0].ev.v, w[0].ev.n * sizeof **edges);
        if (w[1].ev.n)
            memcpy(*edges + w[0].ev.n, w[1].ev.v, w[1].ev.n * sizeof **edges);
        *nedges = n;
    } else {
        rc = -1;
    }
    free(w[0].ev.v);
    free(w[1].ev.v);
    return rc;
}

static void graph_free(struct sf_callgraph *g);

/* An executable: ET_EXEC, or ET_DYN with DF_1_PIE (a PIE; a shared object
 * has no such flag). Its definitions cannot be interposed. */
static int is_executable(Elf *elf)
{
    GElf_Ehdr eh;
    if (!gelf_getehdr(elf, &eh))
        return 0;
    if (eh.e_type == ET_EXEC)
        return 1;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNAMIC || !sh.sh_entsize)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
            GElf_Dyn dyn;
            if (!gelf_getdyn(d, (int)i, &dyn))
                break;
            if (dyn.d_tag == DT_FLAGS_1 && (dyn.d_un.d_val & DF_1_PIE))
                return 1;
        }
    }
    return 0;
}

static struct sf_callgraph *load(const char *path, const uint8_t *build_id, uint32_t build_id_len,
                                 const uint64_t *func_addr, uint32_t nfuncs)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    elf_version(EV_CURRENT);
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    struct sf_callgraph *g = NULL;
    struct edge *edges = NULL;
    size_t nedges = 0;
    if (!elf || elf_kind(elf) != ELF_K_ELF)
        goto out;
    if (build_id_len) {
        const void *bid;
        ssize_t n = dwelf_elf_gnu_build_id(elf, &bid);
        if (n != (ssize_t)build_id_len || memcmp(bid, build_id, build_id_len))
            goto out;
    }
    g = calloc(1, sizeof *g);
    if (!g)
        goto out;
    /* first the imports: for an object that does not unwind the rule never
     * asks, so its symbols need not be read and sorted either (a tenth of a
     * report's fixed cost on an object of 100,000 functions, per worker) */
    scan_imports(g, elf);
    if (!g->unwinds)
        goto out;
    sf_elf_func_syms(elf, 0, add_sym, g);
    if (!g->n)
        sf_elf_func_syms(elf, 1, add_sym, g);
    if (!g->n)
        goto fail;
    /* by address (linear time: qsort was a tenth of the load on an object
     * of 100,000 functions), then each run of one address by cmp_sym:
     * records equal under it are equal in every field here */
    sf_radix_sort_u64(g->s, g->n, sizeof *g->s, offsetof(struct fsym, addr));
    for (size_t i = 0; i < g->n;) {
        size_t j = i + 1;
        while (j < g->n && g->s[j].addr == g->s[i].addr)
            j++;
        if (j - i > 1)
            qsort(g->s + i, j - i, sizeof *g->s, cmp_sym);
        i = j;
    }
    size_t w = 0;
    for (size_t i = 0; i < g->n; i++)
        if (!w || g->s[w - 1].addr != g->s[i].addr)
            g->s[w++] = g->s[i];
    g->n = w;
    make_buckets(g);
    if (!g->bucket)
        goto fail;
    g->nx = nfuncs;
    g->x2s = calloc(nfuncs ? nfuncs : 1, sizeof *g->x2s);
    if (!g->x2s)
        goto fail;
    for (uint32_t i = 0; i < nfuncs; i++) {
        long k = sym_at(g, func_addr[i]);
        if (k >= 0) {
            g->x2s[i] = (uint32_t)k + 1;
            g->s[k].xidx = (int32_t)i;
        }
    }
    /* exported: reached through the PLT too (a shared object's own calls
     * to them as well); an executable's are not (mark_exported) */
    sf_elf_func_syms(elf, 1, is_executable(elf) ? mark_exported : mark_taken, g);
    sf_elf_func_syms(elf, 1, keep_name, g);
    if (scan(g, elf, &edges, &nedges) < 0)
        goto fail;
    qsort(edges, nedges, sizeof *edges, cmp_edge);
    g->callees = malloc((nedges ? nedges : 1) * sizeof *g->callees);
    if (!g->callees)
        goto fail;
    size_t j = 0, k = 0;
    for (size_t i = 0; i < g->n; i++) {
        g->s[i].e0 = (uint32_t)j;
        while (k < nedges && edges[k].from == i) { /* sorted, once each */
            if (j == g->s[i].e0 || g->callees[j - 1] != edges[k].to)
                g->callees[j++] = edges[k].to;
            k++;
        }
        g->s[i].e1 = (uint32_t)j;
    }
    goto out;
fail:
    graph_free(g);
    g = NULL;
out:
    free(edges);
    if (elf)
        elf_end(elf);
    close(fd);
    return g;
}

/* memcmp, for pointers that may be NULL when n is 0 */
static int same(const void *a, const void *b, size_t n)
{
    return !n || !memcmp(a, b, n);
}

/* Wait until g's fields are read (sf_callgraph_load's thread). */
static void wait_ready(const struct sf_callgraph *cg)
{
    struct sf_callgraph *g = (struct sf_callgraph *)cg;
    if (atomic_load_explicit(&g->ready, memory_order_acquire))
        return;
    pthread_mutex_lock(&g->mu);
    while (!atomic_load_explicit(&g->ready, memory_order_acquire))
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

/* Read the graph into the shell g (path, build-id and functions set). A
 * file that cannot be read or does not match leaves it with no symbols and
 * unwinds 0: answered as a NULL graph (not known) would be. */
static void fill(struct sf_callgraph *g)
{
    struct sf_callgraph *r = load(g->path, g->build_id, g->build_id_len, g->func_copy, g->nx);
    if (r) {
        g->s = r->s;
        g->n = r->n;
        g->cap = r->cap;
        g->bucket = r->bucket;
        g->nbuckets = r->nbuckets;
        g->shift = r->shift;
        g->lo = r->lo;
        g->start = r->start;
        g->nstart = r->nstart;
        g->x2s = r->x2s;
        g->callees = r->callees;
        g->imports = r->imports;
        g->impname = r->impname;
        g->nimp = r->nimp;
        g->unwinds = r->unwinds;
        free(r);
    }
    pthread_mutex_lock(&g->mu);
    atomic_store_explicit(&g->ready, 1, memory_order_release);
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void *fill_thread(void *arg)
{
    fill(arg);
    return NULL;
}

struct sf_callgraph *sf_callgraph_load(const char *path, const uint8_t *build_id,
                                       uint32_t build_id_len, const uint64_t *func_addr,
                                       uint32_t nfuncs)
{
    struct sf_callgraph *g;
    if (build_id_len > sizeof g->build_id) { /* not shared */
        if ((g = load(path, build_id, build_id_len, func_addr, nfuncs))) {
            g->refs = 1;
            g->ready = 1;
        }
        return g;
    }
    /* a second worker asking for a graph being read gets it, and waits
     * for it at its first question instead of building its own */
    pthread_mutex_lock(&loaded_lock);
    for (g = loaded; g; g = g->next)
        if (g->nx == nfuncs && g->build_id_len == build_id_len && !strcmp(g->path, path) &&
            same(g->build_id, build_id, build_id_len) &&
            same(g->func_copy, func_addr, (size_t)nfuncs * sizeof *func_addr))
            break;
    int mine = 0; /* this call made g: it reads it if no thread does */
    if (g) {
        g->refs++;
    } else if ((g = calloc(1, sizeof *g))) {
        mine = 1;
        g->path = strdup(path);
        g->func_copy = malloc((nfuncs ? nfuncs : 1) * sizeof *func_addr);
        if (!g->path || !g->func_copy) {
            graph_free(g);
            g = NULL;
        } else {
            if (nfuncs)
                memcpy(g->func_copy, func_addr, (size_t)nfuncs * sizeof *func_addr);
            if (build_id_len)
                memcpy(g->build_id, build_id, build_id_len);
            g->build_id_len = build_id_len;
            g->nx = nfuncs; /* also when the object does not unwind */
            g->refs = 1;
            pthread_mutex_init(&g->mu, NULL);
            pthread_cond_init(&g->cv, NULL);
            g->next = loaded;
            loaded = g;
            /* read in its own thread: the caller names the object's
             * functions meanwhile (the symbolizer reads its symbols) */
            g->threaded = pthread_create(&g->th, NULL, fill_thread, g) == 0;
        }
    }
    pthread_mutex_unlock(&loaded_lock);
    if (g && mine && !g->threaded)
        fill(g); /* no thread: read here (another asker waits on ready) */
    return g;
}

int sf_callgraph_unwinds(const struct sf_callgraph *g)
{
    if (g)
        wait_ready(g);
    return g && g->unwinds;
}

int sf_callgraph_may_call_any(const struct sf_callgraph *g, uint32_t callee)
{
    if (g)
        wait_ready(g);
    return !g || !g->callees || callee >= g->nx || !g->x2s[callee] ||
           g->s[g->x2s[callee] - 1].taken;
}

int sf_callgraph_may_call(const struct sf_callgraph *g, struct sf_cgwalk **wp, uint32_t caller,
                          uint32_t callee)
{
    if (sf_callgraph_may_call_any(g, callee) || caller >= g->nx || !g->x2s[caller])
        return 1; /* not known (or not scanned): assume it can */
    uint32_t a = g->x2s[caller] - 1, b = g->x2s[callee] - 1;
    /* the common case, a direct call: a's own few edges, sorted */
    const uint32_t *lo = g->callees + g->s[a].e0, *hi = g->callees + g->s[a].e1;
    while (lo < hi) {
        const uint32_t *m = lo + (hi - lo) / 2;
        if (*m < b)
            lo = m + 1;
        else
            hi = m;
    }
    if (lo < g->callees + g->s[a].e1 && *lo == b)
        return 1;
    struct sf_cgwalk *w = *wp;
    if (!w) {
        w = *wp = sf_xcalloc(1, sizeof *w);
        w->seen = sf_xcalloc(g->n, sizeof *w->seen);
        w->queue = sf_xrealloc(NULL, g->n * sizeof *w->queue);
    }
    uint64_t *slot = sf_map_get(&w->cache, (uint64_t)caller << 32 | callee, 1);
    if (*slot)
        return (int)*slot - 1;
    /* breadth-first from a, through functions the log does not show */
    if (++w->stamp == 0) {
        memset(w->seen, 0, g->n * sizeof *w->seen);
        w->stamp = 1;
    }
    size_t qh = 0, qt = 0;
    int found = 0;
    w->queue[qt++] = a;
    w->seen[a] = w->stamp;
    while (qh < qt && !found) {
        const struct fsym *f = &g->s[w->queue[qh++]];
        for (uint32_t e = f->e0; e < f->e1; e++) {
            uint32_t c = g->callees[e];
            if (c == b) {
                found = 1;
                break;
            }
            if (w->seen[c] == w->stamp || g->s[c].xidx >= 0)
                continue;
            w->seen[c] = w->stamp;
            w->queue[qt++] = c;
        }
    }
    slot = sf_map_get(&w->cache, (uint64_t)caller << 32 | callee, 1);
    *slot = (uint64_t)found + 1;
    return found;
}

const char *sf_callgraph_export_name(const struct sf_callgraph *g, uint32_t idx)
{
    if (g)
        wait_ready(g);
    return g && g->x2s && idx < g->nx && g->x2s[idx] ? g->s[g->x2s[idx] - 1].name : NULL;
}

int sf_callgraph_may_call_import(const struct sf_callgraph *g, struct sf_cgwalk **wp,
                                 uint32_t caller, const char *name)
{
    if (g)
        wait_ready(g);
    if (!g || !g->imports || !name || caller >= g->nx || !g->x2s[caller])
        return 0;
    uint32_t want = UINT32_MAX;
    for (uint32_t i = 0; i < g->nimp && want == UINT32_MAX; i++)
        if (!strcmp(g->impname[i], name))
            want = i;
    if (want == UINT32_MAX)
        return 0; /* the object calls nothing of that name */
    struct sf_cgwalk *w = *wp;
    if (!w) {
        w = *wp = sf_xcalloc(1, sizeof *w);
        w->seen = sf_xcalloc(g->n, sizeof *w->seen);
        w->queue = sf_xrealloc(NULL, g->n * sizeof *w->queue);
    }
    if (++w->stamp == 0) {
        memset(w->seen, 0, g->n * sizeof *w->seen);
        w->stamp = 1;
    }
    /* breadth-first from caller, through functions the log does not show */
    size_t qh = 0, qt = 0;
    uint32_t a = g->x2s[caller] - 1;
    w->queue[qt++] = a;
    w->seen[a] = w->stamp;
    while (qh < qt) {
        const struct fsym *f = &g->s[w->queue[qh++]];
        for (uint32_t e = f->i0; e < f->i1; e++)
            if (g->imports[e] == want)
                return 1;
        for (uint32_t e = f->e0; e < f->e1; e++) {
            uint32_t c = g->callees[e];
            if (w->seen[c] == w->stamp || g->s[c].xidx >= 0)
                continue;
            w->seen[c] = w->stamp;
            w->queue[qt++] = c;
        }
    }
    return 0;
}

void sf_cgwalk_free(struct sf_cgwalk *w)
{
    if (!w)
        return;
    free(w->seen);
    free(w->queue);
    sf_map_free(&w->cache);
    free(w);
}

static void graph_free(struct sf_callgraph *g)
{
    if (!g)
        return;
    for (size_t i = 0; g->s && i < g->n; i++)
        free(g->s[i].name);
    for (uint32_t i = 0; i < g->nimp; i++)
        free(g->impname[i]);
    free(g->impname);
    free(g->imports);
    free(g->s);
    free(g->x2s);
    free(g->bucket);
    free(g->start);
    free(g->callees);
    free(g->path);
    free(g->func_copy);
    free(g);
}

void sf_callgraph_free(struct sf_callgraph *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&loaded_lock);
    int last = --g->refs == 0;
    if (last)
        for (struct sf_callgraph **p = &loaded; *p; p = &(*p)->next)
            if (*p == g) {
                *p = g->next;
                break;
            }
    pthread_mutex_unlock(&loaded_lock);
    if (!last)
        return;
    if (g->threaded)
        pthread_join(g->th, NULL);
    else
        wait_ready(g);
    graph_free(g);
}
