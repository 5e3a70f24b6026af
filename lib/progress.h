/*
 * progress.h - the progress line every command that reads a big log shows
 * on stderr (off with -q), and the number formats of the summary lines.
 *
 * On a terminal: one line redrawn in place ("\r") at most 4 times a second,
 * after the first half second. Otherwise (a log file): a line every 5 s.
 * Call sf_progress_clear before printing anything else to stderr.
 */
#ifndef SFTRACE_PROGRESS_H
#define SFTRACE_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

struct sf_progress {
    const char *cmd; /* "convert": lines start "sftrace convert: " */
    int on, tty;
    double start, last;
    uint64_t size; /* the log's size in bytes (0: unknown) */
    int shown;     /* a \r line is on screen */
};

void sf_progress_init(struct sf_progress *pr, const char *cmd, int on);
/* At offset of the log after events events; final: the last update. */
void sf_progress(struct sf_progress *pr, uint64_t offset, uint64_t events, int final);
void sf_progress_clear(struct sf_progress *pr);
/* Seconds since sf_progress_init. */
double sf_progress_elapsed(const struct sf_progress *pr);

/* 1234 -> "1234", 12345 -> "12.3k", 1234567 -> "1.2M" */
void sf_fmt_count(char *buf, size_t n, uint64_t v);
/* bytes as "12 B", "1.5 kB", "3.2 MB", "1.25 GB" */
void sf_fmt_bytes(char *buf, size_t n, uint64_t v);

#endif /* SFTRACE_PROGRESS_H */
