/*
 * record.c - `sftrace record`: run a command with the runtime preloaded.
 *
 * It creates the log (header only), exports SFTRACE_OUTPUT_FILE,
 * SFTRACE_SESSION (so every process of the command appends to this log),
 * SFTRACE_PATCH_ALL, SFTRACE_RECORD_VERSION and LD_PRELOAD, runs the command,
 * waits, prints a summary line and returns the command's exit status (128+N
 * if signal N killed it).
 *
 * Before preloading the runtime it reads the library's version note
 * (lib/solib.h): a file that is not our runtime, or a runtime of another
 * version, is refused with a message naming it and where it was found.
 * `--install-solib` copies the runtime into the per-user install directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "filterfile.h"
#include "filterfmt.h"
#include "flows.h"
#include "logfile.h"
#include "logfmt.h"
#include "select.h"
#include "solib.h"
#include "version.h"
#include "vnote.h"
#include "xraymap.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: sftrace record [-o FILE] [-q] [-f FILTER]... [--paused|--control]\n"
               "                      [--solib PATH] -- CMD [ARGS...]\n"
               "       sftrace record --print-solib | --print-solib-install-dir\n"
               "       sftrace record --install-solib [--solib PATH]\n"
               "\n"
               "Runs CMD with the tracing runtime (libsftrace.so) preloaded and records every\n"
               "function entry and exit of every thread of every process it starts that runs\n"
               "XRay-instrumented code. Returns CMD's exit status.\n"
               "\n"
               "  -o FILE        log to write (default ./sf.log)\n"
               "  -q, --quiet    no summary line at the end (warnings are still printed)\n"
               "  -f FILTER      trace only the functions FILTER selects (sftrace filter);\n"
               "                 may be repeated, one per object\n"
               "  --no-flows     do not record the keys of rayon jobs and tokio tasks\n"
               "                 (by default the command's functions that make and run\n"
               "                 them also record one register: docs/design.md, Flows)\n"
               "  --flows FILE   also the producer/consumer pairs FILE declares\n"
               "                 (docs/filter-format.md, Flow rules); repeatable\n"
               "  --flows-in OBJ also record the job and task keys of OBJ, a shared object\n"
               "                 the program loads (a node addon, a Python extension, a\n"
               "                 library): the executable's, and the objects of the -f\n"
               "                 filters, are found by themselves; repeatable\n"
               "  --paused       start with recording stopped (sleds unpatched: no cost);\n"
               "                 SIGUSR1 or `sftrace ctl PID start|stop` starts and stops it\n"
               "  --control      record from the start, but let SIGUSR1 and `sftrace ctl`\n"
               "                 stop and start it (the runtime takes SIGUSR1)\n"
               "  --ring SIZE    flight recorder: keep only the most recent SIZE bytes of\n"
               "                 (packed) records per process (64M, 1G; at least 1M) and\n"
               "                 write them as a snapshot on SIGUSR2 or `sftrace snapshot\n"
               "                 PID`, at exit, on a fatal signal and on the triggers below\n"
               "  --snapshot-on REGEX\n"
               "                 with --ring: a snapshot when a function of CMD's executable\n"
               "                 that REGEX matches is entered (repeatable)\n"
               "  --snapshot-slower-than DUR\n"
               "                 ... instead, when such a call took longer than DUR (1.5s,\n"
               "                 200ms, 30us, ns), at its exit and including it\n"
               "  -p PID         attach to running process PID instead (x86_64, ptrace; also\n"
               "                 `sftrace attach PID`): record until Ctrl-C or --duration,\n"
               "                 then put every sled back and leave it running\n"
               "  --duration DUR with -p: detach after DUR (1.5s, 200ms, ...)\n"
               "  --solib PATH   use this libsftrace.so\n"
               "  --print-solib  print the runtime library that would be used\n"
               "  --print-solib-install-dir\n"
               "                 print the directory searched first for libsftrace.so\n"
               "                 ($XDG_DATA_HOME/sftrace, else ~/.local/share/sftrace)\n"
               "  --install-solib\n"
               "                 copy the runtime of this sftrace (or --solib PATH) into\n"
               "                 that directory, creating it, and print where it went\n"
               "\n"
               "The runtime is searched for in the install directory, beside the sftrace\n"
               "binary, in ../lib and in ../build from it; it must be the runtime of this\n"
               "version of sftrace (" SFTRACE_VERSION ").\n");
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Is path the runtime of this version? 0, or -1 after saying what is wrong
 * with it, where it was found and what to do. */
static int check_solib(const char *path, enum sf_solib_where where)
{
    char ver[256], err[512];
    const char *fix = where == SF_SOLIB_GIVEN ? "pass the libsftrace.so built with this sftrace"
                      : where == SF_SOLIB_INSTALL_DIR ? "replace it with `sftrace record "
                                                        "--install-solib`, or delete it"
                                                      : "reinstall or rebuild sftrace";
    if (sf_solib_version(path, ver, sizeof ver, err, sizeof err) == 0) {
        if (!strcmp(ver, SFTRACE_VERSION))
            return 0;
        fprintf(stderr,
                "sftrace record: runtime library %s (%s) is version %s, but this sftrace is %s; "
                "%s\n",
                path, sf_solib_where_text(where), ver, SFTRACE_VERSION, fix);
        return -1;
    }
    fprintf(stderr, "sftrace record: runtime library %s (%s): %s; %s\n", path,
            sf_solib_where_text(where), err, fix);
    return -1;
}

