/*
 * filterfile.c - reading filter and --list files for the tools (see
 * filterfile.h): `sftrace record` reads its -f filters before the run (to
 * refuse one the runtime would) and again after it (to report stale ones),
 * and `sftrace filter --list` reads its lists, by the rules the runtime
 * applies to SFTRACE_FILTER.
 */
#include "filterfile.h"

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
