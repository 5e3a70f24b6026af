/*
 * attach.c - recording a process that is already running (`sftrace attach
 * PID`, cmd/attach.c): the command makes the process dlopen this library and
 * call sftrace_attach, later sftrace_detach, through ptrace.
 *
 * Attached, the runtime records as under `record` (every object patched,
 * the helper process writing the log) except that nothing is interposed:
 * the library came in with dlopen, after the program bound its symbols, so
 * dlopen, fork, exec and signal handlers are the program's own. What is done
 * instead (docs/design.md, "Attach"):
 *   - objects loaded later: a pass compares the dynamic linker's load and
 *     unload counters (dl_iterate_phdr's dlpi_adds, dlpi_subs) with the
 *     last pass's and, when they moved, patches the new objects the way
 *     record's dlopen hook does (patch.c: OBJECT chunk, function ids,
 *     filters), in every link-map namespace (dlmopen), and forgets the
 *     unloaded ones (ctl.c). The pass runs in the loading thread, inside its
 *     dlopen, from the linker's debugger rendezvous (_r_debug.r_brk, hooked:
 *     brk_install), and every WATCH_MS in a watcher thread of ours (signals
 *     blocked, no instrumented code) where the hook cannot be set;
 *   - fork: a child (pthread_atfork, which works whenever it is registered)
 *     is not recorded: its sleds are put back as they were and our
 *     descriptors closed, so it runs as if never traced;
 *   - exec ends the recording (the helper sees the image go and writes END);
 *   - a fatal signal is seen by the helper as a death.
 *
 * Detaching gives the watcher up, removes the hook, puts every patched sled
 * back as it was, byte for byte (ctl.c), has the helper write everything
 * and an END saying DETACH, and the helper exits. No wait in it is without
 * bound (docs/design.md, "Attach": "Detaching, bounded"); what it waited
 * for when one ran out is in sftrace_why, for the command to print. The shared memory stays mapped
 * (threads that recorded keep their pointers into it) and is used again by the next attach.
 */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime.h"

#define WATCH_MS 10

/*
 * The watcher's state word: its generation (one per attach) above, its
 * phase in the low two bits. W_IDLE: sleeping, or waiting to enter
 * dl_iterate_phdr (for the dynamic linker's list lock, which a thread of the
 * program may hold as long as it likes: a dlclose, a callback of its own;
 * or the whole process is stopped by SIGSTOP); it holds nothing of ours.
 * W_BUSY: inside dl_iterate_phdr's callback, patching; it holds the patch
 * lock and waits at most for the helper's answers (bounded). W_GONE: the
 * detach gave it up while it was idle: it touches nothing any more and
 * ends as soon as it runs. Only the watcher moves IDLE to BUSY and back,
 * only the detach IDLE to GONE, each with one compare-and-swap, so a detach
 * never waits for the loader's lock, and never races a patch pass.
 */
enum { W_IDLE = 0, W_BUSY = 1, W_GONE = 2 };
static _Atomic uint32_t wstate;
static uint32_t wgen;
static int watching;
static pthread_t watcher;
static int forked_from_attached; /* this process is such a child */

struct dl_counts {
    unsigned long long adds, subs;
};

static int counts_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct dl_counts *c = data;
    if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
        c->adds = info->dlpi_adds;
        c->subs = info->dlpi_subs;
    }
    return 1; /* the first object has them */
}

static struct dl_counts watch_from;
/* The counters as the last pass saw them (under the patch lock), and
 * whether passes may run (off from the start of a detach). */
static struct dl_counts seen;
static _Atomic int passes_on;
/* The thread running a pass: if something in it loaded an object, the hook
 * would wait for the lock that thread holds itself. */
static _Atomic unsigned long pass_owner;

/*
 * One pass, inside dl_iterate_phdr's callback for its first object (the
 * list cannot change while it runs; the nested dl_iterate_phdr calls take
 * the lock again: it is recursive): when the load or unload counters moved
 * since the last pass, forget the objects unloaded and patch the new ones,
 * in every namespace. The list lock is taken before the patch lock here
 * and the other way round by a dlopen's patch pass, so the patch lock is
 * only tried: busy, the next pass does it. early: from the dynamic linker's
 * rendezvous, before the new objects are relocated (sf_patch_early), with
 * the patch lock taken already (brk_hook). The lock is released here.
 */