/* The runtime to preload: --solib, else the first one found; checked. */
static int find_solib(const char *given, char *out, size_t len)
{
    enum sf_solib_where where = SF_SOLIB_GIVEN;
    if (given) {
        if (!realpath(given, out) || !is_file(out)) {
            fprintf(stderr, "sftrace record: runtime library %s: not found\n", given);
            return -1;
        }
    } else if (sf_solib_find(sftrace_self_dir(), SF_SOLIB_INSTALL_DIR, out, len, &where)) {
        char dir[PATH_MAX];
        sf_solib_install_dir(dir, sizeof dir);
        fprintf(stderr,
                "sftrace record: libsftrace.so not found (looked in %s, beside %s/sftrace, "
                "and in %s/../lib and %s/../build); use --solib PATH\n",
                dir, sftrace_self_dir(), sftrace_self_dir(), sftrace_self_dir());
        return -1;
    }
    return check_solib(out, where);
}

/* --install-solib: copy the runtime (--solib, else the first one found
 * outside the install directory) into the install directory, creating it.
 * The copy is written beside and renamed into place, so processes that
 * have the old one mapped keep running. */
static int install_solib(const char *given)
{
    char src[PATH_MAX], dir[PATH_MAX], dst[PATH_MAX + 32], tmp[PATH_MAX + 64];
    enum sf_solib_where where = SF_SOLIB_GIVEN;
    if (given) {
        if (!realpath(given, src) || !is_file(src)) {
            fprintf(stderr, "sftrace record: runtime library %s: not found\n", given);
            return 1;
        }
    } else if (sf_solib_find(sftrace_self_dir(), SF_SOLIB_BESIDE, src, sizeof src, &where)) {
        fprintf(stderr,
                "sftrace record: no libsftrace.so to install (looked beside %s/sftrace, and in "
                "../lib and ../build from there); use --solib PATH\n",
                sftrace_self_dir());
        return 1;
    }
    if (check_solib(src, where))
        return 1;
    sf_solib_install_dir(dir, sizeof dir);
    /* mkdir -p */
    for (char *p = dir + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
                fprintf(stderr, "sftrace record: cannot create %s: %s\n", dir, strerror(errno));
                return 1;
            }
            *p = c;
            if (!c)
                break;
        }
    }
    snprintf(dst, sizeof dst, "%s/libsftrace.so", dir);
    if (!strcmp(src, dst)) {
        printf("%s is already installed (version %s)\n", dst, SFTRACE_VERSION);
        return 0;
    }
    snprintf(tmp, sizeof tmp, "%s/.libsftrace.so.XXXXXX", dir);
    int in = open(src, O_RDONLY | O_CLOEXEC), out = in < 0 ? -1 : mkstemp(tmp);
    int err = in < 0 || out < 0 ? errno : 0;
    char buf[1 << 16];
    ssize_t n = 0;
    while (!err && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || write(out, buf, (size_t)n) != n)
            err = errno ? errno : EIO;
    }
    if (!err && (fchmod(out, 0755) || fsync(out)))
        err = errno;
    if (out >= 0 && close(out) && !err)
        err = errno;
    if (in >= 0)
        close(in);
    if (!err && rename(tmp, dst))
        err = errno;
    if (err) {
        fprintf(stderr, "sftrace record: cannot install %s as %s: %s\n", src, dst, strerror(err));
        if (out >= 0)
            unlink(tmp);
        return 1;
    }
    printf("installed %s (version %s, from %s)\n", dst, SFTRACE_VERSION, src);
    return 0;
}

/* Is CMD something we can execute (searching PATH like execvp)? 0, or -1
 * with errno: ENOENT (not found), EISDIR or EACCES for a path with a '/'
 * (a directory passes access(X_OK); the exec would fail after the fork). */
static int find_command(const char *cmd, char *found, size_t foundlen)
{
    if (strchr(cmd, '/')) {
        snprintf(found, foundlen, "%s", cmd);
        struct stat st;
        if (stat(cmd, &st) != 0)
            return -1;
        if (S_ISDIR(st.st_mode)) {
            errno = EISDIR;
            return -1;
        }
        return access(cmd, X_OK) == 0 ? 0 : -1;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t n = colon ? (size_t)(colon - path) : strlen(path);
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%.*s/%s", (int)n, n ? path : ".", cmd);
        if (is_file(p) && access(p, X_OK) == 0) {
            snprintf(found, foundlen, "%s", p);
            return 0;
        }
        path += n + (colon ? 1 : 0);
    }
    return -1;
}

/*
 * Would exec'ing `path` change our credentials (AT_SECURE)? Then the dynamic
 * linker ignores LD_PRELOAD (and removes it from the environment, so the
 * program's children are not traced either): the program cannot be traced
 * by preloading. That is a set-user-ID file of another user, a
 * set-group-ID file of another group, or file capabilities for a user
 * other than root; the bits do nothing on a nosuid mount or under
 * no_new_privs, and nothing for a script (the kernel ignores them there).
 * Returns 0, or 1 with what the file is in why.
 */
static int secure_exec(const char *path, char *why, size_t whylen)
{
    struct stat st;
    struct statvfs vfs;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1 ||
        (statvfs(path, &vfs) == 0 && (vfs.f_flag & ST_NOSUID)))
        return 0;
    char magic[4];
    FILE *f = fopen(path, "rb");
    int elf = f && fread(magic, 1, 4, f) == 4 && !memcmp(magic, "\177ELF", 4);
    if (f)
        fclose(f);
    if (!elf)
        return 0;
    if ((st.st_mode & S_ISUID) && st.st_uid != getuid()) {
        struct passwd *pw = getpwuid(st.st_uid);
        if (pw)
            snprintf(why, whylen, "set-user-ID (to user %s)", pw->pw_name);
        else
            snprintf(why, whylen, "set-user-ID (to uid %u)", (unsigned)st.st_uid);
        return 1;
    }
    if ((st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) && st.st_gid != getgid()) {
        struct group *gr = getgrgid(st.st_gid);
        if (gr)
            snprintf(why, whylen, "set-group-ID (to group %s)", gr->gr_name);
        else
            snprintf(why, whylen, "set-group-ID (to gid %u)", (unsigned)st.st_gid);
        return 1;
    }
    if (getuid() != 0 && getxattr(path, "security.capability", NULL, 0) > 0) {
        snprintf(why, whylen, "given file capabilities (getcap %s)", path);
        return 1;
    }
    return 0;
}

