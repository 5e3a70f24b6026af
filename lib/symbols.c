/*
 * symbols.c - the symbolizer: finds an object's symbol and debug files
 * (checking build-ids), reads .symtab/.dynsym with libelf, demangles with
 * libiberty, and looks up source lines with libdw, reading each compile unit
 * once (sorted tables, binary search), so that naming every function of an
 * object costs O(n log n) in its size. See symbols.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <gelf.h>
#include <libelf.h>
#include <libiberty/demangle.h>
#include <zlib.h>

#include "symbols.h"

/* An ELF file we opened. */
struct elffile {
    char *path;
    int fd;
    Elf *elf;
    uint8_t bid[64];
    size_t bidlen;
    int has_symtab, has_dynsym, has_info;
    struct elffile *next; /* in the list of all opened files */
};

struct sym { /* sorted by addr, the first member (count_le) */
    uint64_t addr, size;
    const char *mangled; /* in the ELF string table */
    const char *name;    /* demangled, lazily */
    int rank;            /* 0 global, 1 weak, 2 local */
};

struct curange { /* sorted by lo (count_le) */
    uint64_t lo, hi;
    size_t ci; /* its struct cuinfo in the object's cuinfo[] */
};

/* A stretch of addresses and the first top-level DIE (index) containing it
 * (sorted by lo: count_le). */
struct topseg {
    uint64_t lo, hi;
    uint32_t top;
};

struct lrow { /* sorted by addr, then row (count_le) */
    uint64_t addr;
    size_t row;
};

/* Everything one CU's questions need, made on the first one. */
struct cuinfo {
    Dwarf_Die cu;
    int tops_done, lines_done, nested_done;
    Dwarf_Die *tops;     /* its top-level DIEs with address ranges, in DIE order */
    size_t ntops;        /* ... and how many */
    size_t err_at;       /* tops before the first whose ranges failed (SIZE_MAX: none) */
    struct topseg *segs; /* sorted, disjoint */
    size_t nsegs;
    struct lrow *rows; /* its line table's rows with an address, by (address, row) */
    size_t nrows;
    Dwarf_Lines *lines;
    struct sf_map nested; /* DIE addr of a subprogram -> nestdies index + 1, or NEST_NONE */
    Dwarf_Die *nestdies;  /* the nearest enclosing subprogram of each nested one */
    size_t nnest, capnest;
    struct sf_map paths; /* file name pointer -> the name made absolute */
};

#define NEST_NONE UINT64_MAX

static void free_cuinfo(struct cuinfo *c)
{
    free(c->tops);
    free(c->segs);
    free(c->rows);
    free(c->nestdies);
    sf_map_free(&c->nested);
    sf_map_free(&c->paths);
}

struct sf_symobj {
    char *path;
    uint8_t *bid;
    size_t bidlen;
    struct sf_syms *s;
    struct elffile *main;   /* the object file, when it opened and matched */
    struct elffile *symsrc; /* where the symbols came from */
    struct elffile *dwsrc;  /* where DWARF comes from (NULL: none) */
    struct sym *syms;
    size_t nsyms;
    struct sf_map names; /* vaddr -> const char * */
    char *warning;
    int dw_tried;
    Dwarf *dw;
    struct curange *cus;
    size_t ncus;
    struct cuinfo *cuinfo; /* one per CU asked about (see "source lines") */
    size_t ncuinfo, capcuinfo;
    struct sf_map cubydie; /* CU DIE addr -> cuinfo index + 1 */
};

struct arena {
    struct arena *next;
    size_t used, cap;
    char data[];
};

struct sf_syms {
    char *debug_root;
    int quiet;
    int lines;             /* look up source lines (sf_syms_set_lines) */
    struct elffile *files; /* every opened file */
    struct elffile **user; /* -s files */
    size_t nuser;
    struct sf_symobj **objs;
    size_t nobjs;
    struct sf_map byobj; /* struct sf_obj * -> struct sf_symobj * */
    struct arena *arena;
    /* Held by every entry point that reads or fills the caches, so that
     * the workers of one run (lib/runcalls.c) share one symbolizer: each
     * object's symbols are read once, whatever the number of workers. */
    pthread_mutex_t lock;
};

/* ---- memory ------------------------------------------------------------- */

static void *sy_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "sftrace: out of memory\n");
        exit(1);
    }
    return p;
}

static void *sy_realloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "sftrace: out of memory\n");
        exit(1);
    }
    return p;
}

static char *sy_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(sy_malloc(n), s, n);
}

static char *arena_str(struct sf_syms *s, const char *str)
{
    size_t n = strlen(str) + 1;
    struct arena *a = s->arena;
    if (!a || a->cap - a->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        a = sy_malloc(sizeof *a + cap);
        a->next = s->arena;
        a->used = 0;
        a->cap = cap;
        s->arena = a;
    }
    char *p = a->data + a->used;
    memcpy(p, str, n);
    a->used += n;
    return p;
}

/* How many of the n elements of base (size bytes each, sorted by a leading
 * uint64_t key) have a key at most x. */
