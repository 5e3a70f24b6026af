/*
 * init.c - process lifecycle of the runtime: start-up, the log file, and the
 * last flush at exit, exec and fatal signals.
 *
 * Nothing happens unless SFTRACE_OUTPUT_FILE is set: the constructor returns
 * at once and no sled is touched, so linking libsftrace.so costs nothing.
 *
 * Log files and sessions: the first traced process of a session replaces the
 * log with a fresh header and exports SFTRACE_SESSION; its descendants see
 * the variable and append. `sftrace record` creates the log itself and sets
 * the variable, so every process it starts appends. The header is created
 * atomically (written to a temporary file, then linked or renamed into place)
 * so processes starting at the same moment never see a half-written header.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "logfile.h"
#include "runtime.h"

struct sf_global sf_g = {.fd = -1, .memfd = -1, .wake_fd = -1, .alive_fd = -1};

void sf_msg(const char *fmt, ...)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "sftrace: ");
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    sf_write_all(2, buf, (size_t)n);
}

static uint64_t random_id(void)
{
    uint64_t id = 0;
    if (sf_read_file("/dev/urandom", (char *)&id, sizeof id) != sizeof id)
        id = sf_real_ns() ^ ((uint64_t)getpid() << 32);
    return id ? id : 1;
}

/* Why the log could not be used, when errno does not say it (a refused link). */
static char log_why[PATH_MAX + 200];

/* Create `path` holding just a header. replace: overwrite an existing log;
 * otherwise an existing one is kept (another process made it first). The
 * header goes to a temporary file first (common/logfile.h: an unpredictable
 * name, O_EXCL, O_NOFOLLOW, mode 0600), which is then renamed or linked into
 * place, so no process ever sees a half-written header. Neither rename nor
 * link follows a link at `path`. */
static int create_log(const char *path, int replace, uint64_t session)
{
    char tmp[PATH_MAX + 32];
    int fd = sf_log_tmp_create(path, tmp, sizeof tmp);
    if (fd < 0)
        return -1;
    struct sf_file_header h;
    sf_file_header_init(&h, session, sf_mono_ns(), sf_real_ns());
    int rc = sf_write_all(fd, &h, sizeof h);
    close(fd);
    if (rc == 0) {
        if (replace)
            rc = rename(tmp, path);
        else if (link(tmp, path) != 0 && errno != EEXIST)
            rc = -1;
    }
    int saved = errno;
    unlink(tmp);
    errno = saved;
    return rc;
}

/* The user's own link at the log path: the log goes where it points. */
static int follow_own_link(char *path, size_t len)
{
    char real[PATH_MAX];
    if (realpath(path, real)) {
        snprintf(path, len, "%s", real);
        return 0;
    }
    /* dangling (the target does not exist yet): one level, by hand */
    char target[PATH_MAX];
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n <= 0)
        return -1;
    target[n] = 0;
    if (target[0] == '/') {
        snprintf(path, len, "%s", target);
    } else {
        char *slash = strrchr(path, '/');
        size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
        if (dir + (size_t)n + 1 > len)
            return -1;
        memcpy(path + dir, target, (size_t)n + 1);
    }
    return 0;
}

