/*
 * filter.c - `sftrace filter`: choose the functions of an XRay-instrumented
 * object to trace, and write them to a filter file (docs/filter-format.md)
 * bound to the object's build-id, for `sftrace record -f`.
 *
 * The candidates are the object's instrumented functions (its
 * xray_instr_map, lib/xraymap.h). Each gets every function symbol at its
 * address (.symtab, else .dynsym), mangled and demangled; -r patterns
 * (PCRE2) and --list lines are tried on all of those names. A --list line
 * is a regular expression exactly as -r takes it, and also matches the
 * function whose name is exactly the line (so C++ names with parentheses,
 * which are no regex of themselves, still work); --exact keeps only the
 * exact match. The work is one pass over the symbols, two sorts, and one
 * merge: no per-function search.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <elfutils/libdwelf.h>
#include <gelf.h>
#include <libelf.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "cmds.h"
#include "filterfile.h"
#include "select.h"
#include "symbols.h"
#include "xraymap.h"

#define PROG "sftrace filter"

static void usage(FILE *f)
{
    fprintf(f, "usage: sftrace filter -p OBJ [-r REGEX]... [--list FILE [--exact]]...\n"
               "                      [--exclude REGEX]... [--descendants] [--args REGEX]... [-v]\n"
               "                      [--trace-on REGEX]... [--trace-off REGEX]...\n"
               "                      [--snapshot-on REGEX [--snapshot-slower-than DUR]] -o OUT\n"
               "\n"
               "Chooses which instrumented functions of OBJ (an executable or shared object\n"
               "built with XRay instrumentation) `sftrace record -f OUT` traces, and writes\n"
               "them to OUT, bound to OBJ's build-id (format: docs/filter-format.md).\n"
               "\n"
               "  -p OBJ           the object\n"
               "  -r REGEX         select the functions whose mangled symbol or demangled\n"
               "                   name REGEX (PCRE2, unanchored) matches; may be repeated\n"
               "  --list FILE      select the functions FILE's lines match: each line is a\n"
               "                   REGEX as for -r, and also matches the function named\n"
               "                   exactly so (mangled or demangled); '#' lines and blank\n"
               "                   lines are ignored; may be repeated\n"
               "                   (with neither -r nor --list, every function is selected)\n"
               "  --exact          --list lines are names, matched exactly (no regex)\n"
               "  --exclude REGEX  drop the functions REGEX matches; may be repeated\n"
               "  --descendants    also trace everything a selected function calls, on its\n"
               "                   thread, while it runs\n"
               "  --args REGEX     also record the argument registers and the return value\n"
               "                   of the selected functions REGEX matches; may be repeated\n"
               "  --trace-on REGEX recording starts when a function REGEX matches is entered\n"
               "                   (the process starts with recording stopped); may be repeated\n"
               "  --trace-off REGEX\n"
               "                   recording stops when a function REGEX matches returns\n"
               "                   (with only --trace-on/--trace-off, the file selects\n"
               "                   nothing: every function is traced, between the triggers)\n"
               "  --snapshot-on REGEX\n"
               "                   record --ring: a snapshot when a function REGEX matches is\n"
               "                   entered; may be repeated\n"
               "  --snapshot-slower-than DUR\n"
               "                   ... instead, when a call of one of them took longer than DUR\n"
               "                   (1.5s, 200ms, 30us, ns), at that call's exit\n"
               "  -v               list the selected functions on stdout\n"
               "  -o OUT           the filter file to write (replaced atomically)\n");
}

/* ---- memory ------------------------------------------------------------- */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(1);
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(1);
    }
    return p;
}

/* ---- patterns ----------------------------------------------------------- */

struct pat {
    const char *src;
    const char *opt; /* the option that gave it, for messages */
    pcre2_code *re;
    int hit; /* matched at least one candidate */
};

struct patlist {
    struct pat *v;
    size_t n;
};

static void pat_add(struct patlist *l, const char *opt, const char *src)
{
    l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
    l->v[l->n].src = src;
    l->v[l->n].opt = opt;
    l->v[l->n].re = NULL;
    l->v[l->n].hit = 0;
    l->n++;
}

