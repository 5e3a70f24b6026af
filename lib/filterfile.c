/*
 * filterfile.c - reading filter and --list files for the tools (see
 * filterfile.h): `sftrace record` checks its -f files before it starts the
 * program, and `sftrace filter --list` reads its lists, by the rules the
 * runtime applies to SFTRACE_FILTER.
 */
#include "filterfile.h"

#include <stdint.h>
#include <stdlib.h>

#include "filterfmt.h"
#include "xalloc.h"

char *sf_filter_file_read(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = sf_filter_open(path, len, err, errlen);
    if (fd < 0)
        return NULL;
    char *buf = sf_xrealloc(NULL, *len + 1);
    if (sf_filter_read(fd, buf, *len, err, errlen) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

int sf_filter_file_check(const char *path, char *err, size_t errlen)
{
    size_t len;
    char *buf = sf_filter_file_read(path, &len, err, errlen);
    if (!buf)
        return -1;
    struct sf_filter_info info;
    int rc = sf_filter_parse(buf, len, &info, NULL, NULL, err, errlen);
    if (rc == 0) { /* the second pass checks the order of addresses */
        uint64_t *addrs = sf_xrealloc(NULL, (info.nfuncs + 1) * sizeof *addrs);
        uint8_t *flags = sf_xrealloc(NULL, info.nfuncs + 1);
        rc = sf_filter_parse(buf, len, &info, addrs, flags, err, errlen);
        free(addrs);
        free(flags);
    }
    free(buf);
    return rc;
}
