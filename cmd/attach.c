/*
 * attach.c - `sftrace attach PID` (= `sftrace record -p PID`): record a
 * process that is already running, then leave it as it was.
 *
 * With ptrace the command stops one thread of the process (its main
 * thread), makes it call dlopen(libsftrace.so) and then sftrace_attach(LOG,
 * SESSION) (runtime/attach.c), restores its registers and lets it go: the
 * runtime patches every instrumented object and records from then on.
 * After --duration or Ctrl-C it stops the thread again, makes it call
 * sftrace_detach() (every sled back as it was, the helper writes the rest
 * and END), and detaches. The injected calls run on the thread's stack well
 * below its stack pointer and return to address 0: the fault stops the
 * thread, and the command reads the result.
 *
 * x86_64 only: the injection (registers, calling convention) is written
 * for it. An sftrace built for another machine, or a process whose
 * instrumented code is for another machine (an aarch64 program under
 * qemu-user, which is an x86_64 process), gets a clear error and is not
 * touched. The addresses of dlopen and of the runtime's functions in the
 * process are found from the same files mapped in this process: the
 * function's offset from its object's first mapping is the same in both.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmds.h"
#include "xraymap.h"

#define CMD "sftrace attach"

/* The first mapping (offset 0) of the file `path` in pid's maps (pid 0:
 * ours); with path NULL, the file of the mapping containing addr (copied to
 * found). 0 if none. */
static uintptr_t map_base(int pid, const char *path, uintptr_t addr, char *found, size_t len)
{
    char mp[64], line[PATH_MAX + 256];
    snprintf(mp, sizeof mp, pid ? "/proc/%d/maps" : "/proc/self/maps", pid);
    FILE *f = fopen(mp, "r");
    if (!f)
        return 0;
    uintptr_t base = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, off;
        int n = 0;
        if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %n", &lo, &hi, &off, &n) < 3 || !n)
            continue;
        char *p = line + n;
        p[strcspn(p, "\n")] = 0;
        if (*p != '/')
            continue;
        if (!path && addr >= lo && addr < hi) {
            snprintf(found, len, "%s", p);
            fclose(f);
            return map_base(pid, found, 0, NULL, 0);
        }
        if (path && !strcmp(p, path) && off == 0) {
            base = lo;
            break;
        }
    }
    fclose(f);
    return base;
}

/* Where the function at local address fn is in pid. */
__attribute__((unused)) static uintptr_t remote_fn(int pid, void *fn)
{
    char path[PATH_MAX];
    uintptr_t lbase = map_base(0, NULL, (uintptr_t)fn, path, sizeof path);
    uintptr_t rbase = lbase ? map_base(pid, path, 0, NULL, 0) : 0;
    return rbase ? rbase + ((uintptr_t)fn - lbase) : 0;
}

#if defined(__x86_64__)
#define HOST_EM EM_X86_64
#elif defined(__aarch64__)
#define HOST_EM EM_AARCH64
#else
#define HOST_EM 0
#endif

/* The ELF machine (e_machine) of a file, 0 if unreadable. */
static unsigned elf_machine(const char *path)
{
    Elf64_Ehdr eh;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = pread(fd, &eh, sizeof eh, 0);
    close(fd);
    return n >= 20 && !memcmp(eh.e_ident, ELFMAG, SELFMAG) ? eh.e_machine : 0;
}

/* Does pid map any object with an xray_instr_map? 1 yes (*machine: the
 * ELF machine of the first, *file its path), 0 no, -1 unreadable maps. */
