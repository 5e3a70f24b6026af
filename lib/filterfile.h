/*
 * filterfile.h - reading a filter file or a --list file whole, for the
 * tools, with the same rules as the runtime (common/filterfmt.h): only a
 * regular file, at most SF_FILTER_MAX_SIZE bytes, opened so that a FIFO or
 * a device cannot block.
 */
#ifndef SFTRACE_FILTERFILE_H
#define SFTRACE_FILTERFILE_H

#include <stddef.h>

/* The file's bytes, NUL-terminated (*len without the NUL), or NULL with the
 * reason in err (without the file's name: the caller says it). Free it. */
char *sf_filter_file_read(const char *path, size_t *len, char *err, size_t errlen);

#endif