static int open_log(const char *out)
{
    if (out[0] == '/') {
        snprintf(sf_g.path, sizeof sf_g.path, "%s", out);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd) || strlen(cwd) + strlen(out) + 2 > sizeof sf_g.path)
            return -1;
        strcpy(sf_g.path, cwd);
        strcat(sf_g.path, "/");
        strcat(sf_g.path, out);
    }
    int link = sf_log_link_check(sf_g.path, log_why, sizeof log_why);
    if (link == 1) {
        errno = EPERM;
        return -1;
    }
    if (link == 2 && follow_own_link(sf_g.path, sizeof sf_g.path) != 0)
        return -1;
    /* A device (/dev/null) is written as it is: renaming a new log over it
     * would replace it with a file. A FIFO would block us, a directory and
     * the rest cannot hold a log. */
    struct stat pst;
    int device = stat(sf_g.path, &pst) == 0 && S_ISCHR(pst.st_mode);
    if (!device && stat(sf_g.path, &pst) == 0 && !S_ISREG(pst.st_mode)) {
        snprintf(log_why, sizeof log_why, "%s is not a regular file", sf_g.path);
        return -1;
    }
    const char *session = getenv("SFTRACE_SESSION");
    if (device) {
    } else if (!session || !*session) {
        uint64_t id = random_id();
        if (create_log(sf_g.path, 1, id) != 0)
            return -1;
        char idstr[32];
        snprintf(idstr, sizeof idstr, "%llx", (unsigned long long)id);
        setenv("SFTRACE_SESSION", idstr, 1);
        if (out[0] != '/' || link == 2)
            setenv("SFTRACE_OUTPUT_FILE", sf_g.path, 1); /* children may chdir */
    } else {
        struct stat st;
        int exists = lstat(sf_g.path, &st) == 0;
        if ((!exists || (S_ISREG(st.st_mode) && st.st_size == 0)) &&
            create_log(sf_g.path, exists, random_id()) != 0)
            return -1;
    }
    int fd = sf_log_open(sf_g.path, O_WRONLY | O_APPEND | O_CLOEXEC, SF_LOG_MODE, log_why,
                         sizeof log_why);
    if (fd < 0)
        return -1;
    sf_g.fd = sf_fd_high(fd);
    return 0;
}

/* Build this image's PROCESS chunk for its helper to write first. */
int sf_build_process_chunk(int flags)
{
    /* Fixed header, then name, cmdline and exe in one scratch mapping. */
    size_t cap = 1 << 16;
    char *scratch = (char *)sf_g.proc_chunk;
    if (scratch) /* a forked child's: what the parent's used (fresh pages are zero) */
        memset(scratch, 0, sf_g.proc_chunk_len);
    else
        scratch = sf_map(cap);
    if (!scratch)
        return -1;
    struct sf_process *p = (struct sf_process *)scratch;
    char *str = scratch + sizeof *p;
    size_t room = cap - sizeof *p - 8;
    ssize_t name = sf_read_file("/proc/self/comm", str, 16);
    if (name < 0)
        name = 0;
    if (name > 0 && str[name - 1] == '\n')
        name--;
    ssize_t cmd = sf_read_file("/proc/self/cmdline", str + name, room / 2);
    if (cmd < 0)
        cmd = 0;
    ssize_t exe = readlink("/proc/self/exe", str + name + cmd, room / 2 - (size_t)name);
    if (exe < 0)
        exe = 0;
    p->h.magic = SF_CHUNK_MAGIC;
    p->h.type = SF_CHUNK_PROCESS;
    p->h.flags = (uint16_t)flags;
    size_t size = (sizeof *p + (size_t)(name + cmd + exe) + 7) & ~(size_t)7;
    p->h.size = (uint32_t)size;
    p->h.pid = (uint32_t)sf_g.pid;
    p->ppid = (uint32_t)getppid();
    p->clock = (uint32_t)sf_g.clock;
    p->tsc = sf_now();
    p->mono_ns = sf_g.clock == SF_CLOCK_TSC ? sf_mono_ns() : p->tsc;
    p->real_ns = sf_real_ns();
    p->tsc_hz = sf_g.tsc_hz;
    p->name_len = (uint32_t)name;
    p->cmdline_len = (uint32_t)cmd;
    p->exe_len = (uint32_t)exe;
    p->machine = SF_ARCH_MACHINE;
    sf_g.proc_chunk = (uint8_t *)scratch;
    sf_g.proc_chunk_len = size;
    return 0;
}