static size_t count_le(const void *base, size_t n, size_t size, uint64_t x)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t k;
        memcpy(&k, (const char *)base + mid * size, sizeof k);
        if (k <= x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- demangling --------------------------------------------------------- */

static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

char *sf_demangle(const char *sym)
{
    /* DMGL_AUTO, not DMGL_RUST: with the Rust style alone, cplus_demangle
     * refuses every C++ name. Auto tries Rust (legacy and v0) first, then
     * the C++ ABI. */
    char *d = NULL;
    if (sym[0] == '_' && (sym[1] == 'Z' || sym[1] == 'R'))
        d = cplus_demangle(sym, DMGL_PARAMS | DMGL_ANSI | DMGL_AUTO);
    if (!d)
        return sy_strdup(sym);
    /* Legacy Rust names end in ::h<16 hex>; libiberty drops it in its
     * non-verbose mode, but be sure, as rustc-demangle's {:#} does. */
    size_t n = strlen(d), m = strlen(sym);
    if (n > 19 && !strncmp(sym, "_ZN", 3) && m > 20 && sym[m - 1] == 'E' &&
        !strncmp(d + n - 19, "::h", 3) && is_hex(d + n - 16, 16))
        d[n - 19] = 0;
    return d;
}

/* ---- ELF files ---------------------------------------------------------- */

static struct elffile *open_elf(struct sf_syms *s, const char *path, char *err, size_t errlen)
{
    for (struct elffile *f = s->files; f; f = f->next)
        if (!strcmp(f->path, path))
            return f;
    /* O_NONBLOCK: a log may name a FIFO; only regular files are read. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (err)
            snprintf(err, errlen, "%s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (err)
            snprintf(err, errlen, "not a regular file");
        close(fd);
        return NULL;
    }
    Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    if (!elf || elf_kind(elf) != ELF_K_ELF) {
        if (err)
            snprintf(err, errlen, "not an ELF file");
        if (elf)
            elf_end(elf);
        close(fd);
        return NULL;
    }
    struct elffile *f = sy_malloc(sizeof *f);
    memset(f, 0, sizeof *f);
    f->path = sy_strdup(path);
    f->fd = fd;
    f->elf = elf;
    const void *bid = NULL;
    ssize_t n = dwelf_elf_gnu_build_id(elf, &bid);
    if (n > 0 && (size_t)n <= sizeof f->bid) {
        memcpy(f->bid, bid, (size_t)n);
        f->bidlen = (size_t)n;
    }
    size_t shstrndx;
    if (elf_getshdrstrndx(elf, &shstrndx) == 0) {
        for (Elf_Scn *scn = NULL; (scn = elf_nextscn(elf, scn));) {
            GElf_Shdr sh;
            if (!gelf_getshdr(scn, &sh))
                continue;
            if (sh.sh_type == SHT_SYMTAB)
                f->has_symtab = 1;
            else if (sh.sh_type == SHT_DYNSYM)
                f->has_dynsym = 1;
            const char *name = elf_strptr(elf, shstrndx, sh.sh_name);
            if (name && sh.sh_type != SHT_NOBITS &&
                (!strcmp(name, ".debug_info") || !strcmp(name, ".zdebug_info")))
                f->has_info = 1;
        }
    }
    f->next = s->files;
    s->files = f;
    return f;
}

static int same_bid(const struct elffile *f, const uint8_t *bid, size_t len)
{
    return f->bidlen == len && !memcmp(f->bid, bid, len);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static uint32_t file_crc(int fd)
{
    uLong crc = crc32(0, Z_NULL, 0);
    unsigned char buf[65536];
    off_t off = 0;
    for (;;) {
        ssize_t r = pread(fd, buf, sizeof buf, off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        crc = crc32(crc, buf, (uInt)r);
        off += r;
    }
    return (uint32_t)crc;
}

/* The separate debug file of f (checked), or NULL. */
static struct elffile *find_debug(struct sf_syms *s, struct elffile *f, const char *objpath)
{
    char path[4096];
    if (f && f->bidlen >= 2) {
        int n = snprintf(path, sizeof path, "%s/.build-id/%02x/", s->debug_root, f->bid[0]);
        for (size_t i = 1; i < f->bidlen && n > 0 && (size_t)n < sizeof path - 8; i++)
            n += snprintf(path + n, sizeof path - n, "%02x", f->bid[i]);
        if (n > 0 && (size_t)n < sizeof path - 8) {
            strcat(path, ".debug");
            struct elffile *d = open_elf(s, path, NULL, 0);
            if (d && d != f && same_bid(d, f->bid, f->bidlen))
                return d;
        }
    }
    if (!f)
        return NULL;
    GElf_Word crc = 0;
    const char *link = dwelf_elf_gnu_debuglink(f->elf, &crc);
    if (!link || !*link || strchr(link, '/'))
        return NULL;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", objpath);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    for (int i = 0; i < 3; i++) {
        int n;
        if (i == 0)
            n = snprintf(path, sizeof path, "%s/%s", dir, link);
        else if (i == 1)
            n = snprintf(path, sizeof path, "%s/.debug/%s", dir, link);
        else
            n = snprintf(path, sizeof path, "%s%s%s/%s", s->debug_root, dir[0] == '/' ? "" : "/",
                         dir, link);
        if (n < 0 || (size_t)n >= sizeof path)
            continue;
        struct elffile *d = open_elf(s, path, NULL, 0);
        if (!d || d == f)
            continue;
        if (f->bidlen ? same_bid(d, f->bid, f->bidlen) : file_crc(d->fd) == crc)
            return d;
    }
    return NULL;
}

static int sym_cmp(const void *a, const void *b)
{
    const struct sym *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    return strcmp(x->mangled, y->mangled);
}

void sf_elf_func_syms(Elf *elf, int dynsym, sf_func_sym_fn *fn, void *ctx)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != (dynsym ? SHT_DYNSYM : SHT_SYMTAB))
            continue;
        Elf_Data *data = elf_getdata(scn, NULL);
        if (!data || !sh.sh_entsize)
            continue;
        size_t n = sh.sh_size / sh.sh_entsize;
        /* An ELF64 table in memory is an array of Elf64_Sym (GElf_Sym is
         * the same type) and a string table that ends in a NUL holds only
         * terminated strings: read both in place, without a call to
         * gelf_getsym and elf_strptr per symbol (a third of reading the
         * symbols of an object of 100,000 functions). */
        Elf_Data *strd = elf_getdata(elf_getscn(elf, sh.sh_link), NULL);
        if (gelf_getclass(elf) == ELFCLASS64 && data->d_type == ELF_T_SYM && data->d_buf &&
            data->d_size / sizeof(Elf64_Sym) >= n && strd && strd->d_buf && strd->d_size &&
            ((const char *)strd->d_buf)[strd->d_size - 1] == '\0') {
            const Elf64_Sym *sy = data->d_buf;
            const char *strs = strd->d_buf;
            for (size_t i = 0; i < n; i++) {
                const Elf64_Sym *st = &sy[i];
                int type = ELF64_ST_TYPE(st->st_info), bind = ELF64_ST_BIND(st->st_info);
                if ((type != STT_FUNC && type != STT_GNU_IFUNC) || st->st_shndx == SHN_UNDEF ||
                    !st->st_value || st->st_name >= strd->d_size || !strs[st->st_name])
                    continue;
                fn(ctx, st, strs + st->st_name, bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2);
            }
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            GElf_Sym st;
            if (!gelf_getsym(data, (int)i, &st))
                break;
            int type = GELF_ST_TYPE(st.st_info), bind = GELF_ST_BIND(st.st_info);
            if ((type != STT_FUNC && type != STT_GNU_IFUNC) || st.st_shndx == SHN_UNDEF ||
                !st.st_value)
                continue;
            const char *name = elf_strptr(elf, sh.sh_link, st.st_name);
            if (!name || !*name)
                continue;
            fn(ctx, &st, name, bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2);
        }
    }
}

