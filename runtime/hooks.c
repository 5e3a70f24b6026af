/*
 * hooks.c - libc functions the runtime interposes so that no recorded data
 * is lost and late-loaded code is traced:
 *   dlopen/dlmopen   patch new objects before the caller gets the handle
 *   fork             (pthread_atfork) a child gets its own stream
 *   exec*            flush every thread first: exec discards the memory
 *   _exit/_Exit      flush first: they skip atexit and destructors
 *   sigaction/signal keep our handler for fatal signals (flush, then do what
 *                    the program asked for) and wrap the program's handlers
 *                    so the trampoline's store window can be restarted
 * When tracing is off (no SFTRACE_OUTPUT_FILE) every hook just forwards.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

void *sf_real(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p)
        p = dlsym(RTLD_DEFAULT, name);
    return p;
}

/* The next definition of `name` (libc's), looked up once. */
#define REAL(name)                                                                                 \
    static __typeof__(&name) real_##name;                                                          \
    if (!real_##name)                                                                              \
        real_##name = (__typeof__(&name))sf_real(#name);

/* ---- dynamic loading ------------------------------------------------------ */
/*
 * glibc resolves a name without '/' (and $ORIGIN in a name, and dlopen's
 * namespace) from the object that called dlopen, found from the return
 * address: its RPATH chain, LD_LIBRARY_PATH, its RUNPATH, the cache, the
 * defaults, after any loaded object of that name. Called from here that
 * object would be libsftrace.so. So the real function is entered through
 * sf_call_as with a return address inside the caller's code: a `ret`
 * instruction of the object our own return address lies in (the main
 * program when none does, as glibc assumes). Everything glibc decides is
 * then decided exactly as without us.
 */

struct gadget_ctx {
    uintptr_t addr;
    const uint8_t *found;
};

/* A `ret` in an executable segment of the object (bias, phdrs) containing
 * `near`, or in its first executable segment when near is 0. */
const void *sf_ret_gadget_in(uintptr_t bias, const void *phdrs, int phnum, uintptr_t near)
{
    const ElfW(Phdr) *phdr = phdrs;
    for (int i = 0; i < phnum; i++) {
        const ElfW(Phdr) *ph = &phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        const uint8_t *lo = (const uint8_t *)(bias + ph->p_vaddr);
        const uint8_t *end = lo + ph->p_filesz;
        if (near && (near < (uintptr_t)lo || near >= (uintptr_t)end))
            continue;
        const uint8_t *r = sf_arch_find_ret(lo, near ? (const uint8_t *)near : lo, end);
        if (r)
            return r;
    }
    return NULL;
}

static int gadget_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct gadget_ctx *ctx = data;
    ctx->found = sf_ret_gadget_in(info->dlpi_addr, info->dlpi_phdr, info->dlpi_phnum, ctx->addr);
    return ctx->found || !ctx->addr; /* with no address: the main program, listed first */
}

static const void *ret_gadget(const void *caller)
{
    if (sf_shadow_stack_on())
        return NULL;
    struct gadget_ctx ctx = {(uintptr_t)caller, NULL};
    dl_iterate_phdr(gadget_cb, &ctx);
    if (!ctx.found) {
        ctx.addr = 0; /* code outside any object (JIT): glibc takes the main program */
        dl_iterate_phdr(gadget_cb, &ctx);
    }
    return ctx.found;
}

SF_EXPORT void *dlopen(const char *file, int mode)
{
    REAL(dlopen);
    const void *g = ret_gadget(__builtin_return_address(0));
    void *h = g ? sf_call_as((void *)file, (void *)(intptr_t)mode, NULL, (void *)real_dlopen, g)
                : real_dlopen(file, mode);
    if (h && sf_g.enabled && sf_g.patch_all)
        sf_patch_all_objects();
    return h;
}