/* --flows-in's objects: at most this many */
#define SF_MAX_FLOWOBJS 16

/* A --flows-in object must be an instrumented ELF file: 0, or -1 after a
 * message (a typo in a path would else only show as arrows missing). */
static int check_flowobj(const char *obj)
{
    char err[PATH_MAX + 256];
    struct sf_xraymap m;
    int r = sf_xraymap_read_file(obj, &m, err, sizeof err);
    if (r == 0) {
        sf_xraymap_free(&m);
        return 0;
    }
    if (r == SF_XRAYMAP_NONE)
        fprintf(stderr,
                "sftrace record: --flows-in %s: not instrumented (no xray_instr_map section)\n",
                obj);
    else
        fprintf(stderr, "sftrace record: --flows-in %s\n", err);
    return -1;
}

/* The objects the user's filters (colon-separated paths) were made for, as
 * their `object PATH` lines say, that exist and are not the command
 * itself: the program will load them (a filter names the object it
 * traces), so their flow functions want keys as the executable's do (a
 * --descendants filter for a node addon follows its jobs only so). Adds
 * them to objs (strdup'd) up to cap; returns the new count. */
static int filter_objects(const char *filters, const char *cmdpath, char **objs, int n, int cap)
{
    char *list = strdup(filters);
    char self[PATH_MAX];
    if (!list || !realpath(cmdpath, self))
        self[0] = 0;
    for (char *save = NULL, *p = list ? strtok_r(list, ":", &save) : NULL; p && n < cap;
         p = strtok_r(NULL, ":", &save)) {
        char err[256];
        size_t len;
        char *buf = sf_filter_file_read(p, &len, err, sizeof err);
        if (!buf)
            continue; /* the runtime says why */
        for (char *l = buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
            if (strncmp(l, "object ", 7))
                continue;
            char path[PATH_MAX], real[PATH_MAX];
            size_t pl = strcspn(l + 7, "\n");
            if (pl >= sizeof path)
                break;
            memcpy(path, l + 7, pl);
            path[pl] = 0;
            int dup = 0;
            for (int k = 0; realpath(path, real) && k < n; k++)
                dup |= !strcmp(objs[k], real);
            if (realpath(path, real) && strcmp(real, self) && !dup)
                objs[n++] = strdup(real);
            break; /* one object a filter */
        }
        free(buf);
    }
    free(list);
    return n;
}

/* Write the keys file of obj's flow functions (if it has any) to a
 * temporary file and add it to SFTRACE_FILTER; its name goes to keys
 * (empty when none was written). The number of functions, or -1 when obj
 * is not an ELF file that can be read. */
static int write_keys(struct sf_flows *fl, const char *obj, char *keys, size_t keyslen)
{
    char err[PATH_MAX + 256];
    snprintf(keys, keyslen, "%s/sftrace-keys-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    int fd = strlen(keys) + 1 < keyslen ? mkstemp(keys) : -1;
    int n = fd < 0 ? -1 : sf_flows_write_keys(fl, obj, keys, err, sizeof err);
    if (fd >= 0)
        close(fd);
    if (n > 0) {
        const char *filters = getenv("SFTRACE_FILTER") ? getenv("SFTRACE_FILTER") : "";
        char *v = malloc(strlen(filters) + strlen(keys) + 2);
        if (v) {
            sprintf(v, "%s%s%s", filters, filters[0] ? ":" : "", keys);
            setenv("SFTRACE_FILTER", v, 1);
            free(v);
        }
    } else {
        if (fd >= 0)
            unlink(keys);
        keys[0] = 0;
    }
    return n;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The log, created (or truncated) under the policy of common/logfile.h: a
 * link someone else planted at `path` is refused (why says so), mode 0600. */
static int create_log(const char *path, uint64_t *session, char *why, size_t whylen)
{
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
        /* a FIFO would block until someone reads it; /dev/null is fine */
        snprintf(why, whylen, "%s is not a regular file", path);
        return -1;
    }
    int fd = sf_log_open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, SF_LOG_MODE, why, whylen);
    if (fd < 0)
        return -1;
    struct sf_file_header h;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t mono = mono_ns();
    *session = ((uint64_t)getpid() << 40) ^ mono ^ (uint64_t)tv.tv_usec << 20;
    sf_file_header_init(&h, *session, mono,
                        (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u);
    int ok = write(fd, &h, sizeof h) == (ssize_t)sizeof h;
    if (close(fd) != 0 || !ok)
        return -1;
    return 0;
}

/* A set of nonzero 64-bit keys (open addressing); add says if key was new. */
struct u64set {
    uint64_t *v;
    size_t cap, n;
};

static int u64set_add(struct u64set *s, uint64_t key)
{
    if (s->n * 2 >= s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 1024;
        uint64_t *nv = calloc(ncap, sizeof *nv);
        if (!nv)
            return 0;
        for (size_t i = 0; i < s->cap; i++)
            if (s->v[i])
                for (size_t j = s->v[i] * 0x9E3779B97F4A7C15ull % ncap;; j = (j + 1) % ncap)
                    if (!nv[j]) {
                        nv[j] = s->v[i];
                        break;
                    }
        free(s->v);
        s->v = nv;
        s->cap = ncap;
    }
    for (size_t j = key * 0x9E3779B97F4A7C15ull % s->cap;; j = (j + 1) % s->cap) {
        if (s->v[j] == key)
            return 0;
        if (!s->v[j]) {
            s->v[j] = key;
            s->n++;
            return 1;
        }
    }
}

/*
 * What a log holds, from its chunk headers. Processes and process images
 * are counted apart, with the same meaning as in `sftrace convert`: every
 * PROCESS chunk starts a process image; it starts a new process too unless
 * it is an exec'd image (SF_PROC_EXECED) of a pid already seen. (A vfork
 * child that execs, as posix_spawn does, wrote no chunk of its own before
 * the exec, so its first image is a new process.)
 */
struct summary {
    uint64_t events, bytes, lost;
    uint32_t processes, images, objects, threads;
    uint32_t died, unended; /* images salvaged after a death; images without END */
    uint32_t end_threads;   /* threads the ENDs count (a reused tid counts again) */
    char died_msg[512];
    int bad;
    char bids[64][129]; /* distinct build-ids of the objects, in hex */
    uint32_t nbids;
};

static void hex(char *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * n] = 0;
}

