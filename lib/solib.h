/*
 * solib.h - finding the runtime library (libsftrace.so) and checking that a
 * file is the runtime of this sftrace's version (its version note,
 * common/vnote.h), for `sftrace record` and any command that reports on the
 * runtime.
 */
#ifndef SFTRACE_SOLIB_H
#define SFTRACE_SOLIB_H

#include <stddef.h>

/* Where a runtime library was found, in search order after --solib. */
enum sf_solib_where {
    SF_SOLIB_GIVEN,       /* --solib PATH */
    SF_SOLIB_INSTALL_DIR, /* $XDG_DATA_HOME/sftrace, else ~/.local/share/sftrace */
    SF_SOLIB_BESIDE,      /* beside the sftrace binary */
    SF_SOLIB_PREFIX_LIB,  /* ../lib from the binary (make install) */
    SF_SOLIB_BUILD_TREE,  /* ../build from the binary (a source tree) */
    SF_SOLIB_NWHERE
};

/* "in the install directory (...)" and so on, for messages. */
const char *sf_solib_where_text(enum sf_solib_where w);

/* The per-user install directory (not created). */
void sf_solib_install_dir(char *buf, size_t len);

/* The first libsftrace.so that exists, searching from `from` on (self_dir:
 * the sftrace binary's directory). Writes its real path; 0, or -1 if none. */
int sf_solib_find(const char *self_dir, enum sf_solib_where from, char *out, size_t len,
                  enum sf_solib_where *where);

/* The version in path's sftrace version note. 0 with it in ver; else -1 with
 * what is wrong in err: unreadable, empty, not an ELF file, not a shared
 * library for this machine, not the sftrace runtime, or an sftrace runtime
 * from before version notes. Does not compare versions. */
int sf_solib_version(const char *path, char *ver, size_t vlen, char *err, size_t elen);

#endif