struct load_ctx {
    struct sf_symobj *o;
    size_t cap;
};

static void load_one(void *ctx, const GElf_Sym *st, const char *name, int rank)
{
    struct load_ctx *c = ctx;
    struct sf_symobj *o = c->o;
    if (o->nsyms == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        o->syms = sy_realloc(o->syms, c->cap * sizeof *o->syms);
    }
    struct sym *y = &o->syms[o->nsyms++];
    y->addr = st->st_value;
    y->size = st->st_size;
    y->mangled = name;
    y->name = NULL;
    y->rank = rank;
}

/* qsort by sym_cmp, in linear time for the addresses: a stable radix sort
 * on the bytes of the address that differ, then each run of one address
 * (aliases: a few symbols) by the rest of sym_cmp. An object of 100,000
 * functions took 9 ms in qsort, under the symbolizer's lock, which the
 * other workers of a run wait for at their first function. */
static void sort_syms(struct sym *v, size_t n)
{
    if (n < 2)
        return;
    uint64_t diff = 0;
    for (size_t i = 1; i < n; i++)
        diff |= v[i].addr ^ v[0].addr;
    struct sym *tmp = sy_malloc(n * sizeof *tmp), *src = v, *dst = tmp;
    for (unsigned sh = 0; sh < 64; sh += 8) {
        if (!((diff >> sh) & 0xff))
            continue;
        size_t cnt[256] = {0}, pos = 0;
        for (size_t i = 0; i < n; i++)
            cnt[(src[i].addr >> sh) & 0xff]++;
        for (unsigned b = 0; b < 256; b++) {
            size_t c = cnt[b];
            cnt[b] = pos;
            pos += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[cnt[(src[i].addr >> sh) & 0xff]++] = src[i];
        struct sym *t = src;
        src = dst;
        dst = t;
    }
    if (src != v)
        memcpy(v, src, n * sizeof *v);
    free(tmp);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && v[j].addr == v[i].addr)
            j++;
        if (j - i > 16) {
            qsort(v + i, j - i, sizeof *v, sym_cmp);
        } else {
            for (size_t k = i + 1; k < j; k++) { /* insertion: stable, as msort */
                struct sym x = v[k];
                size_t m = k;
                for (; m > i && sym_cmp(&v[m - 1], &x) > 0; m--)
                    v[m] = v[m - 1];
                v[m] = x;
            }
        }
        i = j;
    }
}

static void load_syms(struct sf_symobj *o, struct elffile *f, int dynsym)
{
    struct load_ctx c = {o, 0};
    sf_elf_func_syms(f->elf, dynsym, load_one, &c);
    if (!o->nsyms)
        return;
    sort_syms(o->syms, o->nsyms);
    size_t w = 0; /* one symbol per address: the first (global before local) */
    for (size_t i = 0; i < o->nsyms; i++)
        if (!w || o->syms[w - 1].addr != o->syms[i].addr)
            o->syms[w++] = o->syms[i];
    o->nsyms = w;
}

static void warn(struct sf_symobj *o, const char *why)
{
    size_t n = strlen(o->path) + strlen(why) + 32;
    o->warning = sy_malloc(n);
    snprintf(o->warning, n, "%s: %s; showing addresses", o->path, why);
    if (!o->s->quiet)
        fprintf(stderr, "sftrace: warning: %s\n", o->warning);
}

static struct elffile *user_match(struct sf_syms *s, const char *path, const uint8_t *bid,
                                  size_t len)
{
    for (size_t i = 0; i < s->nuser; i++) {
        struct elffile *u = s->user[i];
        if (len ? same_bid(u, bid, len) : !strcmp(base_name(u->path), base_name(path)))
            return u;
    }
    return NULL;
}

static void resolve(struct sf_symobj *o)
{
    struct sf_syms *s = o->s;
    char err[256] = "";
    struct elffile *user = user_match(s, o->path, o->bid, o->bidlen);
    struct elffile *f = open_elf(s, o->path, err, sizeof err);
    int mismatch = f && o->bidlen && !same_bid(f, o->bid, o->bidlen);
    if (f && !mismatch)
        o->main = f;
    struct elffile *debug = NULL;
    if (o->main) {
        if (!o->main->has_symtab || !o->main->has_info)
            debug = find_debug(s, o->main, o->path);
    } else if (o->bidlen) {
        /* The object is gone or rebuilt: its debug file may still match. */
        struct elffile fake = {0};
        memcpy(fake.bid, o->bid, o->bidlen < sizeof fake.bid ? o->bidlen : sizeof fake.bid);
        fake.bidlen = o->bidlen;
        debug = find_debug(s, &fake, o->path);
        if (debug && !same_bid(debug, o->bid, o->bidlen))
            debug = NULL;
    }

    int dyn = 0;
    if (user && user->has_symtab)
        o->symsrc = user;
    else if (o->main && o->main->has_symtab)
        o->symsrc = o->main;
    else if (debug && debug->has_symtab)
        o->symsrc = debug;
    else if (user && user->has_dynsym)
        o->symsrc = user, dyn = 1;
    else if (o->main && o->main->has_dynsym)
        o->symsrc = o->main, dyn = 1;
    if (o->symsrc)
        load_syms(o, o->symsrc, dyn);

    if (user && user->has_info)
        o->dwsrc = user;
    else if (o->main && o->main->has_info)
        o->dwsrc = o->main;
    else if (debug && debug->has_info)
        o->dwsrc = debug;

    if (o->nsyms)
        return;
    o->symsrc = NULL;
    if (mismatch)
        warn(o, "build-id differs from the recorded one");
    else if (!f)
        warn(o, err[0] ? err : "cannot open");
    else
        warn(
            o,
            "no symbols (stripped? name a copy with them, or its debug file, with --symbols FILE)");
}