static void pass(struct dl_phdr_info *info, size_t size, int early)
{
    struct dl_counts now = {0, 0};
    counts_cb(info, size, &now);
    if (!early && sf_patch_trylock() != 0)
        return;
    atomic_store(&pass_owner, (unsigned long)pthread_self());
    if (atomic_load(&passes_on) && (now.adds != seen.adds || now.subs != seen.subs)) {
        if (now.subs != seen.subs)
            sf_ctl_prune_held(); /* before patching: a new object may sit where an old one was */
        sf_patch_early = early;
        sf_patch_deferred = 0;
        sf_patch_all_objects_held();
        sf_patch_other_namespaces_held();
        sf_patch_early = 0;
        if (!sf_patch_deferred)
            seen = now; /* else the watcher's next pass takes the deferred ones */
    }
    atomic_store(&pass_owner, 0);
    sf_patch_unlock();
}

struct watch_pass {
    uint32_t gen;
    int gone;
};

static int watch_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct watch_pass *w = data;
    uint32_t idle = w->gen << 2 | W_IDLE;
    if (!atomic_compare_exchange_strong(&wstate, &idle, w->gen << 2 | W_BUSY)) {
        w->gone = 1; /* detached meanwhile (or another attach since) */
        return 1;
    }
    pass(info, size, 0);
    atomic_store(&wstate, w->gen << 2 | W_IDLE);
    return 1;
}

/*
 * The dynamic linker's rendezvous with debuggers (<link.h>, r_debug):
 * every dlopen and dlclose calls _r_debug.r_brk (_dl_debug_state, an empty
 * function) when it begins changing the list (RT_ADD, RT_DELETE) and when
 * the list is consistent again (RT_CONSISTENT: a dlopen's objects are
 * mapped and listed, not yet relocated, their constructors not run; a
 * dlclose's are unmapped). Debuggers put a breakpoint there; we put a jump
 * to brk_hook, which runs a pass at once in the thread that loads, so an
 * object is patched before its constructors and before dlopen returns: no
 * call into it is missed. The watcher stays, for what the hook cannot do.
 *
 * glibc's _dl_debug_state is `ret` and 15 bytes of padding (16-aligned, its
 * symbol 1 byte long; checked, else no hook). The padding, never executed,
 * gets `jmp *0(%rip)` and brk_hook's address (bytes 2..15); then one
 * 2-byte store turns the `ret` into `jmp .+2`: a thread running it meets
 * either the old `ret` or the new jump, as with XRay's sleds. Removed the
 * other way round (the `ret` back, a pause for a thread between the two
 * jumps, the padding back), at the detach and in a forked child. The hook
 * is a C function called as _dl_debug_state would be (its callers keep
 * nothing in call-clobbered registers); it keeps errno.
 */
static uint8_t *brk_at; /* _dl_debug_state, hooked; NULL: not */
static uint8_t brk_orig[16];

static int hook_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)data;
    pass(info, size, 1);
    return 1;
}

/* The patch lock is waited for here, and taken before the list lock as
 * record's dlopen hook and the detach take them: whoever holds it (the
 * watcher's pass, a detach) does not wait for this thread, which holds only
 * the loader's own lock (dl_load_lock, which no pass takes). A try would
 * lose objects to a watcher's pass that holds the lock just then: the
 * object may be closed again before the watcher's next look. */
static void brk_hook(void)
{
    int e = errno;
    if (atomic_load(&passes_on) && sf_g.enabled &&
        atomic_load(&pass_owner) != (unsigned long)pthread_self()) {
        sf_patch_lock();
        dl_iterate_phdr(hook_cb, NULL);
    }
    errno = e;
}

static int text_rw(uint8_t *p, int rw)
{
    long pg = sysconf(_SC_PAGESIZE);
    void *page = (void *)((uintptr_t)p & ~(uintptr_t)(pg - 1));
    return mprotect(page, (size_t)pg, PROT_READ | PROT_EXEC | (rw ? PROT_WRITE : 0));
}

/* Are the n bytes at p padding: x86 no-op instructions (the multi-byte
 * forms compilers pad with, data16 prefixes included) or int3? */
static int is_padding(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (p[i] == 0xcc || p[i] == 0x90) {
            i++;
            continue;
        }
        size_t j = i;
        while (j < n && p[j] == 0x66)
            j++;
        if (j < n && p[j] == 0x2e)
            j++;
        if (j < n && p[j] == 0x90) {
            i = j + 1;
            continue;
        }
        if (j + 2 >= n || p[j] != 0x0f || p[j + 1] != 0x1f)
            return 0;
        uint8_t m = p[j + 2];
        size_t len = m == 0x00   ? 3
                     : m == 0x40 ? 4
                     : m == 0x44 ? 5
                     : m == 0x80 ? 7
                     : m == 0x84 ? 8
                                 : 0;
        if (!len || j + len > n)
            return 0;
        i = j + len;
    }
    return 1;
}

