/*
 * filterfmt.h - the parser of filter files (docs/filter-format.md), shared
 * by the runtime (which applies them) and `sftrace record` (which reports
 * filters that matched nothing), so both agree on what a valid file is.
 *
 * It allocates nothing: call it once with addrs == NULL to learn the number
 * of functions, then again with arrays of that size.
 */
#ifndef SFTRACE_FILTERFMT_H
#define SFTRACE_FILTERFMT_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SF_FILTER_MAGIC "sftrace-filter 1"
#define SF_FILTER_ARGS 1 /* flag: record arguments and return value */
/* flags bits 1..3: 1 + the key register (enum sf_key_reg: 0..5 argument,
 * 6 return value) recorded with the event by the fast key trampolines;
 * 0 = none. Written `k0`..`k5`, `kr`. */
#define SF_FILTER_KEY_SHIFT 1
#define SF_FILTER_KEY_MASK (7u << SF_FILTER_KEY_SHIFT)
static inline int sf_filter_key(uint8_t flags) /* -1 or the register */
{
    return (int)((flags & SF_FILTER_KEY_MASK) >> SF_FILTER_KEY_SHIFT) - 1;
}
/* bits 4..7, after a key (keys files the tools write): what the key's
 * function does with it, for descendants mode to follow jobs across threads
 * (docs/design.md, Flows): letters `p` producer, `c` consumer, `x` retire,
 * then `t` (task: a consumer does not use the key up) and `+` (the key is
 * the register or the one after it), e.g. `k1p+`, `krpt`, `k0c`. */
#define SF_FILTER_ROLE_SHIFT 4
#define SF_FILTER_ROLE_MASK (3u << SF_FILTER_ROLE_SHIFT)
enum { SF_FILTER_PRODUCER = 1, SF_FILTER_CONSUMER = 2, SF_FILTER_RETIRE = 3 };
#define SF_FILTER_TASK 0x40u
#define SF_FILTER_PAIR 0x80u
static inline int sf_filter_role(uint8_t flags)
{
    return (int)((flags & SF_FILTER_ROLE_MASK) >> SF_FILTER_ROLE_SHIFT);
}

struct sf_filter_info {
    uint8_t build_id[64];
    size_t build_id_len;
    int descendants;
    int keys; /* mode keys: only key registers, tracing is not restricted */
    size_t nfuncs;
    size_t ntriggers; /* trace-on / trace-off lines */
};

/*
 * The largest filter or list file read: 256 MiB. A filter line is about 30
 * bytes plus the function's name; 256 MiB holds a million functions with
 * 230-byte names, more than the largest instrumented programs have (a
 * Chromium build: about a million functions). A bound is needed because the
 * runtime maps the whole file, and a mistaken path (a log, a core file) must
 * not take the traced program's memory.
 */
#define SF_FILTER_MAX_SIZE ((size_t)256 << 20)

/*
 * Open a filter (or --list) file for reading, the same way everywhere that
 * reads one: only a regular file (a FIFO, a device such as /dev/zero or a
 * directory is refused, so nothing can block or read without end), at most
 * SF_FILTER_MAX_SIZE bytes. O_NONBLOCK makes the open itself of a FIFO or
 * a device return at once; it is harmless for regular files. Symbolic links
 * are followed (people link filters). Returns the descriptor with its size
 * in *len, or -1 with the reason in err (the caller names the file).
 */
static inline int sf_filter_open(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    const char *what = NULL;
    if (S_ISDIR(st.st_mode))
        what = "a directory";
    else if (S_ISFIFO(st.st_mode))
        what = "a FIFO (named pipe)";
    else if (S_ISCHR(st.st_mode))
        what = "a character device";
    else if (S_ISBLK(st.st_mode))
        what = "a block device";
    else if (S_ISSOCK(st.st_mode))
        what = "a socket";
    else if (!S_ISREG(st.st_mode))
        what = "not a regular file";
    if (what) {
        snprintf(err, errlen, "is %s, not a regular file (write the filter to a file first)", what);
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > SF_FILTER_MAX_SIZE) {
        snprintf(err, errlen, "is %llu bytes, more than the limit of %zu MiB",
                 (unsigned long long)st.st_size, SF_FILTER_MAX_SIZE >> 20);
        close(fd);
        return -1;
    }
    *len = (size_t)st.st_size;
    return fd;
}

/* Read the file sf_filter_open opened into buf, which has room for len + 1
 * bytes (one more, to see a file that grew). Closes fd. Returns 0, or -1
 * with the reason in err. */