/* ---- the symbolizer ----------------------------------------------------- */

struct sf_syms *sf_syms_new(void)
{
    elf_version(EV_CURRENT);
    struct sf_syms *s = sy_malloc(sizeof *s);
    memset(s, 0, sizeof *s);
    s->debug_root = sy_strdup("/usr/lib/debug");
    s->lines = 1;
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

void sf_syms_free(struct sf_syms *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nobjs; i++) {
        struct sf_symobj *o = s->objs[i];
        for (size_t k = 0; k < o->ncuinfo; k++)
            free_cuinfo(&o->cuinfo[k]);
        free(o->cuinfo);
        sf_map_free(&o->cubydie);
        if (o->dw)
            dwarf_end(o->dw);
        free(o->cus);
        free(o->syms);
        sf_map_free(&o->names);
        free(o->warning);
        free(o->path);
        free(o->bid);
        free(o);
    }
    for (struct elffile *f = s->files, *n; f; f = n) {
        n = f->next;
        elf_end(f->elf);
        close(f->fd);
        free(f->path);
        free(f);
    }
    for (struct arena *a = s->arena, *n; a; a = n) {
        n = a->next;
        free(a);
    }
    sf_map_free(&s->byobj);
    free(s->objs);
    free(s->user);
    free(s->debug_root);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void sf_syms_set_debug_root(struct sf_syms *s, const char *dir)
{
    free(s->debug_root);
    s->debug_root = sy_strdup(dir);
}

void sf_syms_set_quiet(struct sf_syms *s, int quiet)
{
    s->quiet = quiet;
}

void sf_syms_set_lines(struct sf_syms *s, int lines)
{
    s->lines = lines;
}

int sf_syms_add_file(struct sf_syms *s, const char *path, char *err, size_t errlen)
{
    char why[256];
    pthread_mutex_lock(&s->lock);
    struct elffile *f = open_elf(s, path, why, sizeof why);
    if (f) {
        s->user = sy_realloc(s->user, (s->nuser + 1) * sizeof *s->user);
        s->user[s->nuser++] = f;
    }
    pthread_mutex_unlock(&s->lock);
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, why);
        return -1;
    }
    return 0;
}

static struct sf_symobj *syms_object(struct sf_syms *s, const char *path, const uint8_t *build_id,
                                     size_t build_id_len)
{
    for (size_t i = 0; i < s->nobjs; i++) {
        struct sf_symobj *o = s->objs[i];
        if (o->bidlen == build_id_len && !strcmp(o->path, path) &&
            (!build_id_len || !memcmp(o->bid, build_id, build_id_len)))
            return o;
    }
    struct sf_symobj *o = sy_malloc(sizeof *o);
    memset(o, 0, sizeof *o);
    o->s = s;
    o->path = sy_strdup(path);
    if (build_id_len) {
        o->bid = sy_malloc(build_id_len);
        memcpy(o->bid, build_id, build_id_len);
        o->bidlen = build_id_len;
    }
    s->objs = sy_realloc(s->objs, (s->nobjs + 1) * sizeof *s->objs);
    s->objs[s->nobjs++] = o;
    resolve(o);
    return o;
}

struct sf_symobj *sf_syms_object(struct sf_syms *s, const char *path, const uint8_t *build_id,
                                 size_t build_id_len)
{
    pthread_mutex_lock(&s->lock);
    struct sf_symobj *o = syms_object(s, path, build_id, build_id_len);
    pthread_mutex_unlock(&s->lock);
    return o;
}

int sf_symobj_ok(const struct sf_symobj *o)
{
    return o->warning == NULL;
}
const char *sf_symobj_warning(const struct sf_symobj *o)
{
    return o->warning;
}
const char *sf_symobj_symfile(const struct sf_symobj *o)
{
    return o->symsrc ? o->symsrc->path : NULL;
}

static const char *symobj_name(struct sf_symobj *o, uint64_t vaddr)
{
    uint64_t *slot = sf_map_get(&o->names, vaddr, 0);
    if (slot)
        return (const char *)(uintptr_t)*slot;
    char buf[64];
    const char *name = NULL;
    size_t lo = count_le(o->syms, o->nsyms, sizeof *o->syms, vaddr);
    if (lo) {
        struct sym *y = &o->syms[lo - 1];
        if (!y->name && !(y->mangled[0] == '_' && (y->mangled[1] == 'Z' || y->mangled[1] == 'R'))) {
            y->name = y->mangled; /* not mangled (sf_demangle would copy it) */
        } else if (!y->name) {
            char *d = sf_demangle(y->mangled);
            y->name = arena_str(o->s, d);
            free(d);
        }
        if (y->addr == vaddr) {
            name = y->name;
        } else if (vaddr - y->addr < y->size) {
            size_t n = strlen(y->name) + 32;
            char *t = sy_malloc(n);
            snprintf(t, n, "%s+0x%" PRIx64, y->name, vaddr - y->addr);
            name = arena_str(o->s, t);
            free(t);
        }
    }
    if (!name) {
        snprintf(buf, sizeof buf, "0x%" PRIx64, vaddr);
        name = arena_str(o->s, buf);
    }
    *sf_map_get(&o->names, vaddr, 1) = (uint64_t)(uintptr_t)name;
    return name;
}

const char *sf_symobj_name(struct sf_symobj *o, uint64_t vaddr)
{
    pthread_mutex_lock(&o->s->lock);
    const char *name = symobj_name(o, vaddr);
    pthread_mutex_unlock(&o->s->lock);
    return name;
}

/* ---- source lines ------------------------------------------------------- */