static int instrumented(int pid, unsigned *machine, char *file, size_t flen)
{
    char mp[64], line[PATH_MAX + 256], last[PATH_MAX] = "";
    snprintf(mp, sizeof mp, "/proc/%d/maps", pid);
    FILE *f = fopen(mp, "r");
    if (!f)
        return -1;
    int yes = 0;
    while (!yes && fgets(line, sizeof line, f)) {
        int n = 0;
        char perms[8];
        if (sscanf(line, "%*x-%*x %7s %*s %*s %*s %n", perms, &n) < 1 || !n)
            continue;
        char *p = line + n;
        p[strcspn(p, "\n")] = 0;
        if (*p != '/' || !strcmp(p, last) || strstr(p, "libsftrace"))
            continue;
        struct sf_xraymap m;
        char err[512];
        char proc_path[PATH_MAX + 64];
        snprintf(proc_path, sizeof proc_path, "/proc/%d/root%s", pid, p);
        /* executable mappings; and an emulator's (qemu-user maps the guest's
         * code readable only): ELF files of another machine */
        unsigned em = perms[2] == 'x' ? 0 : elf_machine(proc_path);
        if (perms[2] != 'x' && (!em || em == HOST_EM))
            continue;
        snprintf(last, sizeof last, "%s", p);
        if (sf_xraymap_read_file(proc_path, &m, err, sizeof err) == 0) {
            yes = 1;
            sf_xraymap_free(&m);
            *machine = elf_machine(proc_path);
            snprintf(file, flen, "%s", p);
        }
    }
    fclose(f);
    return yes;
}

/* The runtime library's path as this process maps it (for finding it in
 * the other one), or 0. */
static uintptr_t solib_base(const char *solib, const char *sym, char *path, size_t len)
{
    void *local = dlopen(solib, RTLD_LAZY | RTLD_LOCAL);
    void *fn = local ? dlsym(local, sym) : NULL;
    return fn ? map_base(0, NULL, (uintptr_t)fn, path, len) : 0;
}

/* Is the runtime still mapped in pid? (Not after an exec.) */
int sf_attach_present(int pid, const char *solib)
{
    static char path[PATH_MAX]; /* found once */
    if (!path[0] && !solib_base(solib, "sftrace_detach", path, sizeof path))
        path[0] = 0;
    if (!path[0])
        return 1; /* cannot tell: assume so */
    return map_base(pid, path, 0, NULL, 0) != 0;
}

/* Can this sftrace attach to pid at all? 0, or -1 with a message. */
static int can_attach(int pid)
{
    unsigned machine = 0;
    char file[PATH_MAX] = "";
    int ins = instrumented(pid, &machine, file, sizeof file);
    if (ins <= 0) {
        if (ins < 0)
            fprintf(stderr, CMD ": cannot read /proc/%d/maps: %s\n", pid, strerror(errno));
        else
            fprintf(stderr,
                    CMD ": process %d runs no XRay-instrumented code (no object it maps has an "
                        "xray_instr_map section)\n",
                    pid);
        return -1;
    }
#if defined(__x86_64__)
    if (machine && machine != EM_X86_64) {
        fprintf(stderr,
                CMD ": process %d runs %s code (%s; under an emulator such as qemu-user?): "
                    "attaching works only to x86_64 processes; record it from its start with "
                    "`sftrace record` instead\n",
                pid, machine == EM_AARCH64 ? "aarch64" : "non-x86_64", file);
        return -1;
    }
    return 0;
#else
    (void)machine;
    fprintf(stderr,
            CMD ": attaching is not supported on this machine (only on x86_64); record process %d "
                "from its start with `sftrace record` instead\n",
            pid);
    return -1;
#endif
}

#if defined(__x86_64__)
/* The longest an injected call may take (dlopen and sftrace_attach patch
 * every object; sftrace_detach's own waits are bounded well below this,
 * docs/design.md "Attach"): after it the thread is stopped and put back. */
#define CALL_LIMIT_NS (60 * 1000000000ll)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait for the thread's next stop until the deadline (0: none). 0 stopped
 * (*sig: the signal, and the ptrace event above it), -1 gone, -2 timed out. */