static int pat_compile(struct patlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct pat *p = &l->v[i];
        int code;
        PCRE2_SIZE off;
        p->re = pcre2_compile((PCRE2_SPTR)p->src, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
        if (!p->re) {
            PCRE2_UCHAR msg[256];
            if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
                snprintf((char *)msg, sizeof msg, "error %d", code);
            fprintf(stderr, PROG ": bad regular expression %s '%s': %s at offset %zu\n", p->opt,
                    p->src, (const char *)msg, (size_t)off);
            return -1;
        }
        /* The JIT is much faster; without it (not built in, or no
         * executable memory allowed) pcre2_match interprets. */
        pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE);
    }
    return 0;
}

static void pat_free(struct patlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        pcre2_code_free(l->v[i].re);
    free(l->v);
}

/* One match data and context (with a roomy JIT stack) for every match. */
static pcre2_match_data *mdata;
static pcre2_match_context *mctx;
static pcre2_jit_stack *jstack;
static int match_errors;

static int re_match(const struct pat *p, const char *s)
{
    int rc = pcre2_match(p->re, (PCRE2_SPTR)s, PCRE2_ZERO_TERMINATED, 0, 0, mdata, mctx);
    if (rc >= 0)
        return 1; /* 0: matched, the ovector was too small to say where */
    if (rc != PCRE2_ERROR_NOMATCH && !match_errors++) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(rc, msg, sizeof msg) < 0)
            snprintf((char *)msg, sizeof msg, "error %d", rc);
        fprintf(stderr, PROG ": warning: %s '%s' on '%s': %s (counted as no match)\n", p->opt,
                p->src, s, (const char *)msg);
    }
    return 0;
}

/* ---- the --list names --------------------------------------------------- */

struct lname {
    char *name;
    const char *file;
    size_t line;
    int hit;            /* named a function exactly */
    long re;            /* index of the line as a regex in the list patterns, or -1
                           (--exact, or not a valid regex) */
    char re_error[160]; /* why it is not a valid regex */
};

struct namelist {
    struct lname *v;
    size_t n, cap;
};

static int lname_cmp(const void *a, const void *b)
{
    const struct lname *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

static int read_list(struct namelist *l, const char *path)
{
    char err[256];
    size_t len, lineno = 0;
    char *buf = sf_filter_file_read(path, &len, err, sizeof err);
    if (!buf) {
        fprintf(stderr, PROG ": --list %s: %s\n", path, err);
        return -1;
    }
    for (char *p = buf, *end = buf + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *s = p, *e = nl ? nl : end;
        p = e + 1;
        lineno++;
        while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        *e = 0;
        /* Only whole-line comments: '#' can be part of a name, as in Rust's
         * `{closure#0}`. */
        if (s == e || *s == '#')
            continue;
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 64;
            l->v = xrealloc(l->v, l->cap * sizeof *l->v);
        }
        size_t n = (size_t)(e - s) + 1;
        l->v[l->n].name = memcpy(xmalloc(n), s, n);
        l->v[l->n].file = path;
        l->v[l->n].line = lineno;
        l->v[l->n].hit = 0;
        l->v[l->n].re = -1;
        l->v[l->n].re_error[0] = 0;
        l->n++;
    }
    free(buf);
    return 0;
}

/* The first entry named s (the list is sorted), or NULL. */
static struct lname *list_find(struct namelist *l, const char *s)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(l->v[mid].name, s) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < l->n && !strcmp(l->v[lo].name, s) ? &l->v[lo] : NULL;
}

/* Each line (of a sorted list) as a regex too, into pats. A line that is no
 * valid regex still names a function exactly; why it is not valid is said
 * only if it names none. */