/*
 * The answers are those the symbolizer gave when it asked libdw's
 * dwarf_getscopes (elfutils 0.188) for every address: the declaration of the
 * first DW_TAG_subprogram among the scopes containing the address, else the
 * first line-table row with a line at most 64 bytes after it. But
 * dwarf_getscopes walks the CU's DIE tree from its root on every call, and
 * the old line fallback scanned the whole line table, so a log touching all
 * N functions of one CU cost O(N^2). Here each CU is read once: its
 * top-level DIEs' address ranges go into a sorted table, its line table into
 * a sorted array; a question then reads only the one function's own DIEs.
 *
 * What dwarf_getscopes (through __libdw_visit_scopes) does, and this code
 * mirrors:
 *  - it visits the CU's children in order (the children of an imported unit
 *    in its place), and descends only into a DIE that contains the address
 *    (dwarf_haspc) and whose tag may own scopes (may_have_scopes below); so
 *    a DIE without addresses, such as a namespace or a class, hides every
 *    function inside it. Rust functions (all in namespaces) and C++
 *    functions in namespaces get the line-table answer; C functions and C++
 *    methods (defined at CU level with DW_AT_specification) their
 *    declaration, if dwarf_decl_file names its file (elfutils 0.188 takes
 *    DWARF 5's file 0, clang's number for the CU's own source file when
 *    given by a relative path, for none: then the line table answers).
 *  - the innermost scope is the end of the path that, at each level, takes
 *    the first child containing the address;
 *  - when that path holds a DW_TAG_inlined_subroutine, the scopes above the
 *    deepest one are not the path's but those enclosing its abstract origin;
 *  - an error reading a DIE's ranges before the address is found makes the
 *    whole call fail (then the line table answers).
 */

static int cu_cmp(const void *a, const void *b)
{
    const struct curange *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The cuinfo index of a CU DIE (made on first use). */
static size_t cuinfo_of(struct sf_symobj *o, const Dwarf_Die *cu)
{
    uint64_t *slot = sf_map_get(&o->cubydie, (uint64_t)(uintptr_t)cu->addr, 1);
    if (!*slot) {
        if (o->ncuinfo == o->capcuinfo) {
            o->capcuinfo = o->capcuinfo ? o->capcuinfo * 2 : 64;
            o->cuinfo = sy_realloc(o->cuinfo, o->capcuinfo * sizeof *o->cuinfo);
        }
        struct cuinfo *c = &o->cuinfo[o->ncuinfo++];
        memset(c, 0, sizeof *c);
        c->cu = *cu;
        c->err_at = SIZE_MAX;
        *slot = o->ncuinfo;
    }
    return (size_t)(*slot - 1);
}

static void load_dwarf(struct sf_symobj *o)
{
    o->dw_tried = 1;
    if (!o->dwsrc)
        return;
    o->dw = dwarf_begin_elf(o->dwsrc->elf, DWARF_C_READ, NULL);
    if (!o->dw)
        return;
    /* dwarf_addrdie needs .debug_aranges, which clang does not emit: map
     * address ranges to CUs ourselves. */
    size_t cap = 0;
    Dwarf_CU *cu = NULL;
    Dwarf_Die cudie;
    uint8_t unit_type;
    while (dwarf_get_units(o->dw, cu, &cu, NULL, &unit_type, &cudie, NULL) == 0) {
        if (unit_type != DW_UT_compile && unit_type != DW_UT_skeleton && unit_type != DW_UT_partial)
            continue;
        Dwarf_Addr base, start, end;
        ptrdiff_t off = 0;
        size_t ci = SIZE_MAX;
        while ((off = dwarf_ranges(&cudie, off, &base, &start, &end)) > 0) {
            if (end <= start)
                continue;
            if (o->ncus == cap) {
                cap = cap ? cap * 2 : 64;
                o->cus = sy_realloc(o->cus, cap * sizeof *o->cus);
            }
            if (ci == SIZE_MAX)
                ci = cuinfo_of(o, &cudie);
            o->cus[o->ncus].lo = start;
            o->cus[o->ncus].hi = end;
            o->cus[o->ncus].ci = ci;
            o->ncus++;
        }
    }
    if (o->ncus) /* qsort(NULL, 0) is undefined */
        qsort(o->cus, o->ncus, sizeof *o->cus, cu_cmp);
}

/* An error dwarf_getscopes stops at: not "none" nor a missing ranges
 * section (those mean "does not contain the address"). libdw's error codes
 * are private; its messages are not (untranslated: we never setlocale). */
static int real_error(void)
{
    int e = dwarf_errno();
    const char *msg = e ? dwarf_errmsg(e) : NULL;
    return msg && strcmp(msg, ".debug_ranges section missing") &&
           strcmp(msg, ".debug_rnglists section missing");
}

/* __libdw_visit_scopes descends into these only. */
static int may_have_scopes(int tag)
{
    switch (tag) {
    case DW_TAG_compile_unit:
    case DW_TAG_module:
    case DW_TAG_lexical_block:
    case DW_TAG_with_stmt:
    case DW_TAG_catch_block:
    case DW_TAG_try_block:
    case DW_TAG_entry_point:
    case DW_TAG_inlined_subroutine:
    case DW_TAG_subprogram:
    case DW_TAG_namespace:
    case DW_TAG_class_type:
    case DW_TAG_structure_type:
        return 1;
    default:
        return 0;
    }
}

/* Deeper DIE nesting than this is taken for broken DWARF (an error): the
 * walks recurse once per level. */
#define MAX_DEPTH 1024

/* The imported units being walked, innermost first (a cycle is an error). */
struct imports {
    void *addr;
    const struct imports *up;
    int depth;
};

/* visit(ctx, die, imports) for die and each of its following siblings, the
 * children of an imported (partial) unit in its place, as
 * __libdw_visit_scopes's walk_children. Stops at the first non-zero visit
 * and returns it; -1 on a DWARF error. */
typedef int visit_fn(void *ctx, Dwarf_Die *die, const struct imports *imp);

static int each_sibling(Dwarf_Die *first, const struct imports *imp, visit_fn *visit, void *ctx)
{
    Dwarf_Die die = *first;
    int r;
    do {
        while (dwarf_tag(&die) == DW_TAG_imported_unit) {
            Dwarf_Die orig = die, unit, sub;
            Dwarf_Attribute attr;
            if (dwarf_formref_die(dwarf_attr(&orig, DW_AT_import, &attr), &unit) &&
                dwarf_tag(&unit) != DW_TAG_compile_unit && dwarf_child(&unit, &sub) == 0) {
                for (const struct imports *i = imp; i; i = i->up)
                    if (i->addr == orig.addr)
                        return -1;
                struct imports me = {orig.addr, imp, imp ? imp->depth + 1 : 1};
                if (me.depth > MAX_DEPTH)
                    return -1;
                int res = each_sibling(&sub, &me, visit, ctx);
                if (res)
                    return res;
            }
            if ((r = dwarf_siblingof(&orig, &die)) != 0)
                return r < 0 ? -1 : 0;
        }
        int res = visit(ctx, &die, imp);
        if (res)
            return res;
    } while ((r = dwarf_siblingof(&die, &die)) == 0);
    return r < 0 ? -1 : 0;
}

static int each_child(Dwarf_Die *parent, const struct imports *imp, visit_fn *visit, void *ctx)
{
    Dwarf_Die child;
    int r = dwarf_child(parent, &child);
    if (r != 0)
        return r < 0 ? -1 : 0;
    return each_sibling(&child, imp, visit, ctx);
}

/* ---- a CU's top-level DIEs ---- */

struct piece {
    uint64_t lo, hi;
    uint32_t top;
};

struct topwalk {
    struct cuinfo *c;
    int depth; /* namespaces entered */
    size_t captops;
    struct piece *pieces;
    size_t npieces, cappieces;
};

static int visit_top(void *ctx, Dwarf_Die *die, const struct imports *imp)
{
    struct topwalk *w = ctx;
    struct cuinfo *c = w->c;
    Dwarf_Addr base, lo, hi;
    ptrdiff_t off = 0;
    int any = 0;
    while ((off = dwarf_ranges(die, off, &base, &lo, &hi)) > 0) {
        if (hi <= lo)
            continue;
        if (w->npieces == w->cappieces) {
            w->cappieces = w->cappieces ? w->cappieces * 2 : 256;
            w->pieces = sy_realloc(w->pieces, w->cappieces * sizeof *w->pieces);
        }
        w->pieces[w->npieces++] = (struct piece){lo, hi, (uint32_t)c->ntops};
        any = 1;
    }
    if (any) {
        if (c->ntops == w->captops) {
            w->captops = w->captops ? w->captops * 2 : 256;
            c->tops = sy_realloc(c->tops, w->captops * sizeof *c->tops);
        }
        c->tops[c->ntops++] = *die;
    }
    if (off < 0 && real_error()) {
        /* dwarf_haspc fails here for every address not found yet. */
        c->err_at = c->ntops;
        return 1;
    }
    if (c->ntops >= UINT32_MAX - 1)
        return 1; /* more cannot be numbered */
    /* Functions inside namespaces (every Rust function, C++ namespaces,
     * Rust impl blocks as namespaces) are tops too: a namespace has no
     * addresses of its own, so dwarf_getscopes never looked inside one and
     * those functions got the line table's line, not their declaration. */
    int tag = dwarf_tag(die);
    if (!any &&
        (tag == DW_TAG_namespace || tag == DW_TAG_module || tag == DW_TAG_structure_type ||
         tag == DW_TAG_class_type || tag == DW_TAG_union_type) &&
        dwarf_haschildren(die)) {
        if (w->depth >= MAX_DEPTH)
            return -1;
        w->depth++;
        int r = each_child(die, imp, visit_top, w);
        w->depth--;
        return r;
    }
    return 0;
}

static int piece_cmp(const void *a, const void *b)
{
    const struct piece *x = a, *y = b;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    return x->top < y->top ? -1 : x->top > y->top;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Min-heap of pieces by top index: the first DIE (in DIE order) among those
 * containing an address is the one dwarf_getscopes descends into. */
static void heap_push(struct piece *h, size_t *n, struct piece p)
{
    size_t i = (*n)++;
    while (i && h[(i - 1) / 2].top > p.top) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = p;
}

static void heap_pop(struct piece *h, size_t *n)
{
    struct piece last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= *n)
            break;
        if (k + 1 < *n && h[k + 1].top < h[k].top)
            k++;
        if (h[k].top >= last.top)
            break;
        h[i] = h[k];
        i = k;
    }
    if (*n)
        h[i] = last;
}

