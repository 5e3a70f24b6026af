/*
 * symsbench.c - time the symbolizer on every function of one object file:
 * what `sftrace convert` or `dump -l` costs for a log that touches them all.
 *
 *   symsbench [-a] [-p] [-n] OBJ...
 *
 * The functions are the object's XRay functions (its xray_instr_map, in map
 * order), or with -a every function symbol of its .symtab (then the object
 * need not be instrumented: a differential check of the line lookup on any
 * object). For each function it asks for the name, then the source line
 * (unless -n). It prints one line per object, "OBJ funcs N resolve_s names_s
 * lines_s total_s", the times in seconds; with -p, first one line per
 * function, "0xADDR\tNAME\tFILE:LINE", so two builds of the symbolizer can be
 * compared with diff.
 *
 * bench/syms.sh builds it twice: with the current lib/symbols.c, and with
 * the one of commit cdafdde (-DSYMS_OLD: it has no sf_syms_set_lines), the
 * anchor of docs/benchmarks.md.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gelf.h>
#include <libelf.h>

#include "symbols.h"
#include "xraymap.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct addrs {
    uint64_t *v;
    size_t n, cap;
};

static void add_sym(void *ctx, const GElf_Sym *sym, const char *name, int rank)
{
    (void)name;
    (void)rank;
    struct addrs *a = ctx;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 1024;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (!a->v)
            exit(1);
    }
    a->v[a->n++] = sym->st_value;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

/* Every function symbol's address, sorted, once each. */
static int symtab_addrs(const char *path, struct addrs *a)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    Elf *elf = elf_begin(fileno(f), ELF_C_READ, NULL);
    if (!elf) {
        fclose(f);
        return -1;
    }
    sf_elf_func_syms(elf, 0, add_sym, a);
    elf_end(elf);
    fclose(f);
    qsort(a->v, a->n, sizeof *a->v, cmp_u64);
    size_t w = 0;
    for (size_t i = 0; i < a->n; i++)
        if (!w || a->v[w - 1] != a->v[i])
            a->v[w++] = a->v[i];
    a->n = w;
    return 0;
}

int main(int argc, char **argv)
{
    int all = 0, print = 0, nolines = 0, i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-a"))
            all = 1;
        else if (!strcmp(argv[i], "-p"))
            print = 1;
        else if (!strcmp(argv[i], "-n"))
            nolines = 1;
        else {
            fprintf(stderr, "usage: symsbench [-a] [-p] [-n] OBJ...\n");
            return 2;
        }
    }
    if (i == argc) {
        fprintf(stderr, "usage: symsbench [-a] [-p] [-n] OBJ...\n");
        return 2;
    }
    elf_version(EV_CURRENT);
    for (; i < argc; i++) {
        const char *path = argv[i];
        struct addrs a = {0};
        char err[512];
        if (all) {
            if (symtab_addrs(path, &a) < 0) {
                fprintf(stderr, "symsbench: %s: cannot read\n", path);
                return 1;
            }
        } else {
            struct sf_xraymap m;
            if (sf_xraymap_read_file(path, &m, err, sizeof err) != 0) {
                fprintf(stderr, "symsbench: %s\n", err);
                return 1;
            }
            a.v = m.funcs;
            a.n = m.nfuncs;
        }
        double t0 = now();
        struct sf_syms *s = sf_syms_new();
#ifndef SYMS_OLD
        if (nolines)
            sf_syms_set_lines(s, 0);
#endif
        struct sf_symobj *o = sf_syms_object(s, path, NULL, 0);
        double t1 = now();
        const char **names = malloc((a.n ? a.n : 1) * sizeof *names);
        for (size_t k = 0; k < a.n; k++)
            names[k] = sf_symobj_name(o, a.v[k]);
        double t2 = now();
        unsigned long sum = 0;
        for (size_t k = 0; k < a.n; k++) {
            const char *file = NULL;
            int line = 0;
            if (!nolines && sf_symobj_srcline(o, a.v[k], &file, &line))
                sum += (unsigned long)line;
            if (print)
                printf("0x%" PRIx64 "\t%s\t%s:%d\n", a.v[k], names[k], file ? file : "-", line);
        }
        double t3 = now();
        printf("%s funcs %zu resolve_s %.4f names_s %.4f lines_s %.4f total_s %.4f linesum %lu\n",
               path, a.n, t1 - t0, t2 - t1, t3 - t2, t3 - t0, sum);
        fflush(stdout);
        free(names);
        free(a.v);
        sf_syms_free(s);
    }
    return 0;
}