SF_EXPORT void *dlmopen(Lmid_t lmid, const char *file, int mode)
{
    REAL(dlmopen);
    const void *g = ret_gadget(__builtin_return_address(0));
    void *h = g ? sf_call_as((void *)(intptr_t)lmid, (void *)file, (void *)(intptr_t)mode,
                             (void *)real_dlmopen, g)
                : real_dlmopen(lmid, file, mode);
    if (h && sf_g.enabled && sf_g.patch_all) {
        sf_patch_all_objects();
        sf_patch_namespace_of(h); /* dl_iterate_phdr lists the caller's namespace only */
    }
    return h;
}

/* ---- fork ---------------------------------------------------------------- */

/*
 * In the child: the parent's pipes to its helper are not ours (the parent's
 * helper must see EOF when the parent execs or dies), the shared memory
 * gets replaced (buffer.c), and the child gets a helper of its own, which
 * writes the child's PROCESS and OBJECT chunks before its first record.
 */
static void atfork_child(void)
{
    if (!sf_g.enabled)
        return;
    sf_g.pid = getpid();
    sf_helper_after_fork();
    sf_patch_after_fork();
    /* nothing instrumented here, and no thread recorded: the child writes
     * nothing unless that changes, and its helper starts only then */
    int defer = sf_patched_objects() == 0 && (!sf_g.ctl || atomic_load(&sf_g.ctl->nslots) == 0);
    REAL(close);
    if (sf_is_our_fd(sf_g.wake_fd))
        real_close(sf_g.wake_fd);
    if (sf_is_our_fd(sf_g.alive_fd))
        real_close(sf_g.alive_fd);
    sf_g.wake_fd = sf_g.alive_fd = -1;
    sf_g.helper_gone = 1; /* until ours runs */
    if (sf_shm_after_fork() != 0 || sf_build_process_chunk(SF_PROC_FORKED) != 0) {
        sf_g.enabled = 0;
        return;
    }
    sf_g.proc_chunk_lazy = 1;
    if (defer)
        sf_helper_defer();
    else if (sf_helper_start() != 0) {
        sf_msg("pid %d: cannot start the helper process; not tracing it", (int)sf_g.pid);
        sf_g.enabled = 0;
        return;
    }
    sf_ctl_after_fork();
}

/* ---- exec ---------------------------------------------------------------- */
/*
 * Before exec: flush every thread (exec discards them), and tell the new
 * image it is one, through SFTRACE_EXEC_PID=<pid> in its environment, so its
 * PROCESS chunk carries SF_PROC_EXECED. For the functions that take an
 * explicit envp, a copy with that variable is built on the stack.
 */
#define EXEC_VAR "SFTRACE_EXEC_PID="

static int tracing_here(void)
{
    return sf_g.enabled && getpid() == sf_g.pid;
}

/* Nothing to write: after the exec the helper finds the image gone and
 * writes its last records and END(exec); a failed exec changes nothing. */
static void before_exec(void) {}

static size_t env_count(char *const envp[])
{
    size_t n = 0;
    while (envp && envp[n])
        n++;
    return n;
}

/* Fill out (n + 2 slots) with envp minus any old EXEC_VAR, plus ours. */
static char **env_with_exec(char *const envp[], char **out, char *var, size_t varlen)
{
    size_t k = 0;
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], EXEC_VAR, sizeof EXEC_VAR - 1) != 0)
            out[k++] = envp[i];
    /* pid:helper:counted: the new image waits for the old helper before it
     * starts, and does not count this thread again if the old one did. A
     * vfork child that recorded has had its END written already (no helper
     * to wait for) and counted its thread. */
    if (getpid() != sf_g.pid)
        snprintf(var, varlen, EXEC_VAR "%d:0:1", (int)getpid());
    else
        snprintf(var, varlen, EXEC_VAR "%d:%d:%d", (int)sf_g.pid, (int)sf_helper_pid(),
                 sf_tls.state == SF_T_ACTIVE && sf_tls.slot);
    out[k++] = var;
    out[k] = NULL;
    return out;
}