/* Sweep the pieces into disjoint stretches, each owned by the first DIE
 * containing it: O(n log n) for n ranges. */
static void build_segs(struct cuinfo *c, struct piece *p, size_t n)
{
    if (!n)
        return;
    qsort(p, n, sizeof *p, piece_cmp);
    uint64_t *pos = sy_malloc(2 * n * sizeof *pos);
    for (size_t i = 0; i < n; i++) {
        pos[2 * i] = p[i].lo;
        pos[2 * i + 1] = p[i].hi;
    }
    qsort(pos, 2 * n, sizeof *pos, u64_cmp);
    size_t npos = 0;
    for (size_t i = 0; i < 2 * n; i++)
        if (!npos || pos[npos - 1] != pos[i])
            pos[npos++] = pos[i];
    struct piece *heap = sy_malloc(n * sizeof *heap);
    size_t nheap = 0, next = 0, cap = 0;
    for (size_t i = 0; i + 1 < npos; i++) {
        uint64_t at = pos[i];
        while (next < n && p[next].lo <= at)
            heap_push(heap, &nheap, p[next++]);
        while (nheap && heap[0].hi <= at)
            heap_pop(heap, &nheap);
        if (!nheap)
            continue;
        uint32_t top = heap[0].top;
        if (c->nsegs && c->segs[c->nsegs - 1].top == top && c->segs[c->nsegs - 1].hi == at) {
            c->segs[c->nsegs - 1].hi = pos[i + 1];
            continue;
        }
        if (c->nsegs == cap) {
            cap = cap ? cap * 2 : 256;
            c->segs = sy_realloc(c->segs, cap * sizeof *c->segs);
        }
        c->segs[c->nsegs++] = (struct topseg){at, pos[i + 1], top};
    }
    free(heap);
    free(pos);
}

static void load_tops(struct cuinfo *c)
{
    c->tops_done = 1;
    struct topwalk w = {.c = c};
    if (each_child(&c->cu, NULL, visit_top, &w) < 0 && c->err_at == SIZE_MAX)
        c->err_at = c->ntops; /* the walk broke off: nothing after is reached */
    build_segs(c, w.pieces, w.npieces);
    free(w.pieces);
}

