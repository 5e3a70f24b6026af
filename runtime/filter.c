/*
 * filter.c - reading filter files (docs/filter-format.md) at start-up and
 * answering, while an object is patched, whether each function is selected.
 *
 * Files come from SFTRACE_FILTER (paths separated by ':'). They are parsed
 * without malloc into arrays from the runtime's arena; lookups are binary
 * searches by function address. A file that cannot be used is reported with
 * its name and line, and the process then runs untraced.
 */
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime.h"

#define MAX_FILTERS 64

static struct sf_filter filters[MAX_FILTERS];
static int nfilters;

int sf_filters_active(void)
{
    return nfilters > 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Parse one file into f. Returns 0, or -1 after printing what is wrong. */
static int parse(const char *path, struct sf_filter *f)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        sf_msg("filter %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t len = (size_t)st.st_size;
    char *buf = sf_map(len + 1);
    if (!buf) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    len = got;

    /* count function lines first to size the arrays */
    size_t nf = 0;
    for (size_t i = 0; i + 1 < len; i++)
        if ((i == 0 || buf[i - 1] == '\n') && buf[i] == 'f' && buf[i + 1] == ' ')
            nf++;
    f->addrs = nf ? sf_map(nf * sizeof *f->addrs) : NULL;
    f->flags = nf ? sf_map(nf) : NULL;
    snprintf(f->path, sizeof f->path, "%s", path);
    int rc = -1;
    if (nf && (!f->addrs || !f->flags))
        goto out;

    char *line = buf, *end = buf + len;
    int lineno = 0;
    int have_magic = 0;
    while (line < end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            nl = end;
        *nl = 0;
        lineno++;
        if (lineno == 1) {
            if (strcmp(line, "sftrace-filter 1") != 0) {
                if (!strncmp(line, "sftrace-filter ", 15))
                    sf_msg("filter %s: line 1: version '%s' is newer than this runtime supports "
                           "(1)",
                           path, line + 15);
                else
                    sf_msg("filter %s: line 1: not an sftrace filter file (expected "
                           "'sftrace-filter 1')",
                           path);
                goto out;
            }
            have_magic = 1;
        } else if (line[0] == 0 || line[0] == '#') {
            /* blank or comment */
        } else if (!strncmp(line, "object ", 7)) {
            /* informational */
        } else if (!strncmp(line, "build-id ", 9)) {
            const char *h = line + 9;
            size_t n = 0;
            while (h[0] && h[1] && n < sizeof f->build_id) {
                int a = hexval(h[0]), b = hexval(h[1]);
                if (a < 0 || b < 0)
                    break;
                f->build_id[n++] = (uint8_t)(a << 4 | b);
                h += 2;
            }
            if (*h || n == 0) {
                sf_msg("filter %s: line %d: bad build-id", path, lineno);
                goto out;
            }
            f->build_id_len = n;
        } else if (!strncmp(line, "mode ", 5)) {
            if (!strcmp(line + 5, "descendants"))
                f->descendants = 1;
            else if (strcmp(line + 5, "selected") != 0) {
                sf_msg("filter %s: line %d: unknown mode '%s'", path, lineno, line + 5);
                goto out;
            }
        } else if (line[0] == 'f' && line[1] == ' ') {
            char *p = line + 2, *q;
            errno = 0;
            unsigned long long a = strtoull(p, &q, 16);
            if (q == p || errno || *q != ' ' || (q[1] != '-' && q[1] != 'a') ||
                (q[2] != ' ' && q[2] != 0)) {
                sf_msg("filter %s: line %d: expected 'f 0xADDR FLAGS NAME'", path, lineno);
                goto out;
            }
            if (f->n && a <= f->addrs[f->n - 1]) {
                sf_msg("filter %s: line %d: addresses are not in ascending order", path, lineno);
                goto out;
            }
            f->addrs[f->n] = a;
            f->flags[f->n] = q[1] == 'a' ? SF_FILTER_ARGS : 0;
            f->n++;
        } else {
            sf_msg("filter %s: line %d: unknown line '%.40s'", path, lineno, line);
            goto out;
        }
        line = nl + 1;
    }
    if (!have_magic) {
        sf_msg("filter %s: empty file", path);
        goto out;
    }
    if (!f->build_id_len) {
        sf_msg("filter %s: no build-id line", path);
        goto out;
    }
    rc = 0;
out:
    sf_unmap(buf, len + 1);
    return rc;
}

int sf_filters_load(const char *list)
{
    char path[4096];
    while (list && *list) {
        const char *colon = strchr(list, ':');
        size_t n = colon ? (size_t)(colon - list) : strlen(list);
        if (n && n < sizeof path) {
            if (nfilters == MAX_FILTERS) {
                sf_msg("too many filter files (at most %d)", MAX_FILTERS);
                return -1;
            }
            memcpy(path, list, n);
            path[n] = 0;
            if (parse(path, &filters[nfilters]) != 0)
                return -1;
            nfilters++;
        }
        list += n + (colon ? 1 : 0);
    }
    return 0;
}

struct sf_filter *sf_filter_for(const uint8_t *bid, size_t len)
{
    for (int i = 0; i < nfilters; i++)
        if (filters[i].build_id_len == len && len && !memcmp(filters[i].build_id, bid, len))
            return &filters[i];
    return NULL;
}

/* Is the function at ELF address `addr` selected? Sets *flags. */
int sf_filter_lookup(const struct sf_filter *f, uint64_t addr, uint8_t *flags)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (f->addrs[mid] < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < f->n && f->addrs[lo] == addr) {
        *flags = f->flags[lo];
        return 1;
    }
    return 0;
}