#define EXEC_ENVP(envp, newenv)                                                                    \
    char var_[48];                                                                                 \
    char *newenv[env_count(envp) + 2];                                                             \
    char *const *use_env_ = envp;                                                                  \
    if (tracing_here()) {                                                                          \
        before_exec();                                                                             \
        use_env_ = env_with_exec(envp, newenv, var_, sizeof var_);                                 \
    } else if (sf_g.enabled && sf_sharer_active()) {                                               \
        sf_sharer_end(SF_END_EXEC);                                                                \
        use_env_ = env_with_exec(envp, newenv, var_, sizeof var_);                                 \
    }

SF_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    REAL(execve);
    EXEC_ENVP(envp, ne)
    return real_execve(path, argv, use_env_);
}

SF_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    REAL(execvpe);
    EXEC_ENVP(envp, ne)
    return real_execvpe(file, argv, use_env_);
}

SF_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    REAL(fexecve);
    EXEC_ENVP(envp, ne)
    return real_fexecve(fd, argv, use_env_);
}

SF_EXPORT int execv(const char *path, char *const argv[])
{
    return execve(path, argv, environ);
}

SF_EXPORT int execvp(const char *file, char *const argv[])
{
    return execvpe(file, argv, environ);
}

/* execl and friends: collect the variadic arguments on the stack. */
#define COLLECT_ARGS(arg0, argv, envp_out)                                                         \
    va_list ap;                                                                                    \
    size_t argc = 1;                                                                               \
    va_start(ap, arg0);                                                                            \
    while (va_arg(ap, char *))                                                                     \
        argc++;                                                                                    \
    va_end(ap);                                                                                    \
    char *argv[argc + 1];                                                                          \
    argv[0] = (char *)arg0;                                                                        \
    va_start(ap, arg0);                                                                            \
    for (size_t i = 1; i <= argc; i++)                                                             \
        argv[i] = va_arg(ap, char *);                                                              \
    envp_out;                                                                                      \
    va_end(ap);

SF_EXPORT int execl(const char *path, const char *arg, ...)
{
    COLLECT_ARGS(arg, argv, (void)0)
    return execv(path, argv);
}

SF_EXPORT int execlp(const char *file, const char *arg, ...)
{
    COLLECT_ARGS(arg, argv, (void)0)
    return execvp(file, argv);
}

SF_EXPORT int execle(const char *path, const char *arg, ...)
{
    char **envp;
    COLLECT_ARGS(arg, argv, envp = va_arg(ap, char **))
    return execve(path, argv, envp);
}

/* ---- _exit --------------------------------------------------------------- */

/* main's return value is the exit status: wrap main to note it (glibc calls
 * exit from inside libc, past our exit). */
typedef int (*sf_main_fn)(int, char **, char **);
static sf_main_fn program_main;

static int main_wrapper(int argc, char **argv, char **envp)
{
    int r = program_main(argc, argv, envp);
    sf_note_status(SF_STATUS_EXITED, r & 0xff);
    return r;
}

SF_EXPORT int __libc_start_main(sf_main_fn main, int argc, char **argv, void (*init)(void),
                                void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
    int (*real)(sf_main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void), void *) =
        sf_real("__libc_start_main");
    program_main = main;
    return real(main_wrapper, argc, argv, init, fini, rtld_fini, stack_end);
}

SF_EXPORT void exit(int status)
{
    REAL(exit);
    sf_note_status(SF_STATUS_EXITED, status & 0xff);
    real_exit(status);
    __builtin_unreachable();
}