/* The first top-level DIE containing pc, if dwarf_getscopes would reach it. */
static Dwarf_Die *top_of(struct cuinfo *c, uint64_t pc)
{
    if (!c->tops_done)
        load_tops(c);
    size_t lo = count_le(c->segs, c->nsegs, sizeof *c->segs, pc);
    if (!lo || pc >= c->segs[lo - 1].hi)
        return NULL;
    uint32_t t = c->segs[lo - 1].top;
    return t < c->err_at ? &c->tops[t] : NULL;
}

/* ---- the scopes inside one function ---- */

struct path {
    uint64_t pc;
    Dwarf_Die *v; /* the scopes containing pc, outermost first */
    size_t n, cap;
};

static void path_push(struct path *p, const Dwarf_Die *die)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->v = sy_realloc(p->v, p->cap * sizeof *p->v);
    }
    p->v[p->n++] = *die;
}

/* The first child containing pc is on the path; descend into it. */
static int visit_path(void *ctx, Dwarf_Die *die, const struct imports *imp)
{
    struct path *p = ctx;
    int r = dwarf_haspc(die, p->pc);
    if (r < 0 && real_error())
        return -1;
    if (r <= 0)
        return 0;
    path_push(p, die);
    if (p->n > MAX_DEPTH)
        return -1;
    if (may_have_scopes(dwarf_tag(die)) && dwarf_haschildren(die)) {
        r = each_child(die, imp, visit_path, p);
        if (r < 0)
            return -1;
    }
    return 1;
}

struct nestwalk {
    struct cuinfo *c;
    Dwarf_Die anc; /* the nearest enclosing subprogram ... */
    int has_anc;   /* ... if any */
    int depth;
};

static int visit_nested(void *ctx, Dwarf_Die *die, const struct imports *imp)
{
    struct nestwalk *w = ctx;
    int tag = dwarf_tag(die);
    if (tag == DW_TAG_subprogram) {
        /* The first visit is the one dwarf_getscopes's origin_match finds. */
        uint64_t *slot = sf_map_get(&w->c->nested, (uint64_t)(uintptr_t)die->addr, 1);
        if (!*slot) {
            *slot = NEST_NONE;
            if (w->has_anc) {
                struct cuinfo *c = w->c;
                if (c->nnest == c->capnest) {
                    c->capnest = c->capnest ? c->capnest * 2 : 16;
                    c->nestdies = sy_realloc(c->nestdies, c->capnest * sizeof *c->nestdies);
                }
                c->nestdies[c->nnest++] = w->anc;
                *slot = c->nnest;
            }
        }
    }
    if (may_have_scopes(tag) && dwarf_haschildren(die)) {
        if (w->depth >= MAX_DEPTH)
            return -1;
        Dwarf_Die save = w->anc;
        int had = w->has_anc;
        if (tag == DW_TAG_subprogram) {
            w->anc = *die;
            w->has_anc = 1;
        }
        w->depth++;
        int r = each_child(die, imp, visit_nested, w);
        w->depth--;
        w->anc = save;
        w->has_anc = had;
        if (r)
            return r;
    }
    return 0;
}

/* The subprogram nearest around the abstract origin of an inlined
 * subroutine: where dwarf_getscopes continues above it. 0 if none. */
static int origin_scope(struct sf_symobj *o, Dwarf_Die *inl, Dwarf_Die *out)
{
    Dwarf_Attribute attr;
    Dwarf_Die origin, cudie;
    if (!dwarf_formref_die(dwarf_attr(inl, DW_AT_abstract_origin, &attr), &origin) ||
        !dwarf_diecu(&origin, &cudie, NULL, NULL))
        return 0;
    struct cuinfo *c = &o->cuinfo[cuinfo_of(o, &cudie)];
    if (!c->nested_done) {
        c->nested_done = 1;
        struct nestwalk w = {.c = c};
        each_child(&c->cu, NULL, visit_nested, &w); /* on an error: what was found so far */
    }
    uint64_t *slot = sf_map_get(&c->nested, (uint64_t)(uintptr_t)origin.addr, 0);
    if (!slot || *slot == NEST_NONE)
        return 0;
    *out = c->nestdies[*slot - 1];
    return 1;
}

/* The first DW_TAG_subprogram of dwarf_getscopes(cu, pc), given top, the
 * first top-level DIE containing pc. 1 and *out, or 0. */
static int decl_die(struct sf_symobj *o, Dwarf_Die *top, uint64_t pc, Dwarf_Die *out)
{
    struct path p = {.pc = pc};
    path_push(&p, top);
    int ok = 1, found = 0;
    if (may_have_scopes(dwarf_tag(top)) && dwarf_haschildren(top))
        ok = each_child(top, NULL, visit_path, &p) >= 0;
    for (size_t k = p.n; ok && k-- > 0;) {
        int tag = dwarf_tag(&p.v[k]);
        if (tag == DW_TAG_subprogram) {
            *out = p.v[k];
            found = 1;
            break;
        }
        if (tag == DW_TAG_inlined_subroutine) {
            found = origin_scope(o, &p.v[k], out);
            break;
        }
    }
    free(p.v);
    return found;
}

/* ---- the line table ---- */

