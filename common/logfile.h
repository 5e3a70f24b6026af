/*
 * logfile.h - how the runtime and `sftrace record` create and open a log,
 * which may live in a shared directory such as /tmp.
 *
 * The policy, the same in both (docs/design.md, "Log files"):
 *   - a symbolic link at the log's path is followed only when it belongs to
 *     the effective user (like the kernel's protected_symlinks); one planted
 *     by anyone else is refused with a message naming the path;
 *   - every other open of the path uses O_NOFOLLOW, so a link planted after
 *     the check is not followed either;
 *   - temporary files get an unpredictable name (getrandom) and are created
 *     with O_CREAT | O_EXCL | O_NOFOLLOW: never an existing file or link;
 *   - logs are created with mode 0600 (they show every function the program
 *     ran, its arguments and its command line).
 * Header-only and malloc-free because the runtime uses it too.
 */
#ifndef SFTRACE_LOGFILE_H
#define SFTRACE_LOGFILE_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SF_LOG_MODE 0600

/*
 * Is `path` a symbolic link we must not follow? Returns 1 (and a message in
 * why) for a link owned by someone other than the effective user; 0 for no
 * link, and 2 for the user's own link (which may be followed).
 */
static inline int sf_log_link_check(const char *path, char *why, size_t whylen)
{
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISLNK(st.st_mode))
        return 0;
    if (st.st_uid == geteuid())
        return 2;
    snprintf(why, whylen,
             "%s is a symbolic link owned by uid %u, not by you (uid %u); not following it "
             "(remove it, or choose another path)",
             path, (unsigned)st.st_uid, (unsigned)geteuid());
    return 1;
}

/*
 * open(path, flags, mode) under the policy above. On a refused link returns
 * -1 with errno EPERM and a message in why; on other errors why is "".
 */
static inline int sf_log_open(const char *path, int flags, mode_t mode, char *why, size_t whylen)
{
    why[0] = 0;
    for (int tries = 0; tries < 3; tries++) {
        int link = sf_log_link_check(path, why, whylen);
        if (link == 1) {
            errno = EPERM;
            return -1;
        }
        int fd = open(path, flags | (link == 2 ? 0 : O_NOFOLLOW), mode);
        if (fd >= 0 || errno != ELOOP || link == 2)
            return fd;
        /* ELOOP under O_NOFOLLOW: a link appeared after the check; look again */
    }
    return -1;
}

/*
 * Create a new, empty temporary file beside `path`, named
 * PATH.tmp.<16 random hex digits>, for writing; its name goes to tmp.
 * Returns the descriptor, or -1 with errno.
 */
static inline int sf_log_tmp_create(const char *path, char *tmp, size_t tmplen)
{
    for (int tries = 0; tries < 16; tries++) {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
            /* no entropy yet (early boot): O_EXCL still refuses anything planted */
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            r ^= ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40) ^
                 (uint64_t)(uintptr_t)&r;
        }
        if (snprintf(tmp, tmplen, "%s.tmp.%016llx", path, (unsigned long long)r) >= (int)tmplen) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, SF_LOG_MODE);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

#endif