SF_EXPORT void _exit(int status)
{
    sf_note_status(SF_STATUS_EXITED, status & 0xff);
    sf_before_exit(SF_END_EXIT);
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

SF_EXPORT void _Exit(int status)
{
    _exit(status);
}

/* ---- the runtime's descriptors ------------------------------------------------ */
/*
 * Daemons and shells close descriptors they do not know. Ours (the pipes to
 * the helper, the memfd) are kept: closing one is a no-op, and making one
 * the target of dup2/dup3 moves ours out of the way first. The log itself
 * is not open in the traced process while the program runs (an image that
 * writes its own PROCESS and END opens it for those: helper.c); and where
 * a program gets past these (a raw close_range), the runtime checks the
 * file behind the number before using it (sf_fd_is).
 */
static void move_fd(int *fd)
{
    int nfd = fcntl(*fd, F_DUPFD_CLOEXEC, *fd + 1);
    if (nfd >= 0) {
        int old = *fd;
        *fd = nfd;
        REAL(close);
        real_close(old);
    }
}

static int *our_fd_slot(int fd)
{
    if (!sf_is_our_fd(fd))
        return NULL;
    return fd == sf_g.wake_fd ? &sf_g.wake_fd : fd == sf_g.alive_fd ? &sf_g.alive_fd : &sf_g.memfd;
}

SF_EXPORT int close(int fd)
{
    REAL(close);
    if (our_fd_slot(fd))
        return 0;
    return real_close(fd);
}

SF_EXPORT int dup2(int oldfd, int newfd)
{
    REAL(dup2);
    int *ours = oldfd != newfd ? our_fd_slot(newfd) : NULL;
    if (ours)
        move_fd(ours);
    return real_dup2(oldfd, newfd);
}

SF_EXPORT int dup3(int oldfd, int newfd, int flags)
{
    REAL(dup3);
    int *ours = oldfd != newfd ? our_fd_slot(newfd) : NULL;
    if (ours)
        move_fd(ours);
    return real_dup3(oldfd, newfd, flags);
}

SF_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
    REAL(close_range);
    int fds[3] = {sf_g.wake_fd, sf_g.alive_fd, sf_g.memfd};
    unsigned keep[3];
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (sf_is_our_fd(fds[i]) && (unsigned)fds[i] >= first && (unsigned)fds[i] <= last)
            keep[n++] = (unsigned)fds[i];
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            unsigned t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    int rc = 0;
    unsigned lo = first;
    for (int i = 0; i < n && rc == 0; i++) {
        if (keep[i] > lo)
            rc = real_close_range(lo, keep[i] - 1, flags);
        lo = keep[i] + 1;
    }
    if (rc == 0 && lo <= last && (n == 0 || lo != 0))
        rc = real_close_range(lo, last, flags);
    return rc;
}

SF_EXPORT void closefrom(int lowfd)
{
    close_range(lowfd < 0 ? 0 : (unsigned)lowfd, ~0u, 0);
}

/* ---- signals --------------------------------------------------------------- */

static const int fatal_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTERM, SIGINT};

static int is_fatal(int sig)
{
    for (size_t i = 0; i < sizeof fatal_sigs / sizeof fatal_sigs[0]; i++)
        if (fatal_sigs[i] == sig)
            return 1;
    return 0;
}

/* What the program believes is installed, for signals where our wrapper is. */
static struct sigaction user_act[NSIG];
static volatile sig_atomic_t wrapped[NSIG];
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);