static void list_compile(struct namelist *l, struct patlist *pats)
{
    for (size_t i = 0; i < l->n; i++) {
        struct lname *e = &l->v[i];
        int code;
        PCRE2_SIZE off;
        pcre2_code *re =
            pcre2_compile((PCRE2_SPTR)e->name, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
        if (!re) {
            PCRE2_UCHAR msg[128];
            if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
                snprintf((char *)msg, sizeof msg, "error %d", code);
            snprintf(e->re_error, sizeof e->re_error, "%s at offset %zu", (const char *)msg,
                     (size_t)off);
            continue;
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
        pat_add(pats, "--list", e->name);
        pats->v[pats->n - 1].re = re;
        e->re = (long)(pats->n - 1);
    }
}

/* ---- symbols and functions ---------------------------------------------- */

struct fsym {
    uint64_t addr;
    const char *mangled; /* in the ELF string table */
    const char *name;    /* demangled (== mangled when it is not mangled) */
    int rank;            /* 0 global, 1 weak, 2 local */
};

struct func {
    uint64_t addr;
    struct fsym *syms; /* the symbols at addr, preferred first */
    size_t nsyms;
    const char *name; /* to show: the preferred demangled name, or 0x... */
    int sel, args;
    int ton, toff; /* trace-on / trace-off lines (live control) */
    int snap;      /* snapshot-on / snapshot-slower lines */
};

static int fsym_cmp(const void *a, const void *b)
{
    const struct fsym *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank - y->rank;
    return strcmp(x->mangled, y->mangled);
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct read_ctx {
    struct fsym *v;
    size_t n, cap;
};

static void read_one(void *ctx, const GElf_Sym *st, const char *name, int rank)
{
    struct read_ctx *c = ctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 1024;
        c->v = xrealloc(c->v, c->cap * sizeof *c->v);
    }
    c->v[c->n].addr = st->st_value;
    c->v[c->n].mangled = name;
    c->v[c->n].name = NULL;
    c->v[c->n].rank = rank;
    c->n++;
}

/* The defined function symbols of the .symtab, else the .dynsym, sorted by
 * address (preferred first), without repeats. */
static struct fsym *read_syms(Elf *elf, size_t *count)
{
    struct read_ctx c = {0};
    for (int pass = 0; pass < 2 && !c.n; pass++)
        sf_elf_func_syms(elf, pass, read_one, &c);
    struct fsym *v = c.v;
    size_t n = c.n;
    if (n)
        qsort(v, n, sizeof *v, fsym_cmp);
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (!w || v[w - 1].addr != v[i].addr || strcmp(v[w - 1].mangled, v[i].mangled))
            v[w++] = v[i];
    *count = w;
    return v;
}

static const char *demangle(const char *sym)
{
    if (sym[0] != '_' || (sym[1] != 'Z' && sym[1] != 'R'))
        return sym;
    char *d = sf_demangle(sym);
    if (!strcmp(d, sym)) {
        free(d);
        return sym;
    }
    return d;
}

/* Does any of pats match any name of f (each symbol's mangled and
 * demangled name, or the 0x name of a function without symbols)? Sets the
 * pattern's hit. */
static int match_any(struct patlist *pats, const struct func *f)
{
    for (size_t i = 0; i < pats->n; i++) {
        struct pat *p = &pats->v[i];
        int m = !f->nsyms && re_match(p, f->name);
        for (size_t k = 0; k < f->nsyms && !m; k++)
            m = re_match(p, f->syms[k].mangled) ||
                (f->syms[k].name != f->syms[k].mangled && re_match(p, f->syms[k].name));
        if (m) {
            p->hit = 1;
            return 1;
        }
    }
    return 0;
}

/* Is any name of f in the list? Marks every entry it answers to, so the
 * entries left unmarked can be reported. */
static int list_match(struct namelist *l, const struct func *f)
{
    int m = 0;
    struct lname *e;
    if (!f->nsyms && (e = list_find(l, f->name)))
        m = e->hit = 1;
    for (size_t k = 0; k < f->nsyms; k++) {
        if ((e = list_find(l, f->syms[k].mangled)))
            m = e->hit = 1;
        if (f->syms[k].name != f->syms[k].mangled && (e = list_find(l, f->syms[k].name)))
            m = e->hit = 1;
    }
    return m;
}

/* ---- the object ---------------------------------------------------------- */

struct object {
    int fd;
    Elf *elf;
    uint8_t bid[64];
    size_t bidlen;
    struct fsym *syms; /* sorted by address */
    size_t nsyms;
    struct func *funcs; /* the instrumented functions, sorted by address */
    size_t nfuncs;
    char *hexnames; /* the names of the functions without a symbol */
};

static void object_free(struct object *ob)
{
    for (size_t i = 0; i < ob->nsyms; i++)
        if (ob->syms[i].name && ob->syms[i].name != ob->syms[i].mangled)
            free((char *)ob->syms[i].name);
    free(ob->syms);
    free(ob->funcs);
    free(ob->hexnames);
    if (ob->elf)
        elf_end(ob->elf);
    if (ob->fd >= 0)
        close(ob->fd);
}

/* Read path's instrumented functions, build-id and symbols. 0, or -1 after
 * saying what is wrong (ob must still be freed). */
static int object_load(struct object *ob, const char *path)
{
    memset(ob, 0, sizeof *ob);
    elf_version(EV_CURRENT);
    ob->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (ob->fd < 0) {
        fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(ob->fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        fprintf(stderr, PROG ": %s: not a regular file\n", path);
        return -1;
    }
    ob->elf = elf_begin(ob->fd, ELF_C_READ_MMAP, NULL);
    if (!ob->elf) {
        fprintf(stderr, PROG ": %s: not an ELF file (%s)\n", path, elf_errmsg(-1));
        return -1;
    }
    struct sf_xraymap map;
    char err[512];
    int rc = sf_xraymap_read(ob->elf, &map, err, sizeof err);
    if (rc) {
        fprintf(stderr, PROG ": %s: %s\n", path, err);
        if (rc == SF_XRAYMAP_NONE)
            fprintf(stderr, PROG ": build it with clang -fxray-instrument (and "
                                 "-fxray-instruction-threshold=1 to include small functions), or "
                                 "rustc -Zinstrument-xray=always\n");
        return -1;
    }
    const void *bid = NULL;
    ssize_t bidlen = dwelf_elf_gnu_build_id(ob->elf, &bid);
    if (bidlen <= 0 || (size_t)bidlen > sizeof ob->bid) {
        if (bidlen <= 0)
            fprintf(stderr,
                    PROG ": %s: has no GNU build-id; a filter is bound to its object's build-id, "
                         "so link it with -Wl,--build-id (the default of Debian's gcc and "
                         "clang)\n",
                    path);
        else
            fprintf(stderr, PROG ": %s: its build-id is too long (%zd bytes)\n", path, bidlen);
        sf_xraymap_free(&map);
        return -1;
    }
    memcpy(ob->bid, bid, (size_t)bidlen);
    ob->bidlen = (size_t)bidlen;

    /* The functions by address, each with the symbols at its address: one
     * merge of two sorted arrays. Only those symbols get demangled. */
    ob->syms = read_syms(ob->elf, &ob->nsyms);
    qsort(map.funcs, map.nfuncs, sizeof *map.funcs, u64_cmp);
    ob->funcs = xmalloc(map.nfuncs * sizeof *ob->funcs);
    size_t nohex = 0, k = 0;
    for (size_t i = 0; i < map.nfuncs; i++) {
        if (i && map.funcs[i] == map.funcs[i - 1])
            continue;
        struct func *f = &ob->funcs[ob->nfuncs++];
        f->addr = map.funcs[i];
        while (k < ob->nsyms && ob->syms[k].addr < f->addr)
            k++;
        f->syms = &ob->syms[k];
        f->nsyms = 0;
        for (; k < ob->nsyms && ob->syms[k].addr == f->addr; k++, f->nsyms++)
            ob->syms[k].name = demangle(ob->syms[k].mangled);
        f->name = f->nsyms ? f->syms[0].name : NULL;
        nohex += !f->nsyms;
        f->sel = f->args = 0;
    }
    sf_xraymap_free(&map);
    if (nohex && nohex == ob->nfuncs)
        fprintf(stderr,
                PROG ": warning: %s: no symbols (stripped?): its functions can be selected by "
                     "address (0x...) only; a filter made from the unstripped file works for "
                     "this one too (strip keeps the build-id)\n",
                path);
    if (nohex) {
        /* Functions without a symbol are named by their address. */
        char *h = ob->hexnames = xmalloc(nohex * 24);
        for (size_t i = 0; i < ob->nfuncs; i++) {
            if (ob->funcs[i].nsyms)
                continue;
            snprintf(h, 24, "0x%" PRIx64, ob->funcs[i].addr);
            ob->funcs[i].name = h;
            h += 24;
        }
    }
    return 0;
}

/* ---- output ------------------------------------------------------------- */

/* Names and paths go on one line: no control characters. */
static void put_clean(FILE *f, const char *s)
{
    for (; *s; s++)
        putc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, f);
}

static uint64_t slower_ns; /* --snapshot-slower-than, 0: none */

static int write_filter(const char *out, const char *objpath, const uint8_t *bid, size_t bidlen,
                        int descendants, const struct func *funcs, size_t nfuncs)
{
    size_t olen = strlen(out);
    char *tmp = xmalloc(olen + 16);
    snprintf(tmp, olen + 16, "%s.tmpXXXXXX", out);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, PROG ": cannot write %s: %s\n", out, strerror(errno));
        free(tmp);
        return -1;
    }
    mode_t um = umask(0);
    umask(um);
    fchmod(fd, 0666 & ~um);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        fprintf(stderr, PROG ": cannot write %s: %s\n", out, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    static char buf[1 << 20];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    fputs("sftrace-filter 1\nobject ", f);
    put_clean(f, objpath);
    fputs("\nbuild-id ", f);
    for (size_t i = 0; i < bidlen; i++)
        fprintf(f, "%02x", bid[i]);
    fprintf(f, "\nmode %s\n", descendants ? "descendants" : "selected");
    for (size_t i = 0; i < nfuncs; i++) {
        if (!funcs[i].sel)
            continue;
        fprintf(f, "f 0x%" PRIx64 " %c ", funcs[i].addr, funcs[i].args ? 'a' : '-');
        put_clean(f, funcs[i].name);
        putc('\n', f);
    }
    for (int on = 2; on >= 0; on--)
        for (size_t i = 0; i < nfuncs; i++) {
            if (!(on == 2 ? funcs[i].snap : on ? funcs[i].ton : funcs[i].toff))
                continue;
            if (on == 2 && slower_ns)
                fprintf(f, "snapshot-slower 0x%" PRIx64 " %" PRIu64 " ", funcs[i].addr, slower_ns);
            else
                fprintf(f, "%s 0x%" PRIx64 " ",
                        on == 2 ? "snapshot-on"
                        : on    ? "trace-on"
                                : "trace-off",
                        funcs[i].addr);
            put_clean(f, funcs[i].name);
            putc('\n', f);
        }
    int err = 0;
    if (fflush(f) || ferror(f) || fsync(fd))
        err = errno ? errno : EIO;
    if (fclose(f) && !err)
        err = errno ? errno : EIO;
    if (!err && rename(tmp, out))
        err = errno;
    if (err) {
        fprintf(stderr, PROG ": cannot write %s: %s\n", out, strerror(err));
        unlink(tmp);
    }
    free(tmp);
    return err ? -1 : 0;
}

/* ---- the command -------------------------------------------------------- */

struct opts {
    const char *obj, *out;
    struct patlist sel, excl, args, ton, toff, snap;
    struct patlist lpats; /* the --list lines as regexes (not with --exact) */
    const char **lists;
    size_t nlists;
    int descendants, verbose, exact;
};

static void opts_free(struct opts *o)
{
    pat_free(&o->sel);
    pat_free(&o->lpats);
    pat_free(&o->excl);
    pat_free(&o->args);
    pat_free(&o->ton);
    pat_free(&o->toff);
    pat_free(&o->snap);
    free(o->lists);
}

/* 0 to go on, 1 after --help, -1 on a usage error (said). */
static int parse_opts(int argc, char **argv, struct opts *o)
{
    enum {
        OPT_LIST = 256,
        OPT_EXCLUDE,
        OPT_DESC,
        OPT_ARGS,
        OPT_EXACT,
        OPT_TON,
        OPT_TOFF,
        OPT_SNAP,
        OPT_SLOWER
    };
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {"list", required_argument, NULL, OPT_LIST},
        {"exclude", required_argument, NULL, OPT_EXCLUDE},
        {"descendants", no_argument, NULL, OPT_DESC},
        {"args", required_argument, NULL, OPT_ARGS},
        {"exact", no_argument, NULL, OPT_EXACT},
        {"trace-on", required_argument, NULL, OPT_TON},
        {"trace-off", required_argument, NULL, OPT_TOFF},
        {"snapshot-on", required_argument, NULL, OPT_SNAP},
        {"snapshot-slower-than", required_argument, NULL, OPT_SLOWER},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hp:r:o:v", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return 1;
        case 'p':
            o->obj = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'r':
            pat_add(&o->sel, "-r", optarg);
            break;
        case 'v':
            o->verbose = 1;
            break;
        case OPT_LIST:
            o->lists = xrealloc(o->lists, (o->nlists + 1) * sizeof *o->lists);
            o->lists[o->nlists++] = optarg;
            break;
        case OPT_EXCLUDE:
            pat_add(&o->excl, "--exclude", optarg);
            break;
        case OPT_DESC:
            o->descendants = 1;
            break;
        case OPT_ARGS:
            pat_add(&o->args, "--args", optarg);
            break;
        case OPT_EXACT:
            o->exact = 1;
            break;
        case OPT_TON:
            pat_add(&o->ton, "--trace-on", optarg);
            break;
        case OPT_TOFF:
            pat_add(&o->toff, "--trace-off", optarg);
            break;
        case OPT_SNAP:
            pat_add(&o->snap, "--snapshot-on", optarg);
            break;
        case OPT_SLOWER: {
            char err[128] = "";
            int64_t ns = 0;
            if (sf_parse_duration(optarg, &ns, err, sizeof err) != 0 || ns <= 0) {
                if (err[0]) /* err quotes the value */
                    fprintf(stderr, PROG ": --snapshot-slower-than %s\n", err);
                else
                    fprintf(stderr, PROG ": --snapshot-slower-than '%s': must be more than 0\n",
                            optarg);
                return -1;
            }
            slower_ns = (uint64_t)ns;
            break;
        }
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc)
        fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
    else if (!o->obj || !o->out)
        fprintf(stderr, PROG ": %s\n", !o->obj ? "-p OBJ is required" : "-o OUT is required");
    else if (o->exact && !o->nlists)
        fprintf(stderr, PROG ": --exact applies to --list, and there is none\n");
    else if (slower_ns && !o->snap.n)
        fprintf(stderr,
                PROG ": --snapshot-slower-than applies to --snapshot-on, and there is none\n");
    else
        return pat_compile(&o->sel) || pat_compile(&o->excl) || pat_compile(&o->args) ||
                       pat_compile(&o->ton) || pat_compile(&o->toff) || pat_compile(&o->snap)
                   ? -1
                   : 0;
    usage(stderr);
    return -1;
}

