/*
 * fmt.c - output helpers of the analysis commands (see fmt.h).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chrome.h"
#include "fmt.h"

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p) {
        fprintf(stderr, "sftrace: out of memory\n");
        exit(1);
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xrealloc(NULL, n), s, n);
}

/* ---- numbers -------------------------------------------------------------- */

char *sf_fmt_dur(char *buf, size_t n, uint64_t ns)
{
    static const struct {
        double div;
        const char *unit;
    } u[] = {{1e0, "ns"}, {1e3, "us"}, {1e6, "ms"}, {1e9, "s"}};
    if (ns < 1000) {
        snprintf(buf, n, "%" PRIu64 " ns", ns);
        return buf;
    }
    int i = 1;
    while (i < 3 && (double)ns >= u[i + 1].div)
        i++;
    double v = (double)ns / u[i].div;
    /* four significant digits, but never round up into "1000.0" */
    if (v >= 999.95 && i == 3)
        snprintf(buf, n, "%.0f %s", v, u[i].unit);
    else if (v >= 99.995)
        snprintf(buf, n, "%.1f %s", v, u[i].unit);
    else if (v >= 9.9995)
        snprintf(buf, n, "%.2f %s", v, u[i].unit);
    else
        snprintf(buf, n, "%.3f %s", v, u[i].unit);
    return buf;
}

char *sf_fmt_ddur(char *buf, size_t n, int64_t ns)
{
    if (ns == 0) {
        snprintf(buf, n, "0 ns");
        return buf;
    }
    char tmp[SF_FMT_LEN];
    sf_fmt_dur(tmp, sizeof tmp, ns < 0 ? -(uint64_t)ns : (uint64_t)ns);
    snprintf(buf, n, "%c%s", ns < 0 ? '-' : '+', tmp);
    return buf;
}

char *sf_fmt_count(char *buf, size_t n, uint64_t v)
{
    if (v >= 1000000000)
        snprintf(buf, n, "%.1fG", v / 1e9);
    else if (v >= 1000000)
        snprintf(buf, n, "%.1fM", v / 1e6);
    else if (v >= 10000)
        snprintf(buf, n, "%.1fk", v / 1e3);
    else
        snprintf(buf, n, "%" PRIu64, v);
    return buf;
}

char *sf_fmt_grouped(char *buf, size_t n, uint64_t v)
{
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    char out[48];
    int j = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            out[j++] = ',';
        out[j++] = tmp[i];
    }
    out[j] = 0;
    snprintf(buf, n, "%s", out);
    return buf;
}

char *sf_fmt_bytes(char *buf, size_t n, uint64_t v)
{
    if (v >= 1ull << 30)
        snprintf(buf, n, "%.2f GB", v / 1073741824.0);
    else if (v >= 1u << 20)
        snprintf(buf, n, "%.1f MB", v / 1048576.0);
    else if (v >= 1u << 10)
        snprintf(buf, n, "%.1f kB", v / 1024.0);
    else
        snprintf(buf, n, "%" PRIu64 " B", v);
    return buf;
}

int sf_outfmt_parse(const char *s, enum sf_outfmt *f)
{
    if (!strcmp(s, "table") || !strcmp(s, "text"))
        *f = SF_OUT_TABLE;
    else if (!strcmp(s, "csv"))
        *f = SF_OUT_CSV;
    else if (!strcmp(s, "json"))
        *f = SF_OUT_JSON;
    else
        return -1;
    return 0;
}

/* ---- quoting ---------------------------------------------------------------- */

void sf_json_str(FILE *f, const char *s)
{
    size_t len = strlen(s);
    char stackbuf[512];
    size_t room = cj_escape_max(len) + 1;
    char *buf = room <= sizeof stackbuf ? stackbuf : xrealloc(NULL, room);
    size_t n = cj_escape(buf, s, len);
    fputc('"', f);
    fwrite(buf, 1, n, f);
    fputc('"', f);
    if (buf != stackbuf)
        free(buf);
}