/* A process died without the runtime's last flush; its helper wrote what
 * its threads had stored. Say so (the first few, then a count). */
static void note_death(struct summary *s, uint32_t pid, const struct sf_end *e)
{
    s->died++;
    size_t n = strlen(s->died_msg);
    if (s->died > 4 || n > sizeof s->died_msg - 128)
        return;
    char how[64];
    if (e->status_how == SF_STATUS_SIGNALED)
        snprintf(how, sizeof how, "was killed by signal %u (%s)", e->status,
                 strsignal((int)e->status));
    else if (e->status_how == SF_STATUS_EXITED)
        snprintf(how, sizeof how, "exited (status %u) without a last flush", e->status);
    else
        snprintf(how, sizeof how, "died");
    snprintf(s->died_msg + n, sizeof s->died_msg - n,
             "sftrace record: process %u %s; its %llu events were salvaged into the log\n", pid,
             how, (unsigned long long)e->events);
}

/*
 * Wait until every process of the log that is no longer running has its
 * END: after a death, its helper is still writing what it salvaged. A
 * process still running (a daemon) is not waited for, nor one whose helper
 * could not write (the log stops growing: a full disk).
 */
static void wait_for_helpers(const char *path)
{
    off_t last_size = -1;
    int still = 0;                                              /* rounds without the log growing */
    for (int round = 0; round < 6000 && still < 100; round++) { /* 60 s; 1 s unchanged */
        FILE *f = fopen(path, "rb");
        if (!f)
            return;
        struct stat fst;
        if (fstat(fileno(f), &fst) == 0) {
            still = fst.st_size == last_size ? still + 1 : 0;
            last_size = fst.st_size;
        }
        uint32_t open_pids[256];
        size_t nopen = 0;
        struct sf_chunk h;
        off_t off = sizeof(struct sf_file_header);
        while (fseeko(f, off, SEEK_SET) == 0 && fread(&h, sizeof h, 1, f) == 1 &&
               h.magic == SF_CHUNK_MAGIC && h.size >= sizeof h) {
            if (h.type == SF_CHUNK_PROCESS || h.type == SF_CHUNK_END) {
                size_t k = 0;
                while (k < nopen && open_pids[k] != h.pid)
                    k++;
                if (h.type == SF_CHUNK_PROCESS && k == nopen && nopen < 256)
                    open_pids[nopen++] = h.pid;
                else if (h.type == SF_CHUNK_END && k < nopen)
                    open_pids[k] = open_pids[--nopen];
            }
            off += h.size;
        }
        fclose(f);
        int waiting = 0;
        for (size_t k = 0; k < nopen && !waiting; k++) {
            char st[64], buf[512];
            snprintf(st, sizeof st, "/proc/%u/stat", open_pids[k]);
            FILE *p = fopen(st, "r");
            size_t n = p ? fread(buf, 1, sizeof buf - 1, p) : 0;
            if (p)
                fclose(p);
            buf[n] = 0;
            char *e = strrchr(buf, ')');
            waiting = !n || !e || e[1] != ' ' || e[2] == 'Z' || e[2] == 'X';
        }
        if (!waiting)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

/* Walk the chunk headers (seeking over payloads) to count what was recorded. */
static void summarize(const char *path, struct summary *s)
{
    memset(s, 0, sizeof *s);
    FILE *f = fopen(path, "rb");
    if (!f) {
        s->bad = 1;
        return;
    }
    struct sf_file_header h;
    if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, SF_FILE_MAGIC, 8)) {
        s->bad = 1;
        fclose(f);
        return;
    }
    struct u64set threads = {0}, pids = {0};
    off_t off = h.header_size;
    fseeko(f, off, SEEK_SET);
    struct sf_events c;
    while (fread(&c.h, sizeof c.h, 1, f) == 1) {
        if (c.h.magic != SF_CHUNK_MAGIC || c.h.size < sizeof c.h || c.h.size % 8) {
            s->bad = 1;
            break;
        }
        if (c.h.type == SF_CHUNK_PROCESS) {
            s->images++;
            s->unended++;
            int seen = !u64set_add(&pids, (uint64_t)c.h.pid + 1);
            if (!seen || !(c.h.flags & SF_PROC_EXECED))
                s->processes++;
        } else if (c.h.type == SF_CHUNK_OBJECT) {
            struct sf_object o;
            s->objects++;
            if (c.h.size >= sizeof o &&
                fread((char *)&o + sizeof c.h, sizeof o - sizeof c.h, 1, f) == 1 &&
                o.build_id_len && o.build_id_len <= 64 &&
                sizeof o + 8ull * o.nfuncs + o.path_len + o.build_id_len <= c.h.size &&
                fseeko(f, off + (off_t)sizeof o + 8 * (off_t)o.nfuncs + o.path_len, SEEK_SET) ==
                    0) {
                uint8_t bid[64];
                char hx[129];
                if (fread(bid, o.build_id_len, 1, f) == 1) {
                    hex(hx, bid, o.build_id_len);
                    uint32_t k = 0;
                    while (k < s->nbids && strcmp(s->bids[k], hx))
                        k++;
                    if (k == s->nbids && k < 64)
                        strcpy(s->bids[s->nbids++], hx);
                }
            }
        } else if (c.h.type == SF_CHUNK_END || c.h.type == SF_CHUNK_EVENTS) {
            size_t want = c.h.type == SF_CHUNK_END ? SF_END_SIZE_V0 : sizeof c;
            union {
                struct sf_end e;
                struct sf_events ev;
            } u;
            memcpy(&u, &c.h, sizeof c.h);
            if (c.h.size < want || fread((char *)&u + sizeof c.h, want - sizeof c.h, 1, f) != 1) {
                s->bad = 1;
                break;
            }
            if (c.h.type == SF_CHUNK_END) {
                s->events += u.e.events;
                s->lost += u.e.lost;
                s->end_threads += u.e.threads;
                s->unended--;
                if (c.h.size >= sizeof u.e && fread(&u.e.status_how, 8, 1, f) == 1 &&
                    u.e.reason == SF_END_DIED)
                    note_death(s, c.h.pid, &u.e);
            } else {
                u64set_add(&threads, ((uint64_t)c.h.pid << 32 | u.ev.tid) + 1);
            }
            off += c.h.size;
            fseeko(f, off, SEEK_SET);
            continue;
        }
        off += c.h.size;
        if (fseeko(f, off, SEEK_SET) != 0)
            break;
    }
    /* threads, not distinct tids: 100,000 threads in sequence reuse tids */
    s->threads = s->unended || s->end_threads < threads.n ? (uint32_t)threads.n : s->end_threads;
    fseeko(f, 0, SEEK_END);
    s->bytes = (uint64_t)ftello(f);
    free(threads.v);
    free(pids.v);
    fclose(f);
}

