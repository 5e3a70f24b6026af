/*
 * ctl.c - `sftrace ctl PID start|stop|toggle`: start or stop the recording
 * of a running process that `sftrace record --paused` (or --control)
 * started.
 *
 * The runtime listens for SIGUSR1 (runtime/ctl.c) and SIGUSR2 (ring.c,
 * with --ring); these send them with
 * sigqueue and a value saying what to do (common/ctlproto.h), after
 * checking that the process is one that listens (a process without the
 * runtime, or recording without control, would be killed by the signal).
 * Then it waits until the process's MARK chunk for the change is in the log
 * (the log path comes from the process's environment, or its helper's when
 * the program wrote its title over it), so that when ctl
 * returns, the change has happened: every call after it is recorded (start)
 * or not (stop).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "ctlproto.h"
#include "logread.h"

#define CMD "sftrace ctl"

static void usage(FILE *f)
{
    fprintf(f, "usage: sftrace ctl PID start|stop|toggle [--no-wait]\n"
               "\n"
               "Starts or stops the recording of process PID, which `sftrace record --paused`\n"
               "or `sftrace record --control` started (SIGUSR1 toggles it as well). Waits\n"
               "until the process has marked the change in its log (at most 10 s).\n"
               "\n"
               "  --no-wait      send the request and return\n");
}

/* The value of variable `name` in the environment of pid (NULL if none). */
static char *proc_env(int pid, const char *name, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    static char env[1 << 17];
    size_t n = fread(env, 1, sizeof env - 1, f);
    fclose(f);
    env[n] = 0;
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i += strlen(env + i) + 1) {
        if (!strncmp(env + i, name, nl) && env[i + nl] == '=') {
            snprintf(buf, len, "%s", env + i + nl + 1);
            return buf;
        }
    }
    return NULL;
}

static int maps_have(int pid, const char *what)
{
    char path[64], line[PATH_MAX + 256];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, what) != NULL;
    fclose(f);
    return found;
}

/* The inode of the runtime's shared memory (memfd:sftrace) in pid's maps,
 * 0 if none. */
static unsigned long memfd_ino(int pid)
{
    char path[64], line[PATH_MAX + 256];
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long ino = 0;
    while (!ino && fgets(line, sizeof line, f)) {
        unsigned long v;
        if (strstr(line, "/memfd:sftrace") && sscanf(line, "%*s %*s %*s %*s %lu", &v) == 1)
            ino = v;
    }
    fclose(f);
    return ino;
}

/* Whose environment tells how pid records: its own, unless the program
 * rewrote the block /proc/PID/environ shows (setproctitle: redis, nginx,
 * postgres write their title over it). Then its helper's (a process of its
 * own, named sftrace-helper, forked before main ran, so with the block as
 * it was), found as the one that maps the same shared memory. */
static int env_pid(int pid)
{
    char v[8];
    if (proc_env(pid, "SFTRACE_OUTPUT_FILE", v, sizeof v))
        return pid;
    unsigned long ino = memfd_ino(pid);
    DIR *d = ino ? opendir("/proc") : NULL;
    if (!d)
        return pid;
    int found = pid;
    struct dirent *de;
    while (found == pid && (de = readdir(d))) {
        char *end, path[300], comm[32] = "";
        long h = strtol(de->d_name, &end, 10);
        if (*end || h <= 0 || h == pid)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/comm", h);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        int named = fgets(comm, sizeof comm, f) && !strcmp(comm, "sftrace-helper\n");
        fclose(f);
        if (named && memfd_ino((int)h) == ino)
            found = (int)h;
    }
    closedir(d);
    return found;
}

/* The parent of pid (0 if unknown), from /proc/PID/stat (after the comm,
 * which may hold spaces and parentheses). */
static int ppid_of(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    int pp = 0;
    return p && sscanf(p + 1, " %*c %d", &pp) == 1 ? pp : 0;
}

/* MARK chunks of pid of the kinds in mask (1 << kind) in the log, and the
 * kind of the last one (0: none). -1 if the log cannot be read. */