/* The last flush of this process image: every thread's records, then END. */
void sf_before_exit(int reason)
{
    if (!sf_g.enabled)
        return;
    if (getpid() != sf_g.pid) { /* a vfork child sharing our memory */
        sf_sharer_end((uint32_t)reason);
        return;
    }
    if (sf_tls.state == SF_T_ACTIVE && sf_tls.slot)
        prctl(PR_GET_NAME, sf_tls.slot->name, 0, 0, 0);
    if (sf_helper_self_end((uint32_t)reason) != 0) /* recorded nothing: END is ours */
        sf_request(REQ_END, (uint32_t)reason);
    if (getenv("SFTRACE_DEBUG") && sf_g.ctl)
        sf_msg("pid %d: %llu events, waited for the helper %llu times", (int)sf_g.pid,
               (unsigned long long)atomic_load(&sf_g.ctl->events),
               (unsigned long long)atomic_load(&sf_g.ctl->behind));
}

/* After exec: the old image's helper writes its last records and END(exec);
 * our PROCESS chunk must come after them. */
static void wait_for_old_helper(int hpid)
{
    if (hpid <= 0)
        return;
    int pfd = (int)syscall(434 /* pidfd_open */, hpid, 0);
    for (int i = 0; i < 1000; i++) { /* 10 s at most */
        if (pfd >= 0) {
            struct pollfd p = {pfd, POLLIN, 0};
            if (poll(&p, 1, 10) != 0)
                break;
        } else {
            if (kill(hpid, 0) != 0)
                break;
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
    }
    if (pfd >= 0)
        close(pfd);
}

static int env_true(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/*
 * A setuid or setgid program (AT_SECURE) runs for a user who must not choose
 * what it writes or reads: it records nothing and opens no file the
 * environment names. Like ld.so with LD_PRELOAD, it also drops our
 * variables so that programs it starts, perhaps with its privileges, do not
 * act on them either.
 */
static void drop_env(void)
{
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; e && *e; e++) {
            if (strncmp(*e, "SFTRACE_", 8) != 0)
                continue;
            char name[128];
            size_t n = strcspn(*e, "=");
            if (n >= sizeof name)
                continue;
            memcpy(name, *e, n);
            name[n] = 0;
            unsetenv(name);
            again = 1;
            break;
        }
    }
}

void sf_init(void)
{
    static int done;
    if (done)
        return;
    done = 1;
    if (getauxval(AT_SECURE)) {
        drop_env();
        return;
    }
    const char *out = getenv("SFTRACE_OUTPUT_FILE");
    if (!out || !*out)
        return;
    sf_arch_init();
    const char *clk = getenv("SFTRACE_CLOCK");
    if (clk && !strcmp(clk, "mono"))
        sf_g.clock = SF_CLOCK_MONO;
    else if (clk && !strcmp(clk, "tsc"))
        sf_g.clock = SF_CLOCK_TSC;
    else
        sf_g.clock = sf_arch_tsc_invariant() ? SF_CLOCK_TSC : SF_CLOCK_MONO;
    sf_g.pid = getpid();
    if (open_log(out) != 0) {
        if (log_why[0])
            sf_msg("cannot use the log: %s; not tracing", log_why);
        else
            sf_msg("cannot open the log %s: %s; not tracing", out, strerror(errno));
        return;
    }
    sf_g.setup_thread_only = env_true("SFTRACE_SETUP_THREAD_ONLY");
    sf_g.raw = env_true("SFTRACE_RAW");
    const char *pre = getenv("LD_PRELOAD");
    sf_g.patch_all = env_true("SFTRACE_PATCH_ALL") || (pre && strstr(pre, "libsftrace"));
    const char *w = getenv("SFTRACE_WRITER");
    sf_g.use_helper_pack = !(w && !strcmp(w, "0"));
    cpu_set_t cpus;
    sf_g.ncpus = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? (uint32_t)CPU_COUNT(&cpus) : 1;
    if (sf_g.ncpus < 2)
        sf_g.use_helper_pack = 0; /* no core to spare, ever */
    const char *flist = getenv("SFTRACE_FILTER");
    if (flist && *flist && sf_filters_load(flist) != 0) {
        sf_msg("not tracing: the filter could not be used");
        return;
    }
    if (sf_shm_init() != 0) {
        sf_msg("cannot create shared memory for the buffers: %s; not tracing", strerror(errno));
        return;
    }
    sf_buffers_init();
    sf_hooks_init();
    sf_ctl_init();
    sf_ring_init();
    const char *ex = getenv("SFTRACE_EXEC_PID");
    int execed = ex && atoi(ex) == (int)sf_g.pid;
    if (execed && strchr(ex, ':')) {
        const char *h = strchr(ex, ':') + 1;
        wait_for_old_helper(atoi(h));
        /* the task that exec'd goes on as our main thread: counted once */
        sf_g.exec_counted = strchr(h, ':') && atoi(strchr(h, ':') + 1) == 1;
    }
    if (ex)
        unsetenv("SFTRACE_EXEC_PID");
    if (sf_build_process_chunk(execed ? SF_PROC_EXECED : 0) != 0 || sf_helper_start() != 0) {
        sf_msg("cannot start the helper process: %s; not tracing", strerror(errno));
        return;
    }
    sf_g.enabled = 1;
    if (sf_g.patch_all)
        sf_patch_all_objects();
    sf_ctl_started();
    /* the middle process of the helper's start ran meanwhile: reap it now,
     * before the program runs (it never sees a child of ours) */
    sf_helper_reap();
    if (sf_g.helper_pid <= 0 && !sf_g.helper_gone) {
        sf_msg("cannot start the helper process; not recording");
        sf_g.helper_gone = 1;
    }
}

