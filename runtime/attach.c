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
 *   - objects loaded later: a watcher thread of ours (signals blocked, no
 *     instrumented code) looks at the dynamic linker's load and unload
 *     counters (dl_iterate_phdr's dlpi_adds, dlpi_subs) every WATCH_MS and,
 *     when they moved, patches the new objects the way record's dlopen hook
 *     does (patch.c: OBJECT chunk, function ids, filters) and forgets the
 *     unloaded ones (ctl.c). Calls into an object in the first WATCH_MS
 *     after its dlopen may be missed;
 *   - fork: a child (pthread_atfork, which works whenever it is registered)
 *     is not recorded: its sleds are put back as they were and our
 *     descriptors closed, so it runs as if never traced;
 *   - exec ends the recording (the helper sees the image go and writes END);
 *   - a fatal signal is seen by the helper as a death.
 *
 * Detaching stops the watcher, puts every patched sled back as it was, byte
 * for byte (ctl.c), has the helper write everything and an END saying
 * DETACH, and the helper exits. The shared memory stays mapped (threads that
 * recorded keep their pointers into it) and is used again by the next
 * attach.
 */
#include <link.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
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

struct watch_pass {
    uint32_t gen;
    struct dl_counts *last;
    int gone;
};

/* dl_iterate_phdr's callback for its first object: the list cannot change
 * while it runs. The patch pass runs in here, under the list lock (the
 * nested dl_iterate_phdr calls take it again: it is recursive), taken
 * before the patch lock as a dlopen's patch pass takes them the other way:
 * so the patch lock is only tried here, never waited for. */
static int watch_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    struct watch_pass *w = data;
    uint32_t idle = w->gen << 2 | W_IDLE;
    if (!atomic_compare_exchange_strong(&wstate, &idle, w->gen << 2 | W_BUSY)) {
        w->gone = 1; /* detached meanwhile (or another attach since) */
        return 1;
    }
    struct dl_counts now = *w->last;
    counts_cb(info, size, &now);
    if ((now.adds != w->last->adds || now.subs != w->last->subs) && sf_patch_trylock() == 0) {
        if (now.subs != w->last->subs)
            sf_ctl_prune_held(); /* before patching: a new object may sit where an old one was */
        sf_patch_all_objects_held();
        sf_patch_other_namespaces_held();
        sf_patch_unlock();
        *w->last = now;
    }
    atomic_store(&wstate, w->gen << 2 | W_IDLE);
    return 1;
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
    struct dl_counts last = watch_from;
    for (;;) {
        uint32_t idle = gen << 2 | W_IDLE;
        struct timespec ts = {0, WATCH_MS * 1000000L};
        syscall(SYS_futex, &wstate, FUTEX_WAIT_PRIVATE, idle, &ts, NULL, 0);
        if (atomic_load(&wstate) != idle)
            break;
        struct watch_pass w = {gen, &last, 0};
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
    for (int i = 0; i < 600; i++) {
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
    int rc = sf_start_attached(log, session);
    if (rc == 0) {
        dl_iterate_phdr(namespaces_cb, NULL); /* sf_start_attached patched the base one */
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
    if (sf_ctl_restore() != 0) {
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