/* Say which patterns and names matched nothing: usually a typo. Runs the
 * patterns that never matched first again, over everything. */
static void report_unmatched(struct opts *o, struct object *ob, struct namelist *names)
{
    for (size_t i = 0; i < o->sel.n; i++) {
        struct pat *p = &o->sel.v[i];
        struct patlist one = {p, 1};
        for (size_t k = 0; k < ob->nfuncs && !p->hit; k++)
            match_any(&one, &ob->funcs[k]);
        if (!p->hit)
            fprintf(stderr, PROG ": warning: -r '%s' matches no instrumented function\n", p->src);
    }
    for (size_t i = 0; i < o->args.n; i++) {
        struct pat *p = &o->args.v[i];
        struct patlist one = {p, 1};
        for (size_t k = 0; k < ob->nfuncs && !p->hit; k++)
            if (ob->funcs[k].sel)
                match_any(&one, &ob->funcs[k]);
        if (!p->hit)
            fprintf(stderr, PROG ": warning: --args '%s' matches no selected function\n", p->src);
    }
    size_t unmatched = 0;
    for (size_t i = 0; i < names->n; i++) {
        struct lname *e = &names->v[i];
        if (i && !strcmp(e->name, names->v[i - 1].name)) {
            e->hit = names->v[i - 1].hit; /* list_find marks the first only */
            continue;
        }
        if (!e->hit && e->re >= 0) {
            struct pat *p = &o->lpats.v[e->re];
            struct patlist one = {p, 1};
            for (size_t k = 0; k < ob->nfuncs && !p->hit; k++)
                match_any(&one, &ob->funcs[k]);
            e->hit = p->hit;
        }
        if (e->hit || unmatched++ >= 10)
            continue;
        if (o->exact)
            fprintf(stderr, PROG ": warning: %s:%zu: '%s' names no instrumented function\n",
                    e->file, e->line, e->name);
        else if (e->re >= 0)
            fprintf(stderr, PROG ": warning: %s:%zu: '%s' matches no instrumented function\n",
                    e->file, e->line, e->name);
        else
            fprintf(stderr,
                    PROG ": warning: %s:%zu: '%s' names no instrumented function, and is no "
                         "regular expression (%s)\n",
                    e->file, e->line, e->name, e->re_error);
    }
    if (unmatched > 10)
        fprintf(stderr, PROG ": warning: ... and %zu more names of the list\n", unmatched - 10);
}