static void sig_wrapper(int sig, siginfo_t *si, void *uc)
{
    int saved_errno = errno;
    sf_arch_restart_fixup(uc);
    sf_signal_enter();
    if (sf_ctl_queued(sig, si)) { /* sftrace ctl / snapshot: ours, not the program's */
        errno = saved_errno;
        return;
    }
    struct sigaction *ua = &user_act[sig];
    void (*h)(int) = ua->sa_handler;
    int siginfo = ua->sa_flags & SA_SIGINFO;
    void (*ua_sigaction)(int, siginfo_t *, void *) = ua->sa_sigaction;
    if (h == SIG_IGN) {
        errno = saved_errno;
        return;
    }
    if (h == SIG_DFL) {
        if (is_fatal(sig)) {
            /* The default action kills: write everything, then let it. */
            sf_note_status(SF_STATUS_SIGNALED, sig);
            sf_before_exit(SF_END_SIGNAL);
            struct sigaction dfl;
            memset(&dfl, 0, sizeof dfl);
            dfl.sa_handler = SIG_DFL;
            real_sigaction(sig, &dfl, NULL);
            sigset_t s;
            sigemptyset(&s);
            sigaddset(&s, sig);
            pthread_sigmask(SIG_UNBLOCK, &s, NULL);
            /* SI_KERNEL: also the kernel's SIGSEGV for a signal frame that
             * did not fit (a full sigaltstack), which no instruction raises
             * again on return */
            if (si->si_code <= 0 || si->si_code == SI_KERNEL || sig == SIGABRT || sig == SIGTERM ||
                sig == SIGINT)
                syscall(SYS_tgkill, getpid(), sf_gettid(), sig);
            /* a fault returns and faults again, now with the default action */
        }
        errno = saved_errno;
        return;
    }
    if (ua->sa_flags & SA_RESETHAND) {
        /* emulated: we must stay installed to see the next one */
        ua->sa_handler = SIG_DFL;
        ua->sa_flags &= ~SA_SIGINFO;
        if (!is_fatal(sig)) {
            struct sigaction dfl;
            memset(&dfl, 0, sizeof dfl);
            dfl.sa_handler = SIG_DFL;
            real_sigaction(sig, &dfl, NULL);
            wrapped[sig] = 0;
        }
    }
    errno = saved_errno;
    if (siginfo)
        ua_sigaction(sig, si, uc);
    else
        h(sig);
}

static int install_wrapper(int sig, const struct sigaction *like)
{
    struct sigaction w;
    memset(&w, 0, sizeof w);
    if (like) {
        w.sa_mask = like->sa_mask;
        w.sa_flags = like->sa_flags;
    }
    w.sa_flags |= SA_SIGINFO;
    w.sa_flags &= ~SA_RESETHAND;
    w.sa_sigaction = sig_wrapper;
    int rc = real_sigaction(sig, &w, NULL);
    if (rc == 0)
        wrapped[sig] = 1;
    return rc;
}

static int wants_wrapper(int sig, const struct sigaction *act)
{
    if (act->sa_handler == SIG_IGN)
        return 0;
    if (act->sa_handler == SIG_DFL)
        return is_fatal(sig);
    return 1;
}

SF_EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *oldact)
{
    if (!real_sigaction)
        real_sigaction =
            (int (*)(int, const struct sigaction *, struct sigaction *))sf_real("sigaction");
    if (!sf_g.enabled || sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP)
        return real_sigaction(sig, act, oldact);
    if (!wrapped[sig] && !(act && wants_wrapper(sig, act)))
        return real_sigaction(sig, act, oldact);
    struct sigaction prev;
    if (wrapped[sig])
        prev = user_act[sig];
    else if (real_sigaction(sig, NULL, &prev) != 0)
        return -1;
    if (act) {
        if (wants_wrapper(sig, act)) {
            user_act[sig] = *act;
            if (install_wrapper(sig, act) != 0)
                return -1;
        } else {
            if (real_sigaction(sig, act, NULL) != 0)
                return -1;
            wrapped[sig] = 0;
            user_act[sig] = *act;
        }
    }
    if (oldact)
        *oldact = prev;
    return 0;
}

SF_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
    struct sigaction act, old;
    memset(&act, 0, sizeof act);
    act.sa_handler = handler;
    act.sa_flags = SA_RESTART;
    sigemptyset(&act.sa_mask);
    if (sigaction(sig, &act, &old) != 0)
        return SIG_ERR;
    return old.sa_handler;
}

void sf_hooks_init(void)
{
    real_sigaction =
        (int (*)(int, const struct sigaction *, struct sigaction *))sf_real("sigaction");
    pthread_atfork(NULL, NULL, atfork_child);
    for (size_t i = 0; i < sizeof fatal_sigs / sizeof fatal_sigs[0]; i++) {
        int sig = fatal_sigs[i];
        struct sigaction cur;
        if (real_sigaction(sig, NULL, &cur) != 0 || cur.sa_handler == SIG_IGN)
            continue; /* e.g. SIGINT ignored in a background job: keep it so */
        user_act[sig] = cur;
        install_wrapper(sig, cur.sa_handler == SIG_DFL ? NULL : &cur);
    }
}