/* Read and parse the filter file at path as the runtime will (the same
 * parser, common/filterfmt.h, both passes: the second checks the order of
 * the addresses). 0 with its info, or -1 with the reason in err. */
static int check_filter(const char *path, struct sf_filter_info *info, char *err, size_t errlen)
{
    size_t len;
    char *buf = sf_filter_file_read(path, &len, err, errlen);
    if (!buf)
        return -1;
    int ok = sf_filter_parse(buf, len, info, NULL, NULL, err, errlen) == 0;
    uint64_t *addrs = ok ? malloc((info->nfuncs + 1) * sizeof *addrs) : NULL;
    uint8_t *flags = ok ? malloc(info->nfuncs + 1) : NULL;
    if (ok && (!addrs || !flags)) {
        snprintf(err, errlen, "out of memory");
        ok = 0;
    }
    ok = ok && sf_filter_parse(buf, len, info, addrs, flags, err, errlen) == 0;
    free(addrs);
    free(flags);
    free(buf);
    return ok ? 0 : -1;
}

/* A filter whose build-id no traced process loaded almost always means the
 * binary was rebuilt after the filter was made: say so once. Filters the
 * runtime refused (it said why) are not reported again. */
static void report_stale_filters(const char *filters, const struct summary *s)
{
    char *list = strdup(filters);
    for (char *save = NULL, *p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
        char err[256];
        struct sf_filter_info info;
        if (check_filter(p, &info, err, sizeof err) != 0)
            continue;
        char bid[129];
        hex(bid, info.build_id, info.build_id_len);
        int found = 0;
        for (uint32_t k = 0; k < s->nbids && !found; k++)
            found = !strcmp(s->bids[k], bid);
        if (!found)
            fprintf(stderr,
                    "sftrace record: warning: filter %s (build-id %s) matched no object the "
                    "command loaded; was the program rebuilt? Run sftrace filter again.\n",
                    p, bid);
    }
    free(list);
}

/* The log's absolute path (the program may chdir). 0, or -1 after a message. */
static int abs_log_path(const char *out, char *logpath, size_t len)
{
    if (out[0] == '/') {
        snprintf(logpath, len, "%s", out);
        return 0;
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) {
        fprintf(stderr, "sftrace record: getcwd: %s\n", strerror(errno));
        return -1;
    }
    if (snprintf(logpath, len, "%s/%s", cwd, out) >= (int)len) {
        fprintf(stderr, "sftrace record: output path too long\n");
        return -1;
    }
    return 0;
}

/* The summary line (and what went wrong) of a recording into logpath. */
/* -q: no summary line (what went wrong is still said) */
static int quiet;

static void print_summary(const char *logpath, const char *out, const char *what,
                          const char *filters, double secs)
{
    struct summary s;
    summarize(logpath, &s);
    if (s.objects == 0 && !filters[0]) { /* with filters, the warnings below say more */
        fprintf(stderr,
                "sftrace record: no instrumented code found in %s or the libraries it loaded.\n"
                "  Build with XRay instrumentation: clang -fxray-instrument "
                "-fxray-instruction-threshold=1,\n"
                "  or RUSTC_BOOTSTRAP=1 rustc -Zinstrument-xray=always "
                "(RUSTFLAGS for cargo).\n",
                what);
    }
    if (!quiet || s.bad)
        fprintf(stderr,
                "sftrace record: %llu event%s, %u thread%s, %u process%s, %u image%s, %llu bytes "
                "written to %s (%.2fs)%s\n",
                (unsigned long long)s.events, s.events == 1 ? "" : "s", s.threads,
                s.threads == 1 ? "" : "s", s.processes, s.processes == 1 ? "" : "es", s.images,
                s.images == 1 ? "" : "s", (unsigned long long)s.bytes, out, secs,
                s.bad ? " (the log has a damaged chunk)" : "");
    if (s.lost)
        fprintf(stderr, "sftrace record: %llu records could not be written\n",
                (unsigned long long)s.lost);
    fputs(s.died_msg, stderr);
    if (s.unended)
        fprintf(stderr,
                "sftrace record: %u process image(s) have no END in the log: their recording "
                "was cut short (the log is readable up to its last whole chunk)\n",
                s.unended);
    if (s.died > 4)
        fprintf(stderr, "sftrace record: %u processes died without a last flush in all\n", s.died);
    report_stale_filters(filters, &s);
}

static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t stop_attach;