/* 1 if name is the v0 or legacy demangled name of rayon's job execute
 * (lib/flows.c's consumer rule), 2 if of a push that makes a job another
 * thread can steal (WorkerThread::push, the local deque's push). */
static int rayon_role(const char *name)
{
    const char *n = name[0] == '<' ? name + 1 : name;
    size_t l = strlen(name);
    if ((!strncmp(n, "rayon_core::job::StackJob<", 26) ||
         !strncmp(n, "rayon_core::job::HeapJob<", 25)) &&
        l > 34 && !strcmp(name + l - 34, " as rayon_core::job::Job>::execute"))
        return 1;
    if (!strncmp(n, "rayon_core::registry::WorkerThread", 34) && l > 6 &&
        !strcmp(name + l - 6, "::push"))
        return 2;
    if (!strncmp(n, "crossbeam_deque::deque::Worker<", 31) && l > 6 &&
        !strcmp(name + l - 6, "::push"))
        return 2;
    return 0;
}

/* --descendants follows a rayon job from the push that made it to the
 * thread that runs it (docs/design.md, Descendants mode follows jobs). A
 * release build inlines WorkerThread::push and the deque's: then only jobs
 * injected from outside the pool are followed, and the work join() hands
 * to other threads is silently missing from the trace. Say so. */
