/*
 * fmt.h - output helpers shared by the analysis commands (report, graph,
 * flame, info): human-readable durations, counts and sizes, CSV and JSON
 * string quoting, a text table that sizes its columns to their contents, and
 * the progress line shown on a terminal while a big log is read.
 */
#ifndef SFTRACE_FMT_H
#define SFTRACE_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Room for any string these helpers make. */
#define SF_FMT_LEN 48

/* "987 ns", "12.35 us", "1.234 ms", "12.35 s": four significant digits. */
char *sf_fmt_dur(char *buf, size_t n, uint64_t ns);
/* A signed duration: "+1.234 ms", "-12 ns", "0 ns". */
char *sf_fmt_ddur(char *buf, size_t n, int64_t ns);
/* "987", "12.3k", "4.5M", "1.2G" */
char *sf_fmt_count(char *buf, size_t n, uint64_t v);
/* 12,345,678 */
char *sf_fmt_grouped(char *buf, size_t n, uint64_t v);
/* "512 B", "1.5 kB", "12.3 MB", "1.20 GB" (powers of 1024) */
char *sf_fmt_bytes(char *buf, size_t n, uint64_t v);

/* The output formats of the analysis commands. */
enum sf_outfmt { SF_OUT_TABLE, SF_OUT_CSV, SF_OUT_JSON };
/* 0 and *f set, or -1 when s is none of table, csv, json. */
int sf_outfmt_parse(const char *s, enum sf_outfmt *f);

/* s as a JSON string, quotes included (invalid UTF-8 becomes U+FFFD). */
void sf_json_str(FILE *f, const char *s);
/* s as one CSV field (RFC 4180: quoted when it holds , " CR or LF). */
void sf_csv_str(FILE *f, const char *s);

/*
 * A text table. Cells are copied; columns are as wide as their widest cell;
 * align has one letter per column, 'l' or 'r'. The last column is not
 * padded (it is usually a long name). Memory: the cells of the rows added.
 */
struct sf_table;
struct sf_table *sf_table_new(int ncols, const char *const *heads, const char *align);
void sf_table_add(struct sf_table *t, const char *const *cells);
/* A row of printf-formatted cells separated by '\t' in fmt's output. */
void sf_table_addf(struct sf_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sf_table_print(const struct sf_table *t, FILE *f, const char *indent);
void sf_table_free(struct sf_table *t);

/*
 * The progress line. On a terminal: "\rsftrace CMD: [####....] 42%  1.2M
 * events  3.1 s" redrawn 4 times a second after the first half second; on a
 * pipe, one line every 5 s of a long run. Off with quiet.
 */
struct sf_progress {
    const char *cmd;
    int on, tty, shown;
    double start, last;
    uint64_t size; /* bytes of the log, for the percentage */
};
double sf_now(void); /* CLOCK_MONOTONIC seconds */
void sf_progress_init(struct sf_progress *pr, const char *cmd, int quiet, uint64_t size);
/* Rate-limited: cheap to call after every chunk. */
void sf_progress_update(struct sf_progress *pr, uint64_t offset, uint64_t events);
/* Take the line off the screen (before printing anything else to stderr). */
void sf_progress_clear(struct sf_progress *pr);

#endif /* SFTRACE_FMT_H */