static void on_stop_attach(int sig)
{
    (void)sig;
    stop_attach = 1;
}

/* record -p PID: attach to a running process (cmd/attach.c), record until
 * Ctrl-C, DUR or its end, detach. */
static int record_attached(long pid, const char *lib, const char *out, const char *dur)
{
    int64_t dur_ns = 0;
    if (dur) {
        char err[128] = "";
        if (sf_parse_duration(dur, &dur_ns, err, sizeof err) != 0 || dur_ns <= 0) {
            if (err[0]) /* err quotes the value */
                fprintf(stderr, "sftrace record: --duration %s\n", err);
            else
                fprintf(stderr, "sftrace record: --duration '%s': must be more than 0\n", dur);
            return 2;
        }
    }
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
        fprintf(stderr, "sftrace attach: no process %ld\n", pid);
        return 1;
    }
    char logpath[PATH_MAX];
    if (abs_log_path(out, logpath, sizeof logpath) != 0)
        return 1;
    uint64_t session;
    char why[PATH_MAX + 200], sess[32];
    if (create_log(logpath, &session, why, sizeof why)) {
        fprintf(stderr, "sftrace record: cannot write the log: %s\n",
                why[0] ? why : strerror(errno));
        return 1;
    }
    snprintf(sess, sizeof sess, "%llx", (unsigned long long)session);
    uint64_t t0 = mono_ns();
    /* Ctrl-C from here on detaches: during the attach it is noted and the
     * loop below ends at once (the default action would leave the process
     * recording, with nobody to detach it) */
    signal(SIGINT, on_stop_attach);
    signal(SIGTERM, on_stop_attach);
    int rc = sf_attach_start((int)pid, lib, logpath, sess);
    if (rc != 0) {
        if (rc > 0)
            fprintf(stderr,
                    "sftrace attach: process %ld is being recorded already (by sftrace record, "
                    "or an attach that has not detached)\n",
                    pid);
        unlink(logpath);
        return 1;
    }
    fprintf(stderr, "sftrace attach: recording process %ld into %s; %s detaches\n", pid, out,
            dur ? "the end of --duration or Ctrl-C" : "Ctrl-C");
    int gone = 0;
    for (unsigned n = 1; !stop_attach && !(dur_ns && mono_ns() - t0 >= (uint64_t)dur_ns); n++) {
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            gone = 1;
            break;
        }
        /* an exec ends the recording (the runtime went with the old image) */
        if (n % 16 == 0 && !sf_attach_present((int)pid, lib)) {
            gone = 2;
            break;
        }
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    if (!gone && !sf_attach_present((int)pid, lib))
        gone = 2;
    if (gone == 2)
        fprintf(stderr,
                "sftrace attach: process %ld ran exec: the recording ended there (the new "
                "program is not recorded)\n",
                pid);
    if (!gone && sf_attach_stop((int)pid, lib) != 0)
        rc = 1;
    wait_for_helpers(logpath);
    char what[32];
    snprintf(what, sizeof what, "process %ld", pid);
    print_summary(logpath, out, what, "", (double)(mono_ns() - t0) / 1e9);
    return rc;
}

static void forward(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
}

