/*
 * fmt.c - output helpers of the analysis commands (see fmt.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chrome.h"
#include "fmt.h"
#include "logread.h"
#include "select.h"

uint64_t sf_fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

uint64_t sf_str_hash(const char *s)
{
    return sf_fnv(s, strlen(s), SF_FNV0);
}

/* ---- option arguments -------------------------------------------------------- */

int sf_opt_choice(const char *cmd, const char *opt, const char *arg, const char *const *choices)
{
    size_t n = 0;
    for (; choices[n]; n++)
        if (!strcmp(arg, choices[n]))
            return (int)n;
    fprintf(stderr, "sftrace %s: %s wants ", cmd, opt);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s%s", choices[i], i + 2 < n ? ", " : i + 1 < n ? " or " : "");
    fprintf(stderr, ", not '%s'\n", arg);
    return -1;
}

int sf_operands(const char *cmd, int argc, char **argv, int optind, int min, int max,
                const char *what)
{
    int n = argc - optind;
    if (n < min) {
        /* the first operand missing is named: the one after those given */
        const char *w = what;
        for (int k = 0; k < n && strchr(w, ' '); k++)
            w = strchr(w, ' ') + 1;
        fprintf(stderr, "sftrace %s: missing %.*s\n", cmd, (int)strcspn(w, " "), w);
        return -1;
    }
    if (n > max) {
        fprintf(stderr, "sftrace %s: unexpected argument '%s' (it takes %s)\n", cmd,
                argv[optind + max], what);
        return -1;
    }
    return 0;
}

int sf_opt_long(const char *cmd, const char *opt, const char *arg, long min, long max, long *v)
{
    char *end;
    errno = 0;
    long x = strtol(arg, &end, 10);
    if (errno || !*arg || *end || x < min || x > max) {
        fprintf(stderr, "sftrace %s: %s wants a whole number %ld..%ld, not '%s'\n", cmd, opt, min,
                max, arg);
        return -1;
    }
    *v = x;
    return 0;
}

int sf_opt_double(const char *cmd, const char *opt, const char *arg, double min, double max,
                  double *v)
{
    char *end;
    double x = strtod(arg, &end);
    if (!*arg || *end || !(x >= min && x <= max)) {
        fprintf(stderr, "sftrace %s: %s wants a number %g..%g, not '%s'\n", cmd, opt, min, max,
                arg);
        return -1;
    }
    *v = x;
    return 0;
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
    char *buf = room <= sizeof stackbuf ? stackbuf : sf_xrealloc(NULL, room);
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
    struct sf_table *t = sf_xrealloc(NULL, sizeof *t);
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->align = sf_xstrdup(align);
    sf_table_add(t, heads);
    return t;
}

void sf_table_add(struct sf_table *t, const char *const *cells)
{
    if (t->nrows == t->caprows) {
        t->caprows = t->caprows ? 2 * t->caprows : 32;
        t->cells = sf_xrealloc(t->cells, t->caprows * (size_t)t->ncols * sizeof *t->cells);
    }
    for (int i = 0; i < t->ncols; i++)
        t->cells[t->nrows * (size_t)t->ncols + (size_t)i] = sf_xstrdup(cells[i] ? cells[i] : "");
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
    size_t *w = sf_xrealloc(NULL, (size_t)t->ncols * sizeof *w);
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

int sf_select_getopt(struct sf_select *sel, const char *cmd, int c, const char *arg,
                     void (*usage)(FILE *))
{
    char err[SF_ERRLEN + 256];
    int r = c == '?' ? 0 : sf_select_option(sel, c, arg, err, sizeof err);
    if (r < 0)
        fprintf(stderr, "sftrace %s: %s\n", cmd, err);
    else if (r == 0)
        usage(stderr);
    return r > 0 ? 0 : -1;
}

/* ---- command lines ------------------------------------------------------------- */

char *sf_cmdline_join(const char *cmdline, size_t len)
{
    char *s = sf_xrealloc(NULL, len + 1);
    memcpy(s, cmdline, len);
    while (len && !s[len - 1]) /* the arguments' final NUL */
        len--;
    for (size_t i = 0; i < len; i++)
        if (!s[i])
            s[i] = ' ';
    s[len] = 0;
    return s;
}

/* ---- output files -------------------------------------------------------------- */

int sf_stdout_flush(const char *cmd)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: write error on the output\n", cmd);
        return -1;
    }
    return 0;
}

int sf_outfile_open(struct sf_outfile *o, const char *cmd, const char *path)
{
    o->f = stdout;
    o->tmp = NULL;
    o->path = path;
    if (!strcmp(path, "-"))
        return 0;
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        /* /dev/null, a FIFO, a terminal: written as it is (a temporary
         * renamed over it would replace the device or FIFO with a file) */
        o->f = fopen(path, "w");
        if (!o->f) {
            fprintf(stderr, "%s: %s: %s\n", cmd, path, strerror(errno));
            return -1;
        }
        return 0;
    }
    if (asprintf(&o->tmp, "%s.tmp%d", path, (int)getpid()) < 0) {
        fprintf(stderr, "%s: out of memory\n", cmd);
        exit(1);
    }
    o->f = fopen(o->tmp, "w");
    if (!o->f) {
        fprintf(stderr, "%s: %s: %s\n", cmd, path, strerror(errno));
        free(o->tmp);
        o->tmp = NULL;
        return -1;
    }
    return 0;
}

int sf_outfile_close(struct sf_outfile *o, const char *cmd, int wr)
{
    if (o->f != stdout) {
        if (fclose(o->f) != 0)
            wr = -1;
        if (wr == 0 && o->tmp && rename(o->tmp, o->path) != 0)
            wr = -1;
        if (wr != 0) {
            fprintf(stderr, "%s: %s: %s\n", cmd, o->path, strerror(errno));
            if (o->tmp)
                unlink(o->tmp);
        }
        free(o->tmp);
        o->tmp = NULL;
    } else if (sf_stdout_flush(cmd) != 0) {
        wr = -1;
    }
    o->f = NULL;
    return wr;
}

char *sf_end_how(char *buf, size_t n, const struct sf_end *e, int *abnormal)
{
    int bad = 1;
    if (e->reason == SF_END_EXEC) {
        snprintf(buf, n, "exec");
        bad = 0;
    } else if (e->reason == SF_END_DETACH) {
        snprintf(buf, n, "detached (still running)");
        bad = 0;
    } else if (e->status_how == SF_STATUS_SIGNALED) {
        const char *abbrev = sigabbrev_np((int)e->status);
        if (abbrev)
            snprintf(buf, n, "killed by signal %u (SIG%s)", e->status, abbrev);
        else
            snprintf(buf, n, "killed by signal %u", e->status);
    } else if (e->status_how == SF_STATUS_EXITED) {
        snprintf(buf, n, "exit status %u", e->status);
        bad = e->status != 0;
    } else if (e->reason == SF_END_DIED) {
        snprintf(buf, n, "died (exit status unknown)");
    } else if (e->reason == SF_END_SIGNAL) {
        snprintf(buf, n, "fatal signal");
    } else {
        snprintf(buf, n, "exited");
        bad = 0;
    }
    if (abnormal)
        *abnormal = bad;
    return buf;
}
