/*
 * fmt.h - output helpers shared by the analysis commands (report, graph,
 * flame, info): human-readable durations and grouped counts, CSV and JSON
 * string quoting, and a text table that sizes its columns to their contents.
 * (Counts as "1.2M", sizes and the progress line: progress.h.)
 */
#ifndef SFTRACE_FMT_H
#define SFTRACE_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "progress.h"
#include "xalloc.h"

/* 64-bit FNV-1a of a string / of n bytes continuing h (start: SF_FNV0). */
#define SF_FNV0 0xcbf29ce484222325ull
uint64_t sf_fnv(const void *p, size_t n, uint64_t h);
uint64_t sf_str_hash(const char *s);

/* Option arguments of the analysis commands: each prints one line
 * "sftrace CMD: OPT wants ..., not 'ARG'" and returns -1 when arg is bad.
 * sf_opt_choice: the index of arg in choices (NULL-terminated). */
int sf_opt_choice(const char *cmd, const char *opt, const char *arg, const char *const *choices);
int sf_opt_long(const char *cmd, const char *opt, const char *arg, long min, long max, long *v);
int sf_opt_double(const char *cmd, const char *opt, const char *arg, double min, double max,
                  double *v);
/* The operands left after getopt (argv[optind..argc)): 0 when there are
 * min..max of them; else -1 after one line naming what is wrong, "sftrace
 * CMD: missing LOG" or "sftrace CMD: unexpected argument 'X' (it takes
 * LOG [REGEX])", where what is the operands' part of the usage line. The
 * caller prints the usage after it. */
int sf_operands(const char *cmd, int argc, char **argv, int optind, int min, int max,
                const char *what);
/* A getopt default case of a command whose other options are the selection
 * options (select.h): 0 consumed, or -1 when the command stops (a bad
 * argument: "sftrace CMD: message"; not a selection option: usage(stderr)). */
struct sf_select;
int sf_select_getopt(struct sf_select *sel, const char *cmd, int c, const char *arg,
                     void (*usage)(FILE *));

/* Room for any string these helpers make. */
#define SF_FMT_LEN 48

/* "987 ns", "12.35 us", "1.234 ms", "12.35 s": four significant digits. */
char *sf_fmt_dur(char *buf, size_t n, uint64_t ns);
/* A signed duration: "+1.234 ms", "-12 ns", "0 ns". */
char *sf_fmt_ddur(char *buf, size_t n, int64_t ns);
/* 12,345,678 */
char *sf_fmt_grouped(char *buf, size_t n, uint64_t v);

/* progress.h's sf_fmt_bytes, returning buf (for printf arguments). */
static inline char *sf_fmt_bytes_s(char *buf, size_t n, uint64_t v)
{
    sf_fmt_bytes(buf, n, v);
    return buf;
}

/* The output formats of the analysis commands. */
enum sf_outfmt { SF_OUT_TABLE, SF_OUT_CSV, SF_OUT_JSON };
/* 0 and *f set, or -1 when s is none of table, csv, json. */
int sf_outfmt_parse(const char *s, enum sf_outfmt *f);

/* A process's command line (arguments each ending in NUL, as the log holds
 * it) as one string, the arguments separated by spaces: malloc'd. */
char *sf_cmdline_join(const char *cmdline, size_t len);

struct sf_end;
/* How a process image ended, from its END chunk, into buf (n >= 64): "exit
 * status 7", "killed by signal 9 (SIGKILL)", "exec"; for an END without a
 * status (or a death nobody saw the status of) "exited", "died". Returns
 * buf. abnormal (may be NULL): set when it did not exit with status 0 or
 * exec. */
char *sf_end_how(char *buf, size_t n, const struct sf_end *e, int *abnormal);

/* Flush stdout at the end of a command's output: 0, or -1 after
 * "CMD: write error on the output" (a full disk, a closed pipe). */
int sf_stdout_flush(const char *cmd);

/*
 * An output written whole or not at all: to a temporary beside path
 * ("PATH.tmpPID"), renamed over path once everything is written, so a failed
 * run never leaves a half-written file in its place. Path "-" is stdout; a
 * path that exists and is not a regular file (/dev/null, a FIFO) is written
 * directly, never replaced.
 *     struct sf_outfile o;
 *     if (sf_outfile_open(&o, CMD, path) != 0) ... fail (message printed)
 *     int wr = write_it(o.f);
 *     if (sf_outfile_close(&o, CMD, wr) != 0) ... fail (message printed)
 */
struct sf_outfile {
    FILE *f;          /* write here */
    char *tmp;        /* the temporary, NULL for stdout or a device or FIFO */
    const char *path; /* the final name */
};
/* 0 with o->f open, or -1 after "CMD: PATH: error". Exits when out of memory. */
int sf_outfile_open(struct sf_outfile *o, const char *cmd, const char *path);
/* Close (stdout: flush) and, when wr (the writer's result) is 0, rename into
 * place; on any failure the temporary is removed. 0, or -1 after a message. */
int sf_outfile_close(struct sf_outfile *o, const char *cmd, int wr);

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

#endif /* SFTRACE_FMT_H */