int cmd_record(int argc, char **argv)
{
    const char *out = "sf.log", *solib = NULL;
    char filters[8192] = "";
    int i, print_solib = 0, install = 0, no_flows = 0;
    const char **flowfiles = NULL; /* --flows FILE: the user's flow rules */
    size_t nflowfiles = 0;
    const char *flowobjs[SF_MAX_FLOWOBJS]; /* --flows-in OBJ */
    int nflowobjs = 0;
    int paused = 0, control = 0;
    const char *ring = NULL, *slower = NULL, *snap_on[32], *attach_pid = NULL, *dur = NULL;
    int nsnap = 0;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc) {
            out = argv[++i];
        } else if ((!strcmp(a, "-f") || !strcmp(a, "--filter")) && i + 1 < argc) {
            char abs[PATH_MAX];
            const char *fp = argv[++i];
            if (!realpath(fp, abs)) {
                fprintf(stderr, "sftrace record: filter %s: %s\n", fp, strerror(errno));
                return 2;
            }
            /* A file that is no filter (a FIFO, a device, a directory, too
             * big, or a file the runtime's parser refuses: a log, an empty
             * file, a damaged line) is refused here, before the command
             * starts: the runtime would only say so and run the whole
             * command untraced. (SFTRACE_FILTER set by hand still gets the
             * runtime's message and an untraced run.) */
            char why[256];
            struct sf_filter_info finfo;
            if (check_filter(abs, &finfo, why, sizeof why) != 0) {
                fprintf(stderr, "sftrace record: filter %s: %s\n", fp, why);
                return 2;
            }
            if (strlen(filters) + strlen(abs) + 2 > sizeof filters) {
                fprintf(stderr, "sftrace record: too many filters\n");
                return 2;
            }
            if (filters[0])
                strcat(filters, ":");
            strcat(filters, abs);
        } else if (!strcmp(a, "--no-flows")) {
            no_flows = 1;
        } else if (!strcmp(a, "--flows") && i + 1 < argc) {
            sf_flows_addfile(&flowfiles, &nflowfiles, argv[++i]);
        } else if (!strcmp(a, "--flows-in") && i + 1 < argc) {
            if (nflowobjs == SF_MAX_FLOWOBJS) {
                fprintf(stderr, "sftrace record: more than %d --flows-in objects\n",
                        SF_MAX_FLOWOBJS);
                return 2;
            }
            if (check_flowobj(argv[++i]) != 0)
                return 2;
            flowobjs[nflowobjs++] = argv[i];
        } else if (!strcmp(a, "--solib") && i + 1 < argc) {
            solib = argv[++i];
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--pid")) && i + 1 < argc) {
            attach_pid = argv[++i];
        } else if (!strcmp(a, "--duration") && i + 1 < argc) {
            dur = argv[++i];
        } else if (!strcmp(a, "--ring") && i + 1 < argc) {
            ring = argv[++i];
        } else if (!strcmp(a, "--snapshot-on") && i + 1 < argc) {
            if (nsnap == 32) {
                fprintf(stderr, "sftrace record: too many --snapshot-on (at most 32)\n");
                return 2;
            }
            snap_on[nsnap++] = argv[++i];
        } else if (!strcmp(a, "--snapshot-slower-than") && i + 1 < argc) {
            slower = argv[++i];
        } else if (!strcmp(a, "--paused")) {
            paused = 1;
        } else if (!strcmp(a, "--control")) {
            control = 1;
        } else if (!strcmp(a, "--print-solib-install-dir")) {
            char dir[PATH_MAX];
            sf_solib_install_dir(dir, sizeof dir);
            printf("%s\n", dir);
            return 0;
        } else if (!strcmp(a, "--print-solib")) {
            print_solib = 1; /* after the loop: --solib may follow */
        } else if (!strcmp(a, "--install-solib")) {
            install = 1;
        } else if (a[0] == '-') {
            fprintf(stderr, "sftrace record: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        } else {
            break; /* the command, without a -- before it */
        }
    }
    char lib[PATH_MAX];
    if ((install || print_solib) && i < argc) {
        fprintf(stderr, "sftrace record: %s takes no command ('%s')\n",
                install ? "--install-solib" : "--print-solib", argv[i]);
        return 2;
    }
    if (install)
        return install_solib(solib);
    if (print_solib) {
        if (find_solib(solib, lib, sizeof lib))
            return 1;
        printf("%s\n", lib);
        return 0;
    }
    if (attach_pid) {
        char *end;
        long pid = strtol(attach_pid, &end, 10);
        if (*end || pid <= 0 || pid > INT_MAX || i < argc) {
            fprintf(stderr, "sftrace record: -p takes a process id and no command\n");
            return 2;
        }
        if (find_solib(solib, lib, sizeof lib))
            return 1;
        return record_attached(pid, lib, out, dur);
    }
    if (dur) {
        fprintf(stderr, "sftrace record: --duration applies to -p PID\n");
        return 2;
    }
    if (i >= argc) {
        fprintf(stderr, "sftrace record: no command given\n");
        usage(stderr);
        return 2;
    }
    char **cmd = argv + i;
    /* the user's flow rules, checked before anything is written (and
     * read again for the keys file, after the last early return) */
    if (!no_flows) {
        struct sf_flows *chk = sf_flows_with("record", flowfiles, nflowfiles);
        if (!chk) {
            free(flowfiles);
            return 2;
        }
        sf_flows_free(chk);
    }
    if ((nsnap || slower) && !ring) {
        fprintf(stderr, "sftrace record: --snapshot-on and --snapshot-slower-than need --ring\n");
        return 2;
    }
    if (paused && control) {
        fprintf(stderr, "sftrace record: --paused or --control, not both (--paused starts "
                        "stopped, --control recording; both take SIGUSR1)\n");
        return 2;
    }
    if (slower && !nsnap) {
        fprintf(stderr, "sftrace record: --snapshot-slower-than applies to --snapshot-on\n");
        return 2;
    }
    if (ring) {
        char *end;
        unsigned long long v = strtoull(ring, &end, 10);
        unsigned long long mul = *end == 'K' || *end == 'k'   ? 1ull << 10
                                 : *end == 'M' || *end == 'm' ? 1ull << 20
                                 : *end == 'G' || *end == 'g' ? 1ull << 30
                                                              : 1;
        if (mul > 1)
            end++;
        if (end == ring || *end || v * mul < (1u << 20) || v * mul > (1ull << 40)) {
            fprintf(stderr,
                    "sftrace record: --ring '%s': a size from 1M to 1T (bytes, or with K, M, "
                    "G)\n",
                    ring);
            return 2;
        }
    }

    if (find_solib(solib, lib, sizeof lib))
        return 1;
    char cmdpath[PATH_MAX], secure[PATH_MAX + 64];
    if (find_command(cmd[0], cmdpath, sizeof cmdpath)) {
        /* the statuses of a shell: 127 not found, 126 found but not run */
        if (strchr(cmd[0], '/') && errno != ENOENT) {
            fprintf(stderr, "sftrace record: %s: %s\n", cmd[0],
                    errno == EISDIR ? "is a directory" : strerror(errno));
            return 126;
        }
        fprintf(stderr, "sftrace record: %s: %s\n", cmd[0],
                strchr(cmd[0], '/') ? "No such file or directory" : "command not found");
        return 127;
    }
    if (secure_exec(cmdpath, secure, sizeof secure)) {
        fprintf(stderr,
                "sftrace record: %s is %s: it gains privileges when it starts\n"
                "  (AT_SECURE), so the dynamic linker ignores LD_PRELOAD (and drops it for the\n"
                "  programs it starts), and libsftrace.so, even linked in, records nothing in\n"
                "  such a process: it cannot be traced so. Run sftrace record as the user (and\n"
                "  group) the program runs as, so that exec changes no credentials (as root\n"
                "  for a set-user-ID root program or one with capabilities), or trace a copy\n"
                "  of it (cp drops set-ID bits and capabilities).\n",
                cmdpath, secure);
        return 1;
    }
    char logpath[PATH_MAX];
    if (abs_log_path(out, logpath, sizeof logpath) != 0)
        return 1;
    /* the runtime takes anything else as "not set" in every process, so a
     * typo would go unnoticed: refuse it here, once, before running */
    const char *clk = getenv("SFTRACE_CLOCK");
    if (clk && *clk && strcmp(clk, "tsc") && strcmp(clk, "mono")) {
        fprintf(stderr, "sftrace record: SFTRACE_CLOCK=%s: not tsc or mono\n", clk);
        return 2;
    }
    uint64_t session;
    char why[PATH_MAX + 200];
    if (create_log(logpath, &session, why, sizeof why)) {
        if (why[0])
            fprintf(stderr, "sftrace record: cannot write the log: %s\n", why);
        else
            fprintf(stderr, "sftrace record: cannot write %s: %s\n", out, strerror(errno));
        return 1;
    }

    char sess[32], preload[PATH_MAX * 2];
    snprintf(sess, sizeof sess, "%llx", (unsigned long long)session);
    const char *old = getenv("LD_PRELOAD");
    if (old && *old)
        snprintf(preload, sizeof preload, "%s:%s", lib, old);
    else
        snprintf(preload, sizeof preload, "%s", lib);
    setenv("SFTRACE_OUTPUT_FILE", logpath, 1);
    setenv("SFTRACE_SESSION", sess, 1);
    setenv("SFTRACE_PATCH_ALL", "1", 1);
    setenv(SF_ENV_RECORD_VERSION, SFTRACE_VERSION, 1);
    setenv("LD_PRELOAD", preload, 1);
    if (ring)
        setenv("SFTRACE_RING", ring, 1);
    char trigfile[PATH_MAX] = "";
    if (nsnap) {
        /* the triggers: a filter file of snapshot lines for CMD's executable,
         * made by `sftrace filter` (kept until the recording ends) */
        const char *tmp = getenv("TMPDIR");
        snprintf(trigfile, sizeof trigfile, "%s/sftrace-triggers-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        int fd = mkstemp(trigfile);
        if (fd < 0) {
            fprintf(stderr, "sftrace record: %s: %s\n", trigfile, strerror(errno));
            return 1;
        }
        close(fd);
        char *fargv[8 + 2 * 32];
        int fargc = 0;
        fargv[fargc++] = "filter";
        fargv[fargc++] = "-p";
        fargv[fargc++] = cmdpath;
        fargv[fargc++] = "-o";
        fargv[fargc++] = trigfile;
        for (int k = 0; k < nsnap; k++) {
            fargv[fargc++] = "--snapshot-on";
            fargv[fargc++] = (char *)snap_on[k];
        }
        if (slower) {
            fargv[fargc++] = "--snapshot-slower-than";
            fargv[fargc++] = (char *)slower;
        }
        fargv[fargc] = NULL;
        if (cmd_filter(fargc, fargv) != 0) {
            unlink(trigfile);
            return 2;
        }
        if (strlen(filters) + strlen(trigfile) + 2 > sizeof filters) {
            fprintf(stderr, "sftrace record: too many filters\n");
            unlink(trigfile);
            return 2;
        }
        if (filters[0])
            strcat(filters, ":");
        strcat(filters, trigfile);
    }
    if (paused)
        setenv("SFTRACE_PAUSED", "1", 1);
    if (control)
        setenv("SFTRACE_CONTROL", "1", 1);
    if (filters[0])
        setenv("SFTRACE_FILTER", filters, 1);
    else if (getenv("SFTRACE_FILTER"))
        snprintf(filters, sizeof filters, "%s", getenv("SFTRACE_FILTER"));
    /* flows (lib/flows.h): a keys file for the command's rayon and tokio
     * functions, after the user's filters (it restricts nothing) */
    char keys[1 + SF_MAX_FLOWOBJS][64];
    for (int k = 0; k <= SF_MAX_FLOWOBJS; k++)
        keys[k][0] = 0;
    if (!no_flows) {
        struct sf_flows *fl = sf_flows_with("record", flowfiles, nflowfiles);
        /* the command's: not an ELF file we can read (a script...) is quiet */
        if (fl)
            write_keys(fl, cmdpath, keys[0], sizeof keys[0]);
        for (int k = 0; fl && k < nflowobjs; k++)
            if (write_keys(fl, flowobjs[k], keys[1 + k], sizeof keys[1 + k]) == 0)
                fprintf(stderr,
                        "sftrace record: note: %s has no function of a flow rule (rayon's "
                        "jobs, tokio's tasks, --flows)\n",
                        flowobjs[k]);
        /* and quietly for the objects the filters name */
        char *fobjs[SF_MAX_FLOWOBJS];
        int nf = fl ? filter_objects(filters, cmdpath, fobjs, 0, SF_MAX_FLOWOBJS - nflowobjs) : 0;
        for (int k = 0; k < nf; k++) {
            int given = 0;
            for (int j = 0; j < nflowobjs; j++) {
                char real[PATH_MAX];
                given |= realpath(flowobjs[j], real) && !strcmp(real, fobjs[k]);
            }
            if (!given)
                write_keys(fl, fobjs[k], keys[1 + nflowobjs + k], sizeof keys[0]);
            free(fobjs[k]);
        }
        sf_flows_free(fl);
    } else if (nflowobjs) {
        fprintf(stderr, "sftrace record: --flows-in is ignored with --no-flows\n");
    }
    free(flowfiles);
    flowfiles = NULL;

    uint64_t t0 = mono_ns();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "sftrace record: fork: %s\n", strerror(errno));
        return 1;
    }
    if (pid == 0) {
        execvp(cmd[0], cmd);
        fprintf(stderr, "sftrace record: %s: %s\n", cmd[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    child_pid = pid;
    /* The terminal sends SIGINT/SIGQUIT to the child too; we wait for it. */
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    signal(SIGTERM, forward);
    signal(SIGHUP, forward);
    /* Wait without reaping: the helper reads the exit status of a killed
     * child from its zombie, then the log is complete. */
    siginfo_t si;
    while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) < 0 && errno == EINTR)
        ;
    wait_for_helpers(logpath);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    double secs = (double)(mono_ns() - t0) / 1e9;
    int rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    for (int k = 0; k <= SF_MAX_FLOWOBJS; k++)
        if (keys[k][0])
            unlink(keys[k]);

    print_summary(logpath, out, cmd[0], filters, secs);
    if (trigfile[0])
        unlink(trigfile);
    return rc;
}