void sf_csv_str(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* ---- tables ------------------------------------------------------------------ */

struct sf_table {
    int ncols;
    char *align;
    char **cells; /* row-major, row 0 = heads */
    size_t nrows, caprows;
};

struct sf_table *sf_table_new(int ncols, const char *const *heads, const char *align)
{
    struct sf_table *t = xrealloc(NULL, sizeof *t);
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->align = xstrdup(align);
    sf_table_add(t, heads);
    return t;
}

void sf_table_add(struct sf_table *t, const char *const *cells)
{
    if (t->nrows == t->caprows) {
        t->caprows = t->caprows ? 2 * t->caprows : 32;
        t->cells = xrealloc(t->cells, t->caprows * (size_t)t->ncols * sizeof *t->cells);
    }
    for (int i = 0; i < t->ncols; i++)
        t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = xstrdup(cells[i] ? cells[i] : "");
    t->nrows++;
}

void sf_table_addf(struct sf_table *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *line = NULL;
    if (vasprintf(&line, fmt, ap) < 0) {
        fprintf(stderr, "sftrace: out of memory\n");
        exit(1);
    }
    va_end(ap);
    const char *cells[64];
    int n = 0;
    char *p = line;
    while (n < t->ncols && n < 64) {
        cells[n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab)
            break;
        *tab = 0;
        p = tab + 1;
    }
    while (n < t->ncols && n < 64)
        cells[n++] = "";
    sf_table_add(t, cells);
    free(line);
}

/* Display width of a UTF-8 string: its code points (no wide characters in
 * what we print). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

void sf_table_print(const struct sf_table *t, FILE *f, const char *indent)
{
    size_t *w = xrealloc(NULL, (size_t)t->ncols * sizeof *w);
    for (int c = 0; c < t->ncols; c++) {
        w[c] = 0;
        for (size_t r = 0; r < t->nrows; r++) {
            size_t x = width(t->cells[r * (size_t)t->ncols + (size_t)c]);
            if (x > w[c])
                w[c] = x;
        }
    }
    for (size_t r = 0; r < t->nrows; r++) {
        fputs(indent ? indent : "", f);
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            size_t pad = w[c] - width(s);
            int last = c == t->ncols - 1;
            if (t->align[c] == 'r')
                fprintf(f, "%*s%s", (int)pad, "", s);
            else
                fprintf(f, "%s%*s", s, last ? 0 : (int)pad, "");
            if (!last)
                fputs("  ", f);
        }
        fputc('\n', f);
    }
    free(w);
}

void sf_table_free(struct sf_table *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->align);
    free(t);
}

/* ---- progress ---------------------------------------------------------------- */

double sf_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void sf_progress_init(struct sf_progress *pr, const char *cmd, int quiet, uint64_t size)
{
    memset(pr, 0, sizeof *pr);
    pr->cmd = cmd;
    pr->on = !quiet;
    pr->tty = isatty(STDERR_FILENO);
    pr->start = pr->last = sf_now();
    pr->size = size;
}

void sf_progress_update(struct sf_progress *pr, uint64_t offset, uint64_t events)
{
    if (!pr->on)
        return;
    double t = sf_now();
    double every = pr->tty ? 0.25 : 5.0, after = pr->tty ? 0.5 : 5.0;
    if (t - pr->last < every || t - pr->start < after)
        return;
    pr->last = t;
    char ev[SF_FMT_LEN];
    sf_fmt_count(ev, sizeof ev, events);
    double pct = pr->size ? 100.0 * (double)offset / (double)pr->size : 0;
    if (pct > 100)
        pct = 100;
    if (pr->tty) {
        char bar[31];
        int fill = (int)(pct * 30 / 100);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\rsftrace %s: [%s] %3.0f%%  %s events  %.1f s ", pr->cmd, bar, pct, ev,
                t - pr->start);
        pr->shown = 1;
    } else {
        fprintf(stderr, "sftrace %s: %.0f%% of the log, %s events, %.0f s\n", pr->cmd, pct, ev,
                t - pr->start);
    }
    fflush(stderr);
}

void sf_progress_clear(struct sf_progress *pr)
{
    if (pr->shown) {
        fprintf(stderr, "\r%*s\r", 78, "");
        fflush(stderr);
        pr->shown = 0;
    }
}