static int wait_stop_until(int pid, int *sig, int64_t deadline)
{
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, __WALL | (deadline ? WNOHANG : 0));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0) {
            if (now_ns() >= deadline)
                return -2;
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st))
            return -1;
        if (WIFSTOPPED(st)) {
            *sig = WSTOPSIG(st) | (st >> 16) << 8; /* signal, and the ptrace event */
            return 0;
        }
    }
}

static int wait_stop(int pid, int *sig)
{
    return wait_stop_until(pid, sig, now_ns() + 10 * 1000000000ll);
}

static int put_mem(int pid, uintptr_t at, const void *p, size_t len)
{
    struct iovec l = {(void *)p, len}, r = {(void *)at, len};
    return process_vm_writev(pid, &l, 1, &r, 1, 0) == (ssize_t)len ? 0 : -1;
}

/* Signals that came for the thread while it ran our calls: ptrace stops it
 * for each, and it is let go on without it; they are sent again when we
 * let it go (tgkill: the same signal, from us). */
static int held_sigs[64], nheld;

static void hold_signal(int sig)
{
    for (int i = 0; i < nheld; i++)
        if (held_sigs[i] == sig && sig < SIGRTMIN)
            return; /* a standard signal is pending once */
    if (nheld < (int)(sizeof held_sigs / sizeof *held_sigs))
        held_sigs[nheld++] = sig;
}

/* Let the thread go, its signals sent again first (pending until it runs). */
static void let_go(int pid)
{
    for (int i = 0; i < nheld; i++)
        syscall(SYS_tgkill, pid, pid, held_sigs[i]);
    nheld = 0;
    ptrace(PTRACE_DETACH, pid, NULL, 0);
}

/* Where the thread is (after a call took too long): its instruction
 * pointer as FILE+OFFSET, and the system call it is in. */
static void where_is(int pid, char *out, size_t len)
{
    struct user_regs_struct r;
    char file[PATH_MAX] = "?", sc[128] = "";
    uintptr_t base = 0;
    if (ptrace(PTRACE_GETREGS, pid, NULL, &r) == 0)
        base = map_base(pid, NULL, r.rip, file, sizeof file);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/syscall", pid);
    FILE *f = fopen(path, "r");
    if (f) {
        long nr = -2;
        if (fscanf(f, "%ld", &nr) == 1 && nr >= 0)
            snprintf(sc, sizeof sc, ", in system call %ld", nr);
        fclose(f);
    }
    snprintf(out, len, "at %s+0x%lx%s", file, base ? (unsigned long)(r.rip - base) : 0ul, sc);
}

/* Call fn(a0, a1) in the stopped thread pid; *ret its result. The thread's
 * registers are put back afterwards. 0; -1 failed; -2 it did not return
 * within CALL_LIMIT_NS (why: where it was): it was stopped and put back
 * where it had been, the call abandoned. */
static int remote_call(int pid, const struct user_regs_struct *saved, uintptr_t fn, uint64_t a0,
                       uint64_t a1, uint64_t *ret, char *why, size_t wlen)
{
    struct user_regs_struct r = *saved;
    uintptr_t sp = ((saved->rsp - 8192) & ~(uintptr_t)15) - 8;
    uint64_t zero = 0;
    if (put_mem(pid, sp, &zero, 8) != 0)
        return -1;
    r.rsp = sp;
    r.rip = fn;
    r.rdi = a0;
    r.rsi = a1;
    r.rax = 0;
    r.orig_rax = (unsigned long long)-1; /* not in a system call: no restart */
    if (ptrace(PTRACE_SETREGS, pid, NULL, &r) != 0 || ptrace(PTRACE_CONT, pid, NULL, 0) != 0)
        return -1;
    int rc = -1;
    int64_t deadline = now_ns() + CALL_LIMIT_NS;
    for (int tries = 0; tries < 1000; tries++) {
        int sig, w = wait_stop_until(pid, &sig, deadline);
        if (w == -1)
            return -1;
        if (w == -2) {
            /* stuck: stop it, say where, put it back where it was */
            if (ptrace(PTRACE_INTERRUPT, pid, NULL, 0) != 0 || wait_stop(pid, &sig) != 0)
                return -1;
            where_is(pid, why, wlen);
            rc = -2;
            break;
        }
        struct user_regs_struct now;
        if (ptrace(PTRACE_GETREGS, pid, NULL, &now) != 0)
            break;
        if ((sig & 0xff) == SIGSEGV && now.rip == 0) {
            *ret = now.rax;
            rc = 0;
            break;
        }
        /* a signal for the thread (a signal-delivery stop: no ptrace event)
         * is held and sent again when we let it go; other stops (our
         * interrupt, a group stop) just go on */
        if (!(sig >> 8))
            hold_signal(sig & 0xff);
        if (ptrace(PTRACE_CONT, pid, NULL, 0) != 0)
            break;
    }
    if (ptrace(PTRACE_SETREGS, pid, NULL, saved) != 0)
        return -1;
    return rc;
}