/*
 * `sftrace attach` (attach.c): start recording in a process that is already
 * running, with the log `out` of session `session` (hex). The runtime was
 * dlopen'd into it, so nothing is interposed (hooks.c): no fork, exec or
 * dlopen hooks, no fatal-signal wrappers. A second attach reuses the shared
 * memory of the first (threads that recorded then still point into it).
 */
int sf_start_attached(const char *out, const char *session)
{
    if (sf_g.enabled || getauxval(AT_SECURE))
        return -1;
    int again = sf_g.ctl != NULL;
    if (!again) {
        sf_arch_init();
        sf_g.clock = sf_arch_tsc_invariant() ? SF_CLOCK_TSC : SF_CLOCK_MONO;
    }
    sf_g.pid = getpid();
    setenv("SFTRACE_SESSION", session, 1); /* the log exists: append */
    int rc = open_log(out);
    unsetenv("SFTRACE_SESSION");
    unsetenv("SFTRACE_OUTPUT_FILE");
    if (rc != 0) {
        sf_msg("cannot open the log %s: %s; not tracing", out,
               log_why[0] ? log_why : strerror(errno));
        return -1;
    }
    sf_g.patch_all = 1;
    cpu_set_t cpus;
    sf_g.ncpus = sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? (uint32_t)CPU_COUNT(&cpus) : 1;
    sf_g.use_helper_pack = sf_g.ncpus > 1;
    if (!again) {
        if (sf_shm_init() != 0)
            return -1;
        sf_buffers_init();
    } else {
        struct sf_ctl *c = sf_g.ctl;
        atomic_store(&c->ended, 0);
        atomic_store(&c->final, 0);
        atomic_store(&c->status_how, 0);
        atomic_store(&c->helper_ready, 0);
        atomic_store(&c->events, 0);
        atomic_store(&c->lost, 0);
    }
    sf_ctl_init();
    if (sf_build_process_chunk(0) != 0 || sf_helper_start() != 0) {
        sf_msg("cannot start the helper process: %s; not tracing", strerror(errno));
        return -1;
    }
    sf_g.exiting = 0;
    sf_g.enabled = 1;
    sf_ctl_mark_attach(1); /* calls open now come out right (docs/log-format.md, MARK) */
    sf_patch_all_objects();
    return 0;
}

__attribute__((constructor)) static void sf_constructor(void)
{
    sf_init();
}

__attribute__((destructor)) static void sf_destructor(void)
{
    sf_before_exit(SF_END_EXIT);
    if (getpid() == sf_g.pid) /* not a vfork child's exit: our memory is its */
        sf_g.exiting = 1;
}