static long count_marks(const char *logpath, int pid, unsigned mask, uint32_t *last)
{
    char err[SF_ERRLEN];
    struct sf_log *log = sf_log_open(logpath, err, sizeof err);
    if (!log)
        return -1;
    sf_log_set_warn(log, sf_log_warn_none, NULL);
    sf_log_set_headers_only(log, 1);
    struct sf_chunkv c;
    long n = 0;
    while (sf_log_next(log, &c) > 0)
        if (c.h->type == SF_CHUNK_MARK && c.h->pid == (uint32_t)pid &&
            (mask >> c.u.mark->kind & 1)) {
            n++;
            *last = c.u.mark->kind;
        }
    sf_log_close(log);
    return n;
}

/* The pid argument, checked: a live process that sftrace records, with the
 * environment variable `need` (one of two) set; its log in logpath. 0, or
 * the exit status after a message. */
static int target(const char *cmd, const char *arg, long *pid, const char *need1, const char *need2,
                  const char *how, char *logpath, size_t len)
{
    char *end;
    *pid = strtol(arg, &end, 10);
    if (*end || *pid <= 0 || *pid > INT_MAX) {
        fprintf(stderr, "%s: '%s' is not a process id\n", cmd, arg);
        return 2;
    }
    if (kill((pid_t)*pid, 0) != 0 && errno == ESRCH) {
        fprintf(stderr, "%s: no process %ld\n", cmd, *pid);
        return 1;
    }
    int has_rt = maps_have((int)*pid, "libsftrace");
    if (has_rt < 0) {
        fprintf(stderr, "%s: cannot read /proc/%ld/maps: %s\n", cmd, *pid, strerror(errno));
        return 1;
    }
    int ep = has_rt ? env_pid((int)*pid) : (int)*pid;
    /* a forked child that wrote its title over its environment and has no
     * helper yet (one that has recorded nothing: a postgres backend under
     * --paused) has its parent's: the nearest traced ancestor's */
    for (int a = (int)*pid, k = 0;
         has_rt && k < 64 && !proc_env(ep, "SFTRACE_OUTPUT_FILE", logpath, len); k++) {
        a = ppid_of(a);
        if (a <= 1)
            break;
        if (maps_have(a, "libsftrace") > 0)
            ep = env_pid(a);
    }
    if (!has_rt || !proc_env(ep, "SFTRACE_OUTPUT_FILE", logpath, len)) {
        fprintf(stderr, "%s: process %ld is not being recorded by sftrace\n", cmd, *pid);
        return 1;
    }
    char v[64];
    if (!(proc_env(ep, need1, v, sizeof v) && strcmp(v, "0")) &&
        !(need2 && proc_env(ep, need2, v, sizeof v) && strcmp(v, "0"))) {
        fprintf(stderr, "%s: process %ld records without %s\n", cmd, *pid, how);
        return 1;
    }
    return 0;
}

static int64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait (10 s at most, in time: each look reads the log's chunk headers,
 * which takes long on a big log) until pid has more than `before` marks of
 * mask. The runtime's own waits (the patch lock, the helper's answer) are
 * bounded below that. */
static int wait_marks(const char *cmd, long pid, const char *logpath, unsigned mask, long before,
                      uint32_t *kind)
{
    int64_t until = mono_now() + 10 * 1000000000ll;
    while (mono_now() < until) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
        if (count_marks(logpath, (int)pid, mask, kind) > before)
            return 0;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            fprintf(stderr, "%s: process %ld ended\n", cmd, pid);
            return 1;
        }
    }
    fprintf(stderr, "%s: process %ld did not mark it in %s within 10 s\n", cmd, pid, logpath);
    return 1;
}