/* The runtime's last note in pid (sftrace_why: what it waited for), or "". */
static void remote_why(int pid, void *local, char *out, size_t len)
{
    out[0] = 0;
    void *lwhy = local ? dlsym(local, "sftrace_why") : NULL;
    uintptr_t at = lwhy ? remote_fn(pid, lwhy) : 0;
    if (!at || len < 2)
        return;
    struct iovec l = {out, len - 1}, r = {(void *)at, len - 1};
    if (process_vm_readv(pid, &l, 1, &r, 1, 0) != (ssize_t)(len - 1))
        out[0] = 0;
    out[len - 1] = 0;
}

/* Stop pid's main thread (seized), save its registers. */
static int stop_thread(int pid, struct user_regs_struct *saved, char *why, size_t len)
{
    if (ptrace(PTRACE_SEIZE, pid, NULL, 0) != 0) {
        int e = errno;
        char scope[16] = "?";
        FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
        if (f) {
            if (!fgets(scope, sizeof scope, f))
                scope[0] = '?';
            scope[strcspn(scope, "\n")] = 0;
            fclose(f);
        }
        char st[64], line[256];
        long tracer = 0;
        snprintf(st, sizeof st, "/proc/%d/status", pid);
        FILE *sf = fopen(st, "r");
        while (sf && fgets(line, sizeof line, sf))
            if (sscanf(line, "TracerPid: %ld", &tracer) == 1)
                break;
        if (sf)
            fclose(sf);
        char tname[64] = "?";
        if (tracer > 0) {
            snprintf(st, sizeof st, "/proc/%ld/comm", tracer);
            FILE *cf = fopen(st, "r");
            if (cf && fgets(tname, sizeof tname, cf))
                tname[strcspn(tname, "\n")] = 0;
            if (cf)
                fclose(cf);
        }
        if (e == EPERM && tracer > 0)
            snprintf(why, len,
                     "it is being traced already, by process %ld (%s): a process has one "
                     "tracer at a time; detach that one first",
                     tracer, tname);
        else if (e == EPERM)
            snprintf(why, len,
                     "ptrace is not permitted (%s; kernel.yama.ptrace_scope is %s: 1 allows "
                     "only a parent, 2 only root with CAP_SYS_PTRACE, 3 nobody%s)",
                     geteuid() ? "not root" : "root", scope,
                     geteuid() ? "; run as root or with the process's owner and scope 0" : "");
        else
            snprintf(why, len, "ptrace: %s", strerror(e));
        return -1;
    }
    int sig;
    if (ptrace(PTRACE_INTERRUPT, pid, NULL, 0) != 0 || wait_stop(pid, &sig) != 0 ||
        ptrace(PTRACE_GETREGS, pid, NULL, saved) != 0) {
        snprintf(why, len, "cannot stop it: %s", strerror(errno));
        ptrace(PTRACE_DETACH, pid, NULL, 0);
        return -1;
    }
    /* stopped for a signal before our interrupt: its stop serves, the
     * signal is held (the interrupt's own stop comes later and is passed) */
    if (!(sig >> 8))
        hold_signal(sig & 0xff);
    return 0;
}