static void brk_install(void)
{
#if !defined(__x86_64__)
    return; /* the jumps are x86_64 code (attaching is x86_64 only, cmd/attach.c) */
#endif
    uint8_t *p = (uint8_t *)_r_debug.r_brk;
    Dl_info di, d2;
    const ElfW(Sym) *sym = NULL, *s2 = NULL;
    if (brk_at || !p || ((uintptr_t)p & 15) || p[0] != 0xc3 || !is_padding(p + 1, 15) ||
        !dladdr1(p, &di, (void **)&sym, RTLD_DL_SYMENT) || !sym || sym->st_size > 1 ||
        di.dli_saddr != p || !dladdr1(p + 15, &d2, (void **)&s2, RTLD_DL_SYMENT) ||
        (d2.dli_saddr && d2.dli_saddr != p) || text_rw(p, 1) != 0)
        return; /* not the function we know: the watcher alone */
    memcpy(brk_orig, p, sizeof brk_orig);
    uint8_t code[14] = {0xff, 0x25, 0, 0, 0, 0}; /* jmp *0(%rip), then the address */
    uintptr_t fn = (uintptr_t)brk_hook;
    memcpy(code + 6, &fn, sizeof fn);
    memcpy(p + 2, code, sizeof code);
    __atomic_store_n((uint16_t *)p, (uint16_t)0x00eb, __ATOMIC_RELEASE); /* jmp .+2 */
    text_rw(p, 0);
    brk_at = p;
}

static void brk_remove(int pause)
{
    if (!brk_at || text_rw(brk_at, 1) != 0)
        return;
    uint16_t first;
    memcpy(&first, brk_orig, 2);
    __atomic_store_n((uint16_t *)brk_at, first, __ATOMIC_RELEASE);
    if (pause) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    memcpy(brk_at + 2, brk_orig + 2, sizeof brk_orig - 2);
    text_rw(brk_at, 0);
    brk_at = NULL;
}

/* The objects dlmopen loaded before the attach, under the list lock (the
 * callback of the first object), as the watcher patches later ones. */
static int namespaces_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info;
    (void)size;
    (void)data;
    if (sf_patch_trylock() == 0) { /* nobody else patches during the attach */
        sf_patch_other_namespaces_held();
        sf_patch_unlock();
    }
    return 1;
}

static void *watch_main(void *arg)
{
    uint32_t gen = (uint32_t)(uintptr_t)arg;
    for (;;) {
        uint32_t idle = gen << 2 | W_IDLE;
        struct timespec ts = {0, WATCH_MS * 1000000L};
        syscall(SYS_futex, &wstate, FUTEX_WAIT_PRIVATE, idle, &ts, NULL, 0);
        if (atomic_load(&wstate) != idle)
            break;
        struct watch_pass w = {gen, 0};
        dl_iterate_phdr(watch_cb, &w);
        if (w.gone)
            break;
    }
    return NULL;
}

static void watch_start(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* the program's signals are not for us */
    wgen = (wgen + 1) & 0x3fffffff;
    atomic_store(&wstate, wgen << 2 | W_IDLE);
    watching = pthread_create(&watcher, NULL, watch_main, (void *)(uintptr_t)wgen) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (watching) {
        pthread_setname_np(watcher, "sftrace-watch");
        pthread_detach(watcher); /* a watcher given up ends on its own */
    } else {
        sf_msg("pid %d: cannot start a thread to watch for objects loaded later; they are "
               "not traced",
               (int)sf_g.pid);
    }
}

/* Stop the watcher: 0 once it is given up (it will end without touching
 * anything); -1 if it stayed in a patch pass for a while (300 ms: the
 * detach is refused, and tried again). */
static int watch_end(void)
{
    if (!watching)
        return 0;
    for (uint64_t t0 = sf_mono_ns(); sf_mono_ns() - t0 < 300000000ull;) {
        uint32_t idle = wgen << 2 | W_IDLE;
        if (atomic_compare_exchange_strong(&wstate, &idle, wgen << 2 | W_GONE)) {
            syscall(SYS_futex, &wstate, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
            watching = 0;
            return 0;
        }
        struct timespec ts = {0, 500000};
        nanosleep(&ts, NULL);
    }
    sf_ctl_note("the watcher thread (sftrace-watch) stayed in a patch pass for 300 ms "
                "(patching an object loaded meanwhile)");
    return -1;
}

/* Is the helper process still there (its end of the alive pipe open)? Not
 * its pid, which may be another process's by now. */
static int helper_still_there(void)
{
    if (sf_g.helper_pid <= 0 || !sf_fd_is(sf_g.alive_fd, sf_g.alive_ino))
        return 0;
    struct pollfd p = {sf_g.alive_fd, POLLIN, 0};
    return !(poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)));
}