static void note_inlined_push(const struct object *ob, const char *obj)
{
    int exec = 0, push = 0;
    for (size_t i = 0; i < ob->nfuncs; i++)
        for (size_t k = 0; k < ob->funcs[i].nsyms; k++) {
            int r = rayon_role(ob->funcs[i].syms[k].name);
            exec |= r == 1;
            push |= r == 2;
        }
    if (exec && !push)
        fprintf(stderr,
                PROG ": note: %s runs rayon jobs, but its WorkerThread::push is inlined (a "
                     "release build): --descendants follows only the jobs injected from "
                     "outside the pool, not those join() or a scope hands to another thread "
                     "(a debug build keeps it; or record everything and read "
                     "it with graph REGEX)\n",
                obj);
}

int cmd_filter(int argc, char **argv)
{
    struct opts o = {0};
    slower_ns = 0;
    int r = parse_opts(argc, argv, &o);
    if (r) {
        opts_free(&o);
        return r > 0 ? 0 : 2;
    }
    int rc = 1;
    struct namelist names = {0};
    struct object ob = {.fd = -1};
    for (size_t i = 0; i < o.nlists; i++)
        if (read_list(&names, o.lists[i]))
            goto out;
    if (names.n)
        qsort(names.v, names.n, sizeof *names.v, lname_cmp);
    if (!o.exact)
        list_compile(&names, &o.lpats);
    if (object_load(&ob, o.obj))
        goto out;

    /* Select: one pass, each pattern compiled once, one match data. */
    mdata = pcre2_match_data_create(1, NULL);
    mctx = pcre2_match_context_create(NULL);
    jstack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
    if (!mdata || !mctx) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(1);
    }
    if (jstack)
        pcre2_jit_stack_assign(mctx, NULL, jstack);
    int trig_only = !o.sel.n && !o.nlists && (o.ton.n || o.toff.n || o.snap.n);
    int all = !o.sel.n && !o.nlists && !trig_only;
    size_t nsel = 0, nargs = 0, ntrig = 0;
    for (size_t i = 0; i < ob.nfuncs; i++) {
        struct func *f = &ob.funcs[i];
        int s = all || match_any(&o.sel, f);
        if (names.n && list_match(&names, f))
            s = 1;
        if (!s && o.lpats.n && match_any(&o.lpats, f))
            s = 1;
        if (s && o.excl.n && match_any(&o.excl, f))
            s = 0;
        f->sel = s;
        nsel += s;
        if (s && o.args.n && match_any(&o.args, f)) {
            f->args = 1;
            nargs++;
        }
        f->ton = o.ton.n && match_any(&o.ton, f);
        f->toff = o.toff.n && match_any(&o.toff, f);
        f->snap = o.snap.n && match_any(&o.snap, f);
        ntrig += f->ton + f->toff + f->snap;
    }
    for (int k = 0; k < 3; k++) {
        struct patlist *pl = k == 2 ? &o.snap : k ? &o.toff : &o.ton;
        for (size_t i = 0; i < pl->n; i++)
            if (!pl->v[i].hit)
                fprintf(stderr, PROG ": warning: %s '%s' matches no instrumented function\n",
                        k == 2 ? "--snapshot-on"
                        : k    ? "--trace-off"
                               : "--trace-on",
                        pl->v[i].src);
    }
    report_unmatched(&o, &ob, &names);

    char abspath[PATH_MAX];
    if (!realpath(o.obj, abspath))
        snprintf(abspath, sizeof abspath, "%s", o.obj);
    if (write_filter(o.out, abspath, ob.bid, ob.bidlen, o.descendants, ob.funcs, ob.nfuncs))
        goto out;
    rc = 0;
    if (o.verbose)
        for (size_t i = 0; i < ob.nfuncs; i++)
            if (ob.funcs[i].sel)
                printf("%s\n", ob.funcs[i].name);
    if (trig_only)
        fprintf(stderr, PROG ": no selection (every function of %s is traced)", o.obj);
    else
        fprintf(stderr, PROG ": selected %zu of %zu instrumented functions in %s", nsel, ob.nfuncs,
                o.obj);
    if (o.args.n)
        fprintf(stderr, " (%zu with arguments)", nargs);
    if (ntrig)
        fprintf(stderr, "; %zu trigger line%s", ntrig, ntrig == 1 ? "" : "s");
    fprintf(stderr, "%s\n", o.descendants ? ", with their descendants" : "");
    if (o.descendants)
        note_inlined_push(&ob, o.obj);
    if (!nsel && !trig_only)
        fprintf(stderr,
                PROG ": warning: no function was selected: with this filter, nothing in %s is "
                     "traced\n",
                o.obj);
out:
    pcre2_match_data_free(mdata);
    pcre2_match_context_free(mctx);
    pcre2_jit_stack_free(jstack);
    mdata = NULL;
    mctx = NULL;
    jstack = NULL;
    object_free(&ob);
    for (size_t i = 0; i < names.n; i++)
        free(names.v[i].name);
    free(names.v);
    opts_free(&o);
    return rc;
}