/* Attach: the runtime solib, then sftrace_attach(log, session). 0; 1 the
 * process records already; -1 with a message. */
int sf_attach_start(int pid, const char *solib, const char *log, const char *session)
{
    char why[512];
    if (can_attach(pid) != 0)
        return -1;
    void *local = dlopen(solib, RTLD_LAZY | RTLD_LOCAL);
    void *lattach = local ? dlsym(local, "sftrace_attach") : NULL;
    /* the C library's own dlopen (in this process the name may be a
     * sanitizer's interceptor) */
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
    void *ldlopen = libc ? dlsym(libc, "dlopen") : NULL;
    uintptr_t rdlopen = ldlopen ? remote_fn(pid, ldlopen) : 0;
    if (!lattach || !rdlopen) {
        fprintf(stderr, CMD ": %s\n",
                !lattach ? "the runtime library has no sftrace_attach (is it this sftrace's?)"
                         : "cannot find dlopen in the process (another C library?)");
        return -1;
    }
    struct user_regs_struct saved;
    if (stop_thread(pid, &saved, why, sizeof why) != 0) {
        fprintf(stderr, CMD ": process %d: %s\n", pid, why);
        return -1;
    }
    /* the strings, on its stack below where the calls run */
    uintptr_t at = (saved.rsp - 4096) & ~(uintptr_t)15;
    size_t ls = strlen(solib) + 1, ll = strlen(log) + 1, lss = strlen(session) + 1;
    uint64_t ret = 0;
    int rc = -1, c = 0;
    if (put_mem(pid, at, solib, ls) || put_mem(pid, at + ls, log, ll) ||
        put_mem(pid, at + ls + ll, session, lss)) {
        fprintf(stderr, CMD ": cannot write to process %d: %s\n", pid, strerror(errno));
    } else if ((c = remote_call(pid, &saved, rdlopen, at, RTLD_NOW, &ret, why, sizeof why)) != 0 ||
               !ret) {
        if (c == -2)
            fprintf(stderr,
                    CMD ": process %d: dlopen(%s) did not return within %d s (%s); the thread "
                        "was put back where it was\n",
                    pid, solib, (int)(CALL_LIMIT_NS / 1000000000), why);
        else
            fprintf(stderr, CMD ": process %d could not load %s\n", pid, solib);
    } else {
        uintptr_t rattach = remote_fn(pid, lattach);
        if (!rattach || (c = remote_call(pid, &saved, rattach, at + ls, at + ls + ll, &ret, why,
                                         sizeof why)) != 0) {
            if (c == -2)
                fprintf(stderr,
                        CMD ": process %d: sftrace_attach did not return within %d s (%s); the "
                            "thread was put back where it was, and the process may be left "
                            "recording in part\n",
                        pid, (int)(CALL_LIMIT_NS / 1000000000), why);
            else
                fprintf(stderr, CMD ": cannot call sftrace_attach in process %d\n", pid);
        } else if ((int)ret == -2)
            fprintf(stderr,
                    CMD ": process %d was forked from a process sftrace was attached to, and "
                        "shares its recording's memory: it cannot be attached to\n",
                    pid);
        else
            rc = (int)ret == 0 ? 0 : 1;
    }
    let_go(pid);
    return rc;
}

/* Detach: sftrace_detach() in the process. 0, or -1 with a message. The
 * runtime answers -3 when it cannot yet (its watcher thread waits for a lock
 * the stopped thread holds): the thread runs on a moment and it is asked
 * again. */