static inline int sf_filter_read(int fd, char *buf, size_t len, char *err, size_t errlen)
{
    size_t got = 0;
    while (got < len + 1) {
        ssize_t n = read(fd, buf + got, len + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "read: %s", strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got != len) {
        snprintf(err, errlen, "the file changed while it was read");
        return -1;
    }
    buf[len] = 0;
    return 0;
}

static inline int sf_filter_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static inline int sf_filter_starts(const char *line, size_t n, const char *word)
{
    size_t w = strlen(word);
    return n >= w && !memcmp(line, word, w);
}

/* Trigger lines (live control, runtime/ctl.c and ring.c), by kind:
 *   trace-on 0xADDR NAME         recording starts when the function is entered
 *   trace-off 0xADDR NAME        recording stops when it returns
 *   snapshot-on 0xADDR NAME      a flight-recorder snapshot at its entry
 *   snapshot-slower 0xADDR NS NAME
 *                                a snapshot when a call of it took longer
 *                                than NS nanoseconds, at that call's exit */
enum { SF_TRIG_OFF = 0, SF_TRIG_ON = 1, SF_TRIG_SNAP = 2, SF_TRIG_SLOW = 3 };
struct sf_trigger {
    uint64_t addr;
    uint64_t ns; /* SF_TRIG_SLOW */
    int kind;
};

/* 1 with *t set for a trigger line, 0 for another kind of line, -1 for a
 * malformed trigger line. */
static inline int sf_filter_trigger_line(const char *line, size_t ll, struct sf_trigger *t)
{
    static const char *const words[] = {"trace-off ", "trace-on ", "snapshot-on ",
                                        "snapshot-slower "};
    size_t w = 0;
    t->kind = -1;
    for (int k = 0; k < 4 && t->kind < 0; k++)
        if (sf_filter_starts(line, ll, words[k]))
            t->kind = k, w = strlen(words[k]);
    if (t->kind < 0)
        return 0;
    if (!sf_filter_starts(line + w, ll - w, "0x"))
        return -1;
    char *q;
    errno = 0;
    unsigned long long a = strtoull(line + w + 2, &q, 16);
    size_t at = (size_t)(q - line);
    if (q == line + w + 2 || errno || at > ll || (at < ll && *q != ' '))
        return -1;
    t->addr = a;
    t->ns = 0;
    if (t->kind == SF_TRIG_SLOW) {
        if (at + 1 >= ll || q[1] < '0' || q[1] > '9')
            return -1;
        unsigned long long ns = strtoull(q + 1, &q, 10);
        at = (size_t)(q - line);
        if (errno || at > ll || (at < ll && *q != ' '))
            return -1;
        t->ns = ns;
    }
    return 1;
}

/* The trigger lines of a valid file: up to max of them into out; returns
 * how many there are. */
static inline size_t sf_filter_triggers(const char *buf, size_t len, struct sf_trigger *out,
                                        size_t max)
{
    const char *p = buf, *end = buf + len;
    size_t n = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        struct sf_trigger t;
        if (sf_filter_trigger_line(p, ll, &t) == 1) {
            if (n < max)
                out[n] = t;
            n++;
        }
        p += ll + 1;
    }
    return n;
}

/* Parse buf[0..len). Returns 0, or -1 with "line N: what" in err. With
 * addrs/flags given (info->nfuncs entries, from a first call), fills them. */