static int lrow_cmp(const void *a, const void *b)
{
    const struct lrow *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static void load_lines(struct cuinfo *c)
{
    c->lines_done = 1;
    size_t n;
    if (dwarf_getsrclines(&c->cu, &c->lines, &n) != 0) {
        c->lines = NULL;
        return;
    }
    c->rows = sy_malloc((n ? n : 1) * sizeof *c->rows);
    int sorted = 1;
    for (size_t i = 0; i < n; i++) {
        Dwarf_Line *l = dwarf_onesrcline(c->lines, i);
        Dwarf_Addr a;
        if (!l || dwarf_lineaddr(l, &a) != 0)
            continue;
        if (c->nrows && c->rows[c->nrows - 1].addr > a)
            sorted = 0;
        c->rows[c->nrows++] = (struct lrow){a, i};
    }
    if (!sorted) /* libdw sorts them; be sure */
        qsort(c->rows, c->nrows, sizeof *c->rows, lrow_cmp);
}

/* The first row (by address, then row order) with a line and a file at or
 * after pc, no more than 64 bytes on. */
static int line_after(struct cuinfo *c, uint64_t pc, const char **file, int *line)
{
    if (!c->lines_done)
        load_lines(c);
    size_t lo = pc ? count_le(c->rows, c->nrows, sizeof *c->rows, pc - 1) : 0;
    for (size_t i = lo; i < c->nrows && c->rows[i].addr - pc <= 64; i++) {
        Dwarf_Line *l = dwarf_onesrcline(c->lines, c->rows[i].row);
        int ln;
        if (!l || dwarf_lineno(l, &ln) != 0 || ln <= 0)
            continue;
        const char *src = dwarf_linesrc(l, NULL, NULL);
        if (!src)
            continue;
        *file = src;
        *line = ln;
        return 1;
    }
    return 0;
}

/* DWARF 5 file names may be relative to the CU's directory: make them
 * whole (once per name). */
static void abs_path(struct sf_symobj *o, struct cuinfo *c, const char **file)
{
    if ((*file)[0] == '/')
        return;
    uint64_t *slot = sf_map_get(&c->paths, (uint64_t)(uintptr_t)*file, 1);
    if (!*slot) {
        Dwarf_Attribute attr;
        const char *dir = dwarf_formstring(dwarf_attr(&c->cu, DW_AT_comp_dir, &attr));
        const char *whole = *file;
        if (dir && *dir) {
            size_t n = strlen(dir) + strlen(*file) + 2;
            char *t = sy_malloc(n);
            snprintf(t, n, "%s/%s", dir, *file);
            whole = arena_str(o->s, t);
            free(t);
        }
        *slot = (uint64_t)(uintptr_t)whole;
    }
    *file = (const char *)(uintptr_t)*slot;
}

/* The file a DIE is declared in. libdw (0.188) takes DW_AT_decl_file 0 to
 * mean "none", as DWARF 4 did; in DWARF 5 it is the first entry of the line
 * table's file list, the CU's primary source file, which clang 14 uses for
 * every function of the main file. Without this, those functions got the
 * line table's line (the opening brace) instead of their declaration. */
static const char *decl_file(struct cuinfo *c, Dwarf_Die *die)
{
    const char *src = dwarf_decl_file(die);
    if (src)
        return src;
    Dwarf_Attribute attr;
    Dwarf_Word idx;
    if (dwarf_formudata(dwarf_attr_integrate(die, DW_AT_decl_file, &attr), &idx) != 0 || idx != 0)
        return NULL;
    Dwarf_Half version = 0;
    if (dwarf_cu_info(c->cu.cu, &version, NULL, NULL, NULL, NULL, NULL, NULL) != 0 || version < 5)
        return NULL;
    Dwarf_Files *files;
    size_t nfiles;
    if (dwarf_getsrcfiles(&c->cu, &files, &nfiles) != 0 || nfiles == 0)
        return NULL;
    return dwarf_filesrc(files, 0, NULL, NULL);
}

static int symobj_srcline(struct sf_symobj *o, uint64_t vaddr, const char **file, int *line)
{
    *file = NULL;
    *line = 0;
    if (!o->s->lines)
        return 0;
    if (!o->dw_tried)
        load_dwarf(o);
    if (!o->dw)
        return 0;
    size_t ci = SIZE_MAX;
    size_t lo = count_le(o->cus, o->ncus, sizeof *o->cus, vaddr);
    /* Ranges may nest or overlap a little: look back a few. */
    for (size_t i = lo, k = 0; i > 0 && k < 8; i--, k++) {
        if (vaddr < o->cus[i - 1].hi) {
            ci = o->cus[i - 1].ci;
            break;
        }
    }
    if (ci == SIZE_MAX) {
        Dwarf_Die cudie;
        if (!dwarf_addrdie(o->dw, vaddr, &cudie))
            return 0;
        ci = cuinfo_of(o, &cudie);
    }
    /* The function's declaration: the sled at its entry has line 0 in the
     * line table. */
    Dwarf_Die *top = top_of(&o->cuinfo[ci], vaddr), sub;
    if (top && decl_die(o, top, vaddr, &sub)) {
        const char *src = decl_file(&o->cuinfo[ci], &sub);
        int ln = 0;
        if (src && dwarf_decl_line(&sub, &ln) == 0 && ln > 0) {
            *file = src;
            *line = ln;
        }
    }
    /* Else the first row with a line at or after the address. */
    if (!*file && !line_after(&o->cuinfo[ci], vaddr, file, line))
        return 0;
    abs_path(o, &o->cuinfo[ci], file);
    return 1;
}

int sf_symobj_srcline(struct sf_symobj *o, uint64_t vaddr, const char **file, int *line)
{
    pthread_mutex_lock(&o->s->lock);
    int r = symobj_srcline(o, vaddr, file, line);
    pthread_mutex_unlock(&o->s->lock);
    return r;
}

/* ---- log objects -------------------------------------------------------- */

static struct sf_symobj *obj_of(struct sf_syms *s, struct sf_obj *o)
{
    uint64_t *slot = sf_map_get(&s->byobj, (uint64_t)(uintptr_t)o, 1);
    if (!*slot)
        *slot = (uint64_t)(uintptr_t)syms_object(s, o->path, o->build_id, o->build_id_len);
    return (struct sf_symobj *)(uintptr_t)*slot;
}

const char *sf_syms_obj_name(struct sf_syms *s, struct sf_obj *o, uint32_t idx)
{
    if (idx >= o->nfuncs)
        return "?";
    if (!o->names) {
        o->names = calloc(o->nfuncs ? o->nfuncs : 1, sizeof *o->names);
        if (!o->names) {
            fprintf(stderr, "sftrace: out of memory\n");
            exit(1);
        }
    }
    if (!o->names[idx]) {
        pthread_mutex_lock(&s->lock);
        o->names[idx] = symobj_name(obj_of(s, o), o->func_addr[idx]);
        pthread_mutex_unlock(&s->lock);
    }
    return o->names[idx];
}

int sf_syms_obj_srcline(struct sf_syms *s, struct sf_obj *o, uint32_t idx, const char **file,
                        int *line)
{
    if (idx >= o->nfuncs) {
        *file = NULL;
        *line = 0;
        return 0;
    }
    pthread_mutex_lock(&s->lock);
    int r = symobj_srcline(obj_of(s, o), o->func_addr[idx], file, line);
    pthread_mutex_unlock(&s->lock);
    return r;
}
