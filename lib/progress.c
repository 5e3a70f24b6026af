/*
 * progress.c - the progress line and summary number formats (progress.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void sf_progress_init(struct sf_progress *pr, const char *cmd, int on)
{
    pr->cmd = cmd;
    pr->on = on;
    pr->tty = isatty(STDERR_FILENO);
    pr->start = pr->last = now_s();
    pr->size = 0;
    pr->shown = 0;
}

double sf_progress_elapsed(const struct sf_progress *pr)
{
    return now_s() - pr->start;
}

void sf_fmt_count(char *buf, size_t n, uint64_t v)
{
    if (v >= 1000000)
        snprintf(buf, n, "%.1fM", v / 1e6);
    else if (v >= 10000)
        snprintf(buf, n, "%.1fk", v / 1e3);
    else
        snprintf(buf, n, "%" PRIu64, v);
}

void sf_fmt_bytes(char *buf, size_t n, uint64_t v)
{
    if (v >= 1u << 30)
        snprintf(buf, n, "%.2f GB", v / 1073741824.0);
    else if (v >= 1u << 20)
        snprintf(buf, n, "%.1f MB", v / 1048576.0);
    else if (v >= 1u << 10)
        snprintf(buf, n, "%.1f kB", v / 1024.0);
    else
        snprintf(buf, n, "%" PRIu64 " B", v);
}

void sf_progress(struct sf_progress *pr, uint64_t off, uint64_t events, int final)
{
    if (!pr || !pr->on)
        return;
    double t = now_s();
    if (!final && t - pr->last < (pr->tty ? 0.25 : 5.0))
        return;
    if (!final && t - pr->start < (pr->tty ? 0.5 : 5.0))
        return;
    pr->last = t;
    char ev[32];
    sf_fmt_count(ev, sizeof ev, events);
    double pct = pr->size ? 100.0 * (double)off / (double)pr->size : 0;
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
    } else if (!final) {
        fprintf(stderr, "sftrace %s: %.0f%% of the log, %s events, %.0f s\n", pr->cmd, pct, ev,
                t - pr->start);
    }
    fflush(stderr);
}

void sf_progress_clear(struct sf_progress *pr)
{
    if (pr && pr->shown) {
        fprintf(stderr, "\r%*s\r", 78, "");
        pr->shown = 0;
    }
}