int cmd_ctl(int argc, char **argv)
{
    const char *pidarg = NULL, *what = NULL;
    int wait = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--no-wait")) {
            wait = 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, CMD ": unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (!pidarg) {
            pidarg = argv[i];
        } else if (!what) {
            what = argv[i];
        } else {
            fprintf(stderr, CMD ": unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!pidarg || !what) {
        fprintf(stderr, CMD ": missing %s\n", pidarg ? "start, stop or toggle" : "PID");
        usage(stderr);
        return 2;
    }
    if (strcmp(what, "start") && strcmp(what, "stop") && strcmp(what, "toggle")) {
        fprintf(stderr, CMD ": '%s' is not start, stop or toggle\n", what);
        usage(stderr);
        return 2;
    }
    long pid;
    char logpath[PATH_MAX];
    int r = target(CMD, pidarg, &pid, "SFTRACE_PAUSED", "SFTRACE_CONTROL",
                   "control (start it with `sftrace record --paused` or `--control`); SIGUSR1 "
                   "would be the program's own",
                   logpath, sizeof logpath);
    if (r)
        return r;
    const unsigned mask = 1u << SF_MARK_START | 1u << SF_MARK_STOP;
    uint32_t last = 0;
    long before = wait ? count_marks(logpath, (int)pid, mask, &last) : 0;
    /* No mark of its own: recording (a child born stopped writes a STOP
     * mark at the fork: runtime/ctl.c; its parent's marks cannot tell, the
     * parent may have toggled since) */
    int want_on = !strcmp(what, "start") ? 1 : !strcmp(what, "stop") ? 0 : -1;
    if (wait && before >= 0 && want_on >= 0 &&
        (last ? last == (want_on ? SF_MARK_START : SF_MARK_STOP) : want_on == 1)) {
        printf(CMD ": pid %ld: recording is %s already\n", pid, want_on ? "on" : "off");
        return 0;
    }
    union sigval sv = {.sival_int = want_on < 0 ? 0 : want_on ? SF_CTL_START : SF_CTL_STOP};
    int rc =
        want_on < 0 ? kill((pid_t)pid, SF_CTL_SIGNAL) : sigqueue((pid_t)pid, SF_CTL_SIGNAL, sv);
    if (rc != 0) {
        fprintf(stderr, CMD ": cannot signal process %ld: %s\n", pid, strerror(errno));
        return 1;
    }
    if (!wait || before < 0)
        return 0;
    uint32_t kind = 0;
    if (wait_marks(CMD, pid, logpath, mask, before, &kind))
        return 1;
    printf(CMD ": pid %ld: recording %s\n", pid, kind == SF_MARK_START ? "started" : "stopped");
    return 0;
}

static void snapshot_usage(FILE *f)
{
    fprintf(f, "usage: sftrace snapshot PID [--no-wait]\n"
               "\n"
               "Makes process PID, which `sftrace record --ring SIZE` started, write what its\n"
               "flight recorder holds to its log as a snapshot (SIGUSR2 does it too). Waits\n"
               "until the snapshot is complete in the log (at most 10 s) and prints its number;\n"
               "`sftrace info` lists the snapshots, and the tools read one with --snapshot N.\n"
               "\n"
               "  --no-wait      send the request and return\n");
}

int cmd_snapshot(int argc, char **argv)
{
    const char *pidarg = NULL;
    int wait = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            snapshot_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--no-wait")) {
            wait = 0;
        } else if (argv[i][0] == '-' || pidarg) {
            fprintf(stderr, "sftrace snapshot: unexpected argument '%s'\n", argv[i]);
            snapshot_usage(stderr);
            return 2;
        } else {
            pidarg = argv[i];
        }
    }
    if (!pidarg) {
        fprintf(stderr, "sftrace snapshot: missing PID\n");
        snapshot_usage(stderr);
        return 2;
    }
    long pid;
    char logpath[PATH_MAX];
    int r = target("sftrace snapshot", pidarg, &pid, "SFTRACE_RING", NULL,
                   "a flight recorder (start it with `sftrace record --ring SIZE`)", logpath,
                   sizeof logpath);
    if (r)
        return r;
    const unsigned mask = 1u << SF_MARK_SNAP_END;
    uint32_t kind;
    long before = wait ? count_marks(logpath, (int)pid, mask, &kind) : 0;
    union sigval sv = {.sival_int = SF_CTL_SNAPSHOT};
    if (sigqueue((pid_t)pid, SF_SNAP_SIGNAL, sv) != 0) {
        fprintf(stderr, "sftrace snapshot: cannot signal process %ld: %s\n", pid, strerror(errno));
        return 1;
    }
    if (!wait || before < 0)
        return 0;
    if (wait_marks("sftrace snapshot", pid, logpath, mask, before, &kind))
        return 1;
    printf("sftrace snapshot: pid %ld: snapshot %ld written to %s\n", pid, before + 1, logpath);
    return 0;
}
