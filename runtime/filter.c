/*
 * filter.c - reading filter files (docs/filter-format.md) at start-up and
 * answering, while an object is patched, whether each function is selected.
 *
 * Files come from SFTRACE_FILTER (paths separated by ':'). They are parsed
 * without malloc into arrays from the runtime's arena; lookups are binary
 * searches by function address. A file that cannot be used is reported with
 * its name and line, and the process then runs untraced. Only regular files
 * of at most SF_FILTER_MAX_SIZE bytes are read (filterfmt.h says why).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "filterfmt.h"
#include "runtime.h"

#define MAX_FILTERS 64

static struct sf_filter filters[MAX_FILTERS];
static int nfilters;

/* Keys files (`mode keys`, docs/filter-format.md) only choose key
 * trampolines: they neither select functions nor make other objects
 * untraced, so they do not count here. */
int sf_filters_active(void)
{
    for (int i = 0; i < nfilters; i++)
        if (!filters[i].keys)
            return 1;
    return 0;
}

int sf_filters_descendants(void)
{
    for (int i = 0; i < nfilters; i++)
        if (filters[i].descendants)
            return 1;
    return 0;
}

/* Parse one file into f. Returns 0, or -1 after printing what is wrong. */
static int parse(const char *path, struct sf_filter *f)
{
    char err[256];
    size_t len = 0;
    int fd = sf_filter_open(path, &len, err, sizeof err);
    if (fd < 0) {
        sf_msg("filter %s: %s", path, err);
        return -1;
    }
    char *buf = sf_map(len + 1);
    if (!buf) {
        close(fd);
        sf_msg("filter %s: out of memory", path);
        return -1;
    }
    if (sf_filter_read(fd, buf, len, err, sizeof err) != 0) {
        sf_msg("filter %s: %s", path, err);
        sf_unmap(buf, len + 1);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s", path);
    struct sf_filter_info info;
    int rc = sf_filter_parse(buf, len, &info, NULL, NULL, err, sizeof err);
    if (rc == 0 && info.nfuncs) {
        f->addrs = sf_map(info.nfuncs * sizeof *f->addrs);
        f->flags = sf_map(info.nfuncs);
        if (!f->addrs || !f->flags) {
            snprintf(err, sizeof err, "out of memory");
            rc = -1;
        }
    }
    if (rc == 0)
        rc = sf_filter_parse(buf, len, &info, f->addrs, f->flags, err, sizeof err);
    if (rc == 0) {
        memcpy(f->build_id, info.build_id, sizeof f->build_id);
        f->build_id_len = info.build_id_len;
        f->descendants = info.descendants;
        f->keys = info.keys;
        f->n = info.nfuncs;
        if (!f->n && !f->descendants && info.ntriggers)
            rc = 1; /* triggers only (ctl.c reads them): selects nothing by itself */
    } else {
        sf_msg("filter %s: %s", path, err);
    }
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
            int rc = parse(path, &filters[nfilters]);
            if (rc < 0)
                return -1;
            if (rc == 0)
                nfilters++;
        }
        list += n + (colon ? 1 : 0);
    }
    return 0;
}

struct sf_filter *sf_filter_for(const uint8_t *bid, size_t len)
{
    for (int i = 0; i < nfilters; i++)
        if (!filters[i].keys && filters[i].build_id_len == len && len &&
            !memcmp(filters[i].build_id, bid, len))
            return &filters[i];
    return NULL;
}

struct sf_filter *sf_keys_for(const uint8_t *bid, size_t len)
{
    for (int i = 0; i < nfilters; i++)
        if (filters[i].keys && filters[i].build_id_len == len && len &&
            !memcmp(filters[i].build_id, bid, len))
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