int sf_attach_stop(int pid, const char *solib)
{
    char why[512], note[512];
    void *local = dlopen(solib, RTLD_LAZY | RTLD_LOCAL);
    void *ldetach = local ? dlsym(local, "sftrace_detach") : NULL;
    uintptr_t rdetach = ldetach ? remote_fn(pid, ldetach) : 0;
    if (!rdetach) {
        fprintf(stderr, CMD ": the runtime is not loaded in process %d\n", pid);
        return -1;
    }
    for (int tries = 0;; tries++) {
        struct user_regs_struct saved;
        if (stop_thread(pid, &saved, why, sizeof why) != 0) {
            fprintf(stderr, CMD ": process %d: %s\n", pid, why);
            return -1;
        }
        uint64_t ret = 0;
        int rc = remote_call(pid, &saved, rdetach, 0, 0, &ret, why, sizeof why);
        remote_why(pid, local, note, sizeof note);
        let_go(pid);
        if (rc == 0 && (int)ret == -3 && tries < 100) {
            struct timespec ts = {0, 50000000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (rc == -2) {
            fprintf(stderr,
                    CMD ": process %d: sftrace_detach did not return within %d s (%s); the "
                        "thread was put back where it was, and the process may be left "
                        "recording\n",
                    pid, (int)(CALL_LIMIT_NS / 1000000000), why);
            return -1;
        }
        if (rc == 0 && (int)ret == -3) {
            fprintf(stderr,
                    CMD ": process %d: the runtime stayed busy for 100 tries (%s); it is still "
                        "recording: detach again later\n",
                    pid, note[0] ? note : "?");
            return -1;
        }
        if (rc == 0 && (int)ret == -4) {
            fprintf(stderr,
                    CMD ": process %d: detached, but %s (the sleds are back as they were)\n", pid,
                    note[0] ? note : "the helper did not end the log");
            return -1;
        }
        if (rc != 0 || ret != 0) {
            fprintf(stderr, CMD ": cannot detach the runtime in process %d%s%s\n", pid,
                    note[0] ? ": " : "", note);
            return -1;
        }
        return 0;
    }
}

#else
/* Not x86_64: can_attach says why. */
int sf_attach_start(int pid, const char *solib, const char *log, const char *session)
{
    (void)solib;
    (void)log;
    (void)session;
    can_attach(pid);
    return -1;
}

int sf_attach_stop(int pid, const char *solib)
{
    (void)solib;
    (void)pid;
    return -1;
}
#endif

int cmd_attach(int argc, char **argv)
{
    /* sftrace attach [record options] PID: record -p PID */
    char **args = calloc((size_t)argc + 3, sizeof *args);
    if (!args)
        return 1;
    int n = 0, pid_i = -1;
    args[n++] = "record";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: sftrace attach PID [-o LOG] [--duration DUR] [--solib PATH]\n"
                   "\n"
                   "The same as `sftrace record -p PID`: records a running process that runs\n"
                   "XRay-instrumented code (x86_64; ptrace), until Ctrl-C or DUR, then puts\n"
                   "every sled back as it was and leaves it running. Objects it loads while\n"
                   "attached are traced too; a child it forks is not; an exec ends the\n"
                   "recording. Not supported on aarch64 (nor for an aarch64 process under\n"
                   "qemu-user).\n");
            free(args);
            return 0;
        }
        if (argv[i][0] != '-' && pid_i < 0 && (i == 1 || strcmp(argv[i - 1], "-o")) &&
            (i == 1 || strcmp(argv[i - 1], "--duration")) &&
            (i == 1 || strcmp(argv[i - 1], "--solib")))
            pid_i = i;
        else
            args[n++] = argv[i];
    }
    if (pid_i < 0) {
        fprintf(stderr, "sftrace attach: missing PID\n"
                        "usage: sftrace attach PID [-o LOG] [--duration DUR] [--solib PATH]\n");
        free(args);
        return 2;
    }
    args[n++] = "-p";
    args[n++] = argv[pid_i];
    int rc = cmd_record(n, args);
    free(args);
    return rc;
}