static inline int sf_filter_parse(const char *buf, size_t len, struct sf_filter_info *info,
                                  uint64_t *addrs, uint8_t *flags, char *err, size_t errlen)
{
    const char *p = buf, *end = buf + len;
    size_t n = 0;
    int lineno = 0, trig;
    struct sf_trigger tr;
    memset(info->build_id, 0, sizeof info->build_id);
    info->build_id_len = 0;
    info->descendants = 0;
    info->keys = 0;
    info->ntriggers = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *line = p;
        p += ll + 1;
        lineno++;
        if (ll && line[ll - 1] == '\r') /* CRLF line endings (a file edited on Windows) */
            ll--;
        if (lineno == 1) {
            size_t m = sizeof SF_FILTER_MAGIC - 1;
            if (ll == m && !memcmp(line, SF_FILTER_MAGIC, m))
                continue;
            if (sf_filter_starts(line, ll, "sftrace-filter "))
                snprintf(err, errlen, "line 1: filter version '%.*s' is not supported (1)",
                         (int)(ll > 15 + 20 ? 20 : ll - 15), line + 15);
            else
                snprintf(err, errlen, "line 1: not an sftrace filter file (expected '%s')",
                         SF_FILTER_MAGIC);
            return -1;
        }
        if (ll == 0 || line[0] == '#' || sf_filter_starts(line, ll, "object "))
            continue;
        if (sf_filter_starts(line, ll, "build-id ")) {
            size_t k = 0, i = 9;
            while (i + 1 < ll + 1 && i < ll && k < sizeof info->build_id) {
                int a = sf_filter_hex(line[i]), b = i + 1 < ll ? sf_filter_hex(line[i + 1]) : -1;
                if (a < 0 || b < 0)
                    break;
                info->build_id[k++] = (uint8_t)(a << 4 | b);
                i += 2;
            }
            if (i != ll || k == 0) {
                snprintf(err, errlen, "line %d: bad build-id", lineno);
                return -1;
            }
            info->build_id_len = k;
        } else if (sf_filter_starts(line, ll, "mode ")) {
            if (ll == 16 && !memcmp(line + 5, "descendants", 11))
                info->descendants = 1;
            else if (ll == 9 && !memcmp(line + 5, "keys", 4))
                info->keys = 1;
            else if (!(ll == 13 && !memcmp(line + 5, "selected", 8))) {
                snprintf(err, errlen, "line %d: unknown mode '%.*s'", lineno,
                         (int)(ll - 5 > 40 ? 40 : ll - 5), line + 5);
                return -1;
            }
        } else if (sf_filter_starts(line, ll, "f 0x")) {
            char *q;
            errno = 0;
            unsigned long long a = strtoull(line + 4, &q, 16);
            size_t at = (size_t)(q - line);
            /* FLAGS: '-', or 'a' and/or a key 'k0'..'k5' / 'kr' */
            size_t fe = at + 1;
            uint8_t fl = 0;
            int fbad = at + 2 > ll || *q != ' ';
            if (!fbad && line[fe] == '-') {
                fe++;
            } else {
                while (!fbad && fe < ll && line[fe] != ' ') {
                    if (line[fe] == 'a' && !(fl & SF_FILTER_ARGS)) {
                        fl |= SF_FILTER_ARGS;
                        fe++;
                    } else if (line[fe] == 'k' && !(fl & SF_FILTER_KEY_MASK) && fe + 1 < ll &&
                               ((line[fe + 1] >= '0' && line[fe + 1] <= '5') ||
                                line[fe + 1] == 'r')) {
                        int reg = line[fe + 1] == 'r' ? 6 : line[fe + 1] - '0';
                        fl |= (uint8_t)((reg + 1) << SF_FILTER_KEY_SHIFT);
                        fe += 2;
                        const char *roles = "pcx";
                        const char *rl = fe < ll && line[fe] ? strchr(roles, line[fe]) : NULL;
                        if (rl) {
                            fl |= (uint8_t)((rl - roles + 1) << SF_FILTER_ROLE_SHIFT);
                            fe++;
                            if (fe < ll && line[fe] == 't') {
                                fl |= SF_FILTER_TASK;
                                fe++;
                            }
                            if (fe < ll && line[fe] == '+') {
                                fl |= SF_FILTER_PAIR;
                                fe++;
                            }
                        }
                    } else {
                        fbad = 1;
                    }
                }
                fbad |= fe == at + 1;
            }
            if (q == line + 4 || errno || fbad || (fe < ll && line[fe] != ' ')) {
                snprintf(err, errlen, "line %d: expected 'f 0xADDR FLAGS NAME'", lineno);
                return -1;
            }
            if (addrs) {
                if (n >= info->nfuncs) {
                    snprintf(err, errlen, "line %d: the file changed while read", lineno);
                    return -1;
                }
                if (n && a <= addrs[n - 1]) {
                    snprintf(err, errlen, "line %d: addresses are not in ascending order", lineno);
                    return -1;
                }
                addrs[n] = a;
                flags[n] = fl;
            }
            n++;
        } else if ((trig = sf_filter_trigger_line(line, ll, &tr)) != 0) {
            if (trig < 0) {
                snprintf(err, errlen,
                         "line %d: expected 'trace-on|trace-off|snapshot-on 0xADDR NAME' or "
                         "'snapshot-slower 0xADDR NS NAME'",
                         lineno);
                return -1;
            }
            info->ntriggers++;
        } else {
            snprintf(err, errlen, "line %d: unknown line '%.*s'", lineno, (int)(ll > 40 ? 40 : ll),
                     line);
            return -1;
        }
    }
    if (lineno == 0) {
        snprintf(err, errlen, "empty file");
        return -1;
    }
    if (!info->build_id_len) {
        snprintf(err, errlen, "no build-id line");
        return -1;
    }
    if (!addrs)
        info->nfuncs = n;
    return 0;
}

#endif