static void close_ours(int *fd)
{
    if (*fd >= 0 && sf_is_our_fd(*fd))
        syscall(SYS_close, *fd);
    *fd = -1;
}

/* In a child forked while attached (only the forking thread exists): the
 * sleds back as they were, and none of our descriptors. Its memory still
 * maps the parent's shared buffers, which it no longer writes to. */
static void atfork_child(void)
{
    if (!sf_g.attached || !sf_g.enabled)
        return;
    sf_g.enabled = 0;
    forked_from_attached = 1;
    watching = 0; /* the thread is the parent's */
    atomic_store(&passes_on, 0);
    brk_remove(0); /* its own copy of the dynamic linker's page */
    sf_patch_after_fork();
    sf_ctl_restore_in_child();
    close_ours(&sf_g.wake_fd);
    close_ours(&sf_g.alive_fd);
    if (sf_g.memfd >= 0 && sf_fd_is(sf_g.memfd, sf_g.memfd_ino))
        syscall(SYS_close, sf_g.memfd);
    sf_g.memfd = -1;
    sf_g.helper_gone = 1;
}

/* 0: recording; -1: not (already attached, or it could not start); -2: this
 * process was forked from one sftrace was attached to (its memory is shared
 * with that one's recording, so it cannot record). */
SF_EXPORT int sftrace_attach(const char *log, const char *session)
{
    if (forked_from_attached)
        return -2;
    if (!log || !session || sf_g.enabled)
        return -1;
    static int atfork_set;
    if (!atfork_set)
        atfork_set = pthread_atfork(NULL, NULL, atfork_child) == 0;
    sf_g.attached = 1;
    dl_iterate_phdr(counts_cb, &watch_from); /* before the first scan: none is missed */
    seen = watch_from;
    int rc = sf_start_attached(log, session);
    if (rc == 0) {
        dl_iterate_phdr(namespaces_cb, NULL); /* sf_start_attached patched the base one */
        atomic_store(&passes_on, 1);
        if (!getenv("SFTRACE_NO_RENDEZVOUS"))
            brk_install();
        watch_start();
    }
    return rc;
}

/* 0: detached; -1: not attached; -3: busy (the watcher is patching, or
 * another thread holds the patch lock), try again; -4: detached, but the
 * helper did not end the log (sftrace_why says why: it did not answer and
 * was killed; the log ends at its last whole chunk, without END). */
SF_EXPORT int sftrace_detach(void)
{
    if (!sf_g.enabled || !sf_g.attached)
        return -1;
    sftrace_why[0] = 0;
    if (watch_end() != 0)
        return -3;
    brk_remove(1);
    atomic_store(&passes_on, 0); /* a pass begun already ends before restore gets the lock */
    if (sf_ctl_restore() != 0) {
        atomic_store(&passes_on, 1);
        if (!getenv("SFTRACE_NO_RENDEZVOUS"))
            brk_install();
        watch_start(); /* attached as before: the next try stops it again */
        return -3;
    }
    int rc = 0;
    if (sf_ctl_mark_attach(0) != 0 || sf_request(REQ_END, SF_END_DETACH) != 0) {
        if (!sftrace_why[0])
            sf_ctl_note("the helper (pid %d) is gone: the log has no END", (int)sf_g.helper_pid);
        /* a helper that does not answer must not write on after the
         * detach, nor stay: it is ours, and the program knows nothing of it */
        if (helper_still_there())
            kill(sf_g.helper_pid, SIGKILL);
        rc = -4;
    }
    sf_g.enabled = 0;
    /* our pipes to the helper, which exits: closed, so the program has the
     * descriptors it had (hooks.c's close would refuse them: a system call) */
    if (sf_g.wake_fd >= 0)
        syscall(SYS_close, sf_g.wake_fd);
    if (sf_g.alive_fd >= 0)
        syscall(SYS_close, sf_g.alive_fd);
    sf_g.wake_fd = sf_g.alive_fd = -1;
    sf_g.helper_gone = 1;
    return rc;
}
